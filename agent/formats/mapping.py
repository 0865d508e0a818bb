"""Compiles a mapping spec (Volt field -> where its value comes from) into closures, once per source.

A value spec is one of:
  "$path"                       a parsed field (dotted path, `[n]` for list items: data.payload.to[0].status)
  "text"                        a constant (anything not starting with "$"; "$$x" is the constant "$x")
  {field: path} | {const: v} | {template: "kannel-{smsc}-{fid}"} | {fn: name, args: [spec, ...]}
  {first: [spec, ...]}          the first spec that yields a value
followed by optional modifiers, applied in this order:
  str | int: true, strip, lower, upper, omit: [values meaning "unknown"], map: {from: to} with
  default: (a spec; without it an unmapped value is kept as it is, with `default: null` it is dropped),
  time: strptime format | iso | epoch | epoch_ms | smpp, tz: source | receipt | Zone/Name,
  phone: true (E.164 with the source's default_country), prefix: "x".
Every getter returns None for "unknown", so the record builder leaves the field out (invariant 2).
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agent.config import ConfigError
from agent.formats import transforms as tf

Getter = Callable[[Any], Any]
_HEX = re.compile(r"[0-9A-Fa-f]+")
_PLAIN_KEY = re.compile(r"[^.\[\]]+")
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


@dataclass(frozen=True)
class Context:
    """What compiling needs to know about the source: where errors point, zones, default country."""

    file: str
    timezone: tzinfo
    receipt_timezone: tzinfo
    default_country: str | None

    def error(self, where: str, expected: str) -> ConfigError:
        return ConfigError(self.file, where, expected)


def _receipt(text: Any) -> dict[str, str] | None:
    return tf.parse_receipt(text) if isinstance(text, str) and text else None


def _stable_id(prefix: Any, *parts: Any) -> str:
    return tf.stable_id(str(prefix), *("" if p is None else str(p) for p in parts))


def _split(value: Any, sep: Any, index: Any, maxsplit: Any = -1) -> Any:
    """Piece `index` of `value` split on `sep`; `maxsplit` keeps a last piece whole ("NACK/0x0b/a/b", "/", 2, 2)."""
    if not isinstance(value, str):
        return None
    pieces = value.split(str(sep), int(maxsplit))
    i = int(index)
    return pieces[i] if -len(pieces) <= i < len(pieces) else None


def _length(value: Any) -> int | None:
    return len(value) if isinstance(value, list | tuple | str) else None


def _to_str(value: Any) -> str | None:
    """The `str` modifier: numbers become text (JSON error codes such as 4720); a list, object or boolean is
    not a scalar value, so it is unknown rather than its Python repr."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


# Named functions a spec may call with {fn: name, args: [...]}. Each returns None for "unknown".
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "receipt": _receipt,
    "stable_id": _stable_id,
    "split": _split,
    "length": _length,
    "kannel_text": lambda text, coding: tf.kannel_text(text, str(coding)) if text is not None else None,
    "kannel_segments": lambda text, coding, length: (
        tf.kannel_segments(text, str(coding), length) if text is not None else None
    ),
    "segments": lambda text: tf.segment_count(text) if isinstance(text, str) else None,
    "py_literal": lambda v: tf.py_literal(v) if isinstance(v, str) else v,
    "jasmin_text": lambda v: (
        (tf.jasmin_text(tf.py_literal(v) if isinstance(v, str) else v) or None) if v else None
    ),
    "jasmin_msgid": lambda v: tf.jasmin_msgid(v) if isinstance(v, str) and v else None,
    "esme_status": lambda v: tf.esme_status(v) if isinstance(v, str) and v else None,
    "smpp_state": lambda v: tf.smpp_state_name(v) if isinstance(v, str) else None,  # DELIVRD, Delivered, 2
    "hex_to_int": lambda v: str(int(v, 16)) if isinstance(v, str) and _HEX.fullmatch(v) else None,
}


def compile_path(path: str) -> Getter:
    """A getter for a dotted path; a plain key (the common case) is a single dict lookup."""
    parts: list[str | int] = []
    for name, index in _PATH_PART.findall(path):
        parts.append(int(index) if index else name)
    if len(parts) == 1 and isinstance(parts[0], str):
        key = parts[0]
        return lambda f: f.get(key)  # top-level fields are always a dict (groupdict or a JSON object)

    def get(f: Any) -> Any:
        for part in parts:
            if isinstance(part, int):
                if not isinstance(f, list) or part >= len(f):
                    return None
                f = f[part]
            else:
                if not isinstance(f, dict):
                    return None
                f = f.get(part)
            if f is None:
                return None
        return f

    return get


