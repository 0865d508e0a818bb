"""Pure value transforms for the mapping engine, one module per subject:

- phone: numbers to E.164;
- gsm: the GSM 03.38 alphabet, septets and segment counts;
- times: timestamps to ISO 8601 with an offset;
- kannel: Kannel's rendering of message texts;
- smpp: delivery receipts and the SMPP status tables;
- status: status classes (pending, sent, final);
- jasmin: the Python literals of Jasmin's messages.log;
- ids: stable ids and the body hash.

Everything here runs on the per-line hot path, so: no I/O, tables built once at import, caches where inputs
repeat (numbers, timestamps, status words), str methods before regexes.

Convention for every function: ``None`` means "unknown / cannot tell", so the caller leaves the field out.
No function returns ``""`` for a field value, and none raises on bad input (garbage in -> ``None``).
"""

from agent.formats.transforms.gsm import gsm7_decode, gsm7_septets, is_gsm7, segment_count, segment_count_ucs2_bytes
from agent.formats.transforms.ids import body_hash, stable_id
from agent.formats.transforms.jasmin import jasmin_msgid, jasmin_text, py_literal
from agent.formats.transforms.kannel import kannel_segments, kannel_text
from agent.formats.transforms.phone import COUNTRY_CALLING_CODES, e164_str, to_e164
from agent.formats.transforms.smpp import (
    ESME_STATUS,
    SMPP_MESSAGE_STATES,
    SMPP_STATES,
    esme_status,
    esme_status_name,
    parse_receipt,
    smpp_state_name,
)
from agent.formats.transforms.status import is_final, status_class
from agent.formats.transforms.times import TimeParser, parse_time, valid_time_format

__all__ = [
    "COUNTRY_CALLING_CODES",
    "ESME_STATUS",
    "SMPP_MESSAGE_STATES",
    "SMPP_STATES",
    "TimeParser",
    "body_hash",
    "e164_str",
    "esme_status",
    "esme_status_name",
    "gsm7_decode",
    "gsm7_septets",
    "is_final",
    "is_gsm7",
    "jasmin_msgid",
    "jasmin_text",
    "kannel_segments",
    "kannel_text",
    "parse_receipt",
    "parse_time",
    "py_literal",
    "segment_count",
    "segment_count_ucs2_bytes",
    "smpp_state_name",
    "stable_id",
    "status_class",
    "to_e164",
    "valid_time_format",
]
