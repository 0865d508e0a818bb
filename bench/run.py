"""volt-agent benchmarks (issue 7): `make bench` runs them all and prints one table against the targets.

Every measurement runs the real agent as a subprocess (`volt-agent run`) and, where it sends, the real
stand-in in its own process, on 127.0.0.1 only. Sizes and times are bounded; every child is killed at
the end, also on errors or Ctrl-C. Raw results go to bench/out/results-*.json (and latest.json).

    python bench/run.py                  everything (about 7 minutes on 2 cores)
    python bench/run.py --quick          small sizes, for development (about 1 minute)
    python bench/run.py --only parse     one benchmark (repeatable): parse baseline e2e backlog latency startup remote

Generated inputs are cached in bench/out (git-ignored) and reused; the first full run writes ~2 GB there.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import generate
import orjson
import psutil
import yaml

from agent.config import DEFAULT_MAX_CONCURRENCY

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
PRESETS = ROOT / "agent" / "formats" / "presets"
TOKEN = "bench-token-not-a-secret"
MB = 1_000_000  # RSS and file sizes are reported in MB of 10^6 bytes (stricter than MiB against the target)
PARSE_TARGETS = {"volt-jsonl": 200_000, "kannel": 150_000, "twilio": 150_000}  # lines/s, issue 12
# Each format's inputs: the realistic mix, then the hard variant (every line a record or a refusal, nothing a
# cache can hide: see generate.py). Twilio's file is hard as it is (every line a record, unique ids).
PARSE_VARIANTS = {"volt-jsonl": ("volt-jsonl", "volt-jsonl-hard"), "kannel": ("kannel", "kannel-hard"),
                  "twilio": ("twilio",)}
PARSE_RSS_TARGET_MB = 80
E2E_TARGET = 5_000
E2E_SHARE = 0.8
RSS_TARGET_MB = 100
LATENCY_P50_MS, LATENCY_P99_MS = 50, 250
STARTUP_TARGET_S = 1.0
# The children run as a service would: not under the caller's systemd, and without the interpreter switches
# some shells export (PYTHONUNBUFFERED makes every dry-run output line a write(2); measured ~20% slower).
CALLER_ENV_DROPPED = frozenset(("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "PYTHONUNBUFFERED",
                                "PYTHONDONTWRITEBYTECODE"))
REMOTE_TARGET = 3_000  # records/s from a gateway sending 1,000 messages/s (submit, SMSC ack, receipt)
REMOTE_CAPACITY, REMOTE_SHARE, REMOTE_429_SHARE = 150, 0.8, 0.05
REMOTE_FIXED = 16  # the end-to-end row's middle concurrency: auto must not be slower on loopback
RETRY_MAX_S = 5  # bench config: a 60 s default backoff cap would hide the recovery inside the 90 s window


@dataclass(frozen=True)
class Sizes:
    parse_lines: int = 1_000_000
    e2e_records: int = 50_000
    concurrency: tuple[int, ...] = (4, 16, 64)
    backlog_bytes: int = 2**30
    backlog_outage_s: float = 30
    backlog_window_s: float = 90
    lossless_records: int = 100_000
    lossless_outage_s: float = 10
    lossless_timeout_s: float = 300
    latency_rate: int = 1000
    latency_seconds: float = 20
    startup_runs: int = 5
    remote_records: int = 20_000


FULL = Sizes()
QUICK = Sizes(parse_lines=100_000, e2e_records=3_000, backlog_bytes=64 * 2**20, backlog_outage_s=5,
              backlog_window_s=20, lossless_records=10_000, lossless_outage_s=3, lossless_timeout_s=120,
              latency_seconds=5, startup_runs=3, remote_records=5_000)


@dataclass
class Row:
    """One line of the table; `met` is None where there is no target or nothing was measured."""

    section: str
    name: str
    result: str
    target: str = "-"
    met: bool | None = None
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def say(text: str) -> None:
    """Progress goes to stderr, so stdout carries only the table."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# --- child processes ------------------------------------------------------------------------------------


