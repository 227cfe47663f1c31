#!/usr/bin/env python3
"""Speed perturbation of a Kaldi-style data directory (recipe stage 2).

    python -m csst_espnet.bin.speed_perturb --factors 0.9,1.0,1.1 [--nj 4] SRC OUT

For every factor f other than 1.0, each utterance is resampled so that it plays f times as fast
(tempo and pitch change together, as with sox ``speed``), written to ``OUT/wav/sp<f>-<utt>.wav``
at the source sampling rate, and gets the id ``sp<f>-<utt>`` and speaker ``sp<f>-<spk>`` (ids keep
their speaker prefix). Factor 1.0 keeps the original utterances (the original audio, unchanged
ids). Every per-utterance file is carried over (texts, language and task labels); ``utt2dur`` and
``utt2num_samples`` are recomputed, and the frame alignments ``phone_ali`` (phone ids) and
``lang_ali`` (language codes), one label per 10 ms frame, are stretched to the perturbed duration. With ``segments``, each utterance is cut first, so ``OUT`` has no segments.
"""

import argparse
import logging
import os
import sys
from typing import Optional, Sequence

from csst_espnet.data import kaldi_dir as kd
from csst_espnet.data.audio_dir import parse_factors, speed_perturb_dir


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
    stretched = [n for n in kd.FRAME_ALIGNMENTS if os.path.exists(os.path.join(args.out, n))]
    logging.info("%s -> %s: %d utterances (%d perturbed)%s", args.src, args.out, counts["utterances"],
                 counts["perturbed"], f"; {', '.join(stretched)} stretched to the perturbed durations"
                 if stretched else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
