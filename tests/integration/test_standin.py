"""The Volt stand-in behaves like the contract says and misbehaves exactly as told.

Other tests and the benchmarks trust it as their fake Volt, so its auth, validation, storage and every
fault are checked here against a real server on 127.0.0.1 (no pytest-asyncio: plain asyncio.run).
"""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the package may not be pip-installed in the venv yet
    sys.path.insert(0, str(ROOT))

from agent.standin import StandIn  # noqa: E402

TOKEN = "test-token-5f2c"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
RECORD: dict[str, Any] = {
    "id": "ex-am-pl-id-12-34",
    "provider": "telnyx",
    "from_number": "+1234567890",
    "to_number": "+1098765432",
    "body": "The text you sent. Text STOP to Unsubscribe. ünïcødé ✓",
    "status": "delivered",
    "message_created_at": "2024-04-24T00:00:00-05:00",
    "segment_count": 2,
}

Scenario = Callable[[StandIn, aiohttp.ClientSession], Awaitable[None]]


def run_with_standin(tmp_path: Path, scenario: Scenario, **kwargs: Any) -> StandIn:
    """Run `scenario` against a fresh stand-in; returns it (stopped) for after-the-fact checks."""

    async def go() -> StandIn:
        timeout = aiohttp.ClientTimeout(total=10)
        async with (
            StandIn(token=TOKEN, out_path=tmp_path / "out.jsonl", **kwargs) as standin,
            aiohttp.ClientSession(timeout=timeout) as session,
        ):
            await scenario(standin, session)
        return standin

    return asyncio.run(go())


async def post(
    session: aiohttp.ClientSession,
    url: str,
    record: Any = RECORD,
    *,
    headers: dict[str, str] | None = None,
    data: bytes | None = None,
    **kwargs: Any,
) -> tuple[int, dict[str, Any], Any]:
    """POST one record (or raw `data`); returns status, headers and the decoded JSON answer."""
    body = data if data is not None else orjson.dumps(record)
    async with session.post(url, data=body, headers=AUTH if headers is None else headers, **kwargs) as r:
        return r.status, dict(r.headers), orjson.loads(await r.read())


def out_lines(tmp_path: Path) -> list[bytes]:
    path = tmp_path / "out.jsonl"
    return path.read_bytes().splitlines() if path.exists() else []


def test_valid_record_is_stored_verbatim(tmp_path: Path) -> None:
    arrivals = tmp_path / "arrivals.txt"

    async def scenario(s: StandIn, session: aiohttp.ClientSession) -> None:
        assert s.url == f"http://127.0.0.1:{s.port}/data/messages"
        assert s.port > 0
        status, _, answer = await post(session, s.url)
        assert status in (200, 202)
        assert answer == {"accepted": True}
        # Flushed per record: readable while the server still runs.
        assert [orjson.loads(line) for line in out_lines(tmp_path)] == [RECORD]
        # POST on "/" is the same endpoint.
        minimal = {"id": "m-1", "provider": "smpp"}
        status, _, _ = await post(session, s.base_url + "/", minimal)
        assert status in (200, 202)
        async with session.get(s.base_url + "/_stats") as r:
            stats = await r.json()
        assert stats["accepted"] == 2
        assert stats["requests"] == 2
        async with session.get(s.base_url + "/_records") as r:
            assert await r.json() == [RECORD, minimal]

    s = run_with_standin(tmp_path, scenario, arrivals_path=arrivals)
    lines = out_lines(tmp_path)
    assert len(lines) == 2
    stored = orjson.loads(lines[0])
    assert stored == RECORD
    assert list(stored) == list(RECORD)  # same fields, same order, nothing added
    assert s.accepted == [RECORD, {"id": "m-1", "provider": "smpp"}]
    assert s.accepted_count == 2
    stamps = [line.split(" ", 1) for line in arrivals.read_text().splitlines()]
    assert [rid for _, rid in stamps] == ["ex-am-pl-id-12-34", "m-1"]
    assert all(abs(float(t) - time.time()) < 60 for t, _ in stamps)