class Children:
    """Every subprocess the bench starts, so that all of them are killed at the end, whatever happened."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.procs: list[subprocess.Popen[bytes]] = []
        self.env = {k: v for k, v in os.environ.items() if k not in CALLER_ENV_DROPPED}
        self.env["VOLT_TOKEN"] = TOKEN

    def spawn(self, args: list[str], name: str, *, stdout: Any = subprocess.DEVNULL,
              env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], Path]:
        """Start `python -m agent.cli ARGS` with stderr (the structured log) in a file under the work dir."""
        err = self.work / f"{name}.err"
        with open(err, "wb") as fh:
            proc = subprocess.Popen([sys.executable, "-m", "agent.cli", *args], cwd=ROOT, stdout=stdout,
                                    stderr=fh, env={**self.env, **(env or {})})
        self.procs.append(proc)
        return proc, err

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.returncode is None and proc.poll() is None:
                proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired, ChildProcessError):
                    proc.wait(5)


def reap(proc: subprocess.Popen[bytes], timeout: float, *, terminate: bool) -> tuple[Any, bool]:
    """Wait for `proc` (after SIGTERM if `terminate`), SIGKILL after `timeout`; (its own rusage, killed?).

    os.wait4 gives the child's own CPU times. Not its peak memory: see MemorySampler.
    """
    if proc.returncode is not None:
        raise RuntimeError(f"pid {proc.pid} was already reaped")
    if terminate:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
    killed = threading.Event()

    def kill() -> None:
        killed.set()
        with contextlib.suppress(ProcessLookupError):
            proc.kill()

    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage, killed.is_set()


def cpu_s(usage: Any) -> float:
    return usage.ru_utime + usage.ru_stime


class MemorySampler(threading.Thread):
    """Polls /proc/PID/status every `interval` s: VmRSS over time, and VmHWM, the peak RSS since the exec.

    Not ru_maxrss: Linux carries the parent's RSS at fork/exec into the child's ru_maxrss, so every agent
    started by a bench process holding 100 MB of results would report at least 100 MB. VmHWM belongs to
    the agent's own address space; only a peak in the last `interval` before the exit can be missed.
    Start it after Popen returned, which is after the exec.
    """

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.status = Path(f"/proc/{pid}/status")
        self.interval = interval
        self.samples: list[tuple[float, int]] = []  # (unix time, VmRSS bytes)
        self.hwm = 0  # bytes
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                text = self.status.read_text()
            except OSError:
                return
            fields = dict(line.split(":", 1) for line in text.splitlines() if line.startswith(("VmRSS", "VmHWM")))
            if len(fields) < 2:  # a zombie: the address space is gone
                return
            self.samples.append((time.time(), int(fields["VmRSS"].split()[0]) * 1024))
            self.hwm = max(self.hwm, int(fields["VmHWM"].split()[0]) * 1024)
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(2)

    @property
    def peak_mb(self) -> float:
        return self.hwm / MB

    def rss_peak_mb(self, since: float = 0.0, until: float = float("inf")) -> float:
        """The highest sampled VmRSS within a time range (for the peak during an outage)."""
        return max((rss for t, rss in self.samples if since <= t <= until), default=0) / MB


def log_event(err: Path, event: str) -> dict[str, str] | None:
    """The first logfmt line with msg=`event` in an agent's stderr, as a dict (values unquoted)."""
    for line in err.read_text(errors="replace").splitlines():
        if f" msg={event}" in line:
            return {k: v.strip('"') for k, v in re.findall(r'(\w+)=("[^"]*"|\S+)', line)}
    return None


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")


class StandIn:
    """The project's stand-in (`volt-agent standin`) in its own process, on 127.0.0.1 and a free port."""

    def __init__(self, children: Children, name: str, faults: tuple[dict[str, Any], ...] = ()) -> None:
        work = children.work
        self.out = work / f"{name}.out.jsonl"
        self.arrivals_path = work / f"{name}.arrivals"
        args = ["standin", "--port", "0", "--out", str(self.out), "--arrivals", str(self.arrivals_path)]
        for spec in faults:
            args += ["--fault", orjson.dumps(spec).decode()]
        self.proc, self.err = children.spawn(args, name)
        self.started = time.time()
        line = wait_for(lambda: re.search(r"listening url=(\S+)", self.err.read_text()) or self.proc.poll() is not None,
                        20, f"stand-in {name} to listen")
        if not isinstance(line, re.Match):
            raise RuntimeError(f"stand-in {name} exited: {self.err.read_text()[-500:]}")
        self.url = line.group(1)
        self.base = self.url.rsplit("/data/", 1)[0]

    def stats(self) -> dict[str, Any]:
        import urllib.request

        with urllib.request.urlopen(self.base + "/_stats", timeout=5) as resp:
            return orjson.loads(resp.read())

    def arrivals(self) -> list[tuple[float, str]]:
        """(unix time, id) per accepted record, in arrival order."""
        if not self.arrivals_path.exists():
            return []
        out = []
        for line in self.arrivals_path.read_bytes().splitlines():
            t, _, rid = line.partition(b" ")
            out.append((float(t), rid.decode()))
        return out

    def stop(self) -> Any:
        """SIGTERM and reap; its rusage (None if it was already stopped)."""
        if self.proc.returncode is not None:
            return None
        return reap(self.proc, 10, terminate=True)[0]


def agent_config(path: Path, sources: list[dict[str, Any]], *, state_dir: Path, endpoint: str | None = None,
                 volt: dict[str, Any] | None = None) -> Path:
    cfg: dict[str, Any] = {"state_dir": str(state_dir), "sources": sources}
    if endpoint is not None:
        cfg["volt"] = {"endpoint": endpoint, "allow_insecure_http": True, **(volt or {})}
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def source(name: str, fmt: str, path: Path, **extra: Any) -> dict[str, Any]:
    return {"name": name, "format": fmt, "paths": [str(path)], **extra}


def have_preset(fmt: str) -> bool:
    return (PRESETS / f"{fmt}.yaml").is_file()


def fmt_rate(value: float, unit: str) -> str:
    return f"{value:,.0f} {unit}"


