"""One agent per state dir: a second `run` exits 2 naming the dir and the holder; readers and dry runs still work."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from agent.files.statelock import LOCK_NAME, StateDirLocked, state_lock
from tests.conftest import ROOT, AgentProcess, wait_for, write_config
from tests.integration.test_operations import AS_NOBODY, _cli, _nobody_cannot_reach, _rec, _source


def test_the_lock_holds_the_pid_refuses_a_second_holder_and_is_free_after(tmp_path: Path):
    state = tmp_path / "var" / "state"  # missing: run creates it, as it does for the checkpoints
    with state_lock(state):
        assert (state / LOCK_NAME).read_text() == f"{os.getpid()}\n"
        with pytest.raises(StateDirLocked) as err, state_lock(state):
            pass
        message = str(err.value)
        assert f"state_dir {state} " in message and f"PID {os.getpid()}" in message
        assert "--state-dir" in message and "systemctl stop" in message
    with state_lock(state):  # released on leaving the block
        pass


def test_a_holder_that_has_not_written_its_pid_yet_is_named_as_starting(tmp_path: Path):
    (tmp_path / LOCK_NAME).write_text("")
    fd = os.open(tmp_path / LOCK_NAME, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(StateDirLocked, match="PID not written yet"), state_lock(tmp_path):
            pass
    finally:
        os.close(fd)


def _running(tmp_path: Path, standin) -> tuple[Path, Path, AgentProcess]:
    log = tmp_path / "a.jsonl"
    log.write_bytes(_rec(1) + _rec(2))
    state = tmp_path / "state"
    cfg = write_config(tmp_path / "c.yaml", endpoint=standin.url, sources=_source("a", log), state_dir=state)
    agent = AgentProcess(cfg, tmp_path)
    agent.wait_started()
    wait_for(lambda: len(standin.records()) == 2, 20, what="both records sent")
    return cfg, state, agent


def test_a_second_run_on_the_same_state_dir_exits_2_naming_the_dir_and_the_holder(tmp_path, standin):
    cfg, state, first = _running(tmp_path, standin)
    try:
        second = AgentProcess(cfg, tmp_path, name="second")
        assert second.proc.wait(30) == 2
        err = second.logs()
        assert f"state_dir {state} " in err and f"PID {first.proc.pid}" in err and "--state-dir" in err
        assert err.count("\n") == 1, err  # one line, no traceback
        assert _cli("run", "--config", str(cfg), "--once").returncode == 2

        # the commands that only read, and a dry run (which keeps no state), work beside the running agent
        for command in (["validate"], ["state"], ["parse"], ["ping"], ["run", "--dry-run", "--once"]):
            done = _cli(*command, "--config", str(cfg))
            assert done.returncode == 0, (command, done.stderr)
        assert "a.jsonl" in _cli("state", "--config", str(cfg)).stdout

        # a reload keeps the lock
        first.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "msg=reloaded" in first.logs(), 15, what="the reload")
        assert _cli("run", "--config", str(cfg), "--once").returncode == 2

        # the advice in the message works: its own --state-dir
        own = _cli("run", "--config", str(cfg), "--once", "--state-dir", str(tmp_path / "debug-state"))
        assert own.returncode == 0, own.stderr
        assert first.proc.poll() is None
    finally:
        assert first.stop() == 0


def test_a_sigkilled_holder_frees_the_lock(tmp_path, standin):
    cfg, _, first = _running(tmp_path, standin)
    first.kill()  # SIGKILL: no cleanup runs, the kernel drops the lock
    after = AgentProcess(cfg, tmp_path, name="after")
    try:
        after.wait_started()
    finally:
        assert after.stop() == 0


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to run as another user")
def test_a_user_who_cannot_write_the_lock_file_is_told_who_holds_it():
    """The service runs as its user; the same config tried from another user's shell cannot open the lock file
    for writing, and hears that an agent holds the dir, not only "permission denied"."""
    top = Path(tempfile.mkdtemp(prefix="volt-lock-"))  # outside pytest's private tmp: nobody must reach it
    try:
        top.chmod(0o755)
        state = top / "state"
        cfg = top / "c.yaml"
        cfg.write_text(f"state_dir: {state}\nsources:\n  - name: a\n    format: volt-jsonl\n    paths: [{top}/a.log]\n")
        cfg.chmod(0o644)
        unreachable = _nobody_cannot_reach(cfg)
        if unreachable:
            pytest.skip(f"user nobody cannot run the agent from {ROOT} on {cfg}: {unreachable}")
        as_nobody = [*AS_NOBODY, sys.executable, "-m", "agent.cli", "run", "--config", str(cfg), "--once"]
        with state_lock(state):
            held = subprocess.run(as_nobody, capture_output=True, text=True, cwd=ROOT, timeout=30)
        free = subprocess.run(as_nobody, capture_output=True, text=True, cwd=ROOT, timeout=30)
    finally:
        shutil.rmtree(top)
    assert held.returncode == 2 and f"in use by another volt-agent run (PID {os.getpid()}" in held.stderr, held.stderr
    assert free.returncode == 1 and "belongs to another user" in free.stderr, free.stderr
    assert "Traceback" not in held.stderr + free.stderr
