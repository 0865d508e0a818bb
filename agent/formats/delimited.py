"""Line parsers for delimited text: CSV rows (`parser: csv`) and key=value pairs (`parser: kv`, logfmt).

Each is compiled once per source and called per line. It returns the line's fields (a dict the rules and mapping
read like a JSON object), or a str: why the line is refused, or HEADER for a CSV header line. Empty values (and
CSV values of whitespace alone) are left out of the fields (None), so the mapping never sends "" (invariant 2).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Mapping
from typing import Any

HEADER = "header"
BOM = "\ufeff"
Fields = dict[str, Any]
LineParser = Callable[[str], Fields | str]


class ParserSpecError(ValueError):
    """A parser option that cannot work; `key` names the option, the message what it expects."""

    def __init__(self, key: str, expected: str) -> None:
        super().__init__(expected)
        self.key = key


def _known(spec: Mapping[str, Any], *keys: str) -> None:
    for key in spec:
        if key != "type" and key not in keys:
            raise ParserSpecError(str(key), f"one of the parser's options: type, {', '.join(keys)}")


def _char(spec: Mapping[str, Any], key: str, default: str | None) -> str | None:
    value = spec.get(key, default)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) != 1 or value in "\r\n":
        raise ParserSpecError(key, f"one character (not a line break), got {value!r}")
    return value


def csv_parser(spec: Mapping[str, Any]) -> tuple[LineParser, tuple[str, ...]]:
    """`{type: csv, columns: [...] | "the header line", delimiter: ",", quote: '"', escape: null}`.

    The columns are given in the config, not read from a file's first line: the parser sees lines, not files, and
    a restart in the middle of a file, a rotation or a copytruncate would otherwise leave it without names. Each
    file may still start with its header: a row equal to the column names (whatever their case and the spaces
    around them) is skipped (counted, rule `header`); the same names in another order are refused, never sent.
    Returns the parser and the column names (every row has each of them, None when empty).
    """
    _known(spec, "columns", "delimiter", "quote", "escape")
    delimiter = _char(spec, "delimiter", ",")
    quote = _char(spec, "quote", '"')
    escape = _char(spec, "escape", None)
    assert delimiter is not None
    if delimiter in (quote, escape):
        raise ParserSpecError("delimiter", "a character other than the quote and escape characters")
    dialect: dict[str, Any] = {"delimiter": delimiter, "quotechar": quote, "escapechar": escape, "strict": True,
                               "quoting": csv.QUOTE_MINIMAL if quote else csv.QUOTE_NONE}
    raw = spec.get("columns")
    if isinstance(raw, str):  # the header line pasted as it is
        raw = next(csv.reader((raw,), **dialect), [])
    if not isinstance(raw, list) or not raw or not all(isinstance(c, str) and c.strip() for c in raw):
        raise ParserSpecError("columns", "the column names, as a list or as the file's header line (required: "
                                         "a header in the file is recognised by being equal to them)")
    columns = tuple(c.strip().lstrip(BOM) for c in raw)
    if len(set(columns)) != len(columns):
        raise ParserSpecError("columns", f"names used once each, got {', '.join(columns)}")
    folded = [c.casefold() for c in columns]
    names = set(folded)
    # How a header (or a byte order mark) can start: one set lookup keeps the per-row check off data rows.
    starts = {BOM, " ", "\t", quote or " "} | {v for c in columns for v in (c[0], c[0].lower(), c[0].upper())}
    width = len(columns)
    special = quote or escape or ""  # a row holding neither needs no csv module
    other = escape if quote and escape else None
    expected = f"invalid CSV: expected {width} columns ({', '.join(columns)}), got "

    def parse(line: str) -> Fields | str:
        head = line[:1] in starts
        if head and line[0] == BOM:  # Excel and others write one at the start of a UTF-8 file
            line = line[1:]
        if special and (special in line or (other is not None and other in line)):
            try:
                values = next(csv.reader((line,), **dialect))
            except csv.Error as exc:
                return f"invalid CSV: {'unterminated quote' if 'end of data' in str(exc) else exc}"
        else:  # the common row without quotes: a plain split, several times faster than the csv module
            values = line.split(delimiter)
        if len(values) != width:
            return f"{expected}{len(values)}"
        if head and values[0].strip().casefold() in names:  # a header? its names in any case, spaces around them
            got = [v.strip().casefold() for v in values]
            if got == folded:
                return HEADER
            if sorted(got) == sorted(folded):  # the file's columns are not in the configured order: no row fits
                return (f"invalid CSV: header differs from columns: the file has {', '.join(v.strip() for v in values)}"
                        f"; columns: says {', '.join(columns)}")
        return {c: None if _no_value(v) else v for c, v in zip(columns, values)}  # noqa: B905 (equal widths)

    return parse, columns


def _no_value(value: str) -> bool:
    """Empty, or whitespace alone: an unknown value, left out of the fields (invariant 2), in CSV and kv alike."""
    return not value or value.isspace()


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)
# Unrolled and possessive: one class run per stretch, and nothing to backtrack into when the closing quote is missing.
_QUOTED_BODY = r'[^"\\]*+(?:\\.[^"\\]*+)*+'
_CLOSED = re.compile(rf'"{_QUOTED_BODY}"', re.DOTALL)


def _unescape(value: str) -> str:
    """`\\"` -> `"`, `\\\\` -> `\\`, `\\n` `\\t` `\\r` as in logfmt; any other escaped character stands for itself."""
    return _ESCAPED.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), value) if "\\" in value else value


def kv_parser(spec: Mapping[str, Any]) -> LineParser:
    """`{type: kv, separator: " ", assign: "="}`: pairs like logfmt's `level=info msg="sent ok" id=42`.

    Values may be quoted with double quotes (backslash escapes inside). A key without a value, or with an empty or
    blank one, is left out. A dotted key (`sms.id=5`) is also reachable as a path (`$sms.id`): it is nested (`_nest`
    says what happens when a plain key has the same name). A line with a pair that is not key=value, or an
    unterminated quote, is refused with the column where it went wrong.
    """
    _known(spec, "separator", "assign")
    separator = _char(spec, "separator", " ")
    assign = _char(spec, "assign", "=")
    assert separator is not None and assign is not None
    if separator == assign or '"' in (separator, assign):
        raise ParserSpecError("separator", "a character other than the assign character and the quote")
    # Every quantifier is possessive or followed by a character it cannot match, so a line is read in linear time
    # (a run of spaces before a stray `=` took seconds with backtracking, on the event loop).
    eq = re.escape(assign)
    trailing = separator != " "  # only then may a bare value end in spaces
    if separator == " ":  # logfmt: pairs apart by whitespace, nothing around the `=`
        gap, end, bare = r"\s", r"(?:\s++|$)", r'[^\s"]*+'
    else:  # `a: 1; b: two words`: spaces around the separator and the assign character are not part of values
        gap = re.escape(separator)
        space = rf"[^\S{gap}]*+"  # spaces, not the separator even if it is a tab
        # the bare value takes the spaces before the separator too; parse() strips them
        eq, end, bare = f"{space}{eq}{space}", rf"{space}(?:{gap}|$)", rf'[^{gap}"]*+'
    key = rf'[^\s{gap}{re.escape(assign)}"]++'
    pair = re.compile(rf'\s*+({key})(?:{eq}(?:"({_QUOTED_BODY})"|({bare})))?{end}', re.DOTALL)
    # Every pair, and where no pair starts, the rest of the line instead: one findall call in C per line. The rest
    # is taken whole and the trailing whitespace left out, or findall would retry at each following position.
    scan = re.compile(rf"{pair.pattern}|\s*+(\S.*)", re.DOTALL)

    def parse(line: str) -> Fields | str:
        fields: Fields = {}
        nested = False  # a plain key may then meet a parent of dotted keys
        for name, quoted, value, stray in scan.findall(line.rstrip()):
            if stray:
                return _kv_problem(line, pair, assign)
            if quoted:
                value = _unescape(quoted)
            elif trailing:
                value = value.rstrip()
            if _no_value(value):
                continue
            if "." in name or (nested and isinstance(fields.get(name), dict)):
                _nest(fields, name, value)
                nested = True
            else:
                fields[name] = value
        if not fields and not line.strip():
            return "invalid key=value: no pairs"
        return fields

    return parse


def _kv_problem(line: str, pair: re.Pattern[str], assign: str) -> str:
    """Where and why a line is not key=value pairs (only refused lines come here)."""
    pos = 0
    while (m := pair.match(line, pos)) is not None and m.end() > pos:
        pos = m.end()
    rest = line[pos:].lstrip()
    column = len(line) - len(rest) + 1
    key, _, value = rest.partition(assign)
    value = value.lstrip()
    if value.startswith('"'):
        problem = "text right after the closing quote" if _CLOSED.match(value) else "an unterminated quote"
        return f"invalid key=value: {problem} in the value of {key.strip()!r} (column {column})"
    return f"invalid key=value: not a key{assign}value pair at column {column}: {rest[:40]!r}"


def _nest(fields: Fields, key: str, value: str) -> None:
    """`a.b=1` as {"a": {"b": "1"}}. Where a plain value has the name of a parent (`error=flat` and
    `error.code=30003`, in either order), the plain value keeps the name and the dotted keys are kept whole."""
    *parents, last = parts = key.split(".")
    if "" in parts:  # `a..b`, `.a`, `a.`: no empty names
        fields[key] = value
        return
    node = fields
    for name in parents:
        child = node.setdefault(name, {})
        if not isinstance(child, dict):
            fields[key] = value
            return
        node = child
    if isinstance(node.get(last), dict):  # dotted keys under this name came first
        _unnest(fields, key, node[last])
    node[last] = value


def _unnest(fields: Fields, prefix: str, tree: Fields) -> None:
    for name, value in tree.items():
        if isinstance(value, dict):
            _unnest(fields, f"{prefix}.{name}", value)
        else:
            fields[f"{prefix}.{name}"] = value
