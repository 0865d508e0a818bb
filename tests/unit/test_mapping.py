"""The mapping compiler: every spec form and modifier, generated code safe with any field name."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.config import ConfigError
from agent.formats.mapping import Context, compile_mapping, compile_value

CTX = Context("cfg.yaml", ZoneInfo("Europe/Berlin"), ZoneInfo("UTC"), "GB")


def value(spec, fields):
    return compile_value(spec, CTX, "map.x")(fields)


def test_field_paths_constants_and_escaped_dollar():
    f = {"a": "1", "data": {"to": [{"status": "sent"}]}}
    assert value("$a", f) == "1"
    assert value("$data.to[0].status", f) == "sent"
    assert value("$data.to[3].status", f) is None
    assert value("$missing.deep", f) is None
    assert value("plain", f) == "plain"
    assert value("$$literal", f) == "$literal"
    assert value({"const": 5}, f) == 5


def test_first_template_fn_and_modifiers_in_order():
    f = {"a": "", "b": None, "c": " Delivered ", "n": "07700900123", "t": "2026-11-27 02:35:05", "e": "000"}
    assert value({"first": ["$a", "$b", "$c"]}, f) == " Delivered "
    assert value({"first": ["$a", "$b"]}, f) is None
    assert value({"template": "x-{c}-{n}"}, f) == "x- Delivered -07700900123"
    assert value({"template": "x-{b}"}, f) is None  # an unknown part makes the whole value unknown
    assert value({"field": "c", "strip": True, "lower": True}, f) == "delivered"
    assert value({"field": "c", "strip": True, "map": {"Delivered": "delivered"}}, f) == "delivered"
    assert value({"field": "c", "map": {"x": "y"}, "default": None}, f) is None
    assert value({"field": "c", "map": {"x": "y"}}, f) == " Delivered "  # unmapped values are kept
    assert value({"field": "n", "phone": True}, f) == "+447700900123"
    assert value({"field": "t", "time": "%Y-%m-%d %H:%M:%S", "tz": "source"}, f) == "2026-11-27T01:35:05+00:00"
    assert value({"field": "e", "omit": ["000"]}, f) is None
    assert value({"field": "e", "int": True}, f) == 0
    assert value({"field": "n", "prefix": "tel:"}, f) == "tel:07700900123"
    assert value({"fn": "split", "args": ["$c", " ", 1]}, f) == "Delivered"


def test_mapping_leaves_unknown_fields_out_and_keeps_constants():
    build = compile_mapping({"id": "$id", "provider": "smpp", "status": {"field": "st", "lower": True},
                             "body": "$body", "error_code": None}, CTX, "map")
    assert build({"id": "m1", "st": "SENT", "body": ""}) == {"id": "m1", "provider": "smpp", "status": "sent"}
    assert build({"id": None, "st": None, "body": None}) == {"provider": "smpp"}
    first, second = build({"id": "a"}), build({"id": "b"})
    assert first is not second and first["id"] == "a"  # each record is its own dict


@pytest.mark.parametrize(("spec", "key", "expected"), [
    ({"idd": "$x"}, "map.idd", "a Volt record field"),
    ({"id": {"fn": "nope"}}, "map.id.fn", "one of"),
    ({"id": {"field": "x", "lowr": True}}, "map.id.lowr", "one of"),
    ({"id": {"field": "x", "const": 1}}, "map.id", "exactly one of"),
    ({"id": {"field": "x", "time": "iso", "tz": "Mars/Base"}}, "map.id.tz", "IANA zone"),
    ({"id": {"first": []}}, "map.id.first", "non-empty list"),
])
def test_bad_specs_name_the_key_and_what_was_expected(spec, key, expected):
    with pytest.raises(ConfigError) as err:
        compile_mapping(spec, CTX, "map")
    assert err.value.key == key and expected in err.value.expected and err.value.file == "cfg.yaml"


@given(st.text(min_size=1).filter(lambda k: not any(c in k for c in ".[]") and not k.startswith("$")), st.text())
def test_any_field_name_is_safe_in_generated_code(key, text):
    build = compile_mapping({"id": f"${key}", "provider": "smpp", "body": {"field": key, "upper": True}},
                            CTX, "map")
    record = build({key: text})
    if text:
        assert record["id"] == text and record["body"] == text.upper()
    else:
        assert record == {"provider": "smpp"}
