"""Import a corpus manifest (TSV or JSONL) into a Kaldi-style data directory.

One utterance per line. Fields (TSV: a header row naming the columns, tab separated; JSONL: one
object per line):

=============  ======================================================================================
``audio``      audio file (any format soundfile reads); a relative path is relative to the manifest
``start``      optional segment start in seconds (``end`` alone: from 0)
``end``        optional segment end in seconds (``start`` alone: to the end of the file)
``transcript`` source-language transcript (``src_text``)
``translation`` target-language translation (``text``); JSONL may give a list: ``text``, ``text.2``...
``lang``       optional utterance language (``zh``, ``en``, ``es``... or ``cs``)
``task``       optional ``asr`` or ``st``
``speaker``    optional speaker
``id``         optional utterance name
=============  ======================================================================================

Rules for what is missing:

- **language**: from the transcript by the pair's written rule (:mod:`csst_espnet.data.language_id`);
  a transcript without evidence gets the pair's source language (counted in the summary).
- **task**: ``st`` when the line has a translation, else ``asr`` (target = the transcript).
- **speaker**: one per recording (the audio file).
- **ids**: Kaldi-safe (letters, digits, ``_`` and ``.``; other ASCII -> ``_``, other characters
  -> ``u`` and their hex code point). Recording = the audio path (below the directory common to all lines)
  without extension. Utterance = ``<speaker>-<id>`` or ``<speaker>-<recording>[-<start>-<end>]``
  (times in centiseconds, 7 digits): speaker-prefixed, so Kaldi order keeps speakers together.
  Two lines that end up with one id are an error naming both lines.

Lines with a segment make ``segments`` (lines without one span their whole file).
"""

import json
import logging
import os
import re
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from csst_espnet.data import kaldi_dir as kd
from csst_espnet.data.audio import audio_info
from csst_espnet.data.language_id import rule_for

FIELDS = ("audio", "start", "end", "transcript", "translation", "lang", "task", "speaker", "id")
TASKS = ("asr", "st")
SEGMENT_TOLERANCE = 0.05  # seconds an end may pass the end of its recording


class ManifestError(ValueError):
    """A manifest line that cannot be imported (the message names the file and line)."""


@dataclass
class Entry:
    """One manifest line, as read (``where`` = ``file:line``)."""

    where: str
    audio: str
    start: Optional[float] = None
    end: Optional[float] = None
    transcript: str = ""
    translations: List[str] = field(default_factory=list)
    lang: Optional[str] = None
    task: Optional[str] = None
    speaker: Optional[str] = None
    id: Optional[str] = None


def _number(value, name: str, where: str, kind=float):
    if value is None or value == "":
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ManifestError(f"{where}: {name} '{value}' is not a number") from None


def _entry(row: Dict, where: str, base: str) -> Entry:
    unknown = sorted(set(row) - set(FIELDS))
    if unknown:
        raise ManifestError(f"{where}: unknown field(s) {unknown}; fields are {list(FIELDS)}")
    audio = str(row.get("audio") or "").strip()
    if not audio:
        raise ManifestError(f"{where}: no audio path")
    translation = row.get("translation")
    translations = translation if isinstance(translation, list) else [translation]
    translations = [str(t).strip() for t in translations if t is not None and str(t).strip()]
    text = lambda name: (str(row[name]).strip() or None) if row.get(name) is not None else None
    e = Entry(
        where=where,
        audio=audio if os.path.isabs(audio) else os.path.normpath(os.path.join(base, audio)),
        start=_number(row.get("start"), "start", where),
        end=_number(row.get("end"), "end", where),
        transcript=text("transcript") or "",
        translations=translations,
        lang=text("lang"),
        task=text("task"),
        speaker=text("speaker"),
        id=text("id"),
    )
    if e.task is not None and e.task not in TASKS:
        raise ManifestError(f"{where}: task '{e.task}' is not one of {list(TASKS)}")
    if e.task == "st" and not e.translations:
        raise ManifestError(f"{where}: task st without a translation")
    if not e.transcript and not e.translations:
        raise ManifestError(f"{where}: neither a transcript nor a translation")
    if e.start is not None and e.end is not None and e.end <= e.start:
        raise ManifestError(f"{where}: end {e.end} is not after start {e.start}")
    return e


