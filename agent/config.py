"""YAML config -> frozen dataclasses. Every error names the file, the key and what was expected.

Formats are data: a source names a built-in `format:` (a preset under formats/presets) and may override
its parser, rules and mapping, or give its own `parser:` entirely.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from agent.secrets import shown_url

DEFAULT_STATE_DIR = "/var/lib/volt-agent"
DEFAULT_ENDPOINT = "https://v1.insights.api.textvolt.com/data/messages"
# 100 ms away, 3,000 records/s need about 330 requests in flight; 512 leaves room for 50-150 ms (README: Performance)
DEFAULT_MAX_CONCURRENCY = 512
# The connection pool and its buffers are sized by the ceiling at start: a typo must not allocate gigabytes
CONCURRENCY_LIMIT = 10_000


class ConfigError(Exception):
    """A config problem an operator can fix: which file, which key, what was expected."""

    def __init__(self, file: str | Path, key: str, expected: str) -> None:
        self.file, self.key, self.expected = str(file), key, expected
        super().__init__(f"{file}: {key}: {expected}")

    @property
    def errors(self) -> tuple[ConfigError, ...]:
        """Each problem on its own (ConfigErrors holds several)."""
        return (self,)


class ConfigErrors(ConfigError):
    """Every problem `load` found in one file, so one round of edits fixes them all. Its file, key and expected are
    the first problem's; the message has one line per problem."""

    def __init__(self, errors: list[ConfigError]) -> None:
        first = errors[0]
        super().__init__(first.file, first.key, first.expected)
        self._all = tuple(errors)
        self.args = ("\n".join(str(e) for e in self._all),)

    @property
    def errors(self) -> tuple[ConfigError, ...]:
        return self._all


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgG]i?[bB]?|[bB])?\s*$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


