"""AckTracker: the committed offset only moves over lines whose records are all finished (contiguously)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from agent.files.acks import AckTracker


def test_commit_waits_for_the_first_pending_line_even_when_later_ones_finish():
    t = AckTracker(0)
    a = t.add(0, 1)
    b = t.add(10, 1)
    c = t.add(20, 1)
    t.read_offset = 30
    b.ack()
    c.ack()
    assert t.committed == 0, "later acks must not move the commit past an unfinished earlier line"
    a.ack()
    assert t.committed == 30 and t.in_flight == 0


def test_line_with_several_records_is_done_only_after_each_of_them():
    t = AckTracker(100)
    p = t.add(100, 3)
    t.read_offset = 150
    p.ack()
    p.ack()
    assert t.committed == 100
    p.ack()
    assert t.committed == 150


def test_lines_without_records_move_the_commit_through_read_offset():
    t = AckTracker(5)
    assert t.committed == 5
    t.read_offset = 40  # lines that produced no records (skipped, rejected) are done at once
    assert t.committed == 40
    p = t.add(40, 1)
    t.read_offset = 80
    assert t.committed == 40
    p.ack()
    assert t.committed == 80


@given(st.lists(st.integers(min_value=1, max_value=3), min_size=1, max_size=30), st.randoms(use_true_random=False))
def test_committed_is_always_the_start_of_the_first_unfinished_line(counts, rnd):
    t = AckTracker(0)
    starts, acks = [], []
    for i, n in enumerate(counts):
        p = t.add(i * 10, n)
        starts.append(i * 10)
        acks.extend([(i, p)] * n)
    t.read_offset = len(counts) * 10
    left = list(counts)
    rnd.shuffle(acks)
    for i, p in acks:
        p.ack()
        left[i] -= 1
        first_open = next((j for j, n in enumerate(left) if n), None)
        expected = starts[first_open] if first_open is not None else t.read_offset
        assert t.committed == expected
    assert t.in_flight == 0
