"""Pure value transforms for the mapping engine (numbers, GSM counts, times, gateway escapes, statuses).

Everything here runs on the per-line hot path, so: no I/O, tables built once at import, caches where inputs
repeat (numbers, timestamps, status words), str methods before regexes.

Convention for every function: ``None`` means "unknown / cannot tell", so the caller leaves the field out.
No function returns ``""`` for a field value, and none raises on bad input (garbage in -> ``None``).
"""

from __future__ import annotations

import ast
import codecs
import hashlib
import re
import warnings
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

__all__ = [
    "COUNTRY_CALLING_CODES",
    "ESME_STATUS",
    "SMPP_MESSAGE_STATES",
    "SMPP_STATES",
    "TimeParser",
    "body_hash",
    "esme_status",
    "esme_status_name",
    "gsm7_decode",
    "gsm7_septets",
    "is_final",
    "is_gsm7",
    "jasmin_msgid",
    "jasmin_text",
    "kannel_segments",
    "kannel_text",
    "parse_receipt",
    "parse_time",
    "py_literal",
    "segment_count",
    "segment_count_ucs2_bytes",
    "smpp_state_name",
    "stable_id",
    "status_class",
    "to_e164",
]

# ---------------------------------------------------------------------------------------------------------------
# 1. Phone numbers -> E.164
# ---------------------------------------------------------------------------------------------------------------


class _Country(NamedTuple):
    """Dialling facts for one country; only what reading a national number needs."""

    cc: str  # calling code, no "+"
    trunk: str | None  # national trunk prefix ("0", "8", "06"); "keep" = leading 0 is part of the number (IT)
    lengths: tuple[int, ...]  # national significant number lengths that are commonly written bare (>= 9 only)
    idd: str  # international dialling prefix besides the universal "00"


def _c(cc: str, trunk: str | None = "0", lengths: tuple[int, ...] = (), idd: str = "00") -> _Country:
    return _Country(cc, trunk, lengths, idd)


# ISO 3166 alpha-2 -> dialling facts. `lengths` is deliberately conservative: a bare number of exactly that length
# (not starting with the calling code) is read as national, e.g. US "2025550143" -> "+12025550143".
_COUNTRIES: dict[str, _Country] = {
    # North America (NANP): trunk "1" is covered by the calling-code rule
    "US": _c("1", None, (10,), "011"),
    "CA": _c("1", None, (10,), "011"),
    "PR": _c("1", None, (10,), "011"),
    # Europe
    "GB": _c("44", "0", (10,)),
    "IE": _c("353", "0", (9,)),
    "FR": _c("33", "0", (9,)),
    "DE": _c("49"),
    "AT": _c("43"),
    "CH": _c("41", "0", (9,)),
    "NL": _c("31", "0", (9,)),
    "BE": _c("32", "0", (9,)),
    "LU": _c("352", None),
    "ES": _c("34", None, (9,)),
    "PT": _c("351", None, (9,)),
    "IT": _c("39", "keep", (9, 10)),
    "SM": _c("378", "keep"),
    "VA": _c("39", "keep", (9, 10)),
    "MT": _c("356", None),
    "GR": _c("30", None, (10,)),
    "CY": _c("357", None),
    "SE": _c("46"),
    "NO": _c("47", None),
    "DK": _c("45", None),
    "FI": _c("358"),
    "IS": _c("354", None),
    "EE": _c("372", None),
    "LV": _c("371", None),
    "PL": _c("48", None, (9,)),
    "CZ": _c("420", None, (9,)),
    "SK": _c("421", "0", (9,)),
    "HU": _c("36", "06", (9,)),
    "RO": _c("40", "0", (9,)),
    "BG": _c("359"),
    "HR": _c("385"),
    "SI": _c("386"),
    "RS": _c("381"),
    "UA": _c("380", "0", (9,)),
    "BY": _c("375", "8", (9,), "810"),
    "RU": _c("7", "8", (10,), "810"),
    "KZ": _c("7", "8", (10,), "810"),
    "TR": _c("90", "0", (10,)),
    # Middle East / Africa
    "IL": _c("972", "0", (9,)),
    "AE": _c("971", "0", (9,)),
    "SA": _c("966", "0", (9,)),
    "QA": _c("974", None),
    "KW": _c("965", None),
    "BH": _c("973", None),
    "OM": _c("968", None),
    "JO": _c("962", "0", (9,)),
    "LB": _c("961"),
    "IQ": _c("964", "0", (10,)),
    "IR": _c("98", "0", (10,)),
    "EG": _c("20", "0", (10,)),
    "MA": _c("212", "0", (9,)),
    "DZ": _c("213", "0", (9,)),
    "TN": _c("216", None),
    "NG": _c("234", "0", (10,)),
    "GH": _c("233", "0", (9,)),
    "KE": _c("254", "0", (9,)),
    "TZ": _c("255", "0", (9,)),
    "UG": _c("256", "0", (9,)),
    "ET": _c("251", "0", (9,)),
    "ZA": _c("27", "0", (9,)),
    "CM": _c("237", None, (9,)),
    "SN": _c("221", None, (9,)),
    "CI": _c("225", "keep", (10,)),
    # Asia / Pacific
    "IN": _c("91", "0", (10,)),
    "PK": _c("92", "0", (10,)),
    "BD": _c("880", "0", (10,)),
    "LK": _c("94", "0", (9,)),
    "NP": _c("977"),
    "CN": _c("86", "0", (11,)),
    "HK": _c("852", None),
    "MO": _c("853", None),
    "TW": _c("886", "0", (9,)),
    "JP": _c("81", "0", (10,), "010"),
    "KR": _c("82"),
    "SG": _c("65", None),
    "MY": _c("60", "0", (9, 10)),
    "TH": _c("66", "0", (9,)),
    "VN": _c("84", "0", (9,)),
    "ID": _c("62"),
    "PH": _c("63", "0", (10,)),
    "AU": _c("61", "0", (9,), "0011"),
    "NZ": _c("64"),
    # Latin America
    "BR": _c("55", "0", (10, 11)),
    "MX": _c("52", None, (10,)),
    "AR": _c("54", "0", (10,)),
    "CL": _c("56", None, (9,)),
    "CO": _c("57", None, (10,)),
    "PE": _c("51", "0", (9,)),
    "VE": _c("58", "0", (10,)),
}

