"""The sender: one aiohttp session, `concurrency` workers (one per queue partition), retries, dead letters.

Retriable failures (connection errors, timeouts, 408, 429, 5xx) wait with full-jitter backoff or
Retry-After, unlimited by default: data waits, it is not dropped. While Volt is down only one worker
probes it; the others wait for it to come back. 401/403 keep the data and retry slowly, with an
actionable error at most once a minute. Other 4xx go to the dead-letter file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import aiohttp
import orjson

from agent import __version__
from agent.config import VoltConfig
from agent.files.acks import Pending
from agent.ops import logs
from agent.ops.metrics import AgentMetrics
from agent.secrets import Secret
from agent.send.deadletter import DeadLetters
from agent.send.queue import Envelope, RecordQueue
from agent.send.retry import backoff, classify, retry_after

log = logs.get("volt_agent.sender")
USER_AGENT = f"volt-agent/{__version__}"
EXCERPT = 200


class Redactor:
    """Removes the token from any text that might be logged (an echoing proxy, an exception)."""

    def __init__(self, token: Secret) -> None:
        self._token = token.reveal()

    def __call__(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token and self._token in text else text


class ProbeGate:
    """While Volt is failing, one worker at a time probes it; the rest wait until it answers."""

    def __init__(self) -> None:
        self.healthy = True
        self.holder: int | None = None
        self._up = asyncio.Event()
        self._up.set()

    async def turn(self, worker: int) -> None:
        while not self.healthy:
            if self.holder is None:
                self.holder = worker
            if self.holder == worker:
                return
            await self._up.wait()

    def failed(self, worker: int) -> None:
        # the first worker to fail keeps the probe while it backs off, so nobody else rushes in
        self.healthy = False
        self._up.clear()
        if self.holder is None:
            self.holder = worker

    def succeeded(self) -> None:
        self.healthy = True
        self.holder = None
        self._up.set()


class RateLimiter:
    """Token bucket: at most `rate` records per second across all workers (0 = no limit)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._next = 0.0

    async def acquire(self) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        wait = self._next - now
        self._next = max(now, self._next) + 1.0 / self.rate
        if wait > 0:
            await asyncio.sleep(wait)


