"""Prometheus-style metrics: a tiny registry with counters, gauges and histograms, rendered as text.

The hot path only does `child.inc()` (an attribute add), so counting every line costs almost nothing.
Children for a label set are created once and cached by the caller.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Iterator


def _fmt(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _labels(names: tuple[str, ...], values: tuple[str, ...], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class _Value:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1) -> None:
        self.value += amount

    def set(self, value: float) -> None:
        self.value = value


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, labels: Iterable[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.label_names = tuple(labels)
        self._children: dict[tuple[str, ...], _Value] = {}
        if not self.label_names:  # exported as 0 from the start: an alert on "no increase" needs a series
            self.labels()

    def labels(self, *values: str) -> _Value:
        """The child for these label values, created on first use; callers keep it for the hot path."""
        child = self._children.get(values)
        if child is None:
            if len(values) != len(self.label_names):
                raise ValueError(f"{self.name} takes labels {self.label_names}, got {values}")
            child = self._children[values] = self._new_child()
        return child

    def _new_child(self) -> _Value:
        return _Value()

    def inc(self, amount: float = 1) -> None:
        self.labels().inc(amount)

    def set(self, value: float) -> None:
        self.labels().set(value)

    def total(self) -> float:
        """The sum over every label set (the agent's status line)."""
        return sum(child.value for child in self._children.values())

    def value(self, *values: str) -> float:
        child = self._children.get(values)
        return child.value if child is not None else 0.0

    def samples(self) -> Iterable[str]:
        for values, child in sorted(self._children.items()):
            yield f"{self.name}{_labels(self.label_names, values)} {_fmt(child.value)}"

    def render(self) -> str:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]
        lines.extend(self.samples())
        return "\n".join(lines)


class Counter(_Metric):
    kind = "counter"


class Gauge(_Metric):
    kind = "gauge"

    def __init__(
        self,
        name: str,
        help_text: str,
        labels: Iterable[str] = (),
        collect: Callable[[], Iterable[tuple[tuple[str, ...], float]]] | None = None,
    ) -> None:
        super().__init__(name, help_text, labels)
        self._collect = collect

    def collect_from(self, collect: Callable[[], Iterable[tuple[tuple[str, ...], float]]]) -> None:
        """Read the value when scraped, from the object that owns it (the queue, the file servers)."""
        self._collect = collect

    def samples(self) -> Iterable[str]:
        if self._collect is None:
            yield from super().samples()
            return
        for values, value in sorted(self._collect()):
            yield f"{self.name}{_labels(self.label_names, values)} {_fmt(value)}"


class _HistogramChild(_Value):
    __slots__ = ("buckets", "counts", "sum")

    def __init__(self, buckets: tuple[float, ...]) -> None:
        super().__init__()
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value
        self.value += 1


class Histogram(_Metric):
    kind = "histogram"
    DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

    def __init__(self, name: str, help_text: str, labels: Iterable[str] = (), buckets: Iterable[float] = ()):
        self.buckets = tuple(buckets) or self.DEFAULT_BUCKETS  # before the first child is made
        super().__init__(name, help_text, labels)

    def _new_child(self) -> _HistogramChild:
        return _HistogramChild(self.buckets)

    def observe(self, value: float) -> None:
        self.labels().observe(value)  # type: ignore[attr-defined]

    def samples(self) -> Iterable[str]:
        for values, child in sorted(self._children.items()):
            assert isinstance(child, _HistogramChild)
            running = 0
            for bound, count in zip((*self.buckets, math.inf), child.counts, strict=True):
                running += count
                le = f'le="{_fmt(bound)}"'
                yield f"{self.name}_bucket{_labels(self.label_names, values, le)} {running}"
            yield f"{self.name}_sum{_labels(self.label_names, values)} {_fmt(child.sum)}"
            yield f"{self.name}_count{_labels(self.label_names, values)} {_fmt(child.value)}"


# 1 ms to 30 s, finer between 10 ms and 2 s, where the RTT to a distant Volt lies and the concurrency limit follows it
RTT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0,
               3.0, 5.0, 10.0, 30.0)


