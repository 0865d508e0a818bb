"""Kannel: undoing the access log's rendering of a message text, and counting its segments."""

from __future__ import annotations

from typing import Any

from agent.formats.transforms.gsm import gsm7_septets, segment_count_ucs2_bytes


def kannel_text(text: str, coding: str | int) -> str | None:
    """Undo Kannel's access-log rendering of ``[msg:LEN:TEXT]`` for the message's coding.

    * "2" (UCS-2): TEXT is upper-case hex of UTF-16BE -> decoded (bad code units -> U+FFFD).
    * "1" (8-bit binary): hex of raw octets -> the text only if they are valid UTF-8, else None (binary
      payloads such as WAP push or ringtones have no text to report).
    * "0", "-1" or anything else: TEXT is already text (each non-ASCII UTF-8 byte printed as ".") -> unchanged.

    Bad hex -> TEXT unchanged. Empty -> None.
    """
    if (coding == "0" or coding == "-1") and text.__class__ is str:  # GSM, as a line regex gives it: the text
        return text or None
    if not text or not isinstance(text, str):
        return None
    c = (coding if isinstance(coding, str) else str(coding)).strip()
    if c != "2" and c != "1":
        return text
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        return text
    if c == "2":
        decoded = raw.decode("utf-16-be", errors="replace")
    else:
        try:
            decoded = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return decoded or None


_MAX_SMS_OCTETS = 255 * 140  # a concatenated SMS has at most 255 parts


def kannel_segments(text: str, coding: str | int, length: str | int | None) -> int:
    """Segment count of a Kannel message from its coding and ``[msg:LEN:…]`` length.

    * coding 2 (UCS-2) and 1 (8-bit): LEN is octets -> :func:`segment_count_ucs2_bytes` (140 / 134 octets).
    * coding 0 / -1 (GSM): the septets of the *printed* text. LEN counts UTF-8 bytes and the text shows one "."
      per non-ASCII byte, so "é" counts 2 instead of 1 and "€" 3 instead of 2; that slight over-count is the
      accepted approximation (kannel-FORMAT §7) and only matters within a few characters of 160 / 153 n.
    A missing or bad LEN (more than the 255 parts of 140 octets any SMS can have) falls back to the text (hex
    length / 2 for octet codings).
    """
    c = (coding if isinstance(coding, str) else str(coding)).strip()
    if c == "2" or c == "1":
        n = _to_int(length)
        if n is None or not 0 <= n <= _MAX_SMS_OCTETS:
            n = len(text) // 2 if isinstance(text, str) else 0
        return segment_count_ucs2_bytes(n)
    if not text or not isinstance(text, str) or len(text) <= 80:  # <= 80 chars: at most 160 septets, no count
        return 1
    septets = gsm7_septets(text)
    return 1 if septets <= 160 else -(-septets // 153)


def _to_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        s = value.strip()
        if s.isascii() and s.isdigit() and len(s) <= 18:  # longer is no length, and int() refuses 4,300+ digits
            return int(s)
    return None