# --- the benchmarks -------------------------------------------------------------------------------------


@dataclass
class Ctx:
    children: Children
    sizes: Sizes
    work: Path


def line_counts(ctx: Ctx, name: str, data: Path, config: Path) -> dict[str, int] | str:
    """`volt-agent parse` over the whole file: how many lines became records, were refused or skipped.

    A throughput figure means little if the preset refuses the generated lines, so the table shows this.
    """
    proc, err = ctx.children.spawn(["parse", "--config", str(config), str(data)], f"count-{name}")
    _, killed = reap(proc, 600, terminate=False)
    text = err.read_text(errors="replace")
    m = re.search(r"lines=(\d+) records=(\d+) rejected=(\d+) skipped=(\d+)", text)
    if proc.returncode != 0 or killed or m is None:
        return f"parse failed (exit {proc.returncode}): {text.strip()[-300:]}"
    return dict(zip(("lines", "records", "rejected", "skipped"), map(int, m.groups()), strict=True))


def bench_parse(ctx: Ctx) -> list[Row]:
    """1. `run --dry-run --once` over 1M generated lines per format and variant, stdout to /dev/null."""
    rows = []
    n = ctx.sizes.parse_lines
    for fmt, target in PARSE_TARGETS.items():
        for kind in PARSE_VARIANTS[fmt]:
            rows.append(parse_row(ctx, fmt, kind, target, n))
    return rows


def parse_row(ctx: Ctx, fmt: str, kind: str, target: int, n: int) -> Row:
    name = f"{kind}, {n:,} lines"
    target_text = f">= {target:,} lines/s, <= {PARSE_RSS_TARGET_MB} MB"
    if not have_preset(fmt):
        return Row("parse+map", name, "not run", target_text,
                   detail=f"preset missing: agent/formats/presets/{fmt}.yaml does not exist yet")
    say(f"parse+map {kind}: preparing {n:,} lines")
    data = generate.ensure(OUT, kind, n)
    config = agent_config(ctx.work / f"parse-{kind}.yaml", [source("bench", fmt, data, start_at="beginning")],
                          state_dir=ctx.work / f"state-parse-{kind}")
    counts = line_counts(ctx, kind, data, config)
    if isinstance(counts, str):
        return Row("parse+map", name, "error", target_text, False, counts)
    say(f"parse+map {kind}: running")
    t0 = time.perf_counter()
    proc, err = ctx.children.spawn(["run", "--config", str(config), "--dry-run", "--once"], f"parse-{kind}")
    memory = MemorySampler(proc.pid, 0.02)
    memory.start()
    usage, killed = reap(proc, 600, terminate=False)
    wall = time.perf_counter() - t0
    memory.stop()
    stopped = log_event(err, "stopped") or {}
    read = int(m.group(1)) if (m := re.search(r"lines=(\d+)", stopped.get("status", ""))) else -1
    size = data.stat().st_size
    rate = n / wall
    cpu = cpu_s(usage)
    problems = []
    if killed or proc.returncode != 0:
        problems.append(f"exit {proc.returncode}{' (killed at 600 s)' if killed else ''}")
    if read != n:
        problems.append(f"agent reports lines={read}, expected {n}")
    detail = (f"{size / MB / wall:.0f} MB/s, {wall:.1f} s wall, cpu {cpu:.1f} s ({cpu * 1e6 / n:.2f} s per million "
              f"lines, {n / cpu:,.0f} lines per cpu-s), peak RSS {memory.peak_mb:.0f} MB; {counts['records']:,} "
              f"records, {counts['rejected']:,} refused, {counts['skipped']:,} skipped")
    if problems:
        detail = "; ".join(problems) + "; " + detail
    met = rate >= target and memory.peak_mb <= PARSE_RSS_TARGET_MB and not problems
    return Row("parse+map", name, fmt_rate(rate, "lines/s"), target_text, met, detail,
               {"lines": n, "bytes": size, "wall_s": wall, "lines_per_s": rate, "mb_per_s": size / MB / wall,
                "cpu_s": cpu, "cpu_s_per_million": cpu * 1e6 / n, "lines_per_cpu_s": n / cpu,
                "peak_rss_mb": memory.peak_mb, "lines_read": read, "exit": proc.returncode, "counts": counts})


def bench_baseline(ctx: Ctx) -> list[Row]:
    """5. The read path's floor in Python, and pygtail, over the same files as parse+map."""
    from pygtail import Pygtail

    rows = []
    n = ctx.sizes.parse_lines
    for fmt in PARSE_TARGETS:
        data = generate.ensure(OUT, fmt, n)
        say(f"baselines on {data.name}")
        t0 = time.perf_counter()
        count = 0
        with open(data, "rb") as fh:
            for _ in fh:
                count += 1
        floor = count / (time.perf_counter() - t0)
        offsets = ctx.work / f"pygtail-{fmt}.offset"
        t0 = time.perf_counter()
        tail_count = 0
        for _ in Pygtail(str(data), offset_file=str(offsets)):
            tail_count += 1
        tail = tail_count / (time.perf_counter() - t0)
        rows.append(Row("baseline", f"python `for line in open(f, 'rb')`, {fmt}", fmt_rate(floor, "lines/s"),
                        detail=f"{count:,} lines, read only (no decode, parse or output)",
                        data={"lines": count, "lines_per_s": floor, "file": data.name}))
        rows.append(Row("baseline", f"pygtail 0.14 iteration, {fmt}", fmt_rate(tail, "lines/s"),
                        detail=f"{tail_count:,} lines, text mode with offsets, read only",
                        data={"lines": tail_count, "lines_per_s": tail, "file": data.name}))
    return rows


