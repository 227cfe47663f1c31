#!/usr/bin/env python3
"""Translate the gold source transcripts of test sets with the text LM: the speech-free upper bound.

    python -m csst_espnet.bin.text_lm_oracle --model_dir exp/text_lm \\
        --data_dir dump/raw/test_cs --data_dir dump/raw/test_mono \\
        --out_dir exp/text_lm_oracle/gold_transcripts

The stage-6 LLM reads each ST utterance's ``src_text`` (instead of its speech) after the same
prompt the speech model gets, and translates it greedily. ``OUT_DIR/<set>/text`` holds the
translations in Kaldi text format, so that stage 14 scores them like any decoding; a speech model
cannot be expected to do better than its LLM on the exact transcript.

The prompt's source language is the utterance's ``utt2lang`` label; utterances whose ``utt2task``
is ``asr`` are skipped. The prompt options are those the text LM was trained with
(``train_text_lm.json`` in ``--model_dir``).
"""

import argparse
import json
import logging
import os
import sys
from functools import partial
from typing import Dict, List, Optional, Sequence, Tuple

from csst_espnet.metrics.scoring import read_kaldi_text
from csst_espnet.utils.cli import add_option

def oracle_sources(data_dir: str) -> List[Tuple[str, str, str]]:
    """``(utt, source language, source transcript)`` of the ST utterances of ``data_dir``."""
    src_path = os.path.join(data_dir, "src_text")
    lang_path = os.path.join(data_dir, "utt2lang")
    for path in (src_path, lang_path):
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} is missing: the oracle needs the source transcripts and languages")
    src = read_kaldi_text(src_path)
    lang = read_kaldi_text(lang_path)
    task_path = os.path.join(data_dir, "utt2task")
    task = read_kaldi_text(task_path) if os.path.exists(task_path) else {}
    out = []
    for utt in sorted(lang):
        if task.get(utt, "st") != "st":
            continue
        if not src.get(utt):
            raise ValueError(f"{src_path}: no source transcript for utterance {utt}")
        out.append((utt, lang[utt], src[utt]))
    return out


def translate(model, tokenizer, template, sources: Sequence[Tuple[str, str]], batch_size: int = 64,
              max_new_tokens: int = 64, progress: bool = False) -> List[str]:
    """Greedy translations of ``(source language, text)`` pairs, batched with left padding."""
    import torch
    from tqdm import tqdm

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    prefixes = [template.ids("st", lang) + tokenizer(text, add_special_tokens=False)["input_ids"]
                for lang, text in sources]
    out: List[str] = []
    model.eval()
    starts = range(0, len(prefixes), batch_size)
    for i in tqdm(starts, desc="text LM oracle", unit="batch", disable=not progress):
        chunk = prefixes[i : i + batch_size]
        width = max(len(p) for p in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for b, p in enumerate(chunk):
            ids[b, width - len(p):] = torch.tensor(p)
            mask[b, width - len(p):] = 1
        with torch.no_grad():
            seqs = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                  do_sample=False, num_beams=1, eos_token_id=tokenizer.eos_token_id,
                                  pad_token_id=pad)
        for seq in seqs[:, width:].tolist():
            if tokenizer.eos_token_id in seq:
                seq = seq[: seq.index(tokenizer.eos_token_id)]
            out.append(tokenizer.decode(seq, skip_special_tokens=True).strip())
    return out


def load_text_lm(model_dir: str):
    """(model, tokenizer, prompt template) of a ``train_text_lm`` output directory."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from csst_espnet.text.prompt import PromptTemplate

    info_path = os.path.join(model_dir, "train_text_lm.json")
    if not os.path.exists(info_path):
        raise FileNotFoundError(f"{info_path} is missing: --model_dir must be a train_text_lm output")
    with open(info_path, encoding="utf-8") as f:
        info = json.load(f)
    tokenizer = AutoTokenizer.from_pretrained(model_dir if info.get("tokenizer_in_model_dir", True)
                                              else info["tokenizer"])
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    return model, tokenizer, PromptTemplate(tokenizer, **(info["config"].get("prompt_conf") or {}))


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m csst_espnet.bin.text_lm_oracle", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    opt = partial(add_option, p)
    opt("model_dir", required=True, help="output directory of csst_espnet.bin.train_text_lm (stage 6)")
    opt("data_dir", required=True, action="append", help="test set with src_text and utt2lang (repeat)")
    opt("out_dir", required=True, help="writes OUT_DIR/<set>/text")
    opt("batch_size", type=int, default=64)
    opt("max_new_tokens", type=int, default=64)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    args = get_parser().parse_args(argv)
    try:
        model, tokenizer, template = load_text_lm(args.model_dir)
        jobs = [(d, oracle_sources(d)) for d in args.data_dir]  # every set checked before decoding
    except (ValueError, FileNotFoundError, OSError) as e:
        print(f"text_lm_oracle: {e}", file=sys.stderr)
        return 1
    for data_dir, sources in jobs:
        name = os.path.basename(os.path.normpath(data_dir))
        hyps = translate(model, tokenizer, template, [(lang, text) for _, lang, text in sources],
                         args.batch_size, args.max_new_tokens, progress=True)
        out = os.path.join(args.out_dir, name)
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "text"), "w", encoding="utf-8") as f:
            f.writelines(f"{utt} {hyp}\n" for (utt, _, _), hyp in zip(sources, hyps))
        logging.info("%s: %d utterances translated from their transcripts -> %s/text", data_dir, len(hyps), out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
