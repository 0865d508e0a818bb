"""`parser: csv` and `parser: kv`: a line to named fields, or the reason it is refused; through the rules too."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from agent.config import ConfigError, load
from agent.formats.delimited import HEADER, csv_parser, kv_parser
from agent.formats.source import Processor

COLUMNS = ["id", "submitted", "to", "status", "note"]
# no byte order mark: at the start of a line it is the file's, dropped (tested on its own)
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\ufeff"), max_size=30)


def _row(values: list[str], **dialect: Any) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="", **dialect).writerow(values)
    return out.getvalue()


def _fields(values: list[str]) -> dict[str, str | None]:
    """What a data row becomes: empty values and values of whitespace alone left out."""
    return {c: v if v.strip() else None for c, v in zip(COLUMNS, values, strict=True)}


@given(st.lists(TEXT, min_size=5, max_size=5), st.sampled_from([",", ";", "\t", "|"]), st.sampled_from(['"', "'"]))
def test_csv_rows_come_back_whole_with_delimiters_and_quotes_inside_and_empty_values_left_out(values, delimiter,
                                                                                             quote):
    parse, _ = csv_parser({"columns": COLUMNS, "delimiter": delimiter, "quote": quote})
    fields = parse(_row(values, delimiter=delimiter, quotechar=quote))
    if [v.strip().casefold() for v in values] == COLUMNS:
        assert fields == HEADER
    else:
        assert fields == _fields(values)


@given(st.lists(TEXT, min_size=5, max_size=5))
def test_csv_with_an_escape_character_instead_of_doubled_quotes(values):
    parse, _ = csv_parser({"columns": COLUMNS, "escape": "\\"})
    line = _row(values, escapechar="\\", doublequote=False)
    assert parse(line) == _fields(values)


def test_a_malformed_csv_row_is_refused_with_its_reason():
    parse, _ = csv_parser({"columns": "id,submitted,to,status,note"})  # the header line pasted as it is
    assert parse("m1,2026-11-27,+447700900123,DELIVRD") == (
        "invalid CSV: expected 5 columns (id, submitted, to, status, note), got 4")
    assert parse('m1,2026-11-27,+447700900123,DELIVRD,"cut') == "invalid CSV: unterminated quote"
    assert parse('m1,2026-11-27,+447700900123,"DELIVRD"x,y') == "invalid CSV: ',' expected after '\"'"
    assert parse("id, submitted ,to,status,note") == HEADER  # a header, whatever spaces around the names


def test_a_csv_header_is_known_by_its_names_whatever_their_case_spaces_or_a_byte_order_mark():
    parse, _ = csv_parser({"columns": "\ufeffid,submitted,to,status,note"})
    assert parse("\ufeffid,submitted,to,status,note") == HEADER
    assert parse(" ID , Submitted,TO,status,Note ") == HEADER
    assert parse("\ufeffm1,2026-11-27,+447700900123,DELIVRD,x") == {
        "id": "m1", "submitted": "2026-11-27", "to": "+447700900123", "status": "DELIVRD", "note": "x"}
    assert parse("status,id,submitted,to,note") == (
        "invalid CSV: header differs from columns: the file has status, id, submitted, to, note; "
        "columns: says id, submitted, to, status, note")
    # a value of spaces alone is no value; other values keep their spaces
    assert parse("m1, ,\t, DELIVRD,") == {"id": "m1", "submitted": None, "to": None, "status": " DELIVRD",
                                           "note": None}


@pytest.mark.parametrize(("spec", "key", "expected"), [
    ({}, "columns", "the column names"),
    ({"columns": []}, "columns", "the column names"),
    ({"columns": ["a", "a"]}, "columns", "names used once each"),
    ({"columns": ["a"], "delimiter": ";;"}, "delimiter", "one character"),
    ({"columns": ["a"], "delimiter": '"'}, "delimiter", "other than the quote"),
    ({"columns": ["a"], "delimeter": ";"}, "delimeter", "one of the parser's options: type, columns, delimiter"),
])
def test_a_csv_parser_that_cannot_work_names_the_option(spec, key, expected):
    with pytest.raises(ValueError) as err:
        csv_parser(spec)
    assert err.value.key == key and expected in str(err.value)  # type: ignore[attr-defined]


KEY = st.text("abcdefghijklmnopqrstuvwxyz_0123456789-", min_size=1, max_size=8)


def _logfmt(pairs: dict[str, str], separator: str = " ", assign: str = "=") -> str:
    """How logfmt writers quote: values with spaces, quotes, separators or backslashes in quotes, \\ and \" escaped
    (with another separator, values are quoted where spaces around them would be trimmed)."""
    out = []
    for key, value in pairs.items():
        if value == "" or any(c in value for c in f' "\\\t{separator}{assign}') or not value.isprintable():
            value = '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
        out.append(f"{key}{assign}{value}")
    return separator.join(out)


@given(st.dictionaries(KEY, st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r"),
                                     max_size=20), min_size=1, max_size=6),
       st.sampled_from([(" ", "="), (";", "="), (",", ":"), ("|", "="), ("&", "=")]))
def test_kv_pairs_come_back_with_quotes_and_escapes_undone_and_empty_values_left_out(pairs, style):
    separator, assign = style
    line = _logfmt(pairs, separator, assign)
    want = {k: v for k, v in pairs.items() if v and not v.isspace()}  # blank is no value, as in CSV
    assert kv_parser({"separator": separator, "assign": assign})(line) == want


def test_kv_with_other_separators_dotted_keys_and_bare_keys():
    assert kv_parser({"separator": ";", "assign": ":"})('id: m1; note: two words ; to:"+44;7"; x:') == {
        "id": "m1", "note": "two words", "to": "+44;7"}
    fields = kv_parser({})('sms.id=5 sms.to=+44 flag level=info a.b.c=1')
    assert fields == {"sms": {"id": "5", "to": "+44"}, "level": "info", "a": {"b": {"c": "1"}}}
    # a plain value in the way of a dotted key, before or after it: the plain value keeps the name, the dotted key
    # is kept whole
    for line in ("sms=x sms.id=5", "sms.id=5 sms=x"):
        assert kv_parser({})(line) == {"sms": "x", "sms.id": "5"}, line
    for line in ("error.code=30003 error.detail.text=no error=flat",
                 "error=flat error.code=30003 error.detail.text=no"):
        assert kv_parser({})(line) == {"error": "flat", "error.code": "30003", "error.detail.text": "no"}, line
    assert kv_parser({})("a.b.c=2 a.b=1") == {"a": {"b": "1"}, "a.b.c": "2"}
    assert kv_parser({})("a..b=1 .c=2 d.=3") == {"a..b": "1", ".c": "2", "d.": "3"}  # no empty names


@pytest.mark.parametrize(("line", "reason"), [
    ('a=1 msg="cut', "invalid key=value: an unterminated quote in the value of 'msg' (column 5)"),
    ('a=1 msg="x"y b=2', "invalid key=value: text right after the closing quote in the value of 'msg' (column 5)"),
    ("a=1 =2", "invalid key=value: not a key=value pair at column 5: '=2'"),
    ('a=1 b"c=2', "invalid key=value: not a key=value pair at column 5: 'b\"c=2'"),
    ("   ", "invalid key=value: no pairs"),
])
def test_a_bad_pair_is_refused_with_its_column(line, reason):
    assert kv_parser({})(line) == reason


# Sizes where the backtracking regex took minutes (quadratic): the suite's timeout fails them if it comes back.
@pytest.mark.parametrize(("spec", "line", "expected"), [
    ({}, " " * 300_000 + "=", "invalid key=value: not a key=value pair at column 300001: '='"),
    ({}, "a" * 200_000 + '"', f"invalid key=value: not a key=value pair at column 1: {'a' * 40!r}"),
    ({}, "a=1 " * 50_000 + '"', "invalid key=value: not a key=value pair at column 200001: '\"'"),
    ({}, "a=1" + " " * 300_000, {"a": "1"}),
    ({"separator": ";", "assign": ":"}, "a: x" + " " * 300_000 + "y", {"a": "x" + " " * 300_000 + "y"}),
    ({"separator": ";", "assign": ":"}, " " * 300_000 + ":", "invalid key=value: not a key:value pair at column "
                                                             "300001: ':'"),
])
def test_kv_reads_long_runs_of_spaces_and_stray_characters_in_one_pass(spec, line, expected):
    assert kv_parser(spec)(line) == expected


@given(st.lists(st.tuples(KEY, st.text("ab \t", max_size=6)), min_size=1, max_size=5, unique_by=lambda p: p[0]),
       st.lists(st.text(" \t", max_size=3), min_size=20, max_size=20), st.sampled_from([";", ",", "\t"]))
def test_kv_spaces_around_separators_and_assign_characters_are_not_part_of_values(pairs, pads, separator):
    pad = (p.replace(separator, " ") for p in pads)
    pairs = [(k, v.replace(separator, " ")) for k, v in pairs]
    line = separator.join(f"{next(pad)}{k}{next(pad)}={next(pad)}{v}{next(pad)}" for k, v in pairs)
    expected = {k: v.strip() for k, v in pairs if v.strip()}
    assert kv_parser({"separator": separator})(line) == expected


def _processor(tmp_path: Path, parser: Any, rules: list[dict[str, Any]]) -> Processor:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "state"), "sources": [{
        "name": "cdr", "paths": [str(tmp_path / "x.log")], "provider": "smpp", "parser": parser, "rules": rules}]}))
    return Processor(load(path).sources[0])


RULES = [{"name": "mt", "when": {"field": "status", "in": ["DELIVRD", "UNDELIV"]},
          "map": {"id": "$id", "status": {"fn": "smpp_state", "args": ["$status"]}, "to_number": "$to",
                  "error_message": "$note", "message_created_at": {"field": "submitted", "time": "iso"}}},
         {"name": "other", "drop": True}]


def test_csv_fields_feed_the_same_rules_and_mapping_as_json(tmp_path):
    p = _processor(tmp_path, {"type": "csv", "columns": COLUMNS}, RULES)
    result = p.run('m1,2026-11-27T01:13:22Z,+447700900123,UNDELIV,"absent, subscriber"')
    assert (result.rule, result.records) == ("mt", [{
        "id": "m1", "provider": "smpp", "status": "undeliverable", "to_number": "+447700900123",
        "error_message": "absent, subscriber", "message_created_at": "2026-11-27T01:13:22+00:00"}])
    assert p.run("m2,,,DELIVRD,").records == [{"id": "m2", "provider": "smpp", "status": "delivered"}]
    header = p.run("id,submitted,to,status,note")
    assert (header.rule, header.records, header.skipped) == ("header", [], True)
    assert p.run("m3,,,ENROUTE,").skipped
    bad = p.run("m4,x")
    assert bad.records == []
    assert bad.reject == "invalid CSV: expected 5 columns (id, submitted, to, status, note), got 2"
    assert p.explain() == ["parser csv, columns id, submitted, to, status, note"]


def test_kv_fields_feed_the_same_rules_and_mapping_as_json(tmp_path):
    p = _processor(tmp_path, "kv", RULES)
    result = p.run('id=m1 submitted=2026-11-27T01:13:22Z to=+447700900123 status=UNDELIV note="absent \\"sub\\""')
    assert result.records == [{"id": "m1", "provider": "smpp", "status": "undeliverable",
                               "to_number": "+447700900123", "error_message": 'absent "sub"',
                               "message_created_at": "2026-11-27T01:13:22+00:00"}]
    assert p.run('id=m2 status=DELIVRD note=""').records == [{"id": "m2", "provider": "smpp", "status": "delivered"}]
    assert p.run('id=m3 status="DELIVRD').reject == (
        "invalid key=value: an unterminated quote in the value of 'status' (column 7)")


@pytest.mark.parametrize(("parser", "rules", "key", "expected"), [
    ({"type": "csv", "columns": ["a"], "quote": "ab"}, RULES, "sources[cdr].parser.quote", "one character"),
    ({"type": "csv"}, RULES, "sources[cdr].parser.columns", "the column names"),
    ({"type": "kv", "separator": "="}, RULES, "sources[cdr].parser.separator", "other than the assign"),
    ("xml", RULES, "sources[cdr].parser", "one of json, regex, csv, kv, got 'xml'"),
    ("kv", [{"match": "x", "map": {"id": "$id"}}], "sources[cdr].rules[rule0].match",
     "only on regex parsers; kv rules select events with `when:`"),
    # a CSV's columns are named in the config: a name that is none of them is a typo, never a field always unknown
    ({"type": "csv", "columns": COLUMNS}, [{"name": "mt", "map": {"id": "$id", "status": "$state"}}],
     "sources[cdr].rules[mt].map.status", "a column of this source (id, note, status, submitted, to)"),
    ({"type": "csv", "columns": COLUMNS}, [{"name": "mt", "map": {"id": {"template": "cdr-{msgid}"}}}],
     "sources[cdr].rules[mt].map.id.template", "got 'msgid'"),
    ({"type": "csv", "columns": COLUMNS}, [{"name": "mt", "when": {"field": "stat", "equals": "x"},
                                            "map": {"id": "$id"}}], "sources[cdr].rules[mt].when.field", "got 'stat'"),
])
def test_parser_options_that_cannot_work_are_config_errors_naming_the_key(tmp_path, parser, rules, key, expected):
    with pytest.raises(ConfigError) as err:
        _processor(tmp_path, parser, rules)
    assert err.value.key == key and expected in err.value.expected, err.value



def test_kv_whitespace_alone_is_no_value_as_in_csv() -> None:
    assert kv_parser({})('id=1 status=" " body="\t" to=x') == {"id": "1", "to": "x"}
