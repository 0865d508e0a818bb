"""The control socket with real unix sockets: owner-only, stale ones replaced, a live one never taken over,
removed only by the agent that made it; and the ops app served on it."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
from pathlib import Path

import pytest

from agent.ops.control import ControlSocket, ControlSocketError, socket_path
from agent.ops.http import OpsServer
from agent.ops.metrics import AgentMetrics
from agent.ops.scrape import AgentUnreachable, Target


@pytest.fixture
def path(tmp_path: Path) -> Path:
    p = socket_path(tmp_path)
    if len(os.fsencode(p)) > 107:
        pytest.skip(f"the temporary directory's path is too long for a unix socket: {p}")
    return p


def _listening(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(1)
    return sock


def test_socket_is_owner_only_and_removed_by_its_owner(path: Path) -> None:
    control = ControlSocket(path)
    sock = control.open()
    try:
        mode = os.lstat(path).st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    finally:
        sock.close()
    control.remove()
    assert not path.exists()


def test_stale_socket_is_replaced(path: Path) -> None:
    _listening(path).close()  # an agent killed with -9 leaves its socket behind; nobody listens on it
    sock = ControlSocket(path).open()
    sock.close()
    assert stat.S_ISSOCK(os.lstat(path).st_mode)


def test_socket_another_agent_answers_on_is_left_alone(path: Path) -> None:
    other = _listening(path)
    try:
        before = os.lstat(path).st_ino
        with pytest.raises(ControlSocketError, match="another agent answers"):
            ControlSocket(path).open()
        assert os.lstat(path).st_ino == before
    finally:
        other.close()


def test_a_file_that_is_no_socket_is_left_alone(path: Path) -> None:
    path.write_text("not mine")
    with pytest.raises(ControlSocketError, match="not a socket"):
        ControlSocket(path).open()
    assert path.read_text() == "not mine"


def test_remove_leaves_a_socket_made_by_someone_else(path: Path) -> None:
    control = ControlSocket(path)
    control.open().close()
    successor = _listening(path.with_name("new.sock"))
    os.rename(path.with_name("new.sock"), path)  # a later agent took the dead socket's place
    try:
        control.remove()
        assert path.exists()
    finally:
        successor.close()


def test_too_long_a_path_is_refused_with_the_reason(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120) / "control.sock"
    with pytest.raises(ControlSocketError, match="longer than the 107 bytes"):
        ControlSocket(deep).open()
    with pytest.raises(AgentUnreachable, match="longer than the 107 bytes"):
        Target(socket_path=deep).get("/metrics")


def test_ops_app_on_the_control_socket(path: Path) -> None:
    metrics = AgentMetrics()
    metrics.lines_read.labels("kannel").inc(3)

    async def scenario() -> None:
        ops = OpsServer(None, metrics.registry.render, lambda: (False, "Volt rejects the token"),
                        status=lambda: {"ready": False, "held": "records held"}, control=ControlSocket(path))
        async with ops:
            assert ops.port is None  # no TCP address asked for: none opened
            target = Target(socket_path=path)
            snap = await asyncio.to_thread(target.snapshot)
            assert snap.samples["volt_agent_lines_read_total"] == {(("source", "kannel"),): 3.0}
            assert snap.status == {"ready": False, "held": "records held"}
            assert await asyncio.to_thread(target.get, "/readyz") == (503, b"Volt rejects the token")
        assert not path.exists()
        with pytest.raises(AgentUnreachable, match=f"no agent is running: no control socket at {path}"):
            Target(socket_path=path).get("/metrics")

    asyncio.run(scenario())


def test_ops_server_without_its_socket_still_serves_tcp(path: Path) -> None:
    other = _listening(path)

    async def scenario() -> None:
        ops = OpsServer("127.0.0.1:0", AgentMetrics().registry.render, lambda: (True, "ready"),
                        control=ControlSocket(path))
        async with ops:
            assert ops.port and ops.control is None
            code, _ = await asyncio.to_thread(Target(url=f"http://127.0.0.1:{ops.port}").get, "/healthz")
            assert code == 200
        assert path.exists(), "the other agent's socket stays"

    try:
        asyncio.run(scenario())
    finally:
        other.close()
