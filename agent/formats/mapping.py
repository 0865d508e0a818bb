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
  default: (a constant; without it an unmapped value is kept as it is, with `default: null` it is dropped),
  time: strptime format | iso | epoch | epoch_ms | smpp, tz: source | receipt | Zone/Name,
  phone: true (E.164 with the source's default_country) or phone: US (a format whose numbers are always
  national numbers of one country: CDYNE's and Commio's 10-digit NANP), prefix: "x".
Every getter returns None for "unknown", so the record builder leaves the field out (invariant 2).

The compiler also knows what type each expression yields (a regex group is text, a `time:` value is an ISO
date with an offset, kannel_segments a positive count, a JSON field anything). A built record is checked
against the contract only where a value's type is not known in advance, and constants are checked once,
when the config is loaded: a mapping that can only produce valid records pays nothing per line for it.
"""

from __future__ import annotations

import inspect
import re
import string
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import tzinfo
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agent.config import ConfigError
from agent.formats import transforms as tf
from agent.record import ALL_FIELDS, DATE_FIELDS, INT_FIELDS, InvalidRecord, field_problem, problem

Getter = Callable[[Any], Any]
_HEX = re.compile(r"[0-9A-Fa-f]{1,32}")  # an error code; a longer run is not one (and str() of a huge int raises)
_PLAIN_KEY = re.compile(r"[^.\[\]]+")
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")

# What an expression is known to yield besides None and "" (which the record builder leaves out):
ANY = "any"  # anything (JSON input): checked against the contract per record
TEXT = "text"  # a str
DATE = "date"  # an ISO 8601 date-time string with its UTC offset (what TimeParser returns)
COUNT = "count"  # an int >= 1
TEXT_MAP = "text_map"  # a dict of str -> str (a parsed receipt): its fields are TEXT
NONE = "none"  # always None


def _join(a: str, b: str) -> str:
    """The kind of a value that is either of two kinds (`first`, `map` with a default)."""
    if a == b or b == NONE:
        return a
    if a == NONE:
        return b
    return TEXT if {a, b} == {TEXT, DATE} else ANY


def _kind_of(value: Any) -> str:
    """The kind of a constant."""
    if value is None:
        return NONE
    if isinstance(value, str):
        return TEXT
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return COUNT
    return ANY


class Expr(NamedTuple):
    """Generated Python code over `f`, and the kind of value it yields."""

    code: str
    kind: str


_UNKNOWN = Expr("None", NONE)


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
    # The groups are a CSV's columns, named in the config: a name not among them is a mistake, not a group that
    # a regex shared by several layouts lacks.
    columns: bool = False

    def error(self, where: str, expected: str) -> ConfigError:
        return ConfigError(self.file, where, expected)


def _guarded(fn: Callable[..., Any], test: str) -> Callable[..., Any]:
    """`fn` for values its first argument can be: None (unknown) unless that argument passes `test`, which is written
    over {a} (its first use) and {t} (later uses). A compiled mapping writes the test inline and calls `fn` itself
    (one Python call less per line); anywhere else the function made here tests and calls."""
    ns: dict[str, Any] = {"fn": fn}
    exec(f"def guarded(v, *rest):\n    return fn(v, *rest) if {test.format(a='v', t='v')} else None\n", ns)
    guarded = ns["guarded"]
    guarded.__signature__ = inspect.signature(fn)  # the arguments a spec must give
    guarded.inline = fn, test
    return guarded  # type: ignore[no-any-return]


def _stable_id(prefix: Any, *parts: Any) -> str:
    return tf.stable_id(str(prefix), *("" if p is None else str(p) for p in parts))


def _split(value: Any, sep: Any, index: Any, maxsplit: Any = -1) -> Any:
    """Piece `index` of `value` split on `sep`; `maxsplit` keeps a last piece whole ("NACK/0x0b/a/b", "/", 2, 2)."""
    if not isinstance(value, str) or sep is None or sep == "":
        return None
    try:
        pieces = value.split(str(sep), int(maxsplit))
        i = int(index)
    except (TypeError, ValueError):  # a separator or index read from the line that is not one
        return None
    return pieces[i] if -len(pieces) <= i < len(pieces) else None


def _length(value: Any) -> int | None:
    return len(value) if isinstance(value, list | tuple | str) else None


def _pick(items: Any, key: Any, value: Any, field: Any) -> Any:
    """`field` of the first object in the list `items` whose `key` is `value`: the entry a list marks as the one
    an event is about (RingCentral's to[] entry with target: true), which no fixed index finds."""
    if not isinstance(items, list):
        return None
    for item in items:
        if isinstance(item, dict) and _same(item.get(key), value):
            return item.get(field)
    return None


def _contains(items: Any, pairs: tuple[tuple[str, Any], ...]) -> bool:
    """The `contains:` condition: `items` is a list holding an object with every key: value of `pairs`."""
    return isinstance(items, list) and any(
        isinstance(item, dict) and all(_same(item.get(k), v) for k, v in pairs) for item in items)


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same type: JSON `1` is not `true`."""
    return type(a) is type(b) and a == b


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
    "receipt": _guarded(tf.parse_receipt, "isinstance({a}, str) and {t}"),
    "stable_id": _stable_id,
    "split": _split,
    "length": _length,
    "pick": _pick,
    "kannel_text": tf.kannel_text,  # None for a missing text; takes any coding
    "kannel_segments": _guarded(tf.kannel_segments, "{a} is not None"),
    "segments": _guarded(tf.segment_count, "isinstance({a}, str)"),
    "py_literal": lambda v: tf.py_literal(v) if isinstance(v, str) else v,
    "jasmin_text": lambda v: (
        (tf.jasmin_text(tf.py_literal(v) if isinstance(v, str) else v) or None) if isinstance(v, str | bytes) and v
        else None
    ),
    "jasmin_msgid": _guarded(tf.jasmin_msgid, "isinstance({a}, str) and {t}"),
    "mime_text": tf.mime_text,
    "esme_status": _guarded(tf.esme_status, "isinstance({a}, str) and {t}"),
    "smpp_state": _guarded(tf.smpp_state_name, "isinstance({a}, str)"),  # DELIVRD, Delivered, 2
    "hex_to_int": lambda v: str(int(v, 16)) if isinstance(v, str) and _HEX.fullmatch(v) else None,
}
# What each function returns (besides None); a function not named here may return anything.
RESULT_KINDS: dict[str, str] = {
    "receipt": TEXT_MAP, "stable_id": TEXT, "split": TEXT, "kannel_text": TEXT, "kannel_segments": COUNT,
    "segments": COUNT, "jasmin_text": TEXT, "jasmin_msgid": TEXT, "esme_status": TEXT, "smpp_state": TEXT,
    "hex_to_int": TEXT, "mime_text": TEXT,
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
    return gen.function(f"def when(f):\n    return {expr}\n", "when", where)


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
_FLAGS = ("str", "int", "strip", "lower", "upper", "phone")  # modifiers that are true/false
# A str number already in E.164 is its own result: three C calls instead of the cache's key, lookup and bookkeeping
# (and instead of the full reading when the cache no longer holds it: numbers of many recipients). The value is a
# non-empty str here: [0] needs no slice, and isascii (a flag) goes before the digit scan.
_E164_AS_WRITTEN = "({t} if {t}[0] == '+' and {t}.isascii() and {t}[1:].isdigit() else {core})"
_KNOWN = (TEXT, DATE, COUNT)  # kinds whose only false values are None and "": `if v:` is the whole test


class _Codegen:
    """Turns value specs into Python expressions over `f` (the parsed fields), compiled once per mapping.

    A mapping becomes one function whose body computes each field inline: no closure call per field or
    per modifier on the hot path, only the real work (a dict lookup, a transform). Values the generated
    code needs (constants, transforms, lookup tables) are passed in its namespace, never written as text.
    Derived fields (a rule's `derive:`) are local variables of that function, computed once per line.
    """

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.ns: dict[str, Any] = {
            "_to_str": _to_str, "_to_int": _to_int, "_e164": tf.to_e164, "_e164_str": tf.e164_str, "member": member,
            "_Invalid": InvalidRecord, "_field_problem": field_problem, "_problem": problem,
        }
        self.derived: dict[str, Expr] = {}  # derived field name -> its local variable and kind
        self.repeated: frozenset[tuple[str, str]] = frozenset()  # keys of specs the function reads more than once
        self.shared: dict[tuple[str, str], Expr] = {}  # such a spec's key -> the local holding its value
        self._n = 0

    def bind(self, prefix: str, value: Any) -> str:
        self._n += 1
        name = f"_{prefix}{self._n}"
        self.ns[name] = value
        return name

    def temp(self) -> str:
        self._n += 1
        return f"_t{self._n}"

    def path(self, path: str, where: str) -> Expr:
        """Inline lookups: `f.get('a')`, then for each further part a guarded step into a dict or list."""
        parts = _path_parts(path)
        first = parts[0]
        kind = ANY
        if not isinstance(first, str):
            return _UNKNOWN
        if first in self.derived:
            expr, kind = self.derived[first]
        elif self.ctx.groups is None:
            expr = f"f.get({first!r})"
        elif first in self.ctx.groups:
            expr, kind = f"f[{first!r}]", TEXT  # a regex group: text or None
        elif self.ctx.columns:
            raise self.ctx.error(where, f"a column of this source ({', '.join(sorted(self.ctx.groups))}) or a "
                                        f"derived field; got {first!r}")
        else:  # a group the regex does not have (a preset shared by layouts) is simply unknown
            return _UNKNOWN
        for part in parts[1:]:
            t = self.temp()
            if isinstance(part, int):
                expr = f"({t}[{part}] if ({t} := {expr}).__class__ is list and len({t}) > {part} else None)"
            else:
                expr = f"({t}.get({part!r}) if ({t} := {expr}).__class__ is dict else None)"
            kind = TEXT if kind == TEXT_MAP and isinstance(part, str) else ANY
        return Expr(expr, kind)

    def template(self, text: str, where: str) -> Expr:
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
            if name == "":
                raise self.ctx.error(where, "named fields in the template, like {smsc}; got {}")
            if name:
                field = self.path(name, where)
                if field.kind == NONE:
                    return _UNKNOWN
                t = self.temp()
                checks.append(f"({t} := {field.code if field.kind == TEXT else f'_to_str({field.code})'})")
                pieces.append(t)
        if not pieces:
            raise self.ctx.error(where, "a template with text or {fields}, like 'kannel-{smsc}-{fid}'")
        joined = f"''.join(({', '.join(pieces)},))"
        return Expr(f"({joined} if {' and '.join(checks)} else None)" if checks else joined, TEXT)

    def condition(self, spec: Any, where: str) -> str:
        """A `when:` as one boolean expression: {field: path, equals|in|exists|contains|prefix|matches};
        a list = all."""
        ctx = self.ctx
        specs = spec if isinstance(spec, list) else [spec]
        if not specs:
            raise ctx.error(where, "at least one condition "
                                   "{field: path, equals|in|exists|contains|prefix|matches: value}")
        checks: list[str] = []
        for i, c in enumerate(specs):
            w = f"{where}[{i}]" if isinstance(spec, list) else where
            if not isinstance(c, Mapping) or "field" not in c:
                raise ctx.error(w, "a condition {field: path, equals|in|exists|contains|prefix|matches: value}")
            field = self.path(str(c["field"]), f"{w}.field")
            value = field.code
            t = self.temp()
            if "equals" in c:
                checks.append(f"{value} == {self.bind('c', c['equals'])}")
            elif "in" in c:
                if not isinstance(c["in"], list):
                    raise ctx.error(f"{w}.in", "a list of values")
                allowed = frozenset(v for v in c["in"] if isinstance(v, str | int | float | bool))
                # text (a regex group) is always hashable; a JSON value may be a list, which member() refuses
                test = "{} in {}" if field.kind == TEXT else "member({}, {})"
                checks.append(test.format(value, self.bind("c", allowed)))
            elif "exists" in c:
                known = f"(({t} := {value}) is not None and {t} != '' and {t} != [] and {t} != {{}})"
                checks.append(known if c["exists"] else f"not {known}")
            elif "contains" in c:
                want = c["contains"]
                if not isinstance(want, Mapping) or not want:
                    raise ctx.error(f"{w}.contains", "an object of key: value, like {type: MmsAttachment}")
                pairs = self.bind("c", tuple((str(k), v) for k, v in want.items()))
                checks.append(f"{self.bind('f', _contains)}({value}, {pairs})")
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
                raise ctx.error(w, "one of equals, in, exists, contains, prefix, matches")
        return " and ".join(f"({c})" for c in checks)

    def value(self, spec: Any, where: str, always: bool = True) -> Expr:
        """The expression of one value spec. `always`: the code runs whenever the statement holding it runs
        (not behind a `first` option that may already have given a value)."""
        key = _spec_key(spec)
        shared = dict(self.shared)
        if key is None:
            expr = self._value(spec, where, always)
        else:
            expr = self.once(key, always, lambda: self._value(spec, where, always))
        if expr.kind == NONE:  # never emitted (a field or `first` option that is always unknown): nor its locals
            self.shared = shared
        return expr

    def once(self, key: tuple[str, str], always: bool, make: Callable[[], Expr]) -> Expr:
        """Common subexpressions: a spec the function reads more than once (the line time for created and sent,
        through a YAML anchor) is computed where it is first sure to run and kept in a local, which every
        expression generated after it reads. Specs are pure, so the record is the same, with one call less."""
        known = self.shared.get(key)
        if known is not None:
            return known
        expr = make()
        if not always or key not in self.repeated or expr.kind == NONE:
            return expr
        local = self.temp()
        self.shared[key] = Expr(local, expr.kind)
        return Expr(f"({local} := {expr.code})", expr.kind)

    def _value(self, spec: Any, where: str, always: bool) -> Expr:
        ctx = self.ctx
        if isinstance(spec, str):
            if spec.startswith("$$"):
                return self.constant(spec[1:])
            if spec.startswith("$"):
                return self.path(spec[1:], where)
            return self.constant(spec)
        if isinstance(spec, bool | int | float):
            return self.constant(spec)
        if not isinstance(spec, Mapping):
            raise ctx.error(where, f"a value spec: '$field', a constant, or a mapping; got {spec!r}")
        unknown = [k for k in spec if k not in MODIFIERS and k not in SOURCES]
        if unknown:
            raise ctx.error(f"{where}.{unknown[0]}", f"one of {', '.join(SOURCES + MODIFIERS)}")
        for needs, needed in (("tz", "time"), ("default", "map")):
            if needs in spec and needed not in spec:
                raise ctx.error(f"{where}.{needs}", f"`{needs}:` only together with `{needed}:`")
        chosen = [k for k in ("field", "const", "template", "fn", "first") if k in spec]
        if len(chosen) != 1:
            raise ctx.error(where, "exactly one of field, const, template, fn or first")
        kind = chosen[0]
        if kind == "field":
            path = str(spec["field"])
            base = self.once(("path", path), always, lambda: self.path(path, f"{where}.field"))
        elif kind == "const":
            base = self.constant(spec["const"])
        elif kind == "template":
            base = self.template(str(spec["template"]), f"{where}.template")
        elif kind == "first":
            options = spec["first"]
            if not isinstance(options, list) or not options:
                raise ctx.error(f"{where}.first", "a non-empty list of value specs")
            # generated in the order they run: only the first option that can give a value always runs
            generated = []
            for i, option_spec in enumerate(options):
                generated.append(self.value(option_spec, f"{where}.first[{i}]",
                                            always and all(o.kind == NONE for o in generated)))
            base = _UNKNOWN
            for option in reversed(generated):
                if option.kind == NONE:
                    continue
                if option.kind in _KNOWN:
                    code = f"({option.code} or {base.code})"
                else:
                    t = self.temp()
                    code = f"({t} if ({t} := {option.code}) is not None and {t} != '' else {base.code})"
                base = Expr(code, _join(option.kind, base.kind))
        else:
            name = spec["fn"]
            func = FUNCTIONS.get(name) if isinstance(name, str) else None
            if func is None:
                raise ctx.error(f"{where}.fn", f"one of {', '.join(sorted(FUNCTIONS))}, got {name!r}")
            raw_args = spec.get("args", [])
            if not isinstance(raw_args, list):
                raise ctx.error(f"{where}.args", "a list of value specs")
            try:
                inspect.signature(func).bind(*raw_args)
            except TypeError:
                params = ", ".join(inspect.signature(func).parameters)
                raise ctx.error(f"{where}.args", f"the arguments of {name}: [{params}]") from None
            inline = getattr(func, "inline", None)
            if any(isinstance(a, Mapping | list) for a in raw_args[1:]):
                inline = None  # the test inline only where skipping the other arguments cannot skip an error
            # behind an inline test, only the first argument always runs
            args = [self.value(a, f"{where}.args[{i}]", always and (i == 0 or inline is None)).code
                    for i, a in enumerate(raw_args)]
            if inline is not None:
                fn, test = inline
                t = self.temp()
                call = f"{self.bind('f', fn)}({', '.join([t, *args[1:]])})"
                guard = test.format(a=f"({t} := {args[0]})", t=t)
                base = Expr(f"({call} if {guard} else None)", RESULT_KINDS.get(name, ANY))
            else:
                base = Expr(f"{self.bind('f', func)}({', '.join(args)})", RESULT_KINDS.get(name, ANY))
        return base if base.kind == NONE else self.modifiers(base, spec, where)

    def constant(self, value: Any) -> Expr:
        return _UNKNOWN if value is None else Expr(self.bind("c", value), _kind_of(value))

    def modifiers(self, base: Expr, spec: Mapping[str, Any], where: str) -> Expr:
        """Apply the spec's modifiers in order; each sees a known value (not None, not "")."""
        ctx = self.ctx
        for step in MODIFIERS:
            if step not in spec or step in ("default", "tz") or (step in _FLAGS and not spec[step]):
                continue
            t = self.temp()
            text = base.kind in (TEXT, DATE)  # known to be a str here
            if step == "str":
                code, kind = (t, base.kind) if text else (f"_to_str({t})", TEXT)
            elif step == "int":
                code, kind = f"_to_int({t})", ANY  # 0 and negative numbers are ints too
            elif step in ("strip", "lower", "upper"):
                code = f"{t}.{step}()" if text else f"({t}.{step}() if isinstance({t}, str) else {t})"
                kind = TEXT if text else ANY
            elif step == "omit":
                omit = spec["omit"] if isinstance(spec["omit"], list) else [spec["omit"]]
                o = self.bind("o", frozenset(str(x) for x in omit))
                key = t if text else f"({t} if {t}.__class__ is str else str({t}))"
                code, kind = f"(None if {key} in {o} else {t})", base.kind
            elif step == "map":
                table = spec["map"]
                if not isinstance(table, Mapping):
                    raise ctx.error(f"{where}.map", "a mapping of source value -> record value")
                m = self.bind("m", {str(k): v for k, v in table.items()})
                default = self.constant(spec["default"]) if "default" in spec else Expr(t, base.kind)
                key = t if text else f"({t} if {t}.__class__ is str else str({t}))"
                kind = default.kind
                for v in table.values():
                    kind = _join(kind, _kind_of(v))
                code = f"{m}.get({key}, {default.code})"
            elif step == "time":
                fmt = str(spec["time"])
                if not tf.valid_time_format(fmt):
                    raise ctx.error(f"{where}.time", "iso, epoch, epoch_ms, smpp or a strptime format such as "
                                                     f"'%Y-%m-%d %H:%M:%S'; got {fmt!r}")
                p = self.bind("time", _time_parser(fmt, _zone(spec.get("tz"), ctx, f"{where}.tz")).read)
                code, kind = f"{p}({t})", DATE
            elif step == "phone":
                # to_e164 takes str or int and returns None for anything else (a JSON object is no number);
                # a str goes straight to its cached core, the common case on every line, unless it is already
                # E.164 ("+" and ASCII digits), which the core would return unchanged
                c = self.bind("c", _phone_country(spec["phone"], ctx, f"{where}.phone"))
                core = _E164_AS_WRITTEN.format(t=t, core=f"_e164_str({t}, {c})")
                code = core if text else f"({core} if {t}.__class__ is str else _e164({t}, {c}))"
                kind = TEXT
            else:  # prefix: to text only (a list or object has no text to prefix)
                pre, u = self.bind("c", str(spec["prefix"])), self.temp()
                code = f"({pre} + {t})" if text else f"({pre} + {u} if ({u} := _to_str({t})) else None)"
                kind = TEXT
            guard = f"({t} := {base.code})" if base.kind in _KNOWN else (
                f"({t} := {base.code}) is not None and {t} != ''")
            base = Expr(f"({code} if {guard} else None)", kind)
        return base

    def derive(self, spec: Mapping[str, Any], where: str) -> list[str]:
        """Statements computing each derived field once, in order (a later one may use an earlier one)."""
        lines = []
        for name, value_spec in spec.items():
            expr = self.value(value_spec, f"{where}.{name}")
            local = self.temp()
            lines.append(f"    {local} = {expr.code}")
            self.derived[str(name)] = Expr(local, expr.kind)
            self.shared.clear()  # a path through `name` now reads the derived field, not the input's
        return lines

    def function(self, source: str, name: str, where: str) -> Callable[..., Any]:
        try:
            code = compile(source, f"<mapping {name}>", "exec")
        except (SyntaxError, RecursionError, MemoryError):  # Python's own limits on nesting
            raise self.ctx.error(where, "a less deeply nested spec (fewer `first` options or levels)") from None
        exec(code, self.ns)
        return self.ns[name]


def _phone_country(spec: Any, ctx: Context, where: str) -> str | None:
    """`phone: true` reads national numbers in the source's default_country; `phone: US` in that country."""
    if spec is True:
        return ctx.default_country
    if isinstance(spec, str) and spec.upper() in tf.COUNTRY_CALLING_CODES:
        return spec.upper()
    raise ctx.error(where, f"true, or an ISO 3166 two-letter country code such as US; got {spec!r}")


@lru_cache(maxsize=256)
def _time_parser(fmt: str, tz: tzinfo) -> tf.TimeParser:
    """One parser (and so one cache) per format and zone: the same log time read for two fields parses once."""
    return tf.TimeParser(fmt, tz)


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
    return gen.function(f"def get(f):\n    return {expr.code}\n", "get", where)


# The kind a record field needs for the contract to hold without a check per record.
_NEEDS = {name: DATE for name in DATE_FIELDS} | {name: COUNT for name in INT_FIELDS}


def _check(name: str, expr: Expr) -> str | None:
    """The statement checking one field against the contract, or None when its kind already guarantees it.

    It runs only for a value that is neither None nor "": for a text field any str is then fine, so only another
    type pays for the call (which says what is wrong with it)."""
    needed = _NEEDS.get(name, TEXT)
    if name == "provider" or (expr.kind != needed and not (needed == TEXT and expr.kind == DATE)):
        cheap = "v.__class__ is not str and " if needed == TEXT and name != "provider" else ""
        return f"if {cheap}(w := _field_problem({name!r}, v)) is not None: raise _Invalid(w)"
    return None


def compile_mapping(spec: Any, ctx: Context, where: str, derive: Mapping[str, Any] | None = None,
                    unchecked: tuple[str, ...] = ()) -> Callable[[Any], dict[str, Any]]:
    """A builder `fields -> record` that leaves out every field whose value is unknown and raises InvalidRecord
    for a record outside Volt's contract (checked only where the mapping cannot guarantee it). Fields in
    `unchecked` are the caller's to remove before the record goes anywhere (`body: drop`)."""
    if not isinstance(spec, Mapping) or not spec:
        raise ctx.error(where, "a mapping of Volt field -> value spec")
    gen = _Codegen(ctx)
    gen.repeated = _repeated([*(derive or {}).values(), *spec.values()])
    lines = ["def build(f):", *gen.derive(derive or {}, f"{where}.derive"), "    r = _consts.copy()"]
    consts: dict[str, Any] = {}
    for name, value_spec in spec.items():
        if name not in ALL_FIELDS:
            raise ctx.error(f"{where}.{name}", f"a Volt record field: {', '.join(sorted(ALL_FIELDS))}")
        if value_spec is None:  # `field: null` leaves out a field inherited through a YAML merge (<<: *other)
            continue
        expr = gen.value(value_spec, f"{where}.{name}")
        is_constant, constant = _constant(value_spec)
        if is_constant:
            if constant is not None and constant != "":
                reason = field_problem(name, constant)
                if reason is not None:
                    raise ctx.error(f"{where}.{name}", f"a value Volt accepts: {reason}")
                consts[name] = constant  # set once per record by copying, not computed per line
            continue
        if expr.kind == NONE:
            continue
        check = None if name in unchecked else _check(name, expr)
        lines.append(f"    v = {expr.code}")
        lines.append("    if v:" if expr.kind in _KNOWN else "    if v is not None and v != '':")
        if check:
            lines.append(f"        {check}")
        lines.append(f"        r[{name!r}] = v")
    missing = [key for key in ("id", "provider") if key not in consts]
    if missing:
        lines.append(f"    if {' or '.join(f'{k!r} not in r' for k in missing)}: raise _Invalid(_problem(r))")
    lines.append("    return r")
    gen.ns["_consts"] = consts
    return gen.function(_read_groups_once(lines, ctx.groups), "build", where)


def _read_groups_once(lines: list[str], groups: frozenset[str] | None) -> str:
    """The function's source with each regex group read more than once (the line time for two fields, the text
    for body and segments) read once into a local: every read of a group makes a new string."""
    source = "\n".join(lines) + "\n"
    reads = []
    for i, name in enumerate(sorted(groups or ())):
        read = f"f[{name!r}]"
        if source.count(read) > 1:
            source = source.replace(read, f"_g{i}")
            reads.append(f"    _g{i} = {read}")
    if reads:
        head, _, body = source.partition("\n")
        source = "\n".join([head, *reads, body])
    return source


def _spec_key(spec: Any) -> tuple[str, str] | None:
    """What identifies a spec worth computing once: a path into the fields (not a plain key: one lookup) or a
    mapping that is not a constant. Equal specs (one YAML anchor used twice) have the same key."""
    if isinstance(spec, str):
        return ("path", spec[1:]) if spec.startswith("$") and not spec.startswith("$$") and (
            len(_path_parts(spec[1:])) > 1) else None
    if isinstance(spec, Mapping) and not _constant(spec)[0]:
        return "spec", repr(spec)
    return None


def _repeated(specs: list[Any]) -> frozenset[tuple[str, str]]:
    """The keys of specs occurring more than once among `specs` and inside them (options, arguments, the path
    of a `field:`)."""
    seen: Counter[tuple[str, str]] = Counter()

    def walk(spec: Any) -> None:
        key = _spec_key(spec)
        if key is not None:
            seen[key] += 1
        if isinstance(spec, Mapping):
            if "field" in spec and len(_path_parts(str(spec["field"]))) > 1:
                seen["path", str(spec["field"])] += 1
            for inner in (spec.get("first"), spec.get("args")):
                if isinstance(inner, list):
                    for item in inner:
                        walk(item)

    for spec in specs:
        walk(spec)
    return frozenset(key for key, count in seen.items() if count > 1)


def _constant(spec: Any) -> tuple[bool, Any]:
    """(True, value) for a spec that is the same on every line: a literal, "$$text" or {const: v}."""
    if isinstance(spec, Mapping):
        return (True, spec["const"]) if set(spec) == {"const"} else (False, None)
    if isinstance(spec, str):
        if spec.startswith("$$"):
            return True, spec[1:]
        return (False, None) if spec.startswith("$") else (True, spec)
    return True, spec