def test_out_file_is_appended_not_truncated(tmp_path: Path) -> None:
    (tmp_path / "out.jsonl").write_bytes(b'{"id":"old","provider":"smpp"}\n')

    async def scenario(s: StandIn, session: aiohttp.ClientSession) -> None:
        assert (await post(session, s.url))[0] == 202

    run_with_standin(tmp_path, scenario)
    assert [orjson.loads(line)["id"] for line in out_lines(tmp_path)] == ["old", RECORD["id"]]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, 401),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401),
        ({"Authorization": "Bearer "}, 401),
        ({"Authorization": "Bearer wrong-token"}, 403),
        ({"Authorization": f"Bearer {TOKEN}x"}, 403),
    ],
)
def test_bad_credentials_are_refused_and_nothing_stored(
    tmp_path: Path, headers: dict[str, str], expected: int
) -> None:
    async def scenario(s: StandIn, session: aiohttp.ClientSession) -> None:
        status, _, answer = await post(session, s.url, headers=headers)
        assert status == expected
        assert isinstance(answer["error"], str) and answer["error"]
        assert TOKEN not in orjson.dumps(answer).decode()
        # The reachability check needs the token too.
        status, _, _ = await post(session, s.url, headers=headers, data=b"")
        assert status == expected

    s = run_with_standin(tmp_path, scenario)
    assert out_lines(tmp_path) == []
    assert s.accepted_count == 0
    assert TOKEN not in repr(s)


def test_bearer_scheme_is_case_insensitive(tmp_path: Path) -> None:
    async def scenario(s: StandIn, session: aiohttp.ClientSession) -> None:
        status, _, _ = await post(session, s.url, headers={"Authorization": f"bearer {TOKEN}"})
        assert status == 202

    run_with_standin(tmp_path, scenario)


def test_default_token_comes_from_env_then_literal(monkeypatch: pytest.MonkeyPatch) -> None:
    async def status_with(token: str) -> int:
        async with StandIn() as s, aiohttp.ClientSession() as session:
            return (await post(session, s.url, headers={"Authorization": f"Bearer {token}"}))[0]

    monkeypatch.delenv("VOLT_TOKEN", raising=False)
    assert asyncio.run(status_with("standin-token")) == 202
    monkeypatch.setenv("VOLT_TOKEN", "from-env")
    assert asyncio.run(status_with("from-env")) == 202
    assert asyncio.run(status_with("standin-token")) == 403


@pytest.mark.parametrize(
    ("record", "needle"),
    [
        ({**RECORD, "status": None}, "null"),
        ({"provider": "telnyx", "status": "sent"}, "'id'"),
        ({"id": "x"}, "'provider'"),
        ({**RECORD, "message_created_at": "24/04/2024 10:00"}, "ISO 8601"),
        ({**RECORD, "message_sent_at": "2024-04-24T00:00:00"}, "offset"),
        ({**RECORD, "colour": "blue"}, "unknown field"),
        ({**RECORD, "segment_count": "2"}, "segment_count"),
        ({**RECORD, "segment_count": 1.5}, "segment_count"),
        ({**RECORD, "segment_count": True}, "segment_count"),
        ({**RECORD, "body": ""}, "empty"),
        ({**RECORD, "provider": "Telnyx"}, "provider"),
        ([RECORD], "JSON object"),
    ],
)
def test_contract_violations_get_4xx_with_reason(tmp_path: Path, record: Any, needle: str) -> None:
    async def scenario(s: StandIn, session: aiohttp.ClientSession) -> None:
        status, _, answer = await post(session, s.url, record)
        assert status in (400, 422)
        if not isinstance(record, dict):
            assert status == 400
        assert needle in answer["error"]

    s = run_with_standin(tmp_path, scenario)
    assert out_lines(tmp_path) == []
    assert s.accepted_count == 0


def test_malformed_json_is_400(tmp_path: Path) -> None:
    async def scenario(s: StandIn, session: aiohttp.ClientSession) -> None:
        status, _, answer = await post(session, s.url, data=b'{"id": "x", "provider": ')
        assert status == 400
        assert "JSON" in answer["error"]

    run_with_standin(tmp_path, scenario)
    assert out_lines(tmp_path) == []


def test_empty_body_is_the_reachability_check(tmp_path: Path) -> None:
    async def scenario(s: StandIn, session: aiohttp.ClientSession) -> None:
        status, _, answer = await post(session, s.url, data=b"")
        assert (status, answer) == (200, {"ok": True})
        assert s.stats()["reachability_checks"] == 1

    s = run_with_standin(tmp_path, scenario)
    assert out_lines(tmp_path) == []
    assert s.accepted_count == 0


