"""ESPnet's own speech-translation model as a baseline of the pipeline (``csst.sh --baselines espnet_st``).

The baseline is trained, decoded and scored by ESPnet's own binaries (``espnet2.bin.st_train``,
``espnet2.bin.st_inference``, ``espnet2.bin.tokenize_text``, ``espnet2.bin.aggregate_stats_dirs``) on
the data the pipeline formatted (``dump/raw``); this module prepares what those binaries read:

- :func:`prepare_dir`: the speech-translation utterances of one or more data dirs (``utt2task`` st)
  in one directory with ``wav.scp``, ``text`` (translation) and, when every utterance has one,
  ``src_text`` (transcript: ESPnet's ASR multi-task, ``model_conf.asr_weight``).
- :func:`train_bpe`: a sentencepiece unigram model of a text column (target or source text); the
  token list is written by ``espnet2.bin.tokenize_text`` (stage 7 of csst.sh).
- :func:`shape_files`: ESPnet's ``<name>_shape.bpe`` files (length, vocabulary size) from the
  ``<name>_shape`` files of ``st_train --collect_stats true``.

See docs/architecture.md §4 (stages 7, 8, 12-14).
"""

import os
from typing import Dict, List, Optional, Sequence

from csst_espnet.data import kaldi_dir as kd
from csst_espnet.recipe.data_ops import RecipeError

TASK = "st"  # utt2task of the utterances the baseline trains on


def prepare_dir(out: str, dirs: Sequence[str], task: str = TASK) -> Dict:
    """Write the ``task`` utterances of ``dirs`` (all of them when a dir has no ``utt2task``) into ``out``.

    Returns ``{"utts": N, "src_text": bool, "dropped": {dir: count}}``. ``src_text`` is written only when
    every kept utterance has a non-empty transcript (ESPnet's ST model trains its ASR branch on every
    utterance or on none). Raises :class:`RecipeError` naming the file and utterance of a missing or
    empty translation, or a repeated id."""
    if not dirs:
        raise RecipeError("no data directory to prepare the ESPnet ST data from")
    wav: Dict[str, str] = {}
    text: Dict[str, str] = {}
    src: Dict[str, Optional[str]] = {}
    extra: Dict[str, Dict[str, str]] = {"utt2spk": {}, "utt2lang": {}}
    origin: Dict[str, str] = {}
    dropped: Dict[str, int] = {}
    for dirname in dirs:
        d = kd.DataDir.read(dirname)
        if d.has_segments:
            raise RecipeError(f"{dirname} has segments: format it (stage 3) first")
        if "text" not in d.utt:
            raise RecipeError(f"{dirname} has no text (the translations)")
        tasks = d.utt.get("utt2task")
        kept = [u for u in d.utt_ids() if tasks is None or tasks.get(u) == task]
        dropped[dirname] = len(d) - len(kept)
        for u in kept:
            if u in origin:
                raise RecipeError(f"utterance {u} is in {origin[u]} and {dirname}")
            origin[u] = dirname
            if u not in d.utt.get("wav.scp", {}):
                raise RecipeError(f"{dirname}/wav.scp: no entry for utterance {u}")
            t = d.utt["text"].get(u, "").strip()
            if not t:
                raise RecipeError(f"{dirname}/text: no translation for utterance {u}")
            wav[u], text[u] = d.utt["wav.scp"][u], t
            s = d.utt.get("src_text", {}).get(u, "").strip()
            src[u] = s or None
            for name, table in extra.items():
                if u in d.utt.get(name, {}):
                    table[u] = d.utt[name][u]
    if not wav:
        raise RecipeError(f"no utterance with utt2task {task} in {' '.join(dirs)}")
    out_dir = kd.DataDir()
    out_dir.utt["wav.scp"] = wav
    out_dir.utt["text"] = text
    has_src = all(v is not None for v in src.values())
    if has_src:
        out_dir.utt["src_text"] = {u: v for u, v in src.items() if v is not None}
    for name, table in extra.items():
        if len(table) == len(wav):
            out_dir.utt[name] = table
    if "utt2spk" not in out_dir.utt:
        out_dir.utt["utt2spk"] = {u: u for u in wav}
    out_dir.write(out)
    return {"utts": len(wav), "src_text": has_src, "dropped": dropped,
            "without_src_text": sorted(u for u, v in src.items() if v is None)[:5]}


def text_column(kaldi_text: str, out: str) -> int:
    """The text of a Kaldi ``utt text`` file, one line per utterance, into ``out``; returns the count."""
    table = kd.read_table(kaldi_text)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        f.write("".join(v + "\n" for v in table.values()))
    return len(table)


def train_bpe(kaldi_text: str, out_dir: str, vocab_size: int, model_type: str = "unigram") -> str:
    """A sentencepiece model ``out_dir/bpe.model`` of the text of ``kaldi_text`` (every character kept:
    Mandarin and English alike); returns its path.

    The vocabulary is capped at what the text allows (sentencepiece refuses a larger one): small
    corpora get the largest vocabulary their text has, and the cap is logged in ``out_dir/bpe.log``."""
    import sentencepiece as spm

    os.makedirs(out_dir, exist_ok=True)
    train_txt = os.path.join(out_dir, "train.txt")
    if text_column(kaldi_text, train_txt) == 0:
        raise RecipeError(f"{kaldi_text} is empty: no text to train a BPE model on")
    prefix = os.path.join(out_dir, "bpe")
    size = vocab_size
    log = []
    while True:
        try:
            spm.SentencePieceTrainer.train(
                input=train_txt, model_prefix=prefix, vocab_size=size, model_type=model_type,
                character_coverage=1.0, input_sentence_size=100000000, minloglevel=2)
            break
        except RuntimeError as e:  # "Vocabulary size too high (N). Please set it to a value <= M."
            msg = str(e)
            if "<=" not in msg:
                raise RecipeError(f"sentencepiece on {kaldi_text}: {msg}") from e
            limit = int(msg.rsplit("<=", 1)[1].strip().rstrip("."))
            if limit >= size:
                raise RecipeError(f"sentencepiece on {kaldi_text}: {msg}") from e
            log.append(f"vocabulary {size} too large for {kaldi_text}: {limit}")
            size = limit
    with open(os.path.join(out_dir, "bpe.log"), "w", encoding="utf-8") as f:
        f.write("".join(x + "\n" for x in log) + f"vocab_size {size} (asked {vocab_size})\n")
    return prefix + ".model"


def shape_files(stats_dir: str, token_lists: Dict[str, str], token_type: str = "bpe") -> List[str]:
    """``<stats_dir>/{train,valid}/<name>_shape.<token_type>`` with the vocabulary size of
    ``token_lists[name]`` appended to each length (ESPnet's batching reads ``length,vocab``); returns
    the files written."""
    written = []
    for name, token_list in token_lists.items():
        with open(token_list, encoding="utf-8") as f:
            vocab = sum(1 for line in f if line.strip())
        for mode in ("train", "valid"):
            src = os.path.join(stats_dir, mode, f"{name}_shape")
            if not os.path.exists(src):
                raise RecipeError(f"{src} is missing: run the shape statistics (st_train --collect_stats) first")
            table = kd.read_table(src)
            dst = f"{src}.{token_type}"
            kd.write_table(dst, {u: f"{v},{vocab}" for u, v in table.items()})
            written.append(dst)
    return written
