"""SMPP delivery receipts and the status tables (message states, ESME command status codes)."""

from __future__ import annotations

import re

# The common, well-formed receipt in one match; anything else goes through the tolerant key scanner.
_RECEIPT_PATTERN = (
    r"id:(?P<id>\S*)\s+sub:(?P<sub>\S*)\s+dlvrd:(?P<dlvrd>\S*)\s+submit date:(?P<submit_date>\S*)"
    r"\s+done date:(?P<done_date>\S*)\s+stat:(?P<stat>\S*)\s+err:(?P<err>\S*)\s+text:(?P<text>.*)"
)
_RECEIPT_FULL = re.compile(_RECEIPT_PATTERN, re.IGNORECASE | re.DOTALL)
# The receipt as SMSCs write it, from its first character: matched without case folding. Each group but the
# last ends at the first whitespace, so where this matches, _RECEIPT_FULL finds the same groups.
_RECEIPT_AS_WRITTEN = re.compile(_RECEIPT_PATTERN, re.DOTALL)
_RECEIPT_KEY = re.compile(
    r"(?<![A-Za-z0-9_])(id|sub|dlvrd|submit[ _]?date|done[ _]?date|stat|err|text)\s*:", re.IGNORECASE
)
_RECEIPT_KEY_NAMES = {"submitdate": "submit_date", "donedate": "done_date"}


def parse_receipt(text: str) -> dict[str, str]:
    """Split an SMPP Appendix B receipt (``id:… sub:… dlvrd:… submit date:… done date:… stat:… err:… text:…``).

    Keys are matched case-insensitively ("Stat:", "Text:") and returned as id, sub, dlvrd, submit_date,
    done_date, stat, err, text — only those present with a non-empty value. ``text`` is everything after
    "text:" to the end (it may contain spaces and colons). Values are returned as written (``stat`` keeps its
    case; see :func:`smpp_state_name`). Never raises; non-receipts give {}.
    """
    if not text or not isinstance(text, str):
        return {}
    m = _RECEIPT_AS_WRITTEN.match(text) or _RECEIPT_FULL.search(text)
    if m is not None:
        fields = m.groupdict()
        return fields if all(fields.values()) else {k: v for k, v in fields.items() if v}
    out: dict[str, str] = {}
    matches = list(_RECEIPT_KEY.finditer(text))
    for i, km in enumerate(matches):
        key = km.group(1).lower().replace(" ", "").replace("_", "")
        key = _RECEIPT_KEY_NAMES.get(key, key)
        if key == "text":
            value = text[km.end() :]
        else:
            end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
            value = text[km.end() : end].strip()
        if value and key not in out:
            out[key] = value
        if key == "text":
            break
    return out


#: Receipt ``stat`` abbreviation -> the SMPP state's full name, lower-cased (providers-FORMAT §3).
SMPP_STATES: dict[str, str] = {
    "SCHEDULED": "scheduled",
    "ENROUTE": "enroute",
    "DELIVRD": "delivered",
    "EXPIRED": "expired",
    "DELETED": "deleted",
    "UNDELIV": "undeliverable",
    "ACCEPTD": "accepted",
    "UNKNOWN": "unknown",
    "REJECTD": "rejected",
    "SKIPPED": "skipped",
}

#: TLV ``message_state`` (0x0427) value -> full name, lower-cased (SMPP 3.4 §5.2.28; 0 and 9 from SMPP 5.0).
SMPP_MESSAGE_STATES: dict[int, str] = {
    0: "scheduled",
    1: "enroute",
    2: "delivered",
    3: "expired",
    4: "deleted",
    5: "undeliverable",
    6: "accepted",
    7: "unknown",
    8: "rejected",
    9: "skipped",
}

# Vendors also write the long forms, and some shorten differently.
_SMPP_STATE_ALIASES: dict[str, str] = {
    **SMPP_STATES,
    **{v.upper(): v for v in SMPP_STATES.values()},
    "DELIVERED": "delivered",
    "UNDELIVERED": "undeliverable",
    "REJECTED": "rejected",
    "ACCEPTED": "accepted",
    "DELIVRED": "delivered",
}


def smpp_state_name(stat: str | int | None) -> str | None:
    """Receipt ``stat`` ("DELIVRD", "Delivrd", "DELIVERED") or TLV message_state (2) -> full name; else None."""
    if stat.__class__ is str and (name := _SMPP_STATE_ALIASES.get(stat)) is not None:
        return name  # the common case: a receipt's word exactly as the table has it ("DELIVRD")
    if stat is None or isinstance(stat, bool):
        return None
    if isinstance(stat, int):
        return SMPP_MESSAGE_STATES.get(stat)
    s = stat.strip().upper()
    if s.isascii() and s.isdigit():
        return SMPP_MESSAGE_STATES.get(int(s))
    return _SMPP_STATE_ALIASES.get(s)


