"""Records Volt refused permanently (4xx other than 401/403), kept with the reason, so an offset can move on.

Each entry is a JSON line: time, HTTP status, a short excerpt of Volt's answer, and the record.
Written and fsynced before the record's line is acknowledged (invariant 1: dead-lettered with its reason).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import orjson


class DeadLetters:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return self._fd

    def write(self, record: dict[str, Any], status: int | None, reason: str) -> None:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "status": status,
            "reason": reason[:500],
            "record": record,
        }
        fd = self._open()
        os.write(fd, orjson.dumps(entry) + b"\n")
        os.fsync(fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