#: ISO 3166 alpha-2 -> calling code (no "+"), for callers that only need the code.
COUNTRY_CALLING_CODES: dict[str, str] = {iso: c.cc for iso, c in _COUNTRIES.items()}

# Formatting characters removed inside numeric numbers ("+1 (202) 555-0143").
_NUMBER_SEPARATORS = str.maketrans("", "", " -.()/\t\u00a0\u2009\u202f")
_MIN_NATIONAL = 6  # a national / international remainder shorter than this is not a phone number


def to_e164(number: str | int | None, default_country: str | None = None) -> str | None:
    """Normalise a phone number to E.164 where that can be done without guessing.

    Rules, in order (``digits`` = the number without spaces, dashes, dots, parentheses and a "(0)"):

    * empty / None, or only "+" and separators -> None.
    * not all digits (alphanumeric sender "Uber-Eats", "ACMEBANK") -> returned as given.
    * "+digits" -> "+digits".  "00" + at least 6 digits (not "000…") -> "+" + rest.
    * with ``default_country`` (ISO 3166 alpha-2, any case; unknown codes are ignored):
      its own international prefix (US "011", AU "0011", JP "010", RU "810") -> "+" + rest;
      its trunk prefix ("0"; RU/KZ/BY "8"; HU "06") -> "+" + calling code + rest ("07700900415" GB ->
      "+447700900415"); Italy-like countries keep the 0 ("0612345678" IT -> "+390612345678");
      a bare number of a common national length -> "+" + code + number (US/CA "2025550143" -> "+12025550143",
      CN "13812345678", IN "9876543210"), or as international when it already starts with the code.
    * <= 8 digits, no leading 0 -> a short code, returned as given.
    * a leading single "0" without a usable default_country -> national, returned as given (not invented).
    * >= 11 digits not starting with 0 -> bare international, "+" prepended ("447700900123").
    * anything else (9-10 bare digits with no country rule) -> returned as given.

    "As given" means the input with surrounding whitespace removed. Never returns "".
    """
    if number is None:
        return None
    if not isinstance(number, str):
        if isinstance(number, bool) or not isinstance(number, int):
            return None
        number = str(number)
    country = default_country.upper() if isinstance(default_country, str) and default_country else None
    return _to_e164(number, country)


