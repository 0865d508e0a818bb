"""A Kannel `access-log-format` string compiled into the line regex of the kannel rules.

Operators change the layout in kannel.conf; pasting that string is all the agent needs. Each escape code becomes
a named group with the name the kannel preset's rules read (%l -> event, %F -> fid, %b -> text, ...), so every rule,
id and status word of the default layout applies unchanged. Kannel prepends its own `YYYY-MM-DD HH:MM:SS ` to
every line unless `access-log-clean = true`, so that prefix is an optional group `time` in front of the layout.

How a field knows where it ends (the text may hold any separator, and nothing escapes it):
- numbers, dates, hex and UUIDs match only their own shape;
- %l matches Kannel's event names (`Sent SMS`, `REJECTED - not white-listed SMS`), so it may be
  followed by a space;
- other fields (smsc-id, numbers, account, ...) stop at the first character of the literal that follows them: they
  never contain their own separator;
- the text (%b, else %a) is greedy: it takes everything the fields around it leave, whatever it contains, because
  the regex is anchored at both ends. %R (dlr-url) and %r (the rest of the words) stop at the first place where the
  rest of the layout matches; next to the text they are bounded by the literal between them (_lazy_without).
One layout stays ambiguous: the text before the event with only spaces between them, as in "%b %l". The text may
end in a word of an event name ("... FAILED" + "Receive DLR"); it is then read as long as it can be.
"""

from __future__ import annotations

import itertools
import re

# Shapes of the escape codes' values (gw/bb_alog.c). An empty value is always allowed where Kannel prints one.
_INT = r"-?\d*"
_DATE = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
_HEX = r"[0-9A-Fa-f]*"
_UUID = r"[0-9A-Fa-f-]*"
# Kannel's event names (gw/bearerbox.c, gw/bb_*.c): what happened, SMS or DLR, and for a refused MO a lower-case
# reason (`Sent SMS`, `DROPPED Received DLR`, `REJECTED - not white-listed SMS`; some builds log `REJECTED Receive
# SMS - …`). Named one by one, not by their look, so that in a layout separated by spaces no shorter name ("Send
# SMS") can be read off a longer one.
_REASON = r" - [a-z][a-z-]*(?: [a-z-]+)*(?: SMS)?"
_EVENT = (rf"(?:(?:Sent|Receive|(?:FAILED|REJECTED) (?:Send|Receive)|DROPPED Received|DISCARDED|EXPIRED) (?:SMS|DLR)"
          rf"(?:{_REASON})?|REJECTED{_REASON})")
_FREE, _TEXT, _LAZY = "free", "text", "lazy"

# escape -> (group name the rules read, shape). Group names of codes the rules do not use are there for `map:`.
ESCAPES: dict[str, tuple[str, str]] = {
    "l": ("event", _EVENT),
    "i": ("smsc", _FREE),
    "n": ("svc", _FREE),
    "A": ("act", _FREE),
    "B": ("binf", _FREE),
    "I": ("uuid", _UUID),
    "F": ("fid", _FREE),
    "p": ("from", _FREE),
    "P": ("to", _FREE),
    "c": ("coding", _INT),
    "m": ("mclass", _INT),
    "M": ("mwi", _INT),
    "C": ("compress", _INT),
    "d": ("dlr", _INT),
    "R": ("dlrurl", _LAZY),
    "D": ("meta", _FREE),
    "U": ("udhlen", _INT),
    "u": ("udh", _HEX),
    "L": ("len", _INT),
    "b": ("text", _TEXT),
    "a": ("words", _TEXT),  # the text with its spaces squeezed; the body when the layout has no %b
    "t": ("msgtime", _DATE),  # the message's own time, GMT
    "T": ("epoch", _INT),
    "k": ("keyword", _FREE),
    "s": ("word", _FREE),
    "S": ("word", _FREE),
    "r": ("rest", _LAZY),
    "x": ("smsbox", _FREE),
}

# What the kannel rules cannot do without, and why (the error names each missing code).
REQUIRED: dict[str, str] = {
    "l": "the event (Sent SMS, Receive DLR, ...), which selects every rule",
    "F": "the SMSC message id, which ties receipts to their message",
    "d": "the DLR type, which tells final receipts from Kannel's own ACKs and NACKs",
    "p": "the sender, part of the id of messages without an SMSC id (refused submits, MO)",
    "P": "the receiver, part of the id of messages without an SMSC id (refused submits, MO)",
}

# Without the coding, a UCS-2 or 8-bit text (which Kannel logs as hex) could not be told from a GSM one.
CODING = ("%c (the coding): Kannel logs UCS-2 and 8-bit messages as hex, and only the coding tells the agent to "
          "decode them; without it they would be sent as hex")
# Fields whose values may hold spaces: the sender ("Acme Bank"), account, billing info, service name, meta-data.
# They end at the first character of the literal after them, so that literal may not be one they can hold.
# (%P cannot: Kannel splits receivers on spaces; %k %s %S are single words; ids and smsc names hold no spaces.)
SPACED = {"p": "the sender", "A": "the account", "B": "the billing info", "n": "the service name",
          "D": "the meta-data"}

PREFIX = rf"^(?:(?P<time>{_DATE}) |)"  # `(?:…|)`: the same match as `(?:…)?`, with less work in Python's engine
_TOKEN = re.compile(r"%(.?)|[^%]+", re.DOTALL)
_SPECIAL = re.compile(r"([.^$*+?{}\[\]\\|()])")


