"""Reading a running agent from outside: fetch its ops routes, parse Prometheus text, derive rates and quantiles.

`volt-agent top` is built on this. Parsing and arithmetic are pure functions over text and numbers, so they are
tested without an agent; only `Target` does I/O (stdlib http.client: `top` needs no event loop).
"""

from __future__ import annotations

import http.client
import math
import os
import re
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

import orjson

from agent.ops.control import path_problem

Labels = tuple[tuple[str, str], ...]  # sorted (name, value) pairs: hashable, order-free
Samples = dict[str, dict[Labels, float]]  # sample name -> label set -> value

_SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(?:\s+\S+)?\s*$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


class MetricsFormatError(ValueError):
    """A line of the metrics text is not Prometheus text format 0.0.4."""


def _labels(text: str, line: str) -> Labels:
    pairs: list[tuple[str, str]] = []
    pos, body = 0, text[1:-1]
    while pos < len(body):
        m = _LABEL.match(body, pos)
        if m is None:
            raise MetricsFormatError(f"bad labels in metrics line: {line!r}")
        value = re.sub(r"\\.", lambda e: _UNESCAPE.get(e.group(0), e.group(0)), m.group(2))
        pairs.append((m.group(1), value))
        pos = m.end()
    return tuple(sorted(pairs))


def parse_metrics(text: str) -> Samples:
    """Prometheus text (as the agent renders it) into samples; a metric with a TYPE line but no sample yet is
    present with no series (so it reads as 0, where a metric this agent does not export reads as None)."""
    samples: Samples = {}
    for raw in text.split("\n"):  # only \n ends a line: a label value may hold \x1e or \u2028
        line = raw.strip(" \t\r")
        if line.startswith("# TYPE "):  # declared: a counter nothing has counted yet is 0, not missing
            _, _, name, kind = [*line.split(), ""][:4]
            suffixes = ("_bucket", "_sum", "_count") if kind == "histogram" else ("",)
            for suffix in suffixes:
                samples.setdefault(name + suffix, {})
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if m is None:
            raise MetricsFormatError(f"not a metrics line: {line!r}")
        try:
            value = float(m.group(3))
        except ValueError:
            raise MetricsFormatError(f"bad value in metrics line: {line!r}") from None
        labels = _labels(m.group(2), line) if m.group(2) else ()
        samples.setdefault(m.group(1), {})[labels] = value
    return samples


def total(samples: Samples, name: str, **match: str) -> float | None:
    """The sum of `name` over the series whose labels include `match`; None if the agent exports no `name`."""
    series = samples.get(name)
    if series is None:
        return None
    want = set(match.items())
    return sum(v for labels, v in series.items() if want <= set(labels))


def label_values(samples: Samples, name: str, label: str) -> set[str]:
    return {value for labels in samples.get(name, {}) for key, value in labels if key == label}


def count_series(samples: Samples, name: str, **match: str) -> int:
    want = set(match.items())
    return sum(1 for labels in samples.get(name, {}) if want <= set(labels))


def increase(before: float | None, now: float | None) -> float | None:
    """How much a counter grew; a counter that went down was reset (the agent restarted): all of it is new."""
    if before is None or now is None:
        return None
    return now - before if now >= before else now


def buckets(samples: Samples, name: str) -> dict[float, float]:
    """A histogram's cumulative bucket counts by upper bound, summed over its label sets."""
    out: dict[float, float] = {}
    for labels, value in samples.get(name + "_bucket", {}).items():
        le = dict(labels).get("le")
        if le is not None:
            bound = float(le)
            out[bound] = out.get(bound, 0.0) + value
    return out


def quantile(q: float, before: dict[float, float], now: dict[float, float]) -> float | None:
    """The q-quantile of what was observed between two readings of a histogram, as Prometheus's
    histogram_quantile estimates it (linear within a bucket); None if nothing was observed."""
    bounds = sorted(now)
    counts = [now[b] - before.get(b, 0.0) for b in bounds]
    if any(c < 0 for c in counts):  # reset (the agent restarted): all of it is new
        counts = [now[b] for b in bounds]
    if not bounds or bounds[-1] != math.inf or counts[-1] <= 0:
        return None
    rank = q * counts[-1]
    lower, below = 0.0, 0.0
    for bound, cumulative in zip(bounds, counts, strict=True):
        if cumulative >= rank and cumulative > below:
            if bound == math.inf:
                return lower  # beyond the last finite bucket: its bound is the best estimate
            return lower + (bound - lower) * (rank - below) / (cumulative - below)
        lower, below = bound, cumulative
    return lower


