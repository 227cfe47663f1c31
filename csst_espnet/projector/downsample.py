"""Frame-rate reduction shared by all projectors: stack k frames, or a strided convolution."""

from typing import Tuple

import torch

from espnet.nets.pytorch_backend.nets_utils import make_pad_mask


def zero_padding(xs: torch.Tensor, xs_lens: torch.Tensor) -> torch.Tensor:
    """Zero the frames of ``xs`` (B, T, D) beyond each utterance's length (T may be 0: a batch without speech)."""
    if xs.size(1) == 0:
        return xs
    return xs.masked_fill(make_pad_mask(xs_lens, maxlen=xs.size(1)).to(xs.device).unsqueeze(-1), 0.0)


class FrameStack(torch.nn.Module):
    """Concatenate every ``rate`` consecutive frames: (B, T, D) -> (B, ceil(T/rate), rate*D).

    Frames past an utterance's end are zeroed first, so an utterance gives the same tokens
    alone and inside a padded batch.
    """

    def __init__(self, input_size: int, rate: int):
        super().__init__()
        if rate < 1:
            raise ValueError(f"downsample rate must be >= 1, got {rate}")
        self.rate = rate
        self.output_size = input_size * rate

    def forward(self, xs: torch.Tensor, xs_lens: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        xs = zero_padding(xs, xs_lens)
        batch, frames, dim = xs.shape
        pad = (-frames) % self.rate
        if pad:
            xs = torch.nn.functional.pad(xs, (0, 0, 0, pad))
        xs = xs.reshape(batch, (frames + pad) // self.rate, dim * self.rate)
        return xs, torch.div(xs_lens + self.rate - 1, self.rate, rounding_mode="floor")


class StridedConv(torch.nn.Module):
    """1-D convolution with stride ``rate`` and kernel ``kernel_size`` (>= rate), then GELU.

    (B, T, D) -> (B, ceil(T/rate), output_size); padding frames are zeroed before the conv.
    """

    def __init__(self, input_size: int, rate: int, output_size: int, kernel_size: int = 0):
        super().__init__()
        kernel_size = kernel_size or rate
        if rate < 1 or kernel_size < rate:
            raise ValueError(f"need 1 <= rate <= kernel_size, got rate={rate}, kernel_size={kernel_size}")
        self.rate = rate
        self.kernel_size = kernel_size
        self.output_size = output_size
        self.conv = torch.nn.Conv1d(input_size, output_size, kernel_size, stride=rate)

    def forward(self, xs: torch.Tensor, xs_lens: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        xs = zero_padding(xs, xs_lens)
        frames = xs.size(1)
        out_frames = (frames + self.rate - 1) // self.rate
        # Right-pad so that the last output token has a full kernel window.
        pad = (out_frames - 1) * self.rate + self.kernel_size - frames
        xs = torch.nn.functional.pad(xs.transpose(1, 2), (0, pad))  # (B, D, T + pad)
        ys = torch.nn.functional.gelu(self.conv(xs)).transpose(1, 2)  # (B, T', output_size)
        return ys, torch.div(xs_lens + self.rate - 1, self.rate, rounding_mode="floor")
