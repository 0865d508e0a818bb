"""Follows one source's files: discovery, identity, rotation, reading, and handing lines to the format.

Like Vector's file_server: a scan finds files by glob and identifies them (device + inode confirmed by
a head checksum); each followed file has a FileTailer; rotated or deleted files are read to their end
through the descriptor already open, before newer files, so per-id order holds across a rotation.

Two tasks share the tailers on one event loop: the reader (pump) and housekeeping (scans on events and
periodically, releases finished or expired orphans). Housekeeping keeps running while the reader waits
on a full queue, so `rotate_wait` holds even when the sink is down.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from agent.config import SourceConfig
from agent.files import discovery
from agent.files.acks import AckTracker, Pending
from agent.files.checkpoints import Checkpoint, CheckpointStore
from agent.files.fingerprint import Head, Mark, file_key, is_compressed, offset_problem, tail_digest
from agent.files.tailing import FileTailer, Line
from agent.formats.source import Processor
from agent.ops import logs
from agent.ops.metrics import AgentMetrics

log = logs.get("volt_agent.files")
ORPHAN_IDLE = 5.0  # a rotated file that has not grown for this long (after rotation) is finished
ROUNDS_PER_FILE = 16  # chunks read from one file before giving the others a turn
COPY_SETTLE = 0.5  # a new file that may be a copy still being written is looked at again for this long
COPY_WINDOW = 60.0  # how long a truncated file's old content may still turn up as a copy
RESCAN_SOON = 0.1
HOUSEKEEPING_TICK = 1.0
BUSY_POLL = 0.02  # how soon a reader looks again after reading something
STOP_GRACE = 1.0  # how long a stopping reader may take to finish the line it is handing over


class Sink(Protocol):
    """Where records go. `offer` takes a record at once, or returns what to `await put()` when full."""

    def offer(self, record: dict[str, Any], pending: Pending) -> Any: ...

    async def put(self, item: Any) -> None: ...


@dataclass(slots=True)
class _Known:
    """Content read before: if a new file fits `mark`, it is a copy and reading carries on at `start`."""

    path: str
    mark: Mark
    start: int
    tracker: AckTracker | None  # the old lines still in flight, adopted by the copy
    until: float = 0.0
    live: bool = False  # a file followed now, not (yet) truncated


def _line_start_near_end(fd: int, size: int) -> int:
    """Where the last complete line ends, so `start_at: end` never begins mid-line."""
    if size == 0:
        return 0
    look = min(size, 65536)
    tail = os.pread(fd, look, size - look)
    nl = tail.rfind(b"\n")
    return size - look + nl + 1 if nl >= 0 else size - look


def _each(guard: Callable[[dict[str, Any]], None]) -> Callable[[list[dict[str, Any]]], None]:
    """A guard without a form for many records, called once per record."""

    def apply(records: list[dict[str, Any]]) -> None:
        for record in records:
            guard(record)

    return apply


def _read_order(t: FileTailer) -> tuple[bool, float]:
    """Rotated files first (oldest rotation first), then the others in the order they were found."""
    return t.rotated_at is None, t.rotated_at or 0.0


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
        copy_settle: float = COPY_SETTLE,
    ) -> None:
        self.cfg = cfg
        self.processor = processor
        self.sink = sink
        # a sink that takes a list of records and acknowledges them at once (the dry run); else one offer each
        self._take: Callable[[list[dict[str, Any]]], None] | None = getattr(sink, "take", None)
        self.store = store
        self.guard = guard
        self.guard_all = getattr(guard, "apply", None) or _each(guard)  # a chunk's records in one call
        self.once = once
        # decode() without an argument takes UTF-8's own path: a codec name is looked up again on every call
        self._utf8 = codecs.lookup(cfg.encoding).name == "utf-8"
        self.copy_settle = copy_settle
        self.tailers: dict[str, FileTailer] = {}
        self._truncated: list[_Known] = []  # old content of truncated files, for copies turning up
        self._young: dict[str, float] = {}  # new files held back while they may be copies in progress
        self._ignored: set[str] = set()  # compressed files found under a name the globs match
        self._wake = asyncio.Event()
        self._rescan = asyncio.Event()
        self._stopped = asyncio.Event()
        self._stopping = False
        self._progressed = False  # the last pump read something
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
        self._reject_kinds: dict[str, tuple[Any, str]] = {}  # reason kind -> (its counter, its log key)
        self.m_skipped = metrics.lines_skipped
        self.m_oversize = metrics.lines_skipped.labels(name, "oversize")

    # -- lifetime -------------------------------------------------------------------------------

    def request_rescan(self) -> None:
        self._rescan.set()

    def stop(self) -> None:
        self._stopping = True
        self._stopped.set()
        self._wake.set()

    async def run(self) -> None:
        try:
            if self.cfg.watch and not self.once:  # watching first: a file created during the first scan is seen
                self._watcher = discovery.Watcher(self.cfg.paths, self.request_rescan)
                self._watcher.start()
            self.scan(initial=True)
            self.ready.set()
            await asyncio.sleep(0)  # let the agent report READY before a long first read
            if self.once:
                while not self._stopping and await self.pump_all():
                    pass
                self._report_partial_lines()
                return
            await self._follow()
        finally:
            if self._watcher is not None:
                self._watcher.stop()

    def _report_partial_lines(self) -> None:
        """--once ends at the last newline: say what waits for its newline, so it is not mistaken for loss."""
        for tailer in self.tailers.values():
            waiting = tailer.read_position - tailer.offset
            if waiting and not self._stopping:
                log.info("partial_line_left", source=self.cfg.name, path=tailer.path, bytes=waiting,
                         action="not sent: a line without its newline yet; read on a later run once it ends")

    async def _follow(self) -> None:
        """Read and housekeep until stopped. A reader blocked on a full queue (the sink is down) is
        cancelled after STOP_GRACE: its unfinished lines stay unacknowledged and are read again."""
        name = self.cfg.name
        reader = asyncio.create_task(self._read_loop(), name=f"read-{name}")
        housekeeping = asyncio.create_task(self._housekeep(), name=f"files-{name}")
        stopped = asyncio.create_task(self._stopped.wait())
        try:
            await asyncio.wait({reader, housekeeping, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if stopped.done() and not reader.done():
                await asyncio.wait({reader}, timeout=STOP_GRACE)
        finally:
            for task in (reader, housekeeping, stopped):
                task.cancel()
            await asyncio.gather(reader, housekeeping, stopped, return_exceptions=True)
        for task in (reader, housekeeping):
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    async def _read_loop(self) -> None:
        """Poll adaptively: soon again while lines keep coming, backing off to `poll_interval` when idle.
        A scan that opens or orphans a file wakes the reader at once."""
        pause = BUSY_POLL
        while not self._stopping:
            self._progressed = False
            more = await self.pump_all()
            if self._stopping:
                break
            pause = BUSY_POLL if self._progressed else min(pause * 2, self.cfg.poll_interval)
            if not more:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), min(pause, self.cfg.poll_interval))
            self._wake.clear()

    def _scan_every(self) -> float:
        if self._young:
            return RESCAN_SOON
        if self._watcher is not None and self._watcher.complete:
            return self.cfg.scan_interval
        return self.cfg.poll_interval

    async def _housekeep(self) -> None:
        """Scans on watch events, soon after holding back a young file, and periodically (reconciling what
        events missed); releases finished or expired orphans."""
        last_scan = time.monotonic()
        # The cadence is looked at every tick: a watch lost in between means polling from then on. The loop
        # also ends on `_stopping`, because Python 3.11's wait_for can swallow a cancel that arrives just as
        # the event fires.
        while not self._stopping:
            timeout = max(0.0, min(last_scan + self._scan_every() - time.monotonic(), HOUSEKEEPING_TICK))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._rescan.wait(), timeout)
            try:
                if self._rescan.is_set() or time.monotonic() >= last_scan + self._scan_every():
                    self._rescan.clear()
                    last_scan = time.monotonic()
                    self.scan()
                self.release_orphans()
            except OSError as exc:  # e.g. EIO from a network filesystem: try again on the next round
                log.limited(40, f"scan:{self.cfg.name}", "scan_failed", source=self.cfg.name, error=str(exc))

    def close(self) -> None:
        for tailer in self.tailers.values():
            tailer.close()
        self.tailers.clear()

    # -- discovery and identity -----------------------------------------------------------------

    def _matches(self) -> list[tuple[str, os.stat_result]]:
        """Files the globs match now, oldest first (by mtime), one path per file identity."""
        found: dict[str, tuple[str, os.stat_result]] = {}
        for path in discovery.expand(self.cfg.paths, self.cfg.exclude):
            try:
                st = os.stat(path)
            except OSError:
                continue
            found.setdefault(file_key(st), (path, st))
        return sorted(found.values(), key=lambda item: item[1].st_mtime)

    def scan(self, initial: bool = False) -> None:
        """Match globs, follow new files, notice renames and truncation, orphan files no longer matched."""
        now = time.monotonic()
        if self._watcher is not None and self._watcher.ensure():
            self._rescan.set()  # a directory appeared: files in it may predate its watch
        matches = self._matches()
        seen = {file_key(st) for _, st in matches}
        paths = {file_key(st): path for path, st in matches}
        for key, tailer in list(self.tailers.items()):
            self._recheck(tailer, paths.get(key), now)
        self._truncated = [k for k in self._truncated if k.until > now]
        for path, st in matches:
            key = file_key(st)
            if key not in self.tailers and key not in self._ignored:
                self._open(path, key, initial, now)
        self._young = {k: t for k, t in self._young.items() if k in seen}
        self._ignored &= seen
        if initial and not matches:
            log.warning("no_file_matches", source=self.cfg.name, paths=",".join(self.cfg.paths),
                        action="following new files as they appear" if not self.once else "nothing to read")
        if initial and self.store is not None:
            self.store.mark_started(self.cfg.name)
        self._wake.set()

    def _recheck(self, tailer: FileTailer, path: str | None, now: float) -> None:
        """Follow a rename, notice a file no glob matches any more (`path` None), and truncation or rewrites
        (also of such orphans: what a writer still adds is read through the open descriptor)."""
        if path is None:
            if tailer.orphaned_at is None:
                tailer.orphaned_at = now
                tailer.rotated_at = tailer.rotated_at or now
                log.info("file_rotated_or_deleted", source=self.cfg.name, path=tailer.path,
                         unread_bytes=max(0, tailer.size() - tailer.read_position),
                         action="reading it to its end before newer files")
        else:
            if tailer.path != path:
                log.info("file_renamed", source=self.cfg.name, old=tailer.path, new=path)
                tailer.path = path
                tailer.rotated_at = tailer.rotated_at or now
            tailer.orphaned_at = None
        problem = tailer.change(tailer.size())
        if problem is not None:
            self._restart(tailer, problem, now)

    def _restart(self, tailer: FileTailer, problem: str, now: float) -> None:
        """The file was truncated (copytruncate) or rewritten: read it from the start. What was read of the
        old content is remembered so a copy of it (logrotate's `.1`) carries on where reading stopped."""
        log.warning("file_truncated" if problem.startswith("truncated") else "file_rewritten",
                    source=self.cfg.name, path=tailer.path, reason=problem, action="reading from its start")
        if tailer.offset > 0:
            self._truncated.append(_Known(tailer.path, tailer.mark(), tailer.offset, tailer.tracker,
                                          now + COPY_WINDOW))
        tailer.restart()

    def _open(self, path: str, key: str, initial: bool, now: float) -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            log.limited(30, f"open:{path}", "file_unreadable", source=self.cfg.name, path=path,
                        error=exc.strerror, hint="check permissions (group membership) of the file and dirs")
            return
        try:
            st = os.fstat(fd)
            if file_key(st) != key:  # replaced between stat and open; the next scan will see the new one
                os.close(fd)
                return
            first = os.pread(fd, self.cfg.fingerprint_bytes, 0)
            if is_compressed(first):
                self._ignored.add(key)
                log.info("file_compressed_ignored", source=self.cfg.name, path=path,
                         hint="compressed rotated copies are never read; exclude them to silence this")
                os.close(fd)
                return
            place = self._place(fd, first, st.st_size, path, key, initial, now)
        except OSError as exc:
            os.close(fd)
            log.limited(30, f"open:{path}", "file_unreadable", source=self.cfg.name, path=path, error=exc.strerror)
            return
        if place is None:
            os.close(fd)
            return
        offset, tracker, why = place
        head = Head.of(first)
        tailer = FileTailer(path, fd, key, head, offset, max_line_bytes=self.cfg.max_line_bytes,
                            fingerprint_bytes=self.cfg.fingerprint_bytes, tracker=tracker)
        self.tailers[key] = tailer
        if self.store is not None:
            committed = tailer.tracker.committed
            self.store.put(Checkpoint(key, self.cfg.name, path, committed, head.length, head.digest,
                                      tail_digest(fd, committed), time.time()))
        log.info("file_opened", source=self.cfg.name, path=path, offset=offset, size=st.st_size, start=why)

    def _place(self, fd: int, first: bytes, size: int, path: str, key: str, initial: bool,
               now: float) -> tuple[int, AckTracker | None, str] | None:
        """Where to start reading a newly found file, the tracker of lines already in flight (a copy's),
        and why; None to look again shortly (it may be a copy still being written)."""
        cp = self.store.get(self.cfg.name, key) if self.store is not None else None
        if cp is not None and cp.offset > 0:  # at offset 0 a checkpoint says nothing (it may be a reused inode's)
            mark = cp.mark()
            if mark.head.matches(fd, first):
                event, problem = "checkpoint_not_trusted", offset_problem(fd, cp.offset, cp.tail_digest)
                if problem is None:
                    return cp.offset, None, "checkpoint"
            else:
                event, problem = "inode_reused", "its first bytes differ from those recorded (a new file, or rewritten)"
            log.warning(event, source=self.cfg.name, path=path, old_path=cp.path, offset=cp.offset, reason=problem,
                        action="reading it from its start")
            self._truncated.append(_Known(cp.path, mark, cp.offset, None, now + COPY_WINDOW))  # in a copy?
        if initial and self._first_start:
            if self.cfg.start_at == "end" and not self.once:
                return _line_start_near_end(fd, size), None, "start_at end"
            return 0, None, "start_at beginning"
        copy = self._copy_of(fd, first, size, key)
        if copy is not None and copy.live and not initial and not self._settled(key, now):
            return None  # logrotate truncates the original next: then the copy takes over its lines in flight
        if copy is not None:
            log.info("file_is_copy", source=self.cfg.name, path=path, of=copy.path, offset=copy.start,
                     action="carrying on where the original was read to")
            self._truncated = [k for k in self._truncated if k is not copy]
            self._young.pop(key, None)
            return copy.start, copy.tracker, f"copy of {copy.path}"
        if not initial and self._may_become_copy(first, size, key, now):
            return None
        self._young.pop(key, None)
        return 0, None, "new file"

    def _known(self, key: str) -> list[_Known]:
        """Content a new file could be a copy of: truncated files' old content (newest first), the files
        followed now, and checkpoints of files not followed now (a copy made while the agent was stopped)."""
        known = list(reversed(self._truncated))
        for t in self.tailers.values():
            if t.fd >= 0 and t.offset > 0:
                # the original still holds its in-flight lines, so the copy starts at what is acknowledged
                known.append(_Known(t.path, t.mark(), t.tracker.committed, None, live=True))
        if self.store is not None:
            known.extend(_Known(cp.path, cp.mark(), cp.offset, None) for cp in self.store.of_source(self.cfg.name)
                         if cp.key != key and cp.key not in self.tailers and cp.offset > 0)
        return known

    def _copy_of(self, fd: int, first: bytes, size: int, key: str) -> _Known | None:
        for k in self._known(key):
            if 0 < k.mark.offset <= size and k.mark.problem(fd, first) is None:
                return k
        return None

    def _settled(self, key: str, now: float) -> bool:
        """A new file seen for `copy_settle` seconds is taken as it is; until then it may still change role."""
        return now - self._young.setdefault(key, now) >= self.copy_settle

    def _may_become_copy(self, first: bytes, size: int, key: str, now: float) -> bool:
        """A young file shorter than content read before, and starting like it, may be a copy still being
        written (logrotate's copytruncate creates the copy, then fills it): hold it back briefly."""
        return not self._settled(key, now) and any(
            size < k.mark.offset and k.mark.head.may_start(first) for k in self._known(key))

    # -- reading --------------------------------------------------------------------------------

    async def pump_all(self) -> bool:
        """Read every file once (rotated first); True if some file has more to read now.

        Newer files wait while a rotated file still has data, so per-id order holds across a rotation.
        """
        more = False
        rotated_behind = False
        for tailer in sorted(self.tailers.values(), key=_read_order):
            if self._stopping:
                return False
            if rotated_behind and tailer.rotated_at is None:
                break
            if tailer.fd < 0:
                continue
            behind = await self._pump(tailer)
            if behind:
                more = True
                rotated_behind = rotated_behind or tailer.rotated_at is not None
        return more

    async def _pump(self, tailer: FileTailer) -> bool:
        """Read and dispatch up to ROUNDS_PER_FILE chunks of one file; True if it has more now.

        Only the reading is guarded: an error there (EIO from a network filesystem, say) is retried on the next
        round. An error while lines are handed over is not caught here, because the offset has already moved
        past lines not yet handed over: the source fails and the agent restarts from the acknowledged offset.
        """
        try:
            size = tailer.size()
            if size != tailer.read_position:
                problem = tailer.change(size)
                if problem is not None:
                    self._restart(tailer, problem, time.monotonic())
            if tailer.head.length < self.cfg.fingerprint_bytes:
                tailer.refresh_head()
        except OSError as exc:
            self._read_failed(tailer, exc)
            return False
        for _ in range(ROUNDS_PER_FILE):
            try:
                lines, oversize, progressed = tailer.read_lines()
            except OSError as exc:
                self._read_failed(tailer, exc)
                return False
            if oversize:
                self._oversize(tailer, oversize)
            if not progressed:
                return False
            self._progressed = True
            if lines:
                await self._dispatch(tailer, lines)
                await asyncio.sleep(0)  # a sink that never waits (dry-run) must not starve signals and timers
                if self._stopping or tailer.fd < 0:
                    return False
            else:  # only skipped bytes or a partial line: nothing left in flight for them
                tailer.tracker.read_offset = max(tailer.tracker.read_offset, tailer.settled)
        return True

    def _read_failed(self, tailer: FileTailer, exc: OSError) -> None:
        log.limited(40, f"read:{tailer.path}", "read_failed", source=self.cfg.name, path=tailer.path,
                    error=str(exc), action="reading it again on the next round")

    def _oversize(self, tailer: FileTailer, count: int) -> None:
        self.m_oversize.inc(count)
        if not tailer.warned_oversize:
            tailer.warned_oversize = True
            log.warning("line_too_long", source=self.cfg.name, path=tailer.path,
                        max_line_bytes=self.cfg.max_line_bytes, action="skipped to the next newline (counted)")

    async def _dispatch(self, tailer: FileTailer, lines: list[Line]) -> None:
        """The hot loop: decode, parse, map, and hand records to the sink (which may wait: back-pressure).

        A sink that acknowledges at once (`take`, the dry run) gets the chunk's records in one call, and no line
        is ever in flight. The read offset moves once per chunk: while a line waits for queue room it is in
        flight, so the committed offset is its start whatever the read offset says.
        """
        enc = self.cfg.encoding
        utf8 = self._utf8
        run = self.processor.run
        take = self._take
        offer = self.sink.offer
        put = self.sink.put
        guard = self.guard
        tracker = tailer.tracker
        taken: list[dict[str, Any]] = []
        parsed = 0
        nbytes = 0
        skipped: dict[str, int] = {}
        for start, end, raw in lines:
            nbytes += end - start
            try:
                text = raw.decode() if utf8 else raw.decode(enc)
            except UnicodeDecodeError:
                text = raw.decode(enc, "replace")
                self.m_invalid.inc()
                log.limited(30, f"enc:{tailer.path}", "invalid_bytes", source=self.cfg.name,
                            path=tailer.path, offset=start, encoding=enc,
                            action="replaced with U+FFFD (counted)")
            result = run(text)
            records = result.records
            if result.reject is not None:
                self._reject(tailer, start, text, result.reject)
            if records:
                if take is not None:
                    taken += records
                    continue
                parsed += len(records)
                pending = tracker.add(start, len(records))
                for record in records:
                    guard(record)
                    waiting = offer(record, pending)
                    if waiting is not None:
                        await put(waiting)  # the queue is full: back-pressure reaches this reader
            elif result.reject is None:
                rule = result.rule or "no_records"
                skipped[rule] = skipped.get(rule, 0) + 1
        if taken:
            self.guard_all(taken)
            take(taken)
            parsed += len(taken)
        for rule, count in skipped.items():
            self.m_skipped.labels(self.cfg.name, rule).inc(count)
        tracker.read_offset = lines[-1][1]
        if tracker is tailer.tracker:
            tracker.read_offset = max(tracker.read_offset, tailer.settled)
        self.m_lines.inc(len(lines))
        self.m_bytes.inc(nbytes)
        self.m_parsed.inc(parsed)

    def _reject(self, tailer: FileTailer, offset: int, text: str, reason: str) -> None:
        kind = reason.split(":", 1)[0]
        per_kind = self._reject_kinds.get(kind)
        if per_kind is None:  # a handful of kinds: their counter and log key are made once
            per_kind = self._reject_kinds[kind] = (self.m_rejected.labels(self.cfg.name, kind),
                                                   f"rej:{self.cfg.name}:{kind}")
        counter, log_key = per_kind
        counter.inc()
        if log.due(log_key):  # most refused lines are only counted: their log line is not even built
            log.limited(30, log_key, "line_rejected", source=self.cfg.name, path=tailer.path, offset=offset,
                        reason=reason[:300])
        if self.processor.rejects is not None:
            try:
                self.processor.rejects.write(self.cfg.name, text, reason)
            except OSError as exc:  # the line is counted and logged above: a full disk must not stop reading
                log.limited(40, f"rejects:{self.cfg.name}", "rejects_write_failed", source=self.cfg.name,
                            file=str(self.processor.rejects.path), error=exc.strerror or str(exc))

    def release_orphans(self, now: float | None = None) -> None:
        """Close rotated/deleted files read to their end (and idle), or held longer than `rotate_wait`;
        what the latter leaves unread is counted and logged, so a dead sink cannot pin deleted files."""
        now = time.monotonic() if now is None else now
        wait = self.cfg.rotate_wait
        for key, tailer in list(self.tailers.items()):
            if tailer.orphaned_at is None:
                continue
            st = os.fstat(tailer.fd)
            idle = now - max(tailer.last_growth, tailer.orphaned_at)
            finished = (tailer.read_position >= st.st_size and not tailer.tracker.in_flight
                        and idle >= min(ORPHAN_IDLE, wait))
            if not finished and now - tailer.orphaned_at < wait:
                continue
            dropped = max(0, st.st_size - tailer.offset)
            if dropped:
                self.m_dropped.inc(dropped)
                log.warning("rotated_file_released_unread", source=self.cfg.name, path=tailer.path,
                            dropped_bytes=dropped, rotate_wait=wait,
                            reason="it ends without a newline" if finished
                            else "the sink did not keep up before rotate_wait ran out")
            self._commit(tailer)
            tailer.close()
            del self.tailers[key]
            deleted = st.st_nlink == 0
            if deleted and self.store is not None:
                self.store.remove(self.cfg.name, key)  # gone for good; its inode may be reused
            log.info("file_released", source=self.cfg.name, path=tailer.path, deleted=deleted)

    # -- checkpoints and state ------------------------------------------------------------------

    def _commit(self, tailer: FileTailer) -> None:
        """Store the acknowledged offset and a mark of the content before it.

        If the file was truncated or rewritten since it was read (the reader restarts it soon), the mark must
        still describe the content as it was read, so a copy of it (copytruncate) is recognised after a
        restart: taken from memory when everything read is acknowledged, else the stored one is kept.
        """
        if self.store is None or tailer.fd < 0:
            return
        offset = tailer.tracker.committed
        if tailer.change(tailer.size()) is None:
            tail = tail_digest(tailer.fd, offset)
        elif offset == tailer.offset:
            tail = tailer.mark().tail
        else:
            return
        self.store.update(self.cfg.name, tailer.key, offset, tail, tailer.head, tailer.path)

    def checkpoint(self) -> None:
        """Move each file's stored offset to what is fully acknowledged."""
        if self.store is None:
            return
        now = time.time()
        for tailer in self.tailers.values():
            self._commit(tailer)
            self.store.touch(self.cfg.name, tailer.key, now)

    def live_keys(self) -> set[tuple[str, str]]:
        """Checkpoint identities of the files followed now (they never expire)."""
        return {(self.cfg.name, key) for key in self.tailers}

    def behind(self) -> list[tuple[str, int]]:
        return [(t.path, max(0, t.size() - t.tracker.committed)) for t in self.tailers.values() if t.fd >= 0]
