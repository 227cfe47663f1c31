"""Losses over the full vocabulary, a chunk of positions at a time.

The LLM's vocabulary is large (152k tokens for Qwen2.5): float32 logits of a whole batch over it
(batch × positions × vocabulary × 4 bytes, plus a softmax of the same size) would take more memory
than the 7B model's LoRA step itself. A loss that needs them computes them from the hidden states one
chunk of positions at a time, and each chunk is checkpointed (``torch.utils.checkpoint``), so that the
backward pass recomputes that chunk's logits instead of keeping them: at most one chunk's logits
exist at once, forward and backward.
"""

from typing import Callable, List

import torch
from torch.utils.checkpoint import checkpoint

DEFAULT_CHUNK = 128  # positions per chunk: 128 × 152k × 4 bytes = 78 MB of float32 logits


def map_chunks(fn: Callable[..., torch.Tensor], chunk_size: int, *tensors: torch.Tensor) -> List[torch.Tensor]:
    """``[fn(*[t[i:i + chunk_size] for t in tensors]) for each chunk i]``, along dimension 0 of ``tensors``.

    When gradients are needed, each call is checkpointed: its intermediates (the chunk's logits) are
    dropped after the forward pass and recomputed chunk by chunk in the backward pass."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    grad = torch.is_grad_enabled()
    out = []
    for start in range(0, tensors[0].size(0), chunk_size):
        parts = [t[start : start + chunk_size] for t in tensors]
        out.append(checkpoint(fn, *parts, use_reentrant=False) if grad else fn(*parts))
    return out


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32, or as it is when wider (float64 in exactness tests)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))
