"""Structured logs on stderr for journald: logfmt or JSON, with repeated identical errors rate-limited.

Callers log an event name plus key=value fields: `log.warning("line_too_long", source=..., bytes=...)`.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

import orjson

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def _logfmt_value(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' "=\n\t'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


class _Formatter(logging.Formatter):
    def __init__(self, fmt: str) -> None:
        super().__init__()
        self.json = fmt == "json"

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
        }
        fields.update(getattr(record, "fields", {}))
        if self.json:
            try:
                return orjson.dumps(fields, default=str).decode()
            except TypeError:  # a file name that is not UTF-8 (surrogates): escape it rather than lose the line
                return json.dumps(fields, default=str)
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in fields.items())


_NEVER = (-1e18, 0)  # a key never logged: last at the dawn of time, nothing folded
LIMITED_KEYS = 1024  # rate-limit keys kept before the quiet ones are forgotten


class Log:
    """A named logger taking an event and fields; `limited()` folds repeats within a window into a count."""

    def __init__(self, name: str) -> None:
        self._logger = logging.getLogger(name)
        self._last: dict[str, tuple[float, int]] = {}

    def _emit(self, level: int, event: str, fields: dict[str, Any]) -> None:
        if self._logger.isEnabledFor(level):
            self._logger.log(level, event, extra={"fields": fields})

    def debug(self, event: str, **fields: Any) -> None:
        self._emit(logging.DEBUG, event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._emit(logging.INFO, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._emit(logging.WARNING, event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._emit(logging.ERROR, event, fields)

    def limited(self, level: int, key: str, event: str, every: float = 60.0, **fields: Any) -> None:
        """Log `event` at most once per `every` seconds for `key`; later lines carry how many were folded."""
        if not self.due(key, every):
            return
        folded = self._last.get(key, _NEVER)[1]
        if folded:
            fields["repeated"] = folded
        now = time.monotonic()
        if key not in self._last and len(self._last) >= LIMITED_KEYS:
            self._forget(now)
        self._last[key] = (now, 0)
        self._emit(level, event, fields)

    def due(self, key: str, every: float = 60.0) -> bool:
        """Whether a `limited` line for `key` would be written now; if not, it is counted as folded into the next.

        A caller on a per-line path asks this first, so a suppressed line costs no building of its fields.
        """
        last, folded = self._last.get(key, _NEVER)
        if time.monotonic() - last < every:
            self._last[key] = (last, folded + 1)
            return False
        return True

    def _forget(self, now: float) -> None:
        """Keys name files, and files come and go: drop those quiet for an hour so the dict stays small."""
        self._last = {k: v for k, v in self._last.items() if now - v[0] < 3600.0}


def setup(fmt: str = "logfmt", level: str = "info") -> None:
    """Send all logs to stderr in the chosen format; called once by the CLI."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS.get(level, logging.INFO))
    logging.getLogger("aiohttp").setLevel(logging.WARNING)
    logging.getLogger("watchdog").setLevel(logging.WARNING)


def get(name: str) -> Log:
    return Log(name)
