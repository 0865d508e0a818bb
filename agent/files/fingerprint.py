"""File identity: device + inode, confirmed by a checksum of the file's first bytes.

A reused inode (ext4 hands one out again seconds after a delete) or a truncated-and-rewritten file
has different first bytes, so it is recognised as new. Files shorter than the fingerprint size are
fingerprinted over what they have; the stored length says how many bytes to compare later.
A second checksum, of the bytes just before a stored offset, is checked before that offset is trusted:
together they form a `Mark`, a position in known content, which also recognises a copy of a file
(copytruncate) as carrying on where the original was read to.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

TAIL_BYTES = 64

# First bytes of compressed files: a rotated copy compressed under an unexpected name is still never read as text.
COMPRESSED_MAGIC = (b"\x1f\x8b", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd", b"\x04\x22\x4d\x18", b"PK\x03\x04")


def checksum(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def file_key(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}"


def is_compressed(head: bytes) -> bool:
    return head.startswith(COMPRESSED_MAGIC) or (head[:3] == b"BZh" and head[4:10] == b"1AY&SY")  # bzip2


@dataclass(frozen=True, slots=True)
class Head:
    """The checksum of a file's first `length` bytes (and, for a file followed now, those bytes)."""

    length: int
    digest: str
    sample: bytes = field(default=b"", compare=False, repr=False)

    @classmethod
    def of(cls, data: bytes) -> Head:
        return cls(len(data), checksum(data), data)

    @classmethod
    def read(cls, fd: int, limit: int) -> Head:
        return cls.of(os.pread(fd, limit, 0))

    def matches(self, fd: int, first: bytes = b"") -> bool:
        """True when the file still starts with the same bytes (it is the same file).

        `first` may hold the file's first bytes already read, to save a read per comparison.
        """
        if self.length == 0:
            return True
        data = first[: self.length] if len(first) >= self.length else os.pread(fd, self.length, 0)
        return len(data) == self.length and checksum(data) == self.digest

    def may_start(self, first: bytes) -> bool:
        """The file whose first bytes are `first` may still grow into one with this head (known bytes only)."""
        n = min(len(first), len(self.sample))
        return bool(self.sample) and first[:n] == self.sample[:n]


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
        return f"the bytes before the stored offset {offset} differ from those recorded (rewritten?)"
    return None


@dataclass(frozen=True, slots=True)
class Mark:
    """A position in known content: the content's first bytes and the bytes just before `offset`.

    A file that fits a mark holds that content up to `offset`: it is the same file (a checkpoint),
    or a byte copy of it (copytruncate), so reading it may carry on from `offset`.
    """

    head: Head
    offset: int
    tail: str | None

    def problem(self, fd: int, first: bytes = b"") -> str | None:
        """Why this file does not hold the marked content, or None when it does."""
        if not self.head.matches(fd, first):
            return "the file's first bytes differ from those recorded (a new file on a reused inode, or rewritten)"
        return offset_problem(fd, self.offset, self.tail)
