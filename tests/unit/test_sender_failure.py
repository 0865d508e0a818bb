"""A sender delivery that dies of a bug must not stall its lane quietly: the agent is told, and stops."""

from __future__ import annotations

import asyncio

from agent.config import load
from agent.ops.metrics import AgentMetrics
from agent.secrets import Secret
from agent.send.deadletter import DeadLetters
from agent.send.queue import Envelope, RecordQueue
from agent.send.sender import Answer, Sender


def _sender_config(tmp_path, extra: str = "", concurrency: int = 1):
    path = tmp_path / "agent.yaml"
    path.write_text(f"volt:\n  endpoint: http://127.0.0.1:9/data/messages\n  allow_insecure_http: true\n"
                    f"  concurrency: {concurrency}\n{extra}state_dir: {tmp_path}\n"
                    f"sources:\n  - name: a\n    format: volt-jsonl\n    paths: [x]\n")
    return load(path)


def test_a_worker_that_raises_reports_the_failure(tmp_path):
    cfg = _sender_config(tmp_path)
    failures: list[str] = []

    async def scenario() -> Sender:
        queue = RecordQueue(10, 1 << 20)
        sender = Sender(cfg.volt, Secret("t0ken-for-the-test"), queue, DeadLetters(str(tmp_path / "dead.jsonl")),
                        AgentMetrics(), on_failure=lambda: failures.append("stop"))

        async def broken(env: Envelope) -> None:
            raise RuntimeError("a bug in the sender")

        sender._deliver = broken  # type: ignore[method-assign]
        async with sender:
            await queue.put(Envelope({"id": "m1"}, b'{"id":"m1"}', None))
            for _ in range(100):
                if failures:
                    break
                await asyncio.sleep(0.01)
        return sender

    sender = asyncio.run(scenario())
    assert failures == ["stop"]
    assert isinstance(sender.failed, RuntimeError) and str(sender.failed) == "a bug in the sender"


def test_a_delivery_that_dies_keeps_its_lane_so_the_ids_next_record_waits(tmp_path):
    cfg = _sender_config(tmp_path, concurrency=4)  # the stand-in delivery below never gives its slot back
    sent: list[bytes] = []

    async def scenario() -> None:
        queue = RecordQueue(10, 1 << 20)
        sender = Sender(cfg.volt, Secret("t0ken-for-the-test"), queue, DeadLetters(str(tmp_path / "dead.jsonl")),
                        AgentMetrics(), on_failure=lambda: None)

        async def deliver(env: Envelope) -> None:
            sent.append(env.body)
            if env.body == b'{"id":"m1","n":1}':
                raise RuntimeError("a bug in the sender")

        sender._deliver = deliver  # type: ignore[method-assign]
        async with sender:
            await queue.put(Envelope({"id": "m1"}, b'{"id":"m1","n":1}', None))
            await queue.put(Envelope({"id": "m1"}, b'{"id":"m1","n":2}', None))
            await queue.put(Envelope({"id": "m2"}, b'{"id":"m2"}', None))
            for _ in range(50):
                await asyncio.sleep(0.01)

    asyncio.run(scenario())
    assert sent == [b'{"id":"m1","n":1}', b'{"id":"m2"}']  # m1's second record never overtakes the first


def test_records_waiting_for_a_slot_when_volt_goes_down_leave_the_probe_alone(tmp_path):
    """Throttled records queue for the one slot; when Volt then fails outright only the probe is sent."""
    cfg = _sender_config(tmp_path, "  retry_initial: 1ms\n  retry_max: 5ms\n")
    mode = {"answer": Answer(429, "slow down")}
    not_the_probe: list[bytes] = []

    async def scenario() -> None:
        queue = RecordQueue(1000, 1 << 22)
        sender = Sender(cfg.volt, Secret("t0ken-for-the-test"), queue, DeadLetters(str(tmp_path / "dead.jsonl")),
                        AgentMetrics())

        async def post(body: bytes) -> Answer:
            gate = sender.gate
            if gate.down and (gate.holder is None or gate.holder.body != body):
                not_the_probe.append(body)
            await asyncio.sleep(0.01)
            return mode["answer"]

        sender._post = post  # type: ignore[method-assign]
        async with sender:
            for i in range(30):
                await queue.put(Envelope({"id": f"m{i}"}, b'{"id":"m%d"}' % i, None))
            await asyncio.sleep(0.5)  # every record was throttled and now waits for the single slot
            mode["answer"] = Answer(None, "refused", error_kind="connection")
            await asyncio.sleep(1.0)
            assert sender.gate.down
            mode["answer"] = Answer(200, "")
            await asyncio.wait_for(queue.drained(), 10)

    asyncio.run(scenario())
    assert not_the_probe == []
