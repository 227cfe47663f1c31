"""Local-window self-attention computed on blocks of the band instead of the full T × T scores.

A frame attends only to frames at most ``window`` positions away (and not to padding). Computed
as full attention plus a T × T mask, that costs O(T²) time and memory for O(T · window) useful
scores (a 15 s utterance: 750 encoder frames, 25 visible of 750). :func:`banded_attention` cuts the
queries into blocks of ``BLOCK`` frames; each block attends to the ``BLOCK + 2 · window`` keys around
it, with the same visibility rule, so each valid query's output is the full-attention one's (the
hidden keys' weights are exactly 0 in both) up to float rounding. A query that sees no key at all
(a padding frame further than ``window`` past its utterance's end) gets a uniform average of its
block's keys rather than of all keys: padding frames differ, valid frames do not. Utterances of a
batch can be packed into one row (``segments``), so that no layer computes padding frames.

The encoder's attention calls reach it through ``transformers``' attention interface
(:data:`LOCAL_WINDOW`, registered on import); a call without ``local_window`` is plain SDPA.
``tests/test_model_components.py`` checks it against the dense reference (outputs and gradients).
"""

import math
from typing import Optional, Tuple

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward

LOCAL_WINDOW = "csst_local_window"
BLOCK = 64  # queries per block; a block scores BLOCK × (BLOCK + 2 · window) pairs


def worth_banding(frames: int, window: int) -> bool:
    """Whether the band of blocks is smaller than full attention over ``frames`` frames."""
    return 0 < window and BLOCK + 2 * window < frames


def banded_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    window: int,
    segments: Optional[torch.Tensor] = None,
    scaling: float = 1.0,
    dropout: float = 0.0,
) -> torch.Tensor:
    """Attention of each query to the keys at most ``window`` positions away in its own segment:
    q, k, v (B, H, T, d) -> (B, T, H, d). ``segments`` (B, T): the segment (utterance) of each
    position, -1 for padding (None: one segment); several utterances packed into one row stay apart."""
    batch, heads, frames, dim = query.shape
    blocks = math.ceil(frames / BLOCK)
    span = BLOCK + 2 * window
    tail = blocks * BLOCK - frames
    q = torch.nn.functional.pad(query, (0, 0, 0, tail)).view(batch, heads, blocks, BLOCK, dim)
    # keys of block i: original positions i·BLOCK - window ... i·BLOCK + BLOCK + window - 1
    k = torch.nn.functional.pad(key, (0, 0, window, tail + window)).unfold(2, span, BLOCK)  # (B, H, n, d, span)
    v = torch.nn.functional.pad(value, (0, 0, window, tail + window)).unfold(2, span, BLOCK)
    scores = torch.matmul(q, k)  # (B, H, n, BLOCK, span)
    if scaling != 1.0:
        scores = scores * scaling
    row = torch.arange(BLOCK, device=query.device)
    col = torch.arange(span, device=query.device)
    band = (col[None, :] - row[:, None] - window).abs() <= window  # (BLOCK, span): |(r + window) - c| <= window
    if segments is None:
        segments = torch.zeros(batch, frames, dtype=torch.long, device=query.device)
    segments = segments.to(query.device)
    query_segment = torch.nn.functional.pad(segments, (0, tail), value=-1).view(batch, blocks, BLOCK)
    key_segment = torch.nn.functional.pad(segments, (window, tail + window), value=-1).unfold(1, span, BLOCK)  # (B, n, span)
    visible = (band[None, None] & (query_segment[..., None] == key_segment[:, :, None, :])
               & (key_segment >= 0)[:, :, None, :])  # (B, n, BLOCK, span)
    scores = scores.masked_fill(~visible[:, None], torch.finfo(scores.dtype).min)
    probs = scores.softmax(-1)
    if dropout:
        probs = torch.nn.functional.dropout(probs, p=dropout, training=True)
    out = torch.matmul(probs, v.transpose(-1, -2))  # (B, H, n, BLOCK, d)
    return out.reshape(batch, heads, blocks * BLOCK, dim)[:, :, :frames].transpose(1, 2).contiguous()


def local_window_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: Optional[torch.Tensor],
    dropout: float = 0.0,
    scaling: Optional[float] = None,
    local_window: int = 0,
    segments: Optional[torch.Tensor] = None,
    **kwargs,
) -> Tuple[torch.Tensor, None]:
    """``transformers`` attention interface: banded attention when the caller passes ``local_window``,
    else SDPA with ``attention_mask``."""
    if not local_window:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    scale = query.size(-1) ** -0.5 if scaling is None else scaling  # SDPA's default
    return banded_attention(query, key, value, local_window, segments, scale, dropout), None


AttentionInterface.register(LOCAL_WINDOW, local_window_attention)
