"""Which files a source follows: `paths` globs (with `**`) minus `exclude` globs, never compressed copies.

Also the watchdog (inotify) bridge: events from its thread only wake the event loop, which then
rescans or reads; a periodic reconciling scan catches whatever events missed (inotify overflows).
"""

from __future__ import annotations

import asyncio
import fnmatch
import glob
import os
from collections.abc import Iterable

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from agent.ops import logs

log = logs.get("volt_agent.discovery")
COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zip", ".lz4", ".Z")


def expand(patterns: Iterable[str], exclude: Iterable[str]) -> list[str]:
    """Regular files matching any pattern and no exclude pattern, sorted, compressed ones left out."""
    excluded = tuple(exclude)
    found: set[str] = set()
    for pattern in patterns:
        for path in glob.iglob(os.path.expanduser(pattern), recursive=True):
            if path.endswith(COMPRESSED):
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
        recursive = len(fixed) < len(parts) - 1
        roots[root] = roots.get(root, False) or recursive
    return roots


class _Handler(FileSystemEventHandler):
    def __init__(self, loop: asyncio.AbstractEventLoop, on_change, on_rescan) -> None:
        self.loop, self.on_change, self.on_rescan = loop, on_change, on_rescan

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("created", "moved", "deleted"):
            self.loop.call_soon_threadsafe(self.on_rescan)
        elif event.event_type == "modified" and not event.is_directory:
            self.loop.call_soon_threadsafe(self.on_change)


class Watcher:
    """Runs a watchdog observer over the glob roots; callbacks run on the event loop."""

    def __init__(self, patterns: Iterable[str], on_change, on_rescan) -> None:
        self.roots = watch_roots(patterns)
        self.on_change, self.on_rescan = on_change, on_rescan
        self._observer: Observer | None = None

    def start(self) -> bool:
        loop = asyncio.get_running_loop()
        handler = _Handler(loop, self.on_change, self.on_rescan)
        observer = Observer()
        scheduled = 0
        for root, recursive in self.roots.items():
            if os.path.isdir(root):
                try:
                    observer.schedule(handler, root, recursive=recursive)
                    scheduled += 1
                except OSError as exc:
                    log.warning("watch_failed", dir=root, error=str(exc), fallback="polling")
            else:
                log.warning("watch_dir_missing", dir=root, fallback="polling until it appears")
        if not scheduled:
            return False
        observer.daemon = True
        observer.start()
        self._observer = observer
        return True

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=2)
            self._observer = None