@lru_cache(maxsize=16384)
def _to_e164(number: str, country_code: str | None) -> str | None:
    given = number.strip()
    if not given:
        return None
    plus = given[0] == "+"
    body = given[1:] if plus else given
    if plus and "(0)" in body:  # "+44 (0)7700 900415": the (0) is the national trunk, not part of E.164
        body = body.replace("(0)", "")
    digits = body.translate(_NUMBER_SEPARATORS)
    if not digits:
        return None  # only "+" and separators: not a number, not a sender name
    if not (digits.isascii() and digits.isdigit()):
        return given  # alphanumeric sender, or not a number at all
    if plus:
        return "+" + digits
    n = len(digits)
    country = _COUNTRIES.get(country_code) if country_code else None
    if country is not None and country.idd != "00" and digits.startswith(country.idd):
        rest = digits[len(country.idd) :]  # before the generic "00": AU "0011…"
        if len(rest) >= _MIN_NATIONAL and rest[0] != "0":
            return "+" + rest
    if digits.startswith("00") and n - 2 >= _MIN_NATIONAL and digits[2] != "0":
        return "+" + digits[2:]
    if country is not None:
        converted = _national_to_e164(digits, country)
        if converted is not None:
            return converted
    if n <= 8 and digits[0] != "0":
        return given  # short code
    if digits[0] == "0":
        return given  # national number, country unknown: leave as written
    if n >= 11:
        return "+" + digits
    return given


# The per-line fast path for a str number and an upper-case country (what the config guarantees): the cached
# core itself, without to_e164's type checks.
e164_str = _to_e164


def _national_to_e164(digits: str, c: _Country) -> str | None:
    """Apply the country-specific rules of :func:`to_e164`; None when none applies."""
    n = len(digits)
    trunk = c.trunk
    if trunk == "keep":
        if digits[0] == "0" and n - 1 >= _MIN_NATIONAL:
            return "+" + c.cc + digits
    elif trunk is not None and digits.startswith(trunk):
        rest = digits[len(trunk) :]
        if len(rest) >= _MIN_NATIONAL and rest[0] != "0" and (trunk == "0" or len(rest) in c.lengths):
            return "+" + c.cc + rest
    elif trunk is None and digits[0] == "0" and n - 1 >= _MIN_NATIONAL and not digits.startswith("00"):
        # no trunk prefix in this country, but someone wrote one anyway
        return "+" + c.cc + digits[1:]
    if c.lengths and digits[0] != "0":
        if digits.startswith(c.cc) and n - len(c.cc) in c.lengths:
            return "+" + digits
        if n in c.lengths:
            return "+" + c.cc + digits
    return None


# ---------------------------------------------------------------------------------------------------------------
# 2. GSM 03.38 and segment counts
# ---------------------------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------------------------
# 3. Times
# ---------------------------------------------------------------------------------------------------------------

_UTC = UTC
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)
_SPECIAL_FORMATS = frozenset({"iso", "epoch", "epoch_ms", "smpp"})
# strptime formats with a fast exact-shape path through datetime.fromisoformat (10x faster than strptime)
_ISO_LIKE_FORMATS = {
    "%Y-%m-%d %H:%M:%S": (19, " ", False),
    "%Y-%m-%dT%H:%M:%S": (19, "T", False),
    "%Y-%m-%d %H:%M:%S.%f": (0, " ", True),
    "%Y-%m-%dT%H:%M:%S.%f": (0, "T", True),
}


def valid_time_format(fmt: str) -> bool:
    """A `time:` format TimeParser can use: a special name, or a strptime format with a directive that reads
    back what it writes (catches `ISO` for `iso`, and directives strptime does not know, like `%Q`)."""
    if fmt in _SPECIAL_FORMATS or fmt in _ISO_LIKE_FORMATS:
        return True
    if "%" not in fmt:
        return False
    try:
        datetime.strptime(_FORMAT_PROBE.strftime(fmt), fmt)
    except ValueError:
        return False
    return True


_FORMAT_PROBE = datetime(2026, 11, 27, 1, 35, 5, tzinfo=_UTC)


