"""A source's format compiled once: a line in, Volt records out (or a counted reject / skip).

The format is data: a preset from formats/presets (`format: kannel`) and/or the source's own
`parser`, `rules` and `map`. Rules are tried in order; the first that matches maps the line.
A rule with `drop: true` skips lines that are not message events (counted, never silent).
`parser: {type: regex, match: RE}` gives one line regex to every rule without its own `match`
(rules then pick their event with `when:`; the line is matched once), and a preset may say
`extends: other` to reuse another preset's rules with its own parser (kannel-custom).
`parser: csv` and `parser: kv` split a line into named fields (formats/delimited.py) that rules and mappings
read like a JSON object. A format may take `options:`; the kannel formats take `access_log_format`, the layout
string from kannel.conf, compiled into their line regex (formats/kannel_layout.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson
import yaml

from agent.config import ConfigError, SourceConfig
from agent.formats import transforms as tf
from agent.formats.delimited import HEADER, LineParser, ParserSpecError, csv_parser, kv_parser
from agent.formats.kannel_layout import LayoutError, compile_layout
from agent.formats.mapping import Context, compile_condition, compile_mapping, compile_path
from agent.record import InvalidRecord, ShapeCheck, clean, field_problem

PRESET_DIR = Path(__file__).parent / "presets"
RULE_KEYS = {"name", "match", "when", "drop", "derive", "map", "segments", "shortcut"}
PARSERS = ("json", "regex", "csv", "kv")


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(name: str, file: str, where: str) -> dict[str, Any]:
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(preset_names())
        raise ConfigError(file, where, f"a built-in format, one of: {known}; got {name!r}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(path, "(file)", f"valid YAML in the built-in format {name!r}: {exc}") from None
    base = data.pop("extends", None)
    if base:
        # A variant of another preset (kannel-custom extends kannel): same rules, its own parser/regex.
        data = {**load_preset(str(base), file, where), **data}
    return data


@dataclass(frozen=True)
class Rule:
    name: str
    regex: re.Pattern[str] | None
    when: Callable[[Any], bool] | None
    drop: bool
    # The record. For one outside the contract a compiled mapping raises InvalidRecord, and a pass-through rule
    # (`map: $`, where every refused line is a refused record) returns the reason instead: no exception per line.
    build: Callable[[Any], dict[str, Any] | str] | None
    segments: bool
    keys: dict[str, frozenset[Any]]  # necessary conditions: field -> the values the rule can match
    skip: Result | None = None  # a drop rule's one shared, never-changed outcome: no allocation per line


@dataclass(frozen=True)
class _Refined:
    """The rules left for one value of a group's key, indexed again by a second field."""

    key: Callable[[Any], Any]
    index: dict[Any, tuple[Rule, ...]]
    others: tuple[Rule, ...]


@dataclass(frozen=True)
class _Group:
    """Consecutive rules sharing one regex (or the JSON object), indexed by their most common key field.

    With the index a line tries only the rules whose `equals`/`in` condition its key value can meet,
    instead of every rule in order; the order among those rules is kept. Where several rules left for one
    value have conditions on a second field too (Kannel's receipts: the event, then the DLR type), a second
    index on that field narrows them again.
    """

    regex: re.Pattern[str] | None
    rules: tuple[Rule, ...]
    key: Callable[[Any], Any] | None = None
    index: dict[Any, tuple[Rule, ...] | _Refined] | None = None
    others: tuple[Rule, ...] = ()

    def candidates(self, fields: Any) -> tuple[Rule, ...]:
        if self.index is None:
            return self.rules
        try:
            rules = self.index.get(self.key(fields), self.others)  # type: ignore[misc]
        except TypeError:  # a list or object from JSON input is never one of the indexed values
            return self.others
        if rules.__class__ is tuple:
            return rules  # type: ignore[return-value]
        try:
            return rules.index.get(rules.key(fields), rules.others)  # type: ignore[union-attr]
        except TypeError:
            return rules.others  # type: ignore[union-attr]


