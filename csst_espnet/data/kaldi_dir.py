"""Kaldi-style data directories: read, write, validate, fix, combine, subset, split.

Convention of this project: every file is sorted in ``LC_ALL=C`` byte order by its
first column, ids are unique, utterance ids start with their speaker id.

Per-utterance files (first column = utterance id): ``wav.scp`` (when there is no
``segments``), ``segments``, ``utt2spk``, ``text`` and extra references
``text.2``, ``text.3``..., ``src_text``, ``utt2lang``, ``utt2task``, ``utt2dur``
and any other ``utt2*`` file, and the optional frame alignments, one label per 10 ms frame
(``ceil(duration / 10 ms)`` frames, the last one possibly partial): ``phone_ali``, integer
phone ids, and ``lang_ali``, language codes of the task's languages (never ``cs``) or ``-``
for an unlabelled frame (silence, unknown). The optional ``word_lang`` gives the language of every
word (whitespace-separated token) of ``src_text``, one code per word (never ``cs``; ``-`` for none):
what the scorer's English-word recall counts on code-switched utterances of Latin-script pairs (es-en).
``spk2utt`` is derived from ``utt2spk``.
Per-recording files (with ``segments``): ``wav.scp``, ``reco2dur``,
``reco2file_and_channel``. Per-speaker: ``spk2gender``.

Python's ``str`` order equals the byte order of UTF-8 text, which is what
``LC_ALL=C sort`` uses, so sorting keys with ``sorted`` matches the shell tools.
"""

import logging
import math
import os
import re
import shutil
import unicodedata
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

from tqdm import tqdm

from csst_espnet.data.audio import audio_info, inspect_audio

TASKS = ("asr", "st", "mt")  # utt2task labels; mt: text translation, the source text in place of the speech
TEXT_TASKS = ("mt",)  # tasks whose examples have no speech
DEFAULT_LANGUAGES = ("zh", "en", "es", "cs")
DEFAULT_TASKS = TASKS
DEFAULT_REQUIRED = ("wav.scp", "utt2spk", "text", "utt2lang", "utt2task")
RECO_FILES = ("reco2dur", "reco2file_and_channel")
SPK_FILES = ("spk2gender",)
DERIVED_FILES = ("spk2utt",)
# files a tool writes next to the data that are not data
NOT_DATA = ("dropped.txt", "validate_report.txt", "frame_shift", "feats_type", "audio_format")
PHONE_ALI = "phone_ali"
LANG_ALI = "lang_ali"
FRAME_ALIGNMENTS = (PHONE_ALI, LANG_ALI)  # one label per 10 ms frame of the audio
UNLABELLED_FRAME = "-"  # lang_ali label of a frame without a language
WORD_LANG = "word_lang"  # the language of each word of src_text
CODE_SWITCH = "cs"  # utt2lang of code-switched speech: never a frame's language
ALI_FRAMES_PER_SECOND = 100  # alignment frames: 10 ms
ALI_TOLERANCE = 2  # frames an alignment may differ from its audio's duration
# what only speech has: a text-only utterance (a TEXT_TASKS example: src_text -> text) has none of these
SPEECH_FILES = ("wav.scp", "segments", "utt2dur", "utt2num_samples", "utt2voice", PHONE_ALI, LANG_ALI)
_TEXT_FILE = re.compile(r"^(src_)?text(\.\d+)?$")


def is_text_file(name: str) -> bool:
    return bool(_TEXT_FILE.match(name))


def is_utt_file(name: str, has_segments: bool) -> bool:
    if name == "wav.scp":
        return not has_segments
    if name in ("segments", "feats.scp", WORD_LANG) or name in FRAME_ALIGNMENTS or is_text_file(name):
        return True
    return name.startswith("utt2")


