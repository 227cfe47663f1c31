#!/usr/bin/env python3
"""Kaldi-style data directory tools.

    python -m csst_espnet.bin.data_dir validate DIR [DIR ...] [--min_dur S] [--max_dur S]
        [--languages zh,en,cs] [--tasks asr,st] [--fs 16000] [--drop_invalid true|false]
        [--report FILE]
    python -m csst_espnet.bin.data_dir fix DIR
    python -m csst_espnet.bin.data_dir combine OUT DIR1 DIR2 ...
    python -m csst_espnet.bin.data_dir subset DIR OUT (--n N | --first N | --last N |
        --utt_list FILE | --spk_list FILE)
    python -m csst_espnet.bin.data_dir split DIR NJ
    python -m csst_espnet.bin.data_dir utt2dur DIR

``validate`` exits 1 and prints one line per problem (``DIR/FILE:LINE: utt UTT: kind:
message``) unless ``--drop_invalid true``, which removes the invalid utterances from
every file, records them with their reasons in ``DIR/dropped.txt`` and exits 0 when
what is left is valid. A ``phone_ali`` (optional) must have an entry for every utterance,
non-negative integer ids, and as many 10 ms frames as the audio has, within 2. Options take dashes or underscores alike.
"""

import argparse
import logging
import os
import sys
from typing import List, Optional, Sequence

from espnet2.utils.types import str2bool
from csst_espnet.data import kaldi_dir as kd


def _csv(v: str) -> Optional[List[str]]:
    if v.lower() in ("", "none", "any"):
        return None
    return [x for x in v.split(",") if x]


def _opt(p: argparse.ArgumentParser, name: str, **kw) -> None:
    names = [f"--{name}"]
    if "_" in name:
        names.append("--" + name.replace("_", "-"))
    p.add_argument(*names, dest=name, **kw)


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m csst_espnet.bin.data_dir",
        description="Kaldi-style data directory tools (validate, fix, combine, subset, split, utt2dur).",
    )
    sub = p.add_subparsers(dest="cmd", required=True)

    v = sub.add_parser("validate", help="check data directories (optionally drop invalid utterances)")
    v.add_argument("dir", nargs="+", help="one or more data directories")
    _opt(v, "min_dur", type=float, default=None, help="minimum duration in seconds")
    _opt(v, "max_dur", type=float, default=None, help="maximum duration in seconds")
    _opt(v, "languages", type=_csv, default=list(kd.DEFAULT_LANGUAGES),
         help="allowed utt2lang labels, comma separated ('any' for no check)")
    _opt(v, "tasks", type=_csv, default=list(kd.DEFAULT_TASKS),
         help="allowed utt2task labels, comma separated ('any' for no check)")
    _opt(v, "required", type=_csv, default=list(kd.DEFAULT_REQUIRED),
         help="files that must exist, comma separated")
    _opt(v, "fs", type=int, default=None, help="required sample rate")
    _opt(v, "check_audio", type=str2bool, default=True, help="open every audio file header")
    _opt(v, "drop_invalid", type=str2bool, default=False,
         help="remove invalid utterances from all files and list them in DIR/dropped.txt")
    _opt(v, "report", default=None, help="also write the report to this file")

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
    g.add_argument("--utt_list", "--utt-list", dest="utt_list", help="file with one utterance id per line")
    g.add_argument("--spk_list", "--spk-list", dest="spk_list", help="file with one speaker id per line")

    sp = sub.add_parser("split", help="write DIR/split{NJ}/{1..NJ}, speakers kept together")
    sp.add_argument("dir")
    sp.add_argument("nj", type=int)

    d = sub.add_parser("utt2dur", help="compute DIR/utt2dur from segments or audio headers")
    d.add_argument("dir")
    return p


def _read_list(path: str) -> List[str]:
    with open(path, encoding="utf-8") as f:
        return [line.split()[0] for line in f if line.strip()]


def main(argv: Optional[Sequence[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    args = get_parser().parse_args(argv)

    if args.cmd == "validate":
        kw = dict(min_dur=args.min_dur, max_dur=args.max_dur, languages=args.languages,
                  tasks=args.tasks, required=args.required or (), fs=args.fs,
                  check_audio=args.check_audio)
        texts, all_ok = [], True
        for dirname in args.dir:
            res = kd.validate(dirname, **kw)
            text = res.report()
            if args.drop_invalid and not res.ok:
                after, dropped = kd.clean(dirname, res, **kw)
                text += (f"\ndropped {len(dropped)} utterances (listed in {os.path.join(dirname, 'dropped.txt')})"
                         if dropped else "\nnothing dropped: dropping utterances cannot fix these problems")
                if not after.ok:
                    text += "\nstill invalid after dropping:\n" + after.report()
                res = after
            print(text, file=sys.stdout if res.ok else sys.stderr)
            texts.append(text)
            all_ok = all_ok and res.ok
        if args.report:
            os.makedirs(os.path.dirname(os.path.abspath(args.report)), exist_ok=True)
            with open(args.report, "w", encoding="utf-8") as fh:
                fh.write("\n".join(texts) + "\n")
        return 0 if all_ok else 1

    if args.cmd == "fix":
        for m in kd.fix(args.dir):
            print(m)
        print(f"{args.dir}: fixed, {len(kd.DataDir.read(args.dir))} utterances")
        return 0

    if args.cmd == "combine":
        dirs = [kd.DataDir.read(x) for x in args.dirs]
        try:
            out = kd.combine(dirs, args.dirs)
        except ValueError as e:
            print(f"combine: {e}", file=sys.stderr)
            return 1
        out.write(args.out)
        print(f"{args.out}: {len(out)} utterances from {len(dirs)} directories")
        return 0

    if args.cmd == "subset":
        d = kd.DataDir.read(args.dir)
        try:
            ids = kd.subset_ids(
                d, n=args.n, first=args.first, last=args.last,
                utt_list=_read_list(args.utt_list) if args.utt_list else None,
                spk_list=_read_list(args.spk_list) if args.spk_list else None,
            )
        except ValueError as e:
            print(f"subset: {e}", file=sys.stderr)
            return 1
        if os.path.abspath(args.out) == os.path.abspath(args.dir):
            print("subset: OUT must differ from DIR", file=sys.stderr)
            return 1
        d.subset(ids).write(args.out)
        print(f"{args.out}: {len(ids)} of {len(d)} utterances")
        return 0

    if args.cmd == "split":
        try:
            dirs, together = kd.write_split(args.dir, args.nj)
        except ValueError as e:
            print(f"split: {e}", file=sys.stderr)
            return 1
        if not together:
            logging.warning("%s: fewer speakers than %d parts; split by utterance", args.dir, args.nj)
        print(f"{os.path.join(args.dir, f'split{args.nj}')}: {len(dirs)} parts")
        return 0

    if args.cmd == "utt2dur":
        d = kd.DataDir.read(args.dir)
        durs = kd.compute_utt2dur(d)
        kd.write_table(os.path.join(args.dir, "utt2dur"), durs)
        print(f"{args.dir}/utt2dur: {len(durs)} utterances, {sum(map(float, durs.values())) / 3600:.3f} h")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