def _necessary(spec: Any) -> dict[str, frozenset[Any]]:
    """The equals/in conditions of a `when:` (all must hold), as field -> allowed values."""
    keys: dict[str, frozenset[Any]] = {}
    for c in spec if isinstance(spec, list) else [spec]:
        if not isinstance(c, Mapping) or "field" not in c:
            continue
        if "equals" in c and _hashable(c["equals"]):
            keys[str(c["field"])] = frozenset([c["equals"]])
        elif "in" in c and isinstance(c["in"], list) and all(_hashable(v) for v in c["in"]):
            keys[str(c["field"])] = frozenset(c["in"])
    return keys


def _group_getter(regex: re.Pattern[str], name: str) -> Callable[[re.Match[str]], Any]:
    if name in regex.groupindex:
        return itemgetter(name)  # m[name] without a Python frame: it runs for every line
    return lambda m: None


_Index = tuple[str, dict[Any, tuple[Rule, ...]], tuple[Rule, ...]]


def _index(members: tuple[Rule, ...], skip: str = "") -> _Index | None:
    """The most common key field of the rules (besides `skip`), each of its values -> the rules it can meet, and
    the rules without a condition on it; None when fewer than two rules have one."""
    fields = Counter(k for r in members for k in r.keys if k != skip)
    field, count = fields.most_common(1)[0] if fields else ("", 0)
    if count < 2:
        return None
    values = {v for r in members for v in r.keys.get(field, ())}
    index = {v: tuple(r for r in members if field not in r.keys or v in r.keys[field]) for v in values}
    return field, index, tuple(r for r in members if field not in r.keys)


def _group(rules: tuple[Rule, ...]) -> list[_Group]:
    groups: list[list[Rule]] = []
    for rule in rules:
        if groups and groups[-1][0].regex is rule.regex:
            groups[-1].append(rule)
        else:
            groups.append([rule])
    out = []
    for members in groups:
        regex = members[0].regex

        def getter(field: str, regex: re.Pattern[str] | None = regex) -> Callable[[Any], Any]:
            return compile_path(field) if regex is None else _group_getter(regex, field)

        first = _index(tuple(members))
        if first is None:
            out.append(_Group(regex, tuple(members)))
            continue
        field, index, others = first
        refined: dict[Any, tuple[Rule, ...] | _Refined] = dict(index)
        for value, rules in index.items():
            if (second := _index(rules, field)) is not None:
                refined[value] = _Refined(getter(second[0]), second[1], second[2])
        out.append(_Group(regex, tuple(members), getter(field), refined, others))
    return out


class Result:
    """What happened to one line, for `parse --explain` and the counters (a plain class: made per line)."""

    __slots__ = ("records", "reject", "rule")

    def __init__(self, rule: str | None, records: list[dict[str, Any]], reject: str | None = None) -> None:
        self.rule = rule
        self.records = records
        self.reject = reject

    @property
    def skipped(self) -> bool:
        """No record and no reason to refuse it: a line that is not a message event (counted as skipped)."""
        return not self.records and self.reject is None


