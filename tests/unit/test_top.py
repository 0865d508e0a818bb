"""`volt-agent top`'s pure parts: the metrics text the agent renders, read back; rates, quantiles; the screen."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.ops.metrics import AgentMetrics, Registry
from agent.ops.scrape import (
    MetricsFormatError,
    Snapshot,
    Target,
    buckets,
    increase,
    parse_metrics,
    quantile,
    total,
)
from agent.ops.top import (
    SourceRow,
    fmt_bytes,
    fmt_seconds,
    render,
    sender_view,
    source_rows,
    state_lines,
)

ADAPTIVE = ("volt_agent_concurrency_limit", "volt_agent_throttled_total")


def _snapshot(metrics: AgentMetrics, at: float, status: dict | None = None, *, extra: str = "",
              drop: tuple[str, ...] = ()) -> Snapshot:
    """What `top` reads from an agent, taken from a real AgentMetrics registry; `drop` leaves out metrics an older
    agent did not export."""
    text = "".join(line for line in metrics.registry.render().splitlines(True)
                   if not any(name in line for name in drop))
    return Snapshot(at, 1_000_000.0 + at, parse_metrics(text + extra), status or {})


def test_parse_reads_what_the_registry_renders() -> None:
    m = AgentMetrics()
    m.lines_read.labels("kannel").inc(3)
    m.records_rejected.labels("kannel", 'bad "quote"\nand \\ slash').inc()
    m.request_seconds.observe(0.02)
    samples = parse_metrics(m.registry.render())
    assert total(samples, "volt_agent_lines_read_total", source="kannel") == 3
    assert samples["volt_agent_records_rejected_total"] == {
        (("reason", 'bad "quote"\nand \\ slash'), ("source", "kannel")): 1.0}
    assert buckets(samples, "volt_agent_request_duration_seconds")[0.02] == 1
    assert buckets(samples, "volt_agent_request_duration_seconds")[math.inf] == 1


def test_declared_metric_without_samples_is_zero_and_unknown_is_none() -> None:
    samples = parse_metrics(AgentMetrics().registry.render())
    assert total(samples, "volt_agent_records_rejected_total") == 0  # declared, nothing counted yet
    assert total(samples, "volt_agent_no_such_metric") is None  # e.g. one an older agent does not export


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_any_label_value_survives_render_and_parse(value: str) -> None:
    registry = Registry()
    registry.gauge("g", "help", ["path"]).labels(value).set(7)
    assert parse_metrics(registry.render())["g"] == {(("path", value),): 7.0}


@pytest.mark.parametrize("line", ["volt_agent_x{source=kannel} 1", "volt_agent_x 1 2 3", "volt_agent_x abc", "{} 1"])
def test_parse_rejects_malformed_lines(line: str) -> None:
    with pytest.raises(MetricsFormatError):
        parse_metrics(line + "\n")


def test_increase_treats_a_drop_as_a_restart() -> None:
    assert increase(10, 15) == 5
    assert increase(10, 4) == 4
    assert increase(None, 4) is None


def test_quantile_interpolates_within_the_bucket_like_prometheus() -> None:
    before = {0.1: 10.0, 0.5: 10.0, 1.0: 10.0, math.inf: 10.0}
    now = {0.1: 10.0, 0.5: 60.0, 1.0: 110.0, math.inf: 110.0}  # 100 new: 50 in (0.1, 0.5], 50 in (0.5, 1]
    assert quantile(0.5, before, now) == pytest.approx(0.5)
    assert quantile(0.25, before, now) == pytest.approx(0.3)
    assert quantile(0.99, before, now) == pytest.approx(0.99)
    assert quantile(0.5, now, now) is None  # nothing observed in the interval


def test_quantile_in_the_open_bucket_is_the_highest_bound() -> None:
    assert quantile(0.99, {}, {0.5: 1.0, 1.0: 1.0, math.inf: 5.0}) == 1.0


def test_rows_and_sender_from_two_readings() -> None:
    m = AgentMetrics()
    m.lines_read.labels("kannel").inc(100)
    m.records_parsed.labels("kannel").inc(50)
    m.lines_read.labels("webhooks").inc(1)
    m.records_sent.inc(40)
    m.request_seconds.observe(0.004)
    behind = m.file_bytes_behind
    behind.labels("kannel", "/var/log/kannel/access.log").set(2048)
    behind.labels("kannel", "/var/log/kannel/access.log.1").set(1024)
    first = _snapshot(m, 10.0)
    m.lines_read.labels("kannel").inc(300)
    m.records_parsed.labels("kannel").inc(200)
    m.records_rejected.labels("kannel", "invalid JSON").inc(2)
    m.lines_skipped.labels("kannel", "not-a-message").inc(5)
    m.records_sent.inc(120)
    m.records_dead_lettered.inc(3)
    for seconds in [0.02] * 98 + [2.0] * 2:
        m.request_seconds.observe(seconds)
    m.last_success.set(1_000_000.0 + 10.5)
    m.concurrency_limit.set(24)
    m.throttled.inc(7)
    second = _snapshot(m, 12.0, {"sources": {"kannel": {"files": 2}, "webhooks": {"files": 0}}})

    assert source_rows(first, second) == [
        SourceRow("kannel", lines_s=150.0, records_s=100.0, refused=2, skipped=5, behind=3072, files=2),
        SourceRow("webhooks", lines_s=0.0, records_s=0.0, refused=0, skipped=0, behind=0, files=0),
    ]
    v = sender_view(first, second)
    assert (v.accepted_s, v.accepted, v.dead_letters) == (60.0, 160, 3)
    assert v.p50 is not None and 0.01 < v.p50 <= 0.025  # the 0.004 s before the interval does not count
    assert v.p99 == pytest.approx(1.75)  # rank 99 of 100: halfway through the (1, 2.5] bucket
    assert v.last_accepted_age == pytest.approx(1.5)
    assert (v.limit, v.throttled) == (24, 7)
    older = sender_view(first, _snapshot(m, 12.0, drop=ADAPTIVE))
    assert (older.limit, older.throttled) == (None, None)  # an agent without adaptive concurrency
    assert source_rows(None, second)[0].lines_s is None  # one reading: no rate yet


def test_files_without_status_come_from_the_backlog_gauge() -> None:
    m = AgentMetrics()
    m.lines_read.labels("a").inc()
    m.file_bytes_behind.labels("a", "/x").set(0)
    assert source_rows(None, _snapshot(m, 1.0))[0].files == 1


def test_state_lines_say_why_data_is_held() -> None:
    assert state_lines({"ready": True, "reason": "ready", "held": None}) == ["state: ready"]
    assert state_lines({"ready": False, "reason": "Volt rejects the token",
                        "held": "records held: Volt answered HTTP 401 (see the log for what to fix)"}) == [
        "HOLDING DATA: Volt rejects the token", "  records held: Volt answered HTTP 401 (see the log for what to fix)"]
    assert state_lines({"ready": False, "reason": "sources not open yet", "held": None}) == [
        "state: not ready: sources not open yet"]
    assert state_lines({})[0].startswith("state: -")


def test_screen_fits_80_columns_and_shows_new_metrics_when_present() -> None:
    m = AgentMetrics()
    m.lines_read.labels("a-source-name-far-too-long-for-the-column-it-gets").inc()
    status = {"version": "0.1.0", "pid": 42, "uptime_s": 3725.0, "ready": True, "reason": "ready"}
    plain = render(_snapshot(m, 1.0, drop=ADAPTIVE), _snapshot(m, 2.0, status, drop=ADAPTIVE),
                   "/var/lib/volt-agent/kannel/control.sock")
    assert all(len(line) <= 80 for line in plain)
    assert plain[0] == "volt-agent 0.1.0  pid 42  up 1h02m  /var/lib/volt-agent/kannel/control.sock"
    assert any(line.startswith("a-source-name-far-too-l… ") for line in plain)
    sender = "\n".join(plain[plain.index("SENDER"):])
    assert "limit                 -" in sender and "throttled             -" in sender

    extra = ("# TYPE volt_agent_concurrency_limit gauge\nvolt_agent_concurrency_limit 8\n"
             "# TYPE volt_agent_throttled_total counter\nvolt_agent_throttled_total 12\n")
    adaptive = "\n".join(render(None, _snapshot(m, 2.0, status, extra=extra, drop=ADAPTIVE), "x"))
    assert "limit                 8" in adaptive and "throttled            12" in adaptive


def test_formats() -> None:
    assert [fmt_bytes(v) for v in (0, 1023, 1536, 5 * 1024**3)] == ["0 B", "1023 B", "1.5 KiB", "5.0 GiB"]
    assert [fmt_seconds(v) for v in (None, 0.0042, 2.5, 75, 7300)] == ["-", "4 ms", "2.5 s", "1m15s", "2h01m"]


@pytest.mark.parametrize("url", ["http://127.0.0.1:abc", "http://127.0.0.1:99999", "http://127.0.0.1:-5",
                                 "http://[::1", "ftp://127.0.0.1:9100", "http://", "http://user:pw@127.0.0.1:9100"])
def test_a_url_top_cannot_use_is_refused_when_given_not_at_the_first_request(url: str) -> None:
    with pytest.raises(ValueError, match=r"expected http://host:port"):
        Target(url=url)


def test_a_url_top_can_use_names_the_agent_without_its_metrics_path() -> None:
    assert Target(url="127.0.0.1:9100/metrics").where == "http://127.0.0.1:9100"
    assert Target(url="http://[::1]:9100").where == "http://[::1]:9100"


def test_a_long_reason_is_wrapped_to_the_width_not_cut() -> None:
    status = {"ready": False, "reason": "Volt has accepted nothing for 60 s while records are waiting", "held": None}
    screen = render(None, _snapshot(AgentMetrics(), 1.0, status), "x", width=60)
    state = screen[1:screen.index("")]
    assert all(len(line) <= 60 and not line.endswith("…") for line in state), state
    assert " ".join(part.strip() for part in state) == f"state: not ready: {status['reason']}"
