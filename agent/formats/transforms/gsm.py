"""GSM 03.38: which text fits the 7-bit alphabet, how many septets it costs, and segment counts."""

from __future__ import annotations

# GSM 03.38 default alphabet, index = septet value. 0x1B is the escape to the extension table ("\x1b" here).
_GSM_BASIC = (
    "@\u00a3$\u00a5\u00e8\u00e9\u00f9\u00ec\u00f2\u00c7\n\u00d8\u00f8\r\u00c5\u00e5"
    "\u0394_\u03a6\u0393\u039b\u03a9\u03a0\u03a8\u03a3\u0398\u039e\x1b\u00c6\u00e6\u00df\u00c9"
    " !\"#\u00a4%&'()*+,-./"
    "0123456789:;<=>?"
    "\u00a1ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZ\u00c4\u00d6\u00d1\u00dc\u00a7"
    "\u00bfabcdefghijklmno"
    "pqrstuvwxyz\u00e4\u00f6\u00f1\u00fc\u00e0"
)
assert len(_GSM_BASIC) == 128
# Extension table: septet after 0x1B -> character. Each costs two septets.
_GSM_EXT = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "\u20ac",
}
_GSM_EXT_CHARS = "".join(_GSM_EXT.values())
_GSM_BASIC_SET = frozenset(_GSM_BASIC) - {"\x1b"}
_GSM_ALL_SET = _GSM_BASIC_SET | frozenset(_GSM_EXT_CHARS)
# bytes -> str tables for decoding unpacked (one septet per octet) GSM data
_GSM_DECODE_BASIC = dict(enumerate(_GSM_BASIC))


def is_gsm7(text: str) -> bool:
    """True when every character is in the GSM 03.38 default alphabet or its extension table."""
    return _GSM_ALL_SET.issuperset(text)


def gsm7_septets(text: str) -> int:
    """Septets needed in GSM-7: extension-table characters (``^{}\\[~]|€`` and form feed) count two.

    Characters outside the alphabet count one (callers check :func:`is_gsm7` first when that matters).
    """
    n = len(text)
    for ch in _GSM_EXT_CHARS:
        if ch in text:
            n += text.count(ch)
    return n


def segment_count(text: str) -> int:
    """Segments per the mapping conventions: GSM-7 160 / 153, else UCS-2 70 / 67 UTF-16 units; empty -> 1.

    Ignores the real splitters' refusal to cut an escape pair or a surrogate pair across parts, which can add a
    part right at a boundary; the convention counts plain ceilings.
    """
    if not text:
        return 1
    if _GSM_ALL_SET.issuperset(text):
        septets = gsm7_septets(text)
        return 1 if septets <= 160 else -(-septets // 153)
    units = len(text) if text.isascii() else len(text.encode("utf-16-le")) // 2
    return 1 if units <= 70 else -(-units // 67)


def segment_count_ucs2_bytes(n_bytes: int) -> int:
    """Segments for a UCS-2 / 8-bit payload whose length is known in octets: <= 140 -> 1, else ceil(n / 134)."""
    if n_bytes <= 140:
        return 1
    return -(-n_bytes // 134)


def gsm7_decode(data: bytes) -> str | None:
    """Decode unpacked GSM 03.38 (one septet per byte, as Jasmin logs it); None if a byte is > 0x7F.

    An escape followed by an unknown code shows the basic character (3GPP TS 23.038 advice); a trailing lone
    escape is dropped.
    """
    if not data.isascii():
        return None
    if b"\x1b" not in data:
        return data.decode("ascii").translate(_GSM_DECODE_BASIC)
    out: list[str] = []
    i, n = 0, len(data)
    while i < n:
        b = data[i]
        if b == 0x1B:
            i += 1
            if i < n:
                nxt = data[i]
                out.append(_GSM_EXT.get(nxt) or (_GSM_BASIC[nxt] if nxt != 0x1B else " "))
        else:
            out.append(_GSM_BASIC[b])
        i += 1
    return "".join(out)
