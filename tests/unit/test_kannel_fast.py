"""Differential: the kannel format's cheaper line regex maps every line exactly as the plain one did.

The kannel preset's line regex splits a standard SMPP receipt inside [msg:] into groups (rcpt_*), and a receipt rule
reads them instead of parsing the text again; its event and optional parts are written to backtrack less. The
reference is the same format with the line regex as it was before (a source's own `parser:` replaces the preset's):
without the rcpt_* groups every receipt takes the general `receipt` rule and its parse. Both read generated lines,
and Hypothesis-built ones with what real logs and broken ones hold (UCS-2 hex, brackets and receipts in texts, no
[META:], an empty FID, receipts with keys in another case, missing fields or odd stat words); rule, records and
reject reason must be identical, line by line. kannel_text's shortcut for GSM texts is checked against its general
path the same way.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.config import load
from agent.formats.source import Processor
from agent.formats.transforms import kannel_text
from tests.unit.test_fast_paths import ZONES, lines

# The kannel preset's line regex before the receipt groups: the reference.
PLAIN = (r"^(?:(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) )?(?P<event>[A-Z][^\[]*?) \[SMSC:(?P<smsc>[^\]]*)\] "
         r"\[SVC:(?P<svc>[^\]]*)\] \[ACT:(?P<act>[^\]]*)\] \[BINF:[^\]]*\] \[FID:(?P<fid>[^\]]*)\]"
         r"(?: \[META:[^\]]*\])? \[from:(?P<from>[^\]]*)\] \[to:(?P<to>[^\]]*)\] "
         r"\[flags:-?\d*:(?P<coding>-?\d*):-?\d*:-?\d*:(?P<dlr>-?\d*)\] \[msg:(?P<len>\d*):(?P<text>.*)\] "
         r"\[udh:\d*:[0-9A-Fa-f]*\]$")


def _processor(tmp: Path, zone: str, parser: str | None) -> Processor:
    own = f"    parser: {{type: regex, match: {orjson.dumps(parser).decode()}}}\n" if parser else ""
    cfg = tmp / f"kannel-{zone.replace('/', '-')}-{'plain' if parser else 'preset'}.yaml"
    cfg.write_text(f"sources:\n  - name: s\n    format: kannel\n    paths: [x]\n    default_country: GB\n"
                   f"    timezone: {zone}\n    receipt_timezone: {zone}\n{own}")
    return Processor(load(cfg).sources[0])


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Processor, Processor]]:
    """(preset, reference) per zone."""
    tmp = tmp_path_factory.mktemp("kannel")
    return [(_processor(tmp, zone, None), _processor(tmp, zone, PLAIN)) for zone in ZONES]


def _same(pair: tuple[Processor, Processor], line: str) -> None:
    fast, plain = (p.run(line) for p in pair)
    assert (fast.rule, fast.records, fast.reject) == (plain.rule, plain.records, plain.reject), line


def test_the_reference_takes_the_general_receipt_rule(pairs):
    """The reference really is the other path: only the preset's regex has the receipt groups."""
    fast, plain = pairs[0]
    assert "rcpt_stat" in fast.groups[0].regex.groupindex  # type: ignore[union-attr]
    assert "rcpt_stat" not in plain.groups[0].regex.groupindex  # type: ignore[union-attr]


def test_generated_and_sample_lines_map_as_with_the_plain_regex(pairs):
    texts = list(lines())
    receipts = 0
    for pair in pairs:
        for text in texts:
            _same(pair, text)
            receipts += "stat:" in text and pair[0].run(text).rule == "receipt"
    assert receipts > 100  # receipts reach the rule this is about


_WORD = st.text(st.characters(codec="utf-8", exclude_characters="\n\r"), max_size=12)
_DIGITS = st.text("0123456789", min_size=1, max_size=14)
_STAT = st.sampled_from(["DELIVRD", "UNDELIV", "EXPIRED", "REJECTD", "ACCEPTD", "ENROUTE", "UNKNOWN", "DELETED",
                         "Delivrd", "delivered", "2", "", "STAT?", "DELIV RD", "déliv"])
_DATE = st.one_of(st.sampled_from(["261127023502", "2611270235", "", "991231235959", "000000000000", "26113202350"]),
                  _DIGITS)


def _mostly(usual: str, *odd: str) -> st.SearchStrategy[str]:
    """The usual value seven times in eight, else one of the odd ones."""
    return st.integers(0, 7).flatmap(lambda n: st.sampled_from(odd) if n == 0 else st.just(usual))


@st.composite
def receipts(draw: st.DrawFn) -> str:
    """SMPP receipt texts: as SMSCs write them, and with every way they go wrong."""
    keys = ["id", "sub", "dlvrd", "submit date", "done date", "stat", "err", "text"]
    values = [draw(_DIGITS), "001", "001", draw(_DATE), draw(_DATE), draw(_STAT),
              draw(_mostly("000", "0", "00", "001", "0x0b", "", "-1")), draw(_WORD)]
    if draw(st.integers(0, 4)) == 0:  # keys in another case or spelling
        keys = [draw(st.sampled_from([k, k.upper(), k.title(), k.replace(" ", "_")])) for k in keys]
    if draw(st.integers(0, 4)) == 0:  # a field missing
        del keys[i := draw(st.integers(0, 7))], values[i]
    pieces = [f"{k}:{v}" for k, v in zip(keys, values, strict=True)]
    spaces = st.sampled_from([" ", " ", "  ", "\t \u00a0", "\u2003", ""])  # "": two fields run together
    text = "".join(p + draw(spaces) for p in pieces[:-1]) + pieces[-1]
    # words in the receipt's text that look like the receipt's own keys or the line's
    return text + draw(_mostly("", " stat:UNDELIV err:001", "] [udh:0:]", " text:again", "]", " [x]"))


