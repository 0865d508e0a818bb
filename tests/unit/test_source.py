"""A source's own rules: derived fields, what a line becomes when a value breaks the contract or a transform
fails, and config errors for values the compiler can check when the config is loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.config import ConfigError, load
from agent.formats import mapping
from agent.formats.source import Processor


def processor(tmp_path: Path, **source: Any) -> Processor:
    source = {k: v for k, v in {"parser": "json", **source}.items() if v is not None}
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "state"),
                                    "sources": [{"name": "app", "paths": [str(tmp_path / "app.log")], **source}]}))
    return Processor(load(path).sources[0])


GATEWAY = r"^(?P<ts>\S+ \S+) (?P<event>\w+) id=(?P<id>\S+) to=(?P<to>\d+) (?P<rest>.*)$"


def test_derived_fields_feed_later_derived_fields_and_the_mapping(tmp_path):
    p = processor(tmp_path, provider="smpp", default_country="GB", parser="regex", rules=[{
        "match": GATEWAY,
        "derive": {"r": {"fn": "receipt", "args": ["$rest"]},
                   "state": {"fn": "smpp_state", "args": ["$r.stat"]}},
        "map": {"id": "$id", "to_number": {"field": "to", "phone": True}, "status": "$state",
                "error_code": {"field": "r.err", "omit": ["000"]},
                "message_finalized_at": {"field": "r.done_date", "time": "smpp", "tz": "UTC"}}}])
    result = p.run("2026-11-27 02:35:05 DLR id=abc to=07700900123 id:abc sub:001 dlvrd:001 "
                   "submit date:2611270235 done date:2611270236 stat:UNDELIV err:034 text:hi")
    assert result.reject is None and result.records == [{
        "id": "abc", "provider": "smpp", "to_number": "+447700900123", "status": "undeliverable",
        "error_code": "034", "message_finalized_at": "2026-11-27T02:36:00+00:00"}]
    # without a receipt in the line, what is derived from it is unknown and left out
    assert p.run("2026-11-27 02:35:05 DLR id=abc to=07700900123 x").records == [
        {"id": "abc", "provider": "smpp", "to_number": "+447700900123"}]


def test_a_value_of_the_wrong_type_rejects_the_line_with_its_reason(tmp_path):
    p = processor(tmp_path, provider="twilio", map={"id": "$sid", "status": "$status",
                                                     "message_sent_at": "$sent"})
    assert p.run('{"sid": "SM1", "status": "sent"}').records == [{"id": "SM1", "provider": "twilio",
                                                                   "status": "sent"}]
    for line, reason in [
        ('{"sid": "SM1", "status": 3}', "field 'status' must be a string, got int"),
        ('{"sid": "SM1", "sent": "2026-11-27T02:35"}', "field 'message_sent_at' has no UTC offset: '2026-11-27T02:35'"),
        ('{"status": "sent"}', "missing required field 'id'"),
    ]:
        result = p.run(line)
        assert result.records == [] and result.reject == f"record breaks the contract: {reason}", line


def test_a_transform_that_fails_rejects_the_line_and_the_next_line_still_maps(tmp_path, monkeypatch):
    def boom(value: Any) -> str:
        if value == "bad":
            raise KeyError("no such entry")
        return str(value)

    monkeypatch.setitem(mapping.FUNCTIONS, "boom", boom)
    p = processor(tmp_path, provider="twilio", map={"id": "$sid", "status": {"fn": "boom", "args": ["$s"]}})
    bad = p.run('{"sid": "SM1", "s": "bad"}')
    assert bad.records == [] and bad.reject == "mapping failed: KeyError: 'no such entry'"
    assert p.run('{"sid": "SM2", "s": "sent"}').records == [{"id": "SM2", "provider": "twilio", "status": "sent"}]


def test_hex_error_codes_convert_and_a_huge_hex_run_is_unknown(tmp_path):
    p = processor(tmp_path, provider="smpp", map={"id": "$id", "error_code": {"fn": "hex_to_int", "args": ["$e"]}})
    assert p.run('{"id": "m", "e": "0000000B"}').records == [{"id": "m", "provider": "smpp", "error_code": "11"}]
    assert p.run('{"id": "m", "e": "%s"}' % ("F" * 5000)).records == [{"id": "m", "provider": "smpp"}]


@pytest.mark.parametrize(("source", "key", "expected"), [
    ({"provider": "Twilio", "map": {"id": "$sid"}}, "sources[app].provider", "not one Volt knows"),
    ({"provider": "twilio", "map": {"id": "$sid", "segment_count": 0}}, "sources[app].rules[default].map"
                                                                        ".segment_count", "positive integer"),
    ({"provider": "twilio", "map": {"id": {"fn": "split", "args": ["$a"]}}}, "sources[app].rules[default].map"
                                                                             ".id.args", "the arguments of split"),
])
def test_values_checked_when_the_config_is_loaded_name_the_key(tmp_path, source, key, expected):
    with pytest.raises(ConfigError) as err:
        processor(tmp_path, **source)
    assert err.value.key == key and expected in err.value.expected and err.value.file.endswith("agent.yaml")


JASMIN_MT = ("2025-03-18 10:00:02 INFO 1187 SMS-MT [cid:c] [queue-msgid:q1] [smpp-msgid:b'6a1f2a02'] "
             "[status:CommandStatus.ESME_ROK] [prio:0] [dlr:x] [validity:none] [from:b'ACME'] [to:b'447700900111'] "
             "[content:{content}] [tlvs:none]")


@pytest.mark.parametrize(("content", "body"), [
    (r"u'\ud83d\ude00 hi'", "\U0001f600 hi"),  # Python 2 printed an emoji as two UTF-16 halves
    (r"u'\ud800 lone'", "\ufffd lone"),  # half a pair cannot be encoded at all: replaced
])
def test_jasmin_text_escaped_as_utf16_halves_becomes_whole_characters(tmp_path, content, body):
    p = processor(tmp_path, format="jasmin", parser=None)
    result = p.run(JASMIN_MT.format(content=content))
    assert result.reject is None and result.records[0]["body"] == body
    assert result.records[0]["body"].encode("utf-8")


def test_body_drop_sends_the_record_whatever_type_the_body_had(tmp_path):
    p = processor(tmp_path, format="twilio", parser=None, body="drop")
    result = p.run('{"MessageSid":"SM1","SmsStatus":"received","From":"+14155550100","To":"+14155550111",'
                   '"Body":12345,"NumMedia":"0"}')
    assert result.reject is None and len(result.records) == 1 and "body" not in result.records[0]


def test_a_source_map_with_its_own_rules_changes_every_rule(tmp_path):
    p = processor(tmp_path, provider="smpp", rules=[{"when": {"field": "t", "equals": "a"}, "map": {"id": "$id"}},
                                                    {"map": {"id": "$id", "status": "other"}}],
                  map={"status": "sent", "direction": "outbound"})
    assert p.run('{"t": "a", "id": "m1"}').records == [
        {"id": "m1", "provider": "smpp", "status": "sent", "direction": "outbound"}]
    assert p.run('{"t": "b", "id": "m2"}').records == [
        {"id": "m2", "provider": "smpp", "status": "sent", "direction": "outbound"}]


RULE = "sources[app].rules[default].map"


@pytest.mark.parametrize(("source", "key", "expected"), [
    ({"map": "foo"}, "sources[app].rules[default].map", "a mapping of Volt field"),
    ({"rules": [{"map": [1, 2]}]}, "sources[app].rules[rule0].map", "a mapping of Volt field"),
    ({"rules": 5}, "sources[app].rules", "a list of rules"),
    ({"map": {"id": {"template": ""}}}, f"{RULE}.id.template", "a template with text or {fields}"),
    ({"map": {"id": {"template": "x-{}"}}}, f"{RULE}.id.template", "named fields"),
    ({"map": {"id": {"fn": ["split"]}}}, f"{RULE}.id.fn", "one of"),
    ({"map": {"id": "$id", "message_sent_at": {"field": "t", "tz": "UTC"}}}, f"{RULE}.message_sent_at.tz",
     "only together with `time:`"),
    ({"map": {"id": "$id", "status": {"field": "s", "default": "x"}}}, f"{RULE}.status.default",
     "only together with `map:`"),
    ({"map": {"id": "$id", "message_sent_at": {"field": "t", "time": "ISO"}}}, f"{RULE}.message_sent_at.time",
     "iso, epoch, epoch_ms, smpp or a strptime format"),
    ({"map": {"id": "$id", "message_sent_at": {"field": "t", "time": "%Y %Q"}}}, f"{RULE}.message_sent_at.time",
     "a strptime format"),
    ({"rules": [{"name": "r", "when": [], "map": {"id": "$id"}}]}, "sources[app].rules[r].when",
     "at least one condition"),
    ({"map": {"id": {"first": [f"$f{i}" for i in range(300)]}}}, RULE, "less deeply nested"),
])
def test_specs_of_the_wrong_shape_are_config_errors_naming_the_key(tmp_path, source, key, expected):
    with pytest.raises(ConfigError) as err:
        processor(tmp_path, provider="smpp", **source)
    assert err.value.key == key and expected in err.value.expected


def test_a_passthrough_source_refuses_field_overrides_and_sends_any_body_when_dropping_it(tmp_path):
    with pytest.raises(ConfigError) as err:
        processor(tmp_path, format="volt-jsonl", parser=None, map={"status": None})
    assert err.value.key == "sources[app].map" and "already records" in err.value.expected
    p = processor(tmp_path, format="volt-jsonl", parser=None, body="drop")
    assert p.run('{"id": "m1", "provider": "smpp", "body": 5}').records == [{"id": "m1", "provider": "smpp"}]


@pytest.mark.parametrize("length", ["99999999999999999999999", "9" * 5000])
def test_a_kannel_length_no_sms_can_have_falls_back_to_the_text(tmp_path, length):
    p = processor(tmp_path, format="kannel", parser=None)
    line = ("2026-11-27 02:35:02 Sent SMS [SMSC:s] [SVC:t] [ACT:] [BINF:] [FID:f1] [META:] [from:123] [to:456] "
            f"[flags:-1:2:-1:-1:31] [msg:{length}:00480069] [udh:0:]")
    result = p.run(line)
    assert result.reject is None and result.records[0]["segment_count"] == 1 and result.records[0]["body"] == "Hi"
