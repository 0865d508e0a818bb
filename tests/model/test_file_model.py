"""Model-based test of the files layer (like Vector's file-watcher model tests), with hypothesis stateful testing.

Random sequences of: write lines / write a partial line / rotate by rename+create / copytruncate / delete and
recreate / checkpoint / graceful stop / crash / start / time passing / read, on real files, against the real
FileServer (in-process, asyncio) with a capturing sink that acknowledges and a real CheckpointStore on disk.
A restart drops the server and builds a new one from the store on disk.

The model knows which lines were written and decides which may be lost, only these:
- lines of a file deleted while the agent was stopped, or before it ever saw the file (it had no descriptor);
- lines of a deleted file still unread when the agent stops or crashes.
Every other line must be delivered at least once by the next read, and a line may be delivered twice only
if it was delivered after the last checkpoint written before a crash.
The glob `app.log*` matches rotated names, so rotated files and copies are followed; copies must be
recognised (never read twice) and copytruncate, being atomic here, loses nothing.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from agent.files.checkpoints import CheckpointStore
from agent.files.server import ORPHAN_IDLE, FileServer
from tests.files_support import Capture, line, make_server, source_config

LOG, ROT1, ROT2 = "app.log", "app.log.1", "app.log.2"


class FileModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="volt-model-"))
        self.logs = self.tmp / "logs"
        self.logs.mkdir()
        self.state = self.tmp / "state"
        self.sink = Capture()
        self.server: FileServer | None = None
        self.store: CheckpointStore | None = None
        self.next_id = 0
        self.next_fid = 0
        self.names: dict[str, int] = {}  # file name -> physical file (inode) in the model
        self.content: dict[int, list[str]] = {}  # physical file -> ids of its complete lines
        self.partial: tuple[str, bytes] | None = None  # a line the writer has only partly written to app.log
        self.written: list[str] = []
        self.excused: set[str] = set()  # may be lost
        self.dup_allowed: set[str] = set()
        self.unflushed: set[str] = set()  # delivered since the last checkpoint was written
        self.known: set[int] = set()  # files the running server has a descriptor for
        self.deleted_open: set[int] = set()  # deleted while the server held them
        self.delivered_seen = 0

    # -- the world ----------------------------------------------------------------------------

    @initialize(fingerprint=st.sampled_from([16, 256]))
    def setup(self, fingerprint: int) -> None:
        self.cfg = source_config(self.tmp, [str(self.logs / "app.log*")], fingerprint_bytes=fingerprint,
                                 rotate_wait=3600)
        self._path(LOG).write_bytes(b"")
        self._create(LOG)
        self._start()

    def teardown(self) -> None:
        if self.server is not None:
            self.server.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _path(self, name: str) -> Path:
        return self.logs / name

    def _create(self, name: str, ids: list[str] | None = None) -> None:
        fid = self.next_fid
        self.next_fid += 1
        self.names[name] = fid
        self.content[fid] = list(ids or [])

    def _append(self, data: bytes) -> None:
        with self._path(LOG).open("ab") as fh:
            fh.write(data)

    def _finish_partial(self) -> None:
        """The writer completes its line before it reopens or logrotate acts on the file."""
        if self.partial is not None:
            ident, rest = self.partial
            self._append(rest)
            self.content[self.names[LOG]].append(ident)
            self.written.append(ident)
            self.partial = None

    def _new_id(self) -> str:
        self.next_id += 1
        return f"L{self.next_id}"

    def _delete(self, name: str) -> None:
        fid = self.names.pop(name)
        self._path(name).unlink()
        if self.server is not None and fid in self.known:
            self.deleted_open.add(fid)  # read through the open descriptor
        else:
            self.excused.update(self._undelivered(fid))

    def _undelivered(self, fid: int) -> list[str]:
        delivered = Counter(self.sink.ids())
        return [i for i in self.content[fid] if not delivered[i]]

    def _shift_rotated(self) -> None:
        if ROT2 in self.names:
            self._delete(ROT2)
        if ROT1 in self.names:
            os.rename(self._path(ROT1), self._path(ROT2))
            self.names[ROT2] = self.names.pop(ROT1)

    # -- the agent ----------------------------------------------------------------------------

    def _start(self) -> None:
        self.store = CheckpointStore(self.state, max_age=10**9)
        self.store.load()
        self.server = make_server(self.cfg, self.sink, self.store, copy_settle=0)
        self.server.scan(initial=True)
        self.known = set(self.names.values())

    def _gone(self) -> None:
        """The server is gone: deleted files it held are lost where unread."""
        assert self.server is not None
        self.server.close()
        self.server = None
        for fid in self.deleted_open:
            self.excused.update(self._undelivered(fid))
        self.deleted_open.clear()
        self.known.clear()

    def _flush(self) -> None:
        assert self.server is not None and self.store is not None
        self.server.checkpoint()
        self.store.flush()
        self.unflushed.clear()

    # -- rules ----------------------------------------------------------------------------------

    @rule(n=st.integers(1, 4))
    def write_lines(self, n: int) -> None:
        self._finish_partial()
        ids = [self._new_id() for _ in range(n)]
        self._append(b"".join(line(i) for i in ids))
        self.content[self.names[LOG]].extend(ids)
        self.written.extend(ids)

    @precondition(lambda self: self.partial is None)
    @rule(cut=st.integers(1, 40))
    def write_partial_line(self, cut: int) -> None:
        ident = self._new_id()
        data = line(ident)
        self._append(data[:cut])
        self.partial = (ident, data[cut:])

    @rule(caught_up=st.booleans())
    def rotate_rename_create(self, caught_up: bool) -> None:
        self._maybe_read(caught_up)
        self._finish_partial()
        self._shift_rotated()
        os.rename(self._path(LOG), self._path(ROT1))
        self.names[ROT1] = self.names.pop(LOG)
        self._path(LOG).write_bytes(b"")
        self._create(LOG)

    @rule(caught_up=st.booleans())
    def rotate_copytruncate(self, caught_up: bool) -> None:
        self._maybe_read(caught_up)
        self._finish_partial()
        self._shift_rotated()
        shutil.copyfile(self._path(LOG), self._path(ROT1))
        self._create(ROT1, self.content[self.names[LOG]])
        os.truncate(self._path(LOG), 0)
        self.content[self.names[LOG]] = []

    @rule(caught_up=st.booleans())
    def delete_and_recreate(self, caught_up: bool) -> None:
        self._maybe_read(caught_up)
        self._finish_partial()
        self._delete(LOG)
        self._path(LOG).write_bytes(b"")
        self._create(LOG)

    @precondition(lambda self: self.server is not None)
    @rule()
    def checkpoint(self) -> None:
        self._flush()

    @precondition(lambda self: self.server is not None)
    @rule()
    def stop_gracefully(self) -> None:
        self._flush()
        self._gone()

    @precondition(lambda self: self.server is not None)
    @rule(caught_up=st.booleans())
    def crash(self, caught_up: bool) -> None:
        self._maybe_read(caught_up)
        self.dup_allowed |= self.unflushed
        self._gone()

    @precondition(lambda self: self.server is None)
    @rule()
    def start(self) -> None:
        self._start()

    @precondition(lambda self: self.server is not None)
    @rule()
    def time_passes(self) -> None:
        """Housekeeping without reading: a scan, then orphans read to their end and idle are released."""
        assert self.server is not None
        self.server.scan()
        self.server.release_orphans(now=time.monotonic() + ORPHAN_IDLE + 1)

    def _maybe_read(self, caught_up: bool) -> None:
        """`caught_up`: the agent had read everything just before this happened (it usually has)."""
        if caught_up and self.server is not None:
            self.read()

    @precondition(lambda self: self.server is not None)
    @rule()
    def read(self) -> None:
        server = self.server
        assert server is not None

        async def drain() -> None:
            server.scan()
            while await server.pump_all():
                pass

        asyncio.run(drain())
        self.known = set(self.names.values())
        ids = self.sink.ids()
        self.unflushed.update(ids[self.delivered_seen:])
        self.delivered_seen = len(ids)
        delivered = Counter(ids)
        missing = [i for i in self.written if not delivered[i] and i not in self.excused]
        assert not missing, f"lines never delivered: {missing}"

    # -- always ---------------------------------------------------------------------------------

    @invariant()
    def only_written_lines_and_bounded_duplicates(self) -> None:
        delivered = Counter(self.sink.ids())
        written = set(self.written)
        assert set(delivered) <= written, f"delivered but never written whole: {set(delivered) - written}"
        dups = [i for i, n in delivered.items() if n > 1 and i not in self.dup_allowed]
        assert not dups, f"delivered twice without a crash to explain it: {dups}"


FileModel.TestCase.settings = settings(max_examples=300, stateful_step_count=50, deadline=None,
                                       suppress_health_check=[HealthCheck.too_slow])
TestFileModel = FileModel.TestCase
