#!/usr/bin/env python3
"""A robustness test condition of a Kaldi-style data directory (recipe stage 2).

    python -m csst_espnet.bin.condition_dir [--seed 0] SRC OUT CONDITION

CONDITION: ``snr<dB>`` (babble or coloured noise), ``telephone``, ``reverb``, joined with ``+``
(``reverb+snr10``), or ``long`` (``--long_join`` consecutive utterances joined into one). See
:mod:`csst_espnet.data.condition_dir`.
"""

import argparse
import logging
import sys
from typing import Optional, Sequence

from csst_espnet.data.condition_dir import condition_dir


def main(argv: Optional[Sequence[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    p = argparse.ArgumentParser(prog="python -m csst_espnet.bin.condition_dir", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src")
    p.add_argument("out")
    p.add_argument("condition")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--long_join", type=int, default=2, help="utterances joined into one by 'long'")
    args = p.parse_args(argv)
    try:
        counts = condition_dir(args.src, args.out, args.condition, seed=args.seed, long_join=args.long_join)
    except (ValueError, RuntimeError, FileNotFoundError) as e:
        print(f"condition_dir: {e}", file=sys.stderr)
        return 1
    logging.info("%s -> %s (%s): %d utterances written from %d", args.src, args.out, args.condition,
                 counts["written"], counts["utterances"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
