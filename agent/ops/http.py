"""Ops HTTP routes: Prometheus `/metrics`, liveness `/healthz`, readiness `/readyz`, a `/status` snapshot.

One app serves them on the optional `metrics.listen` address and on the control socket (agent.ops.control).
It shares the agent's event loop, so a scrape that answers also proves the loop is turning.
It binds to loopback unless told otherwise: the metrics name log files and are not for the world.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from types import TracebackType
from typing import Any

from aiohttp import web

from agent.ops import logs
from agent.ops.control import ControlSocket, ControlSocketError

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

    `listen` is a TCP address (None: none); `control` a control socket to serve on as well. `ready()` returns
    (ready, reason); the reason is the body of /readyz so an operator sees why. `status()` is the /status JSON.
    """

    def __init__(
        self,
        listen: str | None,
        render_metrics: Callable[[], str],
        ready: Callable[[], tuple[bool, str]],
        *,
        status: Callable[[], dict[str, Any]] | None = None,
        control: ControlSocket | None = None,
    ) -> None:
        self.host, self._requested_port = parse_listen(listen) if listen else (DEFAULT_HOST, None)
        self._render_metrics = render_metrics
        self._ready = ready
        self._status = status
        self.control = control
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        if self._status is not None:
            app.router.add_get("/status", self._status_json)
        return app

    async def start(self) -> None:
        """Bind and serve; `.port` is the real port afterwards (useful with port 0).

        A TCP address that cannot be bound raises (the operator asked for it); a control socket that cannot be
        made is logged and left out (the agent's work does not depend on it).
        """
        # access_log=None: scrapes every 15 s would otherwise fill the journal.
        # handle_signals=False: the agent owns SIGTERM/SIGHUP.
        runner = web.AppRunner(self._app(), access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        self._runner = runner
        try:
            if self._requested_port is not None:
                await web.TCPSite(runner, self.host, self._requested_port).start()
                self.port = runner.addresses[0][1]
                log.info("ops_http_listening", host=self.host, port=self.port)
            if self.control is not None:
                await self._serve_control(runner, self.control)
        except BaseException:
            await self.stop()
            raise

    async def _serve_control(self, runner: web.AppRunner, control: ControlSocket) -> None:
        try:
            sock = control.open()
        except ControlSocketError as exc:
            log.warning("control_socket_unavailable", error=str(exc),
                        action="volt-agent top cannot find this agent; it can read metrics.listen instead")
            self.control = None
            return
        try:
            await web.SockSite(runner, sock).start()
        except BaseException:
            sock.close()
            raise
        log.info("control_socket_listening", path=str(control.path))

    async def stop(self) -> None:
        """Close the listeners and open connections, then remove the control socket; safe to call twice."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        if self.control is not None:
            self.control.remove()

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

    async def _status_json(self, request: web.Request) -> web.Response:
        assert self._status is not None
        try:
            return web.json_response(self._status(), headers={"Cache-Control": "no-store"})
        except Exception as exc:
            log.error("status_render_failed", error=repr(exc))
            return web.Response(status=500, text="status rendering failed")

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