class TimeParser:
    """Parse one source's timestamps to ISO 8601 UTC strings, memoising recent inputs.

    Built once per (fmt, tz). Log timestamps repeat on every line within a second, so a small dict in front of
    the parse makes the common case one lookup. The cache is cleared when it exceeds ``max_entries``.

    ``fmt``: a strptime format, or "iso" (fromisoformat; "Z", "+0000", any fraction length; a trailing " UTC"
    or " GMT"), "epoch" (seconds, int/float/str), "epoch_ms", "smpp" (YYMMDDhhmm or YYMMDDhhmmss, years 20YY).
    ``tz``: the zone of naive times (zoneinfo or any tzinfo; a zone name is accepted too). Formats with %z use
    the parsed offset; with %Z a "UTC"/"GMT" name means UTC, anything else falls back to ``tz``.

    Output: ``datetime.astimezone(UTC).isoformat()``, e.g. "2026-11-27T01:35:05+00:00", microseconds only when
    non-zero. Ambiguous or non-existent local times (DST) use fold=0. Invalid input -> None, never raises.
    Times at or before 1970-01-01T00:00:00Z -> None: Kannel prints an unset time (-1) as 1969-12-31 23:59:59,
    and zero dates ("0001-01-01…") mean "no time" in practice.
    """

    __slots__ = ("_cache", "_kind", "_parse", "fmt", "max_entries", "tz")

    def __init__(self, fmt: str, tz: tzinfo | str | None = None, max_entries: int = 4096) -> None:
        if isinstance(tz, str):
            tz = ZoneInfo(tz)
        self.fmt = fmt
        self.tz: tzinfo = tz if tz is not None else _UTC
        self.max_entries = max_entries
        self._cache: dict[Any, str | None] = {}
        if fmt in _SPECIAL_FORMATS:
            self._parse = getattr(self, "_parse_" + fmt)
        elif fmt in _ISO_LIKE_FORMATS:
            self._parse = self._parse_iso_like
        else:
            self._parse = self._parse_strptime

    def __repr__(self) -> str:
        return f"TimeParser({self.fmt!r}, {self.tz!r})"

    def __call__(self, value: Any) -> str | None:
        if value is True or value is False:  # never a time, and equal to 1 and 0 as a cache key
            return None
        cache = self._cache
        try:
            return cache[value]
        except KeyError:
            pass
        except TypeError:  # unhashable junk
            return None
        try:
            dt = self._parse(value)
            result = None if dt is None else self._finish(dt)
        except Exception:  # bad input must never crash the pipeline
            result = None
        if len(cache) >= self.max_entries:
            cache.clear()
        cache[value] = result
        return result

    def _finish(self, dt: datetime) -> str | None:
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=self.tz)  # fold=0 for ambiguous / non-existent local times
        utc = dt.astimezone(_UTC)
        if utc <= _EPOCH:
            return None
        return utc.isoformat()

    # --- the kinds -------------------------------------------------------------------------------------------

    @staticmethod
    def _parse_iso(value: Any) -> datetime | None:
        if not isinstance(value, str):
            return None
        s = value.strip()
        if len(s) < 10 or not s[0].isdigit():
            return None
        if s[-4:] in (" UTC", " GMT"):
            s = s[:-4] + "+00:00"
        return datetime.fromisoformat(s)

    def _parse_iso_like(self, value: Any) -> datetime | None:
        if not isinstance(value, str):
            return None
        s = value.strip()
        length, sep, frac = _ISO_LIKE_FORMATS[self.fmt]
        if frac:
            # "YYYY-MM-DD HH:MM:SS.f…": strptime's %f takes 1-6 digits
            if len(s) < 21 or len(s) > 26 or s[19] != ".":
                return None
        elif len(s) != length:
            return None
        if s[4] != "-" or s[7] != "-" or s[10] != sep or s[13] != ":" or s[16] != ":":
            return None
        if not s.isascii():
            return None
        dt = datetime.fromisoformat(s)
        return dt if dt.tzinfo is None else None

    def _parse_strptime(self, value: Any) -> datetime | None:
        if not isinstance(value, str):
            return None
        s = value.strip()
        if not s:
            return None
        dt = datetime.strptime(s, self.fmt)
        if dt.tzinfo is None and "%Z" in self.fmt:
            upper = s.upper()
            if "UTC" in upper or "GMT" in upper:
                dt = dt.replace(tzinfo=_UTC)
        return dt

    @staticmethod
    def _parse_epoch(value: Any) -> datetime | None:
        return _epoch(value, 1)

    @staticmethod
    def _parse_epoch_ms(value: Any) -> datetime | None:
        return _epoch(value, 1000)

    def _parse_smpp(self, value: Any) -> datetime | None:
        if not isinstance(value, str):
            return None
        s = value.strip()
        n = len(s)
        if (n != 10 and n != 12) or not (s.isascii() and s.isdigit()):
            return None
        second = int(s[10:12]) if n == 12 else 0
        return datetime(2000 + int(s[0:2]), int(s[2:4]), int(s[4:6]), int(s[6:8]), int(s[8:10]), second)