async def load_client(url: str, bodies: list[bytes], concurrency: int) -> tuple[float, Counter[int]]:
    """POST every body with `concurrency` requests in flight on keep-alive connections, as the agent does."""
    statuses: Counter[int] = Counter()
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers, timeout=timeout) as session:
        todo = iter(bodies)

        async def worker() -> None:
            for body in todo:
                async with session.post(url, data=body) as resp:
                    await resp.read()
                    statuses[resp.status] += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - t0, statuses


def bench_e2e(ctx: Ctx) -> list[Row]:
    """2. Records/s delivered to the stand-in per `concurrency`, next to the stand-in's capacity alone."""
    rows = []
    n = ctx.sizes.e2e_records
    data = generate.ensure(OUT, "volt-jsonl", n)
    bodies = data.read_bytes().splitlines()
    for conc in ctx.sizes.concurrency:
        say(f"end-to-end concurrency {conc}: stand-in alone, {n:,} requests")
        standin = StandIn(ctx.children, f"cap-{conc}")
        try:
            elapsed, statuses = asyncio.run(load_client(standin.url, bodies, conc))
        finally:
            standin.stop()
        capacity = n / elapsed
        say(f"end-to-end concurrency {conc}: agent, {n:,} records")
        sent = send_once(ctx, f"e2e-{conc}", data, n, {"concurrency": conc})
        problems, arrivals, usage, standin_usage = sent.problems, sent.arrivals, sent.usage, sent.standin_usage
        if not arrivals:
            rows.append(Row("end-to-end", f"concurrency {conc}", "error", detail="; ".join(problems), met=False))
            continue
        span, rate = sent.span, sent.rate
        bar = min(E2E_TARGET, E2E_SHARE * capacity)
        bad = {k: v for k, v in statuses.items() if k != 202}
        if bad:
            problems.append(f"load client got non-202 answers {bad}")
        detail = (f"stand-in alone {capacity:,.0f} req/s, agent/stand-in {rate / capacity:.0%}; {len(arrivals):,} "
                  f"records in {span:.1f} s from process start; busy: agent {cpu_s(usage) / span:.0%} of a core, "
                  f"stand-in {cpu_s(standin_usage) / span:.0%}; agent peak RSS {sent.memory.peak_mb:.0f} MB")
        rows.append(Row("end-to-end", f"concurrency {conc}, {n:,} records", fmt_rate(rate, "rec/s"),
                        f">= {bar:,.0f}/s (5k or 80% of stand-in)", rate >= bar and not problems,
                        "; ".join([*problems, detail]),
                        {"concurrency": conc, "records": n, "delivered": len(arrivals), "span_s": span,
                         "records_per_s": rate, "standin_capacity_per_s": capacity, "ratio": rate / capacity,
                         "agent_cpu_s": cpu_s(usage), "standin_cpu_s": cpu_s(standin_usage),
                         "agent_peak_rss_mb": sent.memory.peak_mb,
                         "exit": sent.exit}))
    return rows


@dataclass
class Sent:
    """One `run --once` of the agent sending a file to a fresh stand-in, and what the stand-in saw."""

    arrivals: list[tuple[float, str]]
    span: float  # s from the agent's process start to the last arrival: start-up counts against the agent
    usage: Any
    standin_usage: Any
    standin_stats: dict[str, Any]
    memory: MemorySampler
    err: Path
    exit: int | None
    problems: list[str]

    @property
    def rate(self) -> float:
        return len(self.arrivals) / self.span if self.arrivals else 0.0


def send_once(ctx: Ctx, name: str, data: Path, n: int, volt: dict[str, Any],
              faults: tuple[dict[str, Any], ...] = ()) -> Sent:
    """The agent with `--once` sends the `n` records of `data` to a fresh stand-in with `faults`."""
    standin = StandIn(ctx.children, f"{name}-standin", faults)
    try:
        config = agent_config(ctx.work / f"{name}.yaml", [source("bench", "volt-jsonl", data, start_at="beginning")],
                              state_dir=ctx.work / f"state-{name}", endpoint=standin.url, volt=volt)
        t_spawn = time.time()
        proc, err = ctx.children.spawn(["run", "--config", str(config), "--once"], name)
        memory = MemorySampler(proc.pid)
        memory.start()
        usage, killed = reap(proc, max(120.0, n / 200), terminate=False)
        memory.stop()
        stats = standin.stats()
    finally:
        standin_usage = standin.stop()
    arrivals = standin.arrivals()
    problems = []
    if killed or proc.returncode != 0:
        problems.append(f"agent exit {proc.returncode}{' (killed at time limit)' if killed else ''}: "
                        f"{err.read_text(errors='replace')[-300:]}")
    if len(arrivals) != n:
        problems.append(f"{len(arrivals):,} of {n:,} arrived")
    span = arrivals[-1][0] - t_spawn if arrivals else 0.0
    return Sent(arrivals, span, usage, standin_usage, stats, memory, err, proc.returncode, problems)


