"""The Volt message record: the contract's fields, their types, and the one check every record passes.

Invariant 2 lives here: a record never carries None, "", or an empty list/object. `clean()` drops such
values; `validate()` refuses anything outside the contract so a bad record never reaches Volt.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

KNOWN_PROVIDERS = frozenset(
    "twilio bandwidth telnyx pinpoint plivo infobip messagebird commio imimobile sinch vonage smpp "
    "ringcentral cdyne tychron".split()
)

STRING_FIELDS = (
    "id",
    "provider",
    "message_created_at",
    "message_sent_at",
    "message_finalized_at",
    "error_code",
    "from_number",
    "to_number",
    "body",
    "status",
    "direction",
    "message_type",
    "error_message",
    "mno_name",
    "message_profile_id",
    "messaging_profile_name",
    "line_type",
)
INT_FIELDS = ("segment_count",)
DATE_FIELDS = frozenset(("message_created_at", "message_sent_at", "message_finalized_at"))
ALL_FIELDS = frozenset(STRING_FIELDS + INT_FIELDS)
REQUIRED = ("id", "provider")
MAX_INT = 2**31 - 1  # no message has more segments; and JSON encoders refuse integers past 64 bits

# ISO 8601 date-time; the contract asks for an offset, which is checked separately so the
# message can say which of the two is wrong.
_ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d{1,9})?)?(Z|[+-]\d\d:?\d\d)?$")
_OFFSET = re.compile(r"(Z|[+-]\d\d:?\d\d)$")
# Both at once, for the common case of a good date (a failure goes through the two above for its message).
_ISO_WITH_OFFSET = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d{1,9})?)?(?:Z|[+-]\d\d:?\d\d)")


class InvalidRecord(ValueError):
    """A record that does not fit Volt's contract; the message names the field and the problem."""


_STRING, _INT, _DATE, _PROVIDER = 0, 1, 2, 3
_KIND = {name: (_DATE if name in DATE_FIELDS else _STRING) for name in STRING_FIELDS} | {n: _INT for n in INT_FIELDS}
_KIND["provider"] = _PROVIDER
_GOOD_DATES: dict[str, None] = {}  # date strings already checked; log times repeat every line within a second
_PROVIDER_LIST = ", ".join(sorted(KNOWN_PROVIDERS))


