"""The control socket: the ops routes on a Unix socket in the state dir, for `volt-agent top` and scripts.

It needs no port and no config, so it is always on: the file's permissions (0600, the agent's user) decide who may
look. A socket left by an agent that died is replaced; one that another agent still answers on is left alone, so a
second agent started on the same state dir cannot take it over.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from pathlib import Path

SOCKET_NAME = "control.sock"
MAX_PATH_BYTES = 107  # sun_path is 108 bytes with the terminating NUL


class ControlSocketError(Exception):
    """The control socket cannot be created; the message says where and why."""


def socket_path(state_dir: Path) -> Path:
    return state_dir / SOCKET_NAME


def path_problem(path: Path) -> str | None:
    """Why no unix socket can live at `path`, or None; `top` says the same when it looks there."""
    if len(os.fsencode(path)) > MAX_PATH_BYTES:
        return f"{path} is longer than the {MAX_PATH_BYTES} bytes a unix socket path may have"
    return None


class ControlSocket:
    """Binds the socket owner-only and removes it at exit, only if it is still the one this agent made."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._identity: tuple[int, int] | None = None

    def open(self) -> socket.socket:
        """A bound socket for the HTTP server to listen on; ControlSocketError if there can be none."""
        problem = path_problem(self.path)
        if problem:
            raise ControlSocketError(problem)
        self._clear_stale()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # born 0600: no moment where another user could connect
        try:
            sock.bind(os.fsdecode(self.path))
            st = os.lstat(self.path)
        except OSError as exc:
            sock.close()
            raise ControlSocketError(f"cannot create {self.path}: {exc.strerror}") from None
        finally:
            os.umask(old)
        self._identity = (st.st_dev, st.st_ino)
        return sock

    def _clear_stale(self) -> None:
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise ControlSocketError(f"cannot look at {self.path}: {exc.strerror}") from None
        if not stat.S_ISSOCK(st.st_mode):
            raise ControlSocketError(f"{self.path} exists and is not a socket; it is left as it is")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(1.0)
        try:
            probe.connect(os.fsdecode(self.path))
        except ConnectionRefusedError:  # nobody listens: left by an agent that was killed
            try:
                os.unlink(self.path)
            except OSError as exc:
                raise ControlSocketError(f"cannot remove the stale {self.path}: {exc.strerror}") from None
            return
        except OSError as exc:
            raise ControlSocketError(f"cannot tell whether an agent answers on {self.path}: {exc}") from None
        finally:
            probe.close()
        raise ControlSocketError(f"another agent answers on {self.path} (two agents on one state_dir?); "
                                 "it is left to that agent")

    def remove(self) -> None:
        """Unlink the socket if it is still ours (a stale one replaced by another agent is not)."""
        identity, self._identity = self._identity, None
        if identity is None:
            return
        with contextlib.suppress(OSError):  # one left behind is found stale and replaced at the next start
            st = os.lstat(self.path)
            if (st.st_dev, st.st_ino) == identity:
                os.unlink(self.path)
