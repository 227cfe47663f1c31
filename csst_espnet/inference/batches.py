"""Batches of a data set for running a trained model over it (decoding, routing report).

ESPnet's streaming loader through the task (``CSSTTask.build_streaming_iterator``): the entries of
``data_path_and_name_and_type`` read line by line in the order of the key file (default: the first
data file), turned into model inputs by the model's preprocessing and padded by its collation, in
consecutive batches of ``batch_size``. See docs/architecture.md.
"""

from typing import Callable, Optional, Sequence, Tuple

from torch.utils.data import DataLoader

from csst_espnet.tasks.csst import CSSTTask


def data_loader(
    data_path_and_name_and_type: Sequence[Tuple[str, str, str]],
    preprocess: Optional[Callable],
    collate: Callable,
    batch_size: int,
    key_file: Optional[str] = None,
    num_workers: int = 1,
) -> DataLoader:
    """``(keys, batch)`` pairs: utterance ids and the collated batch (``speech`` (B, S),
    ``speech_lengths`` (B,), and what the preprocessing adds)."""
    return CSSTTask.build_streaming_iterator(
        data_path_and_name_and_type=data_path_and_name_and_type,
        dtype="float32",
        batch_size=batch_size,
        key_file=key_file,
        num_workers=num_workers,
        preprocess_fn=preprocess,
        collate_fn=collate,
        allow_variable_data_keys=False,
        inference=True,
    )


def count_keys(data_path_and_name_and_type: Sequence[Tuple[str, str, str]], key_file: Optional[str]) -> int:
    """Utterances ``data_loader`` yields: the non-blank lines of the key file (default: the first data file)."""
    path = key_file or data_path_and_name_and_type[0][0]
    with open(path, encoding="utf-8") as f:
        return sum(1 for line in f if line.strip())
