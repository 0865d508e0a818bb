"""Shared fixtures: a real stand-in server process, free ports, and running the agent as a subprocess."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"  # copies of the shared samples; see its README.md
TOKEN = "test-token-5f1e9c0a7d"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def read_jsonl(path: Path) -> list[dict]:
    """The complete lines of a JSONL file another process may be appending to (a last line without its newline is
    still being written)."""
    if not path.exists():
        return []
    data = path.read_bytes()
    return [orjson.loads(line) for line in data[:data.rfind(b"\n") + 1].splitlines() if line.strip()]


class StandInProcess:
    """The project's stand-in, run as a real server process on 127.0.0.1."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.out = tmp / "standin-out.jsonl"
        self.arrivals = tmp / "standin-arrivals.txt"
        self.url = f"http://127.0.0.1:{self.port}/data/messages"
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "VOLT_TOKEN": TOKEN}
        self.stderr = tmp / "standin.err"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "standin", "--port", str(self.port), "--out", str(self.out),
             "--arrivals", str(self.arrivals)],
            env=env, stderr=self.stderr.open("wb"), cwd=ROOT,
        )
        wait_for(lambda: "listening" in self.stderr.read_text(), 15, what="stand-in to listen")

    def records(self) -> list[dict]:
        return read_jsonl(self.out)

    def faults(self, spec: dict) -> None:
        import urllib.request

        req = urllib.request.Request(self.base + "/_faults", data=orjson.dumps(spec), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 200

    def stats(self) -> dict:
        import urllib.request

        with urllib.request.urlopen(self.base + "/_stats", timeout=5) as resp:
            return orjson.loads(resp.read())

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[StandInProcess]:
    s = StandInProcess(tmp_path)
    yield s
    s.stop()


def write_config(path: Path, *, endpoint: str, sources: str, state_dir: Path, extra: str = "",
                 volt: str = "") -> Path:
    """`volt` holds more indented keys for the volt section; a key given there wins over the default above it."""
    path.write_text(
        f"""volt:
  endpoint: {endpoint}
  allow_insecure_http: true
  retry_initial: 0.05
  retry_max: 0.5
  auth_retry: 0.5
  timeout: 2
{volt}state_dir: {state_dir}
checkpoint_interval: 0.1
shutdown_timeout: 5
{extra}
sources:
{sources}
"""
    )
    return path


class AgentProcess:
    """volt-agent run as a real subprocess, with its stderr (structured logs) captured to a file."""

    def __init__(self, config: Path, tmp: Path, *args: str, env: dict | None = None, name: str = "agent") -> None:
        self.stderr_path = tmp / f"{name}.err"
        self.stdout_path = tmp / f"{name}.out"
        full_env = {**os.environ, "VOLT_TOKEN": TOKEN, **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "run", "--config", str(config), *args],
            env=full_env, stdout=self.stdout_path.open("wb"), stderr=self.stderr_path.open("wb"), cwd=ROOT,
        )

    def logs(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_started(self, timeout: float = 15) -> None:
        wait_for(lambda: re.search(r"msg=started", self.logs()) or self.proc.poll() is not None, timeout,
                 what="agent start")
        assert self.proc.poll() is None, self.logs()

    def stop(self, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
