"""The sender: one aiohttp session, one delivery per ready queue lane, retries, dead letters.

A dispatcher hands the oldest record of each ready lane to its own delivery task whenever the concurrency
limit (agent.send.concurrency: adaptive, or fixed by `volt.concurrency: N`) has room; every POST holds a slot
only while it is in flight. Retriable failures (connection errors, timeouts, 408, 429, 5xx) wait with
full-jitter backoff, at least as long as Retry-After asks, unlimited by default: data waits, it is not dropped.
Throttling is not an outage: a 429, or a failure while other requests succeed, lowers the limit and that record
waits (holding its lane, not a slot) while the others go on. While Volt is down (failures and no success since
they were sent) only one delivery probes it; the others wait for it to come back, so an outage sees one request
at a time (the stampede Vector's issue 4724 describes). 401/403, redirects, 407, and 404/405 from a URL that is
no messages endpoint are configuration problems: the data is kept, retried slowly, with an actionable error at
most once a minute. Other 4xx go to the dead-letter file. Redirects are never followed: the token goes to the
configured endpoint only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import urllib.request
from collections import deque
from collections.abc import Callable
from enum import Enum
from functools import partial
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit

import aiohttp
import orjson

from agent import __version__
from agent.config import VoltConfig
from agent.files.acks import Pending
from agent.ops import logs
from agent.ops.metrics import AgentMetrics
from agent.secrets import Secret, scrub_url_credentials
from agent.send.concurrency import Controller, Signal
from agent.send.deadletter import DeadLetters
from agent.send.queue import Envelope, RecordQueue
from agent.send.retry import NOT_FOUND_STATUS, Outcome, classify, retry_delay

log = logs.get("volt_agent.sender")
USER_AGENT = f"volt-agent/{__version__}"
LIMIT_LOG_EVERY = 5.0  # s; a concurrency_changed line at most this often, and only when the limit halved or doubled
ANSWER_READ_MAX = 64 * 1024  # an HTML error page from a proxy can be large; an excerpt is all we keep


class Redactor:
    """Removes the token from any text that might be logged (an echoing proxy, an exception, a URL).

    Also its forms in a URL (percent-encoded) and in a repr (backslashes and quotes escaped). Each form is at
    least as long as the token, which load_token guarantees is a real one: ordinary text is never touched.
    """

    def __init__(self, token: Secret) -> None:
        value = token.reveal()
        forms = {value, quote(value, safe=""), quote(value), repr(value)[1:-1]} if value else set()
        self._forms = sorted(forms, key=len, reverse=True)  # longest first: none is left half-replaced

    def __call__(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, "***")
        return text


class Answer(NamedTuple):
    """What one POST came back with; `status` None means no HTTP answer (`text` then says why)."""

    status: int | None
    text: str
    retry_after: str | None = None
    location: str | None = None
    error_kind: str | None = None  # "timeout" | "connection" when there was no answer


def _headers(token: Secret) -> dict[str, str]:
    """The one place the token is unwrapped: the request headers for every POST to Volt."""
    return {
        "Authorization": f"Bearer {token.reveal()}",
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }


def _timeout(cfg: VoltConfig) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=cfg.timeout, connect=cfg.connect_timeout)


async def _excerpt(resp: aiohttp.ClientResponse) -> str:
    """The answer body up to ANSWER_READ_MAX, read in full when small so the connection can be reused.

    Callers redact the token before they cut an excerpt for a log line or a dead letter.
    """
    buf = bytearray()
    while len(buf) < ANSWER_READ_MAX:
        chunk = await resp.content.read(ANSWER_READ_MAX - len(buf))
        if not chunk:
            break
        buf += chunk
    # Whole, not cut yet: the token is redacted first, so a token straddling the cut cannot leave a prefix behind.
    return bytes(buf).decode("utf-8", "replace")


def proxy_for(url: str) -> str | None:
    """The proxy for `url` from HTTP(S)_PROXY / NO_PROXY, looked up once per session.

    aiohttp's trust_env would redo this (and a netrc lookup) in a thread for every request, which cost
    more than the request itself at thousands of records per second.
    """
    parts = urlsplit(url)
    if parts.hostname and urllib.request.proxy_bypass_environment(parts.hostname):
        return None
    return urllib.request.getproxies_environment().get(parts.scheme)


async def _request(session: aiohttp.ClientSession, url: str, body: bytes, timeout_s: float,
                   proxy: str | None) -> Answer:
    """One POST, never raising for network trouble: that is an answer too (status None)."""
    try:
        async with session.post(url, data=body, allow_redirects=False, proxy=proxy) as resp:
            return Answer(resp.status, await _excerpt(resp), resp.headers.get("Retry-After"),
                          resp.headers.get("Location"))
    except TimeoutError:
        return Answer(None, f"no answer within {timeout_s:g} s", error_kind="timeout")
    except Exception as exc:  # aiohttp raises more than ClientError (ValueError, RuntimeError)
        # a delivery that raised would leave its lane stalled; a proxy URL in the text may carry a password
        return Answer(None, scrub_url_credentials(f"{type(exc).__name__}: {exc}"), error_kind="connection")


class ProbeGate:
    """While Volt is failing, one delivery at a time probes it; the others wait until it answers.

    The first delivery to fail holds the probe through its backoff and keeps probing with its own record;
    the first success opens the gate for everyone. A holder that stops probing (its record was given
    up after max_attempts) hands the probe to the next waiting one. Holders are any hashable token.
    """

    def __init__(self) -> None:
        self.down = False
        self.holder: object = None
        self.since = 0.0
        self._changed = asyncio.Event()

    async def turn(self, who: object) -> None:
        while not self.admits(who):
            await self._changed.wait()

    def admits(self, who: object) -> bool:
        """Whether `who` may send now: Volt is up, or `who` is (now) the one probing it."""
        if not self.down:
            return True
        if self.holder not in (None, who):
            return False
        self.holder = who
        return True

    def failed(self, who: object) -> None:
        if not self.down:
            self.down = True
            self.since = time.monotonic()
        if self.holder is None:
            self.holder = who

    def succeeded(self) -> float | None:
        """Open the gate; returns how long Volt was failing, or None if it was not."""
        if not self.down:
            return None
        self.down = False
        self.holder = None
        self._wake()
        return time.monotonic() - self.since

    def release(self, who: object) -> None:
        if self.holder is who:
            self.holder = None
            self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


class Slots:
    """At most the controller's limit of requests in flight; deliveries wait for a slot first come, first served."""

    def __init__(self, controller: Controller) -> None:
        self.ctl = controller
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        ctl = self.ctl
        if not self._waiters and ctl.in_flight < ctl.limit:
            ctl.start()
            return
        slot = asyncio.get_running_loop().create_future()
        self._waiters.append(slot)
        try:
            await slot
        except asyncio.CancelledError:
            if slot.done() and not slot.cancelled():  # handed a slot just as it was cancelled: give it back
                ctl.abandon()
                self.wake()
            elif slot in self._waiters:
                self._waiters.remove(slot)
            raise

    def wake(self) -> None:
        """Hand free slots to waiting deliveries (after a request came back, or the limit grew)."""
        ctl = self.ctl
        while self._waiters and ctl.in_flight < ctl.limit:
            slot = self._waiters.popleft()
            if not slot.done():  # a waiter cancelled at shutdown
                ctl.start()
                slot.set_result(None)


