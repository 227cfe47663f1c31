"""CTC from the speech embeddings to the LLM tokens of the source transcript.

The projector's speech embeddings h_t (the vectors the LLM reads) are scored against the LLM's own
input embeddings E_v, plus one learned blank vector, by scaled cosine similarity:
``logit(t, v) = s * cos(h_t, E_v)``, with the scale ``s`` learned. CTC over these logits with the
source transcript's token ids (data column ``src_text``) as labels pulls each speech embedding
towards the embedding of the token spoken there, so the LLM receives speech in a form close to the
text it was trained on. The LLM's embedding matrix is read, never trained, by this loss. Cosine
logits need a scale well above 1 to express confidence over a vocabulary; it starts at 30 (on
mini_cs a start of 10 left the loss at 6.1 per token after 150 updates, 30 at 5.7).

Utterances without a transcript (``src_text`` length 0) are left out; a transcript longer than
its speech embeddings can align to contributes 0 (``zero_infinity``) and is counted in the
``<prefix>_infeasible`` stat.

Memory: CTC needs, of the logits over the vocabulary, only each position's normaliser and the
log-probabilities of the utterance's own label tokens and of the blank. These are computed about
``chunk_size`` (position, utterance) pairs at a time (``losses/chunked.py``), the token table a block of the vocabulary
at a time, and CTC runs on that reduced (positions × labels + 1) tensor, with each label mapped to its
first occurrence in the transcript so that repeated tokens stay repeated. The value and gradients
equal those of CTC over the full vocabulary; float32 logits over the full vocabulary never exist for
more than one chunk of positions.

    aux_losses:
      - {name: src_ctc, weight: 0.5}
"""

import math
from typing import Dict, Sequence, Tuple

import torch

from csst_espnet.losses.abs_aux_loss import AbsAuxLoss, AuxLossInputs
from csst_espnet.losses.chunked import DEFAULT_CHUNK, map_chunks

VOCAB_BLOCK = 16384  # token-table rows normalised in float32 at once


class SourceCTCLoss(AbsAuxLoss):
    """CTC of speech embeddings (B, T', H) against ``src_text`` token ids, via the LLM embeddings."""

    uses_llm_width = True

    def __init__(
        self,
        projector: torch.nn.Module,
        languages: Sequence[str],
        llm_hidden_size: int,
        init_scale: float = 30.0,
        chunk_size: int = DEFAULT_CHUNK,
        stat_prefix: str = "src_ctc",
    ):
        super().__init__()
        if init_scale <= 0:
            raise ValueError(f"src_ctc: init_scale must be positive, got {init_scale}")
        self.blank = torch.nn.Parameter(torch.randn(llm_hidden_size) / math.sqrt(llm_hidden_size))
        self.log_scale = torch.nn.Parameter(torch.tensor(math.log(init_scale)))
        self.prefix = stat_prefix
        self.chunk_size = chunk_size

    def logits(self, speech_embeds: torch.Tensor, token_embeddings: torch.Tensor) -> torch.Tensor:
        """(B, T', H), (V, H) -> (B, T', V + 1) scaled cosine logits; index V is the blank."""
        table = torch.cat([token_embeddings.detach().float(), self.blank[None].float()], dim=0)  # (V + 1, H)
        h = torch.nn.functional.normalize(speech_embeds.float(), dim=-1)
        table = torch.nn.functional.normalize(table, dim=-1)
        return self.log_scale.exp() * h @ table.T

    def forward(self, inputs: AuxLossInputs) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        if inputs.src_text is None:
            raise ValueError("the src_ctc loss needs src_text in the data (the transcript file src_text next to wav.scp)")
        if inputs.speech_embeds is None or inputs.token_embeddings is None:
            raise ValueError("the src_ctc loss needs the speech embeddings and the LLM's token embeddings")
        labels, label_lens = inputs.src_text.long(), inputs.src_text_lens.long()
        vocab = inputs.token_embeddings.size(0)
        if labels.numel() and int(labels.max()) >= vocab:
            raise ValueError(f"src_ctc: token id {int(labels.max())} in src_text, but the LLM has {vocab} tokens")
        keep = (label_lens > 0) & (inputs.speech_embed_lens.to(label_lens.device) > 0)  # text-only rows: no speech
        if not bool(keep.any()):
            # zero, but connected to every parameter it would train (DDP expects a gradient for each)
            zero = (inputs.speech_embeds.sum() + self.blank.sum() + self.log_scale) * 0.0
            return zero, {f"{self.prefix}_infeasible": torch.tensor(0.0)}
        kept_labels, kept_lens = labels[keep], label_lens[keep]
        embeds = inputs.speech_embeds[keep][:, : int(inputs.speech_embed_lens[keep].max())]  # (B', T', H)
        log_probs = self._label_log_probs(embeds, inputs.token_embeddings, kept_labels)  # (T', B', S + 1)
        # each label as the index of its first occurrence: equal neighbours stay equal (CTC's repeats)
        same = kept_labels[:, :, None] == kept_labels[:, None, :]  # (B', S, S)
        first = same.float().argmax(-1)  # (B', S)
        input_lens = inputs.speech_embed_lens[keep].to(log_probs.device)
        per_utt = torch.nn.functional.ctc_loss(
            log_probs, first, input_lens, kept_lens, blank=log_probs.size(-1) - 1, reduction="none", zero_infinity=True
        )  # (B',)
        infeasible = per_utt == 0
        # torch's CTC gradient assumes log-softmax inputs (it adds exp(log_probs), which log_softmax's
        # backward cancels); these are not normalised over their few columns, so take that term back out
        valid = torch.arange(log_probs.size(0), device=log_probs.device)[:, None] < input_lens[None]  # (T', B')
        p = log_probs.exp() * valid[:, :, None]
        per_utt = per_utt - (p - p.detach()).sum((0, 2)) * ~infeasible
        loss = (per_utt / kept_lens.clamp(min=1)).mean()
        return loss, {f"{self.prefix}_infeasible": infeasible.float().sum()}

    def _label_log_probs(self, embeds: torch.Tensor, table: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B', T', H), (V, H), labels (B', S) -> (T', B', S + 1): log p(labels[b, s]) at each position,
        the blank's last; the full-vocabulary normaliser computed a chunk of positions at a time."""
        vocab = table.size(0)
        index = labels.clamp(min=0)  # (B', S)
        dtype = torch.promote_types(self.blank.dtype, torch.float32)  # float32, or float64 for a float64 hook
        blank = torch.nn.functional.normalize(self.blank.to(dtype), dim=-1)

        def chunk(h: torch.Tensor) -> torch.Tensor:  # (c, B', H) -> (c, B', S + 1)
            h = torch.nn.functional.normalize(h.to(dtype), dim=-1)
            blocks = [
                h @ torch.nn.functional.normalize(table[v : v + VOCAB_BLOCK].detach().to(dtype), dim=-1).T
                for v in range(0, vocab, VOCAB_BLOCK)
            ] + [(h @ blank)[..., None]]
            logits = self.log_scale.exp() * torch.cat(blocks, dim=-1)  # (c, B', V + 1)
            picked = logits.gather(-1, torch.cat([index, index.new_full((index.size(0), 1), vocab)], 1)
                                   [None].expand(h.size(0), -1, -1))  # (c, B', S + 1)
            return picked - logits.logsumexp(-1, keepdim=True)

        steps = max(1, self.chunk_size // embeds.size(0))  # about chunk_size (position, utterance) rows a chunk
        return torch.cat(map_chunks(chunk, steps, embeds.transpose(0, 1)), dim=0)
