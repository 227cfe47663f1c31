"""The audio of a Kaldi-style data directory: formatting (recipe stage 3) and speed perturbation (stage 2).

See docs/architecture.md (data). Signal operations are those of :mod:`csst_espnet.data.audio`;
the directory files those of :mod:`csst_espnet.data.kaldi_dir`.
"""

import logging
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from csst_espnet.data import kaldi_dir as kd
from csst_espnet.data.audio import audio_info, change_speed, cut, read_audio, resample, to_pcm16, write_pcm16

# files that describe the audio: rewritten (or dropped) when the audio is
DERIVED = ("wav.scp", "segments", "utt2dur", "utt2num_samples", "reco2dur", "reco2file_and_channel", "feats.scp")
PIECE = 50  # utterances per work item (the progress bar moves per item)

# ------------------------------------------------------------------------------------------ format
# one job: (utterance, source entry, optional (start, end), output path)
Job = Tuple[str, str, Optional[Tuple[float, float]], str]


def _format_piece(args: Tuple[List[Job], int, int]) -> List[Tuple[str, int, str]]:
    """Format a piece of jobs; returns (utt, samples or -1, error or note)."""
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
            write_pcm16(path, y, fs)
            out.append((utt, len(y), f"clipped {clipped} samples" if clipped else ""))
        except Exception as e:  # reported per utterance; never stops the others
            out.append((utt, -1, f"{type(e).__name__}: {e}"))
    return out


def plan(d: kd.DataDir, out_dir: str) -> List[Job]:
    """The jobs formatting ``d`` into ``out_dir``, grouped by recording; an empty entry: no recording."""
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
    """Format ``src`` into ``out``: one mono 16-bit WAV per utterance at ``fs`` in ``out/data``.

    ``out`` gets every per-utterance file of ``src`` and a new ``wav.scp`` (no segments),
    ``utt2num_samples`` and ``utt2dur``; an utterance whose audio cannot be read keeps its text,
    gets no ``wav.scp`` entry and is listed in ``out/format_errors.txt``. Returns counts
    (utterances, formatted, errors, clipped).
    """
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
    pieces: List[List[Job]] = [chunk[i : i + PIECE] for chunk in chunks for i in range(0, len(chunk), PIECE)]
    samples: Dict[str, int] = {}
    notes: Dict[str, str] = {}
    with tqdm(total=len(todo), desc=f"format {os.path.basename(src.rstrip('/'))}", unit="utt",
              disable=not progress, mininterval=2.0) as bar:
        if nj == 1:
            results_iter = (_format_piece((p, fs, channel)) for p in pieces)
            pool = None
        else:
            import multiprocessing

            pool = multiprocessing.get_context("fork").Pool(nj)
            results_iter = pool.imap_unordered(_format_piece, [(p, fs, channel) for p in pieces])
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


# ----------------------------------------------------------------------------------- speed perturb
def parse_factors(text: str) -> List[float]:
    """Speed factors from ``"0.9,1.0,1.1"`` (commas or spaces): distinct positive numbers."""
    try:
        factors = [float(x) for x in text.replace(",", " ").split()]
    except ValueError:
        raise ValueError(f"--factors must be numbers, got {text!r}") from None
    if not factors or any(f <= 0 for f in factors) or len(set(factors)) != len(factors):
        raise ValueError(f"--factors must be distinct positive numbers, got {text!r}")
    return factors


def prefix(f: float) -> str:
    """Prefix of the utterance and speaker ids perturbed by factor ``f``."""
    return f"sp{f:g}-"


def _perturb_piece(args) -> List[Tuple[str, int, int, str]]:
    """(new utt, samples, rate, error) for a piece of (utt, entry, segment, factor, path)."""
    jobs, channel = args
    out = []
    for utt, entry, seg, factor, path in jobs:
        try:
            x, rate = read_audio(entry, channel)
            if seg is not None:
                x = cut(x, rate, *seg)
            y, _ = to_pcm16(change_speed(x, factor))
            write_pcm16(path, y, rate)
            out.append((prefix(factor) + utt, len(y), rate, ""))
        except Exception as e:
            out.append((prefix(factor) + utt, -1, 0, f"{type(e).__name__}: {e}"))
    return out


