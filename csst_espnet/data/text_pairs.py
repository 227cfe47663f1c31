"""Text translation examples as a data directory: a TSV of ``source<TAB>target`` lines becomes
utterances of task ``mt`` (no audio) that a phase's ``data_mixture`` mixes into speech batches.

The directory has ``text`` (the target), ``src_text`` (the source), ``utt2lang`` (the source
language), ``utt2task`` (``mt``) and ``utt2spk`` (one pseudo speaker); no ``wav.scp``. Ids are
``<speaker>-<line number, 6 digits>``.
"""

from typing import Optional

from csst_espnet.data import kaldi_dir as kd


def read_pairs(tsv: str):
    """(line number, source, target) of every non-blank line of ``tsv``; a line that is not two
    non-empty tab-separated fields is an error naming the file and line."""
    with open(tsv, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
                raise ValueError(f"{tsv}:{n}: expected 'source<TAB>target', got {line!r}")
            yield n, " ".join(fields[0].split()), " ".join(fields[1].split())


def text_pair_dir(tsv: str, lang: str, speaker: Optional[str] = None) -> kd.DataDir:
    """The data directory of the pairs in ``tsv``, source language ``lang`` (module docstring);
    ``speaker`` (default ``mt_<lang>``) prefixes every id. A repeated pair is kept once."""
    speaker = speaker or f"mt_{lang}"
    d = kd.DataDir()
    columns = {name: {} for name in ("text", "src_text", "utt2lang", "utt2task", "utt2spk")}
    seen = set()
    for n, source, target in read_pairs(tsv):
        if (source, target) in seen:
            continue
        seen.add((source, target))
        utt = f"{speaker}-{n:06d}"
        for name, value in (("text", target), ("src_text", source), ("utt2lang", lang),
                            ("utt2task", "mt"), ("utt2spk", speaker)):
            columns[name][utt] = value
    if not seen:
        raise ValueError(f"{tsv}: no translation pair")
    d.utt = columns
    return d
