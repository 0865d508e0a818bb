"""Ops surface against the real things: a unix datagram socket for sd_notify, a real HTTP scrape of
the ops server, and `systemd-analyze verify` on the shipped units (a typo in a unit is otherwise only
found when systemd silently ignores the line on a customer's machine).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from agent.ops.http import OpsServer, parse_listen
from agent.ops.metrics import AgentMetrics
from agent.ops.notify import Notifier, watchdog_interval, watchdog_loop

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "systemd"
PLACEHOLDER_BIN = "/opt/volt-agent/bin/volt-agent"


# --- sd_notify ---------------------------------------------------------------------------------------


@pytest.fixture
def short_dir(tmp_path: Path) -> Iterator[Path]:
    """tmp_path, unless it is too long for a unix socket path (108 bytes on Linux)."""
    if len(str(tmp_path / "notify.sock")) < 100:
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(prefix="volt-") as short:
        yield Path(short)


@pytest.fixture
def receiver(short_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A bound datagram socket standing in for systemd, advertised through $NOTIFY_SOCKET."""
    path = short_dir / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2.0)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield sock
    sock.close()


def _recv(sock: socket.socket) -> str:
    return sock.recv(4096).decode()


def _drain(sock: socket.socket) -> list[str]:
    messages = []
    sock.setblocking(False)
    try:
        while True:
            messages.append(sock.recv(4096).decode())
    except BlockingIOError:
        pass
    finally:
        sock.settimeout(2.0)
    return messages


def test_notifier_sends_each_state_to_the_socket(receiver: socket.socket) -> None:
    notifier = Notifier()
    assert notifier.enabled

    assert notifier.ready()
    assert _recv(receiver) == "READY=1"
    assert notifier.ready("lines=0 sent=0")
    assert _recv(receiver) == "READY=1\nSTATUS=lines=0 sent=0"
    assert notifier.status("following 3 files, queue 0")
    assert _recv(receiver) == "STATUS=following 3 files, queue 0"
    assert notifier.watchdog()
    assert _recv(receiver) == "WATCHDOG=1"
    assert notifier.stopping()
    assert _recv(receiver) == "STOPPING=1"

    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert notifier.reloading()
    reloading = _recv(receiver).split("\n")
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert reloading[0] == "RELOADING=1"
    key, _, usec = reloading[1].partition("=")
    assert key == "MONOTONIC_USEC"
    assert before <= int(usec) <= after

    assert notifier.send(READY=1, STATUS="multi\nline")
    assert _recv(receiver) == "READY=1\nSTATUS=multi line"  # a newline must not inject an assignment
    notifier.close()


def test_notifier_abstract_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"volt-agent-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(2.0)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        notifier = Notifier()
        assert notifier.ready()
        assert _recv(sock) == "READY=1"
        assert notifier.status("abstract")
        assert _recv(sock) == "STATUS=abstract"
    finally:
        sock.close()


def test_notifier_is_a_no_op_without_notify_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier()
    assert not notifier.enabled
    assert notifier.ready() is False
    assert notifier.watchdog() is False
    assert notifier.stopping() is False
    assert Notifier(environ={"NOTIFY_SOCKET": ""}).enabled is False


def test_unreachable_socket_never_raises_and_logs_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="agent.ops.notify")
    notifier = Notifier(str(tmp_path / "nobody-listens.sock"))
    assert notifier.enabled
    assert notifier.ready() is False
    assert notifier.watchdog() is False
    records = [r for r in caplog.records if r.name == "agent.ops.notify"]
    assert len(records) == 1
    assert records[0].levelno == logging.DEBUG
    assert records[0].getMessage() == "sd_notify_failed"

    odd = Notifier("vsock:2:1234")  # an address kind we do not speak: disabled, not an error
    assert not odd.enabled
    assert odd.ready() is False


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "<self>"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
        ({"WATCHDOG_USEC": "100000"}, 0.05),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "x"}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    env = {k: str(os.getpid()) if v == "<self>" else v for k, v in env.items()}
    assert watchdog_interval(env) == expected


def test_watchdog_interval_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "20000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval() == 10.0


def test_watchdog_loop_pings_from_the_event_loop(receiver: socket.socket) -> None:
    notifier = Notifier()
    calls = 0

    def status() -> str:
        nonlocal calls
        calls += 1
        return f"tick {calls}"

    async def main() -> None:
        task = asyncio.create_task(watchdog_loop(notifier, 0.05, status))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    messages = _drain(receiver)
    assert len(messages) >= 3
    assert all(m.startswith("WATCHDOG=1\nSTATUS=tick ") for m in messages)


