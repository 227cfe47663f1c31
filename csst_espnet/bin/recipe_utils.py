#!/usr/bin/env python3
"""Small data and file operations of the csst recipe pipeline (``egs2/TEMPLATE/csst1/csst.sh``).

    python -m csst_espnet.bin.recipe_utils asr_dir SRC OUT
        OUT = SRC as an ASR set: target ``text`` = ``src_text``, ``utt2task`` = asr, utterance ids
        ``<id>-asr`` (so that a set and its ASR copy decode in one job array); extra translation
        references ``text.N`` are left out; the audio, and so ``phone_ali``, are the same.
    python -m csst_espnet.bin.recipe_utils lm_text DIR OUT
        Text of a data dir for the text LM: ``OUT/mono.<lang>.txt``, the transcripts of the
        utterances whose speech is in one language <lang> (``text`` of ASR, ``src_text`` of ST
        utterances; code-switched ``cs`` ones have none), and ``OUT/pairs.tsv``
        (``src_text<TAB>text`` of ST utterances).
    python -m csst_espnet.bin.recipe_utils union_dir OUT DIR [DIR ...]
        Every utterance of the DIRs once (wav.scp, text, utt2lang, utt2task, utt2spk, phone_ali; a
        file only when every utterance has it); an id with different audio in two DIRs is an error.
    python -m csst_espnet.bin.recipe_utils split_keys SCP NJ PREFIX
        PREFIX.1.scp .. PREFIX.NJ.scp: consecutive, near-equal parts of SCP's lines.
    python -m csst_espnet.bin.recipe_utils merge_decode [--subset] KEYS OUT PART [PART ...]
        Merge ``PART/1best_recog/{text,token,token_int,score}`` into ``OUT/``; every id of KEYS
        must be decoded exactly once (``--subset``: the parts may hold more utterances, which are
        left out).
    python -m csst_espnet.bin.recipe_utils yaml2args FILE
        ``--key value`` options from a YAML mapping (lists repeat the option).
    python -m csst_espnet.bin.recipe_utils config_get FILE KEY[.SUBKEY]
        A value of a YAML config (empty when absent).
    python -m csst_espnet.bin.recipe_utils trained_tasks CONFIG
        The tasks (asr, st) of a model's training data, from its training config.yaml (stage 13
        decodes the ASR copies of the test sets only with models that trained on ASR).
"""

import argparse
import os
import sys
from typing import Dict, List, Optional, Sequence

import yaml

from csst_espnet.data import kaldi_dir as kd

DECODE_FILES = ("text", "token", "token_int", "score")
ASR_COPY_SUFFIX = "-asr"  # utterance ids of an ASR copy (asr_dir): the speaker prefix and Kaldi order stay


class RecipeError(ValueError):
    pass


def asr_dir(src: str, out: str) -> int:
    d = kd.DataDir.read(src)
    if "src_text" not in d.utt:
        raise RecipeError(f"{src} has no src_text to make an ASR set from")
    bad = [u for u in d.utt_ids() if not d.utt["src_text"].get(u, "").strip()]
    if bad:
        raise RecipeError(f"{src}/src_text: no transcript for {len(bad)} utterances: {' '.join(bad[:5])}"
                          + (" ..." if len(bad) > 5 else ""))
    d.utt["text"] = dict(d.utt["src_text"])
    d.utt["utt2task"] = {u: "asr" for u in d.utt["text"]}
    for name in [n for n in d.utt if n.startswith("text.")]:
        del d.utt[name]
    d.utt = {name: {u + ASR_COPY_SUFFIX: v for u, v in table.items()} for name, table in d.utt.items()}
    d.write(out)
    return len(d)


