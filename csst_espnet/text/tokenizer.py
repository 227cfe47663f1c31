"""Tokenizer training: sentencepiece BPE converted to a Hugging Face fast tokenizer, checked.

The sentencepiece model (BPE, ``byte_fallback`` so that any character round-trips, identity
normalisation so that text is never rewritten) is converted to a fast ``LlamaTokenizer``
(``tokenizers`` BPE with the Metaspace pre-tokenizer and byte fallback, as transformers builds
Llama tokenizers), with ``<unk>`` 0, ``<s>`` 1, ``</s>`` 2, ``<pad>`` 3. Every training sentence is
encoded and decoded again; training fails naming the first sentence that does not come back
unchanged. See docs/architecture.md.
"""

import json
import logging
import os
import re
import tempfile
from typing import Iterable, List, Sequence

from csst_espnet.data.kaldi_dir import read_table

SPECIALS = {"unk": "<unk>", "bos": "<s>", "eos": "</s>", "pad": "<pad>"}
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def read_sentences(texts: Sequence[str] = (), tsvs: Sequence[str] = (), kaldi_texts: Sequence[str] = ()) -> List[str]:
    """All sentences of the inputs, stripped, empty lines skipped, in input order.

    ``texts``: one sentence a line; ``tsvs``: every column a sentence; ``kaldi_texts``: Kaldi
    ``utt text`` tables (read with :func:`csst_espnet.data.kaldi_dir.read_table`; a repeated id is an
    error).
    """
    out: List[str] = []

    def lines(path: str) -> Iterable[str]:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.rstrip("\n").rstrip("\r")
                if line.strip():
                    yield line

    for path in texts:
        out.extend(line.strip() for line in lines(path))
    for path in tsvs:
        for line in lines(path):
            out.extend(col.strip() for col in line.split("\t") if col.strip())
    for path in kaldi_texts:
        out.extend(text for text in read_table(path, unique=True).values() if text)
    return out


def prompt_sentences(target_language: str, languages: Sequence[str], repeat: int) -> List[str]:
    """The default prompt instructions (``csst_espnet.text.prompt``), each ``repeat`` times, so that
    the tokenizer learns them as a few pieces and prompts stay short."""
    from csst_espnet.text.prompt import DEFAULT_INSTRUCTIONS, LANGUAGE_NAMES

    names = lambda code: LANGUAGE_NAMES.get(code, code)
    texts = sorted({
        instruction.format(src_lang=names(lang), tgt_lang=names(target_language))
        for instruction in DEFAULT_INSTRUCTIONS.values() for lang in languages
    })
    return [t for t in texts for _ in range(repeat)]


def han_characters(sentences: Iterable[str]) -> List[str]:
    """The distinct Han (CJK unified ideograph) characters of ``sentences``, sorted."""
    return sorted({c for s in sentences for c in s if HAN.match(c)})


