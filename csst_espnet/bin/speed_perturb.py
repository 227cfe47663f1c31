#!/usr/bin/env python3
"""Speed perturbation of a Kaldi-style data directory (recipe stage 2).

    python -m csst_espnet.bin.speed_perturb --factors 0.9,1.0,1.1 [--nj 4] SRC OUT

For every factor f other than 1.0, each utterance is resampled so that it plays f times as fast
(tempo and pitch change together, as with sox ``speed``), written to ``OUT/wav/sp<f>-<utt>.wav``
at the source sampling rate, and gets the id ``sp<f>-<utt>`` and speaker ``sp<f>-<spk>`` (ids keep
their speaker prefix). Factor 1.0 keeps the original utterances (the original audio, unchanged
ids). Every per-utterance file is carried over (texts, language and task labels); ``utt2dur`` and
``utt2num_samples`` are recomputed, and a ``phone_ali`` (phone ids per 10 ms frame) is stretched to
the perturbed duration. With ``segments``, each utterance is cut first, so ``OUT`` has no segments.
"""

import argparse
import logging
import os
import sys
from fractions import Fraction
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from csst_espnet.bin.format_audio import cut, read_audio, to_pcm16
from csst_espnet.data import kaldi_dir as kd

DERIVED = ("wav.scp", "segments", "utt2dur", "utt2num_samples", "reco2dur", "reco2file_and_channel", "feats.scp")


def parse_factors(text: str) -> List[float]:
    try:
        factors = [float(x) for x in text.replace(",", " ").split()]
    except ValueError:
        raise ValueError(f"--factors must be numbers, got {text!r}") from None
    if not factors or any(f <= 0 for f in factors) or len(set(factors)) != len(factors):
        raise ValueError(f"--factors must be distinct positive numbers, got {text!r}")
    return factors


def prefix(f: float) -> str:
    return f"sp{f:g}-"


def perturb(x: np.ndarray, factor: float) -> np.ndarray:
    """``x`` played ``factor`` times as fast at the same sampling rate (len / factor samples)."""
    if factor == 1.0:
        return x
    from scipy.signal import resample_poly

    ratio = Fraction(factor).limit_denominator(100)
    # rate conversion by down/up: output length = len * down / up = len / factor
    return resample_poly(x, ratio.denominator, ratio.numerator).astype(np.float32)


def _work(args) -> List[Tuple[str, int, int, str]]:
    """(new utt, samples, rate, error) for a chunk of (utt, entry, segment, factor, path)."""
    import soundfile

    jobs, channel = args
    out = []
    for utt, entry, seg, factor, path in jobs:
        try:
            x, rate = read_audio(entry, channel)
            if seg is not None:
                x = cut(x, rate, *seg)
            y, _ = to_pcm16(perturb(x, factor))
            soundfile.write(path, y, rate, subtype="PCM_16", format="WAV")
            out.append((prefix(factor) + utt, len(y), rate, ""))
        except Exception as e:
            out.append((prefix(factor) + utt, -1, 0, f"{type(e).__name__}: {e}"))
    return out


def speed_perturb_dir(src: str, out: str, factors: Sequence[float], nj: int = 1, channel: int = 0) -> Dict[str, int]:
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
    pieces = [jobs[i : i + 50] for i in range(0, len(jobs), 50)]
    with tqdm(total=len(jobs), desc=f"speed perturb {os.path.basename(src.rstrip('/'))}", unit="utt",
              mininterval=2.0) as bar:
        if nj > 1 and len(pieces) > 1:
            import multiprocessing

            with multiprocessing.get_context("fork").Pool(nj) as pool:
                for r in pool.imap_unordered(_work, [(p, channel) for p in pieces]):
                    results += r
                    bar.update(len(r))
        else:
            for p in pieces:
                r = _work((p, channel))
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
                elif name == kd.PHONE_ALI:  # the same phones at the perturbed timing
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
            n, rate = kd.audio_info(d.utt["wav.scp"][u])
            num[u], dur[u] = str(n), f"{n / rate:.4f}"
    new.utt["wav.scp"] = wav
    if len(num) == len(wav):
        new.utt["utt2num_samples"] = num
    if len(dur) == len(wav):
        new.utt["utt2dur"] = dur
    new.spk = {}
    new.write(out)
    return {"utterances": len(wav), "perturbed": len(results)}


def main(argv: Optional[Sequence[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    p = argparse.ArgumentParser(prog="python -m csst_espnet.bin.speed_perturb", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src")
    p.add_argument("out")
    p.add_argument("--factors", default="0.9,1.0,1.1", help="speed factors, comma separated")
    p.add_argument("--nj", type=int, default=1)
    p.add_argument("--channel", type=int, default=0)
    args = p.parse_args(argv)
    try:
        counts = speed_perturb_dir(args.src, args.out, parse_factors(args.factors), args.nj, args.channel)
    except (ValueError, RuntimeError, FileNotFoundError) as e:
        print(f"speed_perturb: {e}", file=sys.stderr)
        return 1
    logging.info("%s -> %s: %d utterances (%d perturbed)%s", args.src, args.out, counts["utterances"],
                 counts["perturbed"], "; phone_ali stretched to the perturbed durations"
                 if os.path.exists(os.path.join(args.out, kd.PHONE_ALI)) else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
