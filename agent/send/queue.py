"""The bounded queue between readers and the sender, in one lane per message id.

Limits in records and bytes count everything not yet finished (waiting, in flight or waiting for a retry), so
memory stays flat through any outage: when full, `put()` waits, and that wait reaches the file reader
(invariant 4). Each id queued or out has its own FIFO lane, so the lanes are bounded by the records. A lane whose
record is out (in flight or waiting for a retry) is busy: `get()` hands out the oldest record of the next ready
lane, and `finish()` makes the lane ready again (or drops it when empty). So an id is never in flight twice and its
records arrive as written (invariant 3), however many requests are in flight, and no id ever waits behind another:
lanes shared by a hash made the last records of a run trickle out one lane at a time (one RTT each).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import orjson

from agent.files.acks import Pending


class Envelope:
    """One record on its way: the encoded body, its id, and the line acknowledgement it settles."""

    __slots__ = ("attempts", "body", "id", "pending")

    def __init__(self, record: dict[str, Any], body: bytes, pending: Pending | None) -> None:
        # Only the encoded body is kept while waiting: the dict would cost several times its size.
        self.id: str = record["id"]
        self.body = body
        self.pending = pending
        self.attempts = 0

    @property
    def record(self) -> dict[str, Any]:
        """The record again, for the rare dead letter."""
        return orjson.loads(self.body)


class RecordQueue:
    """Lanes of records by id, sharing one budget of `max_records` and `max_bytes` (encoded bodies).

    A single record larger than `max_bytes` is still admitted when the queue is empty, so it cannot
    wedge the reader forever. `peak_records`/`peak_bytes` are the high-water marks, the evidence that
    the bounds held through an outage.
    """

    def __init__(self, max_records: int, max_bytes: int) -> None:
        if max_records < 1 or max_bytes < 1:
            raise ValueError("max_records and max_bytes must both be at least 1")
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.records = 0
        self.bytes = 0
        self.peak_records = 0
        self.peak_bytes = 0
        # ids with a record waiting or out. A lane is ready (in `_ready`) or has its oldest record out, never both:
        # it is made when its id's first record comes and dropped when its last is finished. A list, not a deque:
        # most ids have one record, and an empty deque alone takes 760 bytes, several times a record's body.
        self._lanes: dict[str, list[Envelope]] = {}
        self._ready: deque[str] = deque()  # ids with a record waiting and none out, in the order they became ready
        self._has_ready = asyncio.Event()
        self._waiters: deque[asyncio.Event] = deque()  # producers waiting for room, first come first served
        self._idle = asyncio.Event()
        self._idle.set()

    def _full(self, size: int) -> bool:
        return self.records > 0 and (self.records >= self.max_records or self.bytes + size > self.max_bytes)

    def offer(self, env: Envelope) -> bool:
        """Append without waiting if the budget has room now and nobody is waiting for it (the common case;
        no coroutine per record)."""
        if self._waiters or self._full(len(env.body)):
            return False
        self._append(env)
        return True

    async def put(self, env: Envelope) -> None:
        """Append to the record's lane; waits (back-pressure) in line until the budget has room for it.

        First come, first served: room that frees up goes to the longest waiting producer, so a busy source
        cannot starve another one (or a large record) by taking every free slot first.
        """
        size = len(env.body)
        if self._waiters or self._full(size):
            turn = asyncio.Event()
            self._waiters.append(turn)
            try:
                while self._waiters[0] is not turn or self._full(size):
                    turn.clear()
                    await turn.wait()
            finally:
                self._waiters.remove(turn)
                self._wake()  # the next in line may fit too (or its turn came because this one was cancelled)
        self._append(env)

    def _wake(self) -> None:
        if self._waiters:
            self._waiters[0].set()

    def _append(self, env: Envelope) -> None:
        size = len(env.body)
        self.records += 1
        self.bytes += size
        self.peak_records = max(self.peak_records, self.records)
        self.peak_bytes = max(self.peak_bytes, self.bytes)
        self._idle.clear()
        lane = self._lanes.get(env.id)
        if lane is None:
            self._lanes[env.id] = [env]
            self._make_ready(env.id)
        else:  # already ready, or its id has a record out: it waits its turn
            lane.append(env)

    def _make_ready(self, record_id: str) -> None:
        self._ready.append(record_id)
        self._has_ready.set()

    async def get(self) -> Envelope:
        """The oldest record of the next ready lane; its lane stays busy and its room taken until `finish()`."""
        while not self._ready:
            self._has_ready.clear()
            await self._has_ready.wait()
        return self._lanes[self._ready.popleft()].pop(0)

    def finish(self, env: Envelope, *, release_lane: bool = True) -> None:
        """The record is accepted, dead-lettered or abandoned at shutdown: free its room and its lane.

        `release_lane=False` (its delivery died of a bug, the agent is stopping): the lane stays busy, so a later
        record of that id is not sent before this one, which is read again after the restart.
        """
        self.records -= 1
        self.bytes -= len(env.body)
        if release_lane:
            if self._lanes[env.id]:
                self._make_ready(env.id)
            else:
                del self._lanes[env.id]
        self._wake()
        if self.records == 0:
            self._idle.set()

    async def drained(self) -> None:
        """Returns once every record put so far is finished."""
        await self._idle.wait()
