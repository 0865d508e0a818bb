"""A local stand-in for the Volt Insights messages API, for tests, benchmarks and operators.

Volt publishes no test endpoint, so this server plays its part: it checks the bearer token and the record
contract (`agent.record.problem`) the way we expect Volt to, writes every accepted record as one JSON line,
and can be told to misbehave (outage statuses, Retry-After, slowness, dropped connections, permanent
rejections) so the agent's retry and dead-letter paths can be exercised without the real service.

Faults are set at start or at runtime with `POST /_faults` (a JSON object, merged into the current faults):

    {"status": 503, "count": 3}      answer the next 3 requests with 503, then recover
    {"status": 503, "seconds": 5}    answer with 503 for 5 s from now (no count/seconds: until changed)
    {"status": null}                 stop injecting a status
    {"retry_after": "2"}             Retry-After header (verbatim: seconds or HTTP-date) on injected 429/503
    {"delay": 1.5, "delay_count": 2} sleep 1.5 s before answering (the next 2 requests; no count: all)
    {"delay": 0.2, "delay_jitter": true}  sleep a random 0..0.2 s instead (reordering races show up)
    {"delay": 0.1, "delay_jitter": 0.02}  sleep 0.1 s plus a random 0..0.02 s (a distant Volt)
    {"capacity": 150}                serve at most 150 requests at once; answer the others 429 at once, with
                                     Retry-After from "retry_after" (default "1"); {"capacity": null}: no limit
    {"drop": 1}                      close the next request's connection without any HTTP answer
    {"reject_ids": ["id1"]}          answer 400 for records with these ids (replaces the previous list)
    {"reject_status": 404}           the status for those records instead of 400 (any 4xx; the agent
                                     dead-letters them, except 401/403/407/408/429, which it holds or retries)
    {"clear": true}                  remove every fault first (other keys in the same body then apply)

Order per request: capacity, then delay, then drop, then injected status, then auth, then the record itself.
`GET /_stats` and `GET /_records` report what happened (`/_stats` also has the last User-Agent seen and how
many client connections were opened, to check the agent's identity and its keep-alive pool). The admin
endpoints have no auth, so they only answer loopback clients; keep the default bind of 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hmac
import ipaddress
import os
import random
import signal
import sys
import time
from collections import deque
from pathlib import Path
from typing import IO, Any

import orjson
from aiohttp import web

from agent.record import problem
from agent.secrets import token_problem

DEFAULT_TOKEN = "standin-token"
TOKEN_ENV = "VOLT_TOKEN"
MESSAGES_PATH = "/data/messages"
# Enough for the /_records view in any test or benchmark; the out file keeps everything.
KEEP_RECORDS = 100_000
KEEP_PEERS = 100_000  # client addresses remembered to count connections; forgotten in bulk past this
FAULT_KEYS = frozenset(
    ("status", "count", "seconds", "retry_after", "delay", "delay_count", "delay_jitter", "drop", "reject_ids",
     "reject_status", "capacity", "clear")
)
RETRY_AFTER_STATUSES = frozenset((429, 503))
CAPACITY_RETRY_AFTER = "1"
JSON = "application/json"

# Answers built once: the handler is on the hot path of throughput benchmarks.
_ACCEPTED = b'{"accepted":true}'
_REACHABLE = b'{"ok":true}'
_REJECTED = b'{"error":"rejected by fault injection"}'
_BUSY = b'{"error":"too many requests at once (capacity fault)"}'
_NO_AUTH = b'{"error":"missing bearer token (send Authorization: Bearer <token>)"}'
_BAD_AUTH = b'{"error":"bearer token not accepted"}'
_ADMIN_LOCAL_ONLY = b'{"error":"admin endpoints answer loopback clients only"}'


def _error(status: int, reason: str) -> web.Response:
    return web.Response(status=status, body=orjson.dumps({"error": reason}), content_type=JSON)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclasses.dataclass
class _Faults:
    """The current misbehaviour; counters are decremented in place as requests use them up."""

    status: int | None = None
    status_left: int | None = None  # None: no count limit
    status_until: float | None = None  # time.monotonic() deadline; None: no time limit
    retry_after: str | None = None
    delay: float = 0.0
    delay_left: int | None = None  # None: every request
    delay_jitter: bool | float = False  # True: sleep uniform(0, delay); a number: delay + uniform(0, number)
    drop: int = 0
    reject_ids: frozenset[str] = frozenset()
    reject_status: int = 400
    capacity: int | None = None  # requests served at once at most; the others get 429

    @property
    def active(self) -> bool:
        """Cheap check so a fault-free server skips all fault handling."""
        return bool(self.status is not None or self.delay or self.drop or self.reject_ids)

    def describe(self) -> dict[str, Any]:
        """The faults as JSON-able settings, with what is left of their counts and time."""
        out: dict[str, Any] = {}
        if self.status is not None:
            out["status"] = self.status
            if self.status_left is not None:
                out["count"] = self.status_left
            if self.status_until is not None:
                out["seconds"] = max(0.0, round(self.status_until - time.monotonic(), 3))
        if self.retry_after is not None:
            out["retry_after"] = self.retry_after
        if self.delay:
            out["delay"] = self.delay
            if self.delay_left is not None:
                out["delay_count"] = self.delay_left
            if self.delay_jitter:
                out["delay_jitter"] = self.delay_jitter
        if self.drop:
            out["drop"] = self.drop
        if self.reject_ids:
            out["reject_ids"] = sorted(self.reject_ids)
            out["reject_status"] = self.reject_status
        if self.capacity is not None:
            out["capacity"] = self.capacity
        return out


def _merge_faults(current: _Faults, spec: Any) -> _Faults:
    """Return `current` with `spec` applied, or raise ValueError naming the bad key; never half-applies."""
    if not isinstance(spec, dict):
        raise ValueError("faults must be a JSON object")
    unknown = sorted(set(spec) - FAULT_KEYS)
    if unknown:
        raise ValueError(f"unknown fault key(s) {unknown}; known: {sorted(FAULT_KEYS)}")
    new = _Faults() if spec.get("clear") else dataclasses.replace(current)
    if ("count" in spec or "seconds" in spec) and "status" not in spec:
        raise ValueError("'count' and 'seconds' go with 'status' in the same object")
    if "status" in spec:
        status = spec["status"]
        if status is None or status == 0:
            new.status, new.status_left, new.status_until = None, None, None
        elif _is_int(status) and 100 <= status <= 599:
            count, seconds = spec.get("count"), spec.get("seconds")
            if count is not None and not (_is_int(count) and count >= 0):
                raise ValueError(f"'count' must be a non-negative integer, got {count!r}")
            if seconds is not None and not (_is_number(seconds) and seconds >= 0):
                raise ValueError(f"'seconds' must be a non-negative number, got {seconds!r}")
            new.status, new.status_left = status, count
            new.status_until = None if seconds is None else time.monotonic() + seconds
        else:
            raise ValueError(f"'status' must be an HTTP status 100-599 or null, got {status!r}")
    if "retry_after" in spec:
        value = spec["retry_after"]
        if _is_int(value):
            value = str(value)
        if value is not None and not (isinstance(value, str) and value and "\n" not in value):
            raise ValueError(f"'retry_after' must be a non-empty one-line string or null, got {value!r}")
        new.retry_after = value
    if ("delay_count" in spec or "delay_jitter" in spec) and "delay" not in spec:
        raise ValueError("'delay_count' and 'delay_jitter' go with 'delay' in the same object")
    if "delay" in spec:
        delay, count = spec["delay"], spec.get("delay_count")
        if delay is None:
            delay = 0.0
        if not (_is_number(delay) and delay >= 0):
            raise ValueError(f"'delay' must be a non-negative number of seconds, got {delay!r}")
        if count is not None and not (_is_int(count) and count >= 0):
            raise ValueError(f"'delay_count' must be a non-negative integer, got {count!r}")
        jitter = spec.get("delay_jitter", False)
        if not (isinstance(jitter, bool) or (_is_number(jitter) and jitter >= 0)):
            raise ValueError(f"'delay_jitter' must be true, false or a non-negative number of seconds, got {jitter!r}")
        new.delay, new.delay_left = float(delay), (count if delay else None)
        new.delay_jitter = (jitter if isinstance(jitter, bool) else float(jitter)) if delay else False
    if "drop" in spec:
        drop = spec["drop"] or 0
        if not (_is_int(drop) and drop >= 0):
            raise ValueError(f"'drop' must be a non-negative integer, got {drop!r}")
        new.drop = drop
    if "reject_ids" in spec:
        ids = spec["reject_ids"] or []
        if not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
            raise ValueError("'reject_ids' must be a list of strings")
        new.reject_ids = frozenset(ids)
    if "capacity" in spec:
        capacity = spec["capacity"]
        if capacity is not None and not (_is_int(capacity) and capacity >= 1):
            raise ValueError(f"'capacity' must be a whole number >= 1 or null, got {capacity!r}")
        new.capacity = capacity
    if "reject_status" in spec:
        status = spec["reject_status"]
        if not (_is_int(status) and 400 <= status < 500):
            raise ValueError(f"'reject_status' must be a 4xx status, got {status!r}")
        new.reject_status = status
    return new


def _loopback(remote: str | None) -> bool:
    if remote is None:  # not a TCP peer (e.g. a unix socket): local by construction
        return True
    try:
        return ipaddress.ip_address(remote.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _resolve_token(token: str | None) -> str:
    if token:
        return token
    return os.environ.get(TOKEN_ENV) or DEFAULT_TOKEN


class StandIn:
    """The stand-in server, run in-process: `async with StandIn(out_path=p) as s: ... s.url ...`.

    `token` defaults to $VOLT_TOKEN, else "standin-token". `out_path` (JSON lines) and `arrivals_path`
    ("<unix time> <id>" lines) are appended to and flushed per record; with no `out_path` the records are
    only kept in memory (the last 100000). `port=0` picks a free port; read it back from `s.port`.
    """

    def __init__(
        self,
        token: str | None = None,
        out_path: str | os.PathLike[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        arrivals_path: str | os.PathLike[str] | None = None,
        faults: dict[str, Any] | None = None,
        shutdown_timeout: float = 1.0,
    ) -> None:
        self.host = host
        self.port = port
        self.out_path = Path(out_path) if out_path is not None else None
        self.arrivals_path = Path(arrivals_path) if arrivals_path is not None else None
        self._token = _resolve_token(token).encode("utf-8", "surrogateescape")
        self._auth_header = b"Bearer " + self._token
        self._faults = _Faults()
        if faults:
            self.set_faults(faults)
        self._shutdown_timeout = shutdown_timeout
        self._runner: web.AppRunner | None = None
        self._out: IO[bytes] | None = None
        self._arrivals: IO[bytes] | None = None
        self._records: deque[dict[str, Any]] = deque(maxlen=KEEP_RECORDS)
        self.accepted_count = 0
        self.requests = 0
        self.dropped = 0
        self.reachability_checks = 0
        self.by_status: dict[int, int] = {}
        self.user_agent: str | None = None
        self.connections = 0
        self._peers: set[Any] = set()
        self._serving = 0  # requests being served now (the capacity fault counts them)
        self.serving_peak = 0

    def __repr__(self) -> str:  # spelled out so the token can never show up in a repr
        return f"StandIn(url={self.url!r}, accepted={self.accepted_count})"

    # --- in-process API ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """`http://host:port`, for the admin endpoints."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """Full URL of the messages endpoint, what the agent is configured with."""
        return self.base_url + MESSAGES_PATH

    @property
    def accepted(self) -> list[dict[str, Any]]:
        """Accepted records in arrival order (the last 100000; `accepted_count` has the total)."""
        return list(self._records)

    @property
    def faults(self) -> dict[str, Any]:
        """The current faults, as `set_faults` would take them (with counts/seconds left)."""
        return self._faults.describe()

    def set_faults(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Merge `spec` into the current faults (see the module doc); ValueError if it is malformed."""
        self._faults = _merge_faults(self._faults, spec)
        return self._faults.describe()

    def stats(self) -> dict[str, Any]:
        """Counters for tests and benchmarks: requests seen on the messages endpoint and how they went."""
        return {
            "requests": self.requests,
            "accepted": self.accepted_count,
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "dropped": self.dropped,
            "reachability_checks": self.reachability_checks,
            "user_agent": self.user_agent,
            "connections": self.connections,
            "serving_peak": self.serving_peak,
            "faults": self._faults.describe(),
        }

    def make_app(self) -> web.Application:
        """The aiohttp application, for callers that run their own runner."""
        app = web.Application()
        app.router.add_post(MESSAGES_PATH, self._handle_message)
        app.router.add_post("/", self._handle_message)
        app.router.add_post("/_faults", self._handle_set_faults)
        app.router.add_get("/_faults", self._handle_get_faults)
        app.router.add_get("/_stats", self._handle_stats)
        app.router.add_get("/_records", self._handle_records)
        return app

    async def start(self) -> None:
        """Open the output files, then listen; OSError if either fails (nothing is left open)."""
        try:
            if self.out_path is not None:
                self._out = open(self.out_path, "ab")  # noqa: SIM115 - kept open for the server's life
            if self.arrivals_path is not None:
                self._arrivals = open(self.arrivals_path, "ab")  # noqa: SIM115
            runner = web.AppRunner(
                self.make_app(),
                access_log=None,
                handle_signals=False,
                shutdown_timeout=self._shutdown_timeout,
            )
            await runner.setup()
            self._runner = runner
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
        except BaseException:
            await self.stop()
            raise
        self.port = runner.addresses[0][1]

    async def stop(self) -> None:
        """Stop listening (in-flight handlers get `shutdown_timeout` seconds) and close the files."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        for name in ("_out", "_arrivals"):
            handle = getattr(self, name)
            setattr(self, name, None)
            if handle is not None:
                handle.close()

    async def __aenter__(self) -> StandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --- HTTP handlers -------------------------------------------------------------------------------

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> web.Response:
        self.by_status[status] = self.by_status.get(status, 0) + 1
        return web.Response(status=status, body=body, content_type=JSON, headers=headers)

    async def _handle_message(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        self.user_agent = request.headers.get("User-Agent")
        peer = request.transport.get_extra_info("peername") if request.transport is not None else None
        if peer not in self._peers:
            if len(self._peers) >= KEEP_PEERS:
                self._peers.clear()
            self._peers.add(peer)
            self.connections += 1
        body = await request.read()  # read first, so a dropped request closes cleanly after the upload
        capacity = self._faults.capacity
        if capacity is not None and self._serving >= capacity:
            return self._answer(429, _BUSY, {"Retry-After": self._faults.retry_after or CAPACITY_RETRY_AFTER})
        self._serving += 1
        self.serving_peak = max(self.serving_peak, self._serving)
        try:
            return await self._serve(request, body)
        finally:
            self._serving -= 1

    async def _serve(self, request: web.Request, body: bytes) -> web.StreamResponse:
        """The answer to one request within the capacity: faults first, then auth and the contract."""
        if self._faults.active:
            injected = await self._inject(request)
            if injected is not None:
                return injected

        auth = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(auth, self._auth_header):
            scheme, _, credential = auth.partition(b" ")
            if scheme.lower() != b"bearer" or not credential.strip():
                return self._answer(401, _NO_AUTH)
            if not hmac.compare_digest(credential.strip(), self._token):
                return self._answer(403, _BAD_AUTH)

        if not body.strip():
            self.reachability_checks += 1
            return self._answer(200, _REACHABLE)
        try:
            record = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return self._error_answer(400, f"body is not valid JSON: {exc}")

        reject_ids = self._faults.reject_ids
        if reject_ids and isinstance(record, dict) and record.get("id") in reject_ids:
            return self._answer(self._faults.reject_status, _REJECTED)
        reason = problem(record)
        if reason is not None:
            return self._error_answer(422 if isinstance(record, dict) else 400, reason)

        self._store(record)
        return self._answer(202, _ACCEPTED)

    def _error_answer(self, status: int, reason: str) -> web.Response:
        self.by_status[status] = self.by_status.get(status, 0) + 1
        return _error(status, reason)

    def _store(self, record: dict[str, Any]) -> None:
        self.accepted_count += 1
        self._records.append(record)
        if self._out is not None:
            self._out.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
            self._out.flush()
        if self._arrivals is not None:
            self._arrivals.write(f"{time.time():.6f} {record['id']}\n".encode("utf-8", "surrogateescape"))
            self._arrivals.flush()

    async def _inject(self, request: web.Request) -> web.StreamResponse | None:
        """Apply delay, drop and status faults; None means answer the request normally."""
        faults = self._faults
        delay = faults.delay
        if delay and (faults.delay_left is None or faults.delay_left > 0):
            if faults.delay_left is not None:
                faults.delay_left -= 1
                if faults.delay_left == 0:
                    faults.delay, faults.delay_left = 0.0, None
            jitter = faults.delay_jitter
            if jitter is True:
                delay = random.uniform(0, delay)
            elif jitter:
                delay += random.uniform(0, jitter)
            await asyncio.sleep(delay)
            faults = self._faults  # may have been changed while we slept
        if faults.drop > 0:
            faults.drop -= 1
            self.dropped += 1
            # No HTTP answer at all: the client sees the connection close (ServerDisconnectedError or
            # ClientOSError), as on a crashed upstream or a load balancer cutting the connection.
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=204)  # never reaches the client; aiohttp discards it
        if faults.status is not None:
            expired = faults.status_until is not None and time.monotonic() >= faults.status_until
            if expired or faults.status_left == 0:
                faults.status, faults.status_left, faults.status_until = None, None, None
            else:
                status = faults.status
                if faults.status_left is not None:
                    faults.status_left -= 1
                    if faults.status_left == 0:  # used up: recover now, so `faults` reads empty
                        faults.status, faults.status_left, faults.status_until = None, None, None
                headers = None
                if faults.retry_after is not None and status in RETRY_AFTER_STATUSES:
                    headers = {"Retry-After": faults.retry_after}
                body = orjson.dumps({"error": f"injected fault: status {status}"})
                return self._answer(status, body, headers)
        return None

    async def _handle_set_faults(self, request: web.Request) -> web.Response:
        if not _loopback(request.remote):
            return web.Response(status=403, body=_ADMIN_LOCAL_ONLY, content_type=JSON)
        body = await request.read()
        try:
            spec = orjson.loads(body) if body.strip() else {}
            faults = self.set_faults(spec)
        except (orjson.JSONDecodeError, ValueError) as exc:
            return _error(400, str(exc))
        return web.Response(body=orjson.dumps({"faults": faults}), content_type=JSON)

    async def _handle_get_faults(self, request: web.Request) -> web.Response:
        if not _loopback(request.remote):
            return web.Response(status=403, body=_ADMIN_LOCAL_ONLY, content_type=JSON)
        return web.Response(body=orjson.dumps({"faults": self.faults}), content_type=JSON)

    async def _handle_stats(self, request: web.Request) -> web.Response:
        if not _loopback(request.remote):
            return web.Response(status=403, body=_ADMIN_LOCAL_ONLY, content_type=JSON)
        return web.Response(body=orjson.dumps(self.stats()), content_type=JSON)

    async def _handle_records(self, request: web.Request) -> web.Response:
        if not _loopback(request.remote):
            return web.Response(status=403, body=_ADMIN_LOCAL_ONLY, content_type=JSON)
        return web.Response(body=orjson.dumps(list(self._records)), content_type=JSON)


# --- command line --------------------------------------------------------------------------------------


def _fault_arg(text: str) -> dict[str, Any]:
    try:
        spec = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"--fault must be a JSON object: {exc}") from None
    try:
        _merge_faults(_Faults(), spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return spec


def build_parser(prog: str = "volt-agent standin") -> argparse.ArgumentParser:
    """The `standin` subcommand's options (exposed so the main CLI can reuse the same definitions)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Local stand-in for the Volt Insights messages API (tests, benchmarks, dry runs).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=0, help="port; 0 picks a free one (see the listening line)"
    )
    parser.add_argument("--out", required=True, help="append accepted records here, one JSON object a line")
    token = parser.add_mutually_exclusive_group()
    token.add_argument(
        "--token", help=f"accepted bearer token (default: ${TOKEN_ENV}, else {DEFAULT_TOKEN!r})"
    )
    token.add_argument("--token-env", metavar="NAME", help="read the accepted bearer token from env NAME")
    parser.add_argument(
        "--arrivals", help="append '<unix time> <id>' per accepted record (latency benchmarks)"
    )
    parser.add_argument(
        "--fault",
        action="append",
        type=_fault_arg,
        default=[],
        metavar="JSON",
        help='fault to start with, e.g. \'{"status": 503, "count": 3}\'; repeatable, applied in order',
    )
    return parser


