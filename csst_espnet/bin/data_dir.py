#!/usr/bin/env python3
"""Kaldi-style data directory tools.

    python -m csst_espnet.bin.data_dir validate DIR [DIR ...] [--min_dur S] [--max_dur S]
        [--languages zh,en,cs] [--tasks asr,st] [--fs 16000] [--resample true|false]
        [--max_encoder_dur S] [--max_target_tokens N --tokenizer DIR] [--train_dirs DIR,...]
        [--check_samples true|false] [--drop_invalid true|false] [--report FILE]
    python -m csst_espnet.bin.data_dir fix DIR
    python -m csst_espnet.bin.data_dir combine OUT DIR1 DIR2 ...
    python -m csst_espnet.bin.data_dir subset DIR OUT (--n N | --first N | --last N |
        --utt_list FILE | --spk_list FILE)
    python -m csst_espnet.bin.data_dir split DIR NJ
    python -m csst_espnet.bin.data_dir utt2dur DIR
    python -m csst_espnet.bin.data_dir import-manifest MANIFEST(.tsv|.jsonl) OUT --lang_pair zh-en
        [--subsets true] [--check_audio true]
    python -m csst_espnet.bin.data_dir text-pairs TSV OUT --lang zh [--speaker mt_zh]

``validate`` exits 1 and prints one line per problem (``DIR/FILE:LINE: utt UTT: kind:
message``) unless ``--drop_invalid true``, which removes the invalid utterances from
every file, records them with their reasons in ``DIR/dropped.txt`` and exits 0 when
what is left is valid. Every kind of problem (``kaldi_dir.ISSUE_KINDS``) is counted in the report's
last line. Audio at a rate other than ``--fs`` is an error, or with ``--resample true`` rewritten at
``--fs`` under ``DIR/resampled/``. With ``--train_dirs``, utterances whose speaker or source sentence
occurs in those training directories are warnings (the exit status stays 0). A ``phone_ali`` (optional) must have an entry for every utterance,
non-negative integer ids, and as many 10 ms frames as the audio has, within 2; a ``lang_ali``
(optional) the same, with language codes of ``--languages`` (not ``cs``) or ``-`` as labels; a
``word_lang`` (optional) such a label for every word of ``src_text``. Options take dashes or underscores alike.
``import-manifest`` writes the data directory of a corpus manifest (``csst_espnet.data.manifest``:
fields, and the rules for missing language labels, tasks, speakers and ids), with ``--subsets true``
also ``OUT_cs`` and ``OUT_mono``. ``text-pairs`` writes text translation examples (task ``mt``, no
audio; ``csst_espnet.data.text_pairs``).
"""

import argparse
import logging
import os
import sys
from typing import List, Optional, Sequence

from espnet2.utils.types import str2bool

from csst_espnet.data import kaldi_dir as kd
from csst_espnet.data import manifest, text_pairs
from csst_espnet.utils.cli import add_option


def _csv(v: str) -> Optional[List[str]]:
    if v.lower() in ("", "none", "any"):
        return None
    return [x for x in v.split(",") if x]


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m csst_espnet.bin.data_dir",
        description="Kaldi-style data directory tools (validate, fix, combine, subset, split, utt2dur).",
    )
    sub = p.add_subparsers(dest="cmd", required=True)

    v = sub.add_parser("validate", help="check data directories (optionally drop invalid utterances)")
    v.add_argument("dir", nargs="+", help="one or more data directories")
    add_option(v, "min_dur", type=float, default=None, help="minimum duration in seconds")
    add_option(v, "max_dur", type=float, default=None, help="maximum duration in seconds")
    add_option(v, "languages", type=_csv, default=list(kd.DEFAULT_LANGUAGES),
               help="allowed utt2lang labels, comma separated ('any' for no check)")
    add_option(v, "tasks", type=_csv, default=list(kd.DEFAULT_TASKS),
               help="allowed utt2task labels, comma separated ('any' for no check)")
    add_option(v, "required", type=_csv, default=list(kd.DEFAULT_REQUIRED),
               help="files that must exist, comma separated")
    add_option(v, "fs", type=int, default=None, help="required sample rate")
    add_option(v, "check_audio", type=str2bool, default=True, help="open every audio file header")
    add_option(v, "check_samples", type=str2bool, default=True,
               help="read every recording whole (empty, truncated, multi-channel, NaN/inf, silent audio)")
    add_option(v, "resample", type=str2bool, default=False,
               help="rewrite audio at another sample rate than --fs at --fs (DIR/resampled/) instead of refusing it")
    add_option(v, "max_encoder_dur", type=float, default=None, help="the longest audio the encoder takes (seconds)")
    add_option(v, "max_target_tokens", type=int, default=None,
               help="the decoder's limit on the target text in tokens (needs --tokenizer)")
    add_option(v, "tokenizer", default=None, help="Hugging Face tokenizer directory counting target tokens")
    add_option(v, "train_dirs", type=_csv, default=None,
               help="training directories: speakers or sentences of DIR found there are warnings")
    add_option(v, "drop_invalid", type=str2bool, default=False,
               help="remove invalid utterances from all files and list them in DIR/dropped.txt")
    add_option(v, "report", default=None, help="also write the report to this file")

    f = sub.add_parser("fix", help="sort, rebuild spk2utt, keep only ids common to all files")
    f.add_argument("dir")

    c = sub.add_parser("combine", help="combine data directories (duplicate ids are errors)")
    c.add_argument("out")
    c.add_argument("dirs", nargs="+")

    s = sub.add_parser("subset", help="a subset of a data directory")
    s.add_argument("dir")
    s.add_argument("out")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--n", type=int, help="N utterances evenly spaced over the directory")
    g.add_argument("--first", type=int, help="the first N utterances")
    g.add_argument("--last", type=int, help="the last N utterances")
    add_option(g, "utt_list", help="file with one utterance id per line")
    add_option(g, "spk_list", help="file with one speaker id per line")

    sp = sub.add_parser("split", help="write DIR/split{NJ}/{1..NJ}, speakers kept together")
    sp.add_argument("dir")
    sp.add_argument("nj", type=int)

    d = sub.add_parser("utt2dur", help="compute DIR/utt2dur from segments or audio headers")
    d.add_argument("dir")

    t = sub.add_parser("text-pairs", help="a TSV of text translation pairs -> a text-only data directory (task mt)")
    t.add_argument("tsv", help="source<TAB>target lines")
    t.add_argument("out", help="the data directory to write")
    add_option(t, "lang", required=True, help="the source language (utt2lang)")
    add_option(t, "speaker", default=None, help="pseudo speaker and id prefix (default: mt_<lang>)")

    m = sub.add_parser("import-manifest", help="a corpus manifest (TSV or JSONL) -> a data directory")
    m.add_argument("manifest", help="a .tsv (with a header row) or .jsonl file")
    m.add_argument("out", help="the data directory to write")
    add_option(m, "lang_pair", required=True, help="source-target, e.g. zh-en: the language labelling rule")
    add_option(m, "subsets", type=str2bool, default=False, help="also write OUT_cs and OUT_mono")
    add_option(m, "check_audio", type=str2bool, default=True, help="open every audio file header")
    return p


