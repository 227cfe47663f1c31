"""Checkpoints written atomically: a crash or a full disk while writing never leaves a corrupt file.

ESPnet's trainer writes ``checkpoint.pth``, ``{N}epoch.pth`` and the averaged models with
``torch.save(obj, path)``. :func:`atomic_save` writes to ``path.tmp`` in the same directory, flushes
it to disk and renames it over ``path`` (``os.replace``: atomic on POSIX), so a reader sees either
the previous file whole or the new one whole. :func:`atomic_saves` makes every ``torch.save`` to a
path do that for the duration of a block: ``CSSTTrainer.run`` runs ESPnet's loop inside it.

ESPnet reads ``checkpoint.pth`` (``--resume``), ``--init_param`` files and the epoch models it averages
with ``torch.load(..., weights_only=False)``, which runs whatever code a crafted file holds.
:func:`weights_only_loads` makes every ``torch.load`` of a block take weights only (tensors, containers,
numbers and the numpy scalars of ESPnet's reporter): ``CSSTTask.main_worker`` runs ESPnet's worker in it.
"""

import contextlib
import datetime
import errno
import os
from typing import Any, Iterator

import numpy as np
import torch

_torch_save = torch.save  # the real writer, whatever atomic_saves has installed
_torch_load = torch.load  # the real reader, whatever weights_only_loads has installed
# ESPnet's reporter keeps numpy scalars (numbers and their dtypes) and times in checkpoint.pth
REPORTER_GLOBALS = [np._core.multiarray.scalar, np.dtype, datetime.timedelta, datetime.datetime,
                    *(type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32", "bool"))]


class CheckpointWriteError(OSError):
    """Writing a checkpoint failed (full disk, ...); the previous file at that path is intact."""


def atomic_save(obj: Any, path, **kwargs) -> None:
    """``torch.save(obj, path)`` through ``path.tmp`` + fsync + ``os.replace``. On failure the
    temporary file is removed, the previous ``path`` is left as it was, and a
    :class:`CheckpointWriteError` names the path (and, for a full disk, says what to do)."""
    path = os.fspath(path)
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "wb") as f:
            _torch_save(obj, f, **kwargs)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        state = "the previous file is intact" if os.path.exists(path) else "no file was written"
        if e.errno == errno.ENOSPC:
            raise CheckpointWriteError(
                e.errno, f"no space left on the device while writing {path} ({state}): free space and rerun "
                f"the same command (training resumes from the last complete checkpoint.pth)") from e
        raise CheckpointWriteError(e.errno, f"cannot write {path} ({state}): {e.strerror or e}") from e


def _save(obj: Any, f, *args, **kwargs) -> None:
    if isinstance(f, (str, os.PathLike)):
        atomic_save(obj, f, *args, **kwargs)
    else:  # a file object: the caller owns it
        _torch_save(obj, f, *args, **kwargs)


@contextlib.contextmanager
def atomic_saves() -> Iterator[None]:
    """Within the block, ``torch.save`` to a path is :func:`atomic_save`."""
    previous = torch.save
    torch.save = _save
    try:
        yield
    finally:
        torch.save = previous


def _load_weights_only(f, *args, **kwargs) -> Any:
    kwargs["weights_only"] = True
    with torch.serialization.safe_globals(REPORTER_GLOBALS):
        return _torch_load(f, *args, **kwargs)


@contextlib.contextmanager
def weights_only_loads() -> Iterator[None]:
    """Within the block, every ``torch.load`` takes weights only, whatever its caller asked."""
    previous = torch.load
    torch.load = _load_weights_only
    try:
        yield
    finally:
        torch.load = previous