class RateLimiter:
    """At most `rate` requests per second across all deliveries, evenly spaced (0 = no limit)."""

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
    """Async context manager owning the HTTP session, the concurrency limit and the deliveries that drain the queue."""

    def __init__(self, cfg: VoltConfig, token: Secret, queue: RecordQueue, dead: DeadLetters,
                 metrics: AgentMetrics, on_failure: Callable[[], None] | None = None) -> None:
        self.cfg = cfg
        self.on_failure = on_failure
        self.queue = queue
        self.dead = dead
        self.m = metrics
        self.redact = Redactor(token)
        self._headers = _headers(token)
        self._auth_hint = (f"token rejected by Volt: check the token in {token.source}: it must belong to this "
                           f"organisation and not be revoked; records are kept and retried every "
                           f"{cfg.auth_retry:g} s")
        self.gate = ProbeGate()
        self.limiter = RateLimiter(cfg.rate_limit)
        if cfg.concurrency is None:
            self.controller = Controller(cfg.min_concurrency, cfg.max_concurrency)
        else:
            self.controller = Controller(cfg.concurrency, cfg.concurrency)
        self.slots = Slots(self.controller)
        self._limit_logged = (self.controller.limit, time.monotonic())
        metrics.concurrency_limit.set(self.controller.limit)
        self._accepted_total = 0  # records accepted so far: "did any request succeed since this one was sent?"
        self._session: aiohttp.ClientSession | None = None
        self._proxy: str | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._deliveries: set[asyncio.Task[None]] = set()
        self.last_success: float | None = None
        self.last_contact: float | None = None
        self.token_rejected = False
        self.held: str | None = None  # why records are held for a configuration problem (for /readyz)
        self._holding = asyncio.Event()  # set while `held` is: a stop need not wait for what cannot be sent
        self.failed: BaseException | None = None  # a delivery that died of a bug; the agent stops on it
        self._probe: asyncio.Task[bool | None] | None = None  # the endpoint check in flight, shared by deliveries

    async def __aenter__(self) -> Sender:
        # Connections up to the ceiling, opened only as requests in flight grow (the limit grows by at most
        # concurrency.MAX_STEP a window, less on short round trips) and kept alive between records, so TLS sessions
        # are reused; DNS answers cached; proxies from HTTP(S)_PROXY/NO_PROXY; TLS verification is aiohttp's
        # default, never turned off.
        connector = aiohttp.TCPConnector(limit=self.cfg.ceiling, ttl_dns_cache=300)
        self._proxy = proxy_for(self.cfg.endpoint)
        self._session = aiohttp.ClientSession(timeout=_timeout(self.cfg), connector=connector,
                                              headers=self._headers)
        self._dispatcher = asyncio.create_task(self._dispatch(), name="sender-dispatch")
        self._dispatcher.add_done_callback(self._task_done)
        return self

    def _task_done(self, task: asyncio.Task[None], env: Envelope | None = None) -> None:
        """The dispatcher or a delivery never ends with an error on its own: if one dies its lane (or every lane)
        stalls, so say so and let the agent stop."""
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        self.failed = exc
        log.error("sender_failed", task="delivery" if env else task.get_name(), id=env.id if env else "-",
                  error=self.redact(scrub_url_credentials(f"{type(exc).__name__}: {exc}"))[:300],
                  action="stopping; unacknowledged lines are read again after the restart")
        if self.on_failure is not None:
            self.on_failure()

    async def __aexit__(self, *exc: object) -> None:
        tasks = [t for t in (self._dispatcher, *self._deliveries) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):  # a failure was logged by _task_done
                await task
        if self._session is not None:
            await self._session.close()
        try:
            self.dead.close()
        except OSError as exc:  # the next checkpoint sees it too, and keeps the old offsets
            log.error("dead_letter_sync_failed", file=str(self.dead.path), error=exc.strerror)
        log.info("sender_stopped", unsent=self.queue.records, queue_peak_records=self.queue.peak_records,
                 queue_peak_bytes=self.queue.peak_bytes, concurrency_limit=self.controller.limit)

    def offer(self, record: dict[str, Any], pending: Pending | None) -> Envelope | None:
        """Queue a record if there is room now; else the envelope to `put()` (waiting: back-pressure)."""
        env = Envelope(record, orjson.dumps(record), pending)
        return None if self.queue.offer(env) else env

    async def put(self, env: Envelope) -> None:
        await self.queue.put(env)

    async def _dispatch(self) -> None:
        """Start a delivery for the next ready record as soon as a slot is free (and Volt is not down, unless
        this record is to be the probe). The record's lane stays busy until its delivery ends."""
        queue = self.queue
        while True:
            env = await queue.get()
            try:
                await self._admitted(env)
            except BaseException:  # cancelled at shutdown: the line stays unacknowledged
                queue.finish(env)
                raise
            task = asyncio.create_task(self._deliver(env))
            self._deliveries.add(task)
            task.add_done_callback(partial(self._delivered, env=env))

    async def _admitted(self, env: Envelope) -> None:
        """Wait for the gate, then for a slot. Volt may go down while a record waits for its slot, so the gate is
        asked again once the slot is taken: during an outage only the probe is sent, never the waiters too."""
        while True:
            await self.gate.turn(env)
            await self.slots.acquire()
            if self.gate.admits(env):
                return
            self.controller.abandon()
            self.slots.wake()

    def _delivered(self, task: asyncio.Task[None], env: Envelope) -> None:
        """Free the record's room and lane; acknowledge its line only if it was settled (not cancelled, no bug).
        A delivery that died of a bug keeps its lane: the agent stops, and that id's later records wait."""
        self._deliveries.discard(task)
        died = not task.cancelled() and task.exception() is not None
        self.queue.finish(env, release_lane=not died)
        if task.cancelled() or died:
            self._task_done(task, env)
            return
        if env.pending is not None:
            env.pending.ack()

    async def _post(self, body: bytes) -> Answer:
        assert self._session is not None
        start = time.monotonic()
        self.m.in_flight.inc()
        try:
            answer = await _request(self._session, self.cfg.endpoint, body, self.cfg.timeout, self._proxy)
        finally:
            self.m.in_flight.inc(-1)
            self.m.request_seconds.observe(time.monotonic() - start)
        if answer.status is None:
            self.m.send_errors.labels(answer.error_kind or "connection").inc()
        else:
            self.last_contact = time.time()
            self.m.http_responses.labels(f"{answer.status // 100}xx").inc()
        return answer

    async def _attempt(self, env: Envelope) -> tuple[Answer, Outcome, bool]:
        """One POST in a slot the caller took; returns the answer, what it means, and whether another request was
        accepted while this one was out (then a failure is throttling or trouble with this request, not an outage)."""
        ctl = self.controller
        try:
            await self.limiter.acquire()
            epoch, limit, accepted_before, start = ctl.epoch, ctl.limit, self._accepted_total, time.monotonic()
            answer = await self._post(env.body)
        except BaseException:  # cancelled at shutdown: no answer to learn from
            ctl.abandon()
            self.slots.wake()
            raise
        outcome = classify(answer.status)
        signal = (Signal.ACCEPTED if outcome is Outcome.ACCEPTED
                  else Signal.BACK_PRESSURE if outcome is Outcome.RETRY else Signal.NEUTRAL)
        ctl.finish(signal, time.monotonic() - start, epoch, limit)
        self._limit_moved()
        self.slots.wake()
        return answer, outcome, self._accepted_total > accepted_before

    def _limit_moved(self) -> None:
        """Export the limit; log it when it halved or doubled since the last line, at most every few seconds."""
        limit = self.controller.limit
        self.m.concurrency_limit.set(limit)
        logged, when = self._limit_logged
        if limit != logged and (limit >= 2 * logged or 2 * limit <= logged):
            now = time.monotonic()
            if now - when >= LIMIT_LOG_EVERY:
                self._limit_logged = (limit, now)
                rtt = self.controller.rtt
                log.info("concurrency_changed", limit=limit, previous=logged, in_flight=self.controller.in_flight,
                         rtt_ms=round(rtt * 1000, 1) if rtt is not None else "none",
                         slow_start=self.controller.slow_start)

    async def _deliver(self, env: Envelope) -> None:
        """Send until Volt accepts the record or it is dead-lettered; anything else waits and tries again.

        The first attempt uses the slot the dispatcher took; a retry waits without one.
        """
        cfg = self.cfg
        first = True
        while True:
            if not first:
                await self._admitted(env)
            first = False
            answer, outcome, others_accepted = await self._attempt(env)
            env.attempts += 1
            if outcome is Outcome.ACCEPTED:
                self._accepted()
                return
            if answer.status in NOT_FOUND_STATUS:
                exists = await self._endpoint_exists()
                # the URL is right, so Volt means this record; no verdict (Volt busy): try again later
                outcome = Outcome.ENDPOINT if exists is False else Outcome.REJECT if exists else Outcome.RETRY
            if outcome is Outcome.REJECT:
                self._answered()
                if self._dead_letter(env, answer, f"Volt refused the record with HTTP {answer.status}"):
                    return
                delay = cfg.retry_max
            elif outcome is Outcome.RETRY:
                if cfg.max_attempts and env.attempts >= cfg.max_attempts:
                    self.gate.release(env)
                    if self._dead_letter(env, answer, f"gave up after {env.attempts} attempts (max_attempts)"):
                        return
                delay = retry_delay(env.attempts - 1, cfg.retry_initial, cfg.retry_max, answer.retry_after,
                                    time.time())
                throttled = answer.status == 429 or others_accepted
                if throttled and answer.status in (429, 503):
                    self.m.throttled.inc()
                if not throttled:  # nothing succeeds: Volt is down, one probe at a time until it answers
                    self.gate.failed(env)
                log.limited(logging.WARNING, f"retry:{answer.status}", "send_retry", every=10.0,
                            status=answer.status or "none", error=self.redact(answer.text)[:160],
                            wait_s=round(delay, 3), attempt=env.attempts, throttled=throttled)
            else:
                delay = cfg.auth_retry
                self.gate.failed(env)
                self._held(outcome, answer)
            self.m.records_retried.inc()
            await asyncio.sleep(delay)

    async def _endpoint_exists(self) -> bool | None:
        """Whether volt.endpoint is a messages endpoint, asked with an empty POST as `ping` does, after each 404
        or 405 (a route that breaks later is caught too). A wrong path answers it with 404/405 (or a redirect
        or 407) as well; a right one with 2xx or a 4xx about the body. None: no verdict (no answer, 408, 429,
        5xx). Workers that get a 404 at the same time share one check."""
        if self._probe is None or self._probe.done():
            self._probe = asyncio.create_task(self._check_endpoint())
        return await asyncio.shield(self._probe)

    async def _check_endpoint(self) -> bool | None:
        await self.limiter.acquire()
        verdict = classify((await self._post(b"")).status)  # no answer is RETRY too
        if verdict is Outcome.RETRY or verdict is Outcome.AUTH:
            return None
        return verdict is not Outcome.ENDPOINT

    def _reachable(self) -> None:
        down_for = self.gate.succeeded()
        if down_for is not None:
            self.controller.recovered()
            log.info("volt_reachable_again", down_s=round(down_for, 3))

    def _answered(self) -> None:
        """Volt answered about the record itself (accepted or refused it): the token, the URL and any proxy
        work, so nothing is held for a configuration problem any more."""
        self.held = None
        self._holding.clear()
        self._reachable()
        if self.token_rejected:
            self.token_rejected = False
            log.info("token_accepted_again")

    def _accepted(self) -> None:
        self._accepted_total += 1
        self._answered()
        now = time.time()
        self.last_success = now
        self.m.records_sent.inc()
        self.m.last_success.set(now)

    async def until_held(self) -> None:
        """Returns once records are held for a configuration problem (at once if they are now)."""
        await self._holding.wait()

    def _held(self, outcome: Outcome, answer: Answer) -> None:
        """401/403, a redirect, no endpoint or a proxy refusal: nothing is wrong with the record, the
        configuration needs a person. The records are kept and retried every auth_retry."""
        kept = f"records are kept and retried every {self.cfg.auth_retry:g} s"
        status = answer.status
        self.held = f"records held: Volt answered HTTP {status} (see the log for what to fix)"
        self._holding.set()
        if outcome is Outcome.AUTH:
            self.token_rejected = True
            self.m.token_rejected.inc()
            log.limited(logging.ERROR, "auth", "token_rejected", every=60.0, status=status,
                        endpoint=self.cfg.endpoint, hint=self._auth_hint)
        elif status is not None and 300 <= status < 400:
            log.limited(logging.ERROR, "redirect", "endpoint_redirects", every=60.0, status=status,
                        endpoint=self.cfg.endpoint,
                        location=self.redact(scrub_url_credentials(answer.location or "(none)")),
                        hint="redirects are not followed (the token goes to volt.endpoint only): set "
                             f"volt.endpoint to the final URL; {kept}")
        elif status == 407:
            log.limited(logging.ERROR, "proxy", "proxy_refused", every=60.0, status=status,
                        proxy=scrub_url_credentials(self._proxy or "(none)"),
                        hint=f"the HTTP proxy wants credentials: check HTTPS_PROXY/HTTP_PROXY; {kept}")
        else:
            log.limited(logging.ERROR, "endpoint", "endpoint_not_found", every=60.0, status=status,
                        endpoint=self.cfg.endpoint,
                        hint=f"no messages endpoint at this URL (HTTP {status}): check volt.endpoint; {kept}")

    def _dead_letter(self, env: Envelope, answer: Answer, error: str) -> bool:
        """Write the record to the dead-letter file; False (record kept, retried later) if the file fails."""
        if answer.status is None:  # no HTTP answer: the text says what went wrong instead
            error, excerpt = self.redact(f"{error}: {answer.text}"), ""
        else:
            excerpt = self.redact(answer.text)
        try:
            self.dead.write(env.record, answer.status, error, excerpt)
        except OSError as exc:
            log.limited(logging.ERROR, "dead-write", "dead_letter_write_failed", every=60.0,
                        file=str(self.dead.path), error=exc.strerror,
                        action="the record is kept and written again later; free space or fix permissions")
            return False
        self.m.records_dead_lettered.inc()
        log.limited(logging.WARNING, f"dead:{answer.status}", "record_dead_lettered", every=10.0,
                    id=env.id, status=answer.status, error=error, response=excerpt[:200],
                    file=str(self.dead.path))
        return True