class Registry:
    """Holds every metric of one agent process and renders them in Prometheus text format 0.0.4."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}

    def _add(self, metric: _Metric) -> _Metric:
        if metric.name in self._metrics:
            raise ValueError(f"metric {metric.name} registered twice")
        self._metrics[metric.name] = metric
        return metric

    def counter(self, name: str, help_text: str, labels: Iterable[str] = ()) -> Counter:
        return self._add(Counter(name, help_text, labels))  # type: ignore[return-value]

    def gauge(self, name: str, help_text: str, labels: Iterable[str] = (), collect=None) -> Gauge:
        return self._add(Gauge(name, help_text, labels, collect))  # type: ignore[return-value]

    def histogram(self, name: str, help_text: str, labels: Iterable[str] = (), buckets=()) -> Histogram:
        return self._add(Histogram(name, help_text, labels, buckets))  # type: ignore[return-value]

    def get(self, name: str) -> _Metric:
        return self._metrics[name]

    def __iter__(self) -> Iterator[_Metric]:
        return iter(self._metrics.values())

    def render(self) -> str:
        return "\n".join(m.render() for m in self._metrics.values()) + "\n"


class AgentMetrics:
    """Every metric the agent exports, in one place, so names stay consistent and documented."""

    def __init__(self) -> None:
        r = self.registry = Registry()
        p = "volt_agent_"
        self.lines_read = r.counter(p + "lines_read_total", "Lines read from source files.", ["source"])
        self.bytes_read = r.counter(p + "read_bytes_total", "Bytes read from source files.", ["source"])
        self.records_parsed = r.counter(
            p + "records_parsed_total", "Records produced by parsing and mapping.", ["source"]
        )
        self.records_rejected = r.counter(
            p + "records_rejected_total",
            "Lines or records refused by a parser, mapper or the contract check.",
            ["source", "reason"],
        )
        self.lines_skipped = r.counter(
            p + "lines_skipped_total",
            "Lines deliberately skipped (not message events, oversize, duplicates).",
            ["source", "reason"],
        )
        self.invalid_bytes = r.counter(
            p + "invalid_bytes_lines_total", "Lines with bytes invalid in the source encoding.", ["source"]
        )
        self.dropped_bytes = r.counter(
            p + "dropped_bytes_total",
            "Bytes of rotated or deleted files released unread after rotate_wait.",
            ["source"],
        )
        self.file_bytes_behind = r.gauge(
            p + "file_bytes_behind", "Bytes of a followed file not yet acknowledged.", ["source", "path"]
        )
        self.records_sent = r.counter(p + "records_sent_total", "Records accepted by Volt (2xx).")
        self.records_retried = r.counter(p + "records_retried_total", "Send attempts that will be retried.")
        self.records_dead_lettered = r.counter(
            p + "records_dead_lettered_total", "Records Volt refused permanently, written to the dead-letter file."
        )
        self.http_responses = r.counter(
            p + "http_responses_total", "HTTP responses from Volt by status class.", ["code_class"]
        )
        self.send_errors = r.counter(
            p + "send_errors_total", "Requests that got no HTTP answer (connection, timeout).", ["kind"]
        )
        self.token_rejected = r.counter(p + "token_rejected_total", "Responses 401/403: Volt refused the token.")
        self.request_seconds = r.histogram(p + "request_duration_seconds", "Time of one POST to Volt (the RTT).",
                                           buckets=RTT_BUCKETS)
        self.throttled = r.counter(
            p + "throttled_total", "Answers asking the agent to slow down: 429, and 503 while other requests succeed."
        )
        self.concurrency_limit = r.gauge(p + "concurrency_limit", "Requests to Volt allowed in flight now.")
        self.queue_records = r.gauge(p + "queue_records", "Records waiting to be sent.")
        self.queue_bytes = r.gauge(p + "queue_bytes", "Encoded bytes of records waiting to be sent.")
        self.in_flight = r.gauge(p + "in_flight_requests", "Requests to Volt under way.")
        self.last_success = r.gauge(
            p + "last_success_timestamp_seconds", "Unix time of the last record Volt accepted."
        )
        self.checkpoint_writes = r.counter(p + "checkpoint_writes_total", "Checkpoint files written.")
        self.files_open = r.gauge(p + "files_open", "Files being followed.")
