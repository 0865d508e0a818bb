"""Operating the agent for real: sd_notify over a unix socket, SIGHUP reload, metrics scrape, validate."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from tests.conftest import ROOT, TOKEN, AgentProcess, free_port, wait_for, write_config


def _source(name: str, path: Path) -> str:
    return f"""  - name: {name}
    format: volt-jsonl
    paths: ["{path}"]
    start_at: beginning
    poll_interval: 0.1
"""


def _rec(i: int, prefix: str = "r") -> bytes:
    return orjson.dumps({"id": f"{prefix}-{i}", "provider": "smpp", "status": "sent"}) + b"\n"


def test_sd_notify_ready_status_watchdog_stopping(tmp_path, standin):
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(10)
    log = tmp_path / "a.jsonl"
    log.write_bytes(_rec(1))
    cfg = write_config(tmp_path / "c.yaml", endpoint=standin.url, sources=_source("a", log),
                       state_dir=tmp_path / "state")
    agent = AgentProcess(cfg, tmp_path, env={"NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "200000"})
    seen: list[str] = []
    try:
        while not any("READY=1" in m for m in seen):
            seen.append(sock.recv(4096).decode())
        while not any("WATCHDOG=1" in m for m in seen):
            seen.append(sock.recv(4096).decode())
        agent.proc.send_signal(signal.SIGTERM)
        while not any("STOPPING=1" in m for m in seen):
            seen.append(sock.recv(4096).decode())
        assert agent.proc.wait(15) == 0
    finally:
        agent.stop()
        sock.close()
    ready = next(m for m in seen if "READY=1" in m)
    assert "\nSTATUS=lines=" in ready, ready  # systemctl status has a line from the moment the unit is active


def _following_a(tmp_path: Path, standin) -> tuple[Path, Path, AgentProcess]:
    """An agent following a.jsonl (one record in it) under a config that a test then rewrites and reloads."""
    a, cfg_path = tmp_path / "a.jsonl", tmp_path / "c.yaml"
    a.write_bytes(_rec(1, "a"))
    write_config(cfg_path, endpoint=standin.url, sources=_source("a", a), state_dir=tmp_path / "state")
    return a, cfg_path, AgentProcess(cfg_path, tmp_path)


def test_sighup_adds_and_removes_sources_and_rejects_a_bad_config(tmp_path, standin):
    b = tmp_path / "b.jsonl"
    b.write_bytes(_rec(1, "b"))
    a, cfg_path, agent = _following_a(tmp_path, standin)
    try:
        agent.wait_started()
        wait_for(lambda: len(standin.records()) == 1, 15, what="a-1")
        write_config(cfg_path, endpoint=standin.url, sources=_source("a", a) + _source("b", b),
                     state_dir=tmp_path / "state")
        agent.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: {r["id"] for r in standin.records()} == {"a-1", "b-1"}, 15, what="b added")
        # an invalid config is refused and the running one keeps working
        cfg_path.write_text(cfg_path.read_text().replace("format: volt-jsonl", "format: no-such-format", 1))
        agent.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload_rejected" in agent.logs(), 10, what="reload_rejected")
        assert "no-such-format" in agent.logs()
        with a.open("ab") as fh:
            fh.write(_rec(2, "a"))
        wait_for(lambda: "a-2" in {r["id"] for r in standin.records()}, 15, what="a-2 after bad reload")
        # removing source a keeps its offset: re-adding it later sends nothing twice
        write_config(cfg_path, endpoint=standin.url, sources=_source("b", b), state_dir=tmp_path / "state")
        agent.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: agent.logs().count("msg=reloaded") >= 2, 10, what="second reload")
        with a.open("ab") as fh:
            fh.write(_rec(3, "a"))
        write_config(cfg_path, endpoint=standin.url, sources=_source("a", a) + _source("b", b),
                     state_dir=tmp_path / "state")
        agent.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "a-3" in {r["id"] for r in standin.records()}, 15, what="a-3 after re-adding a")
    finally:
        assert agent.stop() == 0
    ids = [r["id"] for r in standin.records()]
    assert sorted(ids) == ["a-1", "a-2", "a-3", "b-1"], ids


def test_settings_that_change_only_on_restart_are_named_at_every_reload(tmp_path, standin):
    a, cfg_path, agent = _following_a(tmp_path, standin)
    try:
        agent.wait_started()
        write_config(cfg_path, endpoint=standin.url, sources=_source("a", a), state_dir=tmp_path / "state",
                     extra="shutdown_timeout: 3s\n")
        for n in (1, 2):
            agent.proc.send_signal(signal.SIGHUP)
            wait_for(lambda n=n: agent.logs().count("msg=reloaded") >= n, 10, what=f"reload {n}")
    finally:
        assert agent.stop() == 0
    partial = [line for line in agent.logs().splitlines() if "msg=reload_partial" in line]
    assert len(partial) == 2 and all("changed=shutdown_timeout " in line for line in partial), partial


def test_an_unreadable_checkpoint_file_means_reading_from_the_start_not_the_end(tmp_path, standin):
    a = tmp_path / "a.jsonl"
    a.write_bytes(_rec(1, "a") + _rec(2, "a"))
    state = tmp_path / "state"
    state.mkdir()
    (state / "checkpoints.json").write_bytes(b'{"version": 1, "files": [')  # cut off by a failing disk
    cfg = write_config(tmp_path / "c.yaml", endpoint=standin.url, state_dir=state,
                       sources=_source("a", a).replace("start_at: beginning", "start_at: end"))
    agent = AgentProcess(cfg, tmp_path)
    try:
        wait_for(lambda: len(standin.records()) == 2, 15, what="both lines that were never sent")
    finally:
        assert agent.stop() == 0
    assert "msg=checkpoint_file_unreadable" in agent.logs() and "duplicates, never loss" in agent.logs()
    assert list(state.glob("checkpoints.broken-*")), "the unreadable file is kept for a person to look at"


def test_metrics_health_and_readiness_over_http(tmp_path, standin):
    log = tmp_path / "a.jsonl"
    log.write_bytes(_rec(1) + _rec(2) + b"{broken\n")
    port = free_port()
    cfg = write_config(tmp_path / "c.yaml", endpoint=standin.url, sources=_source("a", log),
                       state_dir=tmp_path / "state", extra=f"metrics:\n  listen: 127.0.0.1:{port}\n")
    agent = AgentProcess(cfg, tmp_path)
    base = f"http://127.0.0.1:{port}"

    def get(path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(base + path, timeout=5) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    try:
        agent.wait_started()
        wait_for(lambda: len(standin.records()) == 2, 15, what="2 records")
        assert get("/healthz") == (200, "ok")
        wait_for(lambda: get("/readyz")[0] == 200, 10, what="ready")
        status, text = wait_for(lambda: (r := get("/metrics")) and "volt_agent_records_sent_total 2" in r[1] and r,
                                10, what="sent metric")
        assert status == 200
        assert 'volt_agent_lines_read_total{source="a"} 3' in text
        assert 'volt_agent_records_rejected_total{source="a",reason="invalid JSON"} 1' in text
        assert 'volt_agent_http_responses_total{code_class="2xx"} 2' in text
        assert "volt_agent_request_duration_seconds_bucket" in text
        assert "volt_agent_file_bytes_behind{" in text
        assert TOKEN not in text
    finally:
        agent.stop()


def test_validate_checks_config_paths_state_and_token(tmp_path):
    log = tmp_path / "a.jsonl"
    log.write_bytes(b"")
    cfg = write_config(tmp_path / "c.yaml", endpoint="http://127.0.0.1:9/x", sources=_source("a", log),
                       state_dir=tmp_path / "state")

    def validate(env: dict) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "agent.cli", "validate", "--config", str(cfg)],
                              capture_output=True, text=True, cwd=ROOT, timeout=30, env={"PATH": "/usr/bin", **env})

    ok = validate({"VOLT_TOKEN": TOKEN})
    assert ok.returncode == 0, ok.stderr
    assert "ok" in ok.stdout
    missing = validate({})
    assert missing.returncode == 2
    assert "VOLT_TOKEN" in missing.stderr


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=30, env={"PATH": "/usr/bin", "VOLT_TOKEN": TOKEN, **(env or {})})


def test_validate_lists_every_problem_in_the_file(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("volt: {endpoint: 'http://volt.example/x'}\nqueue: {max_records: none}\nsources:\n"
                   "  - {name: a, format: kanel, paths: [x]}\n  - {name: b, format: volt-jsonl, paths: [y]}\n"
                   "  - {name: c, format: volt-jsonl, paths: [z], body: redact}\n")
    bad = _cli("validate", "--config", str(cfg))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert [line.split(": ")[3] for line in bad.stderr.splitlines()] == [
        "sources[a].format", "sources[c].body", "volt.endpoint", "queue.max_records"], bad.stderr
    assert all(line.startswith(f"volt-agent: config error: {cfg}: ") for line in bad.stderr.splitlines())
    assert "a built-in format, one of: " in bad.stderr  # the format is compiled in the same pass


def test_validate_follows_what_run_reads_and_where_it_writes(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_bytes(_rec(1))
    (logs / "a.log.1.gz").write_bytes(b"\x1f\x8b")  # compressed copies are never read
    (logs / "skip.log").write_bytes(_rec(2))
    source = f'  - name: a\n    format: volt-jsonl\n    paths: ["{logs}/*.log*"]\n    exclude: [skip.log]\n'
    nested = tmp_path / "var" / "lib" / "volt"  # two levels below a writable directory: run creates it
    cfg = write_config(tmp_path / "c.yaml", endpoint="http://127.0.0.1:9/x", sources=source, state_dir=nested)
    ok = _cli("validate", "--config", str(cfg))
    assert ok.returncode == 0, ok.stderr
    parsed = _cli("parse", "--config", str(cfg))
    assert parsed.returncode == 0 and [orjson.loads(line)["id"] for line in parsed.stdout.splitlines()] == ["r-1"]

    (tmp_path / "state-file").write_text("")
    as_file = write_config(tmp_path / "f.yaml", endpoint="http://127.0.0.1:9/x", sources=source,
                           state_dir=tmp_path / "state-file")
    bad = _cli("validate", "--config", str(as_file))
    assert bad.returncode == 2 and "is not a directory" in bad.stderr

    missing = _cli("parse", "--config", str(cfg), str(tmp_path / "nope.log"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr and "Traceback" not in missing.stderr


AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def _nobody_cannot_reach(cfg: Path) -> str | None:
    """Why nobody cannot import the agent with this checkout's Python and read `cfg`, or None. A checkout
    under a private directory (a clone in a mktemp dir, a home at 0700) is out of nobody's reach."""
    probe = subprocess.run([*AS_NOBODY, sys.executable, "-c", f"import agent.cli; open({str(cfg)!r}).close()"],
                           capture_output=True, text=True, cwd=ROOT, timeout=30)
    if probe.returncode == 0:
        return None
    return (probe.stderr.strip().splitlines() or [f"exit {probe.returncode}"])[-1]


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to run as another user")
def test_logs_the_agents_user_cannot_read_are_named_by_validate_and_run():
    """Root reads everything, so the agent runs as nobody here, on a tree outside pytest's private tmp."""
    top = Path(tempfile.mkdtemp(prefix="volt-perm-"))
    try:
        top.chmod(0o755)
        hidden, private = top / "hidden", top / "private"
        for directory in (hidden, private):
            directory.mkdir()
            (directory / "a.log").write_bytes(_rec(1))
        hidden.chmod(0o700)  # the directory cannot be listed
        (private / "a.log").chmod(0o600)  # the file cannot be read: the user is not in the log's group
        cfg = top / "c.yaml"
        cfg.write_text(f'state_dir: {top}/state\nsources:\n'
                       f'  - name: a\n    format: volt-jsonl\n    paths: ["{hidden}/*.log"]\n'
                       f'  - name: b\n    format: volt-jsonl\n    paths: ["{private}/*.log"]\n')
        cfg.chmod(0o644)
        as_nobody = [*AS_NOBODY, sys.executable, "-m", "agent.cli"]
        unreachable = _nobody_cannot_reach(cfg)
        if unreachable:
            pytest.skip(f"user nobody cannot run the agent from {ROOT} on {cfg} (a checkout under a private "
                        f"directory?): {unreachable}")
        validate = subprocess.run([*as_nobody, "validate", "--config", str(cfg), "--dry-run"], capture_output=True,
                                  text=True, cwd=ROOT, timeout=30)
        run = subprocess.run([*as_nobody, "run", "--config", str(cfg), "--dry-run", "--once"], capture_output=True,
                             text=True, cwd=ROOT, timeout=30)
    finally:
        shutil.rmtree(top)
    assert validate.returncode == 2, validate.stderr
    assert f"warning: source a: directory {hidden} cannot be listed by this user" in validate.stderr
    assert "error: source b: none of its 1 files is readable by this user" in validate.stderr
    assert run.returncode == 0 and "msg=no_file_matches source=a" in run.stderr
    assert "msg=file_unreadable source=b" in run.stderr