def train_sentencepiece(sentences: Sequence[str], prefix: str, vocab_size: int, model_type: str = "bpe",
                        character_coverage: float = 1.0, seed: int = 0,
                        single_pieces: Sequence[str] = ()) -> str:
    """Train ``prefix.model`` / ``prefix.vocab``; returns the model path.

    ``single_pieces``: strings always kept as one piece and never merged (user-defined symbols).

    ``vocab_size`` is adjusted to what the data supports: sentencepiece fails when asked for more
    pieces than it can make, or for fewer than the text's characters plus the 256 byte pieces.
    """
    import sentencepiece as spm

    if not sentences:
        raise ValueError("no training text for the tokenizer")
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt", delete=False) as f:
        f.write("\n".join(sentences) + "\n")
        corpus = f.name
    if hasattr(spm, "set_random_generator_seed"):
        spm.set_random_generator_seed(seed)
    try:
        size = vocab_size
        while True:
            try:
                spm.SentencePieceTrainer.train(
                    input=corpus,
                    model_prefix=prefix,
                    vocab_size=size,
                    model_type=model_type,
                    character_coverage=character_coverage,
                    byte_fallback=True,
                    normalization_rule_name="identity",
                    unk_id=0, bos_id=1, eos_id=2, pad_id=3,
                    unk_piece=SPECIALS["unk"], bos_piece=SPECIALS["bos"],
                    eos_piece=SPECIALS["eos"], pad_piece=SPECIALS["pad"],
                    split_digits=True,
                    user_defined_symbols=list(single_pieces),
                    input_sentence_size=2_000_000,
                    shuffle_input_sentence=True,
                    num_threads=1,  # deterministic
                    minloglevel=2,
                )
                break
            except (RuntimeError, OSError) as e:
                msg = str(e)
                too_high = re.search(r"Vocabulary size (?:is )?too high.*<= *(\d+)", msg)
                too_small = re.search(r"smaller than required_chars\. *\d+ vs (\d+)", msg)
                if too_high and int(too_high.group(1)) < size:
                    new = int(too_high.group(1))
                    logging.warning("vocab_size %d is too large for this text; using %d", size, new)
                elif too_small and int(too_small.group(1)) > size:
                    new = int(too_small.group(1))
                    logging.warning("vocab_size %d is too small for the characters of this text (and the "
                                    "256 byte pieces); using %d", size, new)
                else:
                    raise
                size = new
    finally:
        os.unlink(corpus)
    return prefix + ".model"


def spm_to_hf(model_file: str):
    """The sentencepiece BPE model as a fast ``LlamaTokenizer`` with bos/eos/pad/unk."""
    from tokenizers.models import BPE
    from transformers import LlamaTokenizer
    from transformers.convert_slow_tokenizer import SentencePieceExtractor

    extractor = SentencePieceExtractor(model_file)
    if extractor.proto.trainer_spec.model_type != 2:  # 2 = BPE
        raise ValueError(f"{model_file}: only sentencepiece BPE models are converted (train with model_type=bpe)")
    kw = extractor.extract(BPE)
    tok = LlamaTokenizer(
        vocab=kw["vocab"],
        merges=kw["merges"],
        unk_token=SPECIALS["unk"],
        bos_token=SPECIALS["bos"],
        eos_token=SPECIALS["eos"],
        pad_token=SPECIALS["pad"],
        add_prefix_space=True,
        legacy=False,
    )
    tok.padding_side = "right"
    return tok


def round_trip_failures(tokenizer, sentences: Iterable[str], limit: int = 5) -> List[str]:
    """Sentences (up to ``limit``) that do not decode back to themselves."""
    bad = []
    for s in sentences:
        ids = tokenizer(s, add_special_tokens=False)["input_ids"]
        if tokenizer.unk_token_id in ids or tokenizer.decode(ids, skip_special_tokens=True) != s:
            bad.append(s)
            if len(bad) >= limit:
                break
    return bad


