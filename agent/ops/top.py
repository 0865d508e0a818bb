"""`volt-agent top`: a live view of a running agent, redrawn every second, readable in 80 columns over SSH.

Rates are differences between two readings of the agent's counters (`--once` takes two, `--interval` apart).
The screen is a plain ANSI redraw (home, draw, clear to the end): the view is one table and a few lines, so a
screen library would add a dependency and nothing an operator would see.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import sys
import termios
import textwrap
import time
import tty
from dataclasses import dataclass
from typing import Any, TextIO

from agent.ops.scrape import (
    AgentUnreachable,
    Snapshot,
    Target,
    buckets,
    count_series,
    increase,
    label_values,
    quantile,
    total,
)

P = "volt_agent_"
RTT = P + "request_duration_seconds"
DASH = "-"


@dataclass(slots=True, frozen=True)
class SourceRow:
    name: str
    lines_s: float | None
    records_s: float | None
    refused: float
    skipped: float
    behind: float
    files: int


@dataclass(slots=True, frozen=True)
class SenderView:
    accepted_s: float | None
    accepted: float | None
    in_flight: float | None
    limit: float | None  # volt_agent_concurrency_limit, exported by agents with adaptive concurrency
    p50: float | None  # seconds, over the interval
    p99: float | None
    retries: float | None
    throttled: float | None  # volt_agent_throttled_total, likewise
    dead_letters: float | None
    token_refused: float | None
    queue_records: float | None
    queue_bytes: float | None
    last_accepted_age: float | None  # seconds; None: nothing accepted since the agent started


def _rate(prev: Snapshot | None, cur: Snapshot, name: str, **match: str) -> float | None:
    if prev is None or cur.at <= prev.at:
        return None
    grew = increase(total(prev.samples, name, **match), total(cur.samples, name, **match))
    return None if grew is None else grew / (cur.at - prev.at)


def source_rows(prev: Snapshot | None, cur: Snapshot) -> list[SourceRow]:
    """One row per source, in name order; rates are None until there are two readings."""
    s = cur.samples
    files = {name: info.get("files") for name, info in (cur.status.get("sources") or {}).items()
             if isinstance(info, dict)}
    names = label_values(s, P + "lines_read_total", "source") | set(files)
    return [
        SourceRow(
            name=name,
            lines_s=_rate(prev, cur, P + "lines_read_total", source=name),
            records_s=_rate(prev, cur, P + "records_parsed_total", source=name),
            refused=total(s, P + "records_rejected_total", source=name) or 0.0,
            skipped=total(s, P + "lines_skipped_total", source=name) or 0.0,
            behind=total(s, P + "file_bytes_behind", source=name) or 0.0,
            # /status counts open files; without it, the files that have a backlog gauge
            files=int(files.get(name) or count_series(s, P + "file_bytes_behind", source=name)),
        )
        for name in sorted(names)
    ]


def sender_view(prev: Snapshot | None, cur: Snapshot) -> SenderView:
    s = cur.samples
    before = buckets(prev.samples, RTT) if prev is not None else None
    now = buckets(s, RTT)
    last = total(s, P + "last_success_timestamp_seconds")
    return SenderView(
        accepted_s=_rate(prev, cur, P + "records_sent_total"),
        accepted=total(s, P + "records_sent_total"),
        in_flight=total(s, P + "in_flight_requests"),
        limit=total(s, P + "concurrency_limit"),
        p50=quantile(0.5, before, now) if before is not None else None,
        p99=quantile(0.99, before, now) if before is not None else None,
        retries=total(s, P + "records_retried_total"),
        throttled=total(s, P + "throttled_total"),
        dead_letters=total(s, P + "records_dead_lettered_total"),
        token_refused=total(s, P + "token_rejected_total"),
        queue_records=total(s, P + "queue_records"),
        queue_bytes=total(s, P + "queue_bytes"),
        last_accepted_age=max(0.0, cur.wall - last) if last else None,
    )


def state_lines(status: dict[str, object]) -> list[str]:
    """Whether the agent is ready, and the reason when it holds data (token refused, endpoint wrong)."""
    if not status:
        return ["state: - (this agent serves no /status)"]
    reason = str(status.get("reason") or "")
    held = status.get("held")
    if held:
        lines = [f"HOLDING DATA: {reason or held}"]
        return [*lines, f"  {held}"] if reason and held != reason else lines
    return ["state: ready"] if status.get("ready") else [f"state: not ready: {reason}"]


# -- formatting ---------------------------------------------------------------------------------------------


def fmt_rate(value: float | None) -> str:
    if value is None:
        return DASH
    if value >= 10_000:
        return f"{value / 1000:.1f}k"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def fmt_count(value: float | None) -> str:
    if value is None:
        return DASH
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    return f"{value / 1000:.1f}k" if value >= 100_000 else str(int(value))


def fmt_bytes(value: float | None) -> str:
    if value is None:
        return DASH
    units = ("B", "KiB", "MiB", "GiB")
    step = 0
    while value >= 1024 and step < len(units) - 1:
        value /= 1024
        step += 1
    return f"{int(value)} B" if step == 0 else f"{value:.1f} {units[step]}"


def fmt_seconds(value: float | None) -> str:
    if value is None:
        return DASH
    if value < 1:
        return f"{value * 1000:.0f} ms" if value >= 0.001 else f"{value * 1000:.2f} ms"
    if value < 60:
        return f"{value:.1f} s"
    minutes, seconds = divmod(int(value), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def _columns(width: int, names: list[str]) -> tuple[int, str]:
    name_w = max(12, min(max((len(n) for n in names), default=12), width - 56))
    head = f"{'SOURCE':<{name_w}} {'LINES/S':>8} {'RECORDS/S':>9} {'REFUSED':>8} {'SKIPPED':>8} {'BEHIND':>10} " \
           f"{'FILES':>5}"
    return name_w, head


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def _grid(cells: list[tuple[str, str]], per_line: int = 3) -> list[str]:
    """Label/value cells, three to a line (74 columns); the age of the last success is text, so left-aligned."""
    shown = [f"{label:<13} {value:>9}" if label != "last accepted" else f"{label:<13} {value}"
             for label, value in cells]
    return ["  " + "  ".join(shown[i:i + per_line]).rstrip() for i in range(0, len(shown), per_line)]


def render(prev: Snapshot | None, cur: Snapshot, where: str, width: int = 80) -> list[str]:
    """The whole screen as lines no wider than `width`."""
    st = cur.status
    who = "  ".join([f"volt-agent {st['version']}" if "version" in st else "volt-agent",
                     *([f"pid {st['pid']}"] if "pid" in st else []),
                     *([f"up {fmt_seconds(float(st['uptime_s']))}"] if "uptime_s" in st else [])])
    room = max(2, width - len(who) - 2)
    if len(where) > room:  # keep the end of a long path: the state dir's name tells instances apart
        where = "…" + where[len(where) - room + 1:]
    rows = source_rows(prev, cur)
    name_w, head = _columns(width, [r.name for r in rows])
    # the reason is the line an operator came for: wrapped, never cut
    state = [part for line in state_lines(st) for part in textwrap.wrap(line, width, subsequent_indent="    ")]
    lines = [f"{who}  {where}", *state, "", head]
    for r in rows:
        lines.append(f"{_cut(r.name, name_w):<{name_w}} {fmt_rate(r.lines_s):>8} {fmt_rate(r.records_s):>9} "
                     f"{fmt_count(r.refused):>8} {fmt_count(r.skipped):>8} {fmt_bytes(r.behind):>10} {r.files:>5}")
    v = sender_view(prev, cur)
    age = "never" if v.last_accepted_age is None else fmt_seconds(v.last_accepted_age) + " ago"
    lines += ["", "SENDER", *_grid([
        ("accepted/s", fmt_rate(v.accepted_s)), ("accepted", fmt_count(v.accepted)), ("last accepted", age),
        ("in flight", fmt_count(v.in_flight)), ("limit", fmt_count(v.limit)),
        ("queue records", fmt_count(v.queue_records)),
        ("RTT p50", fmt_seconds(v.p50)), ("RTT p99", fmt_seconds(v.p99)), ("queue bytes", fmt_bytes(v.queue_bytes)),
        ("retries", fmt_count(v.retries)), ("throttled", fmt_count(v.throttled)),
        ("dead letters", fmt_count(v.dead_letters)),
        ("token refused", fmt_count(v.token_refused)),
    ])]
    return [_cut(line, width) for line in lines]


# -- the terminal -------------------------------------------------------------------------------------------


def _width() -> int:
    return shutil.get_terminal_size((80, 24)).columns


def _exit_on(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


class _Screen:
    """The alternate screen, no cursor, keys without Enter; all restored on exit (also on Ctrl-C, and on SIGTERM or
    SIGHUP, which would otherwise end the process with the user's terminal still in that state)."""

    SIGNALS = (signal.SIGTERM, signal.SIGHUP)

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._tty_attrs: list | None = None
        self._handlers: list[tuple[int, Any]] = []

    def __enter__(self) -> _Screen:
        self._handlers = [(sig, signal.signal(sig, _exit_on)) for sig in self.SIGNALS]
        if sys.stdin.isatty():
            self._tty_attrs = termios.tcgetattr(sys.stdin)
            tty.setcbreak(sys.stdin)
        self.out.write("\x1b[?1049h\x1b[?25l")
        return self

    def __exit__(self, *exc: object) -> None:
        self.out.write("\x1b[?25h\x1b[?1049l")
        self.out.flush()
        if self._tty_attrs is not None:
            termios.tcsetattr(sys.stdin, termios.TCSADRAIN, self._tty_attrs)
        for sig, handler in self._handlers:
            signal.signal(sig, handler)

    def draw(self, lines: list[str]) -> None:
        size = shutil.get_terminal_size((80, 24))
        shown = [_cut(line, size.columns) for line in lines[: size.lines]]
        self.out.write("\x1b[H" + "\x1b[K\r\n".join(shown) + "\x1b[K\x1b[J")
        self.out.flush()

    def quit_pressed(self, timeout: float) -> bool:
        """Wait up to `timeout` for a key; True if it was q."""
        if self._tty_attrs is None:
            time.sleep(timeout)
            return False
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([sys.stdin], [], [], left)
            if ready and os.read(sys.stdin.fileno(), 1) in (b"q", b"Q"):
                return True
        return False


def once(target: Target, interval: float, out: TextIO) -> int:
    """Two readings `interval` apart, printed as one screen (for scripts and tests)."""
    first = target.snapshot()
    time.sleep(interval)
    cur = target.snapshot()
    out.write("\n".join(render(first, cur, target.where, _width() if out.isatty() else 80)) + "\n")
    return 0


def live(target: Target, interval: float, out: TextIO) -> int:
    """Redraw every `interval` until q or Ctrl-C; an agent that goes away is shown as such and looked for again."""
    prev = target.snapshot()  # nobody there at all: the caller says so and exits
    with contextlib.suppress(KeyboardInterrupt), _Screen(out) as screen:
        lines = render(None, prev, target.where, _width())
        while True:
            screen.draw([*lines, "", "q quits"])
            if screen.quit_pressed(interval):
                return 0
            try:
                cur = target.snapshot()
            except AgentUnreachable as exc:
                lines = [*textwrap.wrap(f"volt-agent top: {exc}", _width()), f"looking again every {interval:g} s"]
                prev = None
                continue
            lines = render(prev, cur, target.where, _width())
            prev = cur
    return 0
