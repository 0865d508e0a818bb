"""Which files a source follows: `paths` globs (with `**`) minus `exclude` globs, never compressed copies.

Also the watchdog (inotify) bridge: create/move/delete events from its thread only ask the event loop
for a rescan; a periodic reconciling scan catches whatever events missed (inotify overflows, a watched
directory that was removed and created again). Writes are not watched: watchdog's thread costs ~15 µs per
event, a real share of a core at thousands of lines per second, so readers poll adaptively instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import glob
import os
import stat
from collections.abc import Callable, Iterable

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch

from agent.ops import logs

log = logs.get("volt_agent.discovery")
COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zip", ".lz4", ".z", ".tgz", ".lzma", ".7z")
# Only what changes which files exist: not writes, nor opens and closes (the agent's own would wake it).
EVENTS = [FileCreatedEvent, FileMovedEvent, FileDeletedEvent, DirCreatedEvent, DirMovedEvent, DirDeletedEvent]


def expand(patterns: Iterable[str], exclude: Iterable[str]) -> list[str]:
    """Regular files matching any pattern and no exclude pattern, sorted, compressed ones left out."""
    excluded = tuple(exclude)
    found: set[str] = set()
    for pattern in patterns:
        for path in glob.iglob(os.path.expanduser(pattern), recursive=True):
            if path.lower().endswith(COMPRESSED):
                continue
            name = os.path.basename(path)
            if any(fnmatch.fnmatch(path, ex) or fnmatch.fnmatch(name, ex) for ex in excluded):
                continue
            if os.path.isfile(path):
                found.add(path)
    return sorted(found)


def watch_roots(patterns: Iterable[str]) -> dict[str, bool]:
    """The directories to watch for each glob (its part before the first wildcard), and if recursively."""
    roots: dict[str, bool] = {}
    for pattern in patterns:
        parts = os.path.expanduser(pattern).split(os.sep)
        fixed: list[str] = []
        for part in parts[:-1]:
            if glob.has_magic(part):
                break
            fixed.append(part)
        root = os.sep.join(fixed) or ("/" if pattern.startswith("/") else ".")
        recursive = len(fixed) < len(parts) - 1 or "**" in parts[-1]  # `dir/**` matches files at any depth
        roots[root] = roots.get(root, False) or recursive
    return roots


def _identity(directory: str) -> tuple[int, int] | None:
    try:
        st = os.stat(directory)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None


class _Handler(FileSystemEventHandler):
    """Runs on watchdog's thread: folds a burst of events into one rescan request on the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_rescan: Callable[[], None]) -> None:
        self.loop, self.on_rescan = loop, on_rescan
        self._queued = False

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("created", "moved", "deleted") and not self._queued:
            self._queued = True
            self.loop.call_soon_threadsafe(self._rescan)

    def _rescan(self) -> None:
        self._queued = False  # cleared before acting: an event after this queues another call
        self.on_rescan()


class Watcher:
    """Runs a watchdog observer over the glob roots; callbacks run on the event loop.

    Roots that do not exist yet are retried on every `ensure()` (each scan), so a log directory
    created after the agent started is watched from then on.
    """

    def __init__(self, patterns: Iterable[str], on_rescan: Callable[[], None]) -> None:
        self.roots = watch_roots(patterns)
        self.on_rescan = on_rescan
        self._observer: BaseObserver | None = None
        self._handler: _Handler | None = None
        self._watched: dict[str, tuple[ObservedWatch, tuple[int, int]]] = {}  # root -> watch, (dev, inode)
        self._warned: set[str] = set()

    def start(self) -> None:
        self._handler = _Handler(asyncio.get_running_loop(), self.on_rescan)
        observer = Observer()
        observer.daemon = True
        observer.start()
        self._observer = observer
        self.ensure()

    @property
    def complete(self) -> bool:
        """Every root is watched (and still the directory watched); otherwise the caller polls."""
        return self._observer is not None and len(self._watched) == len(self.roots) and not self._lost()

    def _lost(self) -> list[str]:
        """Roots whose watch no longer sees their directory: it was removed (and maybe created again; while
        a deleted file in it is still open, the kernel keeps the old watch alive but deaf to the new one)."""
        assert self._observer is not None
        alive = {e.watch for e in self._observer.emitters if e.is_alive()}
        return [root for root, (watch, ident) in self._watched.items()
                if watch not in alive or _identity(root) != ident]

    def ensure(self) -> bool:
        """Watch the roots that exist now; True when a root was added (a scan should follow)."""
        if self._observer is None or self._handler is None:
            return False
        for root in self._lost():
            log.info("watch_lost", dir=root, reason="the directory was removed",
                     action="watching it again once it exists")
            watch, _ = self._watched.pop(root)
            with contextlib.suppress(KeyError):
                self._observer.unschedule(watch)
        added = False
        for root, recursive in self.roots.items():
            if root in self._watched:
                continue
            ident = _identity(root)
            if ident is None:
                if root not in self._warned:
                    self._warned.add(root)
                    log.warning("watch_dir_missing", dir=root, fallback="polling until it appears")
                continue
            if not os.access(root, os.R_OK | os.X_OK):  # inotify would watch it, but no file in it can be listed
                if root not in self._warned:
                    self._warned.add(root)
                    log.warning("watch_dir_unreadable", dir=root,
                                hint="the agent's user needs read and execute permission on the directory",
                                fallback="polling")
                continue
            try:
                # a symlinked log directory: watch the directory itself, not the link (only the root is
                # resolved: following links inside a recursive watch could loop, or watch half the disk)
                watch = self._observer.schedule(self._handler, os.path.realpath(root), recursive=recursive,
                                                event_filter=EVENTS)
            except OSError as exc:
                if root not in self._warned:
                    self._warned.add(root)
                    log.warning("watch_failed", dir=root, error=str(exc), fallback="polling")
                continue
            self._watched[root] = (watch, ident)
            self._warned.discard(root)
            added = True
        return added

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=2)
            self._observer = None
