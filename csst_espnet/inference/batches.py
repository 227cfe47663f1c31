"""Batches of a data set for running a trained model over it (decoding, routing report).

ESPnet's streaming loader through the task (``CSSTTask.build_streaming_iterator``): the entries of
``data_path_and_name_and_type`` read line by line in the order of the key file (default: the first
data file), turned into model inputs by the model's preprocessing and padded by its collation, in
consecutive batches of ``batch_size`` (``data_loader``; the routing report); or, for decoding,
length-sorted batches under a budget of padded samples (``sorted_batches``, ``sorted_loader``). See
docs/architecture.md.
"""

from typing import Callable, Dict, List, Optional, Sequence, Tuple

from espnet2.train.dataset import ESPnetDataset
from torch.utils.data import DataLoader

from csst_espnet.data.audio import audio_info
from csst_espnet.data.kaldi_dir import read_table
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


def speech_lengths(data_path_and_name_and_type: Sequence[Tuple[str, str, str]],
                   key_file: Optional[str] = None) -> Dict[str, int]:
    """Samples of each utterance's ``speech`` (from the audio headers), in the order of the key file
    (default: the ``speech`` file)."""
    scp = [path for path, name, _ in data_path_and_name_and_type if name == "speech"]
    if not scp:
        raise ValueError("data_path_and_name_and_type has no speech entry")
    entries = read_table(scp[0], unique=True)
    keys = list(read_table(key_file, unique=True)) if key_file else list(entries)
    lengths = {}
    for key in keys:
        if key not in entries:
            raise KeyError(f"{scp[0]} has no utterance {key} (listed in {key_file})")
        try:
            lengths[key] = audio_info(entries[key])[0]
        except (OSError, ValueError, RuntimeError) as e:
            raise RuntimeError(f"{scp[0]}: utterance {key}: {e}") from e
    return lengths


def sorted_batches(lengths: Dict[str, int], batch_size: int, batch_bins: int = 0) -> List[List[str]]:
    """Utterance ids longest first, cut into batches of at most ``batch_size`` utterances and, with
    ``batch_bins`` > 0, at most ``batch_bins`` padded samples (utterances × the longest); an utterance
    longer than ``batch_bins`` is a batch of its own. Ties keep the given order."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    order = sorted(lengths, key=lambda k: -lengths[k])
    batches: List[List[str]] = []
    for key in order:
        last = batches[-1] if batches else None
        if last and len(last) < batch_size and (batch_bins <= 0 or (len(last) + 1) * lengths[last[0]] <= batch_bins):
            last.append(key)
        else:
            batches.append([key])
    return batches


def sorted_loader(
    data_path_and_name_and_type: Sequence[Tuple[str, str, str]],
    preprocess: Optional[Callable],
    collate: Callable,
    batches: List[List[str]],
    num_workers: int = 1,
) -> DataLoader:
    """``(keys, batch)`` pairs of the given batches of utterance ids, in that order (see
    :func:`sorted_batches`)."""
    dataset = ESPnetDataset(data_path_and_name_and_type, preprocess=preprocess, float_dtype="float32")
    return DataLoader(dataset, batch_sampler=batches, collate_fn=collate, num_workers=num_workers)