def test_a_metrics_port_in_use_is_a_clear_config_error(tmp_path):
    log = tmp_path / "a.jsonl"
    log.write_bytes(b"")
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        cfg = write_config(tmp_path / "c.yaml", endpoint="http://127.0.0.1:9/x", sources=_source("a", log),
                           state_dir=tmp_path / "state", extra=f"metrics:\n  listen: 127.0.0.1:{port}\n")
        run = _cli("run", "--config", str(cfg))
        validate = _cli("validate", "--config", str(cfg))
    assert run.returncode == 2 and "metrics.listen" in run.stderr and "Traceback" not in run.stderr
    assert validate.returncode == 0 and "is in use now" in validate.stderr  # maybe the running agent: a warning
    elsewhere = write_config(tmp_path / "e.yaml", endpoint="http://127.0.0.1:9/x", sources=_source("a", log),
                             state_dir=tmp_path / "state", extra="metrics:\n  listen: 192.0.2.7:9109\n")
    refused = _cli("validate", "--config", str(elsewhere))  # not an address of this host: run could never start
    assert refused.returncode == 2 and "cannot listen on 192.0.2.7:9109" in refused.stderr


def test_readyz_says_not_ready_while_records_are_held_for_a_wrong_endpoint(tmp_path, standin):
    log = tmp_path / "a.jsonl"
    log.write_bytes(b"")
    port = free_port()
    cfg = write_config(tmp_path / "c.yaml", endpoint=standin.url, sources=_source("a", log),
                       state_dir=tmp_path / "state",
                       extra=f"metrics:\n  listen: 127.0.0.1:{port}\n", volt="  auth_retry: 0.5s\n")
    agent = AgentProcess(cfg, tmp_path)

    def readyz() -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code

    try:
        agent.wait_started()
        standin.faults({"status": 404})
        log.write_bytes(_rec(1))
        wait_for(lambda: "msg=endpoint_not_found" in agent.logs(), 15, what="the record held")
        assert readyz() == 503
        standin.faults({"clear": True})
        wait_for(lambda: len(standin.records()) == 1, 15, what="the record once the endpoint is right")
        wait_for(lambda: readyz() == 200, 10, what="ready again")
        # a redirect, then the record itself refused: dead-lettered, nothing held, ready with an empty queue
        standin.faults({"status": 308, "count": 1, "reject_ids": ["r-2"]})
        with log.open("ab") as fh:
            fh.write(_rec(2))
        wait_for(lambda: (tmp_path / "state" / "dead-letter.jsonl").exists(), 15, what="r-2 dead-lettered")
        wait_for(lambda: readyz() == 200, 10, what="ready after the dead letter")
    finally:
        assert agent.stop() == 0