async def _serve(standin: StandIn) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows
            loop.add_signal_handler(sig, stop.set)
    try:
        await standin.start()
    except OSError as exc:
        print(f"standin cannot start: {exc}", file=sys.stderr, flush=True)
        return 1
    print(f"standin listening url={standin.url}", file=sys.stderr, flush=True)
    try:
        await stop.wait()
    finally:
        await standin.stop()
    print(f"standin stopped accepted={standin.accepted_count}", file=sys.stderr, flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the stand-in until SIGTERM/SIGINT; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.token_env is not None:
        token, where = os.environ.get(args.token_env, ""), f"environment variable {args.token_env}"
        if not token:
            parser.error(f"{where} is not set or empty")
    elif args.token is not None:
        token, where = args.token, "--token"
    else:
        token, where = _resolve_token(None), f"${TOKEN_ENV}"
    bad = token_problem(token)
    if bad:  # the agent would refuse it: a stand-in nobody can reach is no use
        parser.error(f"the accepted token from {where} {bad}")
    standin = StandIn(
        token=token, out_path=args.out, host=args.host, port=args.port, arrivals_path=args.arrivals
    )
    for spec in args.fault:
        standin.set_faults(spec)
    return asyncio.run(_serve(standin))


if __name__ == "__main__":
    raise SystemExit(main())
