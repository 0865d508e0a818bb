"""Crash safety end to end: SIGKILL the agent at random moments while lines are written (and rotated) and
sent to the real stand-in, restart it each time, and prove every line written arrived at least once, with
duplicates bounded by what was in flight or acknowledged but not yet checkpointed at each kill."""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import AgentProcess, wait_for, write_config
from tests.files_support import Writer

KILLS = 25
MAX_RECORDS = 50  # queue limit: records read but not yet acknowledged never exceed it
CHECKPOINT_INTERVAL = 0.1


def _arrival_times(path: Path) -> list[float]:
    return [float(row.split(b" ", 1)[0]) for row in path.read_bytes().splitlines() if row]


def _max_in_window(times: list[float], window: float) -> int:
    """Most arrivals within any `window` seconds: acknowledged records a checkpoint can lag behind."""
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] > window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_no_line_and_duplicates_stay_bounded(tmp_path, standin):
    rnd = random.Random(int(os.environ.get("CRASH_SEED", time.time())))
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "app.log"
    log.write_bytes(b"")
    cfg = write_config(tmp_path / "agent.yaml", endpoint=standin.url, state_dir=tmp_path / "state",
                       extra=f"checkpoint_interval: {CHECKPOINT_INTERVAL}\nqueue:\n  max_records: {MAX_RECORDS}\n",
                       sources=f"""  - name: app
    format: volt-jsonl
    paths: ["{logs}/app.log*"]
    start_at: beginning
    poll_interval: 0.2
""")
    standin.faults({"delay": 0.03, "delay_jitter": True})  # network latency: records really are in flight
    writer = Writer(log, rate=250, reopen=True)
    writer.start()
    rotations = 0

    def rotate() -> None:  # rename+create; the glob matches the old name, which is kept
        nonlocal rotations
        rotations += 1
        os.rename(log, logs / f"app.log.{rotations}")
        os.close(os.open(log, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))

    try:
        for i in range(KILLS):
            agent = AgentProcess(cfg, tmp_path, name=f"agent-{i}")
            time.sleep(rnd.uniform(0.2, 1.2))  # sometimes still starting, mostly reading and sending
            if rnd.random() < 0.3:
                rotate()  # while the agent runs
            time.sleep(rnd.uniform(0.1, 1.0))
            agent.kill()
            assert agent.proc.returncode == -9
            if rnd.random() < 0.3:
                rotate()  # while the agent is down
        agent = AgentProcess(cfg, tmp_path, name="agent-final")
        agent.wait_started()
        written = writer.stop()
        last = f"w-{written - 1}"
        wait_for(lambda: any(r["id"] == last for r in standin.records()), 60, 0.2, what=f"{last}, read last")
        time.sleep(0.5)
        assert agent.stop() == 0, agent.logs()
    finally:
        writer.stop()
    got = Counter(r["id"] for r in standin.records())
    missing = [i for i in range(written) if not got[f"w-{i}"]]
    dups = sum(n - 1 for n in got.values())
    lag = _max_in_window(_arrival_times(standin.arrivals), CHECKPOINT_INTERVAL * 3)
    bound = KILLS * (MAX_RECORDS + lag)
    print(f"crash test: kills={KILLS} rotations={rotations} written={written} "
          f"delivered_unique={len(got)} missing={len(missing)} duplicates={dups} "
          f"bound={bound} (per kill: queue {MAX_RECORDS} + up to {lag} acknowledged within 3 checkpoint intervals)")
    assert got[last] and not missing, f"lines lost: {missing[:20]}"
    assert set(got) == {f"w-{i}" for i in range(written)}
    assert dups <= bound
