"""Records Volt refused permanently (4xx other than 401/403), kept with the reason, so an offset can move on.

Each entry is one JSON line: `time` (UTC, ISO 8601), `status` (the HTTP status, or null when the agent
gave up after `max_attempts` without one), `error` (what happened), `response` (a short excerpt of
Volt's answer) and the `record` itself, ready to be replayed. Written before the record's line is
acknowledged, and fsynced before any checkpoint that moves past that line (invariant 1: dead-lettered
with its reason): one fsync per checkpoint, not per record, so a flood of refusals cannot stall the
event loop. A crash in between loses no entry: the line's offset was not saved, so it is read, sent and
refused again. The file is created 0600: records can hold message bodies.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from pathlib import Path
from typing import Any

import orjson

EXCERPT_CHARS = 200


class DeadLetters:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._unsynced = False

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return self._fd

    def write(self, record: dict[str, Any], status: int | None, error: str, response: str) -> None:
        """Append one entry; OSError (disk full, permissions) reaches the caller, who keeps the record."""
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "status": status,
            "error": error,
            "response": response[:EXCERPT_CHARS],
            "record": record,
        }
        fd = self._open()
        end = os.lseek(fd, 0, os.SEEK_END)
        try:
            os.write(fd, orjson.dumps(entry) + b"\n")
            self._unsynced = True
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, end)  # no half line for the retry to append after
            raise

    def sync(self) -> None:
        """Make every entry written so far durable; called before checkpoints are written. OSError reaches
        the caller, who then keeps the old checkpoints."""
        if not self._unsynced:
            return
        if self._fd is None:  # closed after a failed sync: those entries may not be on disk
            raise OSError(errno.EIO, f"entries of {self.path} could not be made durable")
        os.fsync(self._fd)
        self._unsynced = False

    def close(self) -> None:
        if self._fd is not None:
            try:
                self.sync()
            finally:
                os.close(self._fd)
                self._fd = None
