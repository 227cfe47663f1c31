"""The small text LM that serves as a recipe's LLM: building, training examples, training, loading.

The model is a standard transformers architecture (``LlamaForCausalLM`` or ``Qwen2ForCausalLM``, a
small config) with the vocabulary of the recipe's tokenizer. It learns from three kinds of
examples, each laid out the way the speech model's LLM input will look (``[prompt][speech][target]``,
the prompt rendered by :class:`csst_espnet.text.prompt.PromptTemplate`, speech replaced by the
source text):

- monolingual text, as a language model: ``<s> text </s>``;
- monolingual text, as ASR: ``[asr prompt(lang)] text | text </s>``;
- translation pairs (``src<TAB>tgt``; the source is ``zh`` or, when it mixes Chinese characters and
  Latin words, ``cs``): ``[st prompt(src lang)] src | tgt </s>``.

Repeated sentences and pairs (e.g. the same text from the corpus' LM text and its training sets)
count once. The loss covers everything after the prompt (the source as a language model, then the
target), or with ``source_loss: false`` the target only. See docs/architecture.md.

The speech model must render the prompts the LM learnt (its ``prompt_conf`` and tokenizer, recorded in
``train_text_lm.json``): the task checks it (:func:`check_prompts`) whenever it builds a model on a
text LM.
"""

import json
import logging
import math
import os
import random
import re
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import yaml

DEFAULTS = dict(
    arch="llama",
    hidden_size=256,
    num_layers=4,
    num_heads=4,
    num_kv_heads=2,
    intermediate_size=768,
    tie_word_embeddings=False,
    max_positions=512,
    steps=1500,
    batch_size=32,
    lr=2e-3,
    warmup_steps=100,
    weight_decay=0.01,
    valid_fraction=0.02,
    seed=0,
    asr_examples=True,
    lm_examples=True,
    source_loss=True,
    prompt_conf={},
)
INFO_FILE = "train_text_lm.json"  # what train() records, beside the model
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")


@dataclass
class Example:
    ids: List[int]
    loss_from: int  # first position whose token is predicted (tokens before it are prompt)
    kind: str
    target_from: int = 0  # first token of the target (after the source); for target accuracy


def source_language(text: str, default: str = "zh") -> str:
    """``cs`` for text mixing Chinese characters and Latin words, else ``default``."""
    return "cs" if _CJK.search(text) and _LATIN.search(text) else default


