"""Helpers for driving the real files layer in-process: a source config from YAML, a capturing sink, lines."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson

from agent.config import SourceConfig, load
from agent.files.acks import Pending
from agent.files.checkpoints import CheckpointStore
from agent.files.server import FileServer
from agent.formats.source import Processor
from agent.ops.metrics import AgentMetrics


def line(ident: str) -> bytes:
    """One volt-jsonl line whose record id is `ident`."""
    return orjson.dumps({"id": ident, "provider": "smpp", "status": "sent"}) + b"\n"


def lines(prefix: str, n: int, start: int = 0) -> bytes:
    return b"".join(line(f"{prefix}-{i}") for i in range(start, start + n))


def source_config(tmp: Path, paths: list[str], name: str = "app", **options: Any) -> SourceConfig:
    """The one source of a config file written to `tmp`, parsed by the real loader."""
    opts = {"start_at": "beginning", "poll_interval": 0.05, "scan_interval": 0.2, **options}
    body = "".join(f"    {k}: {orjson.dumps(v).decode()}\n" for k, v in opts.items())
    cfg = tmp / f"{name}-source.yaml"
    cfg.write_text(f"""volt:
  endpoint: http://127.0.0.1:9/data/messages
  allow_insecure_http: true
sources:
  - name: {name}
    format: volt-jsonl
    paths: {orjson.dumps(paths).decode()}
{body}""")
    return load(cfg).sources[0]


class Capture:
    """A sink that keeps every record; acknowledges at once unless `hold` (then `release()` does)."""

    def __init__(self, hold: bool = False) -> None:
        self.records: list[dict[str, Any]] = []
        self.hold = hold
        self.held: list[Pending] = []

    def offer(self, record: dict[str, Any], pending: Pending) -> tuple[dict[str, Any], Pending]:
        return record, pending  # always through put(), so a subclass can make the reader wait there

    async def put(self, item: tuple[dict[str, Any], Pending]) -> None:
        record, pending = item
        self.records.append(record)
        if self.hold:
            self.held.append(pending)
        else:
            pending.ack()

    def release(self) -> None:
        for pending in self.held:
            pending.ack()
        self.held.clear()

    def ids(self) -> list[str]:
        return [r["id"] for r in self.records]


def make_server(cfg: SourceConfig, sink: Capture, store: CheckpointStore | None,
                metrics: AgentMetrics | None = None, **kwargs: Any) -> FileServer:
    return FileServer(cfg, Processor(cfg), sink, store, lambda record: None, metrics or AgentMetrics(), **kwargs)


@contextlib.asynccontextmanager
async def running(server: FileServer) -> AsyncIterator[FileServer]:
    """The server's run() as a task for the duration; stopped, checkpointed and closed after."""
    task = asyncio.create_task(server.run())
    await asyncio.wait_for(server.ready.wait(), 10)
    try:
        yield server
    finally:
        server.stop()
        await asyncio.wait_for(task, 10)
        server.checkpoint()
        server.close()


async def until(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    """Await `predicate()` becoming true while the event loop keeps running the server."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


class Writer(threading.Thread):
    """Appends numbered lines at a steady rate, like a gateway. With `reopen`, it reopens its log when the
    path names a new file (Python's WatchedFileHandler does this), until then it writes to the old one."""

    def __init__(self, path: Path, rate: float, reopen: bool) -> None:
        super().__init__(daemon=True)
        self.path, self.interval, self.reopen = path, 1.0 / rate, reopen
        self.times: list[float] = []  # when line w-<i> was written
        self.halt = threading.Event()

    def run(self) -> None:
        fh = self.path.open("ab", buffering=0)  # O_APPEND: after a copytruncate, writes land at the new end
        while not self.halt.is_set():
            if self.reopen:
                try:
                    if os.stat(self.path).st_ino != os.fstat(fh.fileno()).st_ino:
                        fh.close()
                        fh = self.path.open("ab", buffering=0)
                except FileNotFoundError:
                    pass  # between logrotate's rename and create: keep writing to the old file
            fh.write(line(f"w-{len(self.times)}"))
            self.times.append(time.monotonic())
            time.sleep(self.interval)
        fh.close()

    def stop(self) -> int:
        self.halt.set()
        self.join(5)
        return len(self.times)
