"""`volt-agent top --once` against a real agent (default config: no metrics port) sending a real file to the
real stand-in: the numbers it shows, the reason it shows when the token is refused, and what it says when no
agent runs."""

from __future__ import annotations

import http.server
import os
import pty
import re
import select
import signal
import socket
import stat
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

from agent.ops.control import socket_path
from tests.conftest import ROOT, AgentProcess, free_port, wait_for, write_config
from tests.integration.test_operations import _rec, _source


def _lines(n: int, prefix: str = "t") -> bytes:
    return b"".join(_rec(i, prefix) for i in range(n))


def _top(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent.cli", "top", "--once", "--interval", "0.3", *args],
                          capture_output=True, text=True, timeout=30, cwd=ROOT)


def _cell(screen: str, label: str) -> str:
    """The value next to a label in the sender grid."""
    m = re.search(rf"{re.escape(label)} +(\S+(?: ms| s| B| KiB)?)", screen)
    assert m, f"{label!r} not on the screen:\n{screen}"
    return m.group(1)


@pytest.fixture
def setup(tmp_path: Path, standin):
    state = tmp_path / "state"
    if len(os.fsencode(socket_path(state))) > 107:
        pytest.skip(f"the temporary directory's path is too long for a unix socket: {state}")
    log = tmp_path / "hooks.jsonl"
    log.write_bytes(_lines(5) + b"{not json\n")
    return state, log


def test_top_shows_a_running_agent(tmp_path, standin, setup) -> None:
    state, log = setup
    cfg = write_config(tmp_path / "c.yaml", endpoint=standin.url, sources=_source("webhooks", log), state_dir=state)
    agent = AgentProcess(cfg, tmp_path)
    try:
        agent.wait_started()
        wait_for(lambda: len(standin.records()) == 5, 15, what="5 records accepted")
        sock = socket_path(state)
        assert stat.S_IMODE(os.lstat(sock).st_mode) == 0o600
        wait_for(lambda: _cell(_top("--config", str(cfg)).stdout, "accepted") == "5", 10, what="top to show 5")
        out = _top("--config", str(cfg))
        assert out.returncode == 0, out.stderr
        screen = out.stdout
        assert screen.splitlines()[0].endswith("/state/control.sock")
        assert "state: ready" in screen
        row = next(line for line in screen.splitlines() if line.startswith("webhooks"))
        # SOURCE LINES/S RECORDS/S REFUSED SKIPPED BEHIND FILES: all read, one bad line, nothing behind, one file
        assert row.split() == ["webhooks", "0.0", "0.0", "1", "0", "0", "B", "1"]
        assert _cell(screen, "dead letters") == "0"
        assert _cell(screen, "queue records") == "0"
        assert re.search(r"last accepted \d.*ago", screen)
        assert all(len(line) <= 80 for line in screen.splitlines())

        with log.open("ab") as f:
            f.write(_lines(200, "u"))
        wait_for(lambda: len(standin.records()) == 205, 15, what="205 records accepted")
        assert _cell(_top("--state-dir", str(state)).stdout, "accepted") == "205"
    finally:
        assert agent.stop() == 0
    assert not socket_path(state).exists(), "a clean exit removes the control socket"
    gone = _top("--config", str(cfg))
    assert gone.returncode == 1
    assert f"no agent is running: no control socket at {socket_path(state)}" in gone.stderr


def test_top_shows_why_data_is_held_when_the_token_is_refused(tmp_path, standin, setup) -> None:
    state, log = setup
    cfg = write_config(tmp_path / "c.yaml", endpoint=standin.url, sources=_source("webhooks", log), state_dir=state)
    agent = AgentProcess(cfg, tmp_path, env={"VOLT_TOKEN": "a-revoked-token"})
    try:
        agent.wait_started()
        screen = wait_for(lambda: (o := _top("--config", str(cfg)).stdout) and "HOLDING" in o and o, 15,
                          what="top to show data held")
        assert "HOLDING DATA: Volt rejects the token" in screen
        assert re.search(r"records held: Volt answered HTTP 40[13] \(see the log", screen)
        assert _cell(screen, "accepted") == "0"
        assert _cell(screen, "last accepted") == "never"
        assert int(_cell(screen, "token refused")) >= 1
        assert int(_cell(screen, "queue records")) >= 1
        assert "a-revoked-token" not in screen
    finally:
        agent.stop()


