"""CS-FLEURS (Hugging Face ``byan/cs-fleurs``; Yan et al., Interspeech 2025) as evaluation sets.

Raw layout (a clone or ``snapshot_download`` of the dataset): one folder per test set,
``read/test`` (real voices), ``xtts/test1``, ``xtts/test2`` (generative TTS), ``mms/test``
(concatenative TTS) (and the ``xtts/train`` training set), each with a ``metadata.jsonl`` whose rows are
``{id, file_name, text, duration, language, speaker[, fluency]}``: ``file_name`` the audio below the folder,
``text`` the code-switched transcript, ``language`` the pair (``cmn-eng``, ``spa-eng``...), ``id``
``<lang>_<n>`` with ``n`` the FLEURS sentence id.

The English reference of row ``<lang>_<n>`` is the FLEURS English sentence ``n``
(``csst_espnet.corpora.fleurs``: ``english_references``).

Every CS-FLEURS sentence is code-switched by construction: ``utt2lang`` is ``cs``, task ``st``. Each
selected folder and pair is one set ``<folder>_<pair>`` (e.g. ``read_test_cmn_eng``).
"""

import json
import os
from typing import Dict, List, Sequence

from csst_espnet.corpora.fleurs import english_references
from csst_espnet.data.manifest import Entry, ImportSummary, ManifestError, to_data_dir

HUB_NAME = "byan/cs-fleurs"
TEST_SETS = ("read/test", "xtts/test1", "xtts/test2", "mms/test")
ISO3 = {"cmn": "zh", "spa": "es", "eng": "en"}  # pair code -> this project's language code


def set_name(folder: str, pair: str) -> str:
    return f"{folder.replace('/', '_')}_{pair.replace('-', '_')}"


def read_set(root: str, folder: str, pair: str, refs: Dict[int, str]) -> List[Entry]:
    """The rows of ``pair`` in ``root/folder`` (none when the folder lacks the pair)."""
    meta = os.path.join(root, folder, "metadata.jsonl")
    if not os.path.isfile(meta):
        raise FileNotFoundError(f"CS-FLEURS: no {meta} (test sets: {list(TEST_SETS)})")
    entries = []
    with open(meta, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if row.get("language") != pair:
                continue
            where = f"{meta}:{n}"
            try:
                sentence = int(str(row["id"]).rsplit("_", 1)[-1])
            except ValueError:
                raise ManifestError(f"{where}: id {row['id']!r} is not <lang>_<FLEURS id>") from None
            if sentence not in refs:
                raise ManifestError(f"{where}: no FLEURS English sentence {sentence} for {row['id']}")
            entries.append(Entry(where=where, audio=os.path.abspath(os.path.join(root, folder, row["file_name"])),
                                 transcript=row["text"].strip(), translations=[refs[sentence]], lang="cs", task="st",
                                 speaker=str(row.get("speaker") or row["id"]), id=str(row["id"])))
    return entries


def prepare(root: str, fleurs_en: str, out: str, folders: Sequence[str] = TEST_SETS,
            pairs: Sequence[str] = ("cmn-eng", "spa-eng")) -> Dict[str, ImportSummary]:
    """Write ``out/<folder>_<pair>`` for every folder and pair (a pair absent from a folder is skipped)."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"CS-FLEURS: no directory {root} (a local copy of {HUB_NAME})")
    refs = english_references(fleurs_en)
    summaries = {}
    for folder in folders:
        for pair in pairs:
            entries = read_set(root, folder, pair, refs)
            if not entries:
                continue
            src = ISO3.get(pair.split("-")[0], pair.split("-")[0])
            d, summaries[set_name(folder, pair)] = to_data_dir(entries, f"{src}-en")
            d.write(os.path.join(out, set_name(folder, pair)))
    return summaries
