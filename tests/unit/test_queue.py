"""The bounded queue in lanes: bounds in records and bytes, waiting producers, one id out at a time, per-id order."""

from __future__ import annotations

import asyncio
import random

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.send.queue import Envelope, RecordQueue


def _env(rid: str, seq: int = 1, pad: int = 0) -> Envelope:
    record = {"id": rid, "provider": "smpp", "segment_count": seq, **({"body": "x" * pad} if pad else {})}
    return Envelope(record, orjson.dumps(record), None)


async def _blocked(coro_task: asyncio.Task) -> bool:
    await asyncio.sleep(0.02)
    return not coro_task.done()


def test_put_waits_when_the_record_limit_is_reached_and_resumes_on_finish():
    async def scenario() -> None:
        q = RecordQueue(max_records=3, max_bytes=1 << 20)
        for i in range(3):
            await q.put(_env(f"a{i}"))
        late = asyncio.create_task(q.put(_env("late")))
        assert await _blocked(late)
        assert q.records == 3
        env = await q.get()
        assert await _blocked(late), "taken by a worker but not finished: still counts against the bound"
        q.finish(env)
        await asyncio.wait_for(late, 1)
        assert q.records == 3 and q.peak_records == 3

    asyncio.run(scenario())


def test_put_waits_when_the_byte_limit_is_reached():
    async def scenario() -> None:
        size = len(_env("b0", pad=100).body)
        q = RecordQueue(max_records=100, max_bytes=2 * size + 10)
        await q.put(_env("b0", pad=100))
        await q.put(_env("b1", pad=100))
        late = asyncio.create_task(q.put(_env("b2", pad=100)))
        assert await _blocked(late)
        assert q.bytes == 2 * size
        q.finish(await q.get())
        await asyncio.wait_for(late, 1)
        assert q.peak_bytes <= 2 * size + 10

    asyncio.run(scenario())


def test_a_record_larger_than_max_bytes_still_goes_through_alone():
    async def scenario() -> None:
        q = RecordQueue(max_records=10, max_bytes=50)
        await asyncio.wait_for(q.put(_env("huge", pad=500)), 1)  # empty queue: admitted, never wedged
        late = asyncio.create_task(q.put(_env("small")))
        assert await _blocked(late)
        q.finish(await q.get())
        await asyncio.wait_for(late, 1)

    asyncio.run(scenario())


def test_room_goes_to_the_longest_waiting_producer_not_to_whoever_offers_first():
    async def scenario() -> None:
        q = RecordQueue(max_records=10, max_bytes=600)
        for i in range(5):
            assert q.offer(_env(f"s{i}", pad=60))
        big = asyncio.create_task(q.put(_env("big", pad=400)))  # does not fit until most of the queue is done
        assert await _blocked(big)
        for i in range(5):
            q.finish(await q.get())
            assert not q.offer(_env(f"busy{i}")), "a small record may not slip past the waiting one"
        await asyncio.wait_for(big, 1)
        assert q.offer(_env("after"))
        waiting = [asyncio.create_task(q.put(_env(f"w{i}", pad=400))) for i in range(2)]
        assert await _blocked(waiting[0]) and await _blocked(waiting[1])
        waiting[0].cancel()  # a cancelled producer hands its turn on
        q.finish(await q.get())
        q.finish(await q.get())
        await asyncio.wait_for(waiting[1], 1)

    asyncio.run(scenario())


def test_drained_waits_for_every_record_to_finish():
    async def scenario() -> None:
        q = RecordQueue(max_records=10, max_bytes=1 << 20)
        await asyncio.wait_for(q.drained(), 1)
        await q.put(_env("d1"))
        waiter = asyncio.create_task(q.drained())
        assert await _blocked(waiter)
        q.finish(await q.get())
        await asyncio.wait_for(waiter, 1)

    asyncio.run(scenario())


def test_zero_bounds_are_refused():
    with pytest.raises(ValueError, match="at least 1"):
        RecordQueue(max_records=0, max_bytes=1)


