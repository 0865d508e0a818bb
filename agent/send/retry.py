"""Pure retry timing: exponential backoff with full jitter, and Retry-After (seconds or HTTP-date)."""

from __future__ import annotations

import random
from email.utils import parsedate_to_datetime

RETRIABLE_STATUS = frozenset({408, 429}) | frozenset(range(500, 600))
AUTH_STATUS = frozenset({401, 403})


def classify(status: int) -> str:
    """accepted | retry | auth | reject, per Volt's contract (any 2xx accepted; other 4xx permanent)."""
    if 200 <= status < 300:
        return "accepted"
    if status in AUTH_STATUS:
        return "auth"
    if status in RETRIABLE_STATUS:
        return "retry"
    return "reject"


def backoff(attempt: int, initial: float, cap: float, rand: random.Random | None = None) -> float:
    """Full jitter (AWS architecture blog): uniform in [0, min(cap, initial * 2**attempt)]."""
    ceiling = min(cap, initial * (2 ** min(attempt, 62)))
    return (rand or random).uniform(0, ceiling)


def retry_after(value: str | None, now: float, cap: float) -> float | None:
    """Seconds to wait from a Retry-After header, bounded by `cap`; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), cap)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return min(max(0.0, when.timestamp() - now), cap)