def speed_perturb_dir(src: str, out: str, factors: Sequence[float], nj: int = 1, channel: int = 0) -> Dict[str, int]:
    """Speed-perturbed copy of ``src`` in ``out``: per factor f != 1.0, ``sp<f>-<utt>`` utterances
    (speakers ``sp<f>-<spk>``) with audio in ``out/wav`` at the source rate; factor 1.0 keeps the
    originals. Per-utterance files are carried over, ``utt2dur``/``utt2num_samples`` recomputed and
    the frame alignments (``phone_ali``, ``lang_ali``) stretched to the perturbed duration. Returns counts (utterances, perturbed)."""
    from tqdm import tqdm

    if os.path.abspath(src) == os.path.abspath(out):
        raise ValueError("SRC and OUT must differ")
    d = kd.DataDir.read(src)
    ids = d.utt_ids()
    wav_dir = os.path.join(out, "wav")
    os.makedirs(wav_dir, exist_ok=True)
    jobs = []
    for f in factors:
        if f == 1.0:
            continue
        for u in ids:
            if d.has_segments:
                reco, start, end = d.utt["segments"][u].split()[:3]
                entry, seg = d.reco["wav.scp"][reco], (float(start), float(end))
            else:
                entry, seg = d.utt["wav.scp"][u], None
            jobs.append((u, entry, seg, f, os.path.join(wav_dir, f"{prefix(f)}{u}.wav")))
    results: List[Tuple[str, int, int, str]] = []
    pieces = [jobs[i : i + PIECE] for i in range(0, len(jobs), PIECE)]
    with tqdm(total=len(jobs), desc=f"speed perturb {os.path.basename(src.rstrip('/'))}", unit="utt",
              mininterval=2.0) as bar:
        if nj > 1 and len(pieces) > 1:
            import multiprocessing

            with multiprocessing.get_context("fork").Pool(nj) as pool:
                for r in pool.imap_unordered(_perturb_piece, [(p, channel) for p in pieces]):
                    results += r
                    bar.update(len(r))
        else:
            for p in pieces:
                r = _perturb_piece((p, channel))
                results += r
                bar.update(len(r))
    errors = {u: msg for u, n, _, msg in results if n < 0}
    if errors:
        u = sorted(errors)[0]
        raise RuntimeError(f"{len(errors)} utterances could not be perturbed, e.g. {u}: {errors[u]}")

    new = kd.DataDir()
    keep_original = 1.0 in factors
    per_utt = {n: t for n, t in d.utt.items() if n not in DERIVED}
    frames = {u: kd.ali_num_frames(n, rate) for u, n, rate, _ in results}
    for name, table in per_utt.items():
        new.utt[name] = {}
        for f in factors:
            for u, v in table.items():
                if f == 1.0:
                    new.utt[name][u] = v
                elif name in kd.FRAME_ALIGNMENTS:  # the same labels at the perturbed timing
                    if prefix(f) + u in frames:  # (an utterance without audio has none)
                        new.utt[name][prefix(f) + u] = " ".join(kd.resample_ali(v.split(), frames[prefix(f) + u]))
                else:
                    new.utt[name][prefix(f) + u] = prefix(f) + v if name == "utt2spk" else v
    wav: Dict[str, str] = {}
    num: Dict[str, str] = {}
    dur: Dict[str, str] = {}
    for u, n, rate, _ in results:
        wav[u] = os.path.join(wav_dir, f"{u}.wav")
        num[u], dur[u] = str(n), f"{n / rate:.4f}"
    if keep_original:
        if d.has_segments:
            raise ValueError("factor 1.0 with segments: format the data (stage 3) before perturbing, "
                             "or leave 1.0 out")
        wav.update(d.utt["wav.scp"])
        for u in ids:
            n, rate = audio_info(d.utt["wav.scp"][u])
            num[u], dur[u] = str(n), f"{n / rate:.4f}"
    new.utt["wav.scp"] = wav
    if len(num) == len(wav):
        new.utt["utt2num_samples"] = num
    if len(dur) == len(wav):
        new.utt["utt2dur"] = dur
    new.spk = {}
    new.write(out)
    return {"utterances": len(wav), "perturbed": len(results)}
