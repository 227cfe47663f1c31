#!/usr/bin/env python3
"""Train a sentencepiece model on corpus text and save it as a Hugging Face tokenizer directory.

    python -m csst_espnet.bin.make_tokenizer --out_dir data/tokenizer --vocab_size 800 \\
        --text data/lm_text/zh.txt --text data/lm_text/en.txt --tsv data/lm_text/zh2en.tsv \\
        --kaldi_text dump/raw/train_cs/text --kaldi_text dump/raw/train_cs/src_text

Inputs: ``--text`` plain text (one sentence a line), ``--tsv`` tab-separated columns (every column a
sentence), ``--kaldi_text`` Kaldi ``utt text`` files (the id column is dropped). Repeat each as needed.

``OUT_DIR`` gets a fast ``LlamaTokenizer`` converted from a sentencepiece BPE model (``tokenizer.json``,
``tokenizer_config.json``; ``<unk>`` 0, ``<s>`` 1, ``</s>`` 2, ``<pad>`` 3), the model ``spm.model`` /
``spm.vocab`` and ``make_tokenizer.json`` (options and checks); see ``csst_espnet.text.tokenizer``.
The command fails naming the first input sentence that does not decode back unchanged.

``--han_chars true`` makes every Han character its own piece (sentencepiece user-defined symbols, never
merged), as code-switch ASR practice tokenizes Mandarin by character and English by subword: the BPE
merges then all go to the other scripts, so English terms become whole pieces.
"""

import argparse
import logging
import sys
from functools import partial
from typing import Optional, Sequence

from espnet2.utils.types import str2bool

from csst_espnet.text import tokenizer
from csst_espnet.utils.cli import add_option


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m csst_espnet.bin.make_tokenizer", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)

    opt = partial(add_option, p)

    opt("out_dir", required=True, help="Hugging Face tokenizer directory to write")
    opt("text", action="append", default=[], help="plain text file, one sentence a line")
    opt("tsv", action="append", default=[], help="tab-separated file, every column a sentence")
    opt("kaldi_text", action="append", default=[], help="Kaldi 'utt text' file")
    opt("vocab_size", type=int, default=800)
    opt("model_type", default="bpe", choices=["bpe"])
    opt("character_coverage", type=float, default=1.0)
    opt("seed", type=int, default=0)
    opt("han_chars", type=str2bool, default=False,
        help="every Han character is its own piece, never merged (Mandarin by character, BPE elsewhere)")
    opt("prompt_repeat", type=int, default=300,
        help="add the default prompt instructions this many times to the training text (0: none)")
    opt("target_language", default="en", help="target language named in the prompt instructions")
    opt("languages", default="zh,en,cs", help="source languages named in the prompt instructions")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    args = get_parser().parse_args(argv)
    try:
        sentences = tokenizer.read_sentences(args.text, args.tsv, args.kaldi_text)
        if not sentences:
            raise ValueError("no text in the inputs (give --text, --tsv or --kaldi_text)")
        if args.prompt_repeat > 0:
            langs = [x for x in args.languages.split(",") if x]
            sentences += tokenizer.prompt_sentences(args.target_language, langs, args.prompt_repeat)
        _, info = tokenizer.make_tokenizer(args.out_dir, sentences, args.vocab_size, args.model_type,
                                           args.character_coverage, args.seed, han_chars=args.han_chars)
    except (RuntimeError, ValueError) as e:
        print(f"make_tokenizer: {e}", file=sys.stderr)
        return 1
    logging.info("%s: vocabulary %d, %.1f tokens per sentence over %d sentences; round trip ok",
                 args.out_dir, info["vocab_size"], info["tokens_per_sentence"], info["sentences"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
