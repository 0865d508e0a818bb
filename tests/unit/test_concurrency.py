"""The concurrency controller on a simulated clock: how the limit grows, shrinks, stays in bounds and recovers."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.send.concurrency import (
    DECREASE_RATIO,
    INITIAL_LIMIT,
    MAX_STEP,
    PROBE_AFTER_S,
    RAMP_PER_S,
    Controller,
    Signal,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _controller(floor: int = 1, ceiling: int = 512, **kw) -> tuple[Controller, Clock]:
    clock = Clock()
    return Controller(floor, ceiling, clock=clock, **kw), clock


def _round(ctl: Controller, clock: Clock, rtt: Callable[[], float], signal: Signal = Signal.ACCEPTED,
           demand: int | None = None) -> None:
    """Fill the limit (or `demand` requests), let one RTT pass, and answer every request."""
    sent = []
    while ctl.in_flight < ctl.limit and (demand is None or len(sent) < demand):
        ctl.start()
        sent.append((ctl.epoch, rtt()))
    clock.now += max(r for _, r in sent)
    for epoch, r in sent:
        ctl.finish(signal, r, epoch)


def test_slow_start_doubles_then_steps_by_at_most_max_step_up_to_the_ceiling():
    ctl, clock = _controller()
    limits = [ctl.limit]
    for _ in range(30):
        _round(ctl, clock, lambda: 0.1)
        limits.append(ctl.limit)
    assert INITIAL_LIMIT == 10 and limits[:6] == [10, 20, 40, 80, 144, 208]
    steps = [b - a for a, b in itertools.pairwise(limits)]
    assert max(steps) <= MAX_STEP, "never more than MAX_STEP new connections a window"
    assert limits[-1] == 512 and max(limits) == 512
    assert limits.index(512) <= 11, "a distant Volt's ceiling is reached in about a second"


def test_on_short_round_trips_slow_start_adds_at_most_ramp_per_s_per_second():
    """On loopback a window lasts a few ms: doubling each would open hundreds of connections in a blink."""
    ctl, clock = _controller()
    start = clock.now
    while clock.now - start < 0.1:
        _round(ctl, clock, lambda: 0.005)
    assert ctl.slow_start
    assert INITIAL_LIMIT < ctl.limit <= INITIAL_LIMIT + RAMP_PER_S * 0.1 + 3, ctl.limit


def test_jitter_on_a_distant_volt_is_not_read_as_congestion():
    ctl, clock = _controller()
    rng = random.Random(7)
    limits = []
    for _ in range(60):
        _round(ctl, clock, lambda: 0.1 + rng.uniform(0, 0.02))
        limits.append(ctl.limit)
    assert limits == sorted(limits), "100 ms + 0-20 ms jitter never cut the limit"
    assert ctl.limit == 512 and ctl.slow_start


def test_the_limit_grows_only_when_it_was_used():
    ctl, clock = _controller()
    for _ in range(2):
        _round(ctl, clock, lambda: 0.1)
    assert ctl.limit == 40
    for _ in range(10):
        _round(ctl, clock, lambda: 0.1, demand=5)  # the source is slower than the limit allows
    assert ctl.limit == 40


def test_a_429_cuts_the_limit_once_for_the_requests_already_out_and_again_for_one_sent_after():
    ctl, clock = _controller()
    for _ in range(8):
        _round(ctl, clock, lambda: 0.05)
    before = ctl.limit
    epochs = []
    for _ in range(before):
        ctl.start()
        epochs.append(ctl.epoch)
    clock.now += 0.001
    for epoch in epochs[:20]:  # a burst of fast 429s, all sent under the old limit
        ctl.finish(Signal.BACK_PRESSURE, 0.001, epoch)
    cut = int(before * DECREASE_RATIO)
    assert ctl.limit == cut and not ctl.slow_start
    ctl.start()
    ctl.finish(Signal.BACK_PRESSURE, 0.001, ctl.epoch)  # sent under the cut limit, and still refused
    assert ctl.limit == int(cut * DECREASE_RATIO)


def test_after_back_pressure_the_limit_returns_below_where_volt_pushed_back_holds_then_probes_by_one():
    ctl, clock = _controller()
    for _ in range(6):
        _round(ctl, clock, lambda: 0.05)
    pushed_back_at = ctl.limit
    _round(ctl, clock, lambda: 0.05, Signal.BACK_PRESSURE)
    limits = [ctl.limit]
    for _ in range(round(PROBE_AFTER_S / 0.05) + 20):
        _round(ctl, clock, lambda: 0.05)
        limits.append(ctl.limit)
    assert limits[0] == int(pushed_back_at * DECREASE_RATIO) and not ctl.slow_start
    steps = [b - a for a, b in itertools.pairwise(limits)]
    steps = steps[1:] if steps[0] == 0 else steps  # the window the cut ended in may say nothing
    good = pushed_back_at - 1
    assert steps[0] == (good - limits[0]) // 2, f"halfway back at once: {limits}"
    back = limits.index(good)
    assert back <= 7, f"back below the push-back within a few windows: {limits}"
    probe = limits.index(good + 1)
    assert set(limits[back:probe]) == {good}
    assert abs(probe - PROBE_AFTER_S / 0.05) <= 2, f"asks for more about PROBE_AFTER_S after the cut: {limits}"
    probing = limits[probe - 1:]
    assert probing == list(range(good, good + len(probing))), f"then +1 a window, no slow start: {limits}"


def _capacity_window(ctl: Controller, clock: Clock, capacity: int, rtt: float) -> int:
    """One window against a Volt serving `capacity` at once: the requests beyond it are refused, and their 429s come
    back after the accepted answers (sent last, answered last). Returns how many were refused."""
    sent = []
    while ctl.in_flight < ctl.limit:
        ctl.start()
        sent.append((ctl.epoch, ctl.limit))
    clock.now += rtt
    for i, (epoch, limit) in enumerate(sent):
        ctl.finish(Signal.BACK_PRESSURE if i >= capacity else Signal.ACCEPTED, rtt, epoch, limit)
    return max(0, len(sent) - capacity)


def test_a_fixed_capacity_is_used_and_asked_for_more_only_every_probe_after_s():
    """A Volt serving 150 at once and refusing the rest: the limit hugs 150, and once it has found the capacity it
    asks for more (one refused request) about once per PROBE_AFTER_S, not every few windows."""
    ctl, clock = _controller()
    limits, refused = [], []
    for _ in range(800):  # 40 s of 50 ms windows
        refused.append(_capacity_window(ctl, clock, 150, 0.05))
        limits.append(ctl.limit)
    tail = limits[-400:]
    assert max(tail) <= 151 and min(tail) >= int(151 * DECREASE_RATIO), tail
    assert sum(tail) / len(tail) >= 147, "on average within 2% of the capacity"
    steady = sum(refused[-400:])
    assert steady <= 20 / PROBE_AFTER_S + 1, f"{steady} refused in 20 s"
    assert ctl.pushed_back_at == 151, "the limit the refused request was sent under, not the one it came back to"


def test_after_a_stale_push_back_and_a_cut_for_slow_answers_the_climb_is_no_faster_than_slow_start():
    """A 503 at 512, then seconds of slow answers cut the limit far below: the way back never adds more than a slow
    start window would (no hundreds of new connections at once), and aims below where the answers got slow."""
    ctl, clock = _controller()
    for _ in range(25):
        _round(ctl, clock, lambda: 0.1)
    _round(ctl, clock, lambda: 0.1, Signal.BACK_PRESSURE)
    assert ctl.pushed_back_at == 512
    for _ in range(8):
        _round(ctl, clock, lambda: 0.5)
    cut = ctl.limit
    limits = [cut]
    for _ in range(40):
        _round(ctl, clock, lambda: 0.1)
        limits.append(ctl.limit)
    steps = [b - a for a, b in itertools.pairwise(limits)]
    assert max(steps) <= MAX_STEP, limits
    assert ctl.pushed_back_at < 512, "slow answers lowered where the limit aims"


def test_a_rising_rtt_cuts_the_limit():
    ctl, clock = _controller()
    for _ in range(20):
        _round(ctl, clock, lambda: 0.1)
    before = ctl.limit
    _round(ctl, clock, lambda: 0.1)
    for _ in range(2):  # (the first window that ends holds mostly answers of the round before)
        _round(ctl, clock, lambda: 0.3)  # answers take three times as long: Volt (or the path to it) is queueing
    assert ctl.limit < before


def test_bounds_hold_whatever_happens():
    @settings(max_examples=60, deadline=None)
    @given(floor=st.integers(1, 20), extra=st.integers(0, 600),
           events=st.lists(st.tuples(st.sampled_from(list(Signal)), st.floats(0.0001, 2.0), st.floats(0, 1),
                                     st.booleans()), max_size=300))
    def check(floor, extra, events):
        ctl, clock = _controller(floor, floor + extra)
        out: list[int] = []
        for signal, rtt, advance, recover in events:
            while ctl.in_flight < ctl.limit:
                ctl.start()
                out.append(ctl.epoch)
            clock.now += advance
            ctl.finish(signal, rtt, out.pop(0))
            if recover:
                ctl.recovered()
            assert floor <= ctl.limit <= floor + extra
            assert 0 <= ctl.in_flight <= floor + extra

    check()


def test_after_an_outage_the_limit_climbs_back_within_seconds():
    ctl, clock = _controller()
    for _ in range(25):
        _round(ctl, clock, lambda: 0.1)
    assert ctl.limit == 512
    for _ in range(60):  # one probe at a time, each refused, seconds apart
        ctl.start()
        clock.now += 2.0
        ctl.finish(Signal.BACK_PRESSURE, 0.001, ctl.epoch)
    assert ctl.limit == 1
    ctl.recovered()
    windows = 0
    while ctl.limit < 512:
        _round(ctl, clock, lambda: 0.1)
        windows += 1
    assert windows * 0.1 <= 1.5, f"{windows} windows of 100 ms to climb back"


def test_after_an_outage_slow_start_stops_below_the_capacity_volt_had_pushed_back_at():
    """The outage's refusals say nothing of Volt's capacity: after it the limit climbs back fast but not past the
    capacity found before (TCP's ssthresh), so the return costs few 429s."""
    ctl, clock = _controller()
    for _ in range(200):
        _capacity_window(ctl, clock, 150, 0.05)
    assert ctl.pushed_back_at == 151
    for _ in range(60):  # the outage: one probe at a time, each refused
        ctl.start()
        clock.now += 2.0
        ctl.finish(Signal.BACK_PRESSURE, 0.001, ctl.epoch, ctl.limit)
    assert ctl.limit == 1 and ctl.pushed_back_at >= 150, "the first refusal may look like throttling, no later one"
    ctl.recovered()
    refused = sum(_capacity_window(ctl, clock, 150, 0.05) for _ in range(40))
    assert ctl.limit >= 140
    assert refused <= 2, f"{refused} refused on the way back"


def test_a_fixed_limit_never_moves():
    ctl, clock = _controller(8, 8)
    for signal in (Signal.ACCEPTED, Signal.BACK_PRESSURE, Signal.ACCEPTED):
        for _ in range(5):
            _round(ctl, clock, lambda: 0.1, signal)
    assert ctl.limit == 8


def test_when_more_in_flight_only_adds_delay_the_limit_settles_near_the_knee():
    """On loopback the agent's own CPU is the limit: each request in flight adds its service time to the RTT."""
    ctl, clock = _controller()
    limits = []
    for _ in range(300):
        in_flight_after = ctl.limit
        _round(ctl, clock, lambda n=in_flight_after: 0.0005 + n * 0.0001)
        limits.append(ctl.limit)
    # twice the no-load 1.6 ms + 2 ms of slack: the knee is about 50 in flight; slow start overshoots it by a few
    # (3 a 5 ms window) before fresh RTTs cut it back by 10%
    assert min(limits[-100:]) >= 40 and max(limits[-100:]) <= 60, limits[-100:]


def test_a_429_ends_slow_start_even_for_a_request_sent_before_a_cut():
    ctl, clock = _controller()
    for _ in range(7):
        _round(ctl, clock, lambda: 0.05)
    ctl.start()
    old = ctl.epoch
    for _ in range(2):  # answers three times as slow cut the limit (a soft signal: slow start goes on)
        _round(ctl, clock, lambda: 0.15)
    assert ctl.epoch > old and ctl.slow_start
    limit = ctl.limit
    ctl.finish(Signal.BACK_PRESSURE, 0.001, old)  # a 429 for the request sent before that cut
    assert ctl.limit == limit, "not cut twice for one overload"
    assert not ctl.slow_start, "but growth is careful from now on"


def test_a_cut_forgets_the_rtts_sampled_before_it():
    """Slow answers that came back before a 429 cut belong to the old limit: they must not cut it once more."""
    ctl, clock = _controller()
    for _ in range(3):
        _round(ctl, clock, lambda: 0.05)
    epoch = ctl.epoch
    for _ in range(5):  # slow answers, still inside the window
        ctl.start()
        clock.now += 0.001
        ctl.finish(Signal.ACCEPTED, 5.0, epoch)
    ctl.start()
    ctl.finish(Signal.BACK_PRESSURE, 0.001, epoch)
    cut = ctl.limit
    clock.now += 1.0  # the window ends with no sample taken since the cut
    ctl.start()
    ctl.finish(Signal.ACCEPTED, 0.05, ctl.epoch)
    assert ctl.limit == cut and ctl.epoch == epoch + 1