def _template(text: str, ctx: Context, where: str) -> Getter:
    pieces: list[str | Getter] = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ctx.error(where, f"a template like 'kannel-{{smsc}}-{{fid}}': {exc}") from None
    for literal, name, _spec, _conv in parsed:
        if literal:
            pieces.append(literal)
        if name:
            pieces.append(compile_path(name))

    def get(f: Any) -> str | None:
        out = []
        for piece in pieces:
            if isinstance(piece, str):
                out.append(piece)
                continue
            value = _to_str(piece(f))  # a list or object in an id would be its Python repr: unknown instead
            if not value:
                return None
            out.append(value)
        return "".join(out)

    return get


def _zone(spec: Any, ctx: Context, where: str) -> tzinfo:
    if spec in (None, "source"):
        return ctx.timezone
    if spec == "receipt":
        return ctx.receipt_timezone
    try:
        return ZoneInfo(str(spec))
    except (ZoneInfoNotFoundError, ValueError):
        raise ctx.error(where, f"source, receipt or an IANA zone name, got {spec!r}") from None


MODIFIERS = (
    "str",
    "int",
    "strip",
    "lower",
    "upper",
    "omit",
    "map",
    "default",
    "time",
    "tz",
    "phone",
    "prefix",
)
SOURCES = ("field", "const", "template", "fn", "args", "first")


def compile_value(spec: Any, ctx: Context, where: str) -> Getter:
    """Turn one value spec into a getter `fields -> value | None`."""
    if isinstance(spec, str):
        if spec.startswith("$$"):
            const = spec[1:]
            return lambda f: const
        if spec.startswith("$"):
            return compile_path(spec[1:])
        return lambda f: spec
    if isinstance(spec, bool | int | float):
        return lambda f: spec
    if not isinstance(spec, Mapping):
        raise ctx.error(where, f"a value spec: '$field', a constant, or a mapping; got {spec!r}")
    unknown = [k for k in spec if k not in MODIFIERS and k not in SOURCES]
    if unknown:
        raise ctx.error(f"{where}.{unknown[0]}", f"one of {', '.join(SOURCES + MODIFIERS)}")
    chosen = [k for k in ("field", "const", "template", "fn", "first") if k in spec]
    if len(chosen) != 1:
        raise ctx.error(where, "exactly one of field, const, template, fn or first")
    kind = chosen[0]
    get: Getter
    if kind == "field":
        get = compile_path(str(spec["field"]))
    elif kind == "const":
        const = spec["const"]
        get = lambda f: const  # noqa: E731
    elif kind == "template":
        get = _template(str(spec["template"]), ctx, f"{where}.template")
    elif kind == "first":
        options = spec["first"]
        if not isinstance(options, list) or not options:
            raise ctx.error(f"{where}.first", "a non-empty list of value specs")
        getters = [compile_value(o, ctx, f"{where}.first[{i}]") for i, o in enumerate(options)]

        def get(f: Any) -> Any:
            for g in getters:
                value = g(f)
                if value is not None and value != "":
                    return value
            return None
    else:
        name = spec["fn"]
        func = FUNCTIONS.get(name)
        if func is None:
            raise ctx.error(f"{where}.fn", f"one of {', '.join(sorted(FUNCTIONS))}, got {name!r}")
        raw_args = spec.get("args", [])
        if not isinstance(raw_args, list):
            raise ctx.error(f"{where}.args", "a list of value specs")
        args = [compile_value(a, ctx, f"{where}.args[{i}]") for i, a in enumerate(raw_args)]
        if len(args) == 1:  # fixed arities without a generator per call: this is the per-line path
            (a0,) = args
            get = lambda f: func(a0(f))  # noqa: E731
        elif len(args) == 2:
            a0, a1 = args
            get = lambda f: func(a0(f), a1(f))  # noqa: E731
        else:
            get = lambda f: func(*[a(f) for a in args])  # noqa: E731
    return _with_modifiers(get, spec, ctx, where)