def _hashable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _regex(pattern: str, ctx: Context, where: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ctx.error(where, f"a valid regular expression: {exc}") from None


def _passthrough(provider: str | None, body_dropped: bool) -> Callable[[Any], dict[str, Any] | str]:
    """`map: $`: lines already in Volt's shape are the record itself, minus unknown values, checked whole
    (without the body when `body: drop` removes it anyway); a record outside the contract gives its reason."""
    check = ShapeCheck(frozenset(("body",)) if body_dropped else frozenset())
    learnt = check.shapes  # a shape's own check straight away, without ShapeCheck's call in between

    def build(obj: dict[str, Any]) -> dict[str, Any] | str:
        record = obj if all(obj.values()) else clean(obj)  # clean()'s own first test, without the call
        if provider and "provider" not in record:
            record["provider"] = provider
        return (learnt.get(tuple(record)) or check)(record) or record

    return build


def _compile_rule(raw: Any, index: int, kind: str, overrides: Mapping[str, Any], provider: str | None,
                  body_dropped: bool, ctx: Context, where: str) -> Rule:
    w = f"{where}[{index}]"
    if not isinstance(raw, Mapping):
        raise ctx.error(w, "a rule mapping with match/when and map (or drop: true)")
    for key in raw:
        if key not in RULE_KEYS:
            raise ctx.error(f"{w}.{key}", f"one of {', '.join(sorted(RULE_KEYS))}")
    name = str(raw.get("name", f"rule{index}"))
    w = f"{where}[{name}]"
    regex = None
    if kind == "regex":
        if "match" not in raw:
            raise ctx.error(f"{w}.match", "a regular expression with named groups (required for regex rules)")
        regex = _regex(str(raw["match"]), ctx, f"{w}.match")
        ctx = dataclasses.replace(ctx, groups=frozenset(regex.groupindex))  # the fields are the re.Match
    elif "match" in raw:
        raise ctx.error(f"{w}.match", f"only on regex parsers; {kind} rules select events with `when:`")
    when = compile_condition(raw["when"], ctx, f"{w}.when") if "when" in raw else None
    drop = bool(raw.get("drop", False))
    derive = raw.get("derive") or {}
    if not isinstance(derive, Mapping):
        raise ctx.error(f"{w}.derive", "a mapping of new field name -> value spec")
    build = None
    spec = raw.get("map")
    if not drop and spec == "$":
        build = _passthrough(provider, body_dropped)
    elif not drop:
        if not isinstance(spec, Mapping):
            raise ctx.error(f"{w}.map", "a mapping of Volt field -> value spec ($ for lines already in Volt's shape)")
        mapping = dict(spec)
        for key, value in overrides.items():
            if value is None:
                mapping.pop(key, None)
            else:
                mapping[key] = value
        if provider:  # the source's provider, unless the mapping finds one in the line
            found = mapping.get("provider")
            mapping["provider"] = provider if found is None else {"first": [found, provider]}
        build = compile_mapping(mapping, ctx, f"{w}.map", derive, unchecked=("body",) if body_dropped else ())
    keys = _necessary(raw["when"]) if "when" in raw else {}
    skip = Result(name, []) if drop else None
    return Rule(name, regex, when, drop, build, bool(raw.get("segments", True)), keys, skip)


_new = object.__new__
_HEADER = Result("header", [])  # a CSV header line: skipped, counted under the rule name "header"


def _layout_parser(preset: Mapping[str, Any], cfg: SourceConfig, ctx: Context, where: str) -> dict[str, Any] | None:
    """The line regex a kannel format's `access_log_format` option compiles to, or None without one.

    A preset lists the options it takes under `options:`, with their defaults (kannel-custom sets its layout
    there). The source's own `parser:` replaces a preset's layout, but not one the source itself gives.
    """
    declared = preset.get("options") or {}
    given = cfg.spec.get("options") or {}
    if not isinstance(given, Mapping):
        raise ctx.error(f"{where}.options", "a mapping of option -> value")
    for key in given:
        if key not in declared:
            raise ctx.error(f"{where}.options.{key}", f"an option of the {cfg.format} format (it takes: "
                                                      f"{', '.join(declared) or 'none'})" if cfg.format else
                                                      "options only with a built-in `format:` that takes them")
    layout = given.get("access_log_format", declared.get("access_log_format"))
    if layout is None or ("parser" in cfg.spec and "access_log_format" not in given):
        return None
    key = f"{where}.options.access_log_format"
    if "parser" in cfg.spec:
        raise ctx.error(key, "either the layout or a `parser:` of your own, not both")
    try:
        return {"type": "regex", "match": compile_layout(layout)}
    except LayoutError as exc:
        raise ctx.error(key, str(exc)) from None


class RejectsFile:
    """Appends rejected lines with their reason as JSON lines, so an operator can see what was refused."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("ab")

    def write(self, source: str, line: str, reason: str) -> None:
        self._fh.write(orjson.dumps({"source": source, "reason": reason, "line": line[:4096]}) + b"\n")
        self._fh.flush()

    def close(self) -> None:
        with contextlib.suppress(OSError):  # every entry was flushed when written: nothing is left to save
            self._fh.close()


class Processor:
    """The compiled format of one source. `process(line)` is the hot path."""

    def __init__(self, cfg: SourceConfig) -> None:
        self.cfg = cfg
        file = str(cfg.file)
        where = f"sources[{cfg.name}]"
        ctx = Context(file, cfg.timezone, cfg.receipt_timezone, cfg.default_country)
        preset: dict[str, Any] = {}
        if cfg.format:
            preset = load_preset(cfg.format, file, f"{where}.format")
        spec = {**preset, **{k: v for k, v in cfg.spec.items() if k not in ("rules", "map")}}
        parser = _layout_parser(preset, cfg, ctx, where) or spec.get("parser", "json")
        kind = parser.get("type") if isinstance(parser, Mapping) else parser
        if kind not in PARSERS:
            raise ctx.error(f"{where}.parser", f"one of {', '.join(PARSERS)}, got {kind!r}")
        self.kind = kind
        self.split: LineParser | None = None  # csv / kv: a line -> its named fields, or why it is refused
        self.columns: tuple[str, ...] = ()
        if kind in ("csv", "kv"):
            options = parser if isinstance(parser, Mapping) else {}
            try:
                if kind == "kv":
                    self.split = kv_parser(options)
                else:
                    self.split, self.columns = csv_parser(options)
                    # every row has every column (None when empty): the mapping reads them as text, like groups
                    ctx = dataclasses.replace(ctx, groups=frozenset(self.columns), columns=True)
            except ParserSpecError as exc:
                raise ctx.error(f"{where}.parser.{exc.key}", str(exc)) from None
        own_rules = cfg.spec.get("rules") or []
        if not isinstance(own_rules, list):
            raise ctx.error(f"{where}.rules", "a list of rules")
        rules_raw = own_rules + list(preset.get("rules") or [])
        line_match = parser.get("match") if isinstance(parser, Mapping) else None
        if kind == "regex" and line_match is not None:
            # One line regex for the whole format (`parser: {type: regex, match: ...}`); rules without their
            # own `match` use it and select their events with `when:`, so a layout change is one regex.
            rules_raw = [{**r, "match": line_match} if isinstance(r, Mapping) and "match" not in r else r
                         for r in rules_raw]
        # `map:` is the whole mapping of a JSON source without a format or rules; otherwise it changes single
        # fields of every rule's mapping (null removes one)
        own_map = cfg.spec.get("map")
        whole_map = spec.get("map") if cfg.format else (own_map if not rules_raw else None)
        if whole_map is not None and not rules_raw:
            rules_raw = [{"name": "default", "map": whole_map}]
        if not rules_raw:
            raise ctx.error(f"{where}.rules", "at least one rule (or a `map:` for a JSON source)")
        overrides = {} if not cfg.format and whole_map is not None else (own_map or {})
        if not isinstance(overrides, Mapping):
            raise ctx.error(f"{where}.map", "a mapping of Volt field -> value spec (null removes a field)")
        if overrides and any(isinstance(r, Mapping) and r.get("map") == "$" for r in rules_raw):
            raise ctx.error(f"{where}.map", "no `map:` with a format whose lines are already records (map: $): "
                                            "use `provider:`, or a source without a format and its own mapping")
        self.provider = cfg.provider or spec.get("provider")
        if self.provider is not None and (reason := field_problem("provider", self.provider)) is not None:
            raise ctx.error(f"{where}.provider", f"a provider Volt knows: {reason}")
        # A `shortcut: true` rule is a faster copy of the rule after it for the common case; a source's own `map:`
        # entries are written against the rules the format documents (their derived fields), so they skip it.
        self.rules = tuple(
            _compile_rule(r, i, kind, overrides, self.provider, cfg.body == "drop", ctx, f"{where}.rules")
            for i, r in enumerate(rules_raw)
            if not (overrides and isinstance(r, Mapping) and r.get("shortcut"))
        )
        self.groups = _group(self.rules)
        # one rule that takes every object (`map: $`, a source's own `map:`): no group or condition to go through
        self.only = self.rules[0] if len(self.rules) == 1 and self.rules[0].when is None else None
        explode = spec.get("explode")
        self.explode = compile_path(str(explode)) if explode and explode not in ("$", ".") else None
        self.explode_root = explode in ("$", ".")
        self.body_mode = cfg.body
        self.rejects = RejectsFile(cfg.rejects) if cfg.rejects else None

    def explain(self) -> list[str]:
        """How lines are read, for `parse --explain`: the parser, and each line regex with the rules using it."""
        if self.kind != "regex":
            return [f"parser {self.kind}" + (f", columns {', '.join(self.columns)}" if self.columns else "")]
        return [f"parser regex for rules {', '.join(r.name for r in g.rules)}: {g.regex.pattern}"  # type: ignore[union-attr]
                for g in self.groups]

    def close(self) -> None:
        if self.rejects is not None:
            self.rejects.close()

    def run(self, line: str) -> Result:
        """Parse and map one line, saying which rule matched and why a line was refused."""
        if self.kind == "regex":
            for group in self.groups:
                m = group.regex.search(line)  # type: ignore[union-attr]
                if m is None:
                    continue
                for rule in group.candidates(m):
                    if rule.when is None or rule.when(m):
                        return self._apply(rule, m)
            return Result(None, [], "no rule matched")
        if self.split is not None:
            fields = self.split(line)
            if fields.__class__ is str:
                return _HEADER if fields is HEADER else Result(None, [], fields)  # type: ignore[arg-type]
            return self._json_item(fields)
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            return Result(None, [], f"invalid JSON: {exc}")
        items: Any
        if self.explode_root:
            items = obj if isinstance(obj, list) else [obj]
        elif self.explode is not None:
            items = self.explode(obj) if isinstance(obj, dict) else None
            if not isinstance(items, list):
                return Result(None, [], "the field to explode is missing or not a list")
        else:
            if self.only is not None and obj.__class__ is dict:  # _json_item's common case, one call less
                return self._apply(self.only, obj)
            return self._json_item(obj)
        if len(items) == 1:
            return self._json_item(items[0])
        # An array of events: each is mapped on its own; a refused event does not take the good ones with it.
        records: list[dict[str, Any]] = []
        names: list[str] = []
        rejects: list[str] = []
        for item in items:
            result = self._json_item(item)
            if result.reject is not None:
                rejects.append(result.reject)
            records.extend(result.records)
            if result.rule:
                names.append(result.rule)
        reject = f"{rejects[0]} ({len(rejects)} of {len(items)} events)" if rejects else None
        return Result(",".join(names) or None, records, reject)

    def _json_item(self, item: Any) -> Result:
        if not isinstance(item, dict):
            return Result(None, [], f"expected a JSON object, got {type(item).__name__}")
        if self.only is not None:
            return self._apply(self.only, item)
        for group in self.groups:
            for rule in group.candidates(item):
                if rule.when is None or rule.when(item):
                    return self._apply(rule, item)
        return Result(None, [], "no rule matched")

    def _apply(self, rule: Rule, fields: Any) -> Result:
        if rule.drop:
            return rule.skip  # type: ignore[return-value]
        try:
            record = rule.build(fields)  # type: ignore[misc]
            if record.__class__ is str:
                return Result(rule.name, [], f"record breaks the contract: {record}")
            body = record.get("body")
            if body is not None:
                if rule.segments and "segment_count" not in record and isinstance(body, str):
                    record["segment_count"] = tf.segment_count(body)
                if self.body_mode == "drop":
                    del record["body"]
                elif self.body_mode == "hash" and isinstance(body, str):
                    record["body"] = tf.body_hash(body)
        except InvalidRecord as exc:
            return Result(rule.name, [], f"record breaks the contract: {exc}")
        except Exception as exc:  # a transform failing on input nobody foresaw must not stop the source
            return Result(rule.name, [], f"mapping failed: {type(exc).__name__}: {exc}")
        # Result(rule.name, [record]) without a Python __init__ call: the outcome of nearly every line
        result = _new(Result)
        result.rule = rule.name
        result.records = [record]
        result.reject = None
        return result


def check_compiles(cfg: SourceConfig) -> None:
    """A config check (validate, service install): the source's format compiles; raises ConfigError if not."""
    Processor(cfg).close()
