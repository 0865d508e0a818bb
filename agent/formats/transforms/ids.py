"""Ids and privacy: stable ids for events without one, and the body hash of `body: hash`."""

from __future__ import annotations

import hashlib


def body_hash(text: str) -> str:
    """``body: hash`` privacy mode: "sha256:" + hex digest of the UTF-8 text (same text -> same hash)."""
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def stable_id(prefix: str, *parts: str | None) -> str:
    """Deterministic id for an event without one (Kannel REJECTED lines), so a replay yields the same id.

    ``prefix + "-" + sha256(parts joined by U+001F)[:16]``; None parts count as "".
    """
    joined = "\x1f".join("" if p is None else str(p) for p in parts)
    return prefix + "-" + hashlib.sha256(joined.encode("utf-8", "surrogatepass")).hexdigest()[:16]