def test_status_fault_with_count_then_recovery(tmp_path: Path) -> None:
    async def scenario(s: StandIn, session: aiohttp.ClientSession) -> None:
        s.set_faults({"status": 503, "count": 2})
        for _ in range(2):
            status, headers, answer = await post(session, s.url)
            assert status == 503
            assert "Retry-After" not in headers
            assert "error" in answer
        assert out_lines(tmp_path) == []
        assert s.faults == {}  # count used up
        assert (await post(session, s.url))[0] == 202
        stats = s.stats()
        assert stats["by_status"] == {"202": 1, "503": 2}
        assert stats["requests"] == 3

    s = run_with_standin(tmp_path, scenario)
    assert s.accepted_count == 1
    assert len(out_lines(tmp_path)) == 1


def test_status_fault_for_seconds(tmp_path: Path) -> None:
    async def scenario(s: StandIn, session: aiohttp.ClientSession) -> None:
        s.set_faults({"status": 500, "seconds": 0.3})
        assert (await post(session, s.url))[0] == 500
        assert (await post(session, s.url))[0] == 500
        await asyncio.sleep(0.4)
        assert (await post(session, s.url))[0] == 202

    s = run_with_standin(tmp_path, scenario)
    assert s.accepted_count == 1


def test_status_fault_until_changed_through_admin_endpoint(tmp_path: Path) -> None:
    async def scenario(s: StandIn, session: aiohttp.ClientSession) -> None:
        async with session.post(s.base_url + "/_faults", json={"status": 502}) as r:
            assert r.status == 200
            assert (await r.json())["faults"] == {"status": 502}
        for _ in range(5):
            assert (await post(session, s.url))[0] == 502
        async with session.post(s.base_url + "/_faults", json={"status": None}) as r:
            assert r.status == 200
        assert (await post(session, s.url))[0] == 202

    run_with_standin(tmp_path, scenario)


