"""How many requests to Volt may be in flight: an AIMD controller on the observed RTT and back-pressure.

Throughput to one distant API is in-flight / RTT, so the right limit depends on a distance the agent cannot
know in advance. Like TCP's congestion window, and after Vector's Adaptive Request Concurrency (RFC 1858),
the limit is adjusted once per RTT window:

- slow start: from INITIAL_LIMIT (TCP's initial window of ten segments; the floor or ceiling if that is
  above or below it), the limit doubles each window while the RTT stays flat, every answer is an acceptance
  and the limit was actually used; it ends at the first back-pressure answer. Once the limit is large a window
  adds at most RAMP_PER_S new requests per second of RTT, and never more than MAX_STEP: so hundreds of new
  connections and TLS handshakes never start at once, a distant Volt (100 ms: +64 a window) is reached in about
  a second, and on loopback, where a window lasts a few ms and a handful in flight is all the agent's CPU can
  use, the limit climbs no faster in time than it does to a distant Volt;
- then, under the same conditions, back to just below the limit at which Volt last pushed back, in halving
  steps (BIC's binary search, the ancestor of Linux's CUBIC), and it asks for more, +1 per window, only
  PROBE_AFTER_S after the push-back (as CUBIC lingers near its last maximum). A Volt serving a fixed number at
  once is so used at about its capacity, and refuses one request every few seconds instead of every few
  windows (each refused record waits its Retry-After, and the 429s are what the API's owner sees);
- multiplicative decrease on back-pressure (429, 5xx, timeouts, dropped connections) and when a window's mean
  RTT is clearly above the no-load RTT (the lowest window mean, drifting up over BASE_DRIFT_S so a new route is
  followed, as in TCP Vegas): more than (1 + RTT_TOLERANCE) times it plus RTT_SLACK. So 0-20 ms of jitter on
  100 ms, or a busy machine stalling the agent now and then, is not read as congestion, while requests
  queueing at Volt (or in the agent itself, when its CPU is the limit and more requests in flight would only
  add delay) are. (Vector compares with a multiple of the RTT's deviation instead; on a CPU-bound agent the
  spread of the RTTs grows with the queue itself, and the limit never stopped growing.) A rising RTT is a soft
  signal: it cuts the limit but does not end slow start, so the limit settles near the RTT's knee instead of
  crawling back +1 per window from a cut caused by a passing stall.

Back-pressure on a request sent before the last decrease is not counted again (TCP NewReno's recovery point):
a burst of fast 429s shrinks the limit once, yet a limit still too high after the cut shrinks again as soon as
a request sent under it is refused. Likewise only the RTTs of requests sent since the last decrease count, so
the slow answers of a queue that is still draining do not cut the limit window after window. After an outage
the caller calls `recovered()`, and slow start climbs back within seconds. No I/O and an injectable clock, so
every rule is tested on simulated time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum

DECREASE_RATIO = 0.9  # Vector's default: keeps the limit high without holding it too high under adverse conditions
EWMA_ALPHA = 0.4  # weight of the newest window in the long-run RTT (Vector's default)
RTT_TOLERANCE = 1.0  # a window mean up to twice the no-load RTT is not congestion
RTT_SLACK = 0.002  # s; nor a few ms more: on loopback that is the agent's own event loop, not Volt
BASE_DRIFT_S = 30.0  # s; a higher RTT that lasts becomes the no-load RTT over about this long
INITIAL_LIMIT = 10  # requests in flight at the start: low, yet ten times what one request at a time would ship
MAX_STEP = 64  # most new requests (so connections) one window may add in slow start
RAMP_PER_S = 640  # and at most this many per second of RTT: +64 a window at 100 ms, +3 at 5 ms
PROBE_AFTER_S = 5.0  # s below the last push-back before asking Volt for more (CUBIC's plateau at 150 segments)
MIN_WINDOW = 0.005  # s; on loopback an RTT window of a few answers says nothing


class Signal(Enum):
    """What one answer says about Volt's capacity."""

    ACCEPTED = "accepted"  # Volt took the record: a valid RTT sample
    BACK_PRESSURE = "back_pressure"  # 429, 5xx, no answer, timeout: too much, or Volt is in trouble
    NEUTRAL = "neutral"  # an answer about the record or the configuration (4xx, 401, 3xx): says nothing


