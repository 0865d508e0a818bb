"""Times: one cached parser per format and zone, turning a log's timestamps into ISO 8601 with an offset."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

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


# Fixed layouts read by slicing, without a parse per line: format -> (end of the hour key, the valid rests after
# it, each with its ISO ending). The hour key ("2026-11-27 02", "26112702") is parsed once per hour; the rest
# (":35:05", "3505", "35") is one lookup. A 10-digit smpp time has no seconds.
_MINUTES = [f"{i:02d}" for i in range(60)]
_ISO_RESTS = {f":{m}:{s}": f":{m}:{s}+00:00" for m in _MINUTES for s in _MINUTES}
_SMPP_RESTS = {f"{m}{s}": f":{m}:{s}+00:00" for m in _MINUTES for s in _MINUTES} | {
    m: f":{m}:00+00:00" for m in _MINUTES}
_SLICED = {
    "%Y-%m-%d %H:%M:%S": (13, _ISO_RESTS),
    "%Y-%m-%dT%H:%M:%S": (13, _ISO_RESTS),
    "smpp": (8, _SMPP_RESTS),
}
_HOUR = timedelta(hours=1)
_LAST_SECOND = timedelta(minutes=59, seconds=59)


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

    __slots__ = ("_cache", "_hours", "_kind", "_parse", "fmt", "max_entries", "read", "tz")

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
        self._hours: dict[str, str] = {}  # local hour key -> its UTC "YYYY-MM-DDTHH", or "" where slicing won't do
        # `read` is what a compiled mapping calls: the sliced path for a fixed layout, else the memoised parse
        self.read: Callable[[Any], str | None] = self._sliced_reader() if fmt in _SLICED else self.__call__

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

    def _sliced_reader(self) -> Callable[[Any], str | None]:
        """A fixed layout (`_SLICED`) read without a parse: busy logs repeat the hour, and often not the second
        (one new second per line defeats the memo in `__call__`). Same result as `__call__`, which takes every
        value this path does not fully understand. A closure over its tables: it runs for every line."""
        key_end, rests = _SLICED[self.fmt]
        hours = self._hours  # cleared in place when full, never replaced
        hour_head = self._hour_head
        parse = self.__call__

        def read(value: Any) -> str | None:
            if value.__class__ is str:
                rest = rests.get(value[key_end:])
                if rest is not None:
                    key = value[:key_end]
                    head = hours.get(key)
                    if head is None:
                        head = hour_head(key)
                    if head:
                        return head + rest
            return parse(value)

        return read

    def _hour_head(self, key: str) -> str:
        """The UTC "YYYY-MM-DDTHH" of a local hour, when the whole hour has one offset of whole hours (else "",
        and the full parse decides): then minutes and seconds are the same in UTC as in the line."""
        head = ""
        try:
            start = self._parse_smpp(key + "00") if self.fmt == "smpp" else self._parse_iso_like(key + ":00:00")
            if start is not None:
                start = start.replace(tzinfo=self.tz)
                offset = start.utcoffset()
                end = (start + _LAST_SECOND).replace(tzinfo=self.tz)  # wall-clock addition: same zone rules
                utc = start.astimezone(_UTC)
                if offset is not None and offset == end.utcoffset() and not offset % _HOUR and utc > _EPOCH:
                    head = utc.isoformat()[:13]
        except Exception:  # bad input must never crash the pipeline
            head = ""
        hours = self._hours
        if len(hours) >= self.max_entries:
            hours.clear()
        hours[key] = head
        return head

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
