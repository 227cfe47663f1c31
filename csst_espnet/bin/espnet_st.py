#!/usr/bin/env python3
"""Inputs of ESPnet's own ST model, the baseline of ``csst.sh --baselines espnet_st`` (stages 7-8).

    python -m csst_espnet.bin.espnet_st prepare OUT DIR [DIR ...]
        The speech-translation utterances (utt2task st) of the DIRs in OUT: wav.scp, text (the
        translation), utt2spk, utt2lang, and src_text (the transcript) when every utterance has one.
        Prints ``OUT: N utterances, src_text yes|no``.
    python -m csst_espnet.bin.espnet_st bpe KALDI_TEXT OUT_DIR VOCAB_SIZE
        A sentencepiece unigram model OUT_DIR/bpe.model of KALDI_TEXT's text (the vocabulary is
        capped at what the text allows; OUT_DIR/bpe.log says so). The token list is written by
        ``espnet2.bin.tokenize_text``.
    python -m csst_espnet.bin.espnet_st shapes STATS_DIR NAME=TOKEN_LIST [NAME=TOKEN_LIST ...]
        STATS_DIR/{train,valid}/NAME_shape.bpe (``length,vocabulary size``) from the NAME_shape files
        of ``espnet2.bin.st_train --collect_stats true``.
"""

import argparse
import sys
from typing import Optional, Sequence

from csst_espnet.data.kaldi_dir import DuplicateKeyError
from csst_espnet.recipe import espnet_st
from csst_espnet.recipe.data_ops import RecipeError


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m csst_espnet.bin.espnet_st", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("prepare")
    s.add_argument("out")
    s.add_argument("dirs", nargs="+")
    s = sub.add_parser("bpe")
    s.add_argument("text")
    s.add_argument("out_dir")
    s.add_argument("vocab_size", type=int)
    s = sub.add_parser("shapes")
    s.add_argument("stats_dir")
    s.add_argument("token_lists", nargs="+", help="NAME=TOKEN_LIST")
    return p


def run(args: argparse.Namespace) -> str:
    if args.cmd == "prepare":
        info = espnet_st.prepare_dir(args.out, args.dirs)
        line = f"{args.out}: {info['utts']} utterances, src_text {'yes' if info['src_text'] else 'no'}"
        if not info["src_text"] and info["without_src_text"]:
            line += f" (no transcript for e.g. {' '.join(info['without_src_text'])})"
        return line
    if args.cmd == "bpe":
        return espnet_st.train_bpe(args.text, args.out_dir, args.vocab_size)
    lists = {}
    for item in args.token_lists:
        if "=" not in item:
            raise RecipeError(f"expected NAME=TOKEN_LIST, got {item!r}")
        name, path = item.split("=", 1)
        lists[name] = path
    return " ".join(espnet_st.shape_files(args.stats_dir, lists))


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    try:
        print(run(args))
    except (RecipeError, DuplicateKeyError, FileNotFoundError) as e:
        print(f"espnet_st {args.cmd}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