class Controller:
    """The current `limit` on requests in flight, between `floor` and `ceiling`, and the requests in flight.

    A limit whose floor is its ceiling never moves: `volt.concurrency: N` as before. Callers take a slot with
    `start()` while `in_flight < limit`, note `epoch` when the request goes out, and give the slot back with
    `finish()` (or `abandon()` when the request was cancelled and has no answer).
    """

    def __init__(self, floor: int, ceiling: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if not 1 <= floor <= ceiling:
            raise ValueError(f"need 1 <= floor <= ceiling, got floor {floor}, ceiling {ceiling}")
        self.floor = floor
        self.ceiling = ceiling
        self.limit = min(ceiling, max(floor, INITIAL_LIMIT))
        self.in_flight = 0
        self.epoch = 0  # decreases so far; a request remembers the epoch it was sent in
        self.slow_start = True
        self.rtt: float | None = None  # long-run RTT, an EWMA of window means (s): the window length
        self.base: float | None = None  # the no-load RTT (s)
        self.pushed_back_at: int | None = None  # the limit when Volt last answered with back-pressure
        self._pushed_back_when = 0.0
        self._accepted_since_cut = False  # an answer accepted since the last cut: Volt is up
        self._clock = clock
        self._window_end = clock()
        self._reset_window()

    @property
    def fixed(self) -> bool:
        """A floor equal to the ceiling leaves the limit nothing to learn."""
        return self.floor == self.ceiling

    def _reset_window(self) -> None:
        self._count = 0
        self._sum = 0.0
        self._back_pressure = False
        self._used = self.in_flight >= self.limit

    def start(self) -> None:
        """A request takes a slot (the caller checked `in_flight < limit`)."""
        self.in_flight += 1
        if self.in_flight >= self.limit:
            self._used = True

    def abandon(self) -> None:
        """A request was cancelled (shutdown) before any answer: its slot is free, nothing is learnt."""
        self.in_flight -= 1

    def finish(self, signal: Signal, rtt: float, epoch: int, limit: int | None = None) -> None:
        """A request sent in `epoch`, under `limit` (the limit now if not given), came back after `rtt` seconds
        with `signal`."""
        self.in_flight -= 1
        if self.fixed:
            return
        if signal is Signal.ACCEPTED:
            self._accepted_since_cut = True
            if epoch == self.epoch:  # a request sent before the last cut says nothing about the limit now
                self._count += 1
                self._sum += rtt
        elif signal is Signal.BACK_PRESSURE:
            self._back_pressure = True
            self.slow_start = False  # Volt pushed back: from now on back below that limit, then +1 a window
            if epoch == self.epoch:  # sent under the current limit, and still too much
                if self._accepted_since_cut:  # others got through: that limit is about what Volt takes
                    self.pushed_back_at = self.limit if limit is None else limit  # never above: same epoch
                    self._pushed_back_when = self._clock()
                # else nothing gets through (an outage): that says nothing of Volt's capacity, keep what was known
                self._decrease()
        now = self._clock()
        if now >= self._window_end:
            self._end_window(now)

    def recovered(self) -> None:
        """Volt answers again after an outage: climb back quickly, as at the start, up to just below the limit
        Volt last pushed back at (TCP's ssthresh)."""
        if not self.fixed:
            self.slow_start = True

    def _decrease(self) -> None:
        """Cut the limit; the RTTs sampled so far were of requests sent before the cut, so they no longer count."""
        self.limit = max(self.floor, int(self.limit * DECREASE_RATIO))
        self.epoch += 1
        self._accepted_since_cut = False
        self._count = 0
        self._sum = 0.0

    def _increase(self, rtt: float, now: float) -> None:
        ramp = min(MAX_STEP, max(1, round(RAMP_PER_S * rtt)))  # the most new requests a window may add
        below = None if self.pushed_back_at is None else self.pushed_back_at - 1 - self.limit
        if self.slow_start:
            step = min(self.limit, ramp)
            if below is not None and step >= below:  # back where Volt pushed back: carry on as after a push-back
                step, self.slow_start = max(0, below), False
        elif below is None:
            step = 1
        elif below > 0:
            step = min(max(1, below // 2), ramp)
        elif now - self._pushed_back_when < PROBE_AFTER_S:
            return
        else:
            step = 1
        self.limit = min(self.ceiling, self.limit + step)

    def congested(self, current: float) -> bool:
        """Whether a window's mean RTT is clearly above the no-load RTT."""
        if self.base is None:
            return False
        return current > self.base * (1 + RTT_TOLERANCE) + RTT_SLACK

    def _end_window(self, now: float) -> None:
        current = self._sum / self._count if self._count else None
        if current is not None:
            if self.congested(current):
                if not self.slow_start and self.pushed_back_at is not None:  # Volt's room shrank (BIC's fast
                    self.pushed_back_at = min(self.pushed_back_at, self.limit)  # convergence): aim below this
                self._decrease()
            elif self._used and not self._back_pressure:
                self._increase(current, now)
            window = max(self.rtt or 0.0, MIN_WINDOW)
            if self.rtt is None or self.base is None:
                self.rtt = self.base = current
            else:
                self.rtt += EWMA_ALPHA * (current - self.rtt)
                drift = min(1.0, window / BASE_DRIFT_S) * (current - self.base)
                self.base = current if current < self.base else self.base + drift
        self._window_end = now + max(self.rtt or 0.0, MIN_WINDOW)
        self._reset_window()
