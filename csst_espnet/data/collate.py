"""Batch collation for the CSST task: pad every array and add ``<name>_lengths``; audio that text-only
examples (text translation, task ``mt``) lack.

Same contract as ESPnet's common collate function (floats padded with 0, integers with -1),
written here so that the task does not import ESPnet's text preprocessors (and their
g2p/NLTK dependencies) in every training and decoding process.
"""

from collections.abc import Mapping
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch


class PadCollate:
    """``optional``: names an utterance may lack (e.g. ``speech`` of a text translation example), with
    their dtype: a missing one is an empty array (length 0), and the name is in every batch."""

    def __init__(self, float_pad_value: float = 0.0, int_pad_value: int = -1,
                 optional: Optional[Dict[str, np.dtype]] = None):
        self.float_pad_value = float_pad_value
        self.int_pad_value = int_pad_value
        self.optional = dict(optional or {})

    def __call__(self, items: Sequence[Tuple[str, Dict[str, np.ndarray]]]) -> Tuple[List[str], Dict[str, torch.Tensor]]:
        uids = [uid for uid, _ in items]
        names = list(dict.fromkeys([*items[0][1], *self.optional]))
        batch = {}
        for name in names:
            arrays = []
            for uid, data in items:
                if name in self.optional and name not in data:
                    arrays.append(np.zeros(0, dtype=self.optional[name]))
                    continue
                if name not in data:
                    raise ValueError(f"utterance '{uid}' has no '{name}' while '{uids[0]}' has: data files differ")
                arrays.append(np.asarray(data[name]))
            is_float = np.issubdtype(arrays[0].dtype, np.floating)
            pad = self.float_pad_value if is_float else self.int_pad_value
            lengths = [a.shape[0] for a in arrays]
            shape = (len(arrays), max(lengths), *arrays[0].shape[1:])
            padded = np.full(shape, pad, dtype=arrays[0].dtype)
            for i, a in enumerate(arrays):
                padded[i, : a.shape[0]] = a
            batch[name] = torch.from_numpy(padded)
            batch[f"{name}_lengths"] = torch.tensor(lengths, dtype=torch.long)
        return uids, batch


class MissingAsEmpty(Mapping):
    """A data loader (e.g. ESPnet's ``wav.scp`` reader) whose missing utterances read as an empty
    float32 array: a text translation example needs no ``wav.scp`` entry; the preprocessor refuses
    an empty one for every other task."""

    def __init__(self, loader: Mapping):
        self.loader = loader

    def __getitem__(self, uid: str) -> np.ndarray:
        return self.loader[uid] if uid in self.loader else np.zeros(0, dtype=np.float32)

    def __contains__(self, uid) -> bool:
        return uid in self.loader

    def __iter__(self):
        return iter(self.loader)

    def __len__(self) -> int:
        return len(self.loader)
