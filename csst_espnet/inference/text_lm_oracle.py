"""The text LM oracle: the stage-6 text LM translating the gold source transcripts of test sets.

The LM reads each ST utterance's ``src_text`` (instead of its speech) after the prompt the speech
model gets (source language from ``utt2lang``; ``utt2task`` ``asr`` utterances are skipped) and
translates it greedily: the speech-free upper bound of a speech model with this LLM. See
docs/architecture.md.
"""

import logging
import os
from typing import List, Sequence, Tuple

from tqdm import tqdm

from csst_espnet.data.kaldi_dir import read_table
from csst_espnet.inference.generate import GenerateOptions, generate, left_pad, pad_id
from csst_espnet.llm.text_lm import load_text_lm


def oracle_sources(data_dir: str) -> List[Tuple[str, str, str]]:
    """``(utt, source language, source transcript)`` of the ST utterances of ``data_dir``."""
    src_path = os.path.join(data_dir, "src_text")
    lang_path = os.path.join(data_dir, "utt2lang")
    for path in (src_path, lang_path):
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} is missing: the oracle needs the source transcripts and languages")
    src = read_table(src_path, unique=True)
    lang = read_table(lang_path, unique=True)
    task_path = os.path.join(data_dir, "utt2task")
    task = read_table(task_path, unique=True) if os.path.exists(task_path) else {}
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
    prefixes = [template.around("st", lang, template.text_ids(text)) for lang, text in sources]
    options = GenerateOptions(beam_size=1, max_new_tokens=max_new_tokens)
    out: List[str] = []
    model.eval()
    starts = range(0, len(prefixes), batch_size)
    for i in tqdm(starts, desc="text LM oracle", unit="batch", disable=not progress):
        ids, mask = left_pad(prefixes[i : i + batch_size], pad_id(tokenizer))
        out.extend(h.text for h in generate(model, tokenizer, mask, input_ids=ids, options=options))
    return out


def run_oracle(model_dir: str, data_dirs: Sequence[str], out_dir: str, batch_size: int = 64,
               max_new_tokens: int = 64, progress: bool = True) -> None:
    """Translate the ST utterances of each data dir into ``out_dir/<set>/text`` (Kaldi text).

    Every set is checked before any is decoded.
    """
    model, tokenizer, template = load_text_lm(model_dir)
    jobs = [(d, oracle_sources(d)) for d in data_dirs]
    for data_dir, sources in jobs:
        name = os.path.basename(os.path.normpath(data_dir))
        hyps = translate(model, tokenizer, template, [(lang, text) for _, lang, text in sources],
                         batch_size, max_new_tokens, progress)
        out = os.path.join(out_dir, name)
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "text"), "w", encoding="utf-8") as f:
            f.writelines(f"{utt} {hyp}\n" for (utt, _, _), hyp in zip(sources, hyps))
        logging.info("%s: %d utterances translated from their transcripts -> %s/text", data_dir, len(hyps), out)