def read_manifest(path: str) -> List[Entry]:
    """The entries of a ``.tsv`` or ``.jsonl`` manifest (blank lines skipped)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no manifest {path}")
    base = os.path.dirname(os.path.abspath(path))
    entries = []
    with open(path, encoding="utf-8") as f:
        lines = [line.rstrip("\n").rstrip("\r") for line in f]
    if path.endswith(".jsonl"):
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ManifestError(f"{path}:{n}: not JSON ({e})") from None
            if not isinstance(row, dict):
                raise ManifestError(f"{path}:{n}: a JSON object is expected")
            entries.append(_entry(row, f"{path}:{n}", base))
    elif path.endswith(".tsv"):
        if not lines:
            raise ManifestError(f"{path}: empty (a header row naming the columns is expected)")
        header = lines[0].split("\t")
        if "audio" not in header:
            raise ManifestError(f"{path}:1: the header row {header} has no 'audio' column")
        for n, line in enumerate(lines[1:], 2):
            if not line.strip():
                continue
            cols = line.split("\t")
            if len(cols) != len(header):
                raise ManifestError(f"{path}:{n}: {len(cols)} columns, the header has {len(header)}")
            entries.append(_entry(dict(zip(header, cols)), f"{path}:{n}", base))
    else:
        raise ManifestError(f"{path}: a manifest is a .tsv or .jsonl file")
    if not entries:
        raise ManifestError(f"{path}: no utterances")
    return entries


def safe_id(name: str) -> str:
    """``name`` as a Kaldi-safe id part (see the module docstring)."""
    out = []
    for c in name:
        if c.isascii() and (c.isalnum() or c in "_."):
            out.append(c)
        elif c.isascii():
            out.append("_")
        else:
            out.append(f"u{ord(c):04x}")
    return re.sub(r"_+", "_", "".join(out)).strip("_") or "_"


def recording_id(entry: Entry, root: str) -> str:
    """The Kaldi-safe id of the entry's audio file, named by its path below ``root``."""
    return safe_id(os.path.splitext(os.path.relpath(entry.audio, root))[0].replace(os.sep, "_"))


@dataclass
class ImportSummary:
    utterances: int
    languages: Dict[str, int]
    derived_languages: int  # labels derived from the transcript
    fallback_languages: int  # transcripts without evidence: the source language
    tasks: Dict[str, int]
    speakers: int
    recordings: int

    def __str__(self) -> str:
        langs = " ".join(f"{k}:{v}" for k, v in sorted(self.languages.items()))
        tasks = " ".join(f"{k}:{v}" for k, v in sorted(self.tasks.items()))
        return (f"{self.utterances} utterances ({langs}; {tasks}), {self.speakers} speakers, "
                f"{self.recordings} recordings; languages derived from the transcript: "
                f"{self.derived_languages}, of which {self.fallback_languages} without evidence (source language)")


