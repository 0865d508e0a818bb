"""Follows one source's files: discovery, identity, rotation, reading, and handing lines to the format.

Like Vector's file_server: a scan finds files by glob and identifies them (device + inode confirmed by
a head checksum); each followed file has a FileTailer; rotated or deleted files are read to their end
through the descriptor already open, before newer files, so per-id order holds across a rotation.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from typing import Any, Protocol

from agent.config import SourceConfig
from agent.files import discovery
from agent.files.acks import Pending
from agent.files.checkpoints import Checkpoint, CheckpointStore
from agent.files.fingerprint import Head, file_key, offset_problem, tail_digest
from agent.files.tailing import FileTailer
from agent.formats.source import Processor
from agent.ops import logs
from agent.ops.metrics import AgentMetrics

log = logs.get("volt_agent.files")
ORPHAN_IDLE = 5.0  # a rotated file that has not grown for this long is finished
ROUNDS_PER_FILE = 16  # chunks read from one file before giving the others a turn


class Sink(Protocol):
    async def put(self, record: dict[str, Any], pending: Pending) -> None: ...


def _line_start_near_end(fd: int, size: int) -> int:
    """Where the last complete line ends, so `start_at: end` never begins mid-line."""
    if size == 0:
        return 0
    look = min(size, 65536)
    tail = os.pread(fd, look, size - look)
    nl = tail.rfind(b"\n")
    return size - look + nl + 1 if nl >= 0 else size - look


class FileServer:
    """All files of one source. `run()` returns when stopped, or in `once` mode when all is read."""

    def __init__(
        self,
        cfg: SourceConfig,
        processor: Processor,
        sink: Sink,
        store: CheckpointStore | None,
        guard: Callable[[dict[str, Any]], None],
        metrics: AgentMetrics,
        *,
        once: bool = False,
    ) -> None:
        self.cfg = cfg
        self.processor = processor
        self.sink = sink
        self.store = store
        self.guard = guard
        self.once = once
        self.tailers: dict[str, FileTailer] = {}
        self._wake = asyncio.Event()
        self._rescan = False
        self._stopping = False
        self._first_start = store is None or cfg.name not in store.sources_started
        self._watcher: discovery.Watcher | None = None
        self.ready = asyncio.Event()
        name = cfg.name
        self.m_lines = metrics.lines_read.labels(name)
        self.m_bytes = metrics.bytes_read.labels(name)
        self.m_parsed = metrics.records_parsed.labels(name)
        self.m_invalid = metrics.invalid_bytes.labels(name)
        self.m_dropped = metrics.dropped_bytes.labels(name)
        self.m_rejected = metrics.records_rejected
        self.m_skipped = metrics.lines_skipped
        self.m_oversize = metrics.lines_skipped.labels(name, "oversize")

    # -- lifetime -------------------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def request_rescan(self) -> None:
        self._rescan = True
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        try:
            self.scan(initial=True)
            if self.cfg.watch and not self.once:
                self._watcher = discovery.Watcher(self.cfg.paths, self.wake, self.request_rescan)
                if not self._watcher.start():
                    self._watcher = None
            self.ready.set()
            await asyncio.sleep(0)  # let the agent see READY before the first (possibly long) read
            interval = self.cfg.poll_interval
            scan_every = self.cfg.scan_interval if self._watcher else self.cfg.poll_interval
            next_scan = time.monotonic() + scan_every
            while not self._stopping:
                more = await self.pump_all()
                if self._stopping:
                    break
                if self.once and not more:
                    break
                self._release_orphans()
                if not more:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), interval)
                self._wake.clear()
                now = time.monotonic()
                if self._rescan or now >= next_scan:
                    self._rescan = False
                    next_scan = now + scan_every
                    self.scan()
        finally:
            if self._watcher is not None:
                self._watcher.stop()

    def close(self) -> None:
        for tailer in self.tailers.values():
            tailer.close()
        self.tailers.clear()

    # -- discovery and identity -----------------------------------------------------------------

    def scan(self, initial: bool = False) -> None:
        """Match globs, follow new files, notice renames, orphan files no longer named by any path."""
        now = time.monotonic()
        seen: set[str] = set()
        for path in discovery.expand(self.cfg.paths, self.cfg.exclude):
            try:
                st = os.stat(path)
            except OSError:
                continue
            key = file_key(st)
            seen.add(key)
            tailer = self.tailers.get(key)
            if tailer is not None:
                if tailer.path != path:
                    log.info("file_renamed", source=self.cfg.name, old=tailer.path, new=path)
                    tailer.path = path
                tailer.orphaned_at = None
                if not tailer.head.matches(tailer.fd):
                    log.warning("file_rewritten", source=self.cfg.name, path=path,
                                action="reading from start")
                    tailer.restart()
                continue
            self._open(path, key, initial)
        for key, tailer in self.tailers.items():
            if key not in seen and tailer.orphaned_at is None:
                tailer.orphaned_at = now
                log.info("file_rotated_or_deleted", source=self.cfg.name, path=tailer.path,
                         unread_bytes=max(0, tailer.size() - tailer.read_position))
        if initial and self.store is not None:
            self.store.mark_started(self.cfg.name)

    def _open(self, path: str, key: str, initial: bool) -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            log.limited(30, f"open:{path}", "file_unreadable", source=self.cfg.name, path=path,
                        error=exc.strerror, hint="check permissions (group membership) of the file and dirs")
            return
        st = os.fstat(fd)
        if file_key(st) != key:  # replaced between stat and open; the next scan will see the new one
            os.close(fd)
            return
        head = Head.read(fd, self.cfg.fingerprint_bytes)
        cp = self.store.get(key) if self.store is not None else None
        offset = self._start_offset(fd, st.st_size, path, cp, head, initial)
        tailer = FileTailer(path, fd, key, head, offset, max_line_bytes=self.cfg.max_line_bytes,
                            fingerprint_bytes=self.cfg.fingerprint_bytes)
        self.tailers[key] = tailer
        if self.store is not None:
            self.store.put(Checkpoint(key, self.cfg.name, path, offset, head.length, head.digest,
                                      tail_digest(fd, offset), time.time()))
        log.info("file_opened", source=self.cfg.name, path=path, offset=offset, size=st.st_size)

    def _start_offset(self, fd: int, size: int, path: str, cp: Checkpoint | None, head: Head,
                      initial: bool) -> int:
        if cp is not None:
            if Head(cp.head_length, cp.head_digest).matches(fd):
                why = offset_problem(fd, cp.offset, cp.tail_digest)
                if why is None:
                    return cp.offset
                log.warning("checkpoint_not_trusted", source=self.cfg.name, path=path, reason=why,
                            action="reading from start")
                return 0
            log.info("inode_reused", source=self.cfg.name, path=path, old_path=cp.path,
                     action="new file, reading from start")
            return 0
        if initial and self._first_start and self.cfg.start_at == "end" and not self.once:
            return _line_start_near_end(fd, size)
        return 0

    # -- reading --------------------------------------------------------------------------------

    async def pump_all(self) -> bool:
        """Read every file once (orphans first, oldest data first); True if some file has more now."""
        more = False
        order = sorted(self.tailers.values(), key=lambda t: (t.orphaned_at is None, t.orphaned_at or 0))
        for tailer in order:
            if self._stopping:
                return False
            if tailer.fd < 0:
                continue
            if tailer.truncated():
                log.warning("file_truncated", source=self.cfg.name, path=tailer.path,
                            read=tailer.read_position, size=tailer.size(), action="reading from start")
                tailer.restart()
            if tailer.head.length < self.cfg.fingerprint_bytes:
                tailer.refresh_head()
            for _ in range(ROUNDS_PER_FILE):
                lines, oversize = tailer.read_lines()
                if oversize:
                    self._oversize(tailer, oversize)
                if not lines:
                    if tailer.tracker.read_offset != tailer.offset and not tailer.tracker.in_flight:
                        tailer.tracker.read_offset = tailer.offset
                    break
                await self._dispatch(tailer, lines)
                await asyncio.sleep(0)  # a sink that never blocks (dry-run) must not starve the loop
                if self._stopping:
                    return False
            else:
                more = True
        return more

    def _oversize(self, tailer: FileTailer, count: int) -> None:
        self.m_oversize.inc(count)
        if not tailer.warned_oversize:
            tailer.warned_oversize = True
            log.warning("line_too_long", source=self.cfg.name, path=tailer.path,
                        max_line_bytes=self.cfg.max_line_bytes, action="skipped to the next newline (counted)")

    async def _dispatch(self, tailer: FileTailer, lines: list[tuple[int, int, bytes]]) -> None:
        """The hot loop: decode, parse, map, and hand records to the sink (which may wait: back-pressure)."""
        enc = self.cfg.encoding
        run = self.processor.run
        put = self.sink.put
        guard = self.guard
        tracker = tailer.tracker
        parsed = 0
        nbytes = 0
        for start, end, raw in lines:
            nbytes += end - start
            try:
                text = raw.decode(enc)
            except UnicodeDecodeError:
                text = raw.decode(enc, "replace")
                self.m_invalid.inc()
                log.limited(30, f"enc:{tailer.path}", "invalid_bytes", source=self.cfg.name,
                            path=tailer.path, offset=start, encoding=enc,
                            action="replaced with U+FFFD (counted)")
            result = run(text)
            records = result.records
            if records:
                parsed += len(records)
                pending = tracker.add(start, len(records))
                for record in records:
                    guard(record)
                    await put(record, pending)
            elif result.reject is not None:
                self._reject(tailer, start, text, result.reject)
            else:
                self.m_skipped.labels(self.cfg.name, result.rule or "no_records").inc()
            tracker.read_offset = end
        if tracker is tailer.tracker:
            tracker.read_offset = max(tracker.read_offset, tailer.offset)
        self.m_lines.inc(len(lines))
        self.m_bytes.inc(nbytes)
        self.m_parsed.inc(parsed)

    def _reject(self, tailer: FileTailer, offset: int, text: str, reason: str) -> None:
        kind = reason.split(":", 1)[0]
        self.m_rejected.labels(self.cfg.name, kind).inc()
        log.limited(30, f"rej:{self.cfg.name}:{kind}", "line_rejected", source=self.cfg.name,
                    path=tailer.path, offset=offset, reason=reason[:300])
        if self.processor.rejects is not None:
            self.processor.rejects.write(self.cfg.name, text, reason)

    def _release_orphans(self) -> None:
        now = time.monotonic()
        for key, tailer in list(self.tailers.items()):
            if tailer.orphaned_at is None:
                continue
            finished = tailer.at_eof() and not tailer.tracker.in_flight and now - tailer.last_growth > min(
                ORPHAN_IDLE, self.cfg.rotate_wait)
            expired = now - tailer.orphaned_at > self.cfg.rotate_wait
            if not (finished or expired):
                continue
            if not finished:
                dropped = max(0, tailer.size() - tailer.read_position)
                self.m_dropped.inc(dropped)
                log.warning("rotated_file_released_unread", source=self.cfg.name, path=tailer.path,
                            dropped_bytes=dropped, rotate_wait=self.cfg.rotate_wait,
                            reason="the sink did not keep up before rotate_wait ran out")
            self._commit(tailer)
            tailer.close()
            del self.tailers[key]
            log.info("file_released", source=self.cfg.name, path=tailer.path)

    # -- checkpoints and state ------------------------------------------------------------------

    def _commit(self, tailer: FileTailer) -> None:
        if self.store is None or tailer.fd < 0:
            return
        offset = tailer.tracker.committed
        self.store.update(tailer.key, offset, tail_digest(tailer.fd, offset), tailer.head.length,
                          tailer.head.digest, tailer.path)

    def checkpoint(self) -> None:
        """Move each file's stored offset to what is fully acknowledged."""
        if self.store is None:
            return
        now = time.time()
        for tailer in self.tailers.values():
            self._commit(tailer)
            self.store.touch(tailer.key, now)

    def drained(self) -> bool:
        """Everything read so far is acknowledged (for --once and shutdown)."""
        return all(not t.tracker.in_flight for t in self.tailers.values())

    def behind(self) -> list[tuple[str, int]]:
        out = []
        for t in self.tailers.values():
            if t.fd >= 0:
                out.append((t.path, max(0, t.size() - t.tracker.committed)))
        return out

