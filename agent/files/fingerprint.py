"""File identity: device + inode, confirmed by a checksum of the file's first bytes.

A reused inode (ext4 hands one out again seconds after a delete) or a truncated-and-rewritten file
has different first bytes, so it is recognised as new. Files shorter than the fingerprint size are
fingerprinted over what they have; the stored length says how many bytes to compare later.
A second checksum, of the bytes just before a stored offset, is checked before that offset is trusted.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

TAIL_BYTES = 64


def checksum(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def file_key(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}"


@dataclass(frozen=True, slots=True)
class Head:
    """The checksum of a file's first `length` bytes."""

    length: int
    digest: str

    @classmethod
    def read(cls, fd: int, limit: int) -> Head:
        data = os.pread(fd, limit, 0)
        return cls(len(data), checksum(data))

    def matches(self, fd: int) -> bool:
        """True when the file still starts with the same bytes (it is the same file)."""
        if self.length == 0:
            return True
        data = os.pread(fd, self.length, 0)
        return len(data) == self.length and checksum(data) == self.digest


def tail_digest(fd: int, offset: int) -> str:
    """Checksum of the bytes just before `offset`, stored with a checkpoint to validate it on resume."""
    start = max(0, offset - TAIL_BYTES)
    return checksum(os.pread(fd, offset - start, start))


def offset_problem(fd: int, offset: int, digest: str | None) -> str | None:
    """Why a stored offset must not be reused for this file, or None when it is safe."""
    size = os.fstat(fd).st_size
    if offset > size:
        return f"stored offset {offset} is beyond the file's size {size} (truncated?)"
    if digest is not None and tail_digest(fd, offset) != digest:
        return "the bytes before the stored offset differ from those recorded (rewritten?)"
    return None
