"""Pure retry timing and answer classification: no I/O, so it is tested exhaustively without a server.

Backoff is exponential with full jitter (AWS architecture blog, as in Vector's http sink): uniform in
[0, min(cap, initial * 2**attempt)]. A `Retry-After` answer (seconds or HTTP-date) is a floor, never a
reason to come back sooner than the backoff says, so `Retry-After: 0` cannot turn a probe into a loop.
"""

from __future__ import annotations

import random
import re
from datetime import UTC
from email.utils import parsedate_to_datetime
from enum import Enum

RETRIABLE_STATUS = frozenset({408, 429}) | frozenset(range(500, 600))
AUTH_STATUS = frozenset({401, 403})
# No messages endpoint at this URL (404, 405) or a proxy refusing us (407): about the configuration, not the
# record. A 404/405 from an endpoint known to exist is about the record after all (the sender checks).
NOT_FOUND_STATUS = frozenset({404, 405})
ENDPOINT_STATUS = NOT_FOUND_STATUS | {407}
# A server may ask for a long pause, but a typo or a broken proxy must not park the data for a day.
RETRY_AFTER_MAX = 900.0
_SECONDS = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() also accepts "²", which float() refuses


class Outcome(Enum):
    """What one answer from Volt means for the record that was sent."""

    ACCEPTED = "accepted"  # any 2xx
    RETRY = "retry"  # no answer, 408, 429, 5xx: Volt is down or busy; wait and send again
    AUTH = "auth"  # 401/403: the token is refused; keep the data, retry slowly, alert
    ENDPOINT = "endpoint"  # 3xx, 404, 405, 407: the endpoint or proxy is configured wrong; keep, retry slowly, alert
    REJECT = "reject"  # any other 4xx: this record is refused for good; dead-letter it


def classify(status: int | None) -> Outcome:
    """Volt's contract: 2xx accepted, 408/429/5xx and network errors (None) retriable, other 4xx permanent.

    Except answers that say the URL or proxy is wrong rather than the record: dead-lettering every record
    at full speed because of a typo in volt.endpoint would turn a config fix into a data recovery.
    """
    if status is None or status in RETRIABLE_STATUS:
        return Outcome.RETRY
    if 200 <= status < 300:
        return Outcome.ACCEPTED
    if status in AUTH_STATUS:
        return Outcome.AUTH
    if 300 <= status < 400 or status in ENDPOINT_STATUS:
        return Outcome.ENDPOINT
    if 400 <= status < 500:
        return Outcome.REJECT
    return Outcome.RETRY  # 1xx or nonsense above 599: not an answer about the record


def backoff(attempt: int, initial: float, cap: float, rand: random.Random | None = None) -> float:
    """Full jitter for the `attempt`-th retry (0-based): uniform in [0, min(cap, initial * 2**attempt)]."""
    ceiling = min(cap, initial * (2 ** min(max(attempt, 0), 62)))
    return (rand or random).uniform(0, ceiling)


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), at most RETRY_AFTER_MAX.

    None when absent or unreadable: the caller falls back to plain backoff. `now` is Unix time.
    """
    if not value:
        return None
    value = value.strip()
    if _SECONDS.fullmatch(value):
        return min(float(value), RETRY_AFTER_MAX)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC in RFC 5322; a naive datetime would be read as local time
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, when.timestamp() - now), RETRY_AFTER_MAX)


def retry_delay(attempt: int, initial: float, cap: float, header: str | None, now: float,
                rand: random.Random | None = None) -> float:
    """The wait before sending again: the jittered backoff, raised to Retry-After when Volt asked for more."""
    delay = backoff(attempt, initial, cap, rand)
    asked = retry_after(header, now)
    return delay if asked is None else max(delay, asked)
