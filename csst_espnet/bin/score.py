#!/usr/bin/env python3
"""Score ST or ASR hypotheses per CS / monolingual / all subsets.

    python -m csst_espnet.bin.score --hyp exp/.../text --ref data/test_cs/text \\
        [--ref data/test_cs/text.2 ...] --task st|asr --tgt_lang en|zh \\
        [--utt2lang data/test_cs/utt2lang] [--src_text data/test_cs/src_text] \\
        [--word_lang data/test_cs/word_lang] [--allow_missing false] [--confidence FILE] [--guard FILE] \\
        [--out_json FILE]

ST: BLEU and chrF (sacrebleu; tokenizer ``zh`` for Chinese targets, ``13a``
otherwise; the signatures are printed and stored). ASR: WER (words), CER
(characters), MER (CJK characters + English words) with the MER split by token
language, computed after lower-casing and removing punctuation (``--normalize
false`` to score raw text). Both: English-word recall on code-switch utterances
(English words of ``src_text`` — by default the ``src_text`` beside the first
reference for ST, the reference itself for ASR — found in the hypothesis): the words
``word_lang`` labels ``en`` (by default the ``word_lang`` beside those transcripts),
else every Latin-script word (right for zh-en only; the output says which); and the
off-target-language rate with its count per language (by script, and by function
words and accents for English, Spanish, French and German). Hyp and ref files are
Kaldi ``utt text`` files; a reference utterance without hypothesis is an error unless
``--allow_missing true``.
The decoder's ``confidence`` and ``guard`` files beside the hypotheses (or given) add
the score of the least confident tenth vs the rest and the count of hypotheses each
runaway guard ended.
"""

import argparse
import json
import logging
import os
import sys
from typing import Optional, Sequence

from espnet2.utils.types import str2bool

from csst_espnet.data import kaldi_dir
from csst_espnet.data.kaldi_dir import DuplicateKeyError, read_table
from csst_espnet.metrics import scoring
from csst_espnet.utils.cli import add_option


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m csst_espnet.bin.score",
                                description="BLEU/chrF or WER/CER/MER per CS / mono / all subsets.")
    add_option(p, "hyp", required=True, help="hypotheses, Kaldi text format")
    add_option(p, "ref", required=True, action="append", help="references (repeat for several)")
    add_option(p, "task", choices=["st", "asr"], required=True)
    add_option(p, "tgt_lang", default=None, help="target language (en, zh...); required for st")
    add_option(p, "utt2lang", default=None, help="utt2lang file giving the cs / mono subsets")
    add_option(p, "src_text", default=None,
               help="source transcripts for the English-word recall ('none' to disable); "
                    "default for st: src_text beside the first reference")
    add_option(p, "word_lang", default=None,
               help="language of every word of the transcripts ('none': the script rule); "
                    "default: word_lang beside the transcripts if there")
    add_option(p, "tokenize", default=None, help="override sacrebleu's tokenizer")
    add_option(p, "normalize", type=str2bool, default=True, help="lower-case and strip punctuation for error rates")
    add_option(p, "allow_missing", type=str2bool, default=False, help="count missing hypotheses as empty")
    add_option(p, "confidence", default=None,
               help="per-utterance confidence ('none' to skip); default: confidence beside --hyp if there")
    add_option(p, "guard", default=None, help="per-utterance runaway guard ('none' to skip); default: guard beside --hyp")
    add_option(p, "out_json", default=None, help="write the result as JSON")
    return p


def _beside_hyp(hyp: str, given: Optional[str], name: str) -> Optional[str]:
    """``given`` ('none': None), else the file ``name`` beside the hypotheses when there is one."""
    if given is not None:
        return None if given.lower() == "none" else given
    path = os.path.join(os.path.dirname(os.path.abspath(hyp)), name)
    return path if os.path.exists(path) else None