def ali_num_frames(num_samples: int, rate: int) -> int:
    """Frames of the alignment (phone_ali, lang_ali) of ``num_samples`` at ``rate``: ceil(duration / 10 ms)."""
    return -(-num_samples * ALI_FRAMES_PER_SECOND // rate)


def resample_ali(ids: Sequence[str], num_frames: int) -> List[str]:
    """An alignment stretched to ``num_frames`` (e.g. after speed perturbation): frame j takes
    the label of frame ``floor((j + 0.5) * len(ids) / num_frames)``."""
    return [ids[min(len(ids) - 1, (2 * j + 1) * len(ids) // (2 * num_frames))] for j in range(num_frames)]


def sort_key(key: str) -> bytes:
    """LC_ALL=C order of a key."""
    return key.encode("utf-8", "surrogateescape")


@dataclass
class RawFile:
    """A file as read: ordered (line number, key, value) rows."""

    name: str
    rows: List[Tuple[int, str, str]] = field(default_factory=list)
    blank_lines: List[int] = field(default_factory=list)
    cr_lines: List[int] = field(default_factory=list)  # lines that ended in CR (CRLF files), CR removed

    def as_dict(self) -> "OrderedDict[str, str]":
        out: "OrderedDict[str, str]" = OrderedDict()
        for _, k, v in self.rows:
            out.setdefault(k, v)
        return out

    def line_of(self, key: str) -> Optional[int]:
        for n, k, _ in self.rows:
            if k == key:
                return n
        return None


def read_raw(path: str) -> RawFile:
    raw = RawFile(os.path.basename(path))
    # newline="\n": a CR is data, reported by validate, not a line break
    with open(path, encoding="utf-8", errors="surrogateescape", newline="\n") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if line.endswith("\r"):
                raw.cr_lines.append(n)
                line = line.rstrip("\r")
            if not line.strip():
                raw.blank_lines.append(n)
                continue
            parts = line.strip().split(maxsplit=1)
            key = parts[0]
            value = parts[1].strip() if len(parts) > 1 else ""
            raw.rows.append((n, key, value))
    return raw


class DuplicateKeyError(ValueError):
    """A key that appears twice in a table read with ``unique=True``."""


def read_table(path: str, unique: bool = False) -> "OrderedDict[str, str]":
    """``key value`` file as a dict in file order; a line with only a key has the value "".

    Blank lines are skipped. A repeated key: the first occurrence wins, or with ``unique`` a
    :class:`DuplicateKeyError` naming the file and line.
    """
    raw = read_raw(path)
    if unique:
        seen: Dict[str, int] = {}
        for n, key, _ in raw.rows:
            if key in seen:
                raise DuplicateKeyError(f"{path}:{n}: duplicate key {key} (first on line {seen[key]})")
            seen[key] = n
    return raw.as_dict()


def write_table(path: str, table: Dict[str, str]) -> None:
    """Write ``key value`` lines sorted in C byte order."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as f:
        for k in sorted(table, key=sort_key):
            v = table[k]
            f.write(f"{k} {v}\n" if v != "" else f"{k}\n")
    os.replace(tmp, path)


def spk2utt_from_utt2spk(utt2spk: Dict[str, str]) -> "OrderedDict[str, str]":
    groups: Dict[str, List[str]] = defaultdict(list)
    for u in sorted(utt2spk, key=sort_key):
        groups[utt2spk[u]].append(u)
    return OrderedDict((s, " ".join(groups[s])) for s in sorted(groups, key=sort_key))


class DataDir:
    """An in-memory data directory.

    ``utt``: per-utterance files ``name -> {utt: value}``;
    ``reco``: per-recording files (``wav.scp`` when there are segments);
    ``spk``: per-speaker files (``spk2utt`` is never stored, it is derived).
    """

    def __init__(self):
        self.utt: Dict[str, Dict[str, str]] = {}
        self.reco: Dict[str, Dict[str, str]] = {}
        self.spk: Dict[str, Dict[str, str]] = {}
        self.other: List[str] = []  # names of files this class does not know (not copied)

    # ------------------------------------------------------------ io
    @classmethod
    def read(cls, path: str) -> "DataDir":
        if not os.path.isdir(path):
            raise FileNotFoundError(f"no data directory {path}")
        d = cls()
        names = sorted(n for n in os.listdir(path) if os.path.isfile(os.path.join(path, n)))
        has_segments = "segments" in names
        for n in names:
            p = os.path.join(path, n)
            if n in NOT_DATA or n in DERIVED_FILES or n.endswith(".tmp"):
                continue
            if is_utt_file(n, has_segments):
                d.utt[n] = dict(read_table(p))
            elif n == "wav.scp" or n in RECO_FILES:
                d.reco[n] = dict(read_table(p))
            elif n in SPK_FILES:
                d.spk[n] = dict(read_table(p))
            else:
                d.other.append(n)
        return d

    def write(self, path: str, overwrite: bool = True) -> None:
        os.makedirs(path, exist_ok=True)
        if overwrite:
            # remove data files of a previous version so that no stale file survives
            # (only files this module knows as data files; anything else is left alone)
            for n in os.listdir(path):
                p = os.path.join(path, n)
                known = (is_utt_file(n, True) or n == "wav.scp" or n in RECO_FILES
                         or n in SPK_FILES or n in DERIVED_FILES)
                if os.path.isfile(p) and known and n not in self.other:
                    os.remove(p)
        for n, t in self.utt.items():
            write_table(os.path.join(path, n), t)
        for n, t in self.reco.items():
            write_table(os.path.join(path, n), t)
        for n, t in self.spk.items():
            write_table(os.path.join(path, n), t)
        if "utt2spk" in self.utt:
            write_table(os.path.join(path, "spk2utt"), spk2utt_from_utt2spk(self.utt["utt2spk"]))

    # ------------------------------------------------------------ views
    @property
    def has_segments(self) -> bool:
        return "segments" in self.utt

    def is_text_only(self) -> bool:
        """Whether every utterance is a text-only example (utt2task in ``TEXT_TASKS``; no audio)."""
        tasks = self.utt.get("utt2task", {})
        return (not self.reco and not any(n in self.utt for n in SPEECH_FILES) and bool(tasks)
                and all(t in TEXT_TASKS for t in tasks.values()))

    def utt_ids(self) -> List[str]:
        """Sorted utterance ids: those of ``utt2spk`` (or of the first per-utt file)."""
        for n in ("utt2spk", "text", "wav.scp", "segments"):
            if n in self.utt:
                return sorted(self.utt[n], key=sort_key)
        for t in self.utt.values():
            return sorted(t, key=sort_key)
        return []

    def common_ids(self) -> List[str]:
        sets = [set(t) for t in self.utt.values()]
        if not sets:
            return []
        return sorted(set.intersection(*sets), key=sort_key)

    def union_ids(self) -> List[str]:
        out: Set[str] = set()
        for t in self.utt.values():
            out |= set(t)
        return sorted(out, key=sort_key)

    def speakers(self) -> Dict[str, List[str]]:
        groups: Dict[str, List[str]] = defaultdict(list)
        u2s = self.utt.get("utt2spk", {})
        for u in self.utt_ids():
            groups[u2s.get(u, u)].append(u)
        return dict(sorted(groups.items(), key=lambda kv: sort_key(kv[0])))

    def recording_of(self, utt: str) -> str:
        if self.has_segments:
            return self.utt["segments"][utt].split()[0]
        return utt

    def __len__(self) -> int:
        return len(self.utt_ids())

    # ------------------------------------------------------------ editing
    def subset(self, ids: Iterable[str]) -> "DataDir":
        keep = set(ids)
        d = DataDir()
        for n, t in self.utt.items():
            d.utt[n] = {k: v for k, v in t.items() if k in keep}
        if self.has_segments:
            recos = {d.utt["segments"][u].split()[0] for u in d.utt["segments"]}
        else:
            recos = keep
        for n, t in self.reco.items():
            d.reco[n] = {k: v for k, v in t.items() if k in recos}
        spks = set(d.utt.get("utt2spk", {}).values())
        for n, t in self.spk.items():
            d.spk[n] = {k: v for k, v in t.items() if k in spks}
        return d

    def remove(self, ids: Iterable[str]) -> "DataDir":
        drop = set(ids)
        return self.subset(u for u in self.union_ids() if u not in drop)


def combine(dirs: Sequence[DataDir], names: Optional[Sequence[str]] = None) -> DataDir:
    """Union of data dirs; duplicate utterance ids (or clashing recordings) are errors.

    A file missing from some of the inputs is left out of the result (with a warning),
    as Kaldi's combine_data.sh does, so that the result stays consistent; except that a text-only
    input (:meth:`DataDir.is_text_only`) keeps the speech files (:data:`SPEECH_FILES`) of the others.
    """
    names = list(names or [f"dir{i + 1}" for i in range(len(dirs))])
    if not dirs:
        raise ValueError("nothing to combine")
    text_only = [d.is_text_only() for d in dirs]
    seg = {d.has_segments for d, no_speech in zip(dirs, text_only) if not no_speech}
    if len(seg) > 1:
        raise ValueError("cannot combine directories with and without segments")
    out = DataDir()
    owner: Dict[str, str] = {}
    dups: List[str] = []
    for d, name in zip(dirs, names):
        for u in d.union_ids():
            if u in owner:
                dups.append(f"{u} (in {owner[u]} and {name})")
            else:
                owner[u] = name
    if dups:
        raise ValueError(f"duplicate utterance ids: {', '.join(dups[:20])}"
                         + (f" ... and {len(dups) - 20} more" if len(dups) > 20 else ""))

    def merge(kind: str) -> Dict[str, Dict[str, str]]:
        files = [getattr(d, kind) for d in dirs]
        all_names = sorted({n for f in files for n in f})
        merged: Dict[str, Dict[str, str]] = {}
        for n in all_names:
            missing = [nm for f, nm, no_speech in zip(files, names, text_only)
                       if n not in f and not (no_speech and (kind == "reco" or n in SPEECH_FILES))]
            if missing:
                logging.warning("combine: %s is missing in %s; leaving it out", n, ", ".join(missing))
                continue
            table: Dict[str, str] = {}
            for f, nm in zip(files, names):
                for k, v in f.get(n, {}).items():
                    if k in table and table[k] != v:
                        raise ValueError(f"{n}: id {k} differs between inputs ({nm})")
                    table[k] = v
            merged[n] = table
        return merged

    out.utt = merge("utt")
    out.reco = merge("reco")
    out.spk = merge("spk")
    return out


def subset_ids(
    d: DataDir,
    n: Optional[int] = None,
    first: Optional[int] = None,
    last: Optional[int] = None,
    utt_list: Optional[Sequence[str]] = None,
    spk_list: Optional[Sequence[str]] = None,
) -> List[str]:
    """Utterances chosen by exactly one criterion.

    ``n``: N utterances evenly spaced over the sorted list (deterministic, spans
    all speakers, like Kaldi's subset_data_dir.sh); ``first`` / ``last``: the first
    or last N; ``utt_list`` / ``spk_list``: those utterances / those speakers'.
    """
    given = [x is not None for x in (n, first, last, utt_list, spk_list)]
    if sum(given) != 1:
        raise ValueError("give exactly one of n, first, last, utt_list, spk_list")
    ids = d.utt_ids()
    if n is not None:
        if n > len(ids):
            raise ValueError(f"asked for {n} utterances, the directory has {len(ids)}")
        if n <= 0:
            return []
        return [ids[(i * len(ids)) // n] for i in range(n)]
    if first is not None:
        return ids[:first]
    if last is not None:
        return ids[len(ids) - last :] if last > 0 else []
    if utt_list is not None:
        have = set(ids)
        missing = [u for u in utt_list if u not in have]
        if missing:
            logging.warning("subset: %d listed utterances are not in the directory (e.g. %s)",
                            len(missing), missing[0])
        return sorted({u for u in utt_list if u in have}, key=sort_key)
    spks = set(spk_list)
    u2s = d.utt.get("utt2spk", {})
    return [u for u in ids if u2s.get(u) in spks]


def split_ids(d: DataDir, nj: int) -> Tuple[List[List[str]], bool]:
    """Partition utterances into ``nj`` non-empty parts.

    Speakers stay together when there are at least ``nj`` speakers (greedy
    balancing of utterance counts, largest speaker first); otherwise utterances
    are split evenly. Returns ``(parts, speakers_kept_together)``.
    """
    ids = d.utt_ids()
    if nj < 1:
        raise ValueError("nj must be >= 1")
    if nj > len(ids):
        raise ValueError(f"cannot split {len(ids)} utterances into {nj} parts")
    spk = d.speakers()
    if len(spk) >= nj:
        loads = [0] * nj
        groups: List[List[str]] = [[] for _ in range(nj)]
        order = sorted(spk.items(), key=lambda kv: (-len(kv[1]), sort_key(kv[0])))
        for _, utts in order:
            j = min(range(nj), key=lambda i: (loads[i], i))
            groups[j].extend(utts)
            loads[j] += len(utts)
        parts = [sorted(g, key=sort_key) for g in groups]
        # order parts by their first utterance so that split 1 starts at the top
        parts.sort(key=lambda g: sort_key(g[0]))
        return parts, True
    parts = [ids[(i * len(ids)) // nj : ((i + 1) * len(ids)) // nj] for i in range(nj)]
    return parts, False


# ---------------------------------------------------------------- durations
def compute_utt2dur(d: DataDir, progress: bool = True) -> Dict[str, str]:
    """Durations in seconds: from segments when present, else from the audio headers."""
    out: Dict[str, str] = {}
    if d.has_segments:
        for u, v in d.utt["segments"].items():
            _, start, end = v.split()[:3]
            out[u] = _fmt_dur(float(end) - float(start))
        return out
    wav = d.utt.get("wav.scp", {})
    for u in tqdm(sorted(wav, key=sort_key), desc="utt2dur", unit="utt", disable=not progress,
                  mininterval=2.0):
        n, sr = audio_info(wav[u])
        out[u] = _fmt_dur(n / sr)
    return out


def _fmt_dur(x: float) -> str:
    return f"{x:.4f}".rstrip("0").rstrip(".") if x != int(x) else f"{int(x)}"


# ---------------------------------------------------------------- validation
ISSUE_KINDS = {
    # directory and file structure
    "missing_dir": "the directory does not exist",
    "missing_file": "a required file is missing",
    "blank_line": "an empty line",
    "unsorted": "a file not in LC_ALL=C order (reported once per file)",
    "duplicate_id": "an id on two lines",
    "missing_id": "an utterance in some per-utterance files and not in another",
    "invalid_utf8": "a byte that is not UTF-8",
    "control_char": "a control character (CR of a CRLF file, ...)",
    # speakers and labels
    "empty_speaker": "utt2spk without a speaker", "speaker_prefix": "utterance id not prefixed by its speaker",
    "spk2utt_mismatch": "spk2utt disagrees with utt2spk",
    "empty_text": "empty or whitespace-only text", "unknown_language": "utt2lang label not allowed",
    "unknown_task": "utt2task label not allowed",
    "text_only_without_source": "a text-only (mt) utterance without src_text",
    "language_script": "utt2lang contradicts the script of the transcript",
    "target_too_long": "text longer than the decoder's limit (tokens)",
    # audio
    "missing_audio": "audio file missing", "unreadable_audio": "audio that cannot be opened",
    "empty_audio": "audio without samples", "truncated_audio": "a WAV file shorter than its header says",
    "multi_channel": "more than one channel", "non_finite_audio": "NaN or inf samples",
    "silent_audio": "all samples silent", "sample_rate": "a sample rate other than --fs",
    "bad_duration": "utt2dur not a number", "duration_mismatch": "utt2dur disagrees with the audio",
    "bad_segment": "a segments line that is not RECO START END with 0 <= START < END",
    "segment_out_of_range": "a segment ending after its recording",
    "too_short": "shorter than --min_dur", "too_long": "longer than --max_dur",
    "exceeds_encoder": "longer than the encoder takes", "no_duration": "duration limits without durations",
    # frame alignments
    "empty_alignment": "an alignment without frames", "bad_alignment": "an alignment label not allowed",
    "alignment_length": "alignment frames disagree with the audio duration",
    "word_lang": "word_lang not one language code per word of src_text",
    # warnings (the directory stays valid)
    "speaker_in_train": "a speaker of this set also in a training set",
    "sentence_in_train": "a source sentence of this set also in a training set",
}


@dataclass
class Issue:
    file: str
    line: Optional[int]
    utt: Optional[str]
    kind: str
    message: str
    utterance_level: bool = True  # removable by dropping the utterance
    warning: bool = False  # reported, but the directory stays valid (test/train overlap)

    def format(self, dirname: str = "") -> str:
        loc = os.path.join(dirname, self.file) if dirname else self.file
        line = str(self.line) if self.line is not None else "-"
        who = f" utt {self.utt}:" if self.utt is not None else ""
        level = " warning:" if self.warning else ""
        return f"{loc}:{line}:{who}{level} {self.kind}: {self.message}"


@dataclass
class ValidationResult:
    path: str
    issues: List[Issue]
    num_utts: int

    @property
    def ok(self) -> bool:
        return all(i.warning for i in self.issues)

    def bad_utts(self) -> Dict[str, List[Issue]]:
        out: Dict[str, List[Issue]] = defaultdict(list)
        for i in self.issues:
            if i.utterance_level and i.utt is not None and not i.warning:
                out[i.utt].append(i)
        return dict(out)

    def counts(self, warnings: bool = False) -> Dict[str, int]:
        """Issues per kind (the errors, or with ``warnings`` the warnings)."""
        kinds: Dict[str, int] = defaultdict(int)
        for i in self.issues:
            if i.warning == warnings:
                kinds[i.kind] += 1
        return dict(sorted(kinds.items()))

    def report(self) -> str:
        lines = [i.format(self.path) for i in self.issues]
        summary = ", ".join(f"{k}={v}" for k, v in self.counts().items()) or "no issues"
        warned = ", ".join(f"{k}={v}" for k, v in self.counts(warnings=True).items())
        lines.append(
            f"{self.path}: {self.num_utts} utterances, {len(self.bad_utts())} invalid; {summary}"
            + (f"; warnings: {warned}" if warned else "")
        )
        return "\n".join(lines)


def validate(
    path: str,
    min_dur: Optional[float] = None,
    max_dur: Optional[float] = None,
    languages: Optional[Sequence[str]] = DEFAULT_LANGUAGES,
    tasks: Optional[Sequence[str]] = DEFAULT_TASKS,
    required: Sequence[str] = DEFAULT_REQUIRED,
    fs: Optional[int] = None,
    check_audio: bool = True,
    progress: bool = True,
    check_samples: bool = True,
    max_encoder_dur: Optional[float] = None,
    max_target_tokens: Optional[int] = None,
    tokenizer: Optional[str] = None,
    train_dirs: Sequence[str] = (),
) -> ValidationResult:
    """Check a data directory; every problem becomes an :class:`Issue` (the kinds: :data:`ISSUE_KINDS`).

    ``check_samples``: read every recording whole (empty, truncated, multi-channel, NaN/inf, all-silent
    audio), not only its header. ``max_encoder_dur``: the longest audio the encoder takes (seconds).
    ``max_target_tokens``: the decoder's limit on ``text``, counted with the Hugging Face tokenizer in
    the directory ``tokenizer``. ``train_dirs``: training directories; an utterance whose speaker or
    source sentence occurs in one of them is a warning (a test set overlapping training data).
    """
    if max_target_tokens is not None and tokenizer is None:
        raise ValueError("max_target_tokens needs the tokenizer that counts the tokens")
    issues: List[Issue] = []
    if not os.path.isdir(path):
        return ValidationResult(path, [Issue(".", None, None, "missing_dir", "no such directory", False)], 0)
    names = sorted(n for n in os.listdir(path) if os.path.isfile(os.path.join(path, n)))
    has_segments = "segments" in names
    raws: Dict[str, RawFile] = {}
    for n in names:
        if n in NOT_DATA or n.endswith(".tmp"):
            continue
        if is_utt_file(n, has_segments) or n in ("wav.scp", "spk2utt") or n in RECO_FILES or n in SPK_FILES:
            raws[n] = read_raw(os.path.join(path, n))

    for n in required:
        if n not in raws:
            issues.append(Issue(n, None, None, "missing_file", "required file is missing", False))

    # --- per-file structure: blank lines, order, duplicates
    tables: Dict[str, Dict[str, str]] = {}
    for n, raw in raws.items():
        for ln in raw.blank_lines:
            issues.append(Issue(n, ln, None, "blank_line", "empty line", False))
        prev: Optional[str] = None
        seen: Dict[str, Tuple[int, str]] = {}
        unsorted_reported = False
        utt_level = is_utt_file(n, has_segments)
        cr_lines = set(raw.cr_lines)
        for ln, k, v in raw.rows:
            if ln in cr_lines:  # rewriting the file (drop_invalid) removes the CR
                issues.append(Issue(n, ln, k if utt_level else None, "control_char",
                                    "line ends in CR (a Windows CRLF file?): convert it with dos2unix", False))
            bad = _bad_characters(k + " " + v)
            if bad:
                issues.append(Issue(n, ln, k if utt_level else None, *bad, utt_level))
            if k in seen:
                first_ln, first_v = seen[k]
                if first_v == v:
                    issues.append(Issue(n, ln, k if utt_level else None, "duplicate_id",
                                        f"repeats line {first_ln}", False))
                else:
                    issues.append(Issue(n, ln, k if utt_level else None, "duplicate_id",
                                        f"id also on line {first_ln} with a different value",
                                        utt_level))
            else:
                seen[k] = (ln, v)
            if prev is not None and sort_key(k) < sort_key(prev) and not unsorted_reported:
                issues.append(Issue(n, ln, k if utt_level else None, "unsorted",
                                    f"not in LC_ALL=C order (after {prev})", False))
                unsorted_reported = True
            prev = k
        tables[n] = raw.as_dict()

    utt_files = [n for n in tables if is_utt_file(n, has_segments)]
    all_ids: Set[str] = set()
    for n in utt_files:
        all_ids |= set(tables[n])

    # --- consistency across files (a text-only utterance has no speech files, and needs its source text)
    text_only = {u for u, task in tables.get("utt2task", {}).items() if task in TEXT_TASKS}
    for u in sorted(all_ids, key=sort_key):
        have = [n for n in utt_files if u in tables[n]]
        lacking = [n for n in utt_files if u not in tables[n] and not (u in text_only and n in SPEECH_FILES)]
        for n in lacking:
            issues.append(Issue(n, None, u, "missing_id", f"utterance is in {', '.join(have)} but not in {n}"))

    for u in sorted(text_only - set(tables.get("src_text", {})), key=sort_key):
        issues.append(Issue("src_text", None, u, "text_only_without_source",
                            f"a {tables['utt2task'][u]} utterance (no speech) needs its source text in src_text"))

    utt2spk = tables.get("utt2spk", {})
    for u, s in utt2spk.items():
        if not s:
            issues.append(Issue("utt2spk", raws["utt2spk"].line_of(u), u, "empty_speaker", "no speaker id"))
        elif not u.startswith(s):
            issues.append(Issue("utt2spk", raws["utt2spk"].line_of(u), u, "speaker_prefix",
                                f"utterance id does not start with its speaker id {s}"))
    if "spk2utt" in tables and utt2spk:
        expected = spk2utt_from_utt2spk(utt2spk)
        if dict(expected) != {k: " ".join(v.split()) for k, v in tables["spk2utt"].items()}:
            bad = sorted(set(expected.items()) ^ set((k, " ".join(v.split())) for k, v in tables["spk2utt"].items()))
            sample = bad[0][0] if bad else "?"
            issues.append(Issue("spk2utt", raws["spk2utt"].line_of(sample), None, "spk2utt_mismatch",
                                f"does not match utt2spk (first differing speaker: {sample})", False))

    for n in utt_files:
        if is_text_file(n):
            for u, v in tables[n].items():
                if not v.strip():
                    issues.append(Issue(n, raws[n].line_of(u), u, "empty_text", "empty text"))
    if languages is not None and "utt2lang" in tables:
        allowed = set(languages)
        for u, v in tables["utt2lang"].items():
            if v not in allowed:
                issues.append(Issue("utt2lang", raws["utt2lang"].line_of(u), u, "unknown_language",
                                    f"language {v!r} not in {','.join(languages)}"))
    if "utt2lang" in tables:
        for u, lang in tables["utt2lang"].items():
            script = LANGUAGE_SCRIPTS.get(lang)
            name = "src_text" if u in tables.get("src_text", {}) else (
                "text" if tables.get("utt2task", {}).get(u) == "asr" and u in tables.get("text", {}) else None)
            if script is None or name is None:
                continue
            why = _script_mismatch(tables[name][u], script)
            if why:
                issues.append(Issue(name, raws[name].line_of(u), u, "language_script",
                                    f"utt2lang says {lang} ({script} script) but the transcript {why}"))
    if tasks is not None and "utt2task" in tables:
        allowed = set(tasks)
        for u, v in tables["utt2task"].items():
            if v not in allowed:
                issues.append(Issue("utt2task", raws["utt2task"].line_of(u), u, "unknown_task",
                                    f"task {v!r} not in {','.join(tasks)}"))

    # --- audio and durations
    durs: Dict[str, float] = {}
    if "utt2dur" in tables:
        for u, v in tables["utt2dur"].items():
            try:
                durs[u] = float(v)
            except ValueError:
                issues.append(Issue("utt2dur", raws["utt2dur"].line_of(u), u, "bad_duration", f"not a number: {v!r}"))
    seg_ranges: Dict[str, Tuple[str, float, float]] = {}
    if has_segments:
        for u, v in tables.get("segments", {}).items():
            parts = v.split()
            try:
                reco, start, end = parts[0], float(parts[1]), float(parts[2])
                if end <= start or start < 0:
                    raise ValueError
            except (ValueError, IndexError):
                issues.append(Issue("segments", raws["segments"].line_of(u), u, "bad_segment", f"bad segment {v!r}"))
                continue
            seg_ranges[u] = (reco, start, end)
            durs.setdefault(u, end - start)
    wav = tables.get("wav.scp", {})
    if check_audio and wav:
        reco_info: Dict[str, Tuple[int, int]] = {}
        reco_err: Dict[str, str] = {}
        reco_faults: Dict[str, List[Tuple[str, str]]] = {}
        for r in tqdm(sorted(wav, key=sort_key), desc=f"validate {os.path.basename(path.rstrip('/'))}",
                      unit="file", disable=not progress or len(wav) < 200, mininterval=2.0):
            try:
                if check_samples:
                    found = inspect_audio(wav[r])
                    reco_faults[r] = _audio_faults(found)
                    if found.num_samples > 0:
                        reco_info[r] = (found.num_samples, found.rate)
                else:
                    reco_info[r] = audio_info(wav[r])
            except FileNotFoundError as e:
                reco_err[r] = f"missing_audio|{e}"
            except Exception as e:  # unreadable: wrong format, truncated header...
                reco_err[r] = f"unreadable_audio|{type(e).__name__}: {e}"
        utts_of_reco: Dict[str, List[str]] = defaultdict(list)
        if has_segments:
            for u, (r, _, _) in seg_ranges.items():
                utts_of_reco[r].append(u)
        else:
            for r in wav:
                utts_of_reco[r].append(r)
        for r, err in sorted(reco_err.items()):
            kind, msg = err.split("|", 1)
            for u in utts_of_reco.get(r, []):
                issues.append(Issue("wav.scp", raws["wav.scp"].line_of(r), u, kind, msg))
        for r, faults in sorted(reco_faults.items()):
            for kind, msg in faults:
                for u in utts_of_reco.get(r, []):
                    issues.append(Issue("wav.scp", raws["wav.scp"].line_of(r), u, kind, msg))
        for r, (nsamp, sr) in reco_info.items():
            rdur = nsamp / sr
            for u in utts_of_reco.get(r, []):
                if fs is not None and sr != fs:
                    issues.append(Issue("wav.scp", raws["wav.scp"].line_of(r), u, "sample_rate",
                                        f"sample rate {sr} != {fs}"))
                if has_segments:
                    if u in seg_ranges and seg_ranges[u][2] > rdur + 0.01:
                        issues.append(Issue("segments", raws["segments"].line_of(u), u, "segment_out_of_range",
                                            f"ends at {seg_ranges[u][2]:.2f}s, audio is {rdur:.2f}s"))
                else:
                    if u in durs and "utt2dur" in tables and abs(durs[u] - rdur) > 0.05:
                        issues.append(Issue("utt2dur", raws["utt2dur"].line_of(u), u, "duration_mismatch",
                                            f"utt2dur says {durs[u]:.3f}s, audio is {rdur:.3f}s"))
                    durs[u] = rdur
    for u, dur in sorted(durs.items()):
        src = "utt2dur" if "utt2dur" in tables else ("segments" if has_segments else "wav.scp")
        ln = raws[src].line_of(u) if src in raws else None
        if min_dur is not None and dur < min_dur:
            issues.append(Issue(src, ln, u, "too_short", f"duration {dur:.3f}s < {min_dur}s"))
        if max_dur is not None and dur > max_dur:
            issues.append(Issue(src, ln, u, "too_long", f"duration {dur:.3f}s > {max_dur}s"))
        if max_encoder_dur is not None and dur > max_encoder_dur:
            issues.append(Issue(src, ln, u, "exceeds_encoder",
                                f"duration {dur:.3f}s is more than the encoder takes ({max_encoder_dur}s)"))
    if max_target_tokens is not None and "text" in tables:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(tokenizer, trust_remote_code=False)
        for u, v in tables["text"].items():
            n_tok = len(tok(v, add_special_tokens=False)["input_ids"])
            if n_tok > max_target_tokens:
                issues.append(Issue("text", raws["text"].line_of(u), u, "target_too_long",
                                    f"{n_tok} tokens, the decoder's limit is {max_target_tokens}"))
    for train_dir in train_dirs:
        issues.extend(_train_overlap(tables, raws, train_dir))
    if (min_dur is not None or max_dur is not None) and not durs and wav:
        issues.append(Issue("utt2dur", None, None, "no_duration",
                            "duration limits given but no duration known (no utt2dur, audio not checked)", False))
    for name in FRAME_ALIGNMENTS:
        bad_label = _bad_phone_id if name == PHONE_ALI else _bad_language_code(languages)
        for u, v in tables.get(name, {}).items():
            issue = _check_ali(v, durs.get(u), bad_label)
            if issue:
                issues.append(Issue(name, raws[name].line_of(u), u, *issue))
    if WORD_LANG in tables:
        issues.extend(_check_word_lang(tables, raws[WORD_LANG], _bad_language_code(languages)))

    order = {n: i for i, n in enumerate(sorted(raws))}
    issues.sort(key=lambda i: (sort_key(i.utt or ""), order.get(i.file, 99), i.line or 0))
    return ValidationResult(path, issues, len(all_ids))


LANGUAGE_SCRIPTS = {"zh": "Han", "yue": "Han", "en": "Latin", "es": "Latin", "fr": "Latin", "de": "Latin"}


def _is_han(c: str) -> bool:
    return "\u4e00" <= c <= "\u9fff" or "\u3400" <= c <= "\u4dbf" or "\uf900" <= c <= "\ufaff"


def _script_mismatch(transcript: str, script: str) -> Optional[str]:
    """Why ``transcript`` is not in ``script`` (Han: has a Han character; Latin: has a Latin letter
    and no Han character), or None; a transcript without letters (``2024``) contradicts no script."""
    if not any(c.isalpha() for c in transcript):
        return None
    has_han = any(_is_han(c) for c in transcript)
    if script == "Han":
        return None if has_han else "has no Han character"
    if has_han:
        return "has Han characters"
    latin = any(c.isalpha() and unicodedata.name(c, "").startswith("LATIN") for c in transcript)
    return None if latin else "has no Latin letter"


def _bad_characters(line: str) -> Optional[Tuple[str, str]]:
    """(kind, message) of the first byte that is not UTF-8 or the first control character
    (tab excepted) of a line as :func:`read_raw` read it, or None."""
    for col, c in enumerate(line, 1):
        if "\udc80" <= c <= "\udcff":  # surrogateescape of a byte that is not UTF-8
            return "invalid_utf8", f"byte 0x{ord(c) - 0xDC00:02X} at column {col} is not UTF-8"
        if c != "\t" and unicodedata.category(c) == "Cc":
            return "control_char", f"control character U+{ord(c):04X} at column {col}"
    return None


def _audio_faults(found) -> List[Tuple[str, str]]:
    """(kind, message) of what is wrong with a recording's samples (:class:`AudioCheck`)."""
    faults = []
    if found.num_samples == 0:
        faults.append(("empty_audio", "audio has no samples"))
    if found.truncated:
        faults.append(("truncated_audio", f"the header announces {found.declared_samples} samples, "
                                          f"the file holds {found.num_samples}"))
    if found.channels > 1:
        faults.append(("multi_channel", f"{found.channels} channels: the pipeline reads mono audio "
                                        f"(pick a channel, e.g. 'sox IN -t wav - remix 1 |' in wav.scp)"))
    if found.non_finite:
        faults.append(("non_finite_audio", f"{found.non_finite} NaN or inf samples"))
    if found.silent:
        faults.append(("silent_audio", f"all silent (peak {found.peak:.2e})"))
    return faults


def _normalised_sentence(text: str) -> str:
    return " ".join(text.casefold().split())


def _train_overlap(tables: Dict[str, Dict[str, str]], raws: Dict[str, RawFile], train_dir: str) -> List[Issue]:
    """Warnings for utterances whose speaker or source sentence (``src_text``, else ``text``) occurs
    in the data directory ``train_dir``."""
    out: List[Issue] = []
    train_spk = {}
    if os.path.exists(os.path.join(train_dir, "utt2spk")):
        for u, s in read_table(os.path.join(train_dir, "utt2spk")).items():
            train_spk.setdefault(s, u)
    for u, s in tables.get("utt2spk", {}).items():
        if s in train_spk:
            out.append(Issue("utt2spk", raws["utt2spk"].line_of(u), u, "speaker_in_train",
                             f"speaker {s} also speaks in {train_dir} (e.g. {train_spk[s]})", False, True))
    for name in ("src_text", "text"):
        train_file = os.path.join(train_dir, name)
        if name in tables and os.path.exists(train_file):
            seen = {}
            for u, v in read_table(train_file).items():
                seen.setdefault(_normalised_sentence(v), u)
            for u, v in tables[name].items():
                other = seen.get(_normalised_sentence(v))
                if other is not None and v.strip():
                    out.append(Issue(name, raws[name].line_of(u), u, "sentence_in_train",
                                     f"the same sentence is {other} in {train_file}", False, True))
            break
    return out


def _bad_phone_id(label: str) -> Optional[str]:
    """Why a phone_ali label is not a phone id, or None."""
    return None if label.isascii() and label.isdigit() else "is not a phone id (a non-negative integer)"


def _bad_language_code(languages: Optional[Sequence[str]]):
    """A check of lang_ali labels: one of ``languages`` but ``cs``, or ``-`` (any code when None)."""
    if languages is None:
        return lambda label: None
    allowed = [name for name in languages if name != CODE_SWITCH] + [UNLABELLED_FRAME]
    why = f"is not a language code of {','.join(allowed[:-1])} or '{UNLABELLED_FRAME}' (unlabelled)"
    return lambda label: None if label in allowed else why


def _check_ali(value: str, dur: Optional[float], bad_label) -> Optional[Tuple[str, str]]:
    """(kind, message) of what is wrong with an alignment entry of an utterance of ``dur`` seconds;
    ``bad_label(label)`` says why a label is wrong (None: it is not)."""
    labels = value.split()
    if not labels:
        return "empty_alignment", "no frames"
    for j, t in enumerate(labels):
        why = bad_label(t)
        if why:
            return "bad_alignment", f"frame {j}: {t!r} {why}"
    if dur is not None:
        expected = math.ceil(round(dur * ALI_FRAMES_PER_SECOND, 6))
        if abs(len(labels) - expected) > ALI_TOLERANCE:
            return ("alignment_length", f"{len(labels)} frames, but {dur:.3f}s of audio make {expected} "
                    f"frames of {1000 // ALI_FRAMES_PER_SECOND} ms (at most {ALI_TOLERANCE} off)")
    return None


def _check_word_lang(tables: Dict[str, Dict[str, str]], raw: RawFile, bad_label) -> List[Issue]:
    """Issues of ``word_lang``: a label ``bad_label`` rejects, a label count other than the number of
    words of the utterance's ``src_text``, or no ``src_text`` at all."""
    if "src_text" not in tables:
        return [Issue(WORD_LANG, None, None, "word_lang", "there is no src_text whose words it labels", False)]
    out = []
    for u, v in tables[WORD_LANG].items():
        labels, words = v.split(), tables["src_text"].get(u, "").split()
        why = next((f"word {j + 1}: {t!r} {bad_label(t)}" for j, t in enumerate(labels) if bad_label(t)), None)
        if why is None and len(labels) != len(words):
            why = f"{len(labels)} labels for the {len(words)} words of src_text"
        if why:
            out.append(Issue(WORD_LANG, raw.line_of(u), u, "word_lang", why))
    return out


def clean(path: str, result: Optional[ValidationResult] = None, **validate_kwargs) -> Tuple[ValidationResult, List[Tuple[str, str]]]:
    """Drop every invalid utterance from all files, rewrite the directory sorted and
    consistent, and append ``utt<TAB>reasons`` to ``dropped.txt``.

    Returns the validation of the cleaned directory and the dropped list.
    """
    if result is None:
        result = validate(path, **validate_kwargs)
    fatal = [i for i in result.issues if i.kind in ("missing_file", "missing_dir")]
    if fatal:
        return result, []
    bad = result.bad_utts()
    d = DataDir.read(path)
    # a conflicting duplicate id is dropped everywhere; read() kept its first value
    dropped = [(u, "; ".join(f"{i.kind}: {i.message} ({i.file}:{i.line or '-'})" for i in issues))
               for u, issues in sorted(bad.items(), key=lambda kv: sort_key(kv[0]))]
    d = d.remove(bad)
    d.write(path)
    _append_dropped(path, dropped)
    again = validate(path, **validate_kwargs)
    return again, dropped


def _append_dropped(path: str, dropped: Sequence[Tuple[str, str]]) -> None:
    if not dropped:
        return
    fn = os.path.join(path, "dropped.txt")
    old: Dict[str, str] = {}
    if os.path.exists(fn):
        with open(fn, encoding="utf-8") as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition("\t")
                if k:
                    old[k] = v
    for u, why in dropped:
        old[u] = f"{old[u]}; {why}" if u in old else why
    with open(fn, "w", encoding="utf-8") as f:
        for u in sorted(old, key=sort_key):
            f.write(f"{u}\t{old[u]}\n")


def fix(path: str) -> List[str]:
    """Sort every file, drop exact duplicate lines (first value wins on conflicts),
    rebuild ``spk2utt`` from ``utt2spk`` and keep only utterances present in every
    per-utterance file. Returns messages describing what was removed."""
    msgs: List[str] = []
    res = validate(path, languages=None, tasks=None, required=(), check_audio=False, progress=False)
    for i in res.issues:
        if i.kind == "duplicate_id":
            msgs.append(f"{i.format(path)} (kept the first)")
    d = DataDir.read(path)
    common = set(d.common_ids())
    removed: List[Tuple[str, str]] = []
    for u in d.union_ids():
        if u not in common:
            lacking = [n for n, t in d.utt.items() if u not in t]
            removed.append((u, f"fix: missing in {', '.join(lacking)}"))
            msgs.append(f"{path}: removed utterance {u}: missing in {', '.join(lacking)}")
    d = d.subset(common)
    d.write(path)
    _append_dropped(path, removed)
    return msgs


def write_split(path: str, nj: int) -> Tuple[List[str], bool]:
    """Write ``path/split{nj}/{1..nj}``; returns (directories, speakers kept together)."""
    d = DataDir.read(path)
    parts, together = split_ids(d, nj)
    root = os.path.join(path, f"split{nj}")
    if os.path.isdir(root):
        shutil.rmtree(root)
    out = []
    for j, ids in enumerate(parts, 1):
        sub = os.path.join(root, str(j))
        d.subset(ids).write(sub)
        out.append(sub)
    return out, together


# ---------------------------------------------------------------- directory commands
def check(path: str, drop_invalid: bool = False, resample: bool = False,
          **validate_kwargs) -> Tuple[ValidationResult, str]:
    """Validate ``path``; with ``resample``, rewrite the audio of the wrong sample rate at ``fs`` and
    validate again; with ``drop_invalid``, drop the invalid utterances (:func:`clean`) and
    validate again. Returns the final result and the report (what was resampled and dropped included)."""
    res = validate(path, **validate_kwargs)
    text = res.report()
    if resample and any(i.kind == "sample_rate" for i in res.issues):
        done = resample_recordings(path, res, validate_kwargs["fs"])
        text += f"\nresampled {len(done)} recordings to {validate_kwargs['fs']} Hz (in {os.path.join(path, 'resampled')})"
        res = validate(path, **validate_kwargs)
        text += "\nafter resampling:\n" + res.report()
    if drop_invalid and not res.ok:
        after, dropped = clean(path, res, **validate_kwargs)
        text += (f"\ndropped {len(dropped)} utterances (listed in {os.path.join(path, 'dropped.txt')})"
                 if dropped else "\nnothing dropped: dropping utterances cannot fix these problems")
        if not after.ok:
            text += "\nstill invalid after dropping:\n" + after.report()
        res = after
    return res, text


def resample_recordings(path: str, result: ValidationResult, fs: int) -> List[str]:
    """Rewrite every recording ``result`` found at a sample rate other than ``fs`` as 16-bit mono WAV at
    ``fs`` under ``path/resampled/`` and point ``wav.scp`` at it; returns the recordings rewritten.
    A multi-channel recording is left for the validation to report."""
    from csst_espnet.data.audio import read_audio, resample, to_pcm16, write_pcm16

    wav_file = os.path.join(path, "wav.scp")
    raw = read_raw(wav_file)
    wav = dict(raw.as_dict())
    reco_on_line = {n: k for n, k, _ in raw.rows}  # wav.scp issues name the recording's line
    wrong = {i.line for i in result.issues if i.file == "wav.scp" and i.kind == "sample_rate"}
    multi = {i.line for i in result.issues if i.file == "wav.scp" and i.kind == "multi_channel"}
    recos = sorted((reco_on_line[n] for n in wrong - multi), key=sort_key)
    out_dir = os.path.join(path, "resampled")
    os.makedirs(out_dir, exist_ok=True)
    for r in recos:
        x, rate = read_audio(wav[r])
        y, _ = to_pcm16(resample(x, rate, fs))
        out = os.path.join(out_dir, f"{r}.wav")
        write_pcm16(out, y, fs)
        wav[r] = out
    write_table(wav_file, wav)
    return recos


def write_combined(out: str, paths: Sequence[str]) -> int:
    """Write the :func:`combine` of the directories ``paths`` to ``out``; returns its utterance count."""
    d = combine([DataDir.read(p) for p in paths], paths)
    d.write(out)
    return len(d)


def write_subset(path: str, out: str, **criteria) -> Tuple[int, int]:
    """Write the utterances of ``path`` chosen by :func:`subset_ids` to ``out`` (not ``path``);
    returns (chosen, total) utterance counts."""
    d = DataDir.read(path)
    ids = subset_ids(d, **criteria)
    if os.path.abspath(out) == os.path.abspath(path):
        raise ValueError("OUT must differ from DIR")
    d.subset(ids).write(out)
    return len(ids), len(d)


def write_utt2dur(path: str) -> Dict[str, str]:
    """Compute (:func:`compute_utt2dur`) and write ``path/utt2dur``; returns the durations."""
    durs = compute_utt2dur(DataDir.read(path))
    write_table(os.path.join(path, "utt2dur"), durs)
    return durs
