"""Wires sources -> queue -> sender, and runs the agent: start, reload (SIGHUP), drain and stop (SIGTERM).

One asyncio loop. Each source has a FileServer; all share one bounded queue and one sender (or the
dry-run printer). A ticker writes checkpoints of acknowledged offsets every `checkpoint_interval`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import sys
import time
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

from agent import __version__
from agent.config import Config, ConfigError, SourceConfig, load
from agent.files.acks import Pending
from agent.files.checkpoints import CheckpointStore
from agent.files.server import FileServer
from agent.formats.source import Processor
from agent.ops import logs
from agent.ops.control import ControlSocket, socket_path
from agent.ops.metrics import AgentMetrics
from agent.ops.notify import Notifier, watchdog_interval, watchdog_loop
from agent.secrets import Secret
from agent.send.deadletter import DeadLetters
from agent.send.queue import RecordQueue
from agent.status_memory import FinalStatusMemory

if TYPE_CHECKING:  # aiohttp is imported only when sending or serving metrics: a dry run starts faster
    from agent.send.sender import Sender

log = logs.get("volt_agent")
READY_CONTACT_WINDOW = 300.0


class DryRunSink:
    """Prints each mapped payload as one JSON line and acknowledges it at once; sends nothing."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        # joined into one write: a write per record costs more than the record. Each payload is orjson.dumps
        # without options (a keyword option costs a dict per call) and the newlines come with the join.
        self._lines: list[bytes] = []

    def offer(self, record: dict[str, Any], pending: Pending | None) -> None:
        self._lines.append(orjson.dumps(record))
        if pending is not None:
            pending.ack()
        if len(self._lines) >= 512:
            self.flush()

    def take(self, records: list[dict[str, Any]]) -> None:
        """A chunk's records at once, acknowledged by being taken: the reader tracks none of them in flight."""
        self._lines += map(orjson.dumps, records)
        if len(self._lines) >= 512:
            self.flush()

    async def put(self, item: object) -> None:  # never called: offer() always takes the record
        raise AssertionError("DryRunSink.offer never refuses")

    def flush(self) -> None:
        lines, self._lines = self._lines, []
        with contextlib.suppress(BrokenPipeError, ValueError):
            if lines:
                lines.append(b"")  # the last payload's newline
                self.out.write(b"\n".join(lines))
            self.out.flush()