def main(argv: Optional[Sequence[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    args = get_parser().parse_args(argv)
    try:
        hyp = read_table(args.hyp, unique=True)
        refs = [read_table(r, unique=True) for r in args.ref]
        utt2lang = read_table(args.utt2lang, unique=True) if args.utt2lang else None
        src_path = args.src_text
        if src_path is None and args.task == "st":
            src_path = scoring.default_src_text(args.ref[0])
        if src_path is not None and src_path.lower() == "none":
            src_path = None
        src = read_table(src_path, unique=True) if src_path else None
        transcripts = src_path or (args.ref[0] if args.task == "asr" else None)
        word_lang_path = args.word_lang
        if word_lang_path is None and transcripts is not None:
            word_lang_path = os.path.join(os.path.dirname(os.path.abspath(transcripts)), kaldi_dir.WORD_LANG)
            word_lang_path = word_lang_path if os.path.exists(word_lang_path) else None
        if word_lang_path is not None and word_lang_path.lower() == "none":
            word_lang_path = None
        word_lang = read_table(word_lang_path, unique=True) if word_lang_path else None
        extra = {name: _beside_hyp(args.hyp, getattr(args, name), name) for name in ("confidence", "guard")}
        confidence = None
        if extra["confidence"]:
            table = read_table(extra["confidence"], unique=True)
            try:
                confidence = {u: float(v) for u, v in table.items()}
            except ValueError as e:
                raise scoring.ScoringError(f"{extra['confidence']}: not a number: {e}") from e
        guards = read_table(extra["guard"], unique=True) if extra["guard"] else None
        res = scoring.score(hyp, refs, task=args.task, tgt_lang=args.tgt_lang, utt2lang=utt2lang,
                            src_text=src, allow_missing=args.allow_missing, tokenize=args.tokenize,
                            normalize=args.normalize, confidence=confidence, guards=guards, word_lang=word_lang)
    except scoring.ScoringError as e:
        where = f" ({word_lang_path})" if word_lang_path and str(e).startswith("word_lang") else ""
        print(f"score: {e}{where}", file=sys.stderr)
        return 1
    except (DuplicateKeyError, FileNotFoundError) as e:
        print(f"score: {e}", file=sys.stderr)
        return 1
    res.update(hyp=args.hyp, refs=args.ref, utt2lang=args.utt2lang, src_text=src_path, word_lang=word_lang_path)
    if res["missing_hyps"]:
        logging.warning("%d utterances have no hypothesis; counted as empty", len(res["missing_hyps"]))
    if res["extra_hyps"]:
        logging.warning("%d hypotheses have no reference; ignored", res["extra_hyps"])
    for name, sig in res.get("signatures", {}).items():
        print(f"{name} signature: {sig}")
    print(scoring.format_table(res))
    if any("en_words_by" in s for s in res["subsets"].values()):
        print("English words of the recall: " + (f"labelled en in {word_lang_path}" if word_lang is not None else
                                                 "every Latin-script word of the transcripts (script rule: "
                                                 "right for zh-en, not for Latin-script sources; give word_lang)"))
    for name, s in res["subsets"].items():
        if s.get("off_target_langs"):
            print(f"off-target hypotheses ({name}): "
                  + ", ".join(f"{lang} {n}" for lang, n in s["off_target_langs"].items()))
    if "guards" in res:
        print("hypotheses ended by a runaway guard: " + (", ".join(f"{g} {n}" for g, n in sorted(res["guards"].items()))
                                                         or "none"))
    if "confidence" in res:
        c = res["confidence"]
        metric = "BLEU" if args.task == "st" else "WER"
        print(f"{metric} of the least confident {c['low']['num_utts']} (confidence <= {c['threshold']:.3f}) / "
              f"the other {c['rest']['num_utts']}: " + " / ".join(
                  f"{c[k][metric.lower()]:.2f}" if metric.lower() in c[k] else "-" for k in ("low", "rest")))
    if args.out_json:
        os.makedirs(os.path.dirname(os.path.abspath(args.out_json)), exist_ok=True)
        with open(args.out_json, "w", encoding="utf-8") as f:
            json.dump(res, f, indent=1, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
