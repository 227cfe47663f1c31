"""NTUML2021 (Hugging Face ``ky552/ML2021_ASR_ST``): Mandarin-English machine-learning lectures -> English.

Raw layout, as ``huggingface_hub.snapshot_download(repo_type="dataset")`` leaves it: parquet shards
``<root>/data/<split>-NNNNN-of-MMMMM-<hash>.parquet`` (also accepted: ``<root>/<split>-*.parquet``
and the hub's converted ``<root>/default/<split>/*.parquet``), splits ``train``, ``dev``, ``test``,
columns ``audio`` (the Hugging Face audio struct ``{bytes, path}``, 16 kHz), ``transcription``
(Mandarin-English transcript), ``translation`` (English) and ``file`` (the segment's name).

Each row's audio bytes are written to ``<audio_dir>/<split>/<id><ext>`` (``ext`` from the struct's
path, default ``.wav``) and the rows go through the manifest rules (:mod:`csst_espnet.data.manifest`)
with the pair ``zh-en``: language labels from the transcript's script, task ``st``. The lectures have
one lecturer and no speaker column: every utterance of a split has the speaker ``ntuml2021_<split>``.

**CS / monolingual split** (written rule, ``csst_espnet.data.language_id.zh_en``): a transcript with
Han characters and Latin letters is code-switched (``cs``); Han only is ``zh``; Latin only is ``en``.
Each split is written whole (``<out>/<split>``) and as ``<out>/<split>_cs`` and ``<out>/<split>_mono``.
"""

import glob
import logging
import os
import re
from typing import Dict, List, Sequence

from csst_espnet.data.manifest import Entry, ImportSummary, ManifestError, cs_subsets, safe_id, to_data_dir

HUB_NAME = "ky552/ML2021_ASR_ST"
SPLITS = ("train", "dev", "test")
COLUMNS = ("audio", "transcription", "translation")
LANG_PAIR = "zh-en"


def shards(root: str, split: str) -> List[str]:
    """The parquet shards of ``split`` under ``root`` (sorted)."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"NTUML2021: no directory {root} (set NTUML2021 in db.sh to the local copy of "
                                f"{HUB_NAME}, or give its hub name)")
    for pattern in (f"data/{split}-*.parquet", f"{split}-*.parquet", f"default/{split}/*.parquet"):
        found = sorted(glob.glob(os.path.join(root, pattern)))
        if found:
            return found
    raise FileNotFoundError(f"NTUML2021: no parquet shards of split '{split}' in {root} "
                            f"(looked for data/{split}-*.parquet, {split}-*.parquet, default/{split}/*.parquet)")


def read_split(root: str, split: str, audio_dir: str) -> List[Entry]:
    """The rows of ``split`` as manifest entries, their audio written under ``audio_dir/split``."""
    import pyarrow.parquet as pq

    out_dir = os.path.join(audio_dir, split)
    os.makedirs(out_dir, exist_ok=True)
    entries: List[Entry] = []
    for shard in shards(root, split):
        table = pq.read_table(shard)
        missing = [c for c in COLUMNS if c not in table.column_names]
        if missing:
            raise ManifestError(f"{shard}: no column(s) {missing} (columns: {table.column_names})")
        names = table.column("file").to_pylist() if "file" in table.column_names else [None] * table.num_rows
        for i, (audio, src, tgt, name) in enumerate(zip(table.column("audio").to_pylist(),
                                                       table.column("transcription").to_pylist(),
                                                       table.column("translation").to_pylist(), names)):
            where = f"{shard}: row {i}"
            if not isinstance(audio, dict) or not audio.get("bytes"):
                raise ManifestError(f"{where}: no audio bytes in the audio struct")
            stem = safe_id(os.path.splitext(os.path.basename(name or audio.get("path") or ""))[0]) \
                if (name or audio.get("path")) else f"{len(entries):06d}"
            ext = os.path.splitext(audio.get("path") or "")[1].lower() or ".wav"
            path = os.path.join(out_dir, f"{len(entries):06d}_{stem}{ext}")
            with open(path, "wb") as f:
                f.write(audio["bytes"])
            entries.append(Entry(where=where, audio=os.path.abspath(path), transcript=(src or "").strip(),
                                 translations=[(tgt or "").strip()] if (tgt or "").strip() else [],
                                 speaker=f"ntuml2021_{split}", id=f"{len(entries):06d}_{stem}"))
    return entries


def download(name: str, cache_dir: str) -> str:
    """A local copy of the hub dataset ``name`` (parquet shards only); needs the network."""
    from huggingface_hub import snapshot_download

    return snapshot_download(name, repo_type="dataset", allow_patterns=["data/*.parquet", "*.md"], cache_dir=cache_dir)


def prepare(source: str, out: str, audio_dir: str, splits: Sequence[str] = SPLITS,
            cache_dir: str = "downloads") -> Dict[str, ImportSummary]:
    """Write ``out/<split>``, ``out/<split>_cs``, ``out/<split>_mono`` for every split of ``source`` (a local
    copy, or a hub name such as ``ky552/ML2021_ASR_ST`` when the path does not exist)."""
    root = source
    if not os.path.exists(source) and re.fullmatch(r"[\w.-]+/[\w.-]+", source):
        logging.info("NTUML2021: %s is not a local directory: downloading the hub dataset", source)
        root = download(source, cache_dir)
    summaries = {}
    for split in splits:
        d, summary = to_data_dir(read_split(root, split, audio_dir), LANG_PAIR)
        d.write(os.path.join(out, split))
        for name, sub in cs_subsets(d).items():
            if len(sub):
                sub.write(os.path.join(out, f"{split}_{name}"))
        summaries[split] = summary
    return summaries