def bench_remote(ctx: Ctx) -> list[Row]:
    """7. A distant, finite Volt: the stand-in answers after 100 ms, or serves 150 at once; default config."""
    n = ctx.sizes.remote_records
    data = generate.ensure(OUT, "volt-jsonl", n)
    rows = []

    def detail(sent: Sent, extra: str = "") -> str:
        stopped = log_event(sent.err, "sender_stopped") or {}
        stats = sent.standin_stats
        return "; ".join([*sent.problems, f"{len(sent.arrivals):,} records in {sent.span:.1f} s from process start"
                          f"{extra}; most served at once {stats['serving_peak']}, {stats['connections']} "
                          f"connections, limit at the end {stopped.get('concurrency_limit', '?')}; agent "
                          f"{cpu_s(sent.usage) / max(sent.span, 1e-9):.0%} of a core, stand-in "
                          f"{cpu_s(sent.standin_usage) / max(sent.span, 1e-9):.0%}, peak RSS "
                          f"{sent.memory.peak_mb:.0f} MB"])

    def data_of(sent: Sent) -> dict[str, Any]:
        return {"records": n, "delivered": len(sent.arrivals), "span_s": sent.span, "records_per_s": sent.rate,
                "agent_cpu_s": cpu_s(sent.usage), "peak_rss_mb": sent.memory.peak_mb,
                "standin_stats": sent.standin_stats}

    say(f"remote: {n:,} records, answers after 100 ms + 0-20 ms, auto and concurrency {DEFAULT_MAX_CONCURRENCY}")
    distant = ({"delay": 0.1, "delay_jitter": 0.02},)
    ceiling = send_once(ctx, "remote-100ms-fixed", data, n, {"concurrency": DEFAULT_MAX_CONCURRENCY}, distant)
    sent = send_once(ctx, "remote-100ms", data, n, {}, distant)
    rows.append(Row("remote", f"100 ms answers (+0-20 ms), {n:,} records, default config",
                    fmt_rate(sent.rate, "rec/s"), f">= {REMOTE_TARGET:,}/s", sent.rate >= REMOTE_TARGET
                    and not sent.problems,
                    detail(sent, f"; a fixed concurrency {DEFAULT_MAX_CONCURRENCY} in the same run: "
                                 f"{ceiling.rate:,.0f} rec/s"), {**data_of(sent), "fixed_records_per_s": ceiling.rate}))

    say(f"remote: {n:,} records, capacity {REMOTE_CAPACITY} at 50 ms")
    sent = send_once(ctx, "remote-capacity", data, n, {}, ({"capacity": REMOTE_CAPACITY, "delay": 0.05},))
    capacity_rate = REMOTE_CAPACITY / 0.05
    stats = sent.standin_stats
    refused = stats["by_status"].get("429", 0) / max(stats["requests"], 1)
    met = sent.rate >= REMOTE_SHARE * capacity_rate and refused <= REMOTE_429_SHARE and not sent.problems
    rows.append(Row("remote", f"capacity {REMOTE_CAPACITY} at 50 ms ({capacity_rate:,.0f}/s), {n:,} records",
                    f"{fmt_rate(sent.rate, 'rec/s')}, {refused:.1%} 429",
                    f">= {REMOTE_SHARE:.0%} of {capacity_rate:,.0f}/s, <= {REMOTE_429_SHARE:.0%} 429", met,
                    detail(sent, f"; {sent.rate / capacity_rate:.0%} of the capacity; "
                                 f"{stats['by_status'].get('429', 0):,} of {stats['requests']:,} requests answered "
                                 f"429"), data_of(sent)))

    say(f"remote: {n:,} records on loopback, auto and concurrency {REMOTE_FIXED}")
    fixed = send_once(ctx, f"remote-loopback-{REMOTE_FIXED}", data, n, {"concurrency": REMOTE_FIXED})
    sent = send_once(ctx, "remote-loopback-auto", data, n, {})
    rows.append(Row("remote", f"loopback, no delay, {n:,} records, auto", fmt_rate(sent.rate, "rec/s"),
                    f">= 0.9 x concurrency {REMOTE_FIXED} ({0.9 * fixed.rate:,.0f}/s)",
                    sent.rate >= 0.9 * fixed.rate and not sent.problems and not fixed.problems,
                    detail(sent, f"; concurrency {REMOTE_FIXED} in the same run: {fixed.rate:,.0f} rec/s"),
                    {**data_of(sent), "fixed_records_per_s": fixed.rate}))

    peak = ceiling.memory.peak_mb  # the fixed run above holds the default ceiling in flight from the start
    at_ceiling = ceiling.standin_stats["serving_peak"] >= 0.9 * DEFAULT_MAX_CONCURRENCY
    rows.append(Row("remote", f"peak RSS, limit at its ceiling ({DEFAULT_MAX_CONCURRENCY} in flight)",
                    f"{peak:.0f} MB", f"<= {RSS_TARGET_MB} MB", peak <= RSS_TARGET_MB and at_ceiling
                    and not ceiling.problems,
                    detail(ceiling, f"; concurrency {DEFAULT_MAX_CONCURRENCY} (the default ceiling) at 100 ms"
                                  + ("" if at_ceiling else "; requests in flight never came near the ceiling")),
                    data_of(ceiling)))
    return rows


