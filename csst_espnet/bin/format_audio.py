#!/usr/bin/env python3
"""Format the audio of a Kaldi-style data directory: one mono WAV per utterance at ``--fs``.

    python -m csst_espnet.bin.format_audio [--fs 16000] [--nj 4] [--channel 0] SRC OUT

``wav.scp`` entries may be audio files of any format soundfile reads, ``x.ark:offset`` Kaldi
archives, or ``command |`` pipes that write audio to stdout. With ``segments``, every utterance is
cut from its recording. Audio is resampled to ``--fs`` (polyphase), the channel ``--channel`` is
kept, and the result is written as 16-bit PCM to ``OUT/data/<utt>.wav``. ``OUT`` gets every
per-utterance file of ``SRC`` (text, src_text, utt2lang, phone_ali, ...), a new ``wav.scp`` (no segments),
``utt2num_samples`` and ``utt2dur``. An utterance whose audio cannot be read keeps its text but
gets no ``wav.scp`` entry; it is listed with the reason in ``OUT/format_errors.txt`` (stage 4 of the
recipe then reports it, or drops it with ``--drop_invalid true``).
"""

import argparse
import io
import logging
import math
import os
import re
import subprocess
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from csst_espnet.data import kaldi_dir as kd

_ARK = re.compile(r"^(.+\.ark):\d+$")
DERIVED = ("wav.scp", "segments", "utt2dur", "utt2num_samples", "reco2dur", "reco2file_and_channel", "feats.scp")


def read_audio(entry: str, channel: int = 0) -> Tuple[np.ndarray, int]:
    """(mono float32 samples, rate) of a ``wav.scp`` entry."""
    import soundfile

    entry = entry.strip()
    if entry.endswith("|"):
        proc = subprocess.run(entry[:-1], shell=True, capture_output=True)
        if proc.returncode != 0:
            raise RuntimeError(f"command failed ({proc.returncode}): {proc.stderr.decode(errors='replace').strip()[:200]}")
        data, rate = soundfile.read(io.BytesIO(proc.stdout), dtype="float32", always_2d=True)
    elif _ARK.match(entry) and not os.path.exists(entry):
        import kaldiio

        loaded = kaldiio.load_mat(entry)
        if not isinstance(loaded, tuple):
            raise RuntimeError("ark entry is not audio")
        rate, arr = loaded
        arr = np.asarray(arr)
        data = arr.astype(np.float32) / 32768.0 if arr.dtype == np.int16 else arr.astype(np.float32)
        data = data.reshape(len(data), -1)
    else:
        data, rate = soundfile.read(entry, dtype="float32", always_2d=True)
    if channel >= data.shape[1]:
        raise RuntimeError(f"no channel {channel} (audio has {data.shape[1]})")
    return np.ascontiguousarray(data[:, channel]), int(rate)


