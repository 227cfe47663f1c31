"""Dense projectors: downsample encoder frames, then an MLP into the LLM width."""

from typing import Dict, Tuple

import torch

from csst_espnet.projector.abs_projector import AbsProjector
from csst_espnet.projector.downsample import FrameStack, StridedConv


class MLPProjector(AbsProjector):
    """Stack ``downsample_rate`` frames (or a strided conv), then Linear-GELU-Linear.

    (B, T, input_size) -> (B, ceil(T / downsample_rate), output_size). ``hidden_size: 0``
    gives a single linear layer.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        downsample: str = "stack",
        downsample_rate: int = 4,
        conv_kernel_size: int = 0,
        hidden_size: int = 2048,
    ):
        super().__init__()
        if downsample == "stack":
            self.downsample = FrameStack(input_size, downsample_rate)
        elif downsample == "conv":
            self.downsample = StridedConv(input_size, downsample_rate, hidden_size or output_size, conv_kernel_size)
        else:
            raise ValueError(f"projector downsample must be 'stack' or 'conv', got '{downsample}'")
        width = self.downsample.output_size
        if hidden_size:
            self.mlp = torch.nn.Sequential(
                torch.nn.Linear(width, hidden_size), torch.nn.GELU(), torch.nn.Linear(hidden_size, output_size)
            )
        else:
            self.mlp = torch.nn.Linear(width, output_size)
        self._output_size = output_size

    def output_size(self) -> int:
        return self._output_size

    def forward(
        self, xs: torch.Tensor, xs_lens: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, Dict[str, torch.Tensor]]:
        xs, lens = self.downsample(xs, xs_lens)
        return self.mlp(xs), lens, {}
