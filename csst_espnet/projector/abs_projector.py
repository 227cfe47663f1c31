"""Interface of a speech projector: encoder frames -> LLM-width speech embeddings."""

from abc import ABC, abstractmethod
from typing import Dict, Tuple

import torch


class AbsProjector(torch.nn.Module, ABC):
    """Maps encoder output (B, T, D_enc) to LLM input embeddings (B, T', D_llm).

    ``forward`` returns ``(embeddings, lengths, aux)``; ``aux`` is a dict of
    tensors that auxiliary losses read (empty for projectors without routing).
    """

    @abstractmethod
    def output_size(self) -> int:
        """Width of the produced embeddings (the LLM hidden size)."""

    @abstractmethod
    def forward(
        self, xs: torch.Tensor, xs_lens: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, Dict[str, torch.Tensor]]:
        raise NotImplementedError

    def on_update(self) -> None:
        """After each optimiser update (``ESPnetCSSTModel.on_update``); nothing by default."""
