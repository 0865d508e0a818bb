"""sd_notify(3) without a dependency: tell systemd we are ready, reloading, stopping, and still alive.

The protocol is one datagram of `KEY=value` lines sent to the unix socket named by `$NOTIFY_SOCKET`.
Nothing here ever raises: a lost notification must not take the agent down, and outside systemd
(`$NOTIFY_SOCKET` unset) every call is a cheap no-op.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable, Mapping

from agent.ops import logs

log = logs.get("agent.ops.notify")

# A send may block only if systemd's receive queue is full; cap it so a wedged PID 1 cannot freeze
# the event loop for long (a dropped WATCHDOG=1 is harmless, the next one follows).
_SEND_TIMEOUT = 1.0


def _socket_address(value: str) -> str | bytes | None:
    """The address to sendto() for a `$NOTIFY_SOCKET` value; None for kinds we do not speak."""
    if value.startswith("@"):
        # Abstract namespace: the leading "@" stands for a NUL byte and the name is not NUL-terminated.
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None  # e.g. "vsock:..." (VMs): not used for a service on the host


class Notifier:
    """Sends sd_notify messages to `$NOTIFY_SOCKET` (or `address`); a no-op when there is none.

    `Notifier()` reads the environment, so the CLI can create one unconditionally and call it everywhere.
    """

    def __init__(self, address: str | None = None, *, environ: Mapping[str, str] | None = None) -> None:
        if address is None:
            address = (os.environ if environ is None else environ).get("NOTIFY_SOCKET") or None
        self.address = address
        self._target = _socket_address(address) if address else None
        self._sock: socket.socket | None = None
        self._failed_logged = False
        if address and self._target is None:
            self._log_failure_once("unsupported NOTIFY_SOCKET address")

    @property
    def enabled(self) -> bool:
        """True when there is a socket to talk to (running under systemd with Type=notify)."""
        return self._target is not None

    def send(self, **fields: object) -> bool:
        """Send one message of `KEY=value` lines; True if the datagram left, False otherwise. Never raises."""
        if self._target is None or not fields:
            return False
        # A newline inside a value would start a new assignment: flatten it.
        payload = "\n".join(f"{key}={str(value).replace(chr(10), ' ')}" for key, value in fields.items())
        try:
            if self._sock is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                sock.settimeout(_SEND_TIMEOUT)
                self._sock = sock
            self._sock.sendto(payload.encode("utf-8", "replace"), self._target)
        except OSError as exc:
            self._log_failure_once(exc.strerror or type(exc).__name__)
            return False
        return True

    def _log_failure_once(self, reason: str) -> None:
        # Debug and once only: a broken notify socket is systemd's problem to report (start timeout,
        # watchdog kill), and logging every 15 s ping would flood the journal.
        if not self._failed_logged:
            self._failed_logged = True
            log.debug("sd_notify_failed", socket=self.address, reason=reason)

    def ready(self, status: str | None = None) -> bool:
        """Startup (or a reload) finished: systemd marks the unit active. `status` goes in the same datagram, so
        `systemctl status` shows a status line from the moment the unit is active, not only after the first ping."""
        return self.send(READY=1) if status is None else self.send(READY=1, STATUS=status)

    def status(self, text: str) -> bool:
        """One line shown by `systemctl status`."""
        return self.send(STATUS=text)

    def watchdog(self) -> bool:
        """Keep-alive for WatchdogSec=; must arrive more often than the period or systemd restarts us."""
        return self.send(WATCHDOG=1)

    def stopping(self) -> bool:
        """Shutdown began (flushing queue, writing checkpoints): the unit shows as deactivating."""
        return self.send(STOPPING=1)

    def reloading(self) -> bool:
        """Reload began (SIGHUP); call `ready()` when done. Type=notify-reload requires MONOTONIC_USEC."""
        return self.send(RELOADING=1, MONOTONIC_USEC=time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)

    def close(self) -> None:
        """Release the socket; later sends reopen it."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings: half of `$WATCHDOG_USEC`, as sd_watchdog_enabled(3) advises.

    None when the watchdog is off, the value is unusable, or `$WATCHDOG_PID` names another process
    (the variable was inherited from a parent that systemd watches, not us).
    """
    env = os.environ if environ is None else environ
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    return usec / 1_000_000 / 2


async def watchdog_loop(
    notifier: Notifier,
    interval: float,
    status: Callable[[], str] | None = None,
) -> None:
    """Ping WATCHDOG=1 (plus STATUS= when given) every `interval` seconds until cancelled.

    It runs as a task on the agent's event loop on purpose: if the loop is blocked or stuck, the pings
    stop and systemd kills and restarts the agent after WatchdogSec=.
    """
    while True:
        fields: dict[str, object] = {"WATCHDOG": 1}
        if status is not None:
            try:
                fields["STATUS"] = status()
            except Exception as exc:  # a broken status line must not silence the watchdog
                log.debug("watchdog_status_failed", error=repr(exc))
        notifier.send(**fields)
        await asyncio.sleep(interval)