@dataclass(slots=True)
class Snapshot:
    """One reading of an agent: when (monotonic and wall clock), its metrics, and /status if it has one."""

    at: float
    wall: float
    samples: Samples
    status: dict[str, Any] = field(default_factory=dict)


class AgentUnreachable(Exception):
    """No agent answered where `top` looked; the message says where and what to do."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(os.fsdecode(self.unix_path))
        except OSError:
            sock.close()
            raise
        self.sock = sock


def _http_url(url: str) -> SplitResult | None:
    """`url` split, if it is an http:// address with a host, a port that is a number in range (else http.client
    raises at the first request) and no user:password (the agent asks for none; it would be shown in messages)."""
    try:
        parts = urlsplit(url if "://" in url else "http://" + url)
        _ = parts.port  # raises for a port that is no number or out of range
    except ValueError:  # that, or an unclosed [
        return None
    return parts if parts.scheme == "http" and parts.hostname and parts.username is None else None


class Target:
    """Where an agent answers: its control socket or an http:// address (metrics.listen)."""

    def __init__(self, *, socket_path: Path | None = None, url: str | None = None, timeout: float = 3.0) -> None:
        if (socket_path is None) == (url is None):
            raise ValueError("a Target is a socket path or a URL")
        self.socket_path = socket_path
        self.timeout = timeout
        self.base = ""
        if url is not None:
            parts = _http_url(url)
            if parts is None:
                raise ValueError(f"{url!r}: expected http://host:port (the agent's metrics.listen)")
            self.base = parts.path.rstrip("/").removesuffix("/metrics")
            self._netloc = parts.netloc
        self.where = str(socket_path) if socket_path is not None else f"http://{self._netloc}{self.base}"

    def _connection(self) -> http.client.HTTPConnection:
        if self.socket_path is not None:
            return _UnixConnection(self.socket_path, self.timeout)
        return http.client.HTTPConnection(self._netloc, timeout=self.timeout)

    def get(self, route: str) -> tuple[int, bytes]:
        """(status, body) of GET `route`; AgentUnreachable, saying where and why, if no agent answers."""
        if self.socket_path is not None and (problem := path_problem(self.socket_path)):
            raise AgentUnreachable(problem)
        conn = self._connection()
        try:
            conn.request("GET", self.base + route)
            resp = conn.getresponse()
            return resp.status, resp.read()
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            why = (f"no control socket at {self.where}" if isinstance(exc, FileNotFoundError)
                   else f"nothing answers on {self.where}"
                   + (" (a socket left by an agent that stopped)" if self.socket_path else ""))
            raise AgentUnreachable(f"no agent is running: {why}") from None
        except PermissionError:
            raise AgentUnreachable(f"{self.where}: permission denied; the control socket is for the agent's user "
                                   "(try: sudo -u volt-agent volt-agent top …, or as root)") from None
        except TimeoutError:
            raise AgentUnreachable(f"{self.where} did not answer within {self.timeout:g} s") from None
        except (OSError, http.client.HTTPException) as exc:
            raise AgentUnreachable(f"{self.where}: {exc}") from None
        finally:
            conn.close()

    def snapshot(self) -> Snapshot:
        """/metrics and /status now (/status may be missing: the numbers are all in /metrics)."""
        status, body = self.get("/metrics")
        at, wall = time.monotonic(), time.time()
        if status != 200:
            raise AgentUnreachable(f"{self.where}/metrics answered HTTP {status}: "
                                   f"{body[:200].decode(errors='replace')}")
        try:
            samples = parse_metrics(body.decode("utf-8", "replace"))
        except MetricsFormatError as exc:
            raise AgentUnreachable(f"{self.where}/metrics is no agent's metrics: {exc}") from None
        code, body = self.get("/status")
        try:
            info = orjson.loads(body) if code == 200 else {}
        except orjson.JSONDecodeError:
            info = {}
        return Snapshot(at, wall, samples, info if isinstance(info, dict) else {})
