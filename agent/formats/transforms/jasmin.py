"""Jasmin: the Python literals its messages.log prints (bytes and str reprs), content decoding, ids."""

from __future__ import annotations

import ast
import codecs
import re
import warnings

from agent.formats.transforms.gsm import gsm7_decode

# A backslash NOT followed by an escape Python accepts. Over-matches "\\\\q" (escaped backslash + q), which
# only sends that rare input down the slow, exact ast.literal_eval path.
_BAD_BYTES_ESCAPE = re.compile(r"\\(?![\\'\"abfnrtv0-7\nx])")
_BAD_STR_ESCAPE = re.compile(r"\\(?![\\'\"abfnrtv0-7\nxuUN])")


def py_literal(text: str | None) -> bytes | str | None:
    """Read a value Jasmin printed with ``%r``: ``b'…'`` / ``b"…"`` -> bytes, ``'…'`` / ``u'…'`` -> str.

    Fast paths: no backslash -> slice; standard escapes -> the C escape codecs; anything unusual ->
    ``ast.literal_eval``. A malformed literal -> None. Bare values (Python 2 era, ``ACME``, ``447700900123``) ->
    the str as given (stripped). ``None`` / ``none`` / empty -> None.
    """
    if text is None:
        return None
    s = text.strip()
    if not s or s == "None" or s == "none":
        return None
    first = s[0]
    if first in "bB":
        if len(s) >= 3 and s[1] in "'\"" and s[-1] == s[1]:
            return _bytes_literal(s, s[2:-1], s[1])
        if len(s) >= 2 and s[1] in "'\"rR":
            return _slow_literal(s)
        return s
    if first in "'\"":
        if len(s) >= 2 and s[-1] == first:
            return _str_literal(s, s[1:-1], first)
        return None
    if first in "uUrR" and len(s) >= 2 and s[1] in "'\"bB":
        if first in "uU" and len(s) >= 3 and s[-1] == s[1]:
            return _str_literal(s, s[2:-1], s[1])
        return _slow_literal(s)
    return s


def _bytes_literal(s: str, inner: str, quote: str) -> bytes | str | None:
    if not inner.isascii():
        return None  # bytes literals are ASCII-only
    if "\\" not in inner:
        if quote in inner:
            return _slow_literal(s)
        return inner.encode("ascii")
    if _BAD_BYTES_ESCAPE.search(inner):
        return _slow_literal(s)
    try:
        return codecs.escape_decode(inner.encode("ascii"))[0]
    except (ValueError, UnicodeError):
        return None


def _str_literal(s: str, inner: str, quote: str) -> bytes | str | None:
    if "\\" not in inner:
        if quote in inner:
            return _slow_literal(s)
        return inner
    if _BAD_STR_ESCAPE.search(inner):
        return _slow_literal(s)
    try:
        return _whole_characters(inner.encode("latin-1", "backslashreplace").decode("unicode_escape"))
    except (ValueError, UnicodeError):
        return None


def _slow_literal(s: str) -> bytes | str | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = ast.literal_eval(s)
    except Exception:
        return None
    if isinstance(value, str):
        return _whole_characters(value)
    return value if isinstance(value, bytes) else None


_SURROGATE = re.compile("[\ud800-\udfff]")


def _whole_characters(text: str) -> str:
    """Python 2 printed an emoji as two escaped UTF-16 halves (u'\\ud83d\\ude00'): join such pairs, and
    replace a lone half with U+FFFD, so the text can be encoded as UTF-8 (JSON) at all."""
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


# Characters that str.isprintable() rejects but real messages contain: \t\n\r, every Unicode space (NBSP,
# thin space …) and the common format characters (ZWJ in emoji sequences, bidi marks, BOM, soft hyphen).
_IGNORABLE = str.maketrans(
    dict.fromkeys(
        [
            9,
            10,
            13,
            0xA0,
            0xAD,
            0x1680,
            *range(0x2000, 0x200B),
            *range(0x200B, 0x2010),
            0x2028,
            0x2029,
            *range(0x202A, 0x2030),
            *range(0x205F, 0x2065),
            0x3000,
            0xFEFF,
        ]
    )
)


