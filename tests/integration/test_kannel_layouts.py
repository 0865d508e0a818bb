"""`format: kannel` with `options: {access_log_format: ...}`: any layout pasted from kannel.conf.

The default-format capture is re-rendered in other layouts (the §4 custom layout of kannel-FORMAT.md, the default
layout written as a format string, layouts with the text in the middle or first) and must reach the same expected
final states as the default layout does. The fields the default layout lacks are rendered from what Kannel
would have had: %t/%T from the line time (UTC), %I a UUID per line, %R a dlr-url (holding "|" and "%").
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from agent.config import ConfigError
from agent.formats.kannel_layout import compile_layout
from tests.conftest import FIXTURES
from tests.integration.test_kannel import CUSTOM, _config, _merge, _parse, _processor, _records, assert_ground_truth

SAMPLE = FIXTURES / "kannel" / "access.log"
EXPECTED = FIXTURES / "kannel" / "expected-final-state.jsonl"
DEFAULT = ("%l [SMSC:%i] [SVC:%n] [ACT:%A] [BINF:%B] [FID:%F] [META:%D] [from:%p] [to:%P] "
           "[flags:%m:%c:%M:%C:%d] [msg:%L:%b] [udh:%U:%u]")
FORMAT4 = ("%t|%T|%l|smsc=%i|svc=%n|acct=%A|binfo=%B|id=%I|fid=%F|from=%p|to=%P|coding=%c|mclass=%m|dlr=%d|"
           "dlr-url=%R|udh=%U:%u|len=%L|msg=%b")
LAYOUTS = {
    "kannel-FORMAT §4": FORMAT4,
    "default as a format string": DEFAULT,
    "text in the middle, pipes": "%t|%l|%i|%F|%p|%b|%P|%c|%d|%L|%I",
    "text first, tabs": "%b\t%l\t%i\t%F\t%p\t%P\t%c\t%d\t%L",
    "spaces, text before the dlr-url": "%l %i %F [%p] %P %c %d %L %b <%R> %T",
}
BERLIN = ZoneInfo("Europe/Berlin")
_CAPTURE = re.compile(compile_layout(DEFAULT))


def _fields(line: str) -> dict[str, str] | None:
    """Every escape code's value for one line of the default-format capture (None for Log begins/ends)."""
    m = _CAPTURE.match(line)
    if m is None:
        return None
    g = {k: v or "" for k, v in m.groupdict().items()}
    words = g["text"].split()
    undefined = g["event"] == "FAILED Receive DLR"  # Kannel prints an undefined message time this way
    when = datetime.strptime(g["time"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=BERLIN)
    codes = {"l": g["event"], "i": g["smsc"], "n": g["svc"], "A": g["act"], "B": g["binf"], "F": g["fid"],
             "D": g["meta"], "p": g["from"], "P": g["to"], "m": g["mclass"], "c": g["coding"], "M": g["mwi"],
             "C": g["compress"], "d": g["dlr"], "L": g["len"], "b": g["text"], "U": g["udhlen"], "u": g["udh"],
             "t": "1969-12-31 23:59:59" if undefined else when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
             "T": "" if undefined else str(int(when.timestamp())),
             "I": str(uuid.uuid5(uuid.NAMESPACE_URL, line)),
             "R": "" if g["dlr"] == "-1" else f"http://127.0.0.1:18080/dlr?ref=a|b&type=%d&fid={g['fid']}",
             "a": " ".join(words), "k": words[0] if words else "", "x": "", "%": "%"}
    return {"time": g["time"], **codes}


def _render(layout: str, line: str) -> str:
    fields = _fields(line)
    if fields is None:
        return line
    return f"{fields['time']} " + re.sub(r"%(.)", lambda m: fields[m.group(1)], layout)


def _write(tmp: Path, layout: str) -> Path:
    out = tmp / "access.log"
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    out.write_text("".join(_render(layout, line) + "\n" for line in lines), encoding="utf-8")
    return out


def _layout_config(tmp: Path, layout: str) -> Path:
    return _config(tmp, extra=f"    options:\n      access_log_format: {orjson.dumps(layout).decode()}\n")


@pytest.mark.parametrize("name", LAYOUTS)
def test_a_re_rendered_capture_reaches_the_ground_truth_in_every_layout(tmp_path, name):
    layout = LAYOUTS[name]
    log = _write(tmp_path, layout)
    lines, err = _parse(_layout_config(tmp_path, layout), str(log))
    assert "lines=537 records=341 rejected=0 skipped=196" in err, err
    expected = [orjson.loads(line) for line in EXPECTED.read_bytes().splitlines()]
    assert_ground_truth(lines, expected, msgtime_of_line="%t" in layout, label=name)


def test_the_default_layout_as_a_format_string_gives_the_same_records_as_the_preset(tmp_path):
    config = _layout_config(tmp_path, DEFAULT)
    theirs, _ = _parse(_config(tmp_path / "preset"), str(SAMPLE))
    ours, _ = _parse(config, str(SAMPLE))
    assert ours == theirs and len(ours) == 341


def test_explain_shows_the_compiled_regex(tmp_path):
    _, err = _parse(_layout_config(tmp_path, FORMAT4), "--explain", str(_write(tmp_path, FORMAT4)))
    shown = [line for line in err.splitlines() if line.startswith("source kannel: parser regex for rules ")]
    assert compile_layout(FORMAT4) in shown[0] and "rules receipt-intermediate, sent," in shown[0]
    assert r"\|msg=(?P<text>.*)$" in shown[0]


def test_the_kannel_custom_preset_is_the_format4_layout(tmp_path):
    preset = _processor(tmp_path / "a", "kannel-custom", tz="America/New_York")
    pasted = _processor(tmp_path / "b", tz="America/New_York",
                        extra=f"    options:\n      access_log_format: {orjson.dumps(FORMAT4).decode()}\n")
    assert preset.explain() == pasted.explain()
    assert _merge(_records(preset, *CUSTOM)) == _merge(_records(pasted, *CUSTOM))


def test_a_source_parser_replaces_the_custom_presets_layout_but_not_its_own(tmp_path):
    regex = "    parser:\n      type: regex\n      match: '^(?P<event>[^|]*)\\|(?P<fid>.*)$'\n"
    assert "(?P<fid>.*)$" in _processor(tmp_path / "a", "kannel-custom", extra=regex).explain()[0]
    with pytest.raises(ConfigError) as err:
        _processor(tmp_path / "b", extra=regex + "    options: {access_log_format: '%l|%F|%p|%P|%d'}\n")
    assert err.value.key == "sources[kannel].options.access_log_format" and "not both" in err.value.expected


@pytest.mark.parametrize(("extra", "key", "expected"), [
    ("    options: {access_log_format: '%l|%F|%p|%P|%d|%q'}\n", "options.access_log_format",
     "got %q at position 16"),
    ("    options: {access_log_format: '%l|%F|%p|%P|%d|%'}\n", "options.access_log_format", "a lone % at the end"),
    ("    options: {access_log_format: '%t|%l|%p|%P|%b'}\n", "options.access_log_format",
     "it lacks %F (the SMSC message id, which ties receipts to their message); %d (the DLR type"),
    ("    options: {access_log_format: ''}\n", "options.access_log_format", "the access-log-format string"),
    ("    options: {access_log_format: 5}\n", "options.access_log_format", "the access-log-format string"),
    ("    options: {access-log-format: '%l'}\n", "options.access-log-format",
     "an option of the kannel format (it takes: access_log_format)"),
    ("    options: [access_log_format]\n", "options", "a mapping of option -> value"),
])
def test_a_layout_the_rules_cannot_read_is_a_config_error_naming_what_is_missing(tmp_path, extra, key, expected):
    with pytest.raises(ConfigError) as err:
        _processor(tmp_path, extra=extra)
    assert err.value.key == f"sources[kannel].{key}" and expected in err.value.expected, err.value


def test_only_formats_that_take_a_layout_accept_one(tmp_path):
    with pytest.raises(ConfigError) as err:
        _processor(tmp_path, "twilio", extra="    options: {access_log_format: '%l'}\n")
    assert err.value.key == "sources[kannel].options.access_log_format" and "it takes: none" in err.value.expected