def bench_backlog(ctx: Ctx) -> list[Row]:
    """3. A 1 GB file waiting at start, 503 for 30 s, then recovery: peak RSS and the rate after recovery."""
    s = ctx.sizes
    say(f"backlog: preparing a {s.backlog_bytes / 2**30:.2g} GiB file (cached after the first run)")
    data = generate.ensure_size(OUT, "volt-jsonl", s.backlog_bytes)
    size_text = f"{data.stat().st_size / 2**30:.2f} GiB" if s.backlog_bytes >= 2**30 \
        else f"{data.stat().st_size / 2**20:.0f} MiB"
    say(f"backlog: {size_text} file, 503 for {s.backlog_outage_s:g} s, watching {s.backlog_window_s:g} s")
    standin = StandIn(ctx.children, "backlog", ({"status": 503, "seconds": s.backlog_outage_s},))
    outage_end = standin.started + s.backlog_outage_s
    try:
        config = agent_config(ctx.work / "backlog.yaml", [source("bench", "volt-jsonl", data, start_at="beginning")],
                              state_dir=ctx.work / "state-backlog", endpoint=standin.url,
                              volt={"retry_max": RETRY_MAX_S})
        proc, err = ctx.children.spawn(["run", "--config", str(config)], "backlog")
        memory = MemorySampler(proc.pid)
        memory.start()
        t0 = time.time()
        end = t0 + s.backlog_window_s
        while time.time() < end and proc.poll() is None:
            time.sleep(0.2)
        alive = proc.poll() is None
        stats = standin.stats()
        memory.stop()  # before the SIGTERM: the peak asked for is the one while running
        if proc.returncode is None:
            reap(proc, 20, terminate=True)
    finally:
        standin.stop()
    arrivals = standin.arrivals()
    peak = memory.peak_mb
    during = memory.rss_peak_mb(until=outage_end)
    rows = []
    problems = [] if alive else [f"agent exited early (exit {proc.returncode}): {err.read_text()[-300:]}"]
    rows.append(Row("backlog", f"{size_text} backlog, 503 for {s.backlog_outage_s:g} s: peak RSS over "
                               f"{s.backlog_window_s:g} s", f"{peak:.0f} MB", f"<= {RSS_TARGET_MB} MB",
                    peak <= RSS_TARGET_MB and not problems,
                    "; ".join([*problems, f"VmHWM; highest VmRSS sample during the outage {during:.0f} MB; "
                                          f"{stats['by_status'].get('503', 0)} answers of 503"]),
                    {"file_bytes": data.stat().st_size, "peak_rss_mb": peak, "peak_rss_outage_mb": during,
                     "rss_samples": [(round(t - t0, 2), rss) for t, rss in memory.samples],
                     "standin_stats": stats}))
    if arrivals:
        first, last = arrivals[0][0], arrivals[-1][0]
        rate = len(arrivals) / max(last - first, 1e-9)
        rows.append(Row("backlog", "delivery rate after recovery", fmt_rate(rate, "rec/s"),
                        detail=f"{len(arrivals):,} records from {first - outage_end:+.1f} s after the outage "
                               f"ended to {last - outage_end:+.1f} s; retry_max {RETRY_MAX_S} s in this config",
                        data={"delivered": len(arrivals), "first_after_outage_s": first - outage_end,
                              "records_per_s": rate}))
    else:
        rows.append(Row("backlog", "delivery rate after recovery", "nothing delivered", met=False,
                        detail=err.read_text(errors="replace")[-300:]))
    rows.append(bench_lossless(ctx))
    return rows


