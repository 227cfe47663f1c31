#!/usr/bin/env python3
"""Translate the gold source transcripts of test sets with the text LM: the speech-free upper bound.

    python -m csst_espnet.bin.text_lm_oracle --model_dir exp/text_lm \\
        --data_dir dump/raw/test_cs --data_dir dump/raw/test_mono \\
        --out_dir exp/text_lm_oracle/gold_transcripts

The stage-6 LLM reads each ST utterance's ``src_text`` (instead of its speech) after the same
prompt the speech model gets, and translates it greedily. ``OUT_DIR/<set>/text`` holds the
translations in Kaldi text format, so that stage 14 scores them like any decoding; a speech model
cannot be expected to do better than its LLM on the exact transcript.

The prompt's source language is the utterance's ``utt2lang`` label; utterances whose ``utt2task``
is ``asr`` are skipped. The prompt options are those the text LM was trained with
(``train_text_lm.json`` in ``--model_dir``).
"""

import argparse
import logging
import sys
from functools import partial
from typing import Optional, Sequence

from csst_espnet.inference.text_lm_oracle import run_oracle
from csst_espnet.utils.cli import add_option


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m csst_espnet.bin.text_lm_oracle", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    opt = partial(add_option, p)
    opt("model_dir", required=True, help="output directory of csst_espnet.bin.train_text_lm (stage 6)")
    opt("data_dir", required=True, action="append", help="test set with src_text and utt2lang (repeat)")
    opt("out_dir", required=True, help="writes OUT_DIR/<set>/text")
    opt("batch_size", type=int, default=64)
    opt("max_new_tokens", type=int, default=64)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    args = get_parser().parse_args(argv)
    try:
        run_oracle(args.model_dir, args.data_dir, args.out_dir, args.batch_size, args.max_new_tokens)
    except (ValueError, FileNotFoundError, OSError) as e:
        print(f"text_lm_oracle: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
