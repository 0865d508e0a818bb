"""Walking skeleton: the agent as a subprocess, the stand-in as a real server on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from tests.conftest import ROOT, TOKEN, AgentProcess, read_jsonl, wait_for, write_config

RECORDS = [
    {"id": "m-1", "provider": "smpp", "status": "sent", "to_number": "+447700900123",
     "message_sent_at": "2026-11-27T01:00:00+00:00"},
    {"id": "m-2", "provider": "twilio", "status": "delivered", "body": "hello", "segment_count": 1},
    {"id": "m-1", "provider": "smpp", "status": "delivered", "message_finalized_at": "2026-11-27T01:00:09+00:00"},
]


def _source(path: Path, start_at: str = "beginning") -> str:
    return f"""  - name: app
    format: volt-jsonl
    paths: ["{path}"]
    start_at: {start_at}
    poll_interval: 0.1
"""


def test_lines_appended_after_start_arrive_exactly_as_mapped(tmp_path, standin):
    log = tmp_path / "app.jsonl"
    log.write_bytes(b"")
    cfg = write_config(tmp_path / "c.yaml", endpoint=standin.url, sources=_source(log, "end"),
                       state_dir=tmp_path / "state")
    agent = AgentProcess(cfg, tmp_path)
    try:
        agent.wait_started()
        with log.open("ab") as fh:
            for r in RECORDS:
                fh.write(orjson.dumps({**r, "error_code": None, "mno_name": ""}) + b"\n")
        got = wait_for(lambda: len(standin.records()) >= 3 and standin.records(), 15, what="3 records")
        assert got == RECORDS
    finally:
        assert agent.stop() == 0, agent.logs()
    assert TOKEN not in agent.logs()


def test_dry_run_once_prints_payloads_and_sends_nothing(tmp_path):
    log = tmp_path / "app.jsonl"
    log.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in RECORDS) + b"not json\n" + b'{"id": "unfinished')
    cfg = write_config(tmp_path / "c.yaml", endpoint="http://127.0.0.1:9/none", sources=_source(log, "end"),
                       state_dir=tmp_path / "state")
    proc = subprocess.run([sys.executable, "-m", "agent.cli", "run", "--config", str(cfg), "--dry-run", "--once"],
                          capture_output=True, cwd=ROOT, timeout=30, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert [orjson.loads(line) for line in proc.stdout.splitlines()] == RECORDS
    assert b"line_rejected" in proc.stderr and b"invalid JSON" in proc.stderr
    assert b"msg=partial_line_left" in proc.stderr and b"bytes=18 " in proc.stderr  # said, not silently dropped
    assert not (tmp_path / "state").exists(), "dry-run must not write checkpoints"


def test_missing_key_names_file_and_key(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("volt:\n  endpoint: https://example.invalid/x\nsources:\n  - name: a\n    format: volt-jsonl\n")
    proc = subprocess.run([sys.executable, "-m", "agent.cli", "run", "--config", str(cfg), "--dry-run"],
                          capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert proc.returncode == 2
    assert str(cfg) in proc.stderr and "sources[a].paths" in proc.stderr and "required" in proc.stderr


def test_invalid_value_names_key_and_expectation(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("volt:\n  endpoint: http://example.invalid/x\nsources:\n  - name: a\n    format: nope\n"
                   "    paths: [x]\n")
    proc = subprocess.run([sys.executable, "-m", "agent.cli", "run", "--config", str(cfg)],
                          capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert proc.returncode == 2
    assert "volt.endpoint" in proc.stderr and "allow_insecure_http" in proc.stderr


def test_wrong_token_gives_clear_error_and_keeps_data(tmp_path, standin):
    log = tmp_path / "app.jsonl"
    log.write_bytes(orjson.dumps(RECORDS[0]) + b"\n")
    cfg = write_config(tmp_path / "c.yaml", endpoint=standin.url, sources=_source(log), state_dir=tmp_path / "s")
    agent = AgentProcess(cfg, tmp_path, env={"VOLT_TOKEN": "wrong-token-123"})
    try:
        wait_for(lambda: "token_rejected" in agent.logs(), 15, what="token_rejected log")
        assert "check the token" in agent.logs()
        assert standin.records() == []
    finally:
        agent.stop()
    assert "wrong-token-123" not in agent.logs()
    # nothing was acknowledged: a restart with the right token delivers the record
    agent = AgentProcess(cfg, tmp_path, name="agent2")
    try:
        wait_for(lambda: standin.records(), 15, what="record after token fixed")
    finally:
        agent.stop()
    assert read_jsonl(standin.out) == [RECORDS[0]]
