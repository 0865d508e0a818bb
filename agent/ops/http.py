"""Optional ops HTTP endpoint: Prometheus `/metrics`, liveness `/healthz`, readiness `/readyz`.

It shares the agent's event loop, so a scrape that answers also proves the loop is turning.
It binds to loopback unless told otherwise: the metrics name log files and are not for the world.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from types import TracebackType

from aiohttp import web

from agent.ops import logs

log = logs.get("agent.ops.http")

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_HOST = "127.0.0.1"


def parse_listen(listen: str) -> tuple[str, int]:
    """Split "host:port", ":port" (loopback) or "[v6]:port" into (host, port); ValueError if malformed.

    Public so config validation can reject a bad `listen` before the agent starts.
    """
    text = listen.strip()
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
        if not sep or not host:
            raise ValueError(f"bad listen address {listen!r}: expected [ipv6]:port")
        ipaddress.IPv6Address(host)  # raises ValueError with a clear message
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            raise ValueError(f"bad listen address {listen!r}: expected host:port or :port")
        if ":" in host:
            raise ValueError(f"bad listen address {listen!r}: put IPv6 addresses in brackets, [::1]:9109")
        host = host or DEFAULT_HOST
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"bad listen address {listen!r}: port must be 0-65535")
    return host, int(port_text)


class OpsServer:
    """aiohttp server for the ops routes; `async with OpsServer(...) as ops:` and read `ops.port`.

    `ready()` returns (ready, reason); the reason is the body of /readyz so an operator sees why.
    """

    def __init__(
        self,
        listen: str,
        render_metrics: Callable[[], str],
        ready: Callable[[], tuple[bool, str]],
    ) -> None:
        self.host, self._requested_port = parse_listen(listen)
        self._render_metrics = render_metrics
        self._ready = ready
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        return app

    async def start(self) -> None:
        """Bind and serve; `.port` is the real port afterwards (useful with port 0)."""
        # access_log=None: scrapes every 15 s would otherwise fill the journal.
        # handle_signals=False: the agent owns SIGTERM/SIGHUP.
        runner = web.AppRunner(self._app(), access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self._requested_port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]
        log.info("ops_http_listening", host=self.host, port=self.port)

    async def stop(self) -> None:
        """Close the listener and open connections; safe to call twice."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> OpsServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _metrics(self, request: web.Request) -> web.Response:
        try:
            body = self._render_metrics()
        except Exception as exc:
            log.error("metrics_render_failed", error=repr(exc))
            return web.Response(status=500, text="metrics rendering failed")
        # a path label of a file whose name is not UTF-8 is escaped, not allowed to fail the whole scrape
        return web.Response(body=body.encode("utf-8", "backslashreplace"),
                            headers={"Content-Type": METRICS_CONTENT_TYPE})

    async def _healthz(self, request: web.Request) -> web.Response:
        # Liveness only: answering at all means the process and its event loop are alive.
        return web.Response(text="ok")

    async def _readyz(self, request: web.Request) -> web.Response:
        try:
            ok, reason = self._ready()
        except Exception as exc:
            ok, reason = False, f"readiness check failed: {exc!r}"
        text = reason or ("ready" if ok else "not ready")
        return web.Response(status=200 if ok else 503, text=text, headers={"Cache-Control": "no-store"})