class Reach(Enum):
    """The verdict of `volt-agent ping`; the CLI maps each to an exit code."""

    REACHABLE = "reachable"
    TOKEN_REJECTED = "token rejected"
    UNREACHABLE = "unreachable"


async def ping(cfg: VoltConfig, token: Secret) -> tuple[Reach, int | None, str]:
    """Volt's reachability check: an empty body with the token. Returns (verdict, status, what it means)."""
    async with aiohttp.ClientSession(timeout=_timeout(cfg), headers=_headers(token)) as session:
        answer = await _request(session, cfg.endpoint, b"", cfg.timeout, proxy_for(cfg.endpoint))
    verdict, meaning = _reach(answer, token)
    return verdict, answer.status, Redactor(token)(meaning)


def _reach(answer: Answer, token: Secret) -> tuple[Reach, str]:
    status = answer.status
    if status is None:
        return Reach.UNREACHABLE, f"no answer: {answer.text}"
    if status in (401, 403):
        return Reach.TOKEN_REJECTED, f"Volt refused the token: check the token in {token.source}"
    if 300 <= status < 400:
        return Reach.UNREACHABLE, f"redirected to {answer.location or '(no Location)'}: set volt.endpoint to it"
    if status in (404, 405):
        return Reach.UNREACHABLE, "no messages endpoint at this URL: check volt.endpoint"
    if status == 407:
        return Reach.UNREACHABLE, "the HTTP proxy wants credentials: check HTTPS_PROXY/HTTP_PROXY"
    if status == 408 or status >= 500:
        return Reach.UNREACHABLE, "Volt answered but is not taking data now: try again later"
    return Reach.REACHABLE, "the endpoint answered and the token was not refused"
