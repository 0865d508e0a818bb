"""A sender delivery that dies of a bug must not stall its lane quietly: the agent is told, and stops."""

from __future__ import annotations

import asyncio

from agent.config import load
from agent.ops.metrics import AgentMetrics
from agent.secrets import Secret
from agent.send.deadletter import DeadLetters
from agent.send.queue import Envelope, RecordQueue
from agent.send.sender import Sender


def test_a_worker_that_raises_reports_the_failure(tmp_path):
    path = tmp_path / "agent.yaml"
    path.write_text(f"volt:\n  endpoint: http://127.0.0.1:9/data/messages\n  allow_insecure_http: true\n"
                    f"  concurrency: 1\nstate_dir: {tmp_path}\nsources:\n  - name: a\n    format: volt-jsonl\n"
                    f"    paths: [x]\n")
    cfg = load(path)
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