def bench_lossless(ctx: Ctx) -> Row:
    """3b. A 100,000-record backlog through an outage: every record must arrive (distinct ids)."""
    s = ctx.sizes
    n = s.lossless_records
    data = generate.ensure(OUT, "volt-jsonl", n)
    expected = {orjson.loads(line)["id"] for line in data.read_bytes().splitlines()}
    say(f"backlog: {n:,} records through {s.lossless_outage_s:g} s of 503, every one must arrive")
    standin = StandIn(ctx.children, "lossless", ({"status": 503, "seconds": s.lossless_outage_s},))
    try:
        config = agent_config(ctx.work / "lossless.yaml", [source("bench", "volt-jsonl", data, start_at="beginning")],
                              state_dir=ctx.work / "state-lossless", endpoint=standin.url,
                              volt={"retry_max": RETRY_MAX_S})
        t0 = time.time()
        proc, err = ctx.children.spawn(["run", "--config", str(config), "--once"], "lossless")
        memory = MemorySampler(proc.pid)
        memory.start()
        _, killed = reap(proc, s.lossless_timeout_s, terminate=False)
        memory.stop()
        took = time.time() - t0
        stats = standin.stats()
    finally:
        standin.stop()
    ids = [rid for _, rid in standin.arrivals()]
    got = set(ids)
    missing = len(expected - got)
    problems = []
    if killed or proc.returncode != 0:
        problems.append(f"agent exit {proc.returncode}{f' (killed at {s.lossless_timeout_s:g} s)' if killed else ''}: "
                        f"{err.read_text(errors='replace')[-200:]}")
    return Row("backlog", f"{n:,}-record backlog through {s.lossless_outage_s:g} s of 503",
               f"{len(got & expected):,}/{n:,} arrived", "nothing lost", missing == 0 and not problems,
               "; ".join([*problems, f"missing {missing:,}, duplicates {len(ids) - len(got):,}, done in {took:.0f} s, "
                          f"{stats['by_status'].get('503', 0)} answers of 503, peak RSS {memory.peak_mb:.0f} MB"]),
               {"records": n, "distinct_arrived": len(got & expected), "missing": missing,
                "duplicates": len(ids) - len(got), "seconds": took, "exit": proc.returncode,
                "peak_rss_mb": memory.peak_mb, "standin_stats": stats,
                "rss_samples": [(round(t - t0, 2), rss) for t, rss in memory.samples]})


def bench_latency(ctx: Ctx) -> list[Row]:
    """4. A writer appends 1,000 lines/s; append-to-arrival latency from the stand-in's arrivals file."""
    s = ctx.sizes
    total = int(s.latency_rate * s.latency_seconds)
    say(f"latency: {s.latency_rate:,} lines/s for {s.latency_seconds:g} s")
    log_file = ctx.work / "latency.log"
    log_file.touch()
    standin = StandIn(ctx.children, "latency")
    try:
        config = agent_config(ctx.work / "latency.yaml", [source("bench", "volt-jsonl", log_file)],
                              state_dir=ctx.work / "state-latency", endpoint=standin.url)
        proc, err = ctx.children.spawn(["run", "--config", str(config)], "latency")
        wait_for(lambda: log_event(err, "started") or proc.poll() is not None, 30, "the agent to start")
        if proc.poll() is not None:
            raise RuntimeError(f"agent exited: {err.read_text()[-300:]}")
        fd = os.open(log_file, os.O_WRONLY | os.O_APPEND)
        try:
            t0 = time.monotonic()
            seq = 0
            while seq < total:
                due = min(total, int((time.monotonic() - t0) * s.latency_rate) + 1)
                if due > seq:
                    now_us = int(time.time() * 1e6)
                    os.write(fd, b"".join(
                        orjson.dumps({"id": f"lat-{i:07d}-{now_us}", "provider": "smpp", "status": "sent",
                                      "direction": "outbound", "body": "latency probe"}) + b"\n"
                        for i in range(seq, due)))
                    seq = due
                time.sleep(0.001)
            wrote_s = time.monotonic() - t0
        finally:
            os.close(fd)
        with contextlib.suppress(TimeoutError):
            wait_for(lambda: standin.stats()["accepted"] >= total, 15, "the last records", interval=0.2)
        reap(proc, 20, terminate=True)
    finally:
        standin.stop()
    lat_ms = sorted((t - int(rid.rsplit("-", 1)[1]) / 1e6) * 1000 for t, rid in standin.arrivals()
                    if rid.startswith("lat-"))
    if not lat_ms:
        return [Row("latency", "append to arrival", "nothing arrived", met=False, detail=err.read_text()[-300:])]
    p50 = lat_ms[len(lat_ms) // 2]
    p99 = lat_ms[min(len(lat_ms) - 1, int(len(lat_ms) * 0.99))]
    complete = len(lat_ms) == total
    detail = (f"{len(lat_ms):,}/{total:,} arrived, writer {total / wrote_s:,.0f} lines/s for {wrote_s:.1f} s, "
              f"max {lat_ms[-1]:.0f} ms")
    data = {"written": total, "arrived": len(lat_ms), "p50_ms": p50, "p99_ms": p99, "max_ms": lat_ms[-1],
            "writer_lines_per_s": total / wrote_s}
    name = f"append to arrival at {s.latency_rate:,} lines/s"
    return [Row("latency", f"{name}: p50", f"{p50:.0f} ms", f"<= {LATENCY_P50_MS} ms",
                p50 <= LATENCY_P50_MS and complete, detail, data),
            Row("latency", f"{name}: p99", f"{p99:.0f} ms", f"<= {LATENCY_P99_MS} ms",
                p99 <= LATENCY_P99_MS and complete, detail)]


def bench_startup(ctx: Ctx) -> list[Row]:
    """6. Process start to READY=1 on a real NOTIFY_SOCKET, one source per built-in preset measured here."""
    fmts = [f for f in PARSE_TARGETS if have_preset(f)]
    sources = []
    for fmt in fmts:
        path = ctx.work / f"startup-{fmt}.log"
        path.touch()
        sources.append(source(fmt, fmt, path))
    config = agent_config(ctx.work / "startup.yaml", sources, state_dir=ctx.work / "state-startup",
                          endpoint="http://127.0.0.1:9/data/messages")
    ready: list[float] = []
    logged: list[float] = []
    say(f"start-up: {ctx.sizes.startup_runs} runs (+1 warm-up), sources: {', '.join(fmts)}")
    for run in range(ctx.sizes.startup_runs + 1):
        sock_path = ctx.work / f"notify-{run}.sock"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(str(sock_path))
            sock.settimeout(15)
            t0 = time.perf_counter()
            proc, err = ctx.children.spawn(["run", "--config", str(config)], f"startup-{run}",
                                           env={"NOTIFY_SOCKET": str(sock_path)})
            try:
                while b"READY=1" not in sock.recv(4096):
                    pass
                took = time.perf_counter() - t0
            finally:
                reap(proc, 15, terminate=True)
        started = log_event(err, "started")
        if run == 0:
            continue  # warm-up: byte-compiles and fills the page cache, as any later service start finds it
        ready.append(took)
        if started and "startup_s" in started:
            logged.append(float(started["startup_s"]))
    worst = max(ready)
    return [Row("start-up", "process start to READY=1 (sd_notify)", f"{statistics.median(ready):.2f} s",
                f"<= {STARTUP_TARGET_S:g} s", worst <= STARTUP_TARGET_S,
                f"median of {len(ready)} (max {worst:.2f} s); interpreter + imports + config + sources; "
                f"startup_s in the log (Agent() to started) median {statistics.median(logged):.3f} s; "
                f"{len(fmts)} sources ({', '.join(fmts)})",
                {"ready_s": ready, "startup_s_logged": logged, "sources": fmts})]


BENCHES: dict[str, Callable[[Ctx], list[Row]]] = {
    "parse": bench_parse,
    "baseline": bench_baseline,
    "e2e": bench_e2e,
    "backlog": bench_backlog,
    "latency": bench_latency,
    "startup": bench_startup,
    "remote": bench_remote,
}
SECTION = {"parse": "parse+map", "baseline": "baseline", "e2e": "end-to-end", "backlog": "backlog",
           "latency": "latency", "startup": "start-up", "remote": "remote"}


# --- report ---------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    return {"nproc": os.cpu_count(), "cpu": cpu, "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "system": platform.platform(),
            "commit": commit + ("+uncommitted changes" if dirty else "")}


