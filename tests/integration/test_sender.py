"""The sender end to end: the agent as a subprocess against the real stand-in, with each fault injected.

What must hold through every fault: no record lost, per-id order as written (under concurrency),
dead letters exactly the refused records, the queue within its bounds, and a clean stop on SIGTERM.
"""

from __future__ import annotations

import random
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from email.utils import formatdate
from pathlib import Path

import orjson
import pytest

from agent import __version__
from tests.conftest import ROOT, TOKEN, AgentProcess, StandInProcess, free_port, read_jsonl, wait_for, write_config


def _record(rid: str, seq: int) -> dict:
    return {"id": rid, "provider": "smpp", "status": "sent", "segment_count": seq}


def _interleaved(ids: int, per_id: int, seed: int = 5) -> list[dict]:
    """`ids` x `per_id` records, ids shuffled together while each id keeps its own sequence 1..per_id."""
    rng = random.Random(seed)
    slots = [f"m-{i:03d}" for i in range(ids) for _ in range(per_id)]
    rng.shuffle(slots)
    seen: dict[str, int] = defaultdict(int)
    out = []
    for rid in slots:
        seen[rid] += 1
        out.append(_record(rid, seen[rid]))
    return out


def _write(path: Path, records: list[dict], mode: str = "wb") -> None:
    with path.open(mode) as fh:
        fh.write(b"".join(orjson.dumps(r) + b"\n" for r in records))


