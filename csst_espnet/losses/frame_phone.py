"""Frame-level phone classification on the speech encoder's output.

With phone alignments (data column ``phone_ali``: one phone id per 10 ms frame, e.g. from the
synthesiser of a synthetic corpus or from a forced aligner), a linear head on the encoder output
predicts the phone of every encoder frame. It gives the encoder a dense, direct learning signal:
through the LLM's loss alone a from-scratch encoder learns very slowly (the LLM leans on its text
prior), and CTC has a long all-blank plateau. Encoder frame i of an utterance with E frames and F
alignment frames takes the label of alignment frame ``floor((i + 0.5) * F / E)``, whatever the
encoder's subsampling; padded frames and labels of -1 are ignored.

    aux_losses:
      - {name: frame_phone, weight: 1.0, conf: {num_phones: 128}}
"""

from typing import Dict, Sequence, Tuple

import torch

from csst_espnet.losses.abs_aux_loss import AbsAuxLoss, AuxLossInputs


def frame_targets(labels: torch.Tensor, label_lens: torch.Tensor, enc_lens: torch.Tensor, width: int) -> torch.Tensor:
    """Labels (B, F) at 10 ms resampled to the encoder frames: (B, width), -1 past each length."""
    index = torch.arange(width, device=labels.device)[None]  # (1, T)
    label_lens = label_lens.to(labels.device)[:, None]
    enc_lens = enc_lens.to(labels.device)[:, None]
    src = ((index + 0.5) * label_lens / enc_lens.clamp(min=1)).long()  # (B, T)
    src = torch.minimum(src, (label_lens - 1).clamp(min=0)).clamp(max=labels.size(1) - 1)
    out = labels.gather(1, src)
    return out.masked_fill((index >= enc_lens) | (label_lens == 0), -1)


class FramePhoneLoss(AbsAuxLoss):
    """CE of a linear phone classifier on the encoder frames (mean over labelled frames)."""

    uses_encoder_output = True

    def __init__(
        self,
        projector: torch.nn.Module,
        languages: Sequence[str],
        encoder_output_size: int,
        num_phones: int,
        stat_prefix: str = "frame_phone",
    ):
        super().__init__()
        if num_phones < 2:
            raise ValueError(f"frame_phone: num_phones must be at least 2, got {num_phones}")
        self.num_phones = num_phones
        self.head = torch.nn.Linear(encoder_output_size, num_phones)
        self.prefix = stat_prefix

    def forward(self, inputs: AuxLossInputs) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        if inputs.phone_ali is None or inputs.encoder_out is None:
            raise ValueError("the frame_phone loss needs phone_ali in the data (a phone_ali file next to wav.scp)")
        labels = inputs.phone_ali.long()
        top = int(labels.max()) if labels.numel() else -1
        if top >= self.num_phones:
            raise ValueError(f"frame_phone: phone id {top} in phone_ali, but num_phones is {self.num_phones}")
        enc = inputs.encoder_out  # (B, T, D)
        targets = frame_targets(labels, inputs.phone_ali_lens, inputs.encoder_out_lens, enc.size(1))  # (B, T)
        logits = self.head(enc).float()  # (B, T, num_phones)
        valid = targets >= 0
        n = valid.sum()
        if n == 0:  # no aligned frame in this batch
            zero = logits.sum() * 0.0
            return zero, {f"{self.prefix}_acc": torch.tensor(float("nan"))}
        loss = torch.nn.functional.cross_entropy(logits[valid], targets[valid])
        acc = (logits[valid].argmax(-1) == targets[valid]).float().mean()
        return loss, {f"{self.prefix}_acc": acc.detach()}
