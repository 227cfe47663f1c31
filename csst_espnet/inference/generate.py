"""The one batched generation routine: a Hugging Face causal LM's ``generate`` on left-padded prefixes.

The speech model (``Speech2Text``: ``[prompt][speech]`` embeddings) and the text LM oracle
(``[prompt][source]`` token ids) both decode through :func:`generate`; see docs/architecture.md.
"""

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import torch


@dataclass
class Hypothesis:
    text: str
    token: List[str]
    token_int: List[int]
    score: float  # log-probability of the tokens and EOS (greedy), or the beam's final score


@dataclass
class GenerateOptions:
    """beam_size 1 = greedy search; repetition_penalty 1.0 / no_repeat_ngram_size 0 = off."""

    beam_size: int = 1
    max_new_tokens: int = 200
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0


def pad_id(tokenizer) -> int:
    """The tokenizer's pad token, or EOS where it has none."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def left_pad(prefixes: Sequence[Sequence[int]], pad: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Token-id prefixes -> left-padded ids (B, T) and attention mask (B, T)."""
    width = max(len(p) for p in prefixes)
    ids = torch.full((len(prefixes), width), pad, dtype=torch.long)
    mask = torch.zeros((len(prefixes), width), dtype=torch.long)
    for b, p in enumerate(prefixes):
        ids[b, width - len(p):] = torch.tensor(p)
        mask[b, width - len(p):] = 1
    return ids, mask


@torch.no_grad()
def generate(
    lm,
    tokenizer,
    attention_mask: torch.Tensor,
    input_ids: Optional[torch.Tensor] = None,
    inputs_embeds: Optional[torch.Tensor] = None,
    options: Optional[GenerateOptions] = None,
) -> List[Hypothesis]:
    """Greedy or beam search from left-padded prefixes, one hypothesis per row, in order.

    ``lm``: a transformers causal LM (or its peft wrapper). The prefix is either ``input_ids``
    (B, T) or ``inputs_embeds`` (B, T, H), with ``attention_mask`` (B, T). A hypothesis ends before
    its first EOS.
    """
    options = options or GenerateOptions()
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("generate needs exactly one of input_ids and inputs_embeds")
    prefix = {"input_ids": input_ids} if input_ids is not None else {"inputs_embeds": inputs_embeds}
    eos = tokenizer.eos_token_id
    out = lm.generate(
        **prefix,
        attention_mask=attention_mask,
        return_dict_in_generate=True,
        output_scores=True,
        max_new_tokens=options.max_new_tokens,
        num_beams=options.beam_size,
        do_sample=False,
        eos_token_id=eos,
        pad_token_id=pad_id(tokenizer),
        repetition_penalty=options.repetition_penalty,
        no_repeat_ngram_size=options.no_repeat_ngram_size,
    )
    # generate returns the prompt ids before the new tokens when it is given ids, none for embeddings
    new = out.sequences if input_ids is None else out.sequences[:, input_ids.size(1):]
    if getattr(out, "sequences_scores", None) is not None:  # beam search: each beam's final score
        scores = out.sequences_scores.tolist()
    else:  # greedy: per-step token log-probabilities (B, steps)
        scores = lm.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)
    hyps = []
    for seq, seq_scores in zip(new.tolist(), scores):
        ids = seq[: seq.index(eos)] if eos in seq else seq
        # the hypothesis' log-probability includes its EOS; tokens after it are padding
        score = seq_scores if isinstance(seq_scores, float) else float(seq_scores[: len(ids) + 1].sum())
        hyps.append(Hypothesis(
            text=tokenizer.decode(ids, skip_special_tokens=True).strip(),
            token=tokenizer.convert_ids_to_tokens(ids),
            token_int=ids,
            score=score,
        ))
    return hyps
