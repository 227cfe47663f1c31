"""CoVoST 2 X->en (Wang et al., 2020) on a local Common Voice copy, with FLEURS X->en test sets.

Raw layout:

- **Common Voice** (the release CoVoST 2 was cut from, version 4): ``<cv_root>/<locale>/validated.tsv``
  (a header row; columns ``client_id``, ``path``, ``sentence``, ...) and ``<cv_root>/<locale>/clips/<path>``
  (MP3; soundfile reads it).
- **CoVoST 2 translations**: ``<covost_dir>/covost_v2.<locale>_en.tsv`` (a header row; columns ``path``,
  ``translation``, ``split``, others ignored), the release's file: joined with ``validated.tsv`` on ``path``
  for the transcript and the speaker; ``split`` ``train`` and ``train_covost`` make the training set,
  ``dev`` and ``test`` the others. The per-split files that CoVoST's own ``get_covost_splits.py`` writes,
  ``covost_v2.<locale>_en.<split>.tsv`` (``path``, ``sentence``, ``translation``, ``client_id``), are read
  instead where the release file is absent.

TSVs are read as CoVoST writes them: tab separated, no quoting, ``\\`` escapes. A CoVoST line whose clip
is not in ``validated.tsv`` (another Common Voice version) is an error naming the line, unless
``allow_missing``: then such lines are left out and counted in the log.

Sets: ``<split>_<lang>`` (``train_fr``, ``dev_fr``, ``test_fr``...; ``lang`` the locale's language,
``zh-CN`` -> ``zh``), task ``st``, ``utt2lang`` the source language, ``src_text`` the transcript; with
FLEURS, ``fleurs_test_<lang>`` (``csst_espnet.corpora.fleurs``). Speakers: ``<lang>`` + the first 16
characters of Common Voice's ``client_id``; utterances ``<speaker>-<clip name>``.
"""

import csv
import logging
import os
from typing import Dict, List, Optional, Sequence, Tuple

from csst_espnet.corpora import fleurs
from csst_espnet.data.manifest import Entry, ImportSummary, ManifestError, to_data_dir

SPLITS = ("train", "dev", "test")
SPLIT_OF = {"train": "train", "train_covost": "train", "dev": "dev", "test": "test"}
# CoVoST 2 X->en source locales (Common Voice names) -> this project's language codes
LANGUAGES = {"fr": "fr", "de": "de", "es": "es", "ca": "ca", "it": "it", "ru": "ru", "zh-CN": "zh", "pt": "pt",
             "fa": "fa", "et": "et", "mn": "mn", "nl": "nl", "tr": "tr", "ar": "ar", "sv-SE": "sv", "lv": "lv",
             "sl": "sl", "ta": "ta", "ja": "ja", "id": "id", "cy": "cy"}
FLEURS_LOCALES = {"fr": "fr_fr", "de": "de_de", "es": "es_419", "zh": "cmn_hans_cn", "ca": "ca_es", "it": "it_it",
                  "ru": "ru_ru", "pt": "pt_br", "fa": "fa_ir", "et": "et_ee", "mn": "mn_mn", "nl": "nl_nl",
                  "tr": "tr_tr", "ar": "ar_eg", "sv": "sv_se", "lv": "lv_lv", "sl": "sl_si", "ta": "ta_in",
                  "ja": "ja_jp", "id": "id_id", "cy": "cy_gb"}
SPEAKER_CHARS = 16