def _is_unknown(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def clean(record: dict[str, Any]) -> dict[str, Any]:
    """Drop unknown values (None, "", empty containers) so they can never erase data Volt already has."""
    if all(record.values()):  # fast path: nothing falsy, so nothing unknown
        return record
    return {k: v for k, v in record.items() if not _is_unknown(v)}


def _date_problem(key: str, value: str) -> str | None:
    if value in _GOOD_DATES:
        return None
    if not _ISO.fullmatch(value):  # `$` alone would let a final newline through
        return f"field {key!r} is not an ISO 8601 date-time: {value[:40]!r}"
    if not _OFFSET.search(value):
        return f"field {key!r} has no UTC offset: {value!r}"
    if len(_GOOD_DATES) > 4096:
        _GOOD_DATES.clear()
    _GOOD_DATES[value] = None
    return None


def field_problem(key: str, value: Any) -> str | None:
    """Say what is wrong with one field of a record, or None when it fits the contract.

    Compiled mappings call this only for values whose type they cannot know in advance (JSON input).
    """
    kind = _KIND.get(key)
    if kind is None:
        return f"unknown field {key!r}"
    if kind == _INT:
        if type(value) is not int or not 1 <= value <= MAX_INT:
            shown = "a larger one" if type(value) is int and value.bit_length() > 64 else repr(value)[:40]
            return f"field {key!r} must be a positive integer up to {MAX_INT}, got {shown}"
        return None
    if value is None:
        return f"field {key!r} is null (leave unknown fields out)"
    if value == "":
        return f"field {key!r} is empty (leave unknown fields out)"
    if not isinstance(value, str):
        return f"field {key!r} must be a string, got {type(value).__name__}"
    if kind == _DATE:
        return _date_problem(key, value)
    if kind == _PROVIDER and value not in KNOWN_PROVIDERS:
        return f"provider {value!r} is not one Volt knows (lower case, one of: {_PROVIDER_LIST})"
    return None


def problem(record: Any) -> str | None:
    """Say what is wrong with `record` against the contract, or None when it fits.

    Returning a reason instead of raising keeps the hot path free of exception set-up.
    """
    if type(record) is not dict:
        return f"body must be a JSON object, got {type(record).__name__}"
    if "id" not in record or "provider" not in record:
        return f"missing required field {'id' if 'id' not in record else 'provider'!r}"
    kinds = _KIND
    for key, value in record.items():
        if kinds.get(key) == _STRING and type(value) is str and value:
            continue  # the common case, without a call
        reason = field_problem(key, value)
        if reason is not None:
            return reason
    return None


def _good_date(value: str) -> bool:
    """The common case of `_date_problem` in one regex call; False sends the caller to `problem` for the reason."""
    if _ISO_WITH_OFFSET.fullmatch(value) is None:
        return False
    if len(_GOOD_DATES) > 4096:
        _GOOD_DATES.clear()
    _GOOD_DATES[value] = None
    return True


_TESTS = {
    _STRING: "({v}.__class__ is str and {v})",
    _INT: "({v}.__class__ is int and 1 <= {v} <= {max_int})",
    _DATE: "({v}.__class__ is str and ({v} in _good_dates or _good_date({v})))",
    _PROVIDER: "({v}.__class__ is str and {v} in _providers)",
}


class ShapeCheck:
    """`problem()` for records whose fields recur in the same order (JSON lines written by one program).

    Each shape (its keys, in order) gets one generated check of exactly its fields: an unpacking and a type or
    membership test per field, instead of a loop with a lookup and a call per field. A record that fails it asks
    `field_problem()` about the fields whose test failed, in order, for the reason `problem()` would give: a
    refused record (an unknown provider, say) costs no more than an accepted one.
    Fields in `unchecked` are the caller's to remove before the record goes anywhere (`body: drop`).
    """

    MAX_SHAPES = 256  # past this (keys in ever new orders), records take the general check

    def __init__(self, unchecked: frozenset[str] = frozenset()) -> None:
        self.unchecked = unchecked
        self.shapes: dict[tuple[str, ...], Callable[[dict[str, Any]], str | None]] = {}  # shape -> its check

    def __call__(self, record: dict[str, Any]) -> str | None:
        shape = tuple(record)
        return (self.shapes.get(shape) or self._learn(shape))(record)

    def general(self, record: dict[str, Any]) -> str | None:
        """`problem()` without the unchecked fields: the check of a shape no generated test can pass."""
        if self.unchecked and not self.unchecked.isdisjoint(record):
            record = {k: v for k, v in record.items() if k not in self.unchecked}
        return problem(record)

    def _learn(self, shape: tuple[str, ...]) -> Callable[[dict[str, Any]], str | None]:
        """The check for one shape: a generated one, or `general` for a shape no record can pass (unknown field, no
        id or provider). Past MAX_SHAPES, new shapes are not kept."""
        if len(self.shapes) >= self.MAX_SHAPES:
            return self.general
        check: Callable[[dict[str, Any]], str | None] = self.general
        if set(shape) <= ALL_FIELDS and "id" in shape and "provider" in shape:
            names = [f"v{i}" for i in range(len(shape))]
            checked = [(key, v, _TESTS[_KIND[key]].format(v=v, max_int=MAX_INT))
                       for key, v in zip(shape, names, strict=True) if key not in self.unchecked]
            # the first field problem() would name: a failed test may still be a valid value (a date in another
            # form), so field_problem() decides
            why = "".join(f"    if not {t} and (p := _field_problem({key!r}, {v})) is not None:\n        return p\n"
                          for key, v, t in checked)
            source = (f"def check(r):\n    {', '.join(names)}, = r.values()\n"
                      f"    if {' and '.join(t for _, _, t in checked) or 'True'}:\n        return None\n"
                      f"{why}    return None\n")
            ns = {"_good_dates": _GOOD_DATES, "_good_date": _good_date, "_providers": KNOWN_PROVIDERS,
                  "_field_problem": field_problem}
            exec(compile(source, "<record shape>", "exec"), ns)
            check = ns["check"]
        self.shapes[shape] = check
        return check


def validate(record: Any) -> dict[str, Any]:
    """Return `record` if it fits the contract, else raise InvalidRecord with the reason."""
    reason = problem(record)
    if reason is not None:
        raise InvalidRecord(reason)
    return record