def _epoch(value: Any, per_second: int) -> datetime | None:
    """Epoch (seconds or ms) to an aware datetime using integer arithmetic, so ms stay exact."""
    unit_us = 1_000_000 // per_second  # microseconds per input unit
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        sec, micro = divmod(value * unit_us, 1_000_000)
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return None
        sec, micro = divmod(round(value * unit_us), 1_000_000)
    elif isinstance(value, str):
        s = value.strip()
        sign = 1
        if s[:1] == "-" or s[:1] == "+":
            sign = -1 if s[0] == "-" else 1
            s = s[1:]
        int_part, _, frac = s.partition(".")
        if not int_part or not (int_part.isascii() and int_part.isdigit()):
            return None
        if frac and not (frac.isascii() and frac.isdigit()):
            return None
        scale = len(str(unit_us)) - 1  # fraction digits that are still >= 1 µs
        frac_us = int((frac + "0" * scale)[:scale]) if scale else 0
        sec, micro = divmod(sign * (int(int_part) * unit_us + frac_us), 1_000_000)
    else:
        return None
    if sec <= 0:
        return None
    return _EPOCH + timedelta(seconds=sec, microseconds=micro)


_PARSERS: dict[tuple[str, Any], TimeParser] = {}


def parse_time(value: Any, fmt: str, tz: tzinfo | str | None = None) -> str | None:
    """One-off form of :class:`TimeParser` (which it reuses per (fmt, tz)); prefer a TimeParser per source."""
    key = (fmt, tz)
    try:
        parser = _PARSERS.get(key)
    except TypeError:  # unhashable tz
        return None
    if parser is None:
        try:
            parser = TimeParser(fmt, tz)
        except Exception:
            return None
        if len(_PARSERS) > 256:
            _PARSERS.clear()
        _PARSERS[key] = parser
    return parser(value)


# ---------------------------------------------------------------------------------------------------------------
# 4. Kannel
# ---------------------------------------------------------------------------------------------------------------


def kannel_text(text: str, coding: str | int) -> str | None:
    """Undo Kannel's access-log rendering of ``[msg:LEN:TEXT]`` for the message's coding.

    * "2" (UCS-2): TEXT is upper-case hex of UTF-16BE -> decoded (bad code units -> U+FFFD).
    * "1" (8-bit binary): hex of raw octets -> the text only if they are valid UTF-8, else None (binary
      payloads such as WAP push or ringtones have no text to report).
    * "0", "-1" or anything else: TEXT is already text (each non-ASCII UTF-8 byte printed as ".") -> unchanged.

    Bad hex -> TEXT unchanged. Empty -> None.
    """
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


# ---------------------------------------------------------------------------------------------------------------
# 5. SMPP receipts and status tables
# ---------------------------------------------------------------------------------------------------------------

# The common, well-formed receipt in one match; anything else goes through the tolerant key scanner.
_RECEIPT_FULL = re.compile(
    r"id:(?P<id>\S*)\s+sub:(?P<sub>\S*)\s+dlvrd:(?P<dlvrd>\S*)\s+submit date:(?P<submit_date>\S*)"
    r"\s+done date:(?P<done_date>\S*)\s+stat:(?P<stat>\S*)\s+err:(?P<err>\S*)\s+text:(?P<text>.*)",
    re.IGNORECASE | re.DOTALL,
)
_RECEIPT_KEY = re.compile(
    r"(?<![A-Za-z0-9_])(id|sub|dlvrd|submit[ _]?date|done[ _]?date|stat|err|text)\s*:", re.IGNORECASE
)
_RECEIPT_KEY_NAMES = {"submitdate": "submit_date", "donedate": "done_date"}