def test_a_source_that_fails_stops_the_agent_with_an_error(tmp_path, monkeypatch):
    """An unexpected bug in one source must not leave it silently dead: log, stop, exit non-zero."""
    import asyncio
    import io

    from agent.app import Agent
    from agent.config import load
    from agent.formats.source import Processor
    from agent.ops import logs

    log = tmp_path / "a.jsonl"
    log.write_bytes(_rec(1))
    cfg = write_config(tmp_path / "c.yaml", endpoint="http://127.0.0.1:9/x", sources=_source("a", log),
                       state_dir=tmp_path / "state")

    def broken(self, line):
        raise RuntimeError("bug in a parser")

    monkeypatch.setattr(Processor, "run", broken)
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    logs.setup("logfmt", "info")
    code = asyncio.run(asyncio.wait_for(Agent(load(cfg), token=None, dry_run=True, out=io.BytesIO()).run(), 20))
    assert code == 1
    assert "msg=source_failed source=a" in stream.getvalue() and "bug in a parser" in stream.getvalue()


def test_a_checkpoint_ticker_that_fails_stops_the_agent(tmp_path, monkeypatch):
    """Without the ticker no offset would be saved again: the agent must stop (exit 1), not run on without it."""
    import asyncio
    import io

    from agent.app import Agent
    from agent.config import load
    from agent.files.checkpoints import CheckpointStore
    from agent.ops import logs
    from agent.secrets import Secret

    log = tmp_path / "a.jsonl"
    log.write_bytes(_rec(1))
    cfg = write_config(tmp_path / "c.yaml", endpoint="http://127.0.0.1:9/x", sources=_source("a", log),
                       state_dir=tmp_path / "state", extra="checkpoint_interval: 0.1s\n")
    flush, calls = CheckpointStore.flush, []

    def flaky(self, force=False):
        calls.append(1)
        if len(calls) == 2:  # the first flush from the ticker
            raise TypeError("a bug while writing checkpoints")
        return flush(self, force)

    monkeypatch.setattr(CheckpointStore, "flush", flaky)
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    logs.setup("logfmt", "info")
    agent = Agent(load(cfg), token=Secret("t0ken-for-the-test"))
    code = asyncio.run(asyncio.wait_for(agent.run(), 20))
    assert code == 1
    assert "msg=checkpoint_ticker_failed" in stream.getvalue() and "a bug while writing" in stream.getvalue()