def make_tokenizer(out_dir: str, sentences: Sequence[str], vocab_size: int = 800, model_type: str = "bpe",
                   character_coverage: float = 1.0, seed: int = 0, check: bool = True, han_chars: bool = False):
    """Train the tokenizer on ``sentences`` into ``out_dir``; returns (the reloaded tokenizer, the
    ``make_tokenizer.json`` record)."""
    os.makedirs(out_dir, exist_ok=True)
    single = han_characters(sentences) if han_chars else []
    model_file = train_sentencepiece(sentences, os.path.join(out_dir, "spm"), vocab_size, model_type,
                                     character_coverage, seed, single)
    tok = spm_to_hf(model_file)
    tok.save_pretrained(out_dir)
    # reload as any user would, and check what was saved
    from transformers import AutoTokenizer

    loaded = AutoTokenizer.from_pretrained(out_dir, trust_remote_code=False)
    for name in ("bos", "eos", "pad", "unk"):
        if getattr(loaded, f"{name}_token") != SPECIALS[name]:
            raise RuntimeError(f"{out_dir}: {name}_token is {getattr(loaded, f'{name}_token')!r}")
    bad = round_trip_failures(loaded, sentences) if check else []
    if bad:
        raise RuntimeError(f"{out_dir}: the tokenizer does not round-trip {bad[0]!r} "
                           f"(encodes to {loaded.tokenize(bad[0])})")
    info = {
        "vocab_size": len(loaded),
        "requested_vocab_size": vocab_size,
        "model_type": model_type,
        "han_chars": len(single),
        "sentences": len(sentences),
        "round_trip_checked": check,
        "specials": {k: [v, loaded.convert_tokens_to_ids(v)] for k, v in SPECIALS.items()},
        "tokens_per_sentence": (sum(len(loaded(s, add_special_tokens=False)["input_ids"]) for s in sentences)
                                / max(1, len(sentences))),
    }
    with open(os.path.join(out_dir, "make_tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1, ensure_ascii=False)
    return loaded, info


def llm_tokenizer_mismatches(tokenizer, llm_name_or_path: str, trust_remote_code: bool = False) -> List[str]:
    """What makes ``tokenizer`` another tokenizer than the LLM's own (empty: it is the LLM's).

    Against the LLM's own tokenizer when its directory (or hub entry) has one: the same vocabulary
    (token -> id) and the same bos/eos/pad/unk tokens. Against its config always: no id beyond the
    embedding rows (``vocab_size``), and bos/eos/pad ids equal to those the config names.
    """
    from transformers import AutoConfig, AutoTokenizer

    problems = []
    try:
        own = AutoTokenizer.from_pretrained(llm_name_or_path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError):  # no tokenizer files beside the model: the config alone is checked
        own = None
    if own is not None:
        vocab, own_vocab = tokenizer.get_vocab(), own.get_vocab()
        if vocab != own_vocab:
            differ = sorted(set(vocab.items()) ^ set(own_vocab.items()), key=lambda kv: kv[1])[:3]
            problems.append(f"vocabulary: {len(vocab)} tokens vs the LLM's {len(own_vocab)} "
                            f"(first differing token -> id: {differ})")
        for name in ("bos", "eos", "pad", "unk"):
            mine, theirs = getattr(tokenizer, f"{name}_token"), getattr(own, f"{name}_token")
            if mine != theirs:
                problems.append(f"{name}_token {mine!r} vs the LLM's {theirs!r}")
    config = AutoConfig.from_pretrained(llm_name_or_path, trust_remote_code=trust_remote_code)
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    if len(tokenizer) > config.vocab_size:
        problems.append(f"{len(tokenizer)} tokens, more than the LLM's {config.vocab_size} embedding rows")
    for name in ("bos", "eos", "pad"):
        llm_id, tok_id = getattr(config, f"{name}_token_id", None), getattr(tokenizer, f"{name}_token_id")
        llm_ids = llm_id if isinstance(llm_id, (list, tuple)) else [llm_id]
        if llm_id is not None and tok_id is not None and tok_id not in llm_ids:
            problems.append(f"{name}_token_id {tok_id} vs the LLM config's {llm_id}")
    return problems


def check_llm_tokenizer(tokenizer_name_or_path: str, llm_name_or_path: str, trust_remote_code: bool = False) -> None:
    """Refuse, naming both, a tokenizer that is not the LLM's own (:func:`llm_tokenizer_mismatches`)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_name_or_path, trust_remote_code=trust_remote_code)
    problems = llm_tokenizer_mismatches(tokenizer, llm_name_or_path, trust_remote_code)
    if problems:
        raise ValueError(
            f"the tokenizer {tokenizer_name_or_path} does not match the LLM {llm_name_or_path}: "
            + "; ".join(problems)
            + ". A pretrained LLM takes its own tokenizer (csst.sh --token_type pretrained, no --tokenizer)"
        )
