"""FLEURS (Hugging Face ``google/fleurs``; Conneau et al., 2022): its English sentences as references,
and its X test sets as X->en speech translation evaluation sets.

Layout (a clone or ``snapshot_download`` of the dataset's ``data/``): one folder per locale
(``en_us``, ``fr_fr``, ``de_de``, ``es_419``, ``cmn_hans_cn``...) holding ``{train,dev,test}.tsv`` and the
audio extracted below ``audio/{train,dev,test}/``. A TSV line (no header, tab separated, no quoting) is
``id, file name, raw transcription, normalised transcription, characters, samples, gender``; ``id``
is the FLEURS sentence id, the same for a sentence in every locale, so the English reference of a line
is the ``en_us`` raw transcription with its id.
"""

import csv
import os
from typing import Dict, List

from csst_espnet.data.manifest import Entry, ManifestError

SPLITS = ("train", "dev", "test")


def _rows(path: str):
    """(line number, columns) of a FLEURS TSV."""
    with open(path, encoding="utf-8", newline="") as f:
        for n, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
            if len(row) < 3 or not row[0].isdigit():
                raise ManifestError(f"{path}:{n}: not a FLEURS line (id, file name, raw transcription, ...)")
            yield n, row


def english_references(fleurs_en: str) -> Dict[int, str]:
    """FLEURS sentence id -> English raw transcription, from ``fleurs_en`` (``data/en_us``) ``*.tsv``."""
    refs: Dict[int, str] = {}
    paths = [os.path.join(fleurs_en, f"{s}.tsv") for s in SPLITS]
    found = [p for p in paths if os.path.isfile(p)]
    if not found:
        raise FileNotFoundError(f"FLEURS: no English transcripts in {fleurs_en} (train.tsv, dev.tsv, test.tsv "
                                "of google/fleurs data/en_us)")
    for path in found:
        for _, row in _rows(path):
            refs.setdefault(int(row[0]), row[2].strip())
    return refs


def read_split(locale_dir: str, split: str, lang: str, refs: Dict[int, str]) -> List[Entry]:
    """The lines of ``locale_dir/split.tsv`` as ``lang``->en ST entries (audio ``audio/<split>/<file>``)."""
    path = os.path.join(locale_dir, f"{split}.tsv")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"FLEURS: no {path}")
    entries = []
    for n, row in _rows(path):
        sentence = int(row[0])
        if sentence not in refs:
            raise ManifestError(f"{path}:{n}: no FLEURS English sentence {sentence}")
        entries.append(Entry(where=f"{path}:{n}", audio=os.path.abspath(os.path.join(locale_dir, "audio", split, row[1])),
                             transcript=row[2].strip(), translations=[refs[sentence]], lang=lang, task="st",
                             speaker=f"fleurs{sentence}", id=os.path.splitext(row[1])[0]))
    return entries
