"""Reading one followed file: chunks from an open descriptor, split into lines with byte offsets.

A partial last line is kept back until its newline arrives. A line longer than `max_line_bytes` is
skipped to its next newline (counted, logged once per file). Invalid bytes are replaced and counted.
The descriptor stays open across renames and deletes, so a rotated file is read to its end.
"""

from __future__ import annotations

import os
import time

from agent.files.acks import AckTracker
from agent.files.fingerprint import Head

CHUNK = 256 * 1024


class FileTailer:
    """One open file: its identity, read position, partial-line buffer and acknowledgement tracker."""

    def __init__(self, path: str, fd: int, key: str, head: Head, offset: int, *,
                 max_line_bytes: int, fingerprint_bytes: int) -> None:
        self.path = path
        self.fd = fd
        self.key = key
        self.head = head
        self.offset = offset  # bytes consumed into lines (or skipped); the partial buffer starts here
        self.tracker = AckTracker(offset)
        self.max_line_bytes = max_line_bytes
        self.fingerprint_bytes = fingerprint_bytes
        self._partial = b""
        self._skipping = False  # inside an oversize line, dropping bytes until its newline
        self.orphaned_at: float | None = None  # when the path stopped naming this file (rotated/deleted)
        self.last_growth = time.monotonic()
        self.oversize_lines = 0
        self.warned_oversize = False

    @property
    def read_position(self) -> int:
        return self.offset + len(self._partial)

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def truncated(self) -> bool:
        """copytruncate (or a rewrite) shrank the file below what we have read."""
        return self.size() < self.read_position

    def restart(self) -> None:
        """Start again from byte 0 with a fresh tracker; acks for the old content no longer count."""
        self.offset = 0
        self._partial = b""
        self._skipping = False
        self.tracker = AckTracker(0)
        self.head = Head.read(self.fd, self.fingerprint_bytes)

    def refresh_head(self) -> None:
        """Grow the fingerprint while the file is shorter than the fingerprint size."""
        if self.head.length < self.fingerprint_bytes:
            self.head = Head.read(self.fd, self.fingerprint_bytes)

    def read_lines(self, budget: int = CHUNK) -> tuple[list[tuple[int, int, bytes]], int]:
        """Complete lines available now as (start, end, raw bytes without newline); plus oversize count.

        Reads at most about `budget` bytes so one busy file cannot starve the others.
        """
        pos = self.read_position
        data = os.pread(self.fd, budget, pos)
        if not data:
            return [], 0
        self.last_growth = time.monotonic()
        buf = self._partial + data if self._partial else data
        base = self.offset
        lines: list[tuple[int, int, bytes]] = []
        oversize = 0
        start = 0
        limit = self.max_line_bytes
        find = buf.find
        if self._skipping:
            nl = find(b"\n")
            if nl < 0:
                self.offset = base + len(buf)
                self._partial = b""
                return [], 0
            start = nl + 1
            self._skipping = False
        while True:
            nl = find(b"\n", start)
            if nl < 0:
                break
            if nl - start > limit:
                oversize += 1
            else:
                end = nl
                if end > start and buf[end - 1] == 13:  # CRLF
                    end -= 1
                lines.append((base + start, base + nl + 1, buf[start:end]))
            start = nl + 1
        rest = len(buf) - start
        if rest > limit:
            oversize += 1
            self._skipping = True
            self.offset = base + len(buf)
            self._partial = b""
        else:
            self.offset = base + start
            self._partial = buf[start:] if rest else b""
        self.oversize_lines += oversize
        return lines, oversize

    def at_eof(self) -> bool:
        return self.read_position >= self.size()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
