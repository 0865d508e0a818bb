"""Rate-limited log lines: repeats are folded into a count, and the keys (file paths) cannot pile up."""

from __future__ import annotations

import logging

from agent.ops import logs


def test_repeats_are_folded_and_quiet_keys_are_forgotten(monkeypatch, caplog):
    clock = [1000.0]
    monkeypatch.setattr(logs.time, "monotonic", lambda: clock[0])
    log = logs.get("volt_agent.test")
    caplog.set_level(logging.INFO)
    for _ in range(5):
        log.limited(logging.WARNING, "read:/a", "read_failed", every=10.0)
    clock[0] += 11
    log.limited(logging.WARNING, "read:/a", "read_failed", every=10.0)
    assert [getattr(r, "fields", {}).get("repeated") for r in caplog.records] == [None, 4]

    for i in range(logs.LIMITED_KEYS):
        log.limited(logging.INFO, f"read:/rotated-{i}", "read_failed")
    clock[0] += 3601
    log.limited(logging.INFO, "read:/new", "read_failed")
    assert len(log._last) == 1, "keys quiet for an hour are dropped once there are too many"


def test_a_caller_asking_due_first_folds_the_same_lines_as_limited(monkeypatch, caplog):
    """The per-line path asks `due()` before it builds a line: the lines it skips are counted into the next one."""
    clock = [1000.0]
    monkeypatch.setattr(logs.time, "monotonic", lambda: clock[0])
    log = logs.get("volt_agent.test.due")
    caplog.set_level(logging.INFO)
    written = 0
    for _ in range(3):
        for _ in range(5):
            if log.due("rej:s", 10.0):
                written += 1
                log.limited(logging.WARNING, "rej:s", "line_rejected", every=10.0)
        clock[0] += 11
    assert written == 3
    assert [getattr(r, "fields", {}).get("repeated") for r in caplog.records] == [None, 4, 4]


def test_json_logs_keep_a_line_with_a_file_name_that_is_not_utf8(capsys):
    logs.setup("json", "info")
    try:
        logs.get("volt_agent.test").info("file_opened", path="/var/log/app-\udcff.log")
    finally:
        logs.setup("logfmt", "info")
    assert '"path": "/var/log/app-\\udcff.log"' in capsys.readouterr().err
