"""Compiles a mapping spec (Volt field -> where its value comes from) into Python functions, once per source.

The fields are a dict (a JSON object, or a regex match with derived fields) or, for a regex rule without
`derive`, the re.Match itself: the generated code reads only the groups it needs.

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
    # Set for a regex rule without `derive`: the fields are then the re.Match itself (these are its group
    # names), read with m["name"] only where needed, instead of building a dict of every group per line.
    groups: frozenset[str] | None = None

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


def _path_parts(path: str) -> list[str | int]:
    return [int(index) if index else name for name, index in _PATH_PART.findall(path)] or [path]


def member(value: Any, allowed: frozenset[Any] | dict[Any, Any]) -> bool:
    try:
        return value in allowed
    except TypeError:  # a list or object from JSON input is never one of the allowed values
        return False


def compile_condition(spec: Any, ctx: Context, where: str) -> Callable[[Any], bool]:
    """A `when:` compiled to one function `fields -> bool`."""
    gen = _Codegen(ctx)
    expr = gen.condition(spec, where)
    return gen.function(f"def when(f):\n    return {expr}\n", "when")


def compile_path(path: str) -> Getter:
    """A getter for a dotted path; a plain key (the common case) is a single dict lookup."""
    parts = _path_parts(path)
    if len(parts) == 1 and isinstance(parts[0], str):
        key = parts[0]
        return lambda f: f.get(key)  # top-level fields here are a dict (a JSON object or derived fields)

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


class _Codegen:
    """Turns value specs into Python expressions over `f` (the parsed fields), compiled once per mapping.

    A mapping becomes one function whose body computes each field inline: no closure call per field or
    per modifier on the hot path, only the real work (a dict lookup, a transform). Values the generated
    code needs (constants, transforms, lookup tables) are passed in its namespace, never written as text.
    """

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.ns: dict[str, Any] = {
            "_to_str": _to_str, "_to_int": _to_int, "_e164": tf.to_e164, "_e164_str": tf.e164_str, "member": member,
        }
        self._n = 0

    def bind(self, prefix: str, value: Any) -> str:
        self._n += 1
        name = f"_{prefix}{self._n}"
        self.ns[name] = value
        return name

    def temp(self) -> str:
        self._n += 1
        return f"_t{self._n}"

    def path(self, path: str) -> str:
        """Inline lookups: `f.get('a')`, then for each further part a guarded step into a dict or list."""
        parts = _path_parts(path)
        first = parts[0]
        if not isinstance(first, str):
            expr = "None"
        elif self.ctx.groups is None:
            expr = f"f.get({first!r})"
        else:  # a group the regex does not have (a preset shared by layouts) is simply unknown
            expr = f"f[{first!r}]" if first in self.ctx.groups else "None"
        for part in parts[1:]:
            t = self.temp()
            if isinstance(part, int):
                expr = f"({t}[{part}] if ({t} := {expr}).__class__ is list and len({t}) > {part} else None)"
            else:
                expr = f"({t}.get({part!r}) if ({t} := {expr}).__class__ is dict else None)"
        return expr

    def template(self, text: str, where: str) -> str:
        """"kannel-{smsc}-{fid}": the pieces joined, or None when any field in it is unknown. A list or
        object is unknown too (its Python repr in an id would be wrong)."""
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise self.ctx.error(where, f"a template like 'kannel-{{smsc}}-{{fid}}': {exc}") from None
        pieces: list[str] = []
        checks: list[str] = []
        for literal, name, _spec, _conv in parsed:
            if literal:
                pieces.append(self.bind("c", literal))
            if name:
                t = self.temp()
                checks.append(f"({t} := _to_str({self.path(name)}))")
                pieces.append(t)
        joined = f"''.join(({', '.join(pieces)},))"
        return f"({joined} if {' and '.join(checks)} else None)" if checks else joined

    def condition(self, spec: Any, where: str) -> str:
        """A `when:` as one boolean expression: {field: path, equals|in|exists|prefix|matches}; a list = all."""
        ctx = self.ctx
        specs = spec if isinstance(spec, list) else [spec]
        checks: list[str] = []
        for i, c in enumerate(specs):
            w = f"{where}[{i}]" if isinstance(spec, list) else where
            if not isinstance(c, Mapping) or "field" not in c:
                raise ctx.error(w, "a condition {field: path, equals|in|exists|prefix|matches: value}")
            value = self.path(str(c["field"]))
            t = self.temp()
            if "equals" in c:
                checks.append(f"{value} == {self.bind('c', c['equals'])}")
            elif "in" in c:
                if not isinstance(c["in"], list):
                    raise ctx.error(f"{w}.in", "a list of values")
                allowed = frozenset(v for v in c["in"] if isinstance(v, str | int | float | bool))
                checks.append(f"member({value}, {self.bind('c', allowed)})")
            elif "exists" in c:
                known = f"(({t} := {value}) is not None and {t} != '' and {t} != [] and {t} != {{}})"
                checks.append(known if c["exists"] else f"not {known}")
            elif "prefix" in c:
                prefix = self.bind("c", str(c["prefix"]))
                checks.append(f"(({t} := {value}).__class__ is str and {t}.startswith({prefix}))")
            elif "matches" in c:
                try:
                    rx = re.compile(str(c["matches"]))
                except re.error as exc:
                    raise ctx.error(f"{w}.matches", f"a valid regular expression: {exc}") from None
                pattern = self.bind("rx", rx)
                checks.append(f"(({t} := {value}).__class__ is str and {pattern}.search({t}) is not None)")
            else:
                raise ctx.error(w, "one of equals, in, exists, prefix, matches")
        return " and ".join(f"({c})" for c in checks)

    def value(self, spec: Any, where: str) -> str:
        ctx = self.ctx
        if isinstance(spec, str):
            if spec.startswith("$$"):
                return self.bind("c", spec[1:])
            if spec.startswith("$"):
                return self.path(spec[1:])
            return self.bind("c", spec)
        if isinstance(spec, bool | int | float):
            return self.bind("c", spec)
        if not isinstance(spec, Mapping):
            raise ctx.error(where, f"a value spec: '$field', a constant, or a mapping; got {spec!r}")
        unknown = [k for k in spec if k not in MODIFIERS and k not in SOURCES]
        if unknown:
            raise ctx.error(f"{where}.{unknown[0]}", f"one of {', '.join(SOURCES + MODIFIERS)}")
        chosen = [k for k in ("field", "const", "template", "fn", "first") if k in spec]
        if len(chosen) != 1:
            raise ctx.error(where, "exactly one of field, const, template, fn or first")
        kind = chosen[0]
        if kind == "field":
            base = self.path(str(spec["field"]))
        elif kind == "const":
            base = self.bind("c", spec["const"])
        elif kind == "template":
            base = self.template(str(spec["template"]), f"{where}.template")
        elif kind == "first":
            options = spec["first"]
            if not isinstance(options, list) or not options:
                raise ctx.error(f"{where}.first", "a non-empty list of value specs")
            base = "None"
            for i in reversed(range(len(options))):
                option = self.value(options[i], f"{where}.first[{i}]")
                t = self.temp()
                base = f"({t} if ({t} := {option}) is not None and {t} != '' else {base})"
        else:
            name = spec["fn"]
            func = FUNCTIONS.get(name)
            if func is None:
                raise ctx.error(f"{where}.fn", f"one of {', '.join(sorted(FUNCTIONS))}, got {name!r}")
            raw_args = spec.get("args", [])
            if not isinstance(raw_args, list):
                raise ctx.error(f"{where}.args", "a list of value specs")
            args = [self.value(a, f"{where}.args[{i}]") for i, a in enumerate(raw_args)]
            base = f"{self.bind('f', func)}({', '.join(args)})"
        for step in self.steps(spec, where):
            t = self.temp()
            base = f"(None if ({t} := {base}) is None or {t} == '' else {step(t)})"
        return base

    def steps(self, spec: Mapping[str, Any], where: str) -> list[Callable[[str], str]]:
        """Each modifier as a function from a variable name to the expression applying it."""
        ctx = self.ctx
        steps: list[Callable[[str], str]] = []
        if spec.get("str"):
            steps.append(lambda v: f"_to_str({v})")
        if spec.get("int"):
            steps.append(lambda v: f"_to_int({v})")
        for case in ("strip", "lower", "upper"):
            if spec.get(case):
                steps.append(lambda v, c=case: f"({v}.{c}() if isinstance({v}, str) else {v})")
        if "omit" in spec:
            omit = spec["omit"] if isinstance(spec["omit"], list) else [spec["omit"]]
            o = self.bind("o", frozenset(str(x) for x in omit))
            steps.append(lambda v: f"(None if ({v} if {v}.__class__ is str else str({v})) in {o} else {v})")
        if "map" in spec:
            table = spec["map"]
            if not isinstance(table, Mapping):
                raise ctx.error(f"{where}.map", "a mapping of source value -> record value")
            m = self.bind("m", {str(k): v for k, v in table.items()})
            d = self.bind("c", spec["default"]) if "default" in spec else None
            steps.append(lambda v: f"{m}.get({v} if {v}.__class__ is str else str({v}), {d or v})")
        if "time" in spec:
            parser = tf.TimeParser(str(spec["time"]), _zone(spec.get("tz"), ctx, f"{where}.tz"))
            p = self.bind("time", parser)
            steps.append(lambda v: f"{p}({v})")
        if spec.get("phone"):
            # to_e164 takes str or int and returns None for anything else (a JSON object is no number);
            # a str goes straight to its cached core, the common case on every line
            country = self.bind("c", ctx.default_country)
            steps.append(lambda v: f"(_e164_str({v}, {country}) if {v}.__class__ is str else _e164({v}, {country}))")
        if "prefix" in spec:
            pre = self.bind("c", str(spec["prefix"]))
            steps.append(lambda v: f"({pre} + str({v}))")
        return steps

    def function(self, source: str, name: str) -> Callable[..., Any]:
        code = compile(source, f"<mapping {name}>", "exec")
        exec(code, self.ns)
        return self.ns[name]


def _to_int(v: Any) -> int | None:
    if isinstance(v, bool):  # JSON true is not a count
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def compile_value(spec: Any, ctx: Context, where: str) -> Getter:
    """Turn one value spec into a getter `fields -> value | None`."""
    gen = _Codegen(ctx)
    expr = gen.value(spec, where)
    return gen.function(f"def get(f):\n    return {expr}\n", "get")


def compile_mapping(spec: Any, ctx: Context, where: str) -> Callable[[Any], dict[str, Any]]:
    """A builder `fields -> record` that leaves out every field whose value is unknown."""
    if not isinstance(spec, Mapping) or not spec:
        raise ctx.error(where, "a mapping of Volt field -> value spec")
    from agent.record import ALL_FIELDS

    gen = _Codegen(ctx)
    consts: dict[str, Any] = {}
    lines = ["def build(f):", "    r = _consts.copy()"]
    for name, value_spec in spec.items():
        if name not in ALL_FIELDS:
            raise ctx.error(f"{where}.{name}", f"a Volt record field: {', '.join(sorted(ALL_FIELDS))}")
        if value_spec is None:  # `field: null` leaves out a field inherited through a YAML merge (<<: *other)
            continue
        expr = gen.value(value_spec, f"{where}.{name}")
        is_constant, constant = _constant(value_spec)
        if is_constant:
            if constant is not None and constant != "":
                consts[name] = constant  # set once per record by copying, not computed per line
            continue
        lines.append(f"    v = {expr}")
        lines.append(f"    if v is not None and v != '': r[{name!r}] = v")
    lines.append("    return r")
    gen.ns["_consts"] = consts
    return gen.function("\n".join(lines) + "\n", "build")


def _constant(spec: Any) -> tuple[bool, Any]:
    """(True, value) for a spec that is the same on every line: a literal, "$$text" or {const: v}."""
    if isinstance(spec, Mapping):
        return (True, spec["const"]) if set(spec) == {"const"} else (False, None)
    if isinstance(spec, str):
        if spec.startswith("$$"):
            return True, spec[1:]
        return (False, None) if spec.startswith("$") else (True, spec)
    return True, spec