def _ids(path: Optional[str]) -> Optional[List[str]]:
    """The first column of a list file, in order, repeats kept."""
    return [key for _, key, _ in kd.read_raw(path).rows] if path else None


def validate(args: argparse.Namespace) -> int:
    kw = dict(min_dur=args.min_dur, max_dur=args.max_dur, languages=args.languages, tasks=args.tasks,
              required=args.required or (), fs=args.fs, check_audio=args.check_audio,
              check_samples=args.check_samples, max_encoder_dur=args.max_encoder_dur,
              max_target_tokens=args.max_target_tokens, tokenizer=args.tokenizer, train_dirs=args.train_dirs or ())
    if args.resample and args.fs is None:
        print("validate: --resample true needs --fs", file=sys.stderr)
        return 1
    if args.max_target_tokens is not None and args.tokenizer is None:
        print("validate: --max_target_tokens needs --tokenizer", file=sys.stderr)
        return 1
    texts, all_ok = [], True
    for dirname in args.dir:
        res, text = kd.check(dirname, args.drop_invalid, args.resample, **kw)
        print(text, file=sys.stdout if res.ok else sys.stderr)
        texts.append(text)
        all_ok = all_ok and res.ok
    if args.report:
        os.makedirs(os.path.dirname(os.path.abspath(args.report)), exist_ok=True)
        with open(args.report, "w", encoding="utf-8") as fh:
            fh.write("\n".join(texts) + "\n")
    return 0 if all_ok else 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    args = get_parser().parse_args(argv)
    if args.cmd == "validate":
        return validate(args)
    if args.cmd == "fix":
        for m in kd.fix(args.dir):
            print(m)
        print(f"{args.dir}: fixed, {len(kd.DataDir.read(args.dir))} utterances")
    elif args.cmd == "utt2dur":
        durs = kd.write_utt2dur(args.dir)
        print(f"{args.dir}/utt2dur: {len(durs)} utterances, {sum(map(float, durs.values())) / 3600:.3f} h")
    try:  # the errors of combine, subset, split and import-manifest are messages
        if args.cmd == "import-manifest":
            summary = manifest.import_manifest(args.manifest, args.out, args.lang_pair, args.subsets, args.check_audio)
            print(f"{args.out}: {summary}")
        elif args.cmd == "text-pairs":
            d = text_pairs.text_pair_dir(args.tsv, args.lang, args.speaker)
            d.write(args.out)
            print(f"{args.out}: {len(d.utt_ids())} text translation examples ({args.lang} -> text, task mt)")
        elif args.cmd == "combine":
            print(f"{args.out}: {kd.write_combined(args.out, args.dirs)} utterances from {len(args.dirs)} directories")
        elif args.cmd == "subset":
            n, total = kd.write_subset(args.dir, args.out, n=args.n, first=args.first, last=args.last,
                                       utt_list=_ids(args.utt_list), spk_list=_ids(args.spk_list))
            print(f"{args.out}: {n} of {total} utterances")
        elif args.cmd == "split":
            dirs, together = kd.write_split(args.dir, args.nj)
            if not together:
                logging.warning("%s: fewer speakers than %d parts; split by utterance", args.dir, args.nj)
            print(f"{os.path.join(args.dir, f'split{args.nj}')}: {len(dirs)} parts")
    except (ValueError, FileNotFoundError) as e:
        print(f"{args.cmd}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