def parse_receipt(text: str) -> dict[str, str]:
    """Split an SMPP Appendix B receipt (``id:… sub:… dlvrd:… submit date:… done date:… stat:… err:… text:…``).

    Keys are matched case-insensitively ("Stat:", "Text:") and returned as id, sub, dlvrd, submit_date,
    done_date, stat, err, text — only those present with a non-empty value. ``text`` is everything after
    "text:" to the end (it may contain spaces and colons). Values are returned as written (``stat`` keeps its
    case; see :func:`smpp_state_name`). Never raises; non-receipts give {}.
    """
    if not text or not isinstance(text, str):
        return {}
    m = _RECEIPT_FULL.search(text)
    if m is not None:
        return {k: v for k, v in m.groupdict().items() if v}
    out: dict[str, str] = {}
    matches = list(_RECEIPT_KEY.finditer(text))
    for i, km in enumerate(matches):
        key = km.group(1).lower().replace(" ", "").replace("_", "")
        key = _RECEIPT_KEY_NAMES.get(key, key)
        if key == "text":
            value = text[km.end() :]
        else:
            end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
            value = text[km.end() : end].strip()
        if value and key not in out:
            out[key] = value
        if key == "text":
            break
    return out


#: Receipt ``stat`` abbreviation -> the SMPP state's full name, lower-cased (providers-FORMAT §3).
SMPP_STATES: dict[str, str] = {
    "SCHEDULED": "scheduled",
    "ENROUTE": "enroute",
    "DELIVRD": "delivered",
    "EXPIRED": "expired",
    "DELETED": "deleted",
    "UNDELIV": "undeliverable",
    "ACCEPTD": "accepted",
    "UNKNOWN": "unknown",
    "REJECTD": "rejected",
    "SKIPPED": "skipped",
}

#: TLV ``message_state`` (0x0427) value -> full name, lower-cased (SMPP 3.4 §5.2.28; 0 and 9 from SMPP 5.0).
SMPP_MESSAGE_STATES: dict[int, str] = {
    0: "scheduled",
    1: "enroute",
    2: "delivered",
    3: "expired",
    4: "deleted",
    5: "undeliverable",
    6: "accepted",
    7: "unknown",
    8: "rejected",
    9: "skipped",
}

# Vendors also write the long forms, and some shorten differently.
_SMPP_STATE_ALIASES: dict[str, str] = {
    **SMPP_STATES,
    **{v.upper(): v for v in SMPP_STATES.values()},
    "DELIVERED": "delivered",
    "UNDELIVERED": "undeliverable",
    "REJECTED": "rejected",
    "ACCEPTED": "accepted",
    "DELIVRED": "delivered",
}


def smpp_state_name(stat: str | int | None) -> str | None:
    """Receipt ``stat`` ("DELIVRD", "Delivrd", "DELIVERED") or TLV message_state (2) -> full name; else None."""
    if stat is None or isinstance(stat, bool):
        return None
    if isinstance(stat, int):
        return SMPP_MESSAGE_STATES.get(stat)
    s = stat.strip().upper()
    if s.isascii() and s.isdigit():
        return SMPP_MESSAGE_STATES.get(int(s))
    return _SMPP_STATE_ALIASES.get(s)