@st.composite
def kannel_lines(draw: st.DrawFn) -> str:
    """Default-layout Kannel lines with odd values in every field (most lines still match the layout)."""
    event = draw(st.one_of(st.just("Receive DLR"), st.just("Sent SMS"), st.sampled_from([
        "Receive SMS", "REJECTED Send SMS", "FAILED Send SMS", "DISCARDED SMS", "FAILED Receive DLR",
        "REJECTED - not white-listed SMS", "Sent DLR", "receive dlr", "Receive  DLR"])))
    coding = draw(_mostly("0", "-1", "1", "2", "", "3"))
    dlr = draw(st.one_of(st.sampled_from(["1", "2"]), st.sampled_from(["4", "8", "16", "34", "-1", ""])))
    if event.startswith("Receive DLR") and dlr == "16":
        text = draw(st.sampled_from(["NACK/0x0000000b/Invalid Destination Address", "NACK/", "NACK/Retries Exceeded",
                                     "NACK/0x45"]))
    elif event == "Receive DLR" or draw(st.integers(0, 9)) == 0:
        text = draw(receipts())
    elif coding in ("1", "2") and draw(st.booleans()):
        text = draw(_WORD).encode("utf-16-be" if coding == "2" else "utf-8", "surrogatepass").hex().upper()
    else:
        text = draw(st.one_of(_WORD, st.sampled_from(["[brackets] in ] text [", "a] [udh:0:] b", "x" * 200])))
    fid = draw(_mostly("1525260280", "", "0x1F", "a b", "]"))
    meta = draw(_mostly(" [META:?smpp_resp?]", "", " [META:?orig_msg?dlr_mask=31&]"))
    number = _mostly("447700900587", "", "07700900415", "+447700900415", "0033612340707", "88001", "INFO")
    prefix = draw(_mostly("2026-11-27 02:35:02 ", "2026-03-29 02:30:00 ", "", "1969-12-31 23:59:59 ",
                          "2026-11-27 2:35:02 "))
    length = draw(_mostly(str(len(text)), "", "140", "999999"))
    return (f"{prefix}{event} [SMSC:{draw(_mostly('vodafone_uk', '', 'a b'))}] [SVC:tester] [ACT:] [BINF:] "
            f"[FID:{fid}]{meta} [from:{draw(number)}] [to:{draw(number)}] [flags:-1:{coding}:-1:-1:{dlr}] "
            f"[msg:{length}:{text}] [udh:{draw(_mostly('0:', '6:050003A10201', 'x:'))}]"
            + draw(_mostly("", " ", "]")))


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(line=kannel_lines(), zone=st.integers(0, len(ZONES) - 1))
def test_any_kannel_line_maps_as_with_the_plain_regex(pairs, line, zone):
    _same(pairs[zone], line)


@given(text=st.one_of(st.text(max_size=40), st.none()), coding=st.sampled_from(["0", "-1"]))
def test_a_gsm_text_is_what_the_general_path_gives(text, coding):
    """A coding with blanks around it (" 0") takes kannel_text's general path; the plain one its shortcut."""
    assert kannel_text(text, coding) == kannel_text(text, f" {coding} ")  # type: ignore[arg-type]


RECEIPT = ("2026-11-27 01:13:33 Receive DLR [SMSC:vodafone_uk] [SVC:tester] [ACT:vf_kannel] [BINF:] [FID:1525128912] "
           "[META:?orig_msg?dlr_mask=31&?smpp?dlr_err=%03%00%01&] [from:+14155550100] [to:+447700900356] "
           "[flags:-1:-1:-1:-1:2] [msg:122:id:1525128912 sub:001 dlvrd:000 submit date:2611270113 done "
           "date:2611270113 stat:UNDELIV err:001 text:Reminder: appointmen] [udh:0:]")


def test_a_source_map_reading_the_parsed_receipt_finds_it_on_every_receipt(tmp_path):
    """The receipt shortcut has no derived `r`: a source with its own `map:` entries skips it, so `$r.…` (as the
    format documents it) is never silently empty on the receipts the shortcut would have taken."""
    cfg = tmp_path / "kannel-map.yaml"
    cfg.write_text("sources:\n  - name: s\n    format: kannel\n    paths: [x]\n"
                   "    map: {error_code: $r.err, error_message: {field: r.sub}}\n")
    processor = Processor(load(cfg).sources[0])
    result = processor.run(RECEIPT)
    assert result.rule == "receipt"
    assert result.records[0]["error_code"] == "001" and result.records[0]["error_message"] == "001"
    assert sum(r.name == "receipt" for r in processor.rules) == 1, "the shortcut is left out"
