"""Synthesise a code-switch corpus with eSpeak NG (:mod:`csst_espnet.synth.corpus`).

    python -m csst_espnet.bin.synth_corpus --out data --seed 777 --preset tiny|small|demo [--nj 2] \
        [--pair zh-en | --pair zh-en,es-en,fr-en,de-en]
"""

import argparse
import logging
import sys
from typing import Optional, Sequence

from csst_espnet.synth import corpus
from csst_espnet.synth.espeak import ESpeakError
from csst_espnet.synth.pairs import PAIRS, get_pairs

PROG = "python -m csst_espnet.bin.synth_corpus"


def pair_list(spec: str) -> str:
    """argparse type of ``--pair``: registered pairs with one target, comma-separated."""
    try:
        get_pairs(spec)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from e
    return spec


def get_parser(pair: str = "zh-en", add_help: bool = True) -> argparse.ArgumentParser:
    """The options; the size overrides ``--n_<set>`` are named after the sets of ``pair``."""
    p = argparse.ArgumentParser(prog=PROG, add_help=add_help,
                                description="Synthesise a code-switch corpus with eSpeak NG.")

    def opt(name, **kw):
        names = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
        p.add_argument(*names, dest=name, **kw)

    opt("out", default="data", help="where the data directories go")
    opt("seed", type=int, default=777, help="everything (text, speakers, audio) follows from it")
    opt("preset", choices=sorted(corpus.PRESETS), default="tiny", help="corpus size")
    opt("wav_dir", default=None, help="where the audio goes (default: OUT/../db/mini_cs/wav)")
    opt("nj", type=int, default=2, help="synthesis processes")
    opt("pair", type=pair_list, default="zh-en",
        help=f"language pair (source-target) or pairs with one target, comma-separated; of {', '.join(sorted(PAIRS))}")
    for k in corpus.preset_sizes("tiny", get_pairs(pair)):
        opt(f"n_{k}", type=int, default=None, help=f"override the preset's {k}")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    pair = get_parser(add_help=False).parse_known_args(argv)[0].pair
    args = get_parser(pair).parse_args(argv)
    sizes = {k: getattr(args, f"n_{k}") for k in corpus.preset_sizes("tiny", get_pairs(pair))}
    try:
        stats = corpus.generate(args.out, pair=pair, seed=args.seed, preset=args.preset,
                                wav_dir=args.wav_dir, nj=args.nj, sizes=sizes)
    except (ESpeakError, ValueError) as e:
        print(f"synth_corpus: {e}", file=sys.stderr)
        return 1
    corpus.log_summary(stats, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