def test_a_lane_with_a_record_out_is_skipped_until_it_is_finished():
    async def scenario() -> None:
        q = RecordQueue(max_records=10, max_bytes=1 << 20)
        other = "b"
        for rid, seq in (("a", 1), ("a", 2), (other, 1)):
            await q.put(_env(rid, seq))
        first = await q.get()
        assert (first.id, first.record["segment_count"]) == ("a", 1)
        second = await q.get()
        assert second.id == other, "a's lane is busy while a/1 is out: a/2 must wait"
        third = asyncio.create_task(q.get())
        assert await _blocked(third), "nothing ready: a is out, b is out"
        q.finish(first)
        got = await asyncio.wait_for(third, 1)
        assert (got.id, got.record["segment_count"]) == ("a", 2)

    asyncio.run(scenario())


@settings(max_examples=40, deadline=None)
@given(
    ids=st.lists(st.sampled_from([f"id-{i}" for i in range(12)]), min_size=1, max_size=120),
    consumers=st.integers(1, 30),
    max_records=st.integers(1, 8),
    seed=st.integers(0, 2**16),
)
def test_concurrent_consumers_keep_per_id_order_and_the_bounds(ids, consumers, max_records, seed):
    """Producers and any number of consumers (the limit does not matter) with random service times, like the
    sender: an id is never out twice at once, per-id FIFO holds, and the queue never exceeds its bound."""

    async def scenario() -> tuple[list[Envelope], int]:
        rng = random.Random(seed)
        q = RecordQueue(max_records, 1 << 20)
        written: dict[str, int] = {}
        envs = []
        for rid in ids:
            written[rid] = written.get(rid, 0) + 1
            envs.append(_env(rid, written[rid]))
        delivered: list[Envelope] = []
        out: set[str] = set()
        peak = 0

        async def consumer() -> None:
            nonlocal peak
            while True:
                env = await q.get()
                assert env.id not in out, "one id out twice"
                out.add(env.id)
                peak = max(peak, q.records)
                await asyncio.sleep(rng.random() * 0.002)
                out.discard(env.id)
                delivered.append(env)
                q.finish(env)

        tasks = [asyncio.create_task(consumer()) for _ in range(consumers)]
        for env in envs:
            await q.put(env)
            assert q.records <= max_records
        await asyncio.wait_for(q.drained(), 10)
        for t in tasks:
            t.cancel()
        return delivered, peak

    delivered, peak = asyncio.run(scenario())
    assert len(delivered) == len(ids)
    assert peak <= max_records
    seen: dict[str, list[int]] = {}
    for env in delivered:
        seen.setdefault(env.id, []).append(env.record["segment_count"])
    assert all(seqs == list(range(1, len(seqs) + 1)) for seqs in seen.values())


def test_an_id_never_waits_behind_another_id_and_finished_lanes_are_dropped():
    """Many ids with one record out each: every other id is still handed out at once (a lane shared by a hash
    would hold some back for a whole round trip), and a lane is gone once its last record is finished."""

    async def scenario() -> None:
        q = RecordQueue(max_records=5000, max_bytes=1 << 24)
        for i in range(4000):
            await q.put(_env(f"id-{i}"))
        await q.put(_env("id-0", 2))
        out = [await asyncio.wait_for(q.get(), 1) for _ in range(4000)]
        assert sorted(e.id for e in out) == sorted(f"id-{i}" for i in range(4000))
        late = asyncio.create_task(q.get())
        assert await _blocked(late), "id-0's second record waits for its first"
        for env in out:
            q.finish(env)
        got = await asyncio.wait_for(late, 1)
        assert (got.id, got.record["segment_count"]) == ("id-0", 2)
        q.finish(got)
        assert q._lanes == {}

    asyncio.run(scenario())


def test_a_lane_kept_busy_after_a_failed_delivery_holds_that_ids_later_records_and_no_other():
    """A delivery that died of a bug keeps its lane (the agent stops): that id's later records are never handed
    out before it, other ids still are, and the bounds still count them."""

    async def scenario() -> None:
        q = RecordQueue(max_records=10, max_bytes=1 << 20)
        await q.put(_env("a", 1))
        first = await q.get()
        q.finish(first, release_lane=False)
        await q.put(_env("a", 2))
        await q.put(_env("b", 1))
        got = await asyncio.wait_for(q.get(), 1)
        assert got.id == "b"
        late = asyncio.create_task(q.get())
        assert await _blocked(late), "a/2 stays behind a/1, which is read again after the restart"
        assert q.records == 2
        late.cancel()

    asyncio.run(scenario())
