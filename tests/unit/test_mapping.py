"""The mapping compiler: every spec form and modifier, generated code safe with any field name."""

from __future__ import annotations

import inspect
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.config import ConfigError
from agent.formats import mapping
from agent.formats.mapping import FUNCTIONS, Context, compile_condition, compile_mapping, compile_value
from agent.record import ALL_FIELDS, InvalidRecord, problem

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


def test_prefix_applies_to_text_and_numbers_only_and_booleans_are_never_times():
    assert value({"field": "a", "prefix": "p-"}, {"a": 5}) == "p-5"
    assert value({"field": "a", "prefix": "p-"}, {"a": {"text": ""}}) is None  # not its Python repr
    epoch = {"field": "a", "time": "epoch"}  # one parser and cache for every spec with this format and zone
    assert value(epoch, {"a": 1}) == "1970-01-01T00:00:01+00:00"
    assert value(epoch, {"a": True}) is None  # equal to 1 as a cache key, but no time


def test_phone_with_a_country_reads_national_numbers_there_whatever_the_source_default():
    f = {"ten": "8045550131", "eleven": "18045550131", "short": "74121", "gb": "07700900123"}
    nanp = {k: value({"field": k, "phone": "US"}, f) for k in ("ten", "eleven", "short")}
    assert nanp == {"ten": "+18045550131", "eleven": "+18045550131", "short": "74121"}
    # with the source's default (CTX: GB) the same digits read as a British number: why a NANP format names US
    assert value({"field": "ten", "phone": True}, f) == "+448045550131"
    assert value({"field": "gb", "phone": True}, f) == "+447700900123"


def test_pick_finds_the_marked_entry_of_a_list_and_contains_tests_for_one():
    to = [{"phoneNumber": "+15125550101"}, {"phoneNumber": "+15125550133", "target": True}]
    pick = {"fn": "pick", "args": ["$to", "target", True, "phoneNumber"]}
    assert value(pick, {"to": to}) == "+15125550133"
    assert value(pick, {"to": [{"phoneNumber": "+1", "target": 1}]}) is None  # JSON 1 is not true
    assert value(pick, {"to": {"target": True}}) is None
    when = compile_condition({"field": "a", "contains": {"type": "MmsAttachment"}}, CTX, "when")
    assert when({"a": [{"type": "Text"}, {"type": "MmsAttachment", "size": 3}]})
    assert not when({"a": [{"type": "Text"}, "MmsAttachment"]})
    assert not when({"a": {"type": "MmsAttachment"}})


@pytest.mark.parametrize(("spec", "key", "expected"), [
    ({"field": "a", "phone": "Atlantis"}, "map.x.phone", "ISO 3166 two-letter country code"),
    ({"field": "a", "phone": 1}, "map.x.phone", "ISO 3166 two-letter country code"),
])
def test_a_phone_country_must_be_known(spec, key, expected):
    with pytest.raises(ConfigError) as err:
        compile_value(spec, CTX, "map.x")
    assert err.value.key == key and expected in err.value.expected


def test_contains_needs_an_object_of_key_values():
    with pytest.raises(ConfigError) as err:
        compile_condition({"field": "a", "contains": "MmsAttachment"}, CTX, "when")
    assert err.value.key == "when.contains" and "key: value" in err.value.expected


def test_mapping_leaves_unknown_fields_out_and_keeps_constants():
    build = compile_mapping({"id": "$id", "provider": "smpp", "status": {"field": "st", "lower": True},
                             "body": "$body", "error_code": None}, CTX, "map")
    assert build({"id": "m1", "st": "SENT", "body": ""}) == {"id": "m1", "provider": "smpp", "status": "sent"}
    assert build({"id": "m2", "st": None, "body": None}) == {"id": "m2", "provider": "smpp"}
    with pytest.raises(InvalidRecord, match="missing required field 'id'"):
        build({"id": None, "st": "SENT"})
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
    if text:
        record = build({key: text})
        assert record["id"] == text and record["body"] == text.upper()
    else:
        with pytest.raises(InvalidRecord):
            build({key: text})


@pytest.mark.parametrize(("fields", "reason"), [
    ({"id": "m1", "st": 4}, "field 'status' must be a string, got int"),
    ({"id": "m1", "st": ["sent"]}, "field 'status' must be a string, got list"),
    ({"id": "m1", "ts": "2026-11-27 02:35:05"}, "field 'message_sent_at' is not an ISO 8601 date-time"),
    ({"id": "m1", "ts": "2026-11-27T02:35:05"}, "field 'message_sent_at' has no UTC offset"),
    ({"id": "m1", "n": 0}, "field 'segment_count' must be a positive integer up to 2147483647, got 0"),
    ({"id": "m1", "n": 10**30}, "field 'segment_count' must be a positive integer up to 2147483647, got a larger"),
    ({"id": "m1", "p": "Twilio"}, "provider 'Twilio' is not one Volt knows"),
    ({"id": {"sid": "x"}}, "field 'id' must be a string, got dict"),
])
def test_values_of_unknown_type_are_checked_against_the_contract(fields, reason):
    build = compile_mapping({"id": "$id", "provider": {"first": ["$p", "smpp"]}, "status": "$st",
                             "message_sent_at": "$ts", "segment_count": "$n"}, CTX, "map")
    with pytest.raises(InvalidRecord) as err:
        build(fields)
    assert str(err.value).startswith(reason)