def _with_modifiers(get: Getter, spec: Mapping[str, Any], ctx: Context, where: str) -> Getter:
    steps: list[Callable[[Any], Any]] = []
    if spec.get("str"):
        steps.append(_to_str)
    if spec.get("int"):

        def to_int(v: Any) -> int | None:
            if isinstance(v, bool):  # JSON true is not a count
                return None
            try:
                return int(v)
            except (TypeError, ValueError):
                return None

        steps.append(to_int)
    if spec.get("strip"):
        steps.append(lambda v: v.strip() if isinstance(v, str) else v)
    if spec.get("lower"):
        steps.append(lambda v: v.lower() if isinstance(v, str) else v)
    if spec.get("upper"):
        steps.append(lambda v: v.upper() if isinstance(v, str) else v)
    if "omit" in spec:
        omit = spec["omit"] if isinstance(spec["omit"], list) else [spec["omit"]]
        omitted = frozenset(str(o) for o in omit)
        steps.append(lambda v: None if str(v) in omitted else v)
    if "map" in spec:
        table = spec["map"]
        if not isinstance(table, Mapping):
            raise ctx.error(f"{where}.map", "a mapping of source value -> record value")
        lookup = {str(k): v for k, v in table.items()}
        if "default" in spec:
            default = spec["default"]
            steps.append(lambda v: lookup.get(str(v), default) if v is not None else None)
        else:
            steps.append(lambda v: lookup.get(str(v), v) if v is not None else None)
    if "time" in spec:
        fmt = str(spec["time"])
        parser = tf.TimeParser(fmt, _zone(spec.get("tz"), ctx, f"{where}.tz"))
        steps.append(lambda v: parser(v) if v is not None else None)
    if spec.get("phone"):
        country = ctx.default_country
        # to_e164 takes str or int and returns None for anything else (a JSON object is no number)
        steps.append(lambda v: tf.to_e164(v, country) if v is not None else None)
    if "prefix" in spec:
        prefix = str(spec["prefix"])
        steps.append(lambda v: prefix + str(v) if v is not None and v != "" else None)
    if not steps:
        return get
    if len(steps) == 1:
        step = steps[0]

        def one(f: Any) -> Any:
            v = get(f)
            return None if v is None or v == "" else step(v)

        return one

    def chain(f: Any) -> Any:
        v = get(f)
        for step in steps:
            if v is None or v == "":
                return None
            v = step(v)
        return v

    return chain


def compile_mapping(spec: Any, ctx: Context, where: str) -> Callable[[Any], dict[str, Any]]:
    """A builder `fields -> record` that leaves out every field whose value is unknown."""
    if not isinstance(spec, Mapping) or not spec:
        raise ctx.error(where, "a mapping of Volt field -> value spec")
    from agent.record import ALL_FIELDS

    consts: dict[str, Any] = {}
    plain: list[tuple[str, str]] = []
    items: list[tuple[str, Getter]] = []
    for name, value_spec in spec.items():
        if name not in ALL_FIELDS:
            raise ctx.error(f"{where}.{name}", f"a Volt record field: {', '.join(sorted(ALL_FIELDS))}")
        if value_spec is None:  # `field: null` leaves out a field inherited through a YAML merge (<<: *other)
            continue
        get = compile_value(value_spec, ctx, f"{where}.{name}")  # checks the spec even when it is simple
        kind, value = _simple(value_spec)
        if kind == "const":
            if value is not None and value != "":
                consts[name] = value
        elif kind == "key":
            plain.append((name, value))
        else:
            items.append((name, get))
    # Constants are set once per record by copying, plain keys are read without a call: on the hot path
    # only the fields that really compute something cost a function call.
    frozen_plain = tuple(plain)
    frozen = tuple(items)

    def build(fields: dict[str, Any]) -> dict[str, Any]:
        record = consts.copy()
        for name, key in frozen_plain:
            value = fields.get(key)
            if value is not None and value != "":
                record[name] = value
        for name, get in frozen:
            value = get(fields)
            if value is not None and value != "":
                record[name] = value
        return record

    return build


def _simple(spec: Any) -> tuple[str, Any]:
    """("const", value) / ("key", name) for specs that need no call per line, else ("other", None)."""
    if isinstance(spec, str):
        if spec.startswith("$$"):
            return "const", spec[1:]
        if spec.startswith("$"):
            key = spec[1:]
            return ("key", key) if _PLAIN_KEY.fullmatch(key) else ("other", None)
        return "const", spec
    if isinstance(spec, bool | int | float):
        return "const", spec
    if isinstance(spec, Mapping) and set(spec) == {"const"}:
        return "const", spec["const"]
    if isinstance(spec, Mapping) and set(spec) == {"field"} and _PLAIN_KEY.fullmatch(str(spec["field"])):
        return "key", str(spec["field"])
    return "other", None