def table(rows: list[Row]) -> str:
    head = ("section", "benchmark", "result", "target", "met", "detail")
    cells = [head] + [(r.section, r.name, r.result, r.target,
                       {True: "yes", False: "NO", None: "-"}[r.met], r.detail) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head) - 1)]
    lines = []
    for i, c in enumerate(cells):
        lines.append("  ".join(v.ljust(w) for v, w in zip(c[:-1], widths, strict=False)) + "  " + c[-1])
        if i == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 6)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes and short windows, for development")
    parser.add_argument("--only", action="append", choices=sorted(BENCHES), metavar="NAME",
                        help=f"run only this benchmark (repeatable): {', '.join(BENCHES)}")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (agent logs, stand-in files)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    selected = [name for name in BENCHES if not args.only or name in args.only]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup below on SIGTERM too
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="volt-bench-"))
    children = Children(work)
    ctx = Ctx(children, sizes, work)
    info = machine()
    load_at_start = os.getloadavg()[0]
    rows: list[Row] = []
    started = time.time()
    failed = False
    try:
        for name in selected:
            try:
                rows.extend(BENCHES[name](ctx))
            except Exception as exc:
                failed = True
                traceback.print_exc()
                rows.append(Row(SECTION[name], "error", f"{type(exc).__name__}", met=False, detail=str(exc)[:300]))
            finally:
                children.kill_all()
    finally:
        children.kill_all()
        if args.keep:
            say(f"work dir kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    took = time.time() - started
    header = (f"volt-agent benchmarks{' (--quick)' if args.quick else ''}: {info['nproc']} cores, {info['cpu']}, "
              f"{info['memory_gb']} GB RAM, Python {info['python']}, commit {info['commit']}, took {took:.0f} s, "
              f"load average at start {load_at_start:.2f} (other work on the machine lowers every figure)")
    print(header)
    print(table(rows))
    measured = [r for r in rows if r.met is not None]
    print(f"targets met: {sum(1 for r in measured if r.met)} of {len(measured)}")
    result = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "quick": args.quick, "machine": info,
              "sizes": asdict(sizes), "seconds": took,
              "load_average_at_start": load_at_start, "rows": [asdict(r) for r in rows]}
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    blob = orjson.dumps(result, option=orjson.OPT_INDENT_2)
    (OUT / f"results-{stamp}.json").write_bytes(blob)
    (OUT / "latest.json").write_bytes(blob)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
