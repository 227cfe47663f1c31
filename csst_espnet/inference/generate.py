"""The one batched generation routine: greedy or beam search with a KV cache on left-padded prefixes.

The speech model (``Speech2Text``: ``[prompt][speech]`` embeddings) and the text LM oracle
(``[prompt][source]`` token ids) both decode through :func:`generate`; see docs/architecture.md.

The loop is ours rather than ``transformers``' ``generate``: the prefix is run once (for beam search
too: its cache is copied to the beams afterwards), the logits of the last position only are
computed, rows whose search has ended leave the batch (and the cache), and the runaway guards act
inside the search:

- **length**: each row has its own limit (``max_new_tokens``, per row: ``Speech2Text`` derives it
  from the utterance's duration); a hypothesis that reaches it without EOS is cut there.
- **loop** (``loop_repeats`` = r > 1): a token that would end the hypothesis with one span of tokens
  said r times in a row ("a b a b" for r = 2, "x x x" for r = 3) is not taken; its probability goes to
  EOS instead, so a model that starts looping stops. Only back-to-back repeats count: a phrase that
  comes back later in a long translation ("we use the model ... we use the model") is not a loop.

Each hypothesis records which guard ended it (``guard``: ``""``, ``"length"`` or ``"loop"``) and its
``confidence``: the mean log-probability, under the model's own distribution (before any guard
changed it), of its tokens and of its EOS when it has one.
"""

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Set, Tuple

import torch
from transformers import DynamicCache

GUARDS = ("length", "loop")


@dataclass
class Hypothesis:
    text: str
    token: List[str]
    token_int: List[int]
    score: float  # greedy: log-probability of the tokens and EOS; beam: that sum / length ** length_penalty
    confidence: float = 0.0  # mean log-probability of the tokens (and EOS) under the model
    guard: str = ""  # the runaway guard that ended the hypothesis: "", "length" or "loop"


@dataclass
class GenerateOptions:
    """beam_size 1 = greedy search; loop_repeats 0 = loop guard off."""

    beam_size: int = 1
    max_new_tokens: int = 200
    loop_repeats: int = 0
    length_penalty: float = 1.0  # beam search: final score = log-probability / length ** length_penalty


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