class _Section:
    """Reads typed keys from one mapping, tracking the dotted path for error messages."""

    def __init__(self, file: Path, path: str, data: Any) -> None:
        self.file, self.path = file, path
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(file, path or "(top level)", f"a mapping of keys, got {type(data).__name__}")
        self.data: dict[str, Any] = data
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, expected: str) -> ConfigError:
        return ConfigError(self.file, self.key(name), expected)

    def raw(self, name: str, default: Any = None) -> Any:
        self.used.add(name)
        return self.data.get(name, default)

    def has(self, name: str) -> bool:
        return name in self.data

    def str(self, name: str, default: str | None = None, *, required: bool = False,
            choices: tuple[str, ...] = ()) -> str | None:
        value = self.raw(name, default)
        if value is None:
            if required:
                raise self.error(name, "is required (a string)")
            return None
        if isinstance(value, bool):  # YAML 1.1 reads unquoted yes/no/on/off (and NO, Norway) as booleans
            raise self.error(name, f"a string, got {str(value).lower()}: YAML reads an unquoted yes, no, on or off "
                                   f'(NO for Norway too) as {str(value).lower()}; quote it: "NO"')
        if not isinstance(value, str) or (required and not value.strip()):
            raise self.error(name, f"a non-empty string, got {value!r}")
        if choices and value not in choices:
            raise self.error(name, f"one of {', '.join(choices)}, got {value!r}")
        return value

    def bool(self, name: str, default: bool) -> bool:
        value = self.raw(name, default)
        if not isinstance(value, bool):
            raise self.error(name, f"true or false, got {value!r}")
        return value

    def int(self, name: str, default: int, *, minimum: int = 0) -> int:
        value = self.raw(name, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise self.error(name, f"a whole number >= {minimum}, got {value!r}")
        return value

    def size(self, name: str, default: int, *, minimum: int = 1) -> int:
        """Bytes, as a number or with a unit: 512, 64KiB, 16MiB, 1G."""
        value = self.raw(name, default)
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            m = _SIZE.match(str(value))
            if not m:
                raise self.error(name, f"a size such as 1048576, 64KiB or 16MiB, got {value!r}")
            number = int(float(m.group(1)) * _UNITS[(m.group(2) or "")[:1].lower()])
        if number < minimum:
            raise self.error(name, f"a size of at least {minimum} bytes, got {value!r}")
        return number

    def number(self, name: str, default: float, *, minimum: float = 0.0) -> float:
        value = self.raw(name, default)
        if not isinstance(value, int | float) or isinstance(value, bool) or value < minimum:
            raise self.error(name, f"a number >= {minimum}, got {value!r}")
        return float(value)

    def seconds(self, name: str, default: float, *, minimum: float = 0.0) -> float:
        """A duration in seconds, as a number or with a unit: 0.5, 250ms, 30s, 5m, 7d."""
        value = self.raw(name, default)
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        else:
            m = _DURATION.match(str(value))
            if not m:
                raise self.error(name, f"a duration such as 5, 250ms, 30s, 5m or 7d, got {value!r}")
            number = float(m.group(1)) * _SECONDS[m.group(2)]
        if number < minimum:
            raise self.error(name, f"a duration of at least {minimum} s, got {value!r}")
        return number

    def secret(self, name: str) -> str | None:
        """Like str(), but an error never echoes the value: it may be the Volt token."""
        value = self.raw(name)
        if value is not None and not isinstance(value, str):
            raise self.error(name, f"a string (quote it in the YAML), got a {type(value).__name__}")
        return value or None

    def str_list(self, name: str, *, required: bool = False) -> tuple[str, ...]:
        value = self.raw(name)
        if value is None:
            if required:
                raise self.error(name, "is required (a list of strings)")
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error(name, f"a list of non-empty strings, got {value!r}")
        if required and not value:
            raise self.error(name, "at least one entry")
        return tuple(value)

    def section(self, name: str) -> _Section:
        return _Section(self.file, self.key(name), self.raw(name))

    def timezone(self, name: str, default: str) -> ZoneInfo:
        value = self.str(name, default) or default
        try:
            return ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise self.error(name, f"an IANA time zone such as UTC or Europe/Berlin, got {value!r}") from None

    def reject_unknown(self, allowed: set[str]) -> None:
        for name in self.data:
            if name not in allowed:
                near = [a for a in sorted(allowed) if a[:3] == str(name)[:3]]
                hint = f" (did you mean {near[0]}?)" if near else ""
                raise self.error(str(name), f"is not a known key{hint}; known: {', '.join(sorted(allowed))}")


@dataclass(frozen=True)
class VoltConfig:
    endpoint: str
    token_env: str
    token_file: str | None
    token_inline: str | None = field(repr=False)
    allow_insecure_http: bool
    timeout: float
    connect_timeout: float
    concurrency: int | None  # None: auto, the limit adapts between min_concurrency and max_concurrency
    max_concurrency: int
    min_concurrency: int
    rate_limit: float
    retry_initial: float
    retry_max: float
    auth_retry: float
    max_attempts: int

    @property
    def ceiling(self) -> int:
        """The most requests ever in flight: the fixed concurrency, else max_concurrency."""
        return self.concurrency or self.max_concurrency


@dataclass(frozen=True)
class SourceConfig:
    name: str
    paths: tuple[str, ...]
    exclude: tuple[str, ...]
    format: str | None
    spec: dict[str, Any]
    start_at: str
    encoding: str
    max_line_bytes: int
    fingerprint_bytes: int
    watch: bool
    poll_interval: float
    scan_interval: float
    rotate_wait: float
    timezone: ZoneInfo
    receipt_timezone: ZoneInfo
    default_country: str | None
    body: str
    provider: str | None
    rejects: str | None
    file: Path


@dataclass(frozen=True)
class Config:
    file: Path
    volt: VoltConfig
    sources: tuple[SourceConfig, ...]
    state_dir: Path
    checkpoint_interval: float
    checkpoint_max_age: float
    dead_letter: Path
    queue_max_records: int
    queue_max_bytes: int
    shutdown_timeout: float
    log_format: str
    log_level: str
    metrics_listen: str | None
    final_status_memory: int


SOURCE_KEYS = {
    "name", "paths", "exclude", "format", "parser", "rules", "map", "explode", "options",
    "start_at", "encoding", "max_line_bytes", "fingerprint_bytes", "watch", "poll_interval",
    "scan_interval", "rotate_wait", "timezone", "receipt_timezone", "default_country", "body",
    "provider", "rejects",
}


def _source(file: Path, index: int, data: Any, names: set[str]) -> SourceConfig:
    s = _Section(file, f"sources[{index}]", data)
    name = s.str("name", required=True)
    assert name is not None
    if name in names:
        raise s.error("name", f"a name used by no other source; {name!r} appears twice")
    names.add(name)
    s.path = f"sources[{name}]"
    fmt = s.str("format")
    if fmt is None and not s.has("parser"):
        raise s.error("format", "a built-in format (see `volt-agent formats`) or a `parser:` section")
    for enc_name in ("encoding",):
        enc = s.str(enc_name, "utf-8") or "utf-8"
        try:
            "".encode(enc)
        except LookupError:
            raise s.error(enc_name, f"a Python codec name such as utf-8 or latin-1, got {enc!r}") from None
    country = s.str("default_country")
    if country is not None and not re.fullmatch(r"[A-Z]{2}", country):
        raise s.error("default_country", f"an ISO 3166 two-letter code such as GB or US, got {country!r}")
    spec = {k: s.raw(k) for k in ("parser", "rules", "map", "explode", "options") if s.has(k)}
    tz = s.timezone("timezone", "UTC")
    cfg = SourceConfig(
        name=name,
        paths=s.str_list("paths", required=True),
        exclude=s.str_list("exclude"),
        format=fmt,
        spec=spec,
        start_at=s.str("start_at", "end", choices=("end", "beginning")) or "end",
        encoding=enc,
        max_line_bytes=s.size("max_line_bytes", 1024 * 1024, minimum=64),
        fingerprint_bytes=s.size("fingerprint_bytes", 256, minimum=16),
        watch=s.bool("watch", True),
        poll_interval=s.seconds("poll_interval", 1.0, minimum=0.01),
        scan_interval=s.seconds("scan_interval", 10.0, minimum=0.1),
        rotate_wait=s.seconds("rotate_wait", 300.0),
        timezone=tz,
        receipt_timezone=s.timezone("receipt_timezone", str(tz)),
        default_country=country,
        body=s.str("body", "keep", choices=("keep", "drop", "hash")) or "keep",
        provider=s.str("provider"),
        rejects=s.str("rejects"),
        file=file,
    )
    s.reject_unknown(SOURCE_KEYS)
    return cfg


def _env_name(v: _Section) -> str:
    """The name of the variable holding the token. A value that is no variable name may be the token pasted
    in the wrong key, so the error never repeats it."""
    name = v.str("token_env", "VOLT_TOKEN") or "VOLT_TOKEN"
    if not re.fullmatch(r"[A-Z_][A-Z0-9_]{0,63}", name):
        raise v.error("token_env", "the name of an environment variable, like VOLT_TOKEN (upper-case letters, "
                                   "digits and _); the value is not shown, in case it is the token itself")
    return name


def _concurrency(v: _Section) -> int | None:
    """`auto` (None: adaptive) or a fixed number of requests in flight."""
    value = v.raw("concurrency", "auto")
    if value == "auto":
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= CONCURRENCY_LIMIT:
        raise v.error("concurrency", f"auto or a whole number >= 1, got {value!r}; at most {CONCURRENCY_LIMIT:,}")
    return value


def _volt(file: Path, top: _Section) -> VoltConfig:
    v = top.section("volt")
    endpoint = v.str("endpoint", DEFAULT_ENDPOINT) or DEFAULT_ENDPOINT
    insecure = v.bool("allow_insecure_http", False)
    if not re.match(r"^https?://[^/\s]+", endpoint) or re.search(r"[\s\x00-\x1f\x7f]", endpoint):
        shown = repr(shown_url(endpoint)) if "://" in endpoint else "a value that is no URL (not shown: a token?)"
        raise v.error("endpoint", f"an https:// URL like {DEFAULT_ENDPOINT}, got {shown}")
    bad_host = f"a URL with a valid host and port (1-65535), got {shown_url(endpoint)!r}"
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError:  # a bad port, or a broken [IPv6] host
        raise v.error("endpoint", bad_host) from None
    if port == 0 or not parts.hostname:
        raise v.error("endpoint", bad_host)
    if "@" in parts.netloc or parts.query or parts.fragment:
        raise v.error("endpoint", "a URL without user:password@, query or fragment: the token goes in the "
                                  "Authorization header (token_file, a systemd credential or token_env), never in "
                                  "the URL")
    if endpoint.startswith("http://") and not insecure:
        raise v.error(
            "endpoint",
            "an https:// URL; plain http:// is refused unless volt.allow_insecure_http: true "
            "(for the local stand-in only)",
        )
    max_concurrency = v.int("max_concurrency", DEFAULT_MAX_CONCURRENCY, minimum=1)
    if max_concurrency > CONCURRENCY_LIMIT:
        raise v.error("max_concurrency", f"a whole number >= 1, got {max_concurrency}; at most {CONCURRENCY_LIMIT:,}")
    min_concurrency = v.int("min_concurrency", 1, minimum=1)
    if min_concurrency > max_concurrency:
        raise v.error("min_concurrency", f"a whole number no larger than max_concurrency ({max_concurrency}), "
                                         f"got {min_concurrency}")
    cfg = VoltConfig(
        endpoint=endpoint,
        token_env=_env_name(v),
        token_file=v.str("token_file"),
        token_inline=v.secret("token"),
        allow_insecure_http=insecure,
        timeout=v.seconds("timeout", 10.0, minimum=0.05),
        connect_timeout=v.seconds("connect_timeout", 5.0, minimum=0.05),
        concurrency=_concurrency(v),
        max_concurrency=max_concurrency,
        min_concurrency=min_concurrency,
        rate_limit=v.number("rate_limit", 0.0),
        retry_initial=v.seconds("retry_initial", 0.5, minimum=0.001),
        retry_max=v.seconds("retry_max", 60.0, minimum=0.001),
        auth_retry=v.seconds("auth_retry", 60.0, minimum=0.01),
        max_attempts=v.int("max_attempts", 0),
    )
    v.reject_unknown({
        "endpoint", "token_env", "token_file", "token", "allow_insecure_http", "timeout", "connect_timeout",
        "concurrency", "max_concurrency", "min_concurrency", "rate_limit", "retry_initial", "retry_max",
        "auth_retry", "max_attempts",
    })
    return cfg


def load(path: str | Path, *, state_dir_override: str | None = None,
         check_source: Callable[[SourceConfig], None] | None = None) -> Config:
    """Read and check a config file. Checking goes on after a problem: the ConfigError raised names each source's
    first problem and each other key's (`validate` lists them all). `check_source` checks more of a source (its
    format, compiled) within the same pass."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(file, "(file)", "an existing YAML config file; this path does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(file, "(file)", f"a readable UTF-8 YAML file: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(syntax)"
        raise ConfigError(file, where, f"valid YAML: {getattr(exc, 'problem', exc)}") from None
    top = _Section(file, "", data)
    errors: list[ConfigError] = []

    def part(read: Callable[[], Any]) -> Any:
        """The value `read` returns, or None with its problem kept; load raises before a None is used."""
        try:
            return read()
        except ConfigError as exc:
            errors.append(exc)
            return None

    def source(index: int, raw: Any) -> SourceConfig:
        scfg = _source(file, index, raw, names)
        if check_source is not None:
            check_source(scfg)
        return scfg

    def section(name: str, known: set[str]) -> _Section:
        """A sub-section with only known keys; an unusable one reads as empty, so its keys' checks go on."""
        s = part(lambda: top.section(name)) or _Section(file, name, {})
        part(lambda: s.reject_unknown(known))
        return s

    sources_raw = top.raw("sources")
    if not isinstance(sources_raw, list) or not sources_raw:
        errors.append(top.error("sources", "a non-empty list of sources (each with name, paths and format or parser)"))
        sources_raw = []
    names: set[str] = set()
    sources = tuple(part(lambda i=i, s=s: source(i, s)) for i, s in enumerate(sources_raw))
    state_dir = Path(
        state_dir_override
        or os.environ.get("VOLT_AGENT_STATE_DIR")
        or part(lambda: top.str("state_dir", DEFAULT_STATE_DIR))
        or DEFAULT_STATE_DIR
    )
    volt = part(lambda: _volt(file, top))
    log = section("log", {"format", "level"})
    metrics = section("metrics", {"listen"})
    queue = section("queue", {"max_records", "max_bytes"})
    fields = {name: part(read) for name, read in {
        "checkpoint_interval": lambda: top.seconds("checkpoint_interval", 1.0, minimum=0.01),
        "checkpoint_max_age": lambda: top.seconds("checkpoint_max_age", 7 * 86400.0, minimum=1),
        "dead_letter": lambda: Path(top.str("dead_letter") or str(state_dir / "dead-letter.jsonl")),
        "queue_max_records": lambda: queue.int("max_records", 4_000, minimum=1),
        "queue_max_bytes": lambda: queue.size("max_bytes", 8 * 1024 * 1024, minimum=1024),
        "shutdown_timeout": lambda: top.seconds("shutdown_timeout", 10.0),
        "log_format": lambda: log.str("format", "logfmt", choices=("logfmt", "json")) or "logfmt",
        "log_level": lambda: log.str("level", "info", choices=("debug", "info", "warning", "error")) or "info",
        "metrics_listen": lambda: metrics.str("listen"),
        "final_status_memory": lambda: top.int("final_status_memory", 100_000, minimum=0),
    }.items()}
    part(lambda: top.reject_unknown({
        "volt", "sources", "state_dir", "checkpoint_interval", "checkpoint_max_age", "dead_letter", "queue",
        "shutdown_timeout", "log", "metrics", "final_status_memory",
    }))
    if errors:
        raise errors[0] if len(errors) == 1 else ConfigErrors(errors)
    return Config(file=file, volt=volt, sources=sources, state_dir=state_dir, **fields)
