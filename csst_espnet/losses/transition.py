"""Transition loss: the move from previous-phase data (monolingual ST) to code-switch ST.

Mixture mode (DESIGN §2a): with utterances of both kinds in one training set, told apart by
their language label (``cs`` = code-switch), the loss is

    L = (1 - λ) · CE(previous-phase utterances) + λ · CE(code-switch utterances),

λ rising linearly from ``start`` to 1 over ``ramp_steps`` training steps. Each CE is the mean
per-utterance CE of that kind in the batch; a kind absent from a batch contributes nothing.
Use it with ``model_conf.ce_weight: 0`` so that it replaces the plain CE.
"""

from typing import Dict, Sequence, Tuple

import torch

from csst_espnet.losses.abs_aux_loss import AbsAuxLoss, AuxLossInputs


class TransitionLoss(AbsAuxLoss):
    def __init__(
        self,
        projector: torch.nn.Module,
        languages: Sequence[str],
        mode: str = "mixture",
        ramp_steps: int = 1000,
        start: float = 0.0,
        cs_label: str = "cs",
        stat_prefix: str = "transition",
    ):
        super().__init__()
        if mode != "mixture":
            raise ValueError(f"transition mode '{mode}' is not available; available: mixture")
        if cs_label not in languages:
            raise ValueError(f"transition cs_label '{cs_label}' is not in languages {list(languages)}")
        if ramp_steps < 1 or not 0.0 <= start <= 1.0:
            raise ValueError(f"need ramp_steps >= 1 and 0 <= start <= 1, got {ramp_steps}, {start}")
        self.cs_index = list(languages).index(cs_label)
        self.ramp_steps = ramp_steps
        self.start = start
        self.prefix = stat_prefix
        # Training steps taken; saved in checkpoints so that --resume continues the ramp.
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def weight(self) -> float:
        """λ at the current step."""
        progress = min(1.0, float(self.step) / self.ramp_steps)
        return self.start + (1.0 - self.start) * progress

    def forward(self, inputs: AuxLossInputs) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        if inputs.lang is None or inputs.ce_per_utt is None:
            raise ValueError("the transition loss needs utt2lang in the training data (lang)")
        lam = self.weight()
        if self.training:
            self.step += 1
        ce = inputs.ce_per_utt
        is_cs = inputs.lang == self.cs_index
        zero = ce.new_zeros(())
        ce_cs = ce[is_cs].mean() if is_cs.any() else zero
        ce_prev = ce[~is_cs].mean() if (~is_cs).any() else zero
        loss = (1.0 - lam) * ce_prev + lam * ce_cs
        stats = {
            f"{self.prefix}_lambda": torch.tensor(lam),
            f"{self.prefix}_ce_cs": ce_cs.detach(),
            f"{self.prefix}_ce_prev": ce_prev.detach(),
        }
        return loss, stats
