"""Records Volt refused permanently (4xx other than 401/403), kept with the reason, so an offset can move on.

Each entry is one JSON line: `time` (UTC, ISO 8601), `status` (the HTTP status, or null when the agent
gave up after `max_attempts` without one), `error` (what happened), `response` (a short excerpt of
Volt's answer) and the `record` itself, ready to be replayed. Written and fsynced before the record's
line is acknowledged (invariant 1: dead-lettered with its reason). The file is created 0600: records
can hold message bodies.
"""

from __future__ import annotations

import contextlib
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

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return self._fd

    def write(self, record: dict[str, Any], status: int | None, error: str, response: str) -> None:
        """Append and fsync one entry; OSError (disk full, permissions) reaches the caller, who keeps the record."""
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
            os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, end)  # no half line for the retry to append after
            raise

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