def test_values_of_known_type_pass_unchecked_and_are_valid():
    build = compile_mapping({"id": {"template": "x-{id}"}, "provider": "smpp",
                             "message_sent_at": {"field": "ts", "time": "iso"},
                             "segment_count": {"fn": "segments", "args": ["$body"]}}, CTX, "map")
    record = build({"id": 7, "ts": "2026-11-27T02:35:05Z", "body": "hi"})
    assert record == {"id": "x-7", "provider": "smpp", "message_sent_at": "2026-11-27T02:35:05+00:00",
                      "segment_count": 1}
    assert build({"id": 7, "ts": "not a time"}) == {"id": "x-7", "provider": "smpp"}  # unknown, left out


@pytest.mark.parametrize(("spec", "key", "expected"), [
    ({"id": "$id", "provider": "Twilio"}, "map.provider", "provider 'Twilio' is not one Volt knows"),
    ({"id": "$id", "provider": "smpp", "segment_count": 0}, "map.segment_count", "must be a positive integer"),
    ({"id": "$id", "provider": "smpp", "status": {"const": 3}}, "map.status", "must be a string"),
    ({"id": "$id", "provider": "smpp", "message_sent_at": "yesterday"}, "map.message_sent_at", "ISO 8601"),
])
def test_constants_that_break_the_contract_are_config_errors(spec, key, expected):
    with pytest.raises(ConfigError) as err:
        compile_mapping(spec, CTX, "map")
    assert err.value.key == key and expected in err.value.expected


# Any spec the compiler accepts, over any JSON-like fields: what build returns always fits the contract, so
# the checks it leaves out (where it knows a value's type) were never needed.
_json = st.recursive(st.none() | st.booleans() | st.integers(-3, 5) | st.sampled_from(
    ["", "x", "DELIVRD", "2026-11-27 02:35:05", "2026-11-27T02:35:05Z", "07700900123", "1700000000",
     "id:1 sub:001 dlvrd:001 submit date:2611270235 done date:2611270236 stat:DELIVRD err:000 text:hi"]),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.sampled_from("abc"), inner, max_size=2),
    max_leaves=6)
_paths = st.sampled_from(["$a", "$b", "$c", "$a.b", "$b[0]", "$d.stat", "$d.done_date"])
_arity = {name: [p.default is p.empty for p in inspect.signature(f).parameters.values()]
          for name, f in FUNCTIONS.items()}
_leaf = _paths | st.sampled_from(["sent", "smpp", "", 1, 0, "$$x"]) | st.sampled_from(sorted(FUNCTIONS)).flatmap(
    lambda f: st.lists(_paths, min_size=sum(_arity[f]), max_size=len(_arity[f])).map(
        lambda args: {"fn": f, "args": args}))
_mods = st.fixed_dictionaries({}, optional={
    "str": st.booleans(), "int": st.booleans(), "upper": st.booleans(), "omit": st.just(["000", "x"]),
    "map": st.just({"DELIVRD": "delivered", "x": 2, "sent": None}), "default": st.sampled_from([None, "other"]),
    "time": st.sampled_from(["iso", "smpp", "epoch", "%Y-%m-%d %H:%M:%S"]), "phone": st.booleans(),
    "prefix": st.just("p-")})


def _with_modifiers(leaf, mods):
    if isinstance(leaf, dict):  # {fn: ...}
        return {**leaf, **mods}
    if isinstance(leaf, str) and leaf.startswith("$") and not leaf.startswith("$$"):
        return {"field": leaf[1:], **mods}
    return {"const": leaf, **mods}


_spec = st.recursive(_leaf | st.builds(_with_modifiers, _leaf, _mods),
                     lambda inner: st.lists(inner, min_size=1, max_size=3), max_leaves=4)


@given(st.dictionaries(st.sampled_from(sorted(ALL_FIELDS - {"id"})), _spec, max_size=4), _spec | st.just("$k"),
       st.dictionaries(st.sampled_from(["r", "a"]), _spec, max_size=2),
       st.dictionaries(st.sampled_from("abcdk"), _json, max_size=5).map(lambda f: {"k": "m1", **f}))
@settings(max_examples=300, deadline=None)
def test_built_records_always_fit_the_contract(spec, id_spec, derive, fields):
    spec = {**spec, "id": id_spec if not isinstance(id_spec, list) else {"first": id_spec}}
    spec = {k: ({"first": v} if isinstance(v, list) else v) for k, v in spec.items()}
    derive = {k: ({"first": v} if isinstance(v, list) else v) for k, v in derive.items()}
    try:
        build = compile_mapping({"provider": "smpp", **spec}, CTX, "map", derive)
    except ConfigError:
        return  # a spec refused when the config is loaded (a bad constant, a nested list)
    try:
        record = build(fields)
    except InvalidRecord as exc:
        assert str(exc)  # refused with a reason
        return
    assert problem(record) is None, (spec, derive, fields, record)


