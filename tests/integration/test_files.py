"""The real FileServer in-process on real files: discovery, rotation, start positions, lines, checkpoints.

Each test drives files the way writers and logrotate do and checks exactly which records came out.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import os
import shutil
import threading
import time
from pathlib import Path

import orjson
import pytest

from agent.files.checkpoints import Checkpoint, CheckpointStore
from agent.files.discovery import watch_roots
from agent.ops.metrics import AgentMetrics
from tests.files_support import Capture, line, lines, make_server, running, source_config, until


def events(caplog: pytest.LogCaptureFixture, name: str) -> list[dict]:
    return [getattr(r, "fields", {}) for r in caplog.records if r.getMessage() == name]


def store_at(path: Path, max_age: float = 3600) -> CheckpointStore:
    store = CheckpointStore(path, max_age)
    store.load()
    return store


async def read_until(cfg, sink: Capture, state: Path, n: int) -> None:
    """One agent session: read until `n` records were captured, then checkpoint and stop."""
    async with running(make_server(cfg, sink, store_at(state))) as server:
        await until(lambda: len(sink.records) == n, what=f"{n} records")
        await asyncio.sleep(0.2)
        server.checkpoint()
        server.store.flush()


def read_session(cfg, sink: Capture, state: Path, n: int) -> None:
    """A whole agent session (start, read `n` records, checkpoint, stop) from synchronous test code."""
    asyncio.run(read_until(cfg, sink, state, n))


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as fh:
        fh.write(data)


class Gate(Capture):
    """A sink whose put() waits until opened: the queue is full, the endpoint down."""

    def __init__(self) -> None:
        super().__init__()
        self.open = asyncio.Event()

    async def put(self, item) -> None:
        await self.open.wait()
        await super().put(item)


@pytest.fixture(autouse=True)
def _info_logs(caplog):
    caplog.set_level(logging.INFO)


# -- discovery ---------------------------------------------------------------------------------------


def test_globs_with_double_star_and_exclude_and_never_compressed_copies(tmp_path, caplog):
    logs = tmp_path / "logs"
    (logs / "sub" / "deep").mkdir(parents=True)
    (logs / "app.log").write_bytes(line("top"))
    (logs / "sub" / "deep" / "app.log").write_bytes(line("deep"))
    (logs / "sub" / "skip.log").write_bytes(line("excluded"))
    (logs / "sub" / "notes.txt").write_bytes(line("not-matched"))
    (logs / "app.log.1").write_bytes(line("rotated-plain"))
    (logs / "app.log.2.gz").write_bytes(gzip.compress(line("compressed-by-name")))
    (logs / "app.log.3").write_bytes(gzip.compress(line("compressed-by-content")))
    cfg = source_config(tmp_path, [str(logs / "**" / "*.log*")], exclude=["skip.log"])
    sink = Capture()

    async def main() -> None:
        async with running(make_server(cfg, sink, None)):
            await until(lambda: len(sink.records) >= 3, what="3 records")
            await asyncio.sleep(0.3)

    asyncio.run(main())
    assert sorted(sink.ids()) == ["deep", "rotated-plain", "top"]
    assert [e["path"] for e in events(caplog, "file_compressed_ignored")] == [str(logs / "app.log.3")]


def test_watch_roots_are_the_fixed_part_of_each_glob():
    assert watch_roots(["/var/log/kannel/*.log", "/var/log/**/jasmin/*.log", "/srv/app.log", "rel/x*.log",
                        "/opt/gw/**"]) == {
        "/var/log/kannel": False, "/var/log": True, "/srv": False, "rel": False, "/opt/gw": True}


@pytest.mark.parametrize("layout", ["plain", "symlinked directory", "subdirectory under a trailing **"])
def test_new_file_is_picked_up_through_watch_events(tmp_path, layout):
    """Polling and periodic scans are set to a minute, so only inotify events can find the file in time."""
    real = tmp_path / "real"
    (real / "sub").mkdir(parents=True)
    (real / "old.log").write_bytes(line("old"))
    root = real
    if layout == "symlinked directory":
        root = tmp_path / "link"
        root.symlink_to(real, target_is_directory=True)
    pattern = str(root / "**") if layout.startswith("subdirectory") else str(root / "*.log")
    new = real / "sub" / "new.log" if layout.startswith("subdirectory") else real / "new.log"
    cfg = source_config(tmp_path, [pattern], poll_interval=60, scan_interval=60)
    sink = Capture()
    latency: list[float] = []

    async def main() -> None:
        async with running(make_server(cfg, sink, None)):
            await until(lambda: sink.ids() == ["old"], what="the first file")
            t0 = time.monotonic()
            new.write_bytes(line("new"))
            await until(lambda: "new" in sink.ids(), 10, what="the new file's record")
            latency.append(time.monotonic() - t0)

    asyncio.run(main())
    print(f"{layout}: new file picked up after {latency[0]:.3f} s (poll and scan intervals: 60 s)")
    assert latency[0] < 10


def test_symlink_loops_under_a_watched_directory_do_not_stall_start_up(tmp_path):
    """Links back up the tree (`up -> ..`) under a recursive watch: only the root is resolved, links inside are
    not followed, so watching starts at once instead of walking the loop."""
    app = tmp_path / "app"
    for name in ("a", "b"):
        (app / name).mkdir(parents=True)
        (app / name / "up").symlink_to("..", target_is_directory=True)
    (app / "a" / "current.log").write_bytes(line("a-0"))
    cfg = source_config(tmp_path, [str(app / "*" / "current.log")], poll_interval=60, scan_interval=60)
    sink = Capture()

    async def main() -> None:
        async with running(make_server(cfg, sink, None)) as server:  # ready within running()'s 10 s
            await until(lambda: sink.ids() == ["a-0"], what="the file")
            assert server._watcher is not None and server._watcher.complete
            (app / "b" / "current.log").write_bytes(line("b-0"))
            await until(lambda: "b-0" in sink.ids(), 10, what="a new file through events")

    asyncio.run(main())


def test_a_log_directory_created_or_recreated_later_is_watched_from_then_on(tmp_path):
    logs = tmp_path / "later"
    cfg = source_config(tmp_path, [str(logs / "*.log")], poll_interval=0.2, scan_interval=60)
    sink = Capture()

    async def main() -> None:
        async with running(make_server(cfg, sink, None)) as server:
            watcher = server._watcher
            assert not watcher.complete, "the directory does not exist yet: polling meanwhile"
            for n in range(2):
                logs.mkdir()
                await until(lambda: watcher.complete, what="the directory watched")
                await asyncio.sleep(0.3)  # past the polling cadence: from now on only events find files quickly
                (logs / f"{n}.log").write_bytes(line(f"file-{n}"))
                await until(lambda n=n: f"file-{n}" in sink.ids(), 5, what="a file found through events")
                shutil.rmtree(logs)
                await until(lambda: not watcher.complete, what="the lost watch noticed")

    asyncio.run(main())


def test_polling_alone_finds_and_follows_files_when_watching_is_off(tmp_path):
    cfg = source_config(tmp_path, [str(tmp_path / "*.log")], watch=False, poll_interval=0.1)
    sink = Capture()

    async def main() -> None:
        async with running(make_server(cfg, sink, None)) as server:
            assert server._watcher is None
            (tmp_path / "a.log").write_bytes(line("a-0"))
            await until(lambda: sink.ids() == ["a-0"], what="a new file by polling")
            append(tmp_path / "a.log", line("a-1"))
            await until(lambda: sink.ids() == ["a-0", "a-1"], what="appended line by polling")

    asyncio.run(main())


def test_periodic_scan_finds_files_whose_events_were_lost(tmp_path):
    (tmp_path / "a.log").write_bytes(line("a"))
    cfg = source_config(tmp_path, [str(tmp_path / "*.log")], poll_interval=60, scan_interval=0.3)
    sink = Capture()

    async def main() -> None:
        async with running(make_server(cfg, sink, None)) as server:
            await until(lambda: sink.ids() == ["a"], what="first file")
            server._watcher._handler.on_any_event = lambda event: None  # as if inotify overflowed
            (tmp_path / "b.log").write_bytes(line("b"))
            await until(lambda: "b" in sink.ids(), 10, what="the periodic scan")

    asyncio.run(main())


# -- rotation -------------------------------------------------------------------------------------


def test_rename_and_create_reads_the_rotated_file_to_its_end_before_the_new_one(tmp_path):
    log = tmp_path / "app.log"
    cfg = source_config(tmp_path, [str(log)], rotate_wait=30)
    sink = Gate()

    async def main() -> None:
        writer = log.open("ab", buffering=0)
        writer.write(lines("a", 10))
        async with running(make_server(cfg, sink, None)) as server:
            await until(lambda: server.tailers, what="file opened")
            os.rename(log, tmp_path / "app.log.1")  # not matched by the glob any more
            writer.write(lines("a", 10, 10))  # the writer has not reopened yet: still the old file
            log.write_bytes(lines("b", 10))
            writer.close()
            server.request_rescan()
            await until(lambda: len(server.tailers) == 2, what="rotation noticed")
            sink.open.set()
            await until(lambda: len(sink.records) == 30, what="30 records")

    asyncio.run(main())
    assert sink.ids() == [f"a-{i}" for i in range(20)] + [f"b-{i}" for i in range(10)]


@pytest.mark.parametrize("pattern", ["app.log", "app.log*"])
def test_copytruncate_reads_the_new_content_and_never_the_copy_twice(tmp_path, caplog, pattern):
    log = tmp_path / "app.log"
    log.write_bytes(lines("a", 20))
    cfg = source_config(tmp_path, [str(tmp_path / pattern)])
    sink = Capture()

    async def main() -> None:
        async with running(make_server(cfg, sink, None)):
            await until(lambda: len(sink.records) == 20, what="first lines")
            shutil.copyfile(log, tmp_path / "app.log.1")
            with log.open("r+b") as fh:
                fh.truncate(0)
            append(log, lines("c", 5))
            await until(lambda: len(sink.records) >= 25, what="lines after the truncation")
            await asyncio.sleep(0.8)  # a copy read twice would show up by now

    asyncio.run(main())
    assert sorted(sink.ids()) == sorted([f"a-{i}" for i in range(20)] + [f"c-{i}" for i in range(5)])
    if pattern == "app.log*":
        assert [e["of"] for e in events(caplog, "file_is_copy")] == [str(log)]


def test_copy_made_while_stopped_carries_on_from_the_checkpoint(tmp_path, caplog):
    """copytruncate while the agent is down: the copy fits the original's checkpoint, so only its unread
    tail is read; the truncated original is read from its start."""
    log = tmp_path / "app.log"
    log.write_bytes(lines("a", 10))
    cfg = source_config(tmp_path, [str(tmp_path / "app.log*")])
    sink = Capture()

    async def run_once(n: int) -> None:
        async with running(make_server(cfg, sink, store_at(tmp_path / "state"))) as server:
            await until(lambda: len(sink.records) == n, what=f"{n} records")
            server.checkpoint()
            server.store.flush()

    asyncio.run(run_once(10))
    append(log, lines("a", 5, 10))
    shutil.copyfile(log, tmp_path / "app.log.1")
    os.truncate(log, 0)
    append(log, lines("c", 3))
    asyncio.run(run_once(18))
    assert sorted(sink.ids()) == sorted([f"a-{i}" for i in range(15)] + [f"c-{i}" for i in range(3)])
    assert events(caplog, "file_is_copy")


def test_deleted_file_is_read_to_its_end_then_released_and_forgotten(tmp_path, caplog):
    log = tmp_path / "app.log"
    log.write_bytes(lines("d", 200))
    cfg = source_config(tmp_path, [str(log)], rotate_wait=1)
    store = store_at(tmp_path / "state")
    sink = Gate()

    async def main() -> None:
        async with running(make_server(cfg, sink, store)) as server:
            await until(lambda: server.tailers, what="file opened")
            key = next(iter(server.tailers))
            log.unlink()  # 200 lines unread: the sink is not taking records
            await until(lambda: events(caplog, "file_rotated_or_deleted"), what="delete noticed")
            sink.open.set()
            await until(lambda: len(sink.records) == 200, what="all lines of the deleted file")
            await until(lambda: not server.tailers, 10, what="release")
            assert store.get("app", key) is None, "a deleted file's checkpoint goes: its inode may be reused"

    asyncio.run(main())
    assert sink.ids() == [f"d-{i}" for i in range(200)]
    assert [e["deleted"] for e in events(caplog, "file_released")] == [True]
    assert not events(caplog, "rotated_file_released_unread")


def test_rotate_wait_bounds_how_long_a_dead_sink_pins_a_deleted_file(tmp_path, caplog):
    log = tmp_path / "app.log"
    data = lines("x", 20000)  # more than one read chunk: the rest stays unread while the sink is down
    log.write_bytes(data)
    cfg = source_config(tmp_path, [str(log)], rotate_wait=0.5)
    metrics = AgentMetrics()
    sink = Gate()  # never opened while the file is held: the endpoint is down

    def pinned() -> bool:
        fds = os.listdir("/proc/self/fd")
        return any(_target(fd).startswith(str(log)) for fd in fds)

    async def main() -> None:
        async with running(make_server(cfg, sink, None, metrics)) as server:
            await until(lambda: server.tailers, what="file opened")
            log.unlink()
            await until(lambda: events(caplog, "rotated_file_released_unread"), 10, what="release after rotate_wait")
            assert not pinned(), "the deleted file's descriptor must be closed"
            sink.open.set()

    asyncio.run(main())
    [released] = events(caplog, "rotated_file_released_unread")
    dropped = metrics.dropped_bytes.labels("app").value
    print(f"dropped {dropped:.0f} of {len(data)} bytes after rotate_wait")
    assert 0 < dropped == released["dropped_bytes"] < len(data)


def test_stop_returns_while_the_reader_waits_on_a_dead_sink(tmp_path):
    """Shutdown must not hang on a full queue; the unsent line stays unacknowledged (read again next start)."""
    (tmp_path / "app.log").write_bytes(lines("s", 50))
    cfg = source_config(tmp_path, [str(tmp_path / "app.log")])
    store = store_at(tmp_path / "state")
    sink = Gate()

    async def main() -> None:
        server = make_server(cfg, sink, store)
        task = asyncio.create_task(server.run())
        await until(lambda: server.tailers, what="file opened")
        await asyncio.sleep(0.2)
        server.stop()
        await asyncio.wait_for(task, 5)
        server.checkpoint()
        server.close()

    asyncio.run(main())
    [cp] = store.entries.values()
    assert cp.offset == 0 and sink.records == []


def _target(fd: str) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


# -- start positions and checkpoints --------------------------------------------------------------


def test_start_at_end_applies_only_at_the_first_start_and_checkpoints_resume_exactly(tmp_path):
    old = tmp_path / "old.log"
    old.write_bytes(lines("before-first-start", 3))
    cfg = source_config(tmp_path, [str(tmp_path / "*.log")], start_at="end")
    sink = Capture()

    async def session(expected: int) -> None:
        async with running(make_server(cfg, sink, store_at(tmp_path / "state"))) as server:
            if expected == 4:
                append(old, line("after-start-0"))
                (tmp_path / "later.log").write_bytes(lines("later", 3))
            await until(lambda: len(sink.records) == expected, what=f"{expected} records")
            await asyncio.sleep(0.3)
            server.checkpoint()
            server.store.flush()

    asyncio.run(session(4))
    append(old, lines("while-stopped", 2))
    append(tmp_path / "later.log", line("later-while-stopped"))
    (tmp_path / "new-while-stopped.log").write_bytes(line("new-while-stopped"))  # not present at the first start
    asyncio.run(session(8))
    assert sorted(sink.ids()) == sorted(["after-start-0", "later-0", "later-1", "later-2", "while-stopped-0",
                                         "while-stopped-1", "later-while-stopped", "new-while-stopped"])


def test_start_at_beginning_reads_what_is_there_at_the_first_start(tmp_path):
    (tmp_path / "a.log").write_bytes(lines("a", 3))
    cfg = source_config(tmp_path, [str(tmp_path / "a.log")], start_at="beginning")
    sink = Capture()

    async def main() -> None:
        async with running(make_server(cfg, sink, store_at(tmp_path / "state"))):
            await until(lambda: len(sink.records) == 3, what="3 records")

    asyncio.run(main())
    assert sink.ids() == ["a-0", "a-1", "a-2"]


def test_glob_matching_rotated_names_reads_each_file_once_across_a_rename_while_stopped(tmp_path, caplog):
    log = tmp_path / "app.log"
    log.write_bytes(lines("a", 5))
    cfg = source_config(tmp_path, [str(tmp_path / "app.log*")])
    sink = Capture()

    asyncio.run(read_until(cfg, sink, tmp_path / "state", 5))
    append(log, lines("a", 2, 5))  # written before the rotation, unread
    os.rename(log, tmp_path / "app.log.1")
    log.write_bytes(lines("b", 3))
    asyncio.run(read_until(cfg, sink, tmp_path / "state", 10))
    assert sink.ids()[:5] == [f"a-{i}" for i in range(5)]
    assert sorted(sink.ids()[5:]) == ["a-5", "a-6", "b-0", "b-1", "b-2"]
    opened = {Path(e["path"]).name: e["start"] for e in events(caplog, "file_opened")}
    assert opened["app.log.1"] == "checkpoint"


def test_partial_last_line_waits_and_is_never_committed_early(tmp_path):
    log = tmp_path / "app.log"
    whole = line("p-0")
    log.write_bytes(line("done") + whole[:20])
    cfg = source_config(tmp_path, [str(log)])
    store = store_at(tmp_path / "state")
    sink = Capture()

    async def main() -> None:
        async with running(make_server(cfg, sink, store)) as server:
            await until(lambda: sink.ids() == ["done"], what="complete line")
            await asyncio.sleep(0.5)
            server.checkpoint()
            [cp] = store.entries.values()
            assert sink.ids() == ["done"] and cp.offset == len(line("done"))
            append(log, whole[20:])
            await until(lambda: sink.ids() == ["done", "p-0"], what="the completed line")

    asyncio.run(main())


def test_oversize_lines_are_skipped_counted_and_logged_once(tmp_path, caplog):
    log = tmp_path / "app.log"
    big = orjson.dumps({"id": "big", "provider": "smpp", "body": "x" * 500}) + b"\n"
    log.write_bytes(line("ok-0") + big * 3 + line("ok-1"))
    cfg = source_config(tmp_path, [str(log)], max_line_bytes=200)
    metrics = AgentMetrics()
    sink = Capture()

    async def main() -> None:
        async with running(make_server(cfg, sink, None, metrics)):
            await until(lambda: len(sink.records) == 2, what="2 records")

    asyncio.run(main())
    assert sink.ids() == ["ok-0", "ok-1"]
    assert metrics.lines_skipped.labels("app", "oversize").value == 3
    assert len(events(caplog, "line_too_long")) == 1


def test_a_rejects_file_that_cannot_be_written_loses_no_line_after_the_reject(tmp_path, caplog):
    log = tmp_path / "app.log"
    log.write_bytes(line("ok-0") + b"not json\n" + lines("ok", 100, start=1))
    cfg = source_config(tmp_path, [str(log)], rejects="/dev/full")  # every write: ENOSPC
    metrics = AgentMetrics()
    sink = Capture()
    store = store_at(tmp_path / "state")

    async def main() -> None:
        async with running(make_server(cfg, sink, store, metrics)) as server:
            await until(lambda: len(sink.records) == 101, what="101 records")
            server.checkpoint()

    asyncio.run(main())
    assert sink.ids() == [f"ok-{i}" for i in range(101)]
    assert metrics.records_rejected.labels("app", "invalid JSON").value == 1
    assert [e["error"] for e in events(caplog, "rejects_write_failed")] == ["No space left on device"]
    assert [cp.offset for cp in store.entries.values()] == [log.stat().st_size]


def test_checkpoints_survive_odd_file_names_and_skip_entries_of_the_wrong_type(tmp_path, caplog):
    state = tmp_path / "state"
    store = store_at(state)
    odd = os.fsdecode(bytes(tmp_path / "app-") + b"\xff.log")  # not UTF-8: Python keeps it as a surrogate
    store.put(Checkpoint("1:1", "app", odd, 10, 4, "x", None, time.time()))
    store.flush()
    raw = orjson.loads((state / "checkpoints.json").read_bytes())
    raw["files"].append({"key": "1:2", "source": "app", "path": "b.log", "offset": "10", "head_length": 4,
                         "head_digest": "x", "tail_digest": None, "seen": 1.0})
    raw["sources_started"] = None  # edited by hand: read as "none started", not a crash
    (state / "checkpoints.json").write_bytes(orjson.dumps(raw))
    again = store_at(state)
    assert [(cp.key, cp.path, cp.offset) for cp in again.entries.values()] == [
        ("1:1", str(tmp_path / "app-") + "\\xff.log", 10)]
    assert [e["entry"][:25] for e in events(caplog, "checkpoint_entry_skipped")] == ["{'key': '1:2', 'source': "]


def test_latin1_is_configurable_and_invalid_bytes_are_replaced_and_counted(tmp_path):
    (tmp_path / "l1.log").write_bytes(b'{"id": "l1", "provider": "smpp", "body": "caf\xe9"}\n')
    (tmp_path / "u8.log").write_bytes(b'{"id": "u8", "provider": "smpp", "body": "bad \xff byte"}\n' + line("u8-next"))
    latin = source_config(tmp_path, [str(tmp_path / "l1.log")], name="latin", encoding="latin-1")
    utf8 = source_config(tmp_path, [str(tmp_path / "u8.log")], name="utf8")
    metrics = AgentMetrics()
    got_latin, got_utf8 = Capture(), Capture()

    async def main() -> None:
        async with running(make_server(latin, got_latin, None, metrics)), \
                running(make_server(utf8, got_utf8, None, metrics)):
            await until(lambda: len(got_latin.records) == 1 and len(got_utf8.records) == 2, what="records")

    asyncio.run(main())
    assert got_latin.records[0]["body"] == "café"
    assert got_utf8.records[0]["body"] == "bad \ufffd byte" and got_utf8.ids()[1] == "u8-next"
    assert metrics.invalid_bytes.labels("utf8").value == 1 and metrics.invalid_bytes.labels("latin").value == 0


def _reuse_inode(path: Path, content: bytes) -> bool:
    """Delete `path` and create a new file there with `content` on the same inode (ext4 hands it out again)."""
    ino = path.stat().st_ino
    for _ in range(50):
        path.unlink()
        path.write_bytes(content)
        if path.stat().st_ino == ino:
            return True
        spare = path.with_suffix(".spare")  # keep the wrong inode busy so the next try gets another
        os.rename(path, spare)
        path.write_bytes(b"")
    return False


@pytest.mark.parametrize("same_banner", [False, True])
def test_inode_reuse_is_recognised_as_a_new_file(tmp_path, caplog, same_banner):
    banner = b"# gateway banner " + b"=" * 300 + b"\n" if same_banner else b""
    log = tmp_path / "app.log"
    log.write_bytes(banner + lines("old", 6))
    cfg = source_config(tmp_path, [str(log)])
    sink = Capture()

    read_session(cfg, sink, tmp_path / "state", 6)
    if not _reuse_inode(log, banner + lines("new", 9)):
        pytest.skip("this filesystem did not hand the inode out again")
    read_session(cfg, sink, tmp_path / "state", 15)
    assert sink.ids()[6:] == [f"new-{i}" for i in range(9)]
    event = "checkpoint_not_trusted" if same_banner else "inode_reused"
    assert len(events(caplog, event)) == 1, event


def test_files_sharing_a_banner_longer_than_the_fingerprint_are_told_apart(tmp_path):
    banner = b"# kannel bearerbox " + b"-" * 400 + b"\n"
    (tmp_path / "a.log").write_bytes(banner + lines("a", 3))
    (tmp_path / "b.log").write_bytes(banner + lines("b", 3))
    cfg = source_config(tmp_path, [str(tmp_path / "*.log")])
    sink = Capture()

    async def main() -> None:
        async with running(make_server(cfg, sink, store_at(tmp_path / "state"))) as server:
            await until(lambda: len(sink.records) == 6, what="both files")
            os.rename(tmp_path / "a.log", tmp_path / "a.old")  # rotated away; the new a.log has the banner too
            (tmp_path / "a.log").write_bytes(banner + lines("a2", 2))
            server.request_rescan()
            await until(lambda: len(sink.records) == 8, what="the new file with the same banner")

    asyncio.run(main())
    assert sorted(sink.ids()) == sorted([f"a-{i}" for i in range(3)] + [f"b-{i}" for i in range(3)]
                                        + ["a2-0", "a2-1"])


@pytest.mark.parametrize("change", ["shorter", "different"])
def test_stored_offset_is_checked_before_it_is_trusted(tmp_path, caplog, change):
    banner = b"# banner " + b"*" * 300 + b"\n"  # same first bytes, so only the offset check can tell
    log = tmp_path / "app.log"
    log.write_bytes(banner + lines("v1", 8))
    cfg = source_config(tmp_path, [str(log)])
    sink = Capture()

    read_session(cfg, sink, tmp_path / "state", 8)
    rewritten = banner + (lines("v2", 2) if change == "shorter" else lines("v2-longer-lines", 10))
    with log.open("r+b") as fh:  # rewritten in place while the agent was stopped: same inode
        fh.truncate(0)
        fh.write(rewritten)
    read_session(cfg, sink, tmp_path / "state", 8 + (2 if change == "shorter" else 10))
    [event] = events(caplog, "checkpoint_not_trusted")
    assert ("beyond the file's size" if change == "shorter" else "differ") in event["reason"]


def test_checkpoint_entries_of_files_gone_too_long_expire(tmp_path, caplog):
    (tmp_path / "a.log").write_bytes(line("a"))
    cfg = source_config(tmp_path, [str(tmp_path / "a.log")])
    store = store_at(tmp_path / "state", max_age=60)
    store.put(Checkpoint("1:99", "app", str(tmp_path / "gone.log"), 10, 4, "x", None, time.time() - 3600))
    store.put(Checkpoint("1:98", "app", str(tmp_path / "recent.log"), 10, 4, "x", None, time.time() - 5))

    async def main() -> None:
        async with running(make_server(cfg, Capture(), store)) as server:
            await until(lambda: server.tailers, what="file opened")
            server.checkpoint()
            store.expire(time.time(), server.live_keys())

    asyncio.run(main())
    assert {cp.path for cp in store.entries.values()} == {str(tmp_path / "a.log"), str(tmp_path / "recent.log")}
    assert [e["path"] for e in events(caplog, "checkpoint_expired")] == [str(tmp_path / "gone.log")]


def test_append_while_reading_delivers_every_line_once_in_order(tmp_path):
    log = tmp_path / "app.log"
    log.write_bytes(b"")
    cfg = source_config(tmp_path, [str(log)])
    sink = Capture()
    total = 5000

    def writer() -> None:
        with log.open("ab", buffering=0) as fh:
            for i in range(0, total, 50):
                fh.write(lines("w", 50, i)[:-7])  # the last line of each burst lands in two writes
                fh.write(lines("w", 50, i)[-7:])
                time.sleep(0.002)

    async def main() -> None:
        async with running(make_server(cfg, sink, None)):
            thread = threading.Thread(target=writer)
            thread.start()
            await until(lambda: len(sink.records) >= total, 30, what=f"{total} records")
            thread.join()

    asyncio.run(main())
    assert sink.ids() == [f"w-{i}" for i in range(total)]