#: SMPP command_status -> name with the ESME_ prefix (SMPP 3.4 §5.1.3, plus the SMPP 5.0 additions).
ESME_STATUS: dict[int, str] = {
    0x00: "ESME_ROK",
    0x01: "ESME_RINVMSGLEN",
    0x02: "ESME_RINVCMDLEN",
    0x03: "ESME_RINVCMDID",
    0x04: "ESME_RINVBNDSTS",
    0x05: "ESME_RALYBND",
    0x06: "ESME_RINVPRTFLG",
    0x07: "ESME_RINVREGDLVFLG",
    0x08: "ESME_RSYSERR",
    0x0A: "ESME_RINVSRCADR",
    0x0B: "ESME_RINVDSTADR",
    0x0C: "ESME_RINVMSGID",
    0x0D: "ESME_RBINDFAIL",
    0x0E: "ESME_RINVPASWD",
    0x0F: "ESME_RINVSYSID",
    0x11: "ESME_RCANCELFAIL",
    0x13: "ESME_RREPLACEFAIL",
    0x14: "ESME_RMSGQFUL",
    0x15: "ESME_RINVSERTYP",
    0x33: "ESME_RINVNUMDESTS",
    0x34: "ESME_RINVDLNAME",
    0x40: "ESME_RINVDESTFLAG",
    0x42: "ESME_RINVSUBREP",
    0x43: "ESME_RINVESMCLASS",
    0x44: "ESME_RCNTSUBDL",
    0x45: "ESME_RSUBMITFAIL",
    0x48: "ESME_RINVSRCTON",
    0x49: "ESME_RINVSRCNPI",
    0x50: "ESME_RINVDSTTON",
    0x51: "ESME_RINVDSTNPI",
    0x53: "ESME_RINVSYSTYP",
    0x54: "ESME_RINVREPFLAG",
    0x55: "ESME_RINVNUMMSGS",
    0x58: "ESME_RTHROTTLED",
    0x61: "ESME_RINVSCHED",
    0x62: "ESME_RINVEXPIRY",
    0x63: "ESME_RINVDFTMSGID",
    0x64: "ESME_RX_T_APPN",
    0x65: "ESME_RX_P_APPN",
    0x66: "ESME_RX_R_APPN",
    0x67: "ESME_RQUERYFAIL",
    0xC0: "ESME_RINVOPTPARSTREAM",
    0xC1: "ESME_ROPTPARNOTALLWD",
    0xC2: "ESME_RINVPARLEN",
    0xC3: "ESME_RMISSINGOPTPARAM",
    0xC4: "ESME_RINVOPTPARAMVAL",
    0xFE: "ESME_RDELIVERYFAILURE",
    0xFF: "ESME_RUNKNOWNERR",
    0x100: "ESME_RSERTYPUNAUTH",
    0x101: "ESME_RPROHIBITED",
    0x102: "ESME_RSERTYPUNAVAIL",
    0x103: "ESME_RSERTYPDENIED",
    0x104: "ESME_RINVDCS",
    0x105: "ESME_RINVSRCADDRSUBUNIT",
    0x106: "ESME_RINVDSTADDRSUBUNIT",
    0x107: "ESME_RINVBCASTFREQINT",
    0x108: "ESME_RINVBCASTALIAS_NAME",
    0x109: "ESME_RINVBCASTAREAFMT",
    0x10A: "ESME_RINVNUMBCAST_AREAS",
    0x10B: "ESME_RINVBCASTCNTTYPE",
    0x10C: "ESME_RINVBCASTMSGCLASS",
    0x10D: "ESME_RBCASTFAIL",
    0x10E: "ESME_RBCASTQUERYFAIL",
    0x10F: "ESME_RBCASTCANCELFAIL",
    0x110: "ESME_RINVBCAST_REP",
    0x111: "ESME_RINVBCASTSRVGRP",
    0x112: "ESME_RINVBCASTCHANIND",
}


def esme_status_name(code: int | str | None) -> str | None:
    """command_status as int, "0x0000000b", "0B" style hex with 0x, or decimal "11" -> "ESME_RINVDSTADR"."""
    if code is None or isinstance(code, bool):
        return None
    if isinstance(code, int):
        return ESME_STATUS.get(code)
    s = code.strip().lower()
    try:
        n = int(s, 16) if s.startswith("0x") else int(s, 10)
    except ValueError:
        return None
    return ESME_STATUS.get(n)


def esme_status(value: str | int | None) -> str | None:
    """Normalise how gateways print a command status to the bare ESME name.

    "CommandStatus.ESME_ROK" -> "ESME_ROK", "ERROR/ESME_RTHROTTLED" -> "ESME_RTHROTTLED", "esme_rok" ->
    "ESME_ROK", and numeric codes ("0x00000058", 88) -> their name. Empty, "None" or unknown numbers -> None.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return ESME_STATUS.get(value)
    s = value.strip()
    if not s or s in ("None", "none"):
        return None
    if "/" in s:
        s = s.rsplit("/", 1)[1]
    if "." in s:
        s = s.rsplit(".", 1)[1]
    s = s.strip()
    if not s:
        return None
    if s[0].isdigit():
        return esme_status_name(s)
    return s.upper()