def test_watchdog_loop_stops_pinging_when_the_loop_is_blocked(receiver: socket.socket) -> None:
    """The point of pinging from the event loop: a blocked loop means no pings, so systemd restarts us."""
    notifier = Notifier()

    async def main() -> None:
        task = asyncio.create_task(watchdog_loop(notifier, 0.05, None))
        await asyncio.sleep(0.12)
        _drain(receiver)
        time.sleep(0.3)  # the loop is stuck: nothing may be sent meanwhile
        assert _drain(receiver) == []
        await asyncio.sleep(0.12)  # loop free again: pings resume
        task.cancel()

    asyncio.run(main())
    assert _drain(receiver)


def test_watchdog_loop_survives_a_failing_status(receiver: socket.socket) -> None:
    def status() -> str:
        raise RuntimeError("boom")

    async def main() -> None:
        task = asyncio.create_task(watchdog_loop(Notifier(), 0.05, status))
        await asyncio.sleep(0.12)
        task.cancel()

    asyncio.run(main())
    messages = _drain(receiver)
    assert messages
    assert set(messages) == {"WATCHDOG=1"}


# --- ops HTTP endpoint -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("127.0.0.1:9109", ("127.0.0.1", 9109)),
        (":9109", ("127.0.0.1", 9109)),
        ("[::1]:9109", ("::1", 9109)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        ("localhost:9109", ("localhost", 9109)),
    ],
)
def test_parse_listen(listen: str, expected: tuple[str, int]) -> None:
    assert parse_listen(listen) == expected


@pytest.mark.parametrize(
    "listen", ["9109", "127.0.0.1", "127.0.0.1:http", ":70000", "::1:9109", "[::1]", "[x]:1"]
)
def test_parse_listen_rejects(listen: str) -> None:
    with pytest.raises(ValueError):
        parse_listen(listen)


def test_ops_server_serves_metrics_health_and_readiness() -> None:
    metrics = AgentMetrics()
    metrics.lines_read.labels("kannel").inc(3)
    state = {"ready": (False, "waiting for first successful send to Volt")}

    async def main() -> None:
        async with OpsServer("127.0.0.1:0", metrics.registry.render, lambda: state["ready"]) as ops:
            assert ops.port
            base = f"http://127.0.0.1:{ops.port}"
            async with aiohttp.ClientSession() as http:
                async with http.get(base + "/metrics") as resp:
                    assert resp.status == 200
                    content_type = resp.headers["Content-Type"]
                    assert content_type.startswith("text/plain")
                    assert "version=0.0.4" in content_type
                    body = await resp.text()
                assert "# TYPE volt_agent_lines_read_total counter" in body
                assert 'volt_agent_lines_read_total{source="kannel"} 3\n' in body

                metrics.lines_read.labels("kannel").inc()  # every scrape renders the live values
                async with http.get(base + "/metrics") as resp:
                    assert 'volt_agent_lines_read_total{source="kannel"} 4\n' in await resp.text()

                async with http.get(base + "/healthz") as resp:
                    assert resp.status == 200
                    assert await resp.text() == "ok"

                async with http.get(base + "/readyz") as resp:
                    assert resp.status == 503
                    assert await resp.text() == "waiting for first successful send to Volt"

                state["ready"] = (True, "sending")
                async with http.get(base + "/readyz") as resp:
                    assert resp.status == 200
                    assert await resp.text() == "sending"

                async with http.get(base + "/nope") as resp:
                    assert resp.status == 404
        # Stopped: the port no longer answers.
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", ops.port), timeout=1).close()

    asyncio.run(main())


def test_ops_server_failing_callbacks_answer_instead_of_crashing() -> None:
    def broken_metrics() -> str:
        raise RuntimeError("render bug")

    def broken_ready() -> tuple[bool, str]:
        raise RuntimeError("ready bug")

    async def main() -> None:
        async with OpsServer(":0", broken_metrics, broken_ready) as ops, aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{ops.port}"
            async with http.get(base + "/metrics") as resp:
                assert resp.status == 500
            async with http.get(base + "/readyz") as resp:
                assert resp.status == 503
                assert "ready bug" in await resp.text()
            async with http.get(base + "/healthz") as resp:
                assert resp.status == 200

    asyncio.run(main())


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback in this environment")
def test_ops_server_on_ipv6_loopback() -> None:
    async def main() -> None:
        async with (
            OpsServer("[::1]:0", lambda: "", lambda: (True, "")) as ops,
            aiohttp.ClientSession() as http,
            http.get(f"http://[::1]:{ops.port}/healthz") as resp,
        ):
            assert resp.status == 200

    asyncio.run(main())


def test_ops_server_port_in_use_raises_and_cleans_up() -> None:
    async def main() -> None:
        async with OpsServer("127.0.0.1:0", lambda: "", lambda: (True, "")) as first:
            second = OpsServer(f"127.0.0.1:{first.port}", lambda: "", lambda: (True, ""))
            with pytest.raises(OSError):
                await second.start()
            await second.stop()  # nothing to stop: must not fail

    asyncio.run(main())


# --- systemd units -----------------------------------------------------------------------------------

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze not installed (Debian: apt-get install systemd)"
)


