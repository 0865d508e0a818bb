"""The access-log-format compiler: any layout, any text (separators, brackets, "%" included) wherever it stands."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.formats.kannel_layout import ESCAPES, PREFIX, REQUIRED, SPACED, LayoutError, compile_layout

EVENTS = ["Sent SMS", "Receive DLR", "Receive SMS", "REJECTED Send SMS", "FAILED Send SMS", "DISCARDED SMS",
          "EXPIRED SMS", "FAILED Receive DLR", "DROPPED Received DLR", "REJECTED Receive SMS - not white-listed SMS",
          "REJECTED Receive SMS - black-listed SMS", "REJECTED - not white-listed SMS",
          "REJECTED - not white-regex-listed SMS", "REJECTED - black-listed SMS", "REJECTED - black-regex-listed SMS"]
SEPARATORS = ["|", ";", ",", "\t", " ", "] [", " [x:", "=", "&", "::", " | ", "><", "%"]
NUMBER = st.one_of(st.just(""), st.integers(-1, 9999).map(str))
SHAPES = {
    "event": st.sampled_from(EVENTS),
    "msgtime": st.sampled_from(["2026-11-27 01:15:46", "1969-12-31 23:59:59"]),
    "uuid": st.uuids().map(str),
    "udh": st.text("0123456789ABCDEF", max_size=12),
    "text": st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), max_size=60),
}
CODES = [c for c in ESCAPES if c not in ("a", "r", "R", "s", "S", "b", "c") and c not in REQUIRED]


def _value(name: str, shape: str, free: str) -> st.SearchStrategy[str]:
    if name in SHAPES:
        return SHAPES[name]
    if shape == r"-?\d*":
        return NUMBER
    return st.text(free, max_size=20)


@st.composite
def layouts(draw: st.DrawFn) -> tuple[str, str, dict[str, str]]:
    """A layout of the required codes, %b and some others in any order with any separators; a line rendered in
    it (with or without Kannel's date prefix) and the value of every field."""
    codes = [*REQUIRED, "b", "c", *draw(st.lists(st.sampled_from(CODES), unique=True, max_size=6))]
    codes = draw(st.permutations(codes))
    seps = [draw(st.sampled_from(SEPARATORS)) for _ in range(len(codes) + 1)]
    seps[0] = draw(st.sampled_from(["", *SEPARATORS[:3]]))
    seps[-1] = draw(st.sampled_from(["", *SEPARATORS]))
    # The one layout that cannot be read both ways: the text before the event with only spaces between them. The
    # event names hold spaces and the text may end in one of their words ("... FAILED" + "Receive DLR"); the text
    # is then read as long as it can be (kannel_layout's docstring, README).
    text, event = codes.index("b"), codes.index("l")
    for i in range(text + 1, event + 1):
        if seps[i] == " ":
            seps[i] = "|"
    for i, code in enumerate(codes):  # a field that may hold spaces does not end at a space (refused, tested below)
        if code in SPACED and seps[i + 1][:1].isspace():
            seps[i + 1] = "|"
    # ids, numbers and names never hold a separator of the layout (the text may hold anything)
    used = set("".join(seps))
    free = "".join(c for c in "abcxyz019+-_.:/@?=&" if c not in used)
    values = {c: draw(_value(ESCAPES[c][0], ESCAPES[c][1], free)) for c in codes}
    literal = [s.replace("%", "%%") for s in seps]  # kannel.conf writes a literal % as %%
    layout = literal[0] + "".join(f"%{c}{s}" for c, s in zip(codes, literal[1:], strict=True))
    line = seps[0] + "".join(values[c] + s for c, s in zip(codes, seps[1:], strict=True))
    if draw(st.booleans()):
        line = "2026-11-26 20:16:42 " + line
    return layout, line, values


@settings(max_examples=400, deadline=None)
@given(layouts())
def test_every_field_comes_back_whatever_the_text_holds_and_wherever_it_stands(case):
    layout, line, values = case
    m = re.match(compile_layout(layout), line)
    assert m is not None, (layout, line)
    for code, value in values.items():
        assert m[ESCAPES[code][0]] == value, (code, layout, line)



def test_a_percent_written_twice_is_a_literal_and_a_code_used_twice_is_captured_once():
    m = re.match(compile_layout("%l %F <%p> %P %d %c 100%% %b %F"), "Sent SMS f1 <a> b 1 0 100% hi %F f1")
    assert m is not None and (m["fid"], m["text"]) == ("f1", "hi %F")


def test_squeezed_text_is_the_body_when_the_layout_has_no_b():
    m = re.match(compile_layout("%l|%F|%p|%P|%d|%c|%a|%k"), "Sent SMS|f|a|b|1|0|hello | world|hello")
    assert m is not None and (m["text"], m["keyword"]) == ("hello | world", "hello")
    m = re.match(compile_layout("%l|%F|%p|%P|%d|%c|%b|%a"), "Sent SMS|f|a|b|1|0|x|y|x y")
    assert m is not None and (m["text"], m["words"]) == ("x|y", "x y")


@pytest.mark.parametrize(("layout", "message"), [
    ("%l|%F|%p|%P|%d|%y", "got %y at position 16"),
    ("%l|%F|%p|%P|%d|%", "got a lone % at the end"),
    ("%i|%b", "it lacks %l (the event"),
    ("   ", "the access-log-format string from kannel.conf"),
    ("%l|%F|%p|%P|%d|%b", "to have %c (the coding): Kannel logs UCS-2 and 8-bit messages as hex"),
    ("%l|%F|%p|%P|%d|%a", "to have %c (the coding)"),
    ("%l %i %F %p %P %d %c %b", "a separator the sender cannot hold after %p: its value may contain ' '"),
    ("%l|%F|%p|%P|%d|%c|acct=%A more=%b", "a separator the account cannot hold after %A"),
    ("%l|%F|%p|%P|%d|%c|%n-%b", "a separator the service name cannot hold after %n: its value may contain '-'"),
])
def test_an_unknown_escape_or_a_missing_field_says_what_to_change(layout, message):
    with pytest.raises(LayoutError, match=re.escape(message)):
        compile_layout(layout)


# The lazy fields next to the greedy text are bounded by the literal between them (kannel_layout._lazy_without);
# with `.*?` instead, as before, a line that does not match took time quadratic in its length.
_BOUNDED = re.compile(r"\[\^(?:\\.|[^\]\\])\]\*\?|\(\?:\(\?!(?:\\.|[^)\\])+\)\.\)\*\?")


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["%l|%F|%p|%P|%d|%c|%b|%R|%L", "%l|%F|%p|%P|%d|%c|%R|%b|%L", "%l|%F|%p|%P|%d|%c|%b|%a|%T",
                        "%l|%F|%p|%P|%d|%c|%b|%r|%R|%L", "%l %F [%p] %P %d %c %b <%R> %T", "%b <%R> %l;%F;%p;%P;%d;%c",
                        "%l|%F|%p|%P|%d|%c|%b|%p%P"]),
       st.lists(st.text("|<> ;ab1", max_size=6), min_size=4, max_size=4))
