"""Batches of a data set for running a trained model over it (decoding, routing report).

ESPnet's streaming loader through the task (``CSSTTask.build_streaming_iterator``): the entries of
``data_path_and_name_and_type`` read line by line in the order of the key file (default: the first
data file), turned into model inputs by the model's preprocessing and padded by its collation, in
consecutive batches of ``batch_size``. See docs/architecture.md.
"""

from typing import Callable, Iterator, Optional, Sequence, Set, Tuple

from csst_espnet.data.audio import audio_info
from csst_espnet.data.kaldi_dir import read_raw
from csst_espnet.tasks.csst import CSSTTask


def data_loader(
    data_path_and_name_and_type: Sequence[Tuple[str, str, str]],
    preprocess: Optional[Callable],
    collate: Callable,
    batch_size: int,
    key_file: Optional[str] = None,
    num_workers: int = 1,
) -> Iterator[Tuple[list, dict]]:
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
    done: Set[str] = set()
    try:
        for keys, batch in loader:
            done.update(keys)
            yield keys, batch
    except Exception as e:
        bad = _first_unreadable_audio(data_path_and_name_and_type, key_file, done)
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