def build_examples(tokenizer, template, mono: Sequence[Tuple[str, str]], pairs: Sequence[Tuple[str, str]],
                   asr_examples: bool = True, lm_examples: bool = True, max_len: int = 512,
                   source_loss: bool = True) -> List[Example]:
    """Examples from ``mono`` ``(lang, text)`` and ``pairs`` ``(src, tgt)``; see the module doc.

    ``source_loss``: the loss also covers the source of ASR / ST examples (the LM learns the source
    text's distribution too); without it only the target is predicted, so that the LM relies on the
    source rather than on its prior (the speech model then has to use the speech).
    """
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    if bos is None or eos is None:
        raise ValueError("the tokenizer needs bos and eos tokens")

    def enc(text: str) -> List[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    out: List[Example] = []
    mono = list(dict.fromkeys(mono))  # the same sentence from several sources counts once
    pairs = list(dict.fromkeys(pairs))
    for lang, text in mono:
        ids = enc(text)
        if lm_examples:
            out.append(Example([bos] + ids + [eos], 1, "lm", 1))
        if asr_examples:
            prompt = template.ids("asr", lang)
            start = len(prompt) + len(ids)
            out.append(Example(prompt + ids + ids + [eos], len(prompt) if source_loss else start, "asr", start))
    for src, tgt in pairs:
        prompt = template.ids("st", source_language(src))
        src_ids = enc(src)
        start = len(prompt) + len(src_ids)
        out.append(Example(prompt + src_ids + enc(tgt) + [eos], len(prompt) if source_loss else start, "st", start))
    too_long = [e for e in out if len(e.ids) > max_len]
    if too_long:
        raise ValueError(f"{len(too_long)} examples are longer than max_positions={max_len}")
    return out


def read_mono(spec: str) -> List[Tuple[str, str]]:
    """``LANG:FILE`` -> [(lang, line)]."""
    if ":" not in spec:
        raise ValueError(f"--mono expects LANG:FILE, got {spec!r}")
    lang, path = spec.split(":", 1)
    with open(path, encoding="utf-8") as f:
        return [(lang, line.strip()) for line in f if line.strip()]


def read_pairs(path: str) -> List[Tuple[str, str]]:
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            cols = line.rstrip("\n").split("\t")
            if len(cols) != 2 or not cols[0].strip() or not cols[1].strip():
                raise ValueError(f"{path}:{n}: expected 'source<TAB>target'")
            out.append((cols[0].strip(), cols[1].strip()))
    return out


def build_model(conf: Dict, tokenizer):
    """A randomly initialised small causal LM of a standard architecture."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=conf["hidden_size"],
        intermediate_size=conf["intermediate_size"],
        num_hidden_layers=conf["num_layers"],
        num_attention_heads=conf["num_heads"],
        num_key_value_heads=conf["num_kv_heads"],
        max_position_embeddings=conf["max_positions"],
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=conf["tie_word_embeddings"],
    )
    if conf["arch"] == "qwen2":
        return Qwen2ForCausalLM(Qwen2Config(**common))
    if conf["arch"] == "llama":
        return LlamaForCausalLM(LlamaConfig(**common))
    raise ValueError(f"arch must be qwen2 or llama, got {conf['arch']!r}")


def collate(examples: Sequence[Example], pad_id: int):
    """Right-padded input ids, attention mask and labels (-100 on prompt and padding)."""
    import torch

    width = max(len(e.ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e.ids)
        ids[i, :n] = torch.tensor(e.ids)
        mask[i, :n] = 1
        labels[i, e.loss_from : n] = ids[i, e.loss_from : n]
    return ids, mask, labels


def lr_at(step: int, conf: Dict) -> float:
    """Linear warmup, then cosine decay to 10% of the peak."""
    peak, warm, total = conf["lr"], conf["warmup_steps"], conf["steps"]
    if step < warm:
        return peak * (step + 1) / warm
    progress = min(1.0, (step - warm) / max(1, total - warm))
    return peak * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def evaluate(model, examples: Sequence[Example], pad_id: int, batch_size: int) -> Tuple[float, Dict[str, float]]:
    """Mean token loss after the prompt, and per kind the accuracy of target tokens (teacher forced)."""
    import torch

    if not examples:
        return float("nan"), {}
    model.eval()
    total, count = 0.0, 0
    hits: Dict[str, List[int]] = {}
    with torch.no_grad():
        for i in range(0, len(examples), batch_size):
            chunk = examples[i : i + batch_size]
            ids, mask, labels = collate(chunk, pad_id)
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
            target = labels[:, 1:]
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.size(-1)), target.reshape(-1), ignore_index=-100, reduction="sum"
            )
            total += loss.item()
            count += int((target != -100).sum())
            pred = logits.argmax(-1)
            for b, e in enumerate(chunk):
                span = slice(e.target_from - 1, len(e.ids) - 1)  # predictions of target tokens
                right = int((pred[b, span] == target[b, span]).sum())
                h = hits.setdefault(e.kind, [0, 0])
                h[0] += right
                h[1] += len(e.ids) - e.target_from
    model.train()
    return total / max(1, count), {k: round(100.0 * r / max(1, n), 2) for k, (r, n) in hits.items()}


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model")


def check_saved_tokenizer(tokenizer, out_dir: str, examples: Sequence[Example], n: int = 50) -> bool:
    """Whether ``AutoTokenizer.from_pretrained(out_dir)`` tokenizes as ``tokenizer`` does.

    transformers picks the tokenizer class of some architectures from the model type and ignores the
    saved one (in 5.x every ``qwen2`` model gets ``Qwen2Tokenizer``), which would silently change
    the tokenization. When it does, the tokenizer files are removed from ``out_dir`` so that nothing
    loads the wrong one; load the tokenizer from its own directory instead.
    """
    from transformers import AutoTokenizer

    reloaded = AutoTokenizer.from_pretrained(out_dir, trust_remote_code=False)
    texts = [tokenizer.decode(e.ids, skip_special_tokens=False) for e in examples[:n]]
    texts.append("Transcribe the speech.\n我们用 gradient descent 来训练")
    same = type(reloaded) is type(tokenizer) and all(
        reloaded(t, add_special_tokens=False)["input_ids"] == tokenizer(t, add_special_tokens=False)["input_ids"]
        for t in texts
    )
    if not same:
        for name in TOKENIZER_FILES:
            path = os.path.join(out_dir, name)
            if os.path.exists(path):
                os.remove(path)
        logging.warning("AutoTokenizer loads %s for this architecture from %s, which tokenizes differently: "
                        "the tokenizer is not saved with the model; load it from its own directory",
                        type(reloaded).__name__, out_dir)
    return same


def train(conf: Dict, tokenizer_dir: str, out_dir: str, mono: Sequence[Tuple[str, str]],
          pairs: Sequence[Tuple[str, str]], progress: bool = True) -> Dict:
    """Train on ``mono`` ``(lang, text)`` and ``pairs`` ``(src, tgt)`` with the tokenizer of
    ``tokenizer_dir``; save the model to ``out_dir``; returns what ``train_text_lm.json`` records."""
    import torch
    from tqdm import tqdm
    from transformers import AutoTokenizer

    from csst_espnet.text.prompt import PromptTemplate

    conf = dict(DEFAULTS, **conf)
    unknown = set(conf) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown text LM config keys {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    if conf["arch"] not in ("llama", "qwen2"):
        raise ValueError(f"arch must be llama or qwen2, got {conf['arch']!r}")
    random.seed(conf["seed"])
    torch.manual_seed(conf["seed"])
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, trust_remote_code=False)
    if tokenizer.pad_token_id is None:
        raise ValueError(f"{tokenizer_dir}: the tokenizer has no pad token")
    template = PromptTemplate(tokenizer, **(conf["prompt_conf"] or {}))
    examples = build_examples(tokenizer, template, mono, pairs, conf["asr_examples"], conf["lm_examples"],
                              conf["max_positions"], conf["source_loss"])
    if not examples:
        raise ValueError("no training text for the text LM")
    rng = random.Random(conf["seed"])
    rng.shuffle(examples)
    n_valid = int(len(examples) * conf["valid_fraction"])
    valid, train_set = examples[:n_valid], examples[n_valid:]

    model = build_model(conf, tokenizer)
    n_params = sum(p.numel() for p in model.parameters())
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optim = torch.optim.AdamW(
        [{"params": decay, "weight_decay": conf["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=conf["lr"], betas=(0.9, 0.98),
    )
    model.train()
    order: List[int] = []
    curve = []
    start = time.time()
    bs = conf["batch_size"]
    smooth = None
    with tqdm(total=conf["steps"], desc="text LM", unit="step", disable=not progress, mininterval=1.0) as bar:
        for step in range(conf["steps"]):
            if len(order) < bs:
                more = list(range(len(train_set)))
                rng.shuffle(more)
                order += more
            batch = [train_set[i] for i in order[:bs]]
            del order[:bs]
            ids, mask, labels = collate(batch, tokenizer.pad_token_id)
            for group in optim.param_groups:
                group["lr"] = lr_at(step, conf)
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            optim.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optim.step()
            value = loss.item()
            smooth = value if smooth is None else 0.95 * smooth + 0.05 * value
            if step % 50 == 0 or step == conf["steps"] - 1:
                curve.append([step, round(value, 4)])
            bar.set_postfix(loss=f"{smooth:.3f}", lr=f"{lr_at(step, conf):.1e}", refresh=False)
            bar.update(1)
    valid_loss, valid_acc = evaluate(model, valid, tokenizer.pad_token_id, bs)
    model.eval()
    os.makedirs(out_dir, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    tokenizer_ok = check_saved_tokenizer(tokenizer, out_dir, examples)
    kinds: Dict[str, int] = {}
    for e in examples:
        kinds[e.kind] = kinds.get(e.kind, 0) + 1
    info = {
        "config": conf,
        "tokenizer": tokenizer_dir,
        "parameters": n_params,
        "examples": kinds,
        "train_examples": len(train_set),
        "valid_examples": len(valid),
        "final_train_loss": round(smooth, 4),
        "valid_loss": None if math.isnan(valid_loss) else round(valid_loss, 4),
        "valid_target_accuracy": valid_acc,
        "tokenizer_in_model_dir": tokenizer_ok,
        "loss_curve": curve,
        "seconds": round(time.time() - start, 1),
    }
    with open(os.path.join(out_dir, INFO_FILE), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1, ensure_ascii=False)
    return info


def read_config(path: Optional[str] = None, overrides: Sequence[str] = ()) -> Dict:
    """Config keys from the YAML file ``path``, then ``KEY=YAML_VALUE`` overrides."""
    conf: Dict = {}
    if path:
        with open(path, encoding="utf-8") as f:
            conf = yaml.safe_load(f) or {}
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        conf[key] = yaml.safe_load(value)
    return conf


def is_text_lm(model_dir: str) -> bool:
    """Whether ``model_dir`` is a :func:`train` output (it has ``train_text_lm.json``)."""
    return os.path.isfile(os.path.join(model_dir, INFO_FILE))


def read_info(model_dir: str) -> Dict:
    """``train_text_lm.json`` of a :func:`train` output directory."""
    info_path = os.path.join(model_dir, INFO_FILE)
    if not os.path.exists(info_path):
        raise FileNotFoundError(f"{info_path} is missing: --model_dir must be a train_text_lm output")
    with open(info_path, encoding="utf-8") as f:
        return json.load(f)


def load_prompt_template(model_dir: str, info: Dict):
    """The prompt template the text LM of ``model_dir`` (``info``: its ``read_info``) was trained with."""
    from transformers import AutoTokenizer

    from csst_espnet.text.prompt import PromptTemplate

    tokenizer = AutoTokenizer.from_pretrained(model_dir if info.get("tokenizer_in_model_dir", True)
                                              else info["tokenizer"], trust_remote_code=False)
    return PromptTemplate(tokenizer, **(info["config"].get("prompt_conf") or {}))


def load_text_lm(model_dir: str):
    """(model, tokenizer, prompt template) of a :func:`train` output directory."""
    from transformers import AutoModelForCausalLM

    template = load_prompt_template(model_dir, read_info(model_dir))
    return AutoModelForCausalLM.from_pretrained(model_dir, trust_remote_code=False), template.tokenizer, template


def check_prompts(model_dir: str, template, prompt_conf: Dict, languages: Sequence[str]) -> None:
    """Refuse a speech model whose prompts differ from those the text LM of ``model_dir`` learnt.

    ``template``: the speech model's ``PromptTemplate`` (from ``prompt_conf``); the prompt token ids of
    every task and language of ``languages`` must be equal (so equal options written differently,
    e.g. a default given explicitly, pass, and a tokenizer that splits the prompt differently does not).
    """
    from csst_espnet.text.prompt import TASKS

    info = read_info(model_dir)
    learnt = load_prompt_template(model_dir, info)
    for task in TASKS:
        for lang in languages:
            ids, lm_ids = template.ids(task, lang), learnt.ids(task, lang)
            if ids == lm_ids:
                continue
            text, lm_text = template.text(task, lang), learnt.text(task, lang)
            tokens = f" (token ids {ids} and {lm_ids}: another tokenizer)" if text == lm_text else ""
            lm_conf = info["config"].get("prompt_conf") or {}
            raise ValueError(
                f"the LLM {model_dir} is a text LM trained with another prompt than this model's: for task "
                f"'{task}', language '{lang}' the text LM learnt {lm_text!r} (prompt_conf {lm_conf} in "
                f"{os.path.join(model_dir, INFO_FILE)}), this model's --prompt_conf {prompt_conf} gives "
                f"{text!r}{tokens}. Give the model the text LM's prompt_conf, or train the text LM with the "
                "model's (its config key prompt_conf)"
            )