@pytest.mark.parametrize("retry_after", ["2", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_429_carries_retry_after_verbatim(tmp_path: Path, retry_after: str) -> None:
    async def scenario(s: StandIn, session: aiohttp.ClientSession) -> None:
        async with session.post(
            s.base_url + "/_faults", json={"status": 429, "count": 1, "retry_after": retry_after}
        ) as r:
            assert r.status == 200
        status, headers, _ = await post(session, s.url)
        assert status == 429
        assert headers["Retry-After"] == retry_after
        status, headers, _ = await post(session, s.url)
        assert status == 202
        assert "Retry-After" not in headers
        # Also on an injected 503, and the reachability check is subject to the outage too.
        s.set_faults({"status": 503, "count": 1})
        status, headers, _ = await post(session, s.url, data=b"")
        assert (status, headers["Retry-After"]) == (503, retry_after)

    s = run_with_standin(tmp_path, scenario)
    assert s.accepted_count == 1


def test_delay_fault_slows_answers_and_trips_client_timeouts(tmp_path: Path) -> None:
    async def scenario(s: StandIn, session: aiohttp.ClientSession) -> None:
        s.set_faults({"delay": 0.4, "delay_count": 2})
        with pytest.raises(asyncio.TimeoutError):
            await post(
                session,
                s.url,
                {"id": "timed-out", "provider": "smpp"},
                timeout=aiohttp.ClientTimeout(total=0.1),
            )
        started = time.monotonic()
        assert (await post(session, s.url))[0] == 202
        assert time.monotonic() - started >= 0.35
        started = time.monotonic()
        assert (await post(session, s.url))[0] == 202  # delay_count used up
        assert time.monotonic() - started < 0.3
        await asyncio.sleep(0.4)

    s = run_with_standin(tmp_path, scenario)
    # Like a real server, a request the client gave up on may still have been accepted.
    assert {r["id"] for r in s.accepted} == {"timed-out", RECORD["id"]}


def test_delay_without_count_applies_to_every_request(tmp_path: Path) -> None:
    async def scenario(s: StandIn, session: aiohttp.ClientSession) -> None:
        s.set_faults({"delay": 0.15})
        started = time.monotonic()
        await asyncio.gather(*(post(session, s.url) for _ in range(3)))
        elapsed = time.monotonic() - started
        assert 0.14 <= elapsed < 1.0  # delayed, but concurrently: the server is not blocked
        assert s.faults == {"delay": 0.15}

    run_with_standin(tmp_path, scenario)


def test_delay_jitter_in_seconds_adds_a_random_wait_on_top_of_the_delay(tmp_path: Path) -> None:
    async def scenario(s: StandIn, session: aiohttp.ClientSession) -> None:
        s.set_faults({"delay": 0.1, "delay_jitter": 0.05})
        assert s.faults == {"delay": 0.1, "delay_jitter": 0.05}
        took = []
        for _ in range(6):
            started = time.monotonic()
            assert (await post(session, s.url))[0] == 202
            took.append(time.monotonic() - started)
        assert min(took) >= 0.1, "the jitter comes on top of the delay, never instead of it"
        assert max(took) - min(took) > 0.001, "a random part"

    run_with_standin(tmp_path, scenario)


def test_capacity_serves_n_at_once_and_answers_429_beyond(tmp_path: Path) -> None:
    async def scenario(s: StandIn, session: aiohttp.ClientSession) -> None:
        s.set_faults({"capacity": 3, "delay": 0.3})
        answers = await asyncio.gather(*(post(session, s.url, {"id": f"c-{i}", "provider": "smpp"})
                                         for i in range(5)))
        statuses = sorted(status for status, _, _ in answers)
        assert statuses == [202, 202, 202, 429, 429]
        assert {h.get("Retry-After") for status, h, _ in answers if status == 429} == {"1"}
        assert s.stats()["serving_peak"] == 3
        # the requests served are done: there is room again, and Retry-After follows "retry_after"
        s.set_faults({"retry_after": "2"})
        assert (await post(session, s.url))[0] == 202
        answers = await asyncio.gather(*(post(session, s.url) for _ in range(4)))
        assert [h["Retry-After"] for status, h, _ in answers if status == 429] == ["2"]
        assert s.set_faults({"capacity": None}) == {"delay": 0.3, "retry_after": "2"}

    s = run_with_standin(tmp_path, scenario)
    assert s.stats()["by_status"] == {"202": 7, "429": 3}


def test_drop_fault_closes_connection_without_answer(tmp_path: Path) -> None:
    async def scenario(s: StandIn, session: aiohttp.ClientSession) -> None:
        assert (await post(session, s.url, {"id": "before", "provider": "smpp"}))[0] == 202
        s.set_faults({"drop": 2})
        for _ in range(2):
            with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
                await post(session, s.url, {"id": "dropped", "provider": "smpp"})
        assert (await post(session, s.url, {"id": "after", "provider": "smpp"}))[0] == 202
        assert s.stats()["dropped"] == 2

    s = run_with_standin(tmp_path, scenario)
    assert [r["id"] for r in s.accepted] == ["before", "after"]
    assert [orjson.loads(line)["id"] for line in out_lines(tmp_path)] == ["before", "after"]


def test_reject_ids_only_rejects_those_ids(tmp_path: Path) -> None:
    async def scenario(s: StandIn, session: aiohttp.ClientSession) -> None:
        s.set_faults({"reject_ids": ["bad-1", "bad-2"]})
        for _ in range(2):  # permanent: every attempt is refused
            status, _, answer = await post(session, s.url, {"id": "bad-1", "provider": "smpp"})
            assert (status, answer) == (400, {"error": "rejected by fault injection"})
        assert (await post(session, s.url, {"id": "good", "provider": "smpp"}))[0] == 202

    s = run_with_standin(tmp_path, scenario)
    assert [r["id"] for r in s.accepted] == ["good"]


def test_clear_removes_every_fault(tmp_path: Path) -> None:
    async def scenario(s: StandIn, session: aiohttp.ClientSession) -> None:
        s.set_faults({"status": 503, "retry_after": "1", "delay": 5, "drop": 3, "reject_ids": [RECORD["id"]]})
        assert set(s.faults) == {"status", "retry_after", "delay", "drop", "reject_ids", "reject_status"}
        async with session.post(s.base_url + "/_faults", json={"clear": True}) as r:
            assert (await r.json())["faults"] == {}
        started = time.monotonic()
        assert (await post(session, s.url))[0] == 202
        assert time.monotonic() - started < 1
        # clear plus new keys in one object: the old ones go, the new ones apply.
        s.set_faults({"status": 503})
        assert s.set_faults({"clear": True, "status": 429, "count": 1}) == {"status": 429, "count": 1}

    run_with_standin(tmp_path, scenario)


def test_faults_given_at_start_and_combined(tmp_path: Path) -> None:
    async def scenario(s: StandIn, session: aiohttp.ClientSession) -> None:
        # drop comes before the injected status; the status still counts down afterwards.
        with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
            await post(session, s.url)
        assert (await post(session, s.url))[0] == 503
        assert (await post(session, s.url))[0] == 202

    s = run_with_standin(tmp_path, scenario, faults={"status": 503, "count": 1, "drop": 1})
    assert s.accepted_count == 1


def test_malformed_faults_are_refused_whole(tmp_path: Path) -> None:
    async def scenario(s: StandIn, session: aiohttp.ClientSession) -> None:
        for bad in ({"stauts": 503}, {"status": "503"}, {"count": 2}, {"drop": -1}, {"reject_ids": "x"}, [1],
                    {"capacity": 0}, {"capacity": 1.5}, {"delay": 1, "delay_jitter": -1}):
            async with session.post(s.base_url + "/_faults", json=bad) as r:
                assert r.status == 400
                assert (await r.json())["error"]
        async with session.post(s.base_url + "/_faults", data=b"{not json") as r:
            assert r.status == 400
        # A bad key refuses the whole object: the good part of it is not applied either.
        with pytest.raises(ValueError, match="delay"):
            s.set_faults({"status": 503, "delay": -1})
        assert s.faults == {}
        async with session.get(s.base_url + "/_faults") as r:
            assert await r.json() == {"faults": {}}

    run_with_standin(tmp_path, scenario)


def test_accepts_a_burst_of_concurrent_records(tmp_path: Path) -> None:
    async def scenario(s: StandIn, session: aiohttp.ClientSession) -> None:
        records = [{"id": f"burst-{i}", "provider": "smpp", "segment_count": 1} for i in range(300)]
        statuses = await asyncio.gather(*(post(session, s.url, r) for r in records))
        assert {st for st, _, _ in statuses} == {202}

    s = run_with_standin(tmp_path, scenario)
    assert s.accepted_count == 300
    ids = [orjson.loads(line)["id"] for line in out_lines(tmp_path)]
    assert sorted(ids) == sorted(f"burst-{i}" for i in range(300))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_module_runs_as_a_process_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    out = tmp_path / "cli-out.jsonl"
    secret = "cli-secret-9b1e"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STANDIN_TEST_TOKEN": secret}
    cmd = [
        sys.executable,
        "-m",
        "agent.standin",
        "--port",
        str(port),
        "--out",
        str(out),
        "--token-env",
        "STANDIN_TEST_TOKEN",
        "--fault",
        '{"reject_ids": ["cli-bad"]}',
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 15
        url = None
        while url is None:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no listening line in time; stderr so far: {seen}"
            line = lines.get(timeout=remaining)
            assert line is not None, f"stand-in exited early (rc={proc.wait(5)}); stderr: {seen}"
            seen.append(line)
            if line.startswith("standin listening url="):
                url = line.strip().split("url=", 1)[1]
        assert url == f"http://127.0.0.1:{port}/data/messages"

        async def talk() -> list[int]:
            auth = {"Authorization": f"Bearer {secret}"}
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
                return [
                    (await post(session, url, RECORD, headers=auth))[0],
                    (await post(session, url, {"id": "cli-bad", "provider": "smpp"}, headers=auth))[0],
                    (await post(session, url, RECORD, headers={"Authorization": "Bearer nope"}))[0],
                ]

        assert asyncio.run(talk()) == [202, 400, 403]
        assert [orjson.loads(line) for line in out.read_bytes().splitlines()] == [RECORD]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    reader.join(timeout=10)
    while (line := lines.get_nowait()) is not None:
        seen.append(line)
    stderr = "".join(seen)
    assert "standin stopped" in stderr
    assert secret not in stderr


def test_cli_refuses_a_bad_fault_an_unset_token_env_and_a_short_token(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NO_SUCH_TOKEN_VAR"}
    env["PYTHONPATH"] = str(ROOT)
    base = [sys.executable, "-m", "agent.standin", "--out", str(tmp_path / "o.jsonl")]
    for extra, needle in (
        (["--fault", '{"status": "soon"}'], "status"),
        (["--token-env", "NO_SUCH_TOKEN_VAR"], "NO_SUCH_TOKEN_VAR"),
        (["--token", "short"], "--token is shorter than 8 characters"),  # the agent would refuse it
    ):
        done = subprocess.run(base + extra, cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
        assert done.returncode == 2
        assert needle in done.stderr