def lm_text(src: str, out: str) -> Dict[str, int]:
    d = kd.DataDir.read(src)
    text = d.utt.get("text", {})
    src_text = d.utt.get("src_text", {})
    lang = d.utt.get("utt2lang", {})
    task = d.utt.get("utt2task", {})
    mono: Dict[str, List[str]] = {}
    pairs: List[str] = []
    for u in d.utt_ids():
        if u not in text:
            continue
        lg, tk = lang.get(u), task.get(u, "st")
        if tk == "asr":
            if lg:
                mono.setdefault(lg, []).append(text[u])
        else:
            if u in src_text and "\t" not in src_text[u] + text[u]:
                pairs.append(f"{src_text[u]}\t{text[u]}")
            if lg and lg != "cs" and u in src_text:
                mono.setdefault(lg, []).append(src_text[u])
    os.makedirs(out, exist_ok=True)
    counts = {}
    for lg, lines in mono.items():
        with open(os.path.join(out, f"mono.{lg}.txt"), "w", encoding="utf-8") as f:
            f.write("".join(x + "\n" for x in lines))
        counts[f"mono.{lg}"] = len(lines)
    with open(os.path.join(out, "pairs.tsv"), "w", encoding="utf-8") as f:
        f.write("".join(x + "\n" for x in pairs))
    counts["pairs"] = len(pairs)
    return counts


def union_dir(out: str, dirs: Sequence[str]) -> int:
    names = ("wav.scp", "text", "utt2lang", "utt2task", "utt2spk", kd.PHONE_ALI)
    union: Dict[str, Dict[str, str]] = {n: {} for n in names}
    origin: Dict[str, str] = {}
    for dirname in dirs:
        d = kd.DataDir.read(dirname)
        if d.has_segments:
            raise RecipeError(f"{dirname} has segments: format it (stage 3) first")
        for u in d.utt_ids():
            wav = d.utt.get("wav.scp", {}).get(u)
            if wav is None:
                raise RecipeError(f"{dirname}: utterance {u} has no wav.scp entry")
            if u in origin:
                if union["wav.scp"][u] != wav:
                    raise RecipeError(f"utterance {u} has different audio in {origin[u]} and {dirname}")
                continue
            origin[u] = dirname
            for n in names:
                if u in d.utt.get(n, {}):
                    union[n][u] = d.utt[n][u]
    os.makedirs(out, exist_ok=True)
    for n in names:
        if len(union[n]) == len(origin):
            kd.write_table(os.path.join(out, n), union[n])
        elif os.path.exists(os.path.join(out, n)):
            os.remove(os.path.join(out, n))
    return len(origin)