def _printable(text: str) -> bool:
    """Plausible as message text: no control, unassigned, private-use or lone-surrogate characters."""
    return text.isprintable() or text.translate(_IGNORABLE).isprintable()


def _mostly_ascii(data: bytes) -> bool:
    """>= 70 % printable ASCII bytes: Latin-1 text, not UTF-16 CJK (whose bytes spread over 0x00-0xFF)."""
    ascii_bytes = sum(1 for b in data if 0x20 <= b <= 0x7E)
    return ascii_bytes * 10 >= len(data) * 7


def _looks_utf16be(data: bytes) -> bool:
    """Strong UTF-16BE signal: most high bytes are 0x00 or one alphabetic-script block (0x01-0x1F), or emoji.

    ASCII/Latin text in UTF-16BE has 0x00 in every high byte, Cyrillic 0x04, Arabic 0x06, Hebrew 0x05 …; mixed
    with spaces and digits (0x00). GSM bytes rarely look like that over a whole message.
    """
    highs = data[0::2]
    n = len(highs)
    zeros = highs.count(0)
    best = 0
    for b in set(highs):
        if 0x01 <= b <= 0x1F:
            best = max(best, highs.count(b))
    if n and (zeros + best) * 4 >= n * 3:
        return True
    return any(0xD8 <= h <= 0xDB for h in highs)


def jasmin_text(value: bytes | str | None) -> str | None:
    """Turn Jasmin content into text, guessing the encoding (``data_coding`` is never logged).

    bytes, in order: printable UTF-8 (covers ASCII); UTF-16BE with a strong signal (see ``_looks_utf16be``,
    e.g. ``b'\\x04\\x12\\x040'`` Cyrillic, ``b'\\x00H\\x00i'``); GSM 03.38 unpacked (``\\x00`` "@", ``\\x11`` "_",
    ``\\x1be`` "€" — what Jasmin's HTTP API stores for coding 0); printable UTF-16BE (CJK) unless the bytes
    read as mostly-ASCII Latin-1; Latin-1.
    str: returned as is, except Python-2-era byte strings (control characters, or UTF-8 mojibake like "Ã©"),
    which go through the bytes path. Empty -> None.
    """
    if value is None:
        return None
    if isinstance(value, str):
        if not value:
            return None
        if _printable(value):
            if value.isascii() or max(value) > "\xff":
                return value
            try:  # Python 2 byte string holding UTF-8, printed as Latin-1 ("CafÃ©")
                fixed = value.encode("latin-1").decode("utf-8")
            except UnicodeDecodeError:
                return value
            return fixed if _printable(fixed) else value
        if max(value) > "\xff":
            return value
        value = value.encode("latin-1")  # control characters: a byte string in a str, decode it as bytes
    if not value:
        return None
    data = bytes(value)
    try:
        text = data.decode("utf-8")
        if _printable(text):
            return text
    except UnicodeDecodeError:
        pass
    even = len(data) % 2 == 0
    utf16: str | None = None
    if even:
        try:
            utf16 = data.decode("utf-16-be")
        except UnicodeDecodeError:
            utf16 = None
        if utf16 is not None and not _printable(utf16):
            utf16 = None
        if utf16 is not None and _looks_utf16be(data):
            return utf16
    gsm = gsm7_decode(data)
    if gsm is not None:
        return gsm or None
    latin1 = data.decode("latin-1")
    if utf16 is not None and not (_printable(latin1) and _mostly_ascii(data)):
        return utf16
    return latin1 or None


def jasmin_msgid(value: str | bytes | None) -> str | None:
    """Jasmin's canonical SMSC id: unwrap ``b'…'``, upper-case, strip leading zeros (as Jasmin does for DLRs).

    "b'0e999f21-81ef'" -> "E999F21-81EF". An all-zero id -> "0". Empty / "None" -> None.
    """
    if value is None:
        return None
    v: bytes | str | None = value if isinstance(value, bytes) else py_literal(value)
    if v is None:
        return None
    if isinstance(v, bytes):
        v = v.decode("latin-1")
    v = v.strip().upper()
    if not v:
        return None
    return v.lstrip("0") or "0"
