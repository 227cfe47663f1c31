"""Batches of a data set for running a trained model over it (decoding, routing report).

ESPnet's streaming loader through the task (``CSSTTask.build_streaming_iterator``): the entries of
``data_path_and_name_and_type`` read line by line in the order of the key file (default: the first
data file), turned into model inputs by the model's preprocessing and padded by its collation, in
consecutive batches of ``batch_size`` (``data_loader``; the routing report); or, for decoding,
length-sorted batches under a budget of padded samples (``sorted_batches``, ``sorted_loader``). See
docs/architecture.md.
"""

from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

from espnet2.train.dataset import ESPnetDataset
from torch.utils.data import DataLoader

from csst_espnet.data.audio import audio_info
from csst_espnet.data.kaldi_dir import read_raw, read_table
from csst_espnet.tasks.csst import CSSTTask


def data_loader(
    data_path_and_name_and_type: Sequence[Tuple[str, str, str]],
    preprocess: Optional[Callable],
    collate: Callable,
    batch_size: int,
    key_file: Optional[str] = None,
    num_workers: int = 1,
) -> Iterable[Tuple[list, dict]]:
    """``(keys, batch)`` pairs: utterance ids and the collated batch (``speech`` (B, S),
    ``speech_lengths`` (B,), and what the preprocessing adds).

    Audio that cannot be read when its batch is loaded (a file deleted after validation) stops the
    iteration with an error naming the utterance and its ``wav.scp`` line."""
    loader = CSSTTask.build_streaming_iterator(
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
    return _NamingUnreadableAudio(loader, data_path_and_name_and_type, key_file)


class _NamingUnreadableAudio:
    """The batches of ``loader`` (iterable again, as the loader is); an error while loading one names
    the first utterance not yet yielded whose audio cannot be read (and re-raises when every one can)."""

    def __init__(self, loader, data_path_and_name_and_type, key_file: Optional[str]):
        self.loader, self.data, self.key_file = loader, data_path_and_name_and_type, key_file

    def __iter__(self) -> Iterator[Tuple[list, dict]]:
        done: Set[str] = set()
        try:
            for keys, batch in self.loader:
                done.update(keys)
                yield keys, batch
        except Exception as e:
            bad = _first_unreadable_audio(self.data, self.key_file, done)
            if bad is None:
                raise
            raise RuntimeError(f"cannot read the audio of utterance {bad[0]} ({bad[1]}): {bad[2]}") from e


def _first_unreadable_audio(data_path_and_name_and_type, key_file: Optional[str],
                            done: Set[str]) -> Optional[Tuple[str, str, str]]:
    """(utterance, ``file:line``, error) of the first utterance not in ``done``, in key order, whose
    ``sound`` entry cannot be read; None when every one can."""
    for path, _, kind in data_path_and_name_and_type:
        if kind != "sound":
            continue
        raw = read_raw(path)
        entries = {k: (n, v) for n, k, v in raw.rows}
        order = [k for _, k, _ in read_raw(key_file).rows] if key_file else list(entries)
        for key in order:
            if key in done or key not in entries:
                continue
            line, entry = entries[key]
            try:
                audio_info(entry)
            except Exception as err:  # missing, truncated, not audio: named in the error above
                return key, f"{path}:{line}", f"{type(err).__name__}: {err}"
    return None


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
    key_file: Optional[str] = None,
) -> Iterable[Tuple[list, dict]]:
    """``(keys, batch)`` pairs of the given batches of utterance ids, in that order (see
    :func:`sorted_batches`); unreadable audio is named as by :func:`data_loader`."""
    dataset = ESPnetDataset(data_path_and_name_and_type, preprocess=preprocess, float_dtype="float32")
    loader = DataLoader(dataset, batch_sampler=batches, collate_fn=collate, num_workers=num_workers)
    return _NamingUnreadableAudio(loader, data_path_and_name_and_type, key_file)
