"""Data operations of the csst recipe on Kaldi-style directories and decoding outputs.

See docs/architecture.md (recipe); ``python -m csst_espnet.bin.recipe_utils`` runs them for
``egs2/TEMPLATE/csst1/csst.sh``.
"""

import datetime
import json
import os
import platform
from typing import Dict, List, Sequence

from csst_espnet.data import kaldi_dir as kd

DECODE_FILES = ("text", "token", "token_int", "score", "confidence", "guard")  # decode_dir.write_hyps
ASR_COPY_SUFFIX = "-asr"  # utterance ids of an ASR copy (asr_dir): the speaker prefix and Kaldi order stay


class RecipeError(ValueError):
    """A data directory or decoding output the recipe cannot use."""


def asr_dir(src: str, out: str) -> int:
    """``out`` = ``src`` as an ASR set (target ``text`` = ``src_text``, ``utt2task`` asr, ids
    ``<id>-asr``, no ``text.N``); returns the number of utterances."""
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
    """Text LM data of a data dir: ``out/mono.<lang>.txt`` (transcripts of monolingual speech) and
    ``out/pairs.tsv`` (``src_text<TAB>text`` of ST utterances); returns line counts."""
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
    """Every utterance of ``dirs`` once in ``out`` (a file only when every utterance has it); an id
    with different audio in two dirs is an error. Returns the number of utterances."""
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
    """``prefix.1.scp`` .. ``prefix.<nj>.scp``: consecutive, near-equal parts of the lines of ``scp``
    (copied as they are)."""
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


def merge_decode(keys_file: str, out: str, parts: Sequence[str], subset: bool = False) -> int:
    """Merge ``PART/1best_recog/<DECODE_FILES>`` into ``out``; every id of ``keys_file``
    must be decoded exactly once (``subset``: utterances of the parts not in it are left out). A file
    with a repeated id raises :class:`kaldi_dir.DuplicateKeyError`."""
    keys = list(kd.read_table(keys_file, unique=True))
    merged: Dict[str, Dict[str, str]] = {n: {} for n in DECODE_FILES}
    for part in parts:
        for n in DECODE_FILES:
            path = os.path.join(part, "1best_recog", n)
            if not os.path.exists(path):
                if n == "text":
                    raise RecipeError(f"{part} has no 1best_recog/text (did the job fail?)")
                continue
            for k, v in kd.read_table(path, unique=True).items():
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


def decode_cost(data_dir: str, start: float, end: float, out: str, jobs: int = 1, threads: int = 1,
                ngpu: int = 0) -> Dict:
    """The cost of decoding ``data_dir`` in ``end - start`` seconds of wall time (``jobs`` parallel
    jobs of ``threads`` threads each): utterances per second and real-time factor (wall time / audio
    duration), with the host; written to ``out`` (JSON) and returned."""
    d = kd.DataDir.read(data_dir)
    durations = kd.compute_utt2dur(d, progress=False)
    audio = sum(float(v) for v in durations.values())
    wall = end - start
    if wall <= 0 or audio <= 0:
        raise RecipeError(f"decoding of {data_dir}: wall time {wall:.3f} s, audio {audio:.3f} s: no cost to report")
    cost = {"utterances": len(durations), "audio_seconds": round(audio, 3), "wall_seconds": round(wall, 3),
            "utts_per_second": len(durations) / wall, "rtf": wall / audio, "jobs": jobs, "threads": threads,
            "ngpu": ngpu, "host": platform.node(), "cpu_count": os.cpu_count(),
            "finished": datetime.datetime.now().isoformat(timespec="seconds")}
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(cost, f, indent=1)
    return cost
