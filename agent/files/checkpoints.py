"""Crash-safe checkpoint store: one JSON file under the state directory, replaced atomically.

Written at most every `checkpoint_interval` and at shutdown: write a temporary file, fsync it, rename
it over the old one, fsync the directory. A crash at any moment leaves the old or the new file whole.
Entries for files gone longer than `max_age` are dropped so the store does not grow forever.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

from agent.ops import logs

log = logs.get("volt_agent.checkpoints")
VERSION = 1


class StateDirError(Exception):
    """The state directory cannot be created or written; the message says which and why."""


@dataclass(slots=True)
class Checkpoint:
    key: str  # "dev:inode"
    source: str
    path: str
    offset: int
    head_length: int
    head_digest: str
    tail_digest: str | None
    seen: float  # unix time the file was last seen, for expiry


class CheckpointStore:
    def __init__(self, state_dir: Path, max_age: float) -> None:
        self.dir = state_dir
        self.path = state_dir / "checkpoints.json"
        self.max_age = max_age
        self.entries: dict[str, Checkpoint] = {}
        self.sources_started: set[str] = set()
        self._dirty = False

    def load(self) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateDirError(f"cannot create the state directory {self.dir}: {exc.strerror}") from None
        if not os.access(self.dir, os.W_OK):
            raise StateDirError(f"the state directory {self.dir} is not writable by this user")
        try:
            data = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return
        except (OSError, orjson.JSONDecodeError) as exc:
            broken = self.path.with_suffix(f".broken-{int(time.time())}")
            with contextlib.suppress(OSError):
                self.path.rename(broken)
            log.error("checkpoint_file_unreadable", file=str(self.path), error=str(exc), moved_to=str(broken))
            return
        self.sources_started = set(data.get("sources_started", []))
        for raw in data.get("files", []):
            try:
                cp = Checkpoint(**raw)
            except TypeError:
                continue
            self.entries[cp.key] = cp

    def get(self, key: str) -> Checkpoint | None:
        return self.entries.get(key)

    def put(self, cp: Checkpoint) -> None:
        self.entries[cp.key] = cp
        self._dirty = True

    def update(self, key: str, offset: int, tail_digest: str | None, head_length: int, head_digest: str,
               path: str) -> None:
        cp = self.entries.get(key)
        if cp is None:
            return
        if (cp.offset, cp.tail_digest, cp.head_length, cp.path) != (offset, tail_digest, head_length, path):
            cp.offset, cp.tail_digest, cp.path = offset, tail_digest, path
            cp.head_length, cp.head_digest = head_length, head_digest
            self._dirty = True

    def touch(self, key: str, now: float) -> None:
        cp = self.entries.get(key)
        if cp is not None and now - cp.seen > 60:
            cp.seen = now
            self._dirty = True

    def remove(self, key: str) -> None:
        if self.entries.pop(key, None) is not None:
            self._dirty = True

    def mark_started(self, source: str) -> None:
        if source not in self.sources_started:
            self.sources_started.add(source)
            self._dirty = True

    def expire(self, now: float, live: set[str]) -> None:
        for key in [k for k, cp in self.entries.items() if k not in live and now - cp.seen > self.max_age]:
            log.info("checkpoint_expired", key=key, path=self.entries[key].path)
            self.remove(key)

    def flush(self, force: bool = False) -> bool:
        """Write the store if anything changed; returns True when a file was written."""
        if not (self._dirty or force):
            return False
        payload = orjson.dumps(
            {
                "version": VERSION,
                "sources_started": sorted(self.sources_started),
                "files": [asdict(cp) for cp in self.entries.values()],
            },
            option=orjson.OPT_INDENT_2,
        )
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, payload)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dfd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        self._dirty = False
        return True