def read_tsv(path: str, required: Sequence[str]) -> List[Tuple[str, Dict[str, str]]]:
    """(``file:line``, row) of a CoVoST / Common Voice TSV with a header naming at least ``required``."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"CoVoST 2: no {path}")
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise ManifestError(f"{path}:1: the header has no column {', '.join(missing)} "
                                f"(found: {', '.join(reader.fieldnames or [])})")
        rows = []
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if None in row or any(v is None for v in row.values()):  # more columns, or fewer, than the header
                raise ManifestError(f"{where}: its columns do not match the header's {len(reader.fieldnames)}")
            rows.append((where, row))
    return rows


def _speaker(lang: str, client_id: str) -> str:
    return f"{lang}{client_id[:SPEAKER_CHARS]}"


def read_pair(cv_root: str, covost_dir: str, locale: str, allow_missing: bool = False) -> Dict[str, List[Entry]]:
    """Split name -> the ST entries of ``locale``->en (see the module docstring)."""
    lang = LANGUAGES.get(locale)
    if lang is None:
        raise ValueError(f"CoVoST 2: {locale} is not a X->en source locale ({', '.join(LANGUAGES)})")
    clips = os.path.join(cv_root, locale, "clips")
    by_split: Dict[str, List[Entry]] = {s: [] for s in SPLITS}

    def entry(where: str, path: str, sentence: str, translation: str, client_id: str) -> Entry:
        return Entry(where=where, audio=os.path.abspath(os.path.join(clips, path)), transcript=sentence.strip(),
                     translations=[translation.strip()], lang=lang, task="st", speaker=_speaker(lang, client_id),
                     id=os.path.splitext(path)[0])

    release = os.path.join(covost_dir, f"covost_v2.{locale}_en.tsv")
    if not os.path.isfile(release) and all(
            os.path.isfile(os.path.join(covost_dir, f"covost_v2.{locale}_en.{s}.tsv")) for s in SPLITS):
        for split in SPLITS:
            for where, row in read_tsv(os.path.join(covost_dir, f"covost_v2.{locale}_en.{split}.tsv"),
                                       ("path", "sentence", "translation", "client_id")):
                by_split[split].append(entry(where, row["path"], row["sentence"], row["translation"], row["client_id"]))
        return by_split
    validated = {row["path"]: (where, row) for where, row in
                 read_tsv(os.path.join(cv_root, locale, "validated.tsv"), ("client_id", "path", "sentence"))}
    missing = []
    for where, row in read_tsv(release, ("path", "translation", "split")):
        split = SPLIT_OF.get(row["split"])
        if split is None:
            raise ManifestError(f"{where}: split {row['split']!r} is not one of {', '.join(SPLIT_OF)}")
        if row["path"] not in validated:
            missing.append(where)
            continue
        cv = validated[row["path"]][1]
        by_split[split].append(entry(where, row["path"], cv["sentence"], row["translation"], cv["client_id"]))
    if missing and not allow_missing:
        raise ManifestError(f"{missing[0]}: clip not in {os.path.join(cv_root, locale, 'validated.tsv')} "
                            f"({len(missing)} such lines; CoVoST 2 was cut from Common Voice 4; "
                            "allow_missing leaves them out)")
    if missing:
        logging.warning("%s: %d lines whose clip is not in this Common Voice copy left out (e.g. %s)",
                        release, len(missing), missing[0])
    return by_split


def prepare(cv_root: str, covost_dir: str, out: str, locales: Sequence[str] = ("fr", "de", "es", "zh-CN"),
            splits: Sequence[str] = SPLITS, fleurs_root: Optional[str] = None, allow_missing: bool = False,
            check_audio: bool = True) -> Dict[str, ImportSummary]:
    """Write ``out/<split>_<lang>`` for every locale and split and, with ``fleurs_root`` (google/fleurs
    ``data/``), ``out/fleurs_test_<lang>``."""
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise ValueError(f"CoVoST 2: unknown splits {unknown} (splits: {', '.join(SPLITS)})")
    refs = fleurs.english_references(os.path.join(fleurs_root, "en_us")) if fleurs_root else None
    no_fleurs = [loc for loc in locales if refs is not None and LANGUAGES.get(loc) not in FLEURS_LOCALES]
    if no_fleurs:
        raise ValueError(f"CoVoST 2: no FLEURS locale known for {', '.join(no_fleurs)}")
    summaries = {}
    for locale in locales:
        lang = LANGUAGES.get(locale, locale)
        by_split = read_pair(cv_root, covost_dir, locale, allow_missing)
        sets = [(f"{s}_{lang}", by_split[s]) for s in splits]
        if refs is not None:
            sets.append((f"fleurs_test_{lang}", fleurs.read_split(
                os.path.join(fleurs_root, FLEURS_LOCALES[lang]), "test", lang, refs)))
        for name, entries in sets:
            if not entries:
                raise ManifestError(f"CoVoST 2: no utterances for {name}")
            d, summaries[name] = to_data_dir(entries, f"{lang}-en", check_audio)
            d.write(os.path.join(out, name))
    return summaries
