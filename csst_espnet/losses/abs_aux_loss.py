"""Interface of an auxiliary loss hook added to the model's CE loss by config."""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Tuple

import torch


@dataclass
class AuxLossInputs:
    """What the model hands every auxiliary loss after its forward pass.

    projector_aux: the dict returned by the projector (e.g. router logits).
    lang: (B,) language ids as indices into the task's ``--languages`` list,
        -1 where unknown; None when the data has no ``lang`` column.
    languages: the task's language names; ``languages[lang[b]]`` is utterance b's label.
    task: (B,) task ids (indices into ``TASKS``), or None.
    ce_per_utt: (B,) mean target-token CE of each utterance.
    hidden: (B, L, H) the LLM's last hidden states at the positions predicting target tokens;
        ``lm_head(hidden)`` gives their logits (B, L, V). A hook computes logits over the vocabulary a
        chunk of positions at a time (``losses/chunked.py``), never for the whole batch at once.
    target_mask: (B, L) True at target tokens, False at padding.
    model_inputs: the keyword arguments of ``ESPnetCSSTModel.target_logits`` for this batch
        (speech, speech_lengths, text, prompt, prompt_lengths), so that a hook can run another
        model of that class (e.g. a distillation teacher) on the same batch.
    encoder_out, encoder_out_lens: (B, T, D) speech encoder output (before the projector), (B,).
    phone_ali, phone_ali_lens: (B, F) frame phone ids (10 ms frames, -1 padded), (B,); None when
        the data has no ``phone_ali`` column.
    speech_embeds, speech_embed_lens: (B, T', H) projector output (what the LLM reads), (B,).
    token_embeddings: (V, H) the LLM's input embedding matrix.
    src_text, src_text_lens: (B, S) source-transcript token ids (-1 padded), (B,); None when the
        data has no ``src_text`` column.
    """

    projector_aux: Dict[str, torch.Tensor]
    lang: Optional[torch.Tensor]
    languages: Tuple[str, ...]
    task: Optional[torch.Tensor] = None
    ce_per_utt: Optional[torch.Tensor] = None
    hidden: Optional[torch.Tensor] = None
    lm_head: Optional[Callable[[torch.Tensor], torch.Tensor]] = None
    target_mask: Optional[torch.Tensor] = None
    model_inputs: Dict[str, torch.Tensor] = field(default_factory=dict)
    encoder_out: Optional[torch.Tensor] = None
    encoder_out_lens: Optional[torch.Tensor] = None
    phone_ali: Optional[torch.Tensor] = None
    phone_ali_lens: Optional[torch.Tensor] = None
    speech_embeds: Optional[torch.Tensor] = None
    speech_embed_lens: Optional[torch.Tensor] = None
    token_embeddings: Optional[torch.Tensor] = None
    src_text: Optional[torch.Tensor] = None
    src_text_lens: Optional[torch.Tensor] = None


class AbsAuxLoss(torch.nn.Module, ABC):
    """An auxiliary loss: returns an unweighted scalar loss and its stats.

    The model multiplies the loss by the hook's configured ``weight`` and adds
    it to CE; every stat is reported in ESPnet's stats under the hook's name.
    A hook that reads the LLM's outputs (``hidden``, ``ce_per_utt``, ``target_mask``,
    ``model_inputs``) sets ``needs_llm_outputs = True``: it cannot train in the model's
    speech-side warm-up epochs, where the LLM is not run.
    """

    needs_llm_outputs = False

    def ce_utterances(self, lang: Optional[torch.Tensor], batch: int) -> Optional[torch.Tensor]:
        """(B,) True for the utterances whose target CE this hook's loss contains (``lang`` as in
        ``AuxLossInputs``); the model's plain CE leaves them out, so that each utterance's CE is
        counted once (docs/architecture.md §2). None: no utterance."""
        return None

    def on_update(self) -> None:
        """Called after each optimiser update (``CSSTTrainer``); a hook with a schedule counts here."""

    @abstractmethod
    def forward(self, inputs: AuxLossInputs) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        raise NotImplementedError
