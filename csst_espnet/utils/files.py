"""File digests (what checkpoints, packed models and decoding fingerprints identify files by), and a
full disk named with what was being written."""

import contextlib
import errno
import hashlib
from typing import Iterator


def update_digest(digest, path: str, block_size: int = 1 << 22) -> None:
    """Feed the bytes of ``path`` to ``digest`` (a hashlib object), a block at a time."""
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(block_size), b""):
            digest.update(block)


def file_sha256(path: str) -> str:
    """Hex SHA-256 of the file ``path``."""
    digest = hashlib.sha256()
    update_digest(digest, path)
    return digest.hexdigest()


class DiskFullError(OSError):
    """No space left on the device; the message names what was being written and how to resume."""


@contextlib.contextmanager
def disk_full_named(what: str, resume: str) -> Iterator[None]:
    """Within the block, a full disk (``ENOSPC``) is a :class:`DiskFullError` naming ``what`` was being
    written and saying ``resume`` (how to go on once space is free)."""
    try:
        yield
    except OSError as e:
        if e.errno != errno.ENOSPC or isinstance(e, DiskFullError):
            raise
        raise DiskFullError(e.errno, f"no space left on the device while writing {what}: free space, then {resume}") from e