def test_a_spec_read_by_two_fields_is_computed_once(monkeypatch):
    calls = []
    monkeypatch.setitem(FUNCTIONS, "split", lambda *args: calls.append(args) or "x")
    line_time = {"fn": "split", "args": ["$t", " ", 0]}  # one YAML anchor, read by two fields
    build = compile_mapping({"id": "$k", "provider": "smpp", "message_profile_id": {"first": [line_time, "$p"]},
                             "mno_name": line_time, "error_code": "$a.b", "error_message": {"field": "a.b"}},
                            CTX, "map")
    assert build({"k": "1", "t": "a b", "a": {"b": "e"}}) == {
        "id": "1", "provider": "smpp", "message_profile_id": "x", "mno_name": "x", "error_code": "e",
        "error_message": "e"}
    assert len(calls) == 1
    calls.clear()
    # behind a first option that gave a value the spec does not run, so the later field computes it itself
    build = compile_mapping({"id": "$k", "provider": "smpp", "message_profile_id": {"first": ["$p", line_time]},
                             "mno_name": line_time}, CTX, "map")
    assert build({"k": "1", "p": "P", "t": "a b"})["message_profile_id"] == "P"
    assert build({"k": "1", "t": "a b"})["mno_name"] == "x"
    assert len(calls) == 3
    # nor behind a transform's inline test: without text, kannel_segments reads none of its other arguments
    build = compile_mapping({"id": "$k", "provider": "smpp", "error_code": "$a.b",
                             "segment_count": {"fn": "kannel_segments", "args": ["$text", "$a.b", "0"]},
                             "error_message": "$a.b"}, CTX, "map")
    assert build({"k": "1", "a": {"b": "e"}}) == {"id": "1", "provider": "smpp", "error_code": "e",
                                                  "error_message": "e"}
    build = compile_mapping({"id": "$k", "provider": "smpp",
                             "segment_count": {"fn": "kannel_segments", "args": ["$text", "$a.b", "0"]},
                             "error_message": "$a.b"}, CTX, "map")
    assert build({"k": "1", "a": {"b": "e"}}) == {"id": "1", "provider": "smpp", "error_message": "e"}


@given(st.lists(st.sampled_from(["$k", "sent"]) | _spec, min_size=2, max_size=3),
       st.lists(st.tuples(st.sampled_from(sorted(ALL_FIELDS - {"id"})),
                          st.lists(st.integers(0, 2), min_size=1, max_size=3)), max_size=5),
       st.dictionaries(st.sampled_from("abcdk"), _json, max_size=5).map(lambda f: {"k": "m1", **f}))
@settings(max_examples=300, deadline=None)
def test_common_subexpressions_give_what_computing_each_again_gives(pool, fields_picks, fields):
    """Differential: fields sharing specs (also inside `first` and arguments) with and without the shared locals,
    and with guarded transforms tested inline or through their wrapper. A first option that always gives a value
    ($k, a constant) leaves the options after it unevaluated, and so does an inline test the arguments after it."""
    pool = [{"first": c} if isinstance(c, list) else c for c in pool]
    spec = {"id": "$k", "provider": "smpp", "message_profile_id": {"first": pool[:2]}, "mno_name": pool[1]}
    for name, picks in fields_picks:
        chosen = [pool[i % len(pool)] for i in picks]
        spec[name] = chosen[0] if len(chosen) == 1 else {"first": chosen}

    def outcome() -> object:
        try:
            build = compile_mapping(spec, CTX, "map")
        except ConfigError as exc:
            return "config", str(exc)
        try:
            return build(fields)
        except InvalidRecord as exc:
            return "invalid", str(exc)

    shared = outcome()
    with pytest.MonkeyPatch.context() as m:
        m.setattr(mapping, "_repeated", lambda specs: frozenset())
        for func in FUNCTIONS.values():
            if hasattr(func, "inline"):
                m.delattr(func, "inline")
        assert outcome() == shared, spec


def test_a_shared_read_inside_a_field_that_is_always_unknown_is_computed_again_where_it_is_used():
    """A field whose value is always unknown is never written into the function, nor the locals its spec would
    have kept: a later read of the same path computes it (it used to read a local never assigned)."""
    never = {"field": "data.state", "map": {"x": None}, "default": None}
    for status in (never, {"first": [never, "$data.state"]}):
        build = compile_mapping({"id": "$id", "status": status, "error_code": "$data.state", "provider": "twilio"},
                                CTX, "map")
        record = build({"id": "a", "data": {"state": "30007"}})
        assert record["error_code"] == "30007"
        assert record.get("status") in (None, "30007")


def test_a_path_through_a_derived_field_is_not_the_input_path_of_the_same_text():
    """`$status.code` before a derived `status` reads the input; after it, the derived field: never one local."""
    build = compile_mapping({"id": "$id", "provider": "twilio", "status": "$status",
                             "error_code": {"first": ["$status.code", "$$-"]}}, CTX, "map",
                            derive={"status": {"first": ["$status.code", "$status"]}})
    assert build({"id": "b", "status": {"code": "30007"}})["error_code"] == "$-"
