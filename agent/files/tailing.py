"""Reading one followed file: chunks from an open descriptor, split into lines with byte offsets.

A partial last line is kept back until its newline arrives. A line longer than `max_line_bytes` is
skipped to its next newline (counted, logged once per file). Invalid bytes are replaced and counted.
The descriptor stays open across renames and deletes, so a rotated file is read to its end.
The last bytes consumed are kept, so a rewrite under the read position is noticed before reading on.
"""

from __future__ import annotations

import io
import os
import time

from agent.files.acks import AckTracker
from agent.files.fingerprint import TAIL_BYTES, Head, Mark, checksum

CHUNK = 256 * 1024

Line = tuple[int, int, bytes]  # (start offset, end offset after the newline, bytes without the newline)


class FileTailer:
    """One open file: its identity, read position, partial-line buffer and acknowledgement tracker."""

    def __init__(self, path: str, fd: int, key: str, head: Head, offset: int, *, max_line_bytes: int,
                 fingerprint_bytes: int, tracker: AckTracker | None = None) -> None:
        self.path = path
        self.fd = fd
        self.key = key
        self.head = head
        self.offset = offset  # bytes consumed into lines (or skipped); the partial buffer starts here
        self.tracker = tracker if tracker is not None else AckTracker(offset)
        self.max_line_bytes = max_line_bytes
        self.fingerprint_bytes = fingerprint_bytes
        self._partial = b""
        self._skipping = False  # inside an oversize line, dropping bytes until its newline
        self._skip_start = offset  # where that line starts
        start = max(0, offset - TAIL_BYTES)
        self._tail = os.pread(fd, offset - start, start) if offset else b""  # the bytes just before `offset`
        self.rotated_at: float | None = None  # when it was renamed or unmatched: read before newer files
        self.orphaned_at: float | None = None  # when no glob matched it any more (rotated away or deleted)
        self.last_growth = time.monotonic()
        self.oversize_lines = 0
        self.warned_oversize = False

    @property
    def read_position(self) -> int:
        return self.offset + len(self._partial)

    @property
    def settled(self) -> int:
        """Every byte before this is a line handed over or a finished skip. An oversize line still being skipped
        is not: a restart reads (and skips) it again from its start instead of taking its rest for a line."""
        return self._skip_start if self._skipping else self.offset

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def mark(self) -> Mark:
        """Where consumption stands, in terms a copy of this file can be recognised by."""
        return Mark(self.head, self.offset, checksum(self._tail))

    def change(self, size: int) -> str | None:
        """Why what was read is no longer this file's content (truncated or rewritten), or None."""
        pos = self.read_position
        if size < pos:
            return f"truncated: its size {size} is below the read position {pos}"
        if not self.head.matches(self.fd):
            return "rewritten: its first bytes changed"
        before = self._partial[-TAIL_BYTES:] if len(self._partial) >= TAIL_BYTES else (
            self._tail + self._partial)[-TAIL_BYTES:]
        if before and os.pread(self.fd, len(before), pos - len(before)) != before:
            return "rewritten: the bytes before the read position changed"
        return None

    def restart(self) -> None:
        """Start again from byte 0 with a fresh tracker; acks for the old content no longer count."""
        self.offset = 0
        self._partial = b""
        self._skipping = False
        self._tail = b""
        self.tracker = AckTracker(0)
        self.head = Head.read(self.fd, self.fingerprint_bytes)

    def refresh_head(self) -> None:
        """Grow the fingerprint while the file is shorter than the fingerprint size."""
        if self.head.length < self.fingerprint_bytes:
            self.head = Head.read(self.fd, self.fingerprint_bytes)

    def _consume(self, buf: bytes, n: int, partial: bytes) -> None:
        """The first `n` bytes of `buf` are now lines or skipped; `partial` waits for its newline."""
        self.offset += n
        self._partial = partial
        if n:
            self._tail = (self._tail + buf[max(0, n - TAIL_BYTES):n])[-TAIL_BYTES:]

    def read_lines(self, budget: int = CHUNK) -> tuple[list[Line], int, bool]:
        """Complete lines available now, the number of oversize lines skipped, and whether any byte was read.

        Reads at most about `budget` bytes so one busy file cannot starve the others.
        """
        data = os.pread(self.fd, budget, self.read_position)
        if not data:
            return [], 0, False
        self.last_growth = time.monotonic()
        buf = self._partial + data if self._partial else data
        lines: list[Line] = []
        oversize = 0
        start = 0
        if self._skipping:
            nl = buf.find(b"\n")
            if nl < 0:
                self._consume(buf, len(buf), b"")
                return [], 0, True
            start = nl + 1
            self._skipping = False
        limit = self.max_line_bytes
        pos = self.offset + start  # file offset of the line being looked at
        last = buf.rfind(b"\n")
        if last >= start:
            # the lines are cut in C by BytesIO, which finds each newline with memchr (bytes.split(b"\n") compares
            # byte by byte: a fifth of the reader's time per line); the loop only adds offsets
            append = lines.append
            for raw in io.BytesIO(buf[start:last + 1]):
                end = pos + len(raw)
                raw = raw[:-2] if raw[-2:-1] == b"\r" else raw[:-1]  # CRLF: the limit is on the line, as for LF
                if len(raw) > limit:
                    oversize += 1
                else:
                    append((pos, end, raw))
                pos = end
            start = last + 1
        base = self.offset
        waiting = len(buf) - start
        if waiting > limit and not (waiting == limit + 1 and buf[-1] == 13):  # its \n may be next: CRLF
            oversize += 1
            self._skipping = True
            self._skip_start = base + start
            self._consume(buf, len(buf), b"")
        else:
            self._consume(buf, start, buf[start:])
        self.oversize_lines += oversize
        return lines, oversize, True

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
