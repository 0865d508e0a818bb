"""Crash-safe checkpoint store: one JSON file under the state directory, replaced atomically.

Written at most every `checkpoint_interval` and at shutdown: write a temporary file, fsync it, rename
it over the old one, fsync the directory. A crash at any moment leaves the old or the new file whole.
Entries are per source and file identity (two sources may follow the same file at their own pace);
entries for files gone longer than `max_age` are dropped so the store does not grow forever.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import orjson

from agent.files.fingerprint import Head, Mark
from agent.ops import logs

log = logs.get("volt_agent.checkpoints")
VERSION = 1
TOUCH_EVERY = 60.0  # `seen` only matters at the scale of max_age; fewer rewrites of an idle store


class StateDirError(Exception):
    """The state directory cannot be created or written; the message says which and why."""


def create_state_dir(state_dir: Path) -> None:
    """Create the state directory and its parents if missing (`run` does, `state` and `validate` never do)."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StateDirError(f"cannot create the state directory {state_dir}: {exc.strerror}") from None


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

    def mark(self) -> Mark:
        return Mark(Head(self.head_length, self.head_digest), self.offset, self.tail_digest)


_FIELDS = {f.name for f in fields(Checkpoint)}


def _is_int(value: object) -> bool:
    return type(value) is int and value >= 0


def _well_typed(cp: Checkpoint) -> bool:
    """An entry a person or a bug may have edited: each field of the type the reader relies on."""
    return (all(isinstance(v, str) for v in (cp.key, cp.source, cp.path, cp.head_digest))
            and _is_int(cp.offset) and _is_int(cp.head_length)
            and (cp.tail_digest is None or isinstance(cp.tail_digest, str))
            and isinstance(cp.seen, int | float) and not isinstance(cp.seen, bool))


def _printable(path: str) -> str:
    """A file name that is not valid UTF-8 (kept by Python as surrogates) as text JSON can hold.

    The path in a checkpoint is for people and logs; files are found again by device, inode and content.
    """
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return path


class CheckpointStore:
    def __init__(self, state_dir: Path, max_age: float) -> None:
        self.dir = state_dir
        self.path = state_dir / "checkpoints.json"
        self.max_age = max_age
        self.entries: dict[tuple[str, str], Checkpoint] = {}
        self.sources_started: set[str] = set()
        # The file was unreadable: which sources had started is unknown, so the agent counts those configured
        # now as started (start_at: end would skip what was never sent).
        self.offsets_lost = False
        self._dirty = False

    def load(self, *, readonly: bool = False) -> None:
        """Read the store; `readonly` (for `volt-agent state`) neither creates the directory nor moves a
        broken file aside."""
        if not readonly:
            create_state_dir(self.dir)
            if not os.access(self.dir, os.W_OK):
                raise StateDirError(f"the state directory {self.dir} is not writable by this user")
        try:
            data = orjson.loads(self.path.read_bytes())
            if not isinstance(data, dict) or not isinstance(data.get("files") or [], list):
                raise ValueError("not a checkpoint document (expected an object with a files list)")
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:  # orjson.JSONDecodeError is a ValueError
            if readonly:
                raise StateDirError(f"cannot read the checkpoint file {self.path}: {exc}") from None
            broken = self.path.with_suffix(f".broken-{int(time.time())}")
            with contextlib.suppress(OSError):
                self.path.rename(broken)
            log.error("checkpoint_file_unreadable", file=str(self.path), error=str(exc), moved_to=str(broken),
                      action="every file is read from its start: duplicates, never loss")
            self.offsets_lost = True
            return
        started = data.get("sources_started")
        self.sources_started = {s for s in started if isinstance(s, str)} if isinstance(started, list) else set()
        for raw in data.get("files") or []:
            try:
                cp = Checkpoint(**{k: v for k, v in raw.items() if k in _FIELDS})
            except (TypeError, AttributeError):
                cp = None
            if cp is None or not _well_typed(cp):
                log.warning("checkpoint_entry_skipped", file=str(self.path), entry=str(raw)[:200],
                            action="that file starts as on a first start")
                continue
            self.entries[(cp.source, cp.key)] = cp

    def get(self, source: str, key: str) -> Checkpoint | None:
        return self.entries.get((source, key))

    def of_source(self, source: str) -> list[Checkpoint]:
        return [cp for (s, _), cp in self.entries.items() if s == source]

    def put(self, cp: Checkpoint) -> None:
        self.entries[(cp.source, cp.key)] = cp
        self._dirty = True

    def update(self, source: str, key: str, offset: int, tail_digest: str | None, head: Head, path: str) -> None:
        cp = self.entries.get((source, key))
        if cp is None:
            return
        if (cp.offset, cp.tail_digest, cp.head_length, cp.head_digest, cp.path) != (
                offset, tail_digest, head.length, head.digest, path):
            cp.offset, cp.tail_digest, cp.path = offset, tail_digest, path
            cp.head_length, cp.head_digest = head.length, head.digest
            self._dirty = True

    def touch(self, source: str, key: str, now: float) -> None:
        cp = self.entries.get((source, key))
        if cp is not None and now - cp.seen > TOUCH_EVERY:
            cp.seen = now
            self._dirty = True

    def remove(self, source: str, key: str) -> None:
        if self.entries.pop((source, key), None) is not None:
            self._dirty = True

    def mark_started(self, source: str) -> None:
        if source not in self.sources_started:
            self.sources_started.add(source)
            self._dirty = True

    def expire(self, now: float, live: set[tuple[str, str]]) -> None:
        """Drop entries of files not followed now and not seen for `max_age` seconds."""
        for ident, cp in list(self.entries.items()):
            if ident not in live and now - cp.seen > self.max_age:
                log.info("checkpoint_expired", source=cp.source, key=cp.key, path=cp.path,
                         unseen_s=round(now - cp.seen))
                self.remove(*ident)

    def flush(self, force: bool = False) -> bool:
        """Write the store if anything changed; returns True when a file was written."""
        if not (self._dirty or force):
            return False
        payload = orjson.dumps(
            {
                "version": VERSION,
                "sources_started": sorted(self.sources_started),
                "files": [asdict(cp) | {"path": _printable(cp.path)} for cp in self.entries.values()],
            },
            option=orjson.OPT_INDENT_2,
        )
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dfd = os.open(self.dir, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        self._dirty = False
        return True
