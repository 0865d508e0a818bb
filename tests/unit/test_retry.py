"""Retry timing and answer classification (pure), and the small schedulers the deliveries share."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime
from email.utils import format_datetime, formatdate

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.send.concurrency import Controller, Signal
from agent.send.retry import RETRY_AFTER_MAX, Outcome, backoff, classify, retry_after, retry_delay
from agent.send.sender import ProbeGate, RateLimiter, Slots

NOW = 1_790_000_000.0  # a fixed Unix time, so HTTP-dates are exact


@pytest.mark.parametrize(("status", "outcome"), [
    (200, Outcome.ACCEPTED), (202, Outcome.ACCEPTED), (204, Outcome.ACCEPTED),
    (None, Outcome.RETRY), (408, Outcome.RETRY), (429, Outcome.RETRY), (500, Outcome.RETRY),
    (502, Outcome.RETRY), (503, Outcome.RETRY), (599, Outcome.RETRY),
    (401, Outcome.AUTH), (403, Outcome.AUTH),
    (301, Outcome.ENDPOINT), (307, Outcome.ENDPOINT), (308, Outcome.ENDPOINT),
    (404, Outcome.ENDPOINT), (405, Outcome.ENDPOINT), (407, Outcome.ENDPOINT),
    (400, Outcome.REJECT), (413, Outcome.REJECT),
    (422, Outcome.REJECT), (499, Outcome.REJECT),
])
def test_classify_follows_the_contract(status, outcome):
    assert classify(status) is outcome


@given(attempt=st.integers(-3, 10_000), initial=st.floats(0.001, 30), cap=st.floats(0.001, 3600))
def test_backoff_stays_within_zero_and_the_capped_exponential(attempt, initial, cap):
    delay = backoff(attempt, initial, cap)
    assert 0 <= delay <= min(cap, initial * 2 ** min(max(attempt, 0), 62))


def test_backoff_is_full_jitter_spread_over_the_whole_range():
    rand = random.Random(7)
    samples = [backoff(20, 0.5, 60.0, rand) for _ in range(4000)]
    assert min(samples) < 3 and max(samples) > 57  # full jitter reaches both ends of [0, cap]
    assert 27 < sum(samples) / len(samples) < 33  # uniform: mean near cap / 2
    first = [backoff(0, 0.5, 60.0, rand) for _ in range(200)]
    assert max(first) <= 0.5  # the first retry waits at most `initial`


def test_backoff_ceiling_doubles_per_attempt_until_the_cap():
    rand = random.Random(1)
    for attempt in range(12):
        ceiling = min(5.0, 0.1 * 2**attempt)
        top = max(backoff(attempt, 0.1, 5.0, rand) for _ in range(300))
        assert 0.9 * ceiling < top <= ceiling


@pytest.fixture
def far_from_utc(monkeypatch):
    """Local time 5:30 ahead of UTC, so a date wrongly read as local time is off by hours."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize(("header", "expected"), [
    ("2", 2.0), (" 120 ", 120.0), ("0", 0.0), ("99999999", RETRY_AFTER_MAX),
    (formatdate(NOW + 30, usegmt=True), 30.0),
    (formatdate(NOW - 30, usegmt=True), 0.0),  # a date in the past: no extra wait
    (format_datetime(datetime.fromtimestamp(NOW + 45, UTC).replace(tzinfo=None)), 45.0),  # "-0000": UTC
    (formatdate(NOW + 86400 * 3, usegmt=True), RETRY_AFTER_MAX),
])
def test_retry_after_reads_seconds_and_http_dates(header, expected, far_from_utc):
    assert retry_after(header, NOW) == pytest.approx(expected)


@pytest.mark.parametrize("header", [None, "", "soon", "1.5", "-1", "²", "٣", "Fri, 99 Foo 2026 99:99:99 GMT"])
def test_retry_after_ignores_what_it_cannot_read(header):
    assert retry_after(header, NOW) is None


@given(st.text(max_size=40))
def test_retry_after_never_raises_and_stays_bounded(header):
    value = retry_after(header, NOW)
    assert value is None or 0 <= value <= RETRY_AFTER_MAX


@given(attempt=st.integers(0, 60), header=st.one_of(st.none(), st.integers(0, 5000).map(str)))
def test_retry_delay_never_comes_back_sooner_than_retry_after(attempt, header):
    delay = retry_delay(attempt, 0.05, 0.5, header, NOW)
    asked = retry_after(header, NOW)
    if asked is None:
        assert 0 <= delay <= 0.5
    else:
        assert asked <= delay <= max(asked, 0.5)


def test_probe_gate_lets_one_worker_probe_while_down_and_everyone_through_after():
    async def scenario() -> list[str]:
        gate = ProbeGate()
        events: list[str] = []
        await gate.turn(0)  # healthy: nobody waits
        gate.failed(0)  # worker 0 saw the outage first and holds the probe
        gate.failed(1)  # worker 1's request failed too, but it does not get a second probe

        async def worker(i: int) -> None:
            await gate.turn(i)
            events.append(f"through-{i}")

        waiting = [asyncio.create_task(worker(i)) for i in (1, 2)]
        await asyncio.sleep(0.01)
        assert events == []  # 1 and 2 wait while 0 probes
        await gate.turn(0)  # the holder itself is never blocked
        gate.release(0)  # 0 gives up on its record: the next waiting worker takes the probe
        await asyncio.sleep(0.01)
        assert len(events) == 1 and gate.holder == int(events[0][-1])
        down_for = gate.succeeded()
        await asyncio.gather(*waiting)
        assert down_for is not None and down_for >= 0.02
        assert gate.succeeded() is None  # already up
        return events

    assert sorted(asyncio.run(scenario())) == ["through-1", "through-2"]


def test_rate_limiter_spaces_requests_evenly():
    async def scenario(rate: float, n: int) -> float:
        limiter = RateLimiter(rate)
        start = time.monotonic()
        await asyncio.gather(*(limiter.acquire() for _ in range(n)))
        return time.monotonic() - start

    assert asyncio.run(scenario(50, 11)) >= 10 / 50 - 0.01
    assert asyncio.run(scenario(0, 1000)) < 1  # 0 means no limit: nothing sleeps


def test_slots_keep_in_flight_within_the_limit_first_come_first_served_and_survive_a_cancel():
    async def scenario() -> list[int]:
        ctl = Controller(2, 2)
        slots = Slots(ctl)
        order: list[int] = []
        await slots.acquire()
        await slots.acquire()
        assert ctl.in_flight == 2

        async def waiter(i: int) -> None:
            await slots.acquire()
            order.append(i)

        waiting = [asyncio.create_task(waiter(i)) for i in range(3)]
        await asyncio.sleep(0.01)
        assert order == [] and ctl.in_flight == 2
        waiting[0].cancel()  # a waiter cancelled at shutdown neither takes nor blocks a slot
        await asyncio.sleep(0)
        ctl.finish(Signal.ACCEPTED, 0.01, ctl.epoch)
        slots.wake()
        await asyncio.sleep(0.01)
        assert order == [1] and ctl.in_flight == 2
        ctl.finish(Signal.ACCEPTED, 0.01, ctl.epoch)
        slots.wake()
        await asyncio.gather(*waiting[1:])
        assert ctl.in_flight == 2
        return order

    assert asyncio.run(scenario()) == [1, 2]