class Sender:
    """Async context manager owning the HTTP session and the workers that drain the queue."""

    def __init__(self, cfg: VoltConfig, token: Secret, queue: RecordQueue, dead: DeadLetters,
                 metrics: AgentMetrics) -> None:
        self.cfg = cfg
        self.queue = queue
        self.dead = dead
        self.m = metrics
        self.redact = Redactor(token)
        self._headers = {
            "Authorization": f"Bearer {token.reveal()}",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        self.gate = ProbeGate()
        self.limiter = RateLimiter(cfg.rate_limit)
        self._session: aiohttp.ClientSession | None = None
        self._workers: list[asyncio.Task[None]] = []
        self.last_success: float | None = None
        self.last_contact: float | None = None
        self.token_rejected = False
        self.m_status = {c: metrics.http_responses.labels(c) for c in ("2xx", "3xx", "4xx", "5xx")}

    async def __aenter__(self) -> Sender:
        timeout = aiohttp.ClientTimeout(total=self.cfg.timeout, connect=self.cfg.connect_timeout)
        connector = aiohttp.TCPConnector(limit=self.cfg.concurrency, ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(timeout=timeout, connector=connector, trust_env=True,
                                              headers=self._headers)
        self._workers = [asyncio.create_task(self._work(i), name=f"sender-{i}")
                         for i in range(self.queue.partitions)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
        self.dead.close()

    async def put(self, record: dict[str, Any], pending: Pending | None) -> None:
        """Queue a record for sending; waits while the queue is full (back-pressure)."""
        await self.queue.put(Envelope(record, orjson.dumps(record), pending))

    async def _work(self, worker: int) -> None:
        queue = self.queue
        while True:
            env = await queue.get(worker)
            try:
                await self._deliver(worker, env)
            finally:
                queue.finish(env)
            if env.pending is not None:
                env.pending.ack()

    async def _post(self, body: bytes) -> tuple[int | None, str, str | None]:
        """One POST: (status or None, excerpt or error text, Retry-After)."""
        assert self._session is not None
        start = time.monotonic()
        self.m.in_flight.inc()
        try:
            async with self._session.post(self.cfg.endpoint, data=body) as resp:
                text = await resp.text(errors="replace")
                return resp.status, text[:EXCERPT], resp.headers.get("Retry-After")
        except TimeoutError:
            self.m.send_errors.labels("timeout").inc()
            return None, f"no answer within {self.cfg.timeout:g} s", None
        except aiohttp.ClientError as exc:
            self.m.send_errors.labels("connection").inc()
            return None, f"{type(exc).__name__}: {exc}", None
        finally:
            self.m.in_flight.inc(-1)
            self.m.request_seconds.observe(time.monotonic() - start)

    async def _deliver(self, worker: int, env: Envelope) -> None:
        cfg = self.cfg
        while True:
            await self.gate.turn(worker)
            await self.limiter.acquire()
            status, text, after = await self._post(env.body)
            env.attempts += 1
            now = time.time()
            if status is not None:
                self.last_contact = now
                self.m_status.get(f"{status // 100}xx", self.m_status["5xx"]).inc()
            kind = classify(status) if status is not None else "retry"
            if kind == "accepted":
                self.gate.succeeded()
                self.token_rejected = False
                self.last_success = now
                self.m.records_sent.inc()
                self.m.last_success.set(now)
                return
            if kind == "reject":
                self.gate.succeeded()
                self._dead_letter(env, status, f"Volt refused the record: HTTP {status}: {self.redact(text)}")
                return
            if kind == "auth":
                self.token_rejected = True
                self.m.token_rejected.inc()
                log.limited(logging.ERROR, "auth", "token_rejected", every=60.0, status=status,
                            endpoint=cfg.endpoint,
                            hint="Volt refused the token: check the token (VOLT_TOKEN, token_file or the "
                                 "volt-token credential) belongs to this organisation and is not revoked; "
                                 "records are kept and retried")
                delay = cfg.auth_retry
            else:
                delay = retry_after(after, now, cfg.retry_max) if after else None
                if delay is None:
                    delay = backoff(env.attempts - 1, cfg.retry_initial, cfg.retry_max)
                log.limited(logging.WARNING, f"retry:{status}", "send_retry", every=10.0,
                            status=status if status is not None else "none", error=self.redact(text)[:160],
                            wait_s=round(delay, 3), attempt=env.attempts)
            self.m.records_retried.inc()
            self.gate.failed(worker)
            if cfg.max_attempts and env.attempts >= cfg.max_attempts:
                self.gate.succeeded()
                self._dead_letter(env, status, f"gave up after {env.attempts} attempts: {self.redact(text)}")
                return
            await asyncio.sleep(delay)

    def _dead_letter(self, env: Envelope, status: int | None, reason: str) -> None:
        self.dead.write(env.record, status, reason)
        self.m.records_dead_lettered.inc()
        log.limited(logging.WARNING, f"dead:{status}", "record_dead_lettered", every=10.0,
                    id=env.record.get("id"), status=status, reason=reason[:200], file=str(self.dead.path))


async def ping(cfg: VoltConfig, token: Secret) -> tuple[int | None, str]:
    """Volt's reachability check: an empty body with the token. Returns (status, what it means)."""
    timeout = aiohttp.ClientTimeout(total=cfg.timeout, connect=cfg.connect_timeout)
    headers = {"Authorization": f"Bearer {token.reveal()}", "User-Agent": USER_AGENT}
    redact = Redactor(token)
    try:
        async with aiohttp.ClientSession(timeout=timeout, trust_env=True) as session, \
                session.post(cfg.endpoint, data=b"", headers=headers) as resp:
            status = resp.status
    except TimeoutError:
        return None, f"unreachable: no answer from {cfg.endpoint} within {cfg.timeout:g} s"
    except aiohttp.ClientError as exc:
        return None, redact(f"unreachable: {type(exc).__name__}: {exc}")
    if status in (401, 403):
        return status, "reachable, but the token was rejected: check the token for this organisation"
    if status >= 500:
        return status, "reachable, but Volt answered with a server error: try again later"
    return status, "reachable: the endpoint answered and the token was not refused"