def resample(x: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Polyphase resampling from ``rate`` to ``target`` Hz."""
    if rate == target:
        return x
    from scipy.signal import resample_poly

    g = math.gcd(rate, target)
    return resample_poly(x, target // g, rate // g).astype(np.float32)


def cut(x: np.ndarray, rate: int, start: float, end: float) -> np.ndarray:
    a = max(0, int(round(start * rate)))
    b = min(len(x), int(round(end * rate)))
    if b <= a:
        raise RuntimeError(f"segment {start:.2f}-{end:.2f}s is outside the {len(x) / rate:.2f}s recording")
    return x[a:b]


def to_pcm16(x: np.ndarray) -> Tuple[np.ndarray, int]:
    """16-bit samples and the number of clipped samples."""
    clipped = int(np.count_nonzero(np.abs(x) > 1.0))
    return np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16), clipped


# one job: (utterance, source entry, optional (start, end)) -> output path
Job = Tuple[str, str, Optional[Tuple[float, float]], str]


def _work(args: Tuple[List[Job], int, int]) -> List[Tuple[str, int, str]]:
    """Format a chunk of jobs; returns (utt, samples or -1, error)."""
    import soundfile

    jobs, fs, channel = args
    out = []
    cache: Dict[str, Tuple[np.ndarray, int]] = {}
    for utt, entry, seg, path in jobs:
        try:
            if entry not in cache:
                cache.clear()  # jobs of one recording come together (sorted by recording)
                cache[entry] = read_audio(entry, channel)
            x, rate = cache[entry]
            if seg is not None:
                x = cut(x, rate, *seg)
            y, clipped = to_pcm16(resample(x, rate, fs))
            if len(y) == 0:
                raise RuntimeError("no samples")
            soundfile.write(path, y, fs, subtype="PCM_16", format="WAV")
            out.append((utt, len(y), f"clipped {clipped} samples" if clipped else ""))
        except Exception as e:  # reported per utterance; never stops the others
            out.append((utt, -1, f"{type(e).__name__}: {e}"))
    return out


def plan(d: kd.DataDir, out_dir: str) -> List[Job]:
    audio_dir = os.path.join(out_dir, "data")
    jobs: List[Job] = []
    if d.has_segments:
        wav = d.reco.get("wav.scp", {})
        for utt in sorted(d.utt["segments"], key=lambda u: (d.utt["segments"][u].split()[0], u)):
            reco, start, end = d.utt["segments"][utt].split()[:3]
            if reco not in wav:
                jobs.append((utt, "", None, ""))
                continue
            jobs.append((utt, wav[reco], (float(start), float(end)), os.path.join(audio_dir, f"{utt}.wav")))
    else:
        for utt, entry in sorted(d.utt.get("wav.scp", {}).items()):
            jobs.append((utt, entry, None, os.path.join(audio_dir, f"{utt}.wav")))
    return jobs


def format_dir(src: str, out: str, fs: int = 16000, nj: int = 1, channel: int = 0,
               progress: bool = True) -> Dict[str, int]:
    """Format ``src`` into ``out``; returns counts (utterances, formatted, errors, clipped)."""
    from tqdm import tqdm

    if os.path.abspath(src) == os.path.abspath(out):
        raise ValueError("SRC and OUT must differ")
    d = kd.DataDir.read(src)
    if "wav.scp" not in d.utt and "wav.scp" not in d.reco:
        raise ValueError(f"{src} has no wav.scp")
    os.makedirs(os.path.join(out, "data"), exist_ok=True)
    jobs = plan(d, out)
    errors: Dict[str, str] = {}
    todo = []
    for job in jobs:
        if not job[1]:
            errors[job[0]] = "its recording is not in wav.scp"
        else:
            todo.append(job)
    nj = max(1, min(nj, len(todo)))
    chunks = [todo[i::nj] for i in range(nj)] if nj > 1 else [todo]
    # keep the jobs of one recording in one chunk (segments): split by recording
    if d.has_segments and nj > 1:
        by_reco: Dict[str, List[Job]] = {}
        for job in todo:
            by_reco.setdefault(job[1], []).append(job)
        chunks = [[] for _ in range(nj)]
        for i, reco_jobs in enumerate(by_reco.values()):
            chunks[i % nj].extend(reco_jobs)
    # small pieces so that the progress bar moves (a recording split over two pieces is read twice)
    pieces: List[List[Job]] = [chunk[i : i + 50] for chunk in chunks for i in range(0, len(chunk), 50)]
    samples: Dict[str, int] = {}
    notes: Dict[str, str] = {}
    with tqdm(total=len(todo), desc=f"format {os.path.basename(src.rstrip('/'))}", unit="utt",
              disable=not progress, mininterval=2.0) as bar:
        if nj == 1:
            results_iter = (_work((p, fs, channel)) for p in pieces)
            pool = None
        else:
            import multiprocessing

            pool = multiprocessing.get_context("fork").Pool(nj)
            results_iter = pool.imap_unordered(_work, [(p, fs, channel) for p in pieces])
        try:
            for results in results_iter:
                for utt, n, msg in results:
                    if n < 0:
                        errors[utt] = msg
                    else:
                        samples[utt] = n
                        if msg:
                            notes[utt] = msg
                bar.update(len(results))
        finally:
            if pool is not None:
                pool.close()
                pool.join()

    new = kd.DataDir()
    for name, table in d.utt.items():
        if name not in DERIVED:
            new.utt[name] = dict(table)
    new.utt["wav.scp"] = {u: os.path.join(out, "data", f"{u}.wav") for u in samples}
    new.utt["utt2num_samples"] = {u: str(n) for u, n in samples.items()}
    new.utt["utt2dur"] = {u: f"{n / fs:.4f}" for u, n in samples.items()}
    new.spk = {k: dict(v) for k, v in d.spk.items()}
    new.write(out)
    err_file = os.path.join(out, "format_errors.txt")
    if errors:
        with open(err_file, "w", encoding="utf-8") as f:
            for u in sorted(errors, key=kd.sort_key):
                f.write(f"{u}\t{errors[u]}\n")
    elif os.path.exists(err_file):
        os.remove(err_file)
    for u in sorted(errors, key=kd.sort_key)[:10]:
        logging.warning("%s: utterance %s: %s", src, u, errors[u])
    if notes:
        logging.warning("%s: %d utterances were clipped (e.g. %s: %s)", src, len(notes), *next(iter(notes.items())))
    return {"utterances": len(jobs), "formatted": len(samples), "errors": len(errors), "clipped": len(notes)}


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m csst_espnet.bin.format_audio", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src")
    p.add_argument("out")
    p.add_argument("--fs", type=int, default=16000, help="output sampling rate")
    p.add_argument("--nj", type=int, default=1, help="parallel processes")
    p.add_argument("--channel", type=int, default=0, help="channel kept from multi-channel audio")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    args = get_parser().parse_args(argv)
    try:
        counts = format_dir(args.src, args.out, args.fs, args.nj, args.channel)
    except (ValueError, FileNotFoundError) as e:
        print(f"format_audio: {e}", file=sys.stderr)
        return 1
    logging.info("%s -> %s: %d of %d utterances formatted at %d Hz%s", args.src, args.out, counts["formatted"],
                 counts["utterances"], args.fs,
                 f"; {counts['errors']} failed (see {args.out}/format_errors.txt)" if counts["errors"] else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