#: SMPP command_status -> name with the ESME_ prefix (SMPP 3.4 §5.1.3, plus the SMPP 5.0 additions).
ESME_STATUS: dict[int, str] = {
    0x00: "ESME_ROK",
    0x01: "ESME_RINVMSGLEN",
    0x02: "ESME_RINVCMDLEN",
    0x03: "ESME_RINVCMDID",
    0x04: "ESME_RINVBNDSTS",
    0x05: "ESME_RALYBND",
    0x06: "ESME_RINVPRTFLG",
    0x07: "ESME_RINVREGDLVFLG",
    0x08: "ESME_RSYSERR",
    0x0A: "ESME_RINVSRCADR",
    0x0B: "ESME_RINVDSTADR",
    0x0C: "ESME_RINVMSGID",
    0x0D: "ESME_RBINDFAIL",
    0x0E: "ESME_RINVPASWD",
    0x0F: "ESME_RINVSYSID",
    0x11: "ESME_RCANCELFAIL",
    0x13: "ESME_RREPLACEFAIL",
    0x14: "ESME_RMSGQFUL",
    0x15: "ESME_RINVSERTYP",
    0x33: "ESME_RINVNUMDESTS",
    0x34: "ESME_RINVDLNAME",
    0x40: "ESME_RINVDESTFLAG",
    0x42: "ESME_RINVSUBREP",
    0x43: "ESME_RINVESMCLASS",
    0x44: "ESME_RCNTSUBDL",
    0x45: "ESME_RSUBMITFAIL",
    0x48: "ESME_RINVSRCTON",
    0x49: "ESME_RINVSRCNPI",
    0x50: "ESME_RINVDSTTON",
    0x51: "ESME_RINVDSTNPI",
    0x53: "ESME_RINVSYSTYP",
    0x54: "ESME_RINVREPFLAG",
    0x55: "ESME_RINVNUMMSGS",
    0x58: "ESME_RTHROTTLED",
    0x61: "ESME_RINVSCHED",
    0x62: "ESME_RINVEXPIRY",
    0x63: "ESME_RINVDFTMSGID",
    0x64: "ESME_RX_T_APPN",
    0x65: "ESME_RX_P_APPN",
    0x66: "ESME_RX_R_APPN",
    0x67: "ESME_RQUERYFAIL",
    0xC0: "ESME_RINVOPTPARSTREAM",
    0xC1: "ESME_ROPTPARNOTALLWD",
    0xC2: "ESME_RINVPARLEN",
    0xC3: "ESME_RMISSINGOPTPARAM",
    0xC4: "ESME_RINVOPTPARAMVAL",
    0xFE: "ESME_RDELIVERYFAILURE",
    0xFF: "ESME_RUNKNOWNERR",
    0x100: "ESME_RSERTYPUNAUTH",
    0x101: "ESME_RPROHIBITED",
    0x102: "ESME_RSERTYPUNAVAIL",
    0x103: "ESME_RSERTYPDENIED",
    0x104: "ESME_RINVDCS",
    0x105: "ESME_RINVSRCADDRSUBUNIT",
    0x106: "ESME_RINVDSTADDRSUBUNIT",
    0x107: "ESME_RINVBCASTFREQINT",
    0x108: "ESME_RINVBCASTALIAS_NAME",
    0x109: "ESME_RINVBCASTAREAFMT",
    0x10A: "ESME_RINVNUMBCAST_AREAS",
    0x10B: "ESME_RINVBCASTCNTTYPE",
    0x10C: "ESME_RINVBCASTMSGCLASS",
    0x10D: "ESME_RBCASTFAIL",
    0x10E: "ESME_RBCASTQUERYFAIL",
    0x10F: "ESME_RBCASTCANCELFAIL",
    0x110: "ESME_RINVBCAST_REP",
    0x111: "ESME_RINVBCASTSRVGRP",
    0x112: "ESME_RINVBCASTCHANIND",
}


def esme_status_name(code: int | str | None) -> str | None:
    """command_status as int, "0x0000000b", "0B" style hex with 0x, or decimal "11" -> "ESME_RINVDSTADR"."""
    if code is None or isinstance(code, bool):
        return None
    if isinstance(code, int):
        return ESME_STATUS.get(code)
    s = code.strip().lower()
    try:
        n = int(s, 16) if s.startswith("0x") else int(s, 10)
    except ValueError:
        return None
    return ESME_STATUS.get(n)