def to_data_dir(entries: Sequence[Entry], lang_pair: str, check_audio: bool = True) -> Tuple[kd.DataDir, ImportSummary]:
    """The data directory of ``entries`` (see the module docstring for the rules)."""
    source = lang_pair.partition("-")[0]
    rule = None
    root = os.path.commonpath([os.path.dirname(e.audio) for e in entries])
    durations: Dict[str, float] = {}
    rows, ids, speakers_raw = [], {}, {}
    derived = fallback = 0
    for e in entries:
        reco = recording_id(e, root)
        if check_audio and e.audio not in durations:
            try:
                n, rate = audio_info(e.audio)
            except Exception as ex:  # the message names the manifest line and the file
                raise ManifestError(f"{e.where}: cannot read audio {e.audio}: {type(ex).__name__}: {ex}") from None
            durations[e.audio] = n / rate
        lang = e.lang
        if lang is None:
            if not e.transcript:
                raise ManifestError(f"{e.where}: no language label and no transcript to derive it from")
            rule = rule or rule_for(lang_pair)
            lang, derived = rule(e.transcript), derived + 1
            if lang is None:
                lang, fallback = source, fallback + 1
        task = e.task or ("st" if e.translations else "asr")
        spk = safe_id(e.speaker) if e.speaker else reco
        if e.speaker:
            if speakers_raw.setdefault(spk, e.speaker) != e.speaker:
                raise ManifestError(f"{e.where}: speaker '{e.speaker}' and '{speakers_raw[spk]}' are both "
                                    f"'{spk}' as Kaldi ids; rename one")
        segment = None
        if e.start is not None or e.end is not None:
            start = e.start or 0.0
            end = e.end if e.end is not None else durations.get(e.audio)
            if end is None:
                raise ManifestError(f"{e.where}: a start without an end needs the audio duration (check_audio)")
            if e.audio in durations and end > durations[e.audio] + SEGMENT_TOLERANCE:
                raise ManifestError(f"{e.where}: end {end:.2f} s is after the end of {e.audio} "
                                    f"({durations[e.audio]:.2f} s)")
            segment = (start, end)
        tail = [safe_id(e.id)] if e.id else ([] if spk == reco else [reco])
        if segment and not e.id:
            tail += [f"{round(segment[0] * 100):07d}", f"{round(segment[1] * 100):07d}"]
        utt = "-".join([spk, *tail])
        if utt in ids:
            raise ManifestError(f"{e.where}: utterance id {utt} is also that of {ids[utt]} "
                                "(give each line an id, or a segment)")
        ids[utt] = e.where
        rows.append((utt, e, reco, spk, lang, task, segment))

    use_segments = any(r[6] for r in rows)
    d = kd.DataDir()
    utt2spk, utt2lang, utt2task, src_text = {}, {}, {}, {}
    refs: List[Dict[str, str]] = []
    wav, segments = {}, {}
    for utt, e, reco, spk, lang, task, segment in rows:
        utt2spk[utt], utt2lang[utt], utt2task[utt] = spk, lang, task
        if e.transcript:
            src_text[utt] = e.transcript
        targets = e.translations if task == "st" else [e.transcript]
        for i, target in enumerate(targets):
            if i == len(refs):
                refs.append({})
            refs[i][utt] = target
        if use_segments:
            if wav.setdefault(reco, e.audio) != e.audio:
                raise ManifestError(f"{e.where}: recording id {reco} names two files")
            start, end = segment or (0.0, durations[e.audio])
            segments[utt] = f"{reco} {start:.3f} {end:.3f}"
        else:
            wav[utt] = e.audio
    d.utt["utt2spk"], d.utt["utt2lang"], d.utt["utt2task"] = utt2spk, utt2lang, utt2task
    for i, ref in enumerate(refs):
        d.utt["text" if i == 0 else f"text.{i + 1}"] = ref
    if len(src_text) == len(rows):
        d.utt["src_text"] = src_text
    elif src_text:
        logging.warning("%d of %d utterances have a transcript: no src_text written", len(src_text), len(rows))
    if use_segments:
        d.utt["segments"], d.reco["wav.scp"] = segments, wav
    else:
        d.utt["wav.scp"] = wav
    summary = ImportSummary(
        utterances=len(rows),
        languages=dict(Counter(utt2lang.values())),
        derived_languages=derived,
        fallback_languages=fallback,
        tasks=dict(Counter(utt2task.values())),
        speakers=len(set(utt2spk.values())),
        recordings=len({r[2] for r in rows}),
    )
    return d, summary


def cs_subsets(d: kd.DataDir) -> "OrderedDict[str, kd.DataDir]":
    """``cs`` (utterances labelled cs) and ``mono`` (the others) subsets of ``d``."""
    lang = d.utt["utt2lang"]
    return OrderedDict(
        cs=d.subset(u for u in d.utt_ids() if lang[u] == kd.CODE_SWITCH),
        mono=d.subset(u for u in d.utt_ids() if lang[u] != kd.CODE_SWITCH),
    )


def import_manifest(manifest: str, out: str, lang_pair: str, subsets: bool = False,
                    check_audio: bool = True) -> ImportSummary:
    """Write the data directory of ``manifest`` to ``out`` (and with ``subsets`` the non-empty
    ``out_cs`` / ``out_mono``: code-switched and monolingual utterances)."""
    d, summary = to_data_dir(read_manifest(manifest), lang_pair, check_audio)
    d.write(out)
    if subsets:
        for name, sub in cs_subsets(d).items():
            if len(sub):
                sub.write(f"{out}_{name}")
            else:
                logging.warning("%s: no %s utterances; %s_%s not written", manifest, name, out, name)
    return summary
