"""One agent per state directory: `run` holds an exclusive flock on `<state_dir>/agent.lock` while it runs.

Two agents on one state dir (the service, and the same config started from a shell to debug) would read the
same files, send every record twice and overwrite each other's checkpoints. The kernel drops a flock when its
holder exits, however it exits (kill -9 included), so a lock never outlives its process and there is no stale
lock to clean up. The file stays in place: removing it on exit would let a newcomer lock a fresh file while an
old one is still held. It holds the holder's PID as text, for the message a second agent prints.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

from agent.files.checkpoints import StateDirError, create_state_dir

LOCK_NAME = "agent.lock"


class StateDirLocked(Exception):
    """Another process holds the state directory; the message names it, the holder's PID and what to do."""


def _holder(fd: int) -> str:
    """The PID the holder wrote, or a description if it has not written it yet (it writes right after locking)."""
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return f"PID {text}" if text.isdigit() else "a process that is starting (PID not written yet)"


def _refuse_unwritable(path: Path, exc: OSError) -> NoReturn:
    """This user cannot write the lock file: most often the service's user runs the agent and the operator tried
    the same config from a shell. Say that the agent holds it (a read-only descriptor can test the flock) rather
    than only "permission denied"."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StateDirLocked(_locked_message(path, fd)) from None
        finally:
            os.close(fd)
    raise StateDirError(f"cannot open the lock file {path}: {exc.strerror} (the state dir belongs to another user: "
                        "run as that user, or give this run its own --state-dir)") from None


def _locked_message(path: Path, fd: int) -> str:
    return (f"state_dir {path.parent} is in use by another volt-agent run ({_holder(fd)}, lock file {path}); "
            "two agents on one state dir would send every record twice and overwrite each other's "
            "checkpoints: stop the other agent (the service: systemctl stop volt-agent, or volt-agent@NAME), "
            "or give this run its own --state-dir (--dry-run keeps no state and needs none)")


@contextlib.contextmanager
def state_lock(state_dir: Path) -> Iterator[None]:
    """Hold the state directory for the life of the block; raise StateDirLocked at once if another has it."""
    create_state_dir(state_dir)
    path = state_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except PermissionError as exc:
        _refuse_unwritable(path, exc)
    except OSError as exc:
        raise StateDirError(f"cannot open the lock file {path}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StateDirLocked(_locked_message(path, fd)) from None
        except OSError as exc:  # a file system without locks
            raise StateDirError(f"cannot lock {path}: {exc.strerror}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock; the kernel would on exit anyway