def _stand_in_binary() -> str:
    """An executable to replace /opt/volt-agent/bin/volt-agent: verify fails on a missing ExecStart binary."""
    script = ROOT / ".venv" / "bin" / "volt-agent"
    if script.is_file() and os.access(script, os.X_OK):
        return str(script)
    true = shutil.which("true")
    assert true, "need some executable for ExecStart"
    return true


def _verify(unit_dir: Path, unit_name: str) -> tuple[int, list[str]]:
    """Run `systemd-analyze verify`; return its exit code and the stderr lines that concern our units."""
    env = {
        **os.environ,
        # Pin the output: a CI with SYSTEMD_LOG_LEVEL=debug would otherwise print pages of "Handling
        # volt-agent.service..." chatter, and a journal-attached stderr could swallow the warnings.
        "SYSTEMD_LOG_LEVEL": "info",
        "SYSTEMD_LOG_TARGET": "console",
        "SYSTEMD_LOG_COLOR": "0",
        "SYSTEMD_LOG_LOCATION": "0",
    }
    proc = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "--man=no", str(unit_dir / unit_name)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    # Everything said about our unit is a finding: unknown keys and unparsable values only warn and
    # exit 0, so the exit code alone proves nothing. Lines about other units (system units pulled
    # in as dependencies, sandbox noise) are not ours to fix.
    ours = [line for line in (proc.stderr + proc.stdout).splitlines() if "volt-agent" in line]
    return proc.returncode, ours


def _install(unit: str, dest: Path, extra: str = "") -> None:
    text = (UNITS / unit).read_text().replace(PLACEHOLDER_BIN, _stand_in_binary())
    if extra:
        text = text.replace("[Service]\n", "[Service]\n" + extra, 1)
    (dest / unit).write_text(text)


@needs_systemd_analyze
def test_systemd_analyze_verify_service(tmp_path: Path) -> None:
    _install("volt-agent.service", tmp_path)
    code, findings = _verify(tmp_path, "volt-agent.service")
    assert (code, findings) == (0, [])


@needs_systemd_analyze
@pytest.mark.parametrize("unit_name", ["volt-agent@kannel.service", "volt-agent@.service"])
def test_systemd_analyze_verify_template(tmp_path: Path, unit_name: str) -> None:
    # Only the template file exists, as when installed: systemd finds it for the instance name, and
    # the %i specifiers get resolved (a bad specifier is a fatal error here).
    _install("volt-agent@.service", tmp_path)
    code, findings = _verify(tmp_path, unit_name)
    assert (code, findings) == (0, [])


@needs_systemd_analyze
def test_systemd_analyze_check_catches_mistakes(tmp_path: Path) -> None:
    """Guard the guard: a misspelt key exits 0 but must still count as a finding."""
    _install("volt-agent.service", tmp_path, extra="WatchdogSecs=30\nRestart=sometimes\n")
    code, findings = _verify(tmp_path, "volt-agent.service")
    assert code == 0
    assert any("Unknown key" in line and "WatchdogSecs" in line for line in findings), findings
    assert any("sometimes" in line for line in findings), findings


def _directives(unit: str) -> list[tuple[str, str, str]]:
    section = ""
    out = []
    for raw in (UNITS / unit).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line
            continue
        key, _, value = line.partition("=")
        out.append((section, key, value))
    return out


def test_service_and_template_stay_consistent() -> None:
    """Same directives in the same order; values differ only where the template names its instance."""
    plain = _directives("volt-agent.service")
    template = _directives("volt-agent@.service")
    assert [(s, k) for s, k, _ in plain] == [(s, k) for s, k, _ in template]
    differing = {k: (a, b) for (_, k, a), (_, _, b) in zip(plain, template, strict=True) if a != b}
    assert all("%i" in b for _, b in differing.values()), differing
    assert set(differing) <= {
        "Description",
        "ExecStartPre",
        "ExecStart",
        "ExecReload",
        "StateDirectory",
        "Environment",
        "LoadCredential",
    }


@pytest.mark.parametrize("unit", ["volt-agent.service", "volt-agent@.service"])
def test_unit_has_the_required_settings(unit: str) -> None:
    settings = {(k, v) for _, k, v in _directives(unit)}
    for required in [
        ("Type", "notify"),
        ("NotifyAccess", "main"),
        ("Restart", "on-failure"),
        ("WatchdogSec", "30"),
        ("User", "volt-agent"),
        ("CapabilityBoundingSet", ""),
        ("ProtectSystem", "strict"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
    ]:
        assert required in settings, required
    keys = {k for k, _ in settings}
    assert "MemoryDenyWriteExecute" not in keys
    reloads = [v for k, v in (_d[1:] for _d in _directives(unit)) if k == "ExecReload"]
    assert re.match(r"/opt/volt-agent/bin/volt-agent validate --config ", reloads[0])
    assert reloads[1] == "/bin/kill -HUP $MAINPID"