def split_keys(scp: str, nj: int, prefix: str) -> List[str]:
    with open(scp, encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]
    if nj < 1:
        raise RecipeError("NJ must be >= 1")
    if nj > len(lines):
        raise RecipeError(f"cannot split {len(lines)} lines of {scp} into {nj} parts")
    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    paths = []
    for j in range(nj):
        part = lines[(j * len(lines)) // nj : ((j + 1) * len(lines)) // nj]
        path = f"{prefix}.{j + 1}.scp"
        with open(path, "w", encoding="utf-8") as f:
            f.write("".join(part))
        paths.append(path)
    return paths


def _read_lines(path: str) -> Dict[str, str]:
    out: Dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            key, _, value = line.partition(" ")
            if key in out:
                raise RecipeError(f"{path}: utterance {key} appears twice")
            out[key] = value
    return out


def merge_decode(keys_file: str, out: str, parts: Sequence[str], subset: bool = False) -> int:
    keys = list(_read_lines(keys_file))
    merged: Dict[str, Dict[str, str]] = {n: {} for n in DECODE_FILES}
    for part in parts:
        for n in DECODE_FILES:
            path = os.path.join(part, "1best_recog", n)
            if not os.path.exists(path):
                if n == "text":
                    raise RecipeError(f"{part} has no 1best_recog/text (did the job fail?)")
                continue
            for k, v in _read_lines(path).items():
                if k in merged[n]:
                    raise RecipeError(f"utterance {k} was decoded twice (in {part})")
                merged[n][k] = v
    missing = [k for k in keys if k not in merged["text"]]
    if missing:
        raise RecipeError(f"{len(missing)} utterances were not decoded, e.g. {' '.join(missing[:5])}")
    wanted = set(keys)
    if subset:  # the parts decoded more sets; keep the utterances of KEYS
        merged = {n: {k: v for k, v in t.items() if k in wanted} for n, t in merged.items()}
    extra = [k for k in merged["text"] if k not in wanted]
    if extra:
        raise RecipeError(f"{len(extra)} decoded utterances are not in {keys_file}, e.g. {extra[0]}")
    os.makedirs(out, exist_ok=True)
    for n, table in merged.items():
        if table:
            kd.write_table(os.path.join(out, n), table)
    return len(keys)


def yaml2args(path: str) -> List[str]:
    with open(path, encoding="utf-8") as f:
        conf = yaml.safe_load(f) or {}
    if not isinstance(conf, dict):
        raise RecipeError(f"{path}: expected a mapping of options")
    args: List[str] = []
    for key, value in conf.items():
        values = value if isinstance(value, list) else [value]
        for v in values:
            if v is None:
                continue
            text = ("true" if v else "false") if isinstance(v, bool) else str(v)
            if not text or any(c.isspace() for c in text):
                raise RecipeError(f"{path}: option {key}: value {text!r} is empty or contains spaces")
            args += [f"--{key}", text]
    return args


def config_get(path: str, key: str) -> str:
    with open(path, encoding="utf-8") as f:
        value = yaml.safe_load(f) or {}
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return ""
        value = value[part]
    return "" if value is None else str(value)


def trained_tasks(path: str) -> List[str]:
    """Tasks (asr, st) of a model's training data, from its training config: the values of the
    ``task`` data file, or ``preprocessor_conf.default_task`` when the data has none."""
    with open(path, encoding="utf-8") as f:
        conf = yaml.safe_load(f) or {}
    for entry in conf.get("train_data_path_and_name_and_type") or []:
        if len(entry) == 3 and entry[1] == "task":
            return sorted(set(_read_lines(entry[0]).values()))
    return [(conf.get("preprocessor_conf") or {}).get("default_task", "st")]


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m csst_espnet.bin.recipe_utils", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("asr_dir"); s.add_argument("src"); s.add_argument("out")
    s = sub.add_parser("lm_text"); s.add_argument("src"); s.add_argument("out")
    s = sub.add_parser("union_dir"); s.add_argument("out"); s.add_argument("dirs", nargs="+")
    s = sub.add_parser("split_keys"); s.add_argument("scp"); s.add_argument("nj", type=int); s.add_argument("prefix")
    s = sub.add_parser("merge_decode"); s.add_argument("--subset", action="store_true"); s.add_argument("keys"); s.add_argument("out"); s.add_argument("parts", nargs="+")
    s = sub.add_parser("yaml2args"); s.add_argument("file")
    s = sub.add_parser("config_get"); s.add_argument("file"); s.add_argument("key")
    s = sub.add_parser("trained_tasks"); s.add_argument("file")
    args = p.parse_args(argv)
    try:
        if args.cmd == "asr_dir":
            print(f"{args.out}: {asr_dir(args.src, args.out)} utterances (ASR targets from {args.src}/src_text)")
        elif args.cmd == "lm_text":
            print(f"{args.out}: {lm_text(args.src, args.out)}")
        elif args.cmd == "union_dir":
            print(f"{args.out}: {union_dir(args.out, args.dirs)} utterances from {len(args.dirs)} directories")
        elif args.cmd == "split_keys":
            split_keys(args.scp, args.nj, args.prefix)
        elif args.cmd == "merge_decode":
            print(f"{args.out}: {merge_decode(args.keys, args.out, args.parts, args.subset)} utterances decoded")
        elif args.cmd == "yaml2args":
            print(" ".join(yaml2args(args.file)))
        elif args.cmd == "config_get":
            print(config_get(args.file, args.key))
        elif args.cmd == "trained_tasks":
            print(" ".join(trained_tasks(args.file)))
    except (RecipeError, FileNotFoundError) as e:
        print(f"recipe_utils {args.cmd}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
