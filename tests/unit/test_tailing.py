"""FileTailer and identity marks on real small files: lines, partial lines, oversize lines, rewrites, copies."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from agent.files.fingerprint import Head, Mark, checksum, is_compressed, tail_digest
from agent.files.tailing import FileTailer

FP = 32


def tailer(path: Path, offset: int = 0, max_line_bytes: int = 1024) -> FileTailer:
    fd = os.open(path, os.O_RDONLY)
    return FileTailer(str(path), fd, "k", Head.read(fd, FP), offset, max_line_bytes=max_line_bytes,
                      fingerprint_bytes=FP)


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as fh:
        fh.write(data)


def texts(found: list[tuple[int, int, bytes]]) -> list[bytes]:
    return [raw for _, _, raw in found]


def test_lines_carry_exact_byte_offsets_and_crlf_is_stripped(tmp_path):
    p = tmp_path / "a.log"
    p.write_bytes(b"one\r\ntwo\n\nthree\n")
    t = tailer(p)
    lines, oversize, progressed = t.read_lines()
    assert lines == [(0, 5, b"one"), (5, 9, b"two"), (9, 10, b""), (10, 16, b"three")]
    assert (oversize, progressed, t.offset) == (0, True, 16)
    assert t.read_lines() == ([], 0, False)


def test_partial_last_line_waits_for_its_newline(tmp_path):
    p = tmp_path / "a.log"
    p.write_bytes(b"done\nhalf a li")
    t = tailer(p)
    assert texts(t.read_lines()[0]) == [b"done"]
    assert t.offset == 5 and t.read_position == 14, "the partial line is held back, not consumed"
    assert t.read_lines()[0] == []
    append(p, b"ne\nnext\n")
    assert t.read_lines()[0] == [(5, 17, b"half a line"), (17, 22, b"next")]


def test_oversize_line_is_skipped_to_its_newline_and_counted_once(tmp_path):
    p = tmp_path / "a.log"
    p.write_bytes(b"ok1\n" + b"x" * 300 + b"\nok2\n")
    t = tailer(p, max_line_bytes=100)
    lines, oversize, _ = t.read_lines(budget=64)  # the long line arrives over several small reads
    seen, skipped = list(lines), oversize
    while True:
        lines, oversize, progressed = t.read_lines(budget=64)
        if not progressed:
            break
        seen += lines
        skipped += oversize
    assert texts(seen) == [b"ok1", b"ok2"]
    assert skipped == 1 and t.oversize_lines == 1
    assert seen[1][0] == 4 + 301, "the line after the skipped one keeps its true offset"


def test_oversize_partial_line_is_not_buffered_while_it_grows(tmp_path):
    p = tmp_path / "a.log"
    p.write_bytes(b"y" * 500)
    t = tailer(p, max_line_bytes=100)
    assert t.read_lines()[1] == 1
    assert t.read_position == 500 and t.offset == 500, "skipped bytes are consumed, never held in memory"
    append(p, b"y" * 500 + b"\nafter\n")
    assert texts(t.read_lines()[0]) == [b"after"]


def test_an_oversize_line_being_skipped_is_not_settled_until_its_newline(tmp_path):
    p = tmp_path / "a.log"
    p.write_bytes(b"ok1\n" + b"y" * 500)
    t = tailer(p, max_line_bytes=100)
    assert texts(t.read_lines()[0]) == [b"ok1"]
    assert t.offset == 504 and t.settled == 4, "a restart now reads the long line from its start"
    append(p, b"y" * 50 + b"\nok2\n")
    assert texts(t.read_lines()[0]) == [b"ok2"]
    assert t.settled == t.offset == 559


def test_the_line_limit_does_not_count_a_crlf_ending(tmp_path):
    p = tmp_path / "a.log"
    p.write_bytes(b"a" * 64 + b"\r\n" + b"b" * 64 + b"\n" + b"c" * 65 + b"\r\n")
    lines, oversize, _ = tailer(p, max_line_bytes=64).read_lines()
    assert texts(lines) == [b"a" * 64, b"b" * 64] and oversize == 1


def test_a_crlf_line_at_the_limit_is_taken_even_when_a_read_ends_between_cr_and_lf(tmp_path):
    p = tmp_path / "a.log"
    p.write_bytes(b"a" * 64 + b"\r")
    t = tailer(p, max_line_bytes=64)
    assert t.read_lines() == ([], 0, True)
    append(p, b"\nnext\n")
    assert texts(t.read_lines()[0]) == [b"a" * 64, b"next"]


def test_change_notices_truncation_and_rewrites(tmp_path):
    p = tmp_path / "a.log"
    p.write_bytes(b"first line of the file\nsecond line\n")
    t = tailer(p)
    t.read_lines()
    assert t.change(t.size()) is None
    os.truncate(p, 0)
    assert "truncated" in t.change(t.size())
    p.write_bytes(b"FIRST line of the file\nsecond line\nthird\n")  # same inode, rewritten and longer
    assert "first bytes" in t.change(t.size())
    t.restart()
    assert t.offset == 0 and texts(t.read_lines()[0]) == [b"FIRST line of the file", b"second line", b"third"]
    with p.open("r+b") as fh:  # same first bytes, different bytes before the read position
        fh.seek(36)
        fh.write(b"X")
    assert "before the read position" in t.change(t.size())


def test_mark_recognises_a_copy_and_rejects_other_content(tmp_path):
    original = tmp_path / "a.log"
    original.write_bytes(b"".join(b"line %03d of the original file\n" % i for i in range(20)))
    t = tailer(original)
    t.read_lines(budget=200)
    mark = t.mark()
    assert mark.offset == t.offset > FP
    copy = tmp_path / "a.log.1"
    copy.write_bytes(original.read_bytes())
    other = tmp_path / "b.log"
    # same first bytes; a different line just before the mark (log lines differ there: times, ids)
    before_mark = original.read_bytes()[: mark.offset]
    other.write_bytes(before_mark[:-8] + b"changed\n" + original.read_bytes()[mark.offset:])
    short = tmp_path / "c.log"
    short.write_bytes(original.read_bytes()[: mark.offset - 1])
    fds = [os.open(x, os.O_RDONLY) for x in (copy, other, short)]
    try:
        assert mark.problem(fds[0]) is None
        assert "differ" in mark.problem(fds[1])
        assert "beyond" in mark.problem(fds[2])
    finally:
        for fd in fds:
            os.close(fd)


def test_files_shorter_than_the_fingerprint_grow_their_head(tmp_path):
    p = tmp_path / "a.log"
    p.write_bytes(b"tiny\n")
    t = tailer(p)
    assert t.head.length == 5
    append(p, b"more bytes to pass the fingerprint size\n")
    assert t.head.matches(t.fd), "a short head still matches the file it grew into"
    t.refresh_head()
    assert t.head.length == FP and t.head.matches(t.fd)


def test_head_may_start_compares_only_known_bytes():
    head = Head.of(b"2026-01-01 banner line\n")
    assert head.may_start(b"") and head.may_start(b"2026-01") and head.may_start(b"2026-01-01 banner line\nmore")
    assert not head.may_start(b"2027")
    assert not Head(5, checksum(b"abcde")).may_start(b"abc"), "a head known only by its digest proves nothing"


def test_tail_digest_and_offset_validation(tmp_path):
    p = tmp_path / "a.log"
    p.write_bytes(b"a" * 100 + b"b" * 100)
    fd = os.open(p, os.O_RDONLY)
    try:
        mark = Mark(Head.read(fd, FP), 150, tail_digest(fd, 150))
        assert mark.problem(fd) is None
        assert "beyond" in Mark(mark.head, 500, None).problem(fd)
        assert "differ" in Mark(mark.head, 120, mark.tail).problem(fd)
    finally:
        os.close(fd)


@pytest.mark.parametrize("data", [gzip.compress(b"x\n"), b"\x28\xb5\x2f\xfd" + b"\0" * 8,
                                  b"\xfd7zXZ\x00\x00", b"BZh91AY&SY" + b"\0" * 4])
def test_compressed_content_is_recognised_by_its_first_bytes(data):
    assert is_compressed(data)


def test_text_is_not_mistaken_for_compressed():
    assert not is_compressed(b"BZh said hello\n") and not is_compressed(b"2026-01-01 line\n")