def _literal(text: str) -> str:
    """Text matched as is; unlike re.escape, spaces and dashes stay readable in `parse --explain`."""
    return _SPECIAL.sub(r"\\\1", text)


def _not(char: str) -> str:
    """Any run of characters but `char`."""
    escaped = "\\" + char if char in "\\]^-" else char
    return f"[^{escaped}]*"


def _lazy_without(literal: str) -> str:
    """A field next to the greedy text with only `literal` between them never holds that literal in the match
    Python's regex engine finds: after the text, the text would have taken it (it tries longest first); before the
    text, the field ends at the first place the text can start. Saying so keeps a line that does not match from
    costing time quadratic in its length (each end of the text times each end of the field)."""
    if len(literal) == 1:
        return _not(literal) + "?"
    return rf"(?:(?!{_literal(literal)}).)*?"


def _ends_at(shape: str, char: str) -> bool:
    """The shape is a run of one character class (its `-?` aside) that `char` is not in: the run ends where `char`
    is, whatever the line holds."""
    runs = (_INT, _HEX, _UUID, _not(char))
    return shape in runs and re.fullmatch(shape, char) is None


class LayoutError(ValueError):
    """The layout cannot be compiled or lacks what the rules need; the message says what to change."""


def _tokens(layout: str) -> list[tuple[str, str]]:
    """("lit", text) and ("esc", code) pieces; `%%` is a literal %."""
    out: list[tuple[str, str]] = []
    for m in _TOKEN.finditer(layout):
        code = m.group(1)
        if code is None:
            out.append(("lit", m.group()))
        elif code == "%":
            out.append(("lit", "%"))
        elif code in ESCAPES:
            out.append(("esc", code))
        else:
            shown = f"%{code}" if code else "a lone % at the end"
            known = " ".join(f"%{c}" for c in ESCAPES)
            raise LayoutError(f"Kannel escape codes only ({known}, %% for a literal %); got {shown} at "
                              f"position {m.start() + 1}")
    merged: list[tuple[str, str]] = []
    for kind, value in out:  # "a%%b" is one literal "a%b"
        if kind == "lit" and merged and merged[-1][0] == "lit":
            merged[-1] = ("lit", merged[-1][1] + value)
        else:
            merged.append((kind, value))
    return merged


def _check_ends(tokens: list[tuple[str, str]]) -> None:
    """Refuse a field that may hold spaces followed by a literal it could hold: its value would swallow the
    separator and every field after it would shift ("%p %P" with the sender "Acme Bank")."""
    for (kind, code), following in itertools.pairwise(tokens):
        if kind == "esc" and code in SPACED and following[0] == "lit":
            first = following[1][0]
            if first.isalnum() or first in " -_.+":  # a tab is fine: no sender or account holds one
                raise LayoutError(f"a separator {SPACED[code]} cannot hold after %{code}: its value may contain "
                                  f"{first!r} (e.g. a sender \"Acme Bank\"), so the fields after it would shift; "
                                  f"use \"|\" or brackets (\"[%{code}]\") instead")


def compile_layout(layout: str) -> str:
    """The line regex (as text) for a Kannel access-log-format; raises LayoutError saying what is wrong."""
    if not isinstance(layout, str) or not layout.strip():
        raise LayoutError("the access-log-format string from kannel.conf, e.g. \"%t|%l|%i|%F|%p|%P|%d|%b\"")
    tokens = _tokens(layout)
    codes = {value for kind, value in tokens if kind == "esc"}
    missing = [f"%{code} ({why})" for code, why in REQUIRED.items() if code not in codes]
    if missing:
        raise LayoutError(f"a layout the kannel rules can read; it lacks {'; '.join(missing)}")
    if codes & {"b", "a"} and "c" not in codes:
        raise LayoutError(f"a layout with the text (%b or %a) to have {CODING}")
    _check_ends(tokens)
    names = {code: ESCAPES[code][0] for code in codes}
    if "b" not in codes and "a" in codes:  # the squeezed text is the body when the layout has no %b
        names["a"] = "text"
    greedy = next((i for i, (kind, value) in enumerate(tokens) if kind == "esc" and names[value] == "text"), None)
    parts = [PREFIX]
    captured: set[str] = set()
    for i, (kind, value) in enumerate(tokens):
        if kind == "lit":
            parts.append(_literal(value))
            continue
        name, shape = names[value], ESCAPES[value][1]
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        if shape == _TEXT:
            # the text takes what the other fields leave (greedy); another text-like field stops as early as it can
            shape = ".*" if i == greedy else ".*?"
        elif shape == _LAZY:
            shape = ".*?"
        elif shape == _FREE:
            shape = _not(following[1][0]) if following and following[0] == "lit" else ".*?"
        if following and following[0] == "lit" and _ends_at(shape, following[1][0]):
            shape += "+"  # possessive: giving back a character could never let the literal match, so keep no state
        if shape == ".*?" and greedy is not None and abs(i - greedy) == 2 and tokens[(i + greedy) // 2][0] == "lit":
            shape = _lazy_without(tokens[(i + greedy) // 2][1])
        # a code used twice is matched again, captured once
        parts.append(f"(?:{shape})" if name in captured else f"(?P<{name}>{shape})")
        captured.add(name)
    parts.append("$")
    return "".join(parts)