def _by_id(records: list[dict]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = defaultdict(list)
    for r in records:
        out[r["id"]].append(r["segment_count"])
    return dict(out)


class Run:
    """One agent subprocess following one JSONL file, with its metrics endpoint on a free port.

    The request timeout is 30 s unless `volt` says otherwise: on a loaded test machine a short timeout would
    add at-least-once duplicates (a late answer to a request already retried) to tests about other things.
    """

    def __init__(self, tmp: Path, standin: StandInProcess | None, records: list[dict] | None = None, *,
                 volt: str = "", extra: str = "", endpoint: str | None = None, env: dict | None = None,
                 name: str = "agent") -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        self.log = tmp / "app.jsonl"
        if records is not None:
            _write(self.log, records)
        self.state = tmp / "state"
        self.dead = self.state / "dead-letter.jsonl"
        self.metrics_port = free_port()
        sources = f"""  - name: app
    format: volt-jsonl
    paths: ["{self.log}"]
    start_at: beginning
    poll_interval: 0.05
"""
        self.config = write_config(
            tmp / f"{name}.yaml", endpoint=endpoint or (standin.url if standin else ""), sources=sources,
            state_dir=self.state, volt="  timeout: 30\n" + volt,
            extra=f"metrics:\n  listen: 127.0.0.1:{self.metrics_port}\n{extra}")
        self.agent = AgentProcess(self.config, tmp, env=env, name=name)
        self.agent.wait_started()

    def metrics(self) -> dict[str, float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        return {k: float(v) for k, v in re.findall(r"^(\S+) (\S+)$", text, re.M)}

    def committed(self) -> int:
        data = orjson.loads((self.state / "checkpoints.json").read_bytes())
        (entry,) = [f for f in data["files"] if f["path"] == str(self.log)]
        return entry["offset"]


def _arrival_times(standin: StandInProcess) -> dict[str, list[float]]:
    out: dict[str, list[float]] = defaultdict(list)
    for line in standin.arrivals.read_text().splitlines():
        t, rid = line.split(" ", 1)
        out[rid].append(float(t))
    return out


def test_outage_keeps_the_queue_bounded_probes_one_at_a_time_and_loses_nothing(tmp_path, standin):
    records = _interleaved(ids=60, per_id=5)
    standin.faults({"status": 503, "delay": 0.2})
    run = Run(tmp_path, standin, records, volt="  concurrency: 4\n", extra="queue:\n  max_records: 20\n")
    try:
        wait_for(lambda: standin.stats()["requests"] >= 4, 20, what="first requests during the outage")
        time.sleep(1.0)  # the first wave (up to `concurrency` requests in flight when the outage began) is over
        before, t0 = standin.stats()["requests"], time.monotonic()
        peak = 0.0
        while time.monotonic() - t0 < 2.5:
            m = run.metrics()
            peak = max(peak, m["volt_agent_queue_records"])
            assert m.get("volt_agent_records_sent_total", 0) == 0
            time.sleep(0.1)
        probes, window = standin.stats()["requests"] - before, time.monotonic() - t0
        # each answer takes >= 0.2 s, so one prober cannot start more than window/0.2 + 1 requests;
        # four independent retriers would start about four times as many
        assert probes <= window / 0.2 + 1, f"{probes} requests in {window:.1f} s during the outage"
        assert 0 < peak <= 20
        assert run.committed() == 0, "nothing is acknowledged during the outage"

        standin.faults({"clear": True})
        wait_for(lambda: len(standin.records()) >= len(records), 60, what="all records after the outage")
        assert _by_id(standin.records()) == _by_id(records)
        wait_for(lambda: run.committed() == run.log.stat().st_size, 10, what="checkpoint at the end of the file")
    finally:
        assert run.agent.stop() == 0, run.agent.logs()
    peaks = re.findall(r"msg=sender_stopped .*queue_peak_records=(\d+)", run.agent.logs())
    assert peaks and int(peaks[0]) <= 20, run.agent.logs()
    assert read_jsonl(run.dead) == []


def test_per_id_order_holds_under_concurrency_and_random_delays(tmp_path, standin):
    records = _interleaved(ids=80, per_id=5, seed=11)
    standin.faults({"delay": 0.03, "delay_jitter": True})
    run = Run(tmp_path, standin, records, volt="  concurrency: 8\n")
    try:
        wait_for(lambda: len(standin.records()) >= len(records), 60, what="all records")
        got = standin.records()
        assert len(got) == len(records)
        assert _by_id(got) == _by_id(records), run.agent.logs()  # for every id: arrival order == written order
        assert got != records, "with 8 workers and random delays the global order should differ"
        stats = standin.stats()
        assert stats["user_agent"] == f"volt-agent/{__version__}"
        assert stats["connections"] <= 8, "keep-alive: one connection per worker, reused"
    finally:
        assert run.agent.stop() == 0, run.agent.logs()


TRANSIENT_FAULTS = {
    "503_burst": ({"status": 503, "count": 12}, ""),
    "429_retry_after": ({"status": 429, "count": 4, "retry_after": "1"}, ""),
    "slow_past_timeout": ({"delay": 1.2, "delay_count": 3}, "  timeout: 0.4\n"),
    "dropped_connections": ({"drop": 4}, ""),
    "401_for_a_while": ({"status": 401, "seconds": 2}, ""),
    "308_redirect": ({"status": 308, "seconds": 1}, ""),
    "404_wrong_path": ({"status": 404, "seconds": 1}, ""),  # a config problem, not the record's: nothing dead
    "407_proxy": ({"status": 407, "seconds": 1}, ""),
}


@pytest.mark.parametrize("fault", TRANSIENT_FAULTS)
def test_transient_fault_loses_nothing_and_keeps_order(tmp_path, standin, fault):
    spec, volt = TRANSIENT_FAULTS[fault]
    records = _interleaved(ids=8, per_id=3, seed=3)
    run = Run(tmp_path, standin, [], volt="  concurrency: 4\n" + volt)
    try:
        standin.faults(spec)  # only now, so a slow start cannot use up a timed fault
        _write(run.log, records, "ab")
        wait_for(lambda: all(r in standin.records() for r in records), 45, what="every record after the fault")
        stats = standin.stats()
        got = standin.records()
        if fault == "slow_past_timeout":
            # an answer that came too late may still have been stored: at-least-once, so only loss is checked
            assert all(r in got for r in records)
            assert "no answer within 0.4 s" in run.agent.logs()
        else:
            assert _by_id(got) == _by_id(records), run.agent.logs()
        if fault == "dropped_connections":
            assert stats["dropped"] == 4
        if fault.startswith(("503", "429")):
            assert stats["by_status"][fault[:3]] == spec["count"]
        if fault == "401_for_a_while":
            assert stats["by_status"]["401"] >= 2
            assert run.agent.logs().count("msg=token_rejected") == 1, "logged at most once a minute"
            assert "token rejected by Volt: check the token in the environment variable VOLT_TOKEN" \
                in run.agent.logs()
            assert run.metrics()["volt_agent_token_rejected_total"] == stats["by_status"]["401"]
        held = {"308_redirect": "endpoint_redirects", "404_wrong_path": "endpoint_not_found",
                "407_proxy": "proxy_refused"}
        if fault in held:
            assert stats["by_status"][fault[:3]] >= 1 and f"msg={held[fault]}" in run.agent.logs()
        wait_for(lambda: run.committed() == run.log.stat().st_size, 10, what="checkpoint at the end of the file")
    finally:
        assert run.agent.stop() == 0, run.agent.logs()
    assert read_jsonl(run.dead) == []


def test_a_route_that_starts_answering_404_after_records_were_accepted_keeps_the_data(tmp_path, standin):
    first, later = _interleaved(ids=3, per_id=2, seed=1), _interleaved(ids=4, per_id=2, seed=2)
    later = [{**r, "id": "late-" + r["id"]} for r in later]
    run = Run(tmp_path, standin, first, volt="  concurrency: 2\n  auth_retry: 0.3s\n")
    try:
        wait_for(lambda: len(standin.records()) == len(first), 20, what="the first records accepted")
        standin.faults({"status": 404, "seconds": 1.5})  # every request, the endpoint check included
        _write(run.log, later, "ab")
        wait_for(lambda: all(r in standin.records() for r in later), 30, what="the later records after the 404s")
        assert standin.stats()["by_status"]["404"] >= 2 and "msg=endpoint_not_found" in run.agent.logs()
    finally:
        assert run.agent.stop() == 0, run.agent.logs()
    assert read_jsonl(run.dead) == [], "a 404 for everything is the URL, not the records"


def test_retry_after_seconds_and_http_date_are_honoured(tmp_path, standin):
    run = Run(tmp_path, standin, [])
    try:
        for rid, header, wait in (("ra-seconds", "2", 2.0), ("ra-date", None, 2.0)):
            t0 = time.time()
            # HTTP-date has whole seconds: now + 3 truncated is at least now + 2
            standin.faults({"status": 429, "count": 1, "retry_after": header or formatdate(t0 + 3, usegmt=True)})
            _write(run.log, [_record(rid, 1)], "ab")
            wait_for(lambda rid=rid: rid in _arrival_times(standin), 20, what=f"{rid} after Retry-After")
            took = _arrival_times(standin)[rid][0] - t0
            # retry_max is 0.5 s here, so only Retry-After can explain a wait this long
            assert wait - 0.05 <= took < wait + 8, f"{rid}: arrived {took:.2f} s after the 429"
        assert standin.stats()["by_status"]["429"] == 2
    finally:
        assert run.agent.stop() == 0, run.agent.logs()


# 404 for one record from an endpoint that exists (it answers an empty POST) is about the record, not the URL
@pytest.mark.parametrize("status", [400, 404])
def test_4xx_for_one_record_is_dead_lettered_and_the_offset_moves_on(tmp_path, standin, status):
    records = _interleaved(ids=6, per_id=3, seed=8)
    bad = [_record("bad-1", 1), _record("bad-1", 2)]
    records[:0] = bad[:1]  # first, before anything was accepted: the endpoint is not known yet
    records.insert(12, bad[1])
    standin.faults({"reject_ids": ["bad-1"], "reject_status": status})
    run = Run(tmp_path, standin, records, volt="  concurrency: 3\n")
    try:
        good = [r for r in records if r["id"] != "bad-1"]
        wait_for(lambda: len(standin.records()) >= len(good) and len(read_jsonl(run.dead)) >= 2, 30,
                 what="good records delivered and bad ones dead-lettered")
        wait_for(lambda: run.committed() == run.log.stat().st_size, 10, what="checkpoint past the refused records")
        assert _by_id(standin.records()) == _by_id(good)
        dead = read_jsonl(run.dead)
        assert [d["record"] for d in dead] == bad
        for d in dead:
            assert d["status"] == status
            assert "rejected by fault injection" in d["response"]
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", d["time"])
        assert run.metrics()["volt_agent_records_dead_lettered_total"] == 2
        assert run.dead.stat().st_mode & 0o077 == 0
    finally:
        assert run.agent.stop() == 0, run.agent.logs()


def test_max_attempts_gives_up_on_an_outage_but_never_on_a_rejected_token(tmp_path, standin):
    run = Run(tmp_path, standin, [], volt="  max_attempts: 2\n")
    try:
        standin.faults({"status": 401, "seconds": 3})
        _write(run.log, [_record("auth-held", 1)], "ab")
        wait_for(lambda: standin.records(), 20, what="the record once the token is accepted again")
        assert standin.stats()["by_status"]["401"] > 2, "more 401s than max_attempts, and still not given up"
        assert read_jsonl(run.dead) == []
        standin.faults({"status": 503})
        _write(run.log, [_record("gives-up", 1)], "ab")
        wait_for(lambda: read_jsonl(run.dead), 20, what="the record given up after 2 attempts")
        (dead,) = read_jsonl(run.dead)
        assert dead["record"]["id"] == "gives-up" and dead["status"] == 503
        assert "gave up after 2 attempts" in dead["error"]
        wait_for(lambda: run.committed() == run.log.stat().st_size, 10, what="checkpoint past the given-up record")
    finally:
        assert run.agent.stop() == 0, run.agent.logs()


def test_auto_concurrency_grows_past_the_old_fixed_default_against_a_distant_volt(tmp_path, standin):
    records = _interleaved(ids=150, per_id=4, seed=21)
    standin.faults({"delay": 0.03, "delay_jitter": 0.01})
    run = Run(tmp_path, standin, records)  # the default: volt.concurrency auto
    try:
        wait_for(lambda: len(standin.records()) >= len(records), 60, what="all records")
        assert _by_id(standin.records()) == _by_id(records), run.agent.logs()
        wait_for(lambda: run.committed() == run.log.stat().st_size, 10, what="every answer handled")
        stats = standin.stats()
        assert stats["serving_peak"] > 8, "more requests in flight than the old fixed default of 8"
        assert stats["connections"] <= 512, "never more connections than the ceiling"
        m = run.metrics()
        assert 8 < m["volt_agent_concurrency_limit"] <= 512
        assert m["volt_agent_request_duration_seconds_count"] == stats["requests"]
        assert m.get("volt_agent_throttled_total", 0) == 0
    finally:
        assert run.agent.stop() == 0, run.agent.logs()
    assert read_jsonl(run.dead) == []


def test_a_volt_with_a_capacity_throttles_without_an_outage_and_loses_nothing(tmp_path, standin):
    records = _interleaved(ids=100, per_id=4, seed=22)
    bad = _record("bad-cap", 1)
    records.insert(200, bad)
    standin.faults({"capacity": 10, "delay": 0.03, "reject_ids": ["bad-cap"]})
    run = Run(tmp_path, standin, records)
    try:
        good = [r for r in records if r["id"] != "bad-cap"]
        wait_for(lambda: len(standin.records()) >= len(good) and read_jsonl(run.dead), 60,
                 what="good records delivered and the refused one dead-lettered")
        wait_for(lambda: run.committed() == run.log.stat().st_size, 10, what="checkpoint at the end of the file")
        assert _by_id(standin.records()) == _by_id(good), run.agent.logs()
        stats = standin.stats()
        m = run.metrics()
        assert stats["by_status"].get("429", 0) >= 1, "slow start overshot the capacity at least once"
        assert m["volt_agent_throttled_total"] == stats["by_status"]["429"]
        assert m["volt_agent_concurrency_limit"] <= 20, "the limit settled near the capacity"
        assert "msg=volt_reachable_again" not in run.agent.logs(), "throttling never closed the probe gate"
    finally:
        assert run.agent.stop() == 0, run.agent.logs()
    assert [d["record"] for d in read_jsonl(run.dead)] == [bad], "dead letters only for the 4xx"


def test_an_outage_in_the_middle_falls_back_to_one_probe_then_delivers_everything(tmp_path, standin):
    first, later = _interleaved(ids=60, per_id=3, seed=23), _interleaved(ids=60, per_id=3, seed=24)
    later = [{**r, "id": "late-" + r["id"]} for r in later]
    standin.faults({"delay": 0.02, "delay_jitter": 0.01})
    run = Run(tmp_path, standin, first)
    try:
        wait_for(lambda: len(standin.records()) >= len(first), 30, what="the first records")
        standin.faults({"status": 503, "seconds": 1.5})
        _write(run.log, later, "ab")
        wait_for(lambda: standin.stats()["by_status"].get("503", 0) >= 1, 20, what="the outage seen")
        wait_for(lambda: len(standin.records()) >= len(first) + len(later), 60, what="everything after the outage")
        assert _by_id(standin.records()) == _by_id(first + later), run.agent.logs()
        assert "msg=volt_reachable_again" in run.agent.logs(), "the outage closed the probe gate and it reopened"
        wait_for(lambda: run.committed() == run.log.stat().st_size, 10, what="checkpoint at the end of the file")
    finally:
        assert run.agent.stop() == 0, run.agent.logs()
    assert read_jsonl(run.dead) == []


def test_rate_limit_spaces_requests(tmp_path, standin):
    records = [_record(f"r-{i}", 1) for i in range(16)]
    run = Run(tmp_path, standin, records, volt="  concurrency: 4\n  rate_limit: 10\n")
    try:
        wait_for(lambda: len(standin.records()) >= 16, 30, what="all records")
        times = sorted(t for ts in _arrival_times(standin).values() for t in ts)
        assert times[-1] - times[0] >= 15 / 10 - 0.3  # unlimited, 4 workers would take well under 0.3 s
    finally:
        assert run.agent.stop() == 0, run.agent.logs()


def test_sigterm_lets_in_flight_requests_finish_then_checkpoints(tmp_path, standin):
    records = [_record("slow-1", 1), _record("slow-2", 1)]
    standin.faults({"delay": 1.5})
    run = Run(tmp_path, standin, records, volt="  concurrency: 2\n")  # shutdown_timeout 5 s covers 2 x 1.5 s
    wait_for(lambda: standin.stats()["requests"] >= 1, 20, what="a request in flight")
    assert standin.records() == []
    assert run.agent.stop() == 0, run.agent.logs()
    assert sorted(r["id"] for r in standin.records()) == ["slow-1", "slow-2"]
    assert run.committed() == run.log.stat().st_size


def test_sigterm_during_an_outage_with_a_full_queue_exits_0_and_keeps_the_data(tmp_path, standin):
    records = _interleaved(ids=40, per_id=5, seed=2)
    standin.faults({"status": 503})
    run = Run(tmp_path, standin, records, volt="  concurrency: 2\n",
              extra="shutdown_timeout: 1\nqueue:\n  max_records: 5\n")
    wait_for(lambda: standin.stats()["requests"] >= 3, 20, what="requests during the outage")
    wait_for(lambda: run.metrics()["volt_agent_queue_records"] == 5, 10, what="a full queue")
    start = time.monotonic()
    run.agent.proc.send_signal(signal.SIGTERM)
    assert run.agent.proc.wait(20) == 0, run.agent.logs()
    assert time.monotonic() - start < 15, "the reader waiting for queue room must not hold up the exit"
    assert "msg=shutdown_timeout" in run.agent.logs()
    assert run.committed() == 0

    standin.faults({"clear": True})
    again = Run(tmp_path, standin, None, name="agent2")
    try:
        wait_for(lambda: len(standin.records()) >= len(records), 60, what="everything after the restart")
        assert _by_id(standin.records()) == _by_id(records)
    finally:
        assert again.agent.stop() == 0, again.agent.logs()


def test_second_signal_exits_at_once_with_the_checkpoint_saved(tmp_path, standin):
    records = [_record(f"ok-{i}", 1) for i in range(5)]
    run = Run(tmp_path, standin, records, extra="shutdown_timeout: 60\n")
    wait_for(lambda: len(standin.records()) == 5, 20, what="the first records")
    wait_for(lambda: run.committed() == run.log.stat().st_size, 10, what="their checkpoint")
    standin.faults({"status": 503})
    _write(run.log, [_record("stuck", 1)], "ab")
    wait_for(lambda: standin.stats()["by_status"].get("503", 0) >= 1, 20, what="the stuck record being retried")
    start = time.monotonic()
    run.agent.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "msg=stopping" in run.agent.logs(), 10, what="the first signal to be seen")
    run.agent.proc.send_signal(signal.SIGTERM)
    assert run.agent.proc.wait(20) == 0, run.agent.logs()
    assert time.monotonic() - start < 15, "the second signal must not wait for shutdown_timeout (60 s)"
    assert "msg=second_signal" in run.agent.logs()
    assert run.committed() == run.log.stat().st_size - len(orjson.dumps(_record("stuck", 1))) - 1


@pytest.mark.parametrize("status", [401, 404, 407], ids=["token-refused", "endpoint-wrong", "proxy-407"])
def test_sigterm_while_records_are_held_for_a_config_problem_stops_at_once(tmp_path, standin, status):
    standin.faults({"status": status})
    records = [_record(f"held-{i}", 1) for i in range(3)]
    run = Run(tmp_path, standin, records, extra="shutdown_timeout: 60\n")
    wait_for(lambda: run.metrics().get("volt_agent_records_retried_total", 0) >= 1, 20, what="the records held")
    start = time.monotonic()
    run.agent.proc.send_signal(signal.SIGTERM)
    assert run.agent.proc.wait(30) == 0, run.agent.logs()
    assert time.monotonic() - start < 20, "nothing can be sent: the stop must not wait for shutdown_timeout (60 s)"
    assert f"msg=shutdown_held unsent=3 reason=\"records held: Volt answered HTTP {status}" in run.agent.logs()
    assert "msg=second_signal" not in run.agent.logs() and standin.records() == []
    assert run.committed() == 0, "held lines stay unacknowledged: they are read again on the next start"


def _ping(config: Path, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {"PATH": "/usr/bin:/bin", "VOLT_TOKEN": TOKEN, **(env or {})}
    return subprocess.run([sys.executable, "-m", "agent.cli", "ping", "--config", str(config)],
                          capture_output=True, text=True, cwd=ROOT, timeout=30, env=full_env)


def _ping_config(tmp_path: Path, endpoint: str, volt: str = "", name: str = "ping") -> Path:
    return write_config(tmp_path / f"{name}.yaml", endpoint=endpoint, state_dir=tmp_path / "s", volt=volt,
                        sources=f'  - name: a\n    format: volt-jsonl\n    paths: ["{tmp_path}/none.jsonl"]\n')


def test_ping_reachable_token_rejected_and_unreachable(tmp_path, standin):
    cfg = _ping_config(tmp_path, standin.url)
    ok = _ping(cfg)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("reachable:") and "HTTP 200" in ok.stdout
    assert standin.stats()["reachability_checks"] == 1

    rejected = _ping(cfg, {"VOLT_TOKEN": "not-the-token"})
    assert rejected.returncode == 4, rejected.stderr
    assert rejected.stdout.startswith("token rejected:") and "HTTP 403" in rejected.stdout
    assert "environment variable VOLT_TOKEN" in rejected.stdout

    closed = _ping(_ping_config(tmp_path, f"http://127.0.0.1:{free_port()}/data/messages", name="closed"))
    assert closed.returncode == 3, closed.stderr
    assert closed.stdout.startswith("unreachable:") and "no HTTP answer" in closed.stdout

    standin.faults({"status": 503})
    down = _ping(cfg)
    assert down.returncode == 3 and "HTTP 503" in down.stdout


def test_proxy_from_the_environment_is_used(tmp_path, standin):
    # volt.invalid never resolves: the request can only arrive through the proxy named in the environment
    cfg = _ping_config(tmp_path, "http://volt.invalid/data/messages")
    res = _ping(cfg, {"HTTP_PROXY": standin.base, "NO_PROXY": ""})
    assert res.returncode == 0, res.stdout + res.stderr
    assert standin.stats()["reachability_checks"] == 1


def test_plain_http_is_refused_without_allow_insecure_http(tmp_path):
    cfg = _ping_config(tmp_path, "http://127.0.0.1:9/data/messages", "  allow_insecure_http: false\n")
    res = _ping(cfg)
    assert res.returncode == 2
    assert "volt.endpoint" in res.stderr and "allow_insecure_http" in res.stderr


def test_tls_certificates_are_verified(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True,
                   timeout=60)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", "import ssl,sys,http.server as h\n"
         "s=h.HTTPServer(('127.0.0.1',int(sys.argv[1])),h.BaseHTTPRequestHandler)\n"
         "c=ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER);c.load_cert_chain(sys.argv[2],sys.argv[3])\n"
         "s.socket=c.wrap_socket(s.socket,server_side=True);print('up',flush=True);s.serve_forever()",
         str(port), str(cert), str(key)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "up"
        res = _ping(_ping_config(tmp_path, f"https://127.0.0.1:{port}/data/messages"))
        assert res.returncode == 3, res.stdout + res.stderr
        assert "certificate" in res.stdout.lower()
    finally:
        server.kill()
        server.wait()
