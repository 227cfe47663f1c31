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

    aux_losses:
      - {name: src_ctc, weight: 0.5}
"""

import math
from typing import Dict, Sequence, Tuple

import torch

from csst_espnet.losses.abs_aux_loss import AbsAuxLoss, AuxLossInputs


class SourceCTCLoss(AbsAuxLoss):
    """CTC of speech embeddings (B, T', H) against ``src_text`` token ids, via the LLM embeddings."""

    uses_llm_width = True

    def __init__(
        self,
        projector: torch.nn.Module,
        languages: Sequence[str],
        llm_hidden_size: int,
        init_scale: float = 30.0,
        stat_prefix: str = "src_ctc",
    ):
        super().__init__()
        if init_scale <= 0:
            raise ValueError(f"src_ctc: init_scale must be positive, got {init_scale}")
        self.blank = torch.nn.Parameter(torch.randn(llm_hidden_size) / math.sqrt(llm_hidden_size))
        self.log_scale = torch.nn.Parameter(torch.tensor(math.log(init_scale)))
        self.prefix = stat_prefix

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
        keep = label_lens > 0
        if not bool(keep.any()):
            # zero, but connected to every parameter it would train (DDP expects a gradient for each)
            zero = (inputs.speech_embeds.sum() + self.blank.sum() + self.log_scale) * 0.0
            return zero, {f"{self.prefix}_infeasible": torch.tensor(0.0)}
        logits = self.logits(inputs.speech_embeds[keep], inputs.token_embeddings)  # (B', T', V + 1)
        log_probs = logits.log_softmax(-1).transpose(0, 1)  # (T', B', V + 1)
        input_lens = inputs.speech_embed_lens[keep].to(log_probs.device)
        kept_labels, kept_lens = labels[keep], label_lens[keep]
        per_utt = torch.nn.functional.ctc_loss(
            log_probs,
            kept_labels.clamp(min=0),
            input_lens,
            kept_lens,
            blank=vocab,
            reduction="none",
            zero_infinity=True,
        )  # (B',)
        infeasible = per_utt == 0
        loss = (per_utt / kept_lens.clamp(min=1)).mean()
        return loss, {f"{self.prefix}_infeasible": infeasible.float().sum()}
