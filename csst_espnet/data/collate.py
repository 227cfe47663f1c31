"""Batch collation for the CSST task: pad every array and add ``<name>_lengths``.

Same contract as ESPnet's common collate function (floats padded with 0, integers with -1),
written here so that the task does not import ESPnet's text preprocessors (and their
g2p/NLTK dependencies) in every training and decoding process.
"""

from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch


class PadCollate:
    def __init__(self, float_pad_value: float = 0.0, int_pad_value: int = -1):
        self.float_pad_value = float_pad_value
        self.int_pad_value = int_pad_value

    def __call__(self, items: Sequence[Tuple[str, Dict[str, np.ndarray]]]) -> Tuple[List[str], Dict[str, torch.Tensor]]:
        uids = [uid for uid, _ in items]
        names = list(items[0][1])
        batch = {}
        for name in names:
            arrays = []
            for uid, data in items:
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