def loop_banned(tokens: Sequence[int], repeats: int) -> Set[int]:
    """The tokens that would end ``tokens`` with one span repeated ``repeats`` times in a row (the loop
    guard; ``repeats`` < 2: none). Span length p: the last ``repeats * p - 1`` tokens are p-periodic,
    and the token p back would continue the period."""
    out: Set[int] = set()
    if repeats < 2:
        return out
    n = len(tokens)
    for p in range(1, (n + 1) // repeats + 1):
        w = repeats * p - 1
        tail = tokens[n - w:]
        if tail[: w - p] == tail[p:]:
            out.add(tokens[n - p])
    return out


def _guarded(logp: torch.Tensor, banned: Sequence[Set[int]], eos: int) -> torch.Tensor:
    """``logp`` (N, V) with each row's banned tokens removed and their probability moved to EOS."""
    if not any(banned):
        return logp
    out = logp.clone()
    for row, tokens in enumerate(banned):
        tokens = [t for t in tokens if t != eos]
        if tokens:
            idx = torch.tensor(tokens, device=logp.device)
            out[row, eos] = torch.logsumexp(torch.cat([logp[row, eos:eos + 1], logp[row, idx]]), 0)
            out[row, idx] = float("-inf")
    return out


class _Decoder:
    """The LM, its cache and the prefix's rows; ``step`` feeds one token per live row."""

    def __init__(self, lm, attention_mask: torch.Tensor, embeds: torch.Tensor):
        self.lm = lm
        self.mask = attention_mask
        self.pos = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        self.cache = DynamicCache()
        out = lm(inputs_embeds=embeds, attention_mask=attention_mask, position_ids=self.pos,
                 past_key_values=self.cache, use_cache=True, logits_to_keep=1)
        self.cache = out.past_key_values
        self.pos = self.pos[:, -1:]
        self.first_logp = out.logits[:, -1].float().log_softmax(-1)  # (B, V)

    def select(self, rows: torch.Tensor) -> None:
        """Keep (and reorder, repeat) the cache rows ``rows``."""
        self.cache.reorder_cache(rows)
        self.mask = self.mask.index_select(0, rows)
        self.pos = self.pos.index_select(0, rows)

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Feed ``tokens`` (N,), one per row; the next-token log-probabilities (N, V)."""
        self.mask = torch.cat([self.mask, self.mask.new_ones(self.mask.size(0), 1)], dim=1)
        self.pos = self.pos + 1
        out = self.lm(input_ids=tokens.unsqueeze(1), attention_mask=self.mask, position_ids=self.pos,
                      past_key_values=self.cache, use_cache=True)
        self.cache = out.past_key_values
        return out.logits[:, -1].float().log_softmax(-1)


@torch.no_grad()
def generate(
    lm,
    tokenizer,
    attention_mask: torch.Tensor,
    input_ids: Optional[torch.Tensor] = None,
    inputs_embeds: Optional[torch.Tensor] = None,
    options: Optional[GenerateOptions] = None,
    max_new_tokens: Optional[Sequence[int]] = None,
) -> List[Hypothesis]:
    """Greedy or beam search from left-padded prefixes, one hypothesis per row, in order.

    ``lm``: a transformers causal LM (or its peft wrapper). The prefix is either ``input_ids``
    (B, T) or ``inputs_embeds`` (B, T, H), with ``attention_mask`` (B, T). ``max_new_tokens``: a
    length limit per row (each capped by ``options.max_new_tokens``). A hypothesis ends before its
    first EOS.
    """
    options = options or GenerateOptions()
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("generate needs exactly one of input_ids and inputs_embeds")
    if inputs_embeds is None:
        inputs_embeds = lm.get_input_embeddings()(input_ids)
    batch = attention_mask.size(0)
    limits = [options.max_new_tokens] * batch
    if max_new_tokens is not None:
        if len(max_new_tokens) != batch:
            raise ValueError(f"max_new_tokens has {len(max_new_tokens)} limits for {batch} rows")
        limits = [max(1, min(int(m), options.max_new_tokens)) for m in max_new_tokens]
    decoder = _Decoder(lm, attention_mask, inputs_embeds)
    search = _greedy if options.beam_size <= 1 else _beam
    found = search(decoder, limits, tokenizer.eos_token_id, options)
    hyps = []
    for ids, lps, score, guard in found:
        hyps.append(Hypothesis(
            text=tokenizer.decode(ids, skip_special_tokens=True).strip(),
            token=tokenizer.convert_ids_to_tokens(ids),
            token_int=ids,
            score=score,
            confidence=sum(lps) / len(lps),
            guard=guard,
        ))
    return hyps


Found = Tuple[List[int], List[float], float, str]  # tokens, their log-probabilities (+ EOS), score, guard


def _greedy(decoder: _Decoder, limits: List[int], eos: int, options: GenerateOptions) -> List[Found]:
    batch = len(limits)
    tokens: List[List[int]] = [[] for _ in range(batch)]
    lps: List[List[float]] = [[] for _ in range(batch)]
    found: List[Optional[Found]] = [None] * batch
    live = list(range(batch))  # original row of each decoder row
    logp = decoder.first_logp
    while True:
        chosen = _guarded(logp, [loop_banned(tokens[b], options.loop_repeats) for b in live], eos).argmax(-1)
        picked = list(zip(chosen.tolist(), logp.gather(1, chosen[:, None])[:, 0].tolist(),
                          logp.argmax(-1).tolist()))
        keep = []
        for i, (b, (tok, lp, top)) in enumerate(zip(live, picked)):
            lps[b].append(lp)
            if tok == eos:
                found[b] = (tokens[b], lps[b], sum(lps[b]), "" if top == eos else "loop")
                continue
            tokens[b].append(tok)
            if len(tokens[b]) >= limits[b]:
                found[b] = (tokens[b], lps[b], sum(lps[b]), "length")
                continue
            keep.append(i)
        if not keep:
            return found
        if len(keep) < len(live):
            rows = torch.tensor(keep, device=chosen.device)
            decoder.select(rows)
            chosen = chosen.index_select(0, rows)
            live = [live[i] for i in keep]
        logp = decoder.step(chosen)


@dataclass
class _Beam:
    tokens: List[int] = field(default_factory=list)
    lps: List[float] = field(default_factory=list)  # the model's log-probabilities of the tokens
    score: float = 0.0  # search score: sum of the guarded log-probabilities


def _beam(decoder: _Decoder, limits: List[int], eos: int, options: GenerateOptions) -> List[Found]:
    """Beam search per row; a row ends when it has ``beam_size`` finished hypotheses and no live beam
    can still beat the worst of them at its current length, or at its length limit."""
    k, lp_pow = options.beam_size, options.length_penalty
    norm = lambda score, length: score / max(length, 1) ** lp_pow
    batch = len(limits)
    finished: List[List[Tuple[float, Found]]] = [[] for _ in range(batch)]
    beams: Dict[int, List[_Beam]] = {b: [_Beam()] for b in range(batch)}  # live rows -> their beams
    logp = decoder.first_logp  # one decoder row per beam, rows of ``beams`` in order
    step = 0
    while True:
        order = [(b, beam) for b, bs in beams.items() for beam in bs]
        guarded = _guarded(logp, [loop_banned(beam.tokens, options.loop_repeats) for _, beam in order], eos)
        tops = logp.argmax(-1).tolist()
        scores = torch.tensor([beam.score for _, beam in order], device=logp.device)[:, None] + guarded
        rows_of: Dict[int, List[int]] = {}
        for i, (b, _) in enumerate(order):
            rows_of.setdefault(b, []).append(i)
        next_rows, next_tokens, new_beams = [], [], {}
        for b, rows in rows_of.items():
            vocab = scores.size(1)
            flat = scores[rows[0]:rows[-1] + 1].reshape(-1)
            cand_scores, cand = flat.topk(min(2 * k, flat.numel()))
            cand_rows = (cand // vocab).tolist()
            cand_toks = (cand % vocab).tolist()
            model_lps = logp[rows[0]:rows[-1] + 1].reshape(-1).gather(0, cand).tolist()
            live: List[_Beam] = []
            for rank, (r, tok, score, lp) in enumerate(zip(cand_rows, cand_toks, cand_scores.tolist(), model_lps)):
                parent = order[rows[r]][1]
                if score == float("-inf"):
                    break
                if tok == eos:
                    if rank < k:  # an EOS among the k best candidates ends a hypothesis
                        g = "" if tops[rows[r]] == eos else "loop"
                        found = (parent.tokens, parent.lps + [lp], norm(score, len(parent.tokens) + 1), g)
                        finished[b].append((found[2], found))
                    continue
                live.append(_Beam(parent.tokens + [tok], parent.lps + [lp], score))
                next_rows.append(rows[r])
                next_tokens.append(tok)
                if len(live) == k:
                    break
            finished[b].sort(key=lambda f: -f[0])
            del finished[b][k:]
            at_limit = step + 1 >= limits[b]
            best_live = max((norm(c.score, len(c.tokens)) for c in live), default=float("-inf"))
            done = not live or at_limit or (len(finished[b]) == k and best_live <= finished[b][-1][0])
            if done:
                if at_limit and len(finished[b]) < k:  # cut at the limit: the live beams count as hypotheses
                    finished[b] += [(norm(c.score, len(c.tokens)), (c.tokens, c.lps, norm(c.score, len(c.tokens)),
                                                                    "length")) for c in live]
                    finished[b].sort(key=lambda f: -f[0])
                del next_rows[len(next_rows) - len(live):]
                del next_tokens[len(next_tokens) - len(live):]
            else:
                new_beams[b] = live
        beams = new_beams
        if not beams:
            break
        rows = torch.tensor(next_rows, device=logp.device)
        decoder.select(rows)
        logp = decoder.step(torch.tensor(next_tokens, device=logp.device))
        step += 1
    return [finished[b][0][1] for b in range(batch)]