def esme_status(value: str | int | None) -> str | None:
    """Normalise how gateways print a command status to the bare ESME name.

    "CommandStatus.ESME_ROK" -> "ESME_ROK", "ERROR/ESME_RTHROTTLED" -> "ESME_RTHROTTLED", "esme_rok" ->
    "ESME_ROK", and numeric codes ("0x00000058", 88) -> their name. Empty, "None" or unknown numbers -> None.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return ESME_STATUS.get(value)
    s = value.strip()
    if not s or s in ("None", "none"):
        return None
    if "/" in s:
        s = s.rsplit("/", 1)[1]
    if "." in s:
        s = s.rsplit(".", 1)[1]
    s = s.strip()
    if not s:
        return None
    if s[0].isdigit():
        return esme_status_name(s)
    return s.upper()


# ---------------------------------------------------------------------------------------------------------------
# 6. Status classes
# ---------------------------------------------------------------------------------------------------------------

_PENDING = (
    "queued accepted scheduled sending enroute buffered dispatched submitted pending receiving created "
    "processing waiting new sms_buffered text_queued text_pending in_progress "
    # SMPP errors that gateways retry (Kannel: 0x08/0x14/0x58/0x64; Jasmin's submit_error_retrial defaults)
    "esme_rthrottled esme_rsyserr esme_rmsgqful esme_rx_t_appn"
)
_SENT = (
    "sent esme_rok acceptd accepted_by_smsc smsc_accepted delivered_to_operator delivered_to_smsc "
    "sent_to_carrier delivered_to_carrier"
)
_FINAL = (
    "delivered undelivered undeliverable failed delivery_failed expired rejected deleted received read "
    "canceled cancelled unknown delivrd undeliv rejectd partially_delivered delivery_unconfirmed "
    "sending_failed webhook_delivered aborted blocked successful success sms_success sms_failure sms_optout "
    "opted_out optout spam invalid unreachable carrier_unreachable carrier_blocked ttl_expired skipped "
    "text_delivered text_successful text_blocked text_invalid text_unreachable text_carrier_unreachable "
    "text_spam text_ttl_expired text_unknown text_opted_out text_invalid_message text_carrier_blocked "
    "text_max_price_exceeded invalid_message max_price_exceeded no_quota_left_on_account error "
    "delivered_to_handset"
)
_STATUS_CLASSES: dict[str, str] = {
    **dict.fromkeys(_PENDING.split(), "pending"),
    **dict.fromkeys(_SENT.split(), "sent"),
    **dict.fromkeys(_FINAL.split(), "final"),
}
_STATUS_RANK = {"pending": 0, "sent": 1, "final": 2}


def status_class(status: str) -> str:
    """Class of a status word from any provider: "pending" < "sent" < "final", or "unknown" if not recognised.

    Case, surrounding blanks, "-"/" " vs "_" and a "Class." or "_SMS." prefix are ignored. Decisions:
    "accepted" (a provider took the request) is pending, SMPP "acceptd" / "esme_rok" (the SMSC took it) are
    sent; the status *word* "unknown" (SMPP UNKNOWN, Sinch/Pinpoint UNKNOWN) is final, because a gateway
    reports it as a terminal failure (Kannel DLR type 2); "successful"/"success" (Pinpoint) are final.
    ESME error names are final, except the ones gateways retry (ESME_RTHROTTLED, ESME_RSYSERR, ESME_RMSGQFUL,
    ESME_RX_T_APPN), which are pending: Jasmin logs them with ``[retry:True]`` and the same message may still
    be accepted, which a "final" class would then wrongly block. Unrecognised words are "unknown" — callers
    must not treat those as final.
    """
    if not isinstance(status, str):
        return "unknown"
    return _status_class(status)


@lru_cache(maxsize=2048)
def _status_class(status: str) -> str:
    s = status.strip().lower().replace("-", "_").replace(" ", "_")
    if "." in s:
        s = s.rsplit(".", 1)[1]
    if "/" in s:
        s = s.rsplit("/", 1)[1]
    s = s.strip("_")
    cls = _STATUS_CLASSES.get(s)
    if cls is not None:
        return cls
    if s.startswith("esme_r"):
        return "final"
    return "unknown"


def is_final(status: str) -> bool:
    """True when the status is terminal (see :func:`status_class`); unrecognised words are not final."""
    return status_class(status) == "final"


# ---------------------------------------------------------------------------------------------------------------
# 7. Jasmin: Python literals, content bytes, ids
# ---------------------------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------------------------
# 8. / 9. Privacy hash and stable ids
# ---------------------------------------------------------------------------------------------------------------


def body_hash(text: str) -> str:
    """``body: hash`` privacy mode: "sha256:" + hex digest of the UTF-8 text (same text -> same hash)."""
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def stable_id(prefix: str, *parts: str | None) -> str:
    """Deterministic id for an event without one (Kannel REJECTED lines), so a replay yields the same id.

    ``prefix + "-" + sha256(parts joined by U+001F)[:16]``; None parts count as "".
    """
    joined = "\x1f".join("" if p is None else str(p) for p in parts)
    return prefix + "-" + hashlib.sha256(joined.encode("utf-8", "surrogatepass")).hexdigest()[:16]
