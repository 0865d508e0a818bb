"""Dead letters: every entry written at once, made durable once per checkpoint rather than once per record."""

from __future__ import annotations

import os

import orjson
import pytest

from agent.send.deadletter import DeadLetters


def test_entries_are_written_at_once_and_synced_once_per_checkpoint(tmp_path, monkeypatch):
    fsyncs: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (fsyncs.append(fd), real(fd))[1])
    dead = DeadLetters(tmp_path / "dead.jsonl")
    for i in range(100):
        dead.write({"id": f"m{i}", "provider": "smpp"}, 422, "Volt refused the record with HTTP 422", "x" * 500)
    lines = (tmp_path / "dead.jsonl").read_bytes().splitlines()
    assert len(lines) == 100 and fsyncs == [], "written before the ack, not yet synced"
    assert orjson.loads(lines[0])["response"] == "x" * 200
    dead.sync()
    dead.sync()  # nothing new: no second fsync
    assert len(fsyncs) == 1
    dead.write({"id": "last", "provider": "smpp"}, 400, "refused", "")
    dead.close()
    assert len(fsyncs) == 2 and (tmp_path / "dead.jsonl").stat().st_mode & 0o077 == 0


def test_a_failed_sync_keeps_failing_so_no_checkpoint_moves_past_the_entries(tmp_path, monkeypatch):
    dead = DeadLetters(tmp_path / "dead.jsonl")
    dead.write({"id": "m1", "provider": "smpp"}, 422, "refused", "")

    def broken(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError):
        dead.close()
    monkeypatch.undo()
    with pytest.raises(OSError, match="could not be made durable"):
        dead.sync()