def test_bounding_the_fields_next_to_the_text_changes_no_match(layout, values):
    regex = compile_layout(layout)
    assert _BOUNDED.search(regex)
    unbounded = _BOUNDED.sub(".*?", regex)
    sep = "|" if "|" in layout else ";"
    for line in (f"Sent SMS{sep}f{sep}a{sep}b{sep}1{sep}0{sep}" + sep.join(values),
                 "Sent SMS f [a] b 1 0 " + " <".join(values) + "> " + values[0],
                 " <".join(values) + "> Sent SMS;f;a;b;1;0"):
        new, old = re.match(regex, line), re.match(unbounded, line)
        assert (new and new.groupdict()) == (old and old.groupdict()), (layout, line)


@pytest.mark.parametrize("layout", ["%l|%F|%p|%P|%d|%c|%b|%R|%L", "%l|%F|%p|%P|%d|%c|%R|%b|%L",
                                    "%l|%F|%p|%P|%d|%c|%b|%a|%T", "%l %F [%p] %P %d %c %b <%R> %T"])
def test_a_long_line_that_does_not_match_is_refused_in_one_pass(layout):
    """150,000 separators: minutes with the text and the field next to it both open-ended."""
    start, sep = ("Sent SMS|f|a|b|1|0|", "|") if "|" in layout else ("Sent SMS f [a] b 1 0 ", " <")
    assert re.match(compile_layout(layout), start + sep * 150_000 + "x") is None


def _backtracking(regex: str) -> str:
    """The layout's regex as it was before its runs became possessive and its optional prefix a branch."""
    assert regex.startswith(PREFIX)
    return regex.replace(" |)", " )?", 1).replace("*+", "*")


@settings(max_examples=300, deadline=None)
@given(layouts(), st.data())
def test_possessive_runs_match_what_backtracking_ones_match(case, data):
    """Differential: the regex matches every line, cut or spliced too, exactly as its backtracking form does."""
    layout, line, _ = case
    if data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(line)))
        j = data.draw(st.integers(i, len(line)))
        line = line[:i] + data.draw(st.sampled_from(["", "|", " ", "-", "1", "]", "<", "a b"])) + line[j:]
    regex = compile_layout(layout)
    assert "*+" in regex  # the layouts have runs that end at a separator
    got, want = re.match(regex, line), re.match(_backtracking(regex), line)
    assert (got and got.groupdict()) == (want and want.groupdict()), (layout, line)


# Separators a run could hold: a digit or "-" after a number, a hex digit after %u, "]" or a blank after a word.
ODD_LAYOUTS = ["%l|%F|%p|%P|%d-%c-%L|%b", "%l|%F|%p|%P|%d1%c|%b", "%l|%F|%p|%P|%d|%c|%uA|%b", "[%l] [%F] [%p] [%P] "
               "[%d] [%c] [%b]", "%l %F|%p|%P %d %c %T0%b"]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ODD_LAYOUTS), st.lists(st.text("0123456789-aAF |[]", max_size=6), min_size=8, max_size=8))
def test_runs_stay_backtracking_where_the_separator_could_be_part_of_them(layout, values):
    pieces = re.split(r"%.", layout)
    line = "Sent SMS".join(pieces[:2]) + "".join(v + p for v, p in zip(values, pieces[2:], strict=False))
    regex = compile_layout(layout)
    got, want = re.match(regex, line), re.match(_backtracking(regex), line)
    assert (got and got.groupdict()) == (want and want.groupdict()), (layout, line)