class Agent:
    def __init__(self, cfg: Config, *, token: Secret | None, dry_run: bool = False, once: bool = False,
                 out: BinaryIO | None = None) -> None:
        self.cfg = cfg
        self.token = token
        self.dry_run = dry_run
        self.once = once
        self.metrics = AgentMetrics()
        self.guard = FinalStatusMemory(cfg.final_status_memory)
        self.store: CheckpointStore | None = None
        self.servers: dict[str, tuple[FileServer, asyncio.Task[None], SourceConfig]] = {}
        self.sink: Any = None
        self.queue: RecordQueue | None = None
        self.sender: Sender | None = None
        self.notifier = Notifier()
        self._stop = asyncio.Event()
        self.exit_code = 0
        self._force = False
        self._out = out if out is not None else sys.stdout.buffer
        self.started = time.monotonic()

    # -- sources --------------------------------------------------------------------------------

    def _start_source(self, scfg: SourceConfig, processor: Processor | None = None) -> None:
        processor = processor or Processor(scfg)
        server = FileServer(scfg, processor, self.sink, self.store, self.guard, self.metrics, once=self.once)
        task = asyncio.create_task(server.run(), name=f"source-{scfg.name}")
        task.add_done_callback(lambda t, name=scfg.name: self._source_done(name, t))
        self.servers[scfg.name] = (server, task, scfg)

    def _source_done(self, name: str, task: asyncio.Task[None]) -> None:
        """A source that dies must not go quiet: log it and stop, so systemd restarts the agent."""
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        log.error("source_failed", source=name, error=f"{type(exc).__name__}: {exc}"[:300],
                  action="stopping; unacknowledged lines are read again after the restart")
        self._failed()

    def _failed(self) -> None:
        """A part died of a bug: stop with exit 1 (systemd restarts the agent; nothing acknowledged is lost)."""
        self.exit_code = 1
        self._stop.set()

    async def _stop_source(self, name: str) -> None:
        server, task, _ = self.servers.pop(name)
        server.stop()
        task.cancel()  # a reader waiting for queue room (Volt down) would never return on its own
        with contextlib.suppress(asyncio.CancelledError, Exception):  # a failure was logged by _source_done
            await task
        server.checkpoint()
        server.processor.close()
        server.close()

    def checkpoint(self) -> None:
        if self.store is None:
            return
        live: set[tuple[str, str]] = set()
        for server, _, _ in self.servers.values():
            server.checkpoint()
            live.update(server.live_keys())
        self.store.expire(time.time(), live)
        try:
            if self.sender is not None:
                self.sender.dead.sync()  # refused records on disk before an offset past their lines is
            if self.store.flush():
                self.metrics.checkpoint_writes.inc()
        except OSError as exc:
            log.limited(40, "ckpt", "checkpoint_write_failed", path=str(self.store.path), error=exc.strerror,
                        action="keeping the last checkpoints; what came after is read again on a restart")

    # -- status for operators -------------------------------------------------------------------

    def status_line(self) -> str:
        m = self.metrics
        q = self.queue
        return (f"lines={int(m.lines_read.total())} "
                f"sent={int(m.records_sent.value())} queued={q.records if q else 0} "
                f"dead={int(m.records_dead_lettered.value())} files={self._files_open()}")

    def _files_open(self) -> int:
        return sum(len(s.tailers) for s, _, _ in self.servers.values())

    def ready(self) -> tuple[bool, str]:
        if not self.servers or not all(s.ready.is_set() for s, _, _ in self.servers.values()):
            return False, "sources not open yet"
        if self.sender is not None:
            if self.sender.token_rejected:
                return False, "Volt rejects the token"
            if self.sender.held is not None:
                return False, self.sender.held
            success = self.sender.last_success
            if self.queue and self.queue.records and (success is None or time.time() - success > 60):
                return False, "Volt has accepted nothing for 60 s while records are waiting"
        return True, "ready"

    def status(self) -> dict[str, Any]:
        """/status: what the metrics cannot say (who runs, why records are held), for `volt-agent top` and scripts."""
        ok, reason = self.ready()
        sender = self.sender
        return {
            "version": __version__, "pid": os.getpid(), "config": str(self.cfg.file),
            "uptime_s": round(time.monotonic() - self.started, 3), "once": self.once,
            "ready": ok, "reason": reason,
            "held": sender.held if sender else None,
            "token_rejected": bool(sender and sender.token_rejected),
            "last_success": sender.last_success if sender else None,
            "sources": {name: {"files": len(server.tailers)} for name, (server, _, _) in self.servers.items()},
        }

    def _register_gauges(self) -> None:
        self.metrics.queue_records.collect_from(lambda: [((), self.queue.records if self.queue else 0)])
        self.metrics.queue_bytes.collect_from(lambda: [((), self.queue.bytes if self.queue else 0)])
        self.metrics.files_open.collect_from(lambda: [((), self._files_open())])
        self.metrics.file_bytes_behind.collect_from(self._bytes_behind)

    def _bytes_behind(self) -> list[tuple[tuple[str, str], int]]:
        """Per source and path; a rotated file and its successor can share a name for a while: one series."""
        total: dict[tuple[str, str], int] = {}
        for name, (server, _, _) in self.servers.items():
            for path, behind in server.behind():
                total[(name, path)] = total.get((name, path), 0) + behind
        return list(total.items())

    # -- signals and reload ---------------------------------------------------------------------

    def request_stop(self) -> None:
        if self._stop.is_set():
            log.warning("second_signal", action="exiting now; acknowledged offsets are saved")
            self._force = True
            self.checkpoint()
            raise SystemExit(0)
        log.info("stopping", reason="signal")
        self._stop.set()

    async def reload(self) -> None:
        self.notifier.reloading()
        processors: dict[str, Processor] = {}
        try:
            new = load(self.cfg.file, state_dir_override=str(self.cfg.state_dir))
            for scfg in new.sources:
                processors[scfg.name] = Processor(scfg)
        except Exception as exc:  # a ConfigError, or anything else loading may raise: keep what runs
            for processor in processors.values():
                processor.close()
            error = str(exc) if isinstance(exc, ConfigError) else f"{type(exc).__name__}: {exc}"
            log.error("reload_rejected", error=error[:500], action="keeping the running config")
            self.notifier.ready(self.status_line())
            return
        unapplied = [f.name for f in dataclasses.fields(new)
                     if f.name != "sources" and getattr(new, f.name) != getattr(self.cfg, f.name)]
        if unapplied:
            log.warning("reload_partial", changed=",".join(unapplied),
                        reason="only sources change on reload; these settings change on restart")
        old = {name: scfg for name, (_, _, scfg) in self.servers.items()}
        wanted = {s.name: s for s in new.sources}
        for name in old:
            if name not in wanted or wanted[name] != old[name]:
                await self._stop_source(name)
                log.info("source_stopped", source=name, reason="reload")
        for name, scfg in wanted.items():
            if name not in self.servers:
                self._start_source(scfg, processors[name])
                log.info("source_started", source=name, reason="reload")
            else:
                processors[name].close()  # unchanged: the running one stays (and keeps its rejects file)
        self.checkpoint()
        self.cfg = dataclasses.replace(self.cfg, sources=new.sources)  # the rest is still what runs
        log.info("reloaded", sources=",".join(sorted(wanted)))
        self.notifier.ready(self.status_line())

    # -- main -----------------------------------------------------------------------------------

    async def run(self) -> int:
        cfg = self.cfg
        loop = asyncio.get_running_loop()
        processors = {s.name: Processor(s) for s in cfg.sources}
        if not self.dry_run:
            self.store = CheckpointStore(cfg.state_dir, cfg.checkpoint_max_age)
            self.store.load()
            if self.store.offsets_lost:  # which ran before is unknown: read from the start, never skip to the end
                for scfg in cfg.sources:
                    self.store.mark_started(scfg.name)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        if not self.once:
            loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))
        self._register_gauges()
        async with contextlib.AsyncExitStack() as stack:
            if self.dry_run:
                self.sink = DryRunSink(self._out)
            else:
                from agent.send.sender import Sender

                assert self.token is not None
                self.queue = RecordQueue(cfg.queue_max_records, cfg.queue_max_bytes)
                self.sender = await stack.enter_async_context(
                    Sender(cfg.volt, self.token, self.queue, DeadLetters(cfg.dead_letter), self.metrics,
                           on_failure=self._failed))
                self.sink = self.sender
            listen = cfg.metrics_listen if not self.once else None
            if listen or not self.dry_run:  # a dry run leaves the state dir alone: no control socket
                from agent.ops.http import OpsServer

                control = None if self.dry_run else ControlSocket(socket_path(cfg.state_dir))
                try:
                    await stack.enter_async_context(OpsServer(listen, self.metrics.registry.render, self.ready,
                                                              status=self.status, control=control))
                except OSError as exc:  # the port is taken (a second instance with a copied config, say)
                    raise ConfigError(cfg.file, "metrics.listen",
                                      f"an address free to listen on; {listen}: {exc.strerror}") from None
            for scfg in cfg.sources:
                self._start_source(scfg, processors[scfg.name])
            await self._until_ready()
            self.checkpoint()
            if not self._stop.is_set():
                self.notifier.ready(self.status_line())
                log.info("started", sources=len(self.servers), dry_run=self.dry_run, once=self.once,
                         startup_s=round(time.monotonic() - self.started, 3))
            ticker = asyncio.create_task(self._tick())
            ticker.add_done_callback(self._ticker_done)
            wd = watchdog_interval()
            wd_task = asyncio.create_task(watchdog_loop(self.notifier, wd, self.status_line)) if wd else None
            try:
                if self.once:
                    await self._read_all_or_stop()
                if not self.once or self._stop.is_set():
                    await self._stop.wait()
                    self.notifier.stopping()
                    await self._drain()
            finally:
                ticker.cancel()
                if wd_task:
                    wd_task.cancel()
                for name in list(self.servers):
                    await self._stop_source(name)
                if isinstance(self.sink, DryRunSink):
                    self.sink.flush()
            self.checkpoint()
        self.checkpoint()
        log.info("stopped", status=self.status_line())
        return self.exit_code

    async def _until_ready(self) -> None:
        """Every source has placed its files, unless one failed (or a signal came) first."""
        async def all_ready() -> None:
            for server, _, _ in list(self.servers.values()):
                await server.ready.wait()

        ready = asyncio.create_task(all_ready())
        stop = asyncio.create_task(self._stop.wait())
        await asyncio.wait((ready, stop), return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        stop.cancel()

    def _ticker_done(self, task: asyncio.Task[None]) -> None:
        """Without the ticker no offset would be saved again: stop rather than go on without checkpoints."""
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        log.error("checkpoint_ticker_failed", error=f"{type(exc).__name__}: {exc}"[:300],
                  action="stopping; unacknowledged lines are read again after the restart")
        self._failed()

    async def _read_all_or_stop(self) -> None:
        """--once: every source read to its end and every record acknowledged, unless a signal comes first."""
        async def everything() -> None:
            await asyncio.gather(*(t for _, t, _ in self.servers.values()), return_exceptions=True)
            if self.queue is not None:
                await self.queue.drained()

        done = asyncio.create_task(everything())
        stop = asyncio.create_task(self._stop.wait())
        await asyncio.wait((done, stop), return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not done.done():
            done.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await done

    async def _drain(self) -> None:
        """Stop reading, then give in-flight records up to shutdown_timeout to be acknowledged, unless they are held
        for a configuration problem (token refused, endpoint wrong, proxy 407): nothing can be sent then, so
        waiting would only delay the stop."""
        for server, task, _ in self.servers.values():
            server.stop()
            # a reader waiting in put() would otherwise queue the rest of its chunk as room frees up;
            # lines it had not handed over stay unacknowledged and are read again on the next start
            task.cancel()
        if self.queue is None or self.sender is None:
            return
        drained = asyncio.create_task(self.queue.drained())
        held = asyncio.create_task(self.sender.until_held())
        done, _ = await asyncio.wait((drained, held), timeout=self.cfg.shutdown_timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        drained.cancel()
        held.cancel()
        if drained in done:
            return
        unacknowledged = "their lines stay unacknowledged and are read again on the next start"
        if held in done:
            log.warning("shutdown_held", unsent=self.queue.records, reason=self.sender.held,
                        action=f"stopping now, nothing can be sent until the configuration is fixed; {unacknowledged}")
        else:
            log.warning("shutdown_timeout", unsent=self.queue.records, action=unacknowledged)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.checkpoint_interval)
            self.checkpoint()
            if isinstance(self.sink, DryRunSink):
                self.sink.flush()
            self.notifier.status(self.status_line())
