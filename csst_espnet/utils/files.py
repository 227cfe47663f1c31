"""File digests: what checkpoints, packed models and decoding fingerprints identify files by."""

import hashlib


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
