"""Contiguous acknowledgement of a file's lines: the offset a checkpoint may record (invariant 1).

Lines are registered in file order. A line that produced records is pending until each record is
accepted by Volt, dead-lettered or deliberately skipped; a line that produced none is done at once.
The committed offset is the start of the first pending line, or the end of everything read: like a
Kafka consumer commit, it never passes a line whose records are still in flight.
"""

from __future__ import annotations

from collections import deque


class Pending:
    """One line's outstanding records; `ack()` is called once per record."""

    __slots__ = ("count", "start", "tracker")

    def __init__(self, tracker: AckTracker, start: int, count: int) -> None:
        self.tracker = tracker
        self.start = start
        self.count = count

    def ack(self) -> None:
        self.count -= 1
        if self.count == 0:
            self.tracker._settle()


class AckTracker:
    """Per-file (per generation: a truncation starts a new tracker) record of what is done."""

    __slots__ = ("_pending", "read_offset")

    def __init__(self, offset: int) -> None:
        self.read_offset = offset
        self._pending: deque[Pending] = deque()

    def add(self, start: int, count: int) -> Pending:
        """Register a line starting at `start` whose `count` records are now in flight."""
        p = Pending(self, start, count)
        self._pending.append(p)
        return p

    def _settle(self) -> None:
        pending = self._pending
        while pending and pending[0].count <= 0:
            pending.popleft()

    @property
    def committed(self) -> int:
        """Every byte before this offset is finished."""
        return self._pending[0].start if self._pending else self.read_offset

    @property
    def in_flight(self) -> int:
        return len(self._pending)