def test_top_reads_the_metrics_address(tmp_path, standin, setup) -> None:
    state, log = setup
    port = free_port()
    cfg = write_config(tmp_path / "c.yaml", endpoint=standin.url, sources=_source("webhooks", log), state_dir=state,
                       extra=f"metrics:\n  listen: 127.0.0.1:{port}\n")
    agent = AgentProcess(cfg, tmp_path)
    try:
        agent.wait_started()
        wait_for(lambda: len(standin.records()) == 5, 15, what="5 records accepted")
        out = _top("--url", f"http://127.0.0.1:{port}/metrics")
        assert out.returncode == 0, out.stderr
        assert f"http://127.0.0.1:{port}" in out.stdout.splitlines()[0]
        assert _cell(out.stdout, "accepted") == "5"
        socket_path(state).unlink()  # the socket gone (deleted by hand): --config falls back to metrics.listen
        assert _cell(_top("--config", str(cfg)).stdout, "accepted") == "5"
    finally:
        agent.stop()


def test_top_says_where_it_looked_when_nothing_answers(tmp_path, standin) -> None:
    port = free_port()
    out = _top("--url", f"http://127.0.0.1:{port}")
    assert out.returncode == 1
    assert f"no agent is running: nothing answers on http://127.0.0.1:{port}" in out.stderr
    not_an_agent = _top("--url", standin.base)
    assert not_an_agent.returncode == 1
    assert f"{standin.base}/metrics answered HTTP 404" in not_an_agent.stderr
    nowhere = _top()
    assert nowhere.returncode == 2 and "--config" in nowhere.stderr
    no_port = _top("--url", "http://127.0.0.1:abc")
    assert no_port.returncode == 2 and "expected http://host:port" in no_port.stderr, no_port.stderr


def test_ctrl_c_while_top_waits_for_an_answer_exits_without_a_traceback() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        silent.settimeout(20)
        top = subprocess.Popen([sys.executable, "-m", "agent.cli", "top", "--once", "--url",
                                f"http://127.0.0.1:{silent.getsockname()[1]}"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        conn, _ = silent.accept()  # top is waiting for the answer now
        with conn:
            top.send_signal(signal.SIGINT)
            _, err = top.communicate(timeout=20)
    assert top.returncode == 130 and "Traceback" not in err and "interrupted" in err, err


def test_top_with_a_broken_config_lists_each_problem_as_validate_does(tmp_path) -> None:
    cfg = tmp_path / "agent.yaml"
    cfg.write_text("state_dir: [1]\nshutdown_timeout: soon\nsources: []\n")
    out = _top("--config", str(cfg))
    problems = out.stderr.splitlines()
    assert out.returncode == 2 and len(problems) == 3, out.stderr
    assert all(line.startswith(f"volt-agent: config error: {cfg}: ") for line in problems), out.stderr


class _MetricsOnly(http.server.BaseHTTPRequestHandler):
    """An agent's /metrics and nothing else, enough for top to draw its screen."""

    def do_GET(self) -> None:
        body = b"# TYPE volt_agent_records_sent_total counter\nvolt_agent_records_sent_total 3\n"
        self.send_response(200 if self.path == "/metrics" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _read_until(fd: int, marker: bytes, seconds: float) -> bytes:
    seen, deadline = b"", time.monotonic() + seconds
    while marker not in seen and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the other end closed (EIO on a pty)
                break
            if not chunk:
                break
            seen += chunk
    return seen


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_top_killed_in_a_terminal_gives_the_terminal_back(sig: int) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _MetricsOnly)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    pid, fd = pty.fork()
    if pid == 0:  # the child: top in a terminal
        os.chdir(ROOT)
        os.execv(sys.executable, [sys.executable, "-m", "agent.cli", "top", "--interval", "0.2", "--url",
                                  f"http://127.0.0.1:{server.server_address[1]}"])
    try:
        assert b"q quits" in _read_until(fd, b"q quits", 20)
        assert not termios.tcgetattr(fd)[3] & termios.ICANON  # keys without Enter while it runs
        os.kill(pid, sig)
        rest = _read_until(fd, b"\x1b[?1049l", 10)
        _, status = os.waitpid(pid, 0)
        restored = termios.tcgetattr(fd)[3] & termios.ICANON  # lines again
    finally:
        server.shutdown()
        os.close(fd)
    assert b"\x1b[?25h\x1b[?1049l" in rest and b"Traceback" not in rest  # cursor shown, main screen back
    assert restored
    assert os.waitstatus_to_exitcode(status) == 128 + sig
