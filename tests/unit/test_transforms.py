"""Tests for agent.formats.transforms: examples from the Kannel / Jasmin / provider samples, edge cases, and
hypothesis properties (never raise, never return "", round trips)."""

from __future__ import annotations

import base64
import math
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.formats import transforms as t
from agent.formats.transforms import (
    ESME_STATUS,
    SMPP_MESSAGE_STATES,
    SMPP_STATES,
    TimeParser,
    body_hash,
    esme_status,
    esme_status_name,
    gsm,
    gsm7_decode,
    gsm7_septets,
    is_final,
    is_gsm7,
    jasmin_msgid,
    jasmin_text,
    kannel_segments,
    kannel_text,
    parse_receipt,
    parse_time,
    py_literal,
    segment_count,
    segment_count_ucs2_bytes,
    smpp_state_name,
    stable_id,
    status_class,
    to_e164,
)

FAST = settings(max_examples=150, deadline=None)
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")

# ---------------------------------------------------------------------------------------------------------------
# to_e164
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "country", "expected"),
    [
        # forms seen in kannel/access.log
        ("+447700900123", None, "+447700900123"),
        ("447700900608", None, "+447700900608"),
        ("447860012345", None, "+447860012345"),
        ("00447700900892", None, "+447700900892"),
        ("0033612345616", None, "+33612345616"),
        ("+4915112345431", None, "+4915112345431"),
        ("12025550143", None, "+12025550143"),
        ("07700900415", None, "07700900415"),  # national, no country: as written
        ("07700900415", "GB", "+447700900415"),
        ("07700900415", "gb", "+447700900415"),
        ("88001", None, "88001"),
        ("88001", "GB", "88001"),
        ("38200", "FR", "38200"),
        ("Uber-Eats", None, "Uber-Eats"),
        ("Uber-Eats", "GB", "Uber-Eats"),
        ("ACMEBANK", None, "ACMEBANK"),
        ("Spam4U", "GB", "Spam4U"),
        ("+4477009001234567890123456", None, "+4477009001234567890123456"),  # kept, not judged
        # formatting inside numbers
        ("+1 (202) 555-0143", None, "+12025550143"),
        ("+44 (0)7700 900415", None, "+447700900415"),
        ("0044 7700.900.415", None, "+447700900415"),
        ("  +447700900123 ", None, "+447700900123"),
        ("07700 900415", "GB", "+447700900415"),
        # national numbers by country
        ("0612345678", "FR", "+33612345678"),
        ("0612345678", "IT", "+390612345678"),  # Italy keeps the 0
        ("3471234567", "IT", "+393471234567"),
        ("015112345431", "DE", "+4915112345431"),
        ("0412345678", "AU", "+61412345678"),
        ("2025550143", "US", "+12025550143"),
        ("(202) 555-0143", "US", "+12025550143"),
        ("12025550143", "US", "+12025550143"),
        ("4165550143", "CA", "+14165550143"),
        ("13812345678", "CN", "+8613812345678"),
        ("8613812345678", "CN", "+8613812345678"),
        ("9876543210", "IN", "+919876543210"),
        ("89161234567", "RU", "+79161234567"),
        ("79161234567", "RU", "+79161234567"),
        ("06201234567", "HU", "+36201234567"),
        ("11987654321", "BR", "+5511987654321"),
        ("612345678", "ES", "+34612345678"),
        ("011447700900123", "US", "+447700900123"),
        ("0011447700900123", "AU", "+447700900123"),
        ("0033612345616", "GB", "+33612345616"),
        # bare international under a country that does not claim it
        ("4915112345431", "GB", "+4915112345431"),
        ("33612345678", "GB", "+33612345678"),
        # unknown country code behaves like no country
        ("07700900415", "XX", "07700900415"),
        # 9-10 bare digits without a rule: as given
        ("7700900415", None, "7700900415"),
    ],
)
def test_to_e164_examples(number: str, country: str | None, expected: str) -> None:
    assert to_e164(number, country) == expected


@pytest.mark.parametrize("value", [None, "", "   ", "+", "()", " - "])
def test_to_e164_empty_is_none(value: str | None) -> None:
    assert to_e164(value) is None
    assert to_e164(value, "GB") is None


def test_to_e164_int_input_and_junk_types() -> None:
    assert to_e164(12025550143) == "+12025550143"  # type: ignore[arg-type]
    assert to_e164(True) is None  # type: ignore[arg-type]
    assert to_e164(1.5) is None  # type: ignore[arg-type]


def test_to_e164_every_table_country_reads_a_trunk_number() -> None:
    for iso, cc in t.COUNTRY_CALLING_CODES.items():
        result = to_e164("0123456789", iso)
        assert result is not None
        assert result.startswith("+") or result == "0123456789", iso
        if result.startswith("+"):
            assert result[1:].startswith(cc), iso


COUNTRIES = st.sampled_from([None, "GB", "US", "FR", "IT", "RU", "HU", "AU", "CN", "BR", "xx", ""])


@FAST
@given(st.text(), COUNTRIES)
def test_to_e164_never_raises_never_empty(number: str, country: str | None) -> None:
    result = to_e164(number, country)
    assert result != ""
    if result is not None:
        assert result == result.strip()


@FAST
@given(st.text(alphabet="0123456789+ -().", max_size=20), COUNTRIES)
def test_to_e164_is_idempotent_on_e164_output(number: str, country: str | None) -> None:
    result = to_e164(number, country)
    if result is not None and result.startswith("+") and result[1:].isdigit():
        assert to_e164(result, country) == result


# ---------------------------------------------------------------------------------------------------------------
# GSM 03.38 and segments
# ---------------------------------------------------------------------------------------------------------------


def test_is_gsm7() -> None:
    assert is_gsm7("Hello @ £5 ¥ è é Ä ñ Δ Ω _ § ¿ à\n\r")
    assert is_gsm7("^{}\\[~]|€\f")
    assert is_gsm7("")
    assert not is_gsm7("`")
    assert not is_gsm7("ç")  # only capital Ç is in the table
    assert not is_gsm7("Ваш код")
    assert not is_gsm7("🎄")
    assert not is_gsm7("\x1b")  # the escape itself is not a character


def test_gsm7_septets_extension_counts_two() -> None:
    assert gsm7_septets("abc") == 3
    assert gsm7_septets("€") == 2
    assert gsm7_septets("^{}\\[~]|€\f") == 20
    assert gsm7_septets("a€b[") == 6


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 1),
        ("ok", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # 160 septets
        ("€" * 81, 2),  # 162 septets
        ("a" * 159 + "{", 2),  # 161 septets
        ("é" * 160, 1),  # in the basic table
        ("д" * 70, 1),
        ("д" * 71, 2),
        ("д" * 134, 2),
        ("д" * 135, 3),
        ("🎄" * 35, 1),  # 70 UTF-16 units
        ("🎄" * 36, 2),
        ("a" * 69 + "`", 1),  # "`" is not GSM: UCS-2, 70 units
        ("a" * 70 + "`", 2),
    ],
)
def test_segment_count(text: str, expected: int) -> None:
    assert segment_count(text) == expected


def test_segment_count_kannel_sample_bodies() -> None:
    maintenance = (
        "IMPORTANT: scheduled maintenance of the AcmeBank mobile app will take place on Sunday between 01:00 "
        "and 05:00. During this window, card payments and ATM withdrawals will work as normal but online "
        "transfers may be delayed. We apologise for any inconvenience."
    )
    assert segment_count(maintenance) == 2
    assert segment_count("Ваш код подтверждения: 668390. Никому его не сообщайте.") == 1  # noqa: RUF001


@pytest.mark.parametrize(("n", "expected"), [(0, 1), (-3, 1), (2, 1), (140, 1), (141, 2), (268, 2), (269, 3)])
def test_segment_count_ucs2_bytes(n: int, expected: int) -> None:
    assert segment_count_ucs2_bytes(n) == expected


GSM_TEXT = st.text(alphabet=sorted(gsm._GSM_ALL_SET), max_size=500)


@FAST
@given(st.text(max_size=400))
def test_segment_count_at_least_one(text: str) -> None:
    assert segment_count(text) >= 1


@FAST
@given(GSM_TEXT, st.sampled_from(sorted(gsm._GSM_ALL_SET)))
def test_segment_count_monotone_for_gsm(text: str, extra: str) -> None:
    assert is_gsm7(text)
    assert segment_count(text) <= segment_count(text + extra)
    assert math.ceil(gsm7_septets(text) / 153) <= segment_count(text) or gsm7_septets(text) <= 160


_GSM_ENCODE = {ch: bytes([i]) for i, ch in enumerate(gsm._GSM_BASIC) if ch != "\x1b"}
_GSM_ENCODE.update({ch: b"\x1b" + bytes([code]) for code, ch in gsm._GSM_EXT.items()})


@FAST
@given(GSM_TEXT)
def test_gsm7_decode_round_trips(text: str) -> None:
    encoded = b"".join(_GSM_ENCODE[ch] for ch in text)
    assert gsm7_decode(encoded) == text
    assert len(encoded) == gsm7_septets(text)


def test_gsm7_decode_edges() -> None:
    assert gsm7_decode(b"\x00\x11\x1be\x1b<") == "@_€["
    assert gsm7_decode(b"\x80") is None
    assert gsm7_decode(b"A\x1b") == "A"  # trailing lone escape dropped
    assert gsm7_decode(b"\x1bA") == "A"  # unknown escape shows the basic character


# ---------------------------------------------------------------------------------------------------------------
# times
# ---------------------------------------------------------------------------------------------------------------


def test_kannel_prefix_local_time_to_utc() -> None:
    tp = TimeParser("%Y-%m-%d %H:%M:%S", BERLIN)
    assert tp("2026-11-27 02:35:05") == "2026-11-27T01:35:05+00:00"
    assert tp("2026-07-01 12:00:00") == "2026-07-01T10:00:00+00:00"
    assert tp(" 2026-11-27 02:35:05\n") == "2026-11-27T01:35:05+00:00"
    assert tp("2026-11-27T02:35:05") is None  # not this shape
    assert tp("2026-13-27 02:35:05") is None
    assert tp("") is None
    assert tp(None) is None
    assert tp(["unhashable"]) is None


def test_dst_gap_and_overlap_use_fold_zero() -> None:
    tp = TimeParser("%Y-%m-%d %H:%M:%S", BERLIN)
    # 02:30 does not exist on 2026-03-29 in Berlin; fold=0 reads it with the pre-transition offset (+01:00)
    assert tp("2026-03-29 02:30:00") == "2026-03-29T01:30:00+00:00"
    # 02:30 happens twice on 2026-10-25; fold=0 is the first (CEST, +02:00)
    assert tp("2026-10-25 02:30:00") == "2026-10-25T00:30:00+00:00"


def test_unset_kannel_time_is_none() -> None:
    assert parse_time("1969-12-31 23:59:59", "%Y-%m-%d %H:%M:%S", UTC) is None
    assert parse_time("1970-01-01 00:00:00", "%Y-%m-%d %H:%M:%S", UTC) is None
    assert parse_time("", "epoch", UTC) is None  # %T empty
    assert parse_time("-1", "epoch", UTC) is None
    assert parse_time("0001-01-01T00:00:00Z", "iso", UTC) is None


def test_custom_format_t_and_T_agree() -> None:
    assert parse_time("2026-11-27 01:15:46", "%Y-%m-%d %H:%M:%S", UTC) == "2026-11-27T01:15:46+00:00"
    assert parse_time("1795742146", "epoch", UTC) == "2026-11-27T01:15:46+00:00"
    assert parse_time(1795742146, "epoch", UTC) == "2026-11-27T01:15:46+00:00"
    assert parse_time(1795742146.25, "epoch", UTC) == "2026-11-27T01:15:46.250000+00:00"
    assert parse_time("1795742146.5", "epoch", UTC) == "2026-11-27T01:15:46.500000+00:00"


def test_epoch_ms_is_exact() -> None:
    assert parse_time(1686975103470, "epoch_ms", UTC) == "2023-06-17T04:11:43.470000+00:00"
    assert parse_time("1715706123412", "epoch_ms", UTC) == "2024-05-14T17:02:03.412000+00:00"
    assert parse_time("1715706123000", "epoch_ms", UTC) == "2024-05-14T17:02:03+00:00"
    assert parse_time("1715706123412.5", "epoch_ms", UTC) == "2024-05-14T17:02:03.412500+00:00"


@pytest.mark.parametrize(
    "value",
    ["abc", "1e9", "12 34", "0x10", float("nan"), float("inf"), 10**30, "9" * 40, True, None, [1], ".5", "+"],
)
def test_epoch_garbage_is_none(value: object) -> None:
    assert parse_time(value, "epoch", UTC) is None
    assert parse_time(value, "epoch_ms", UTC) is None


def test_smpp_receipt_dates() -> None:
    assert parse_time("2611270113", "smpp", UTC) == "2026-11-27T01:13:00+00:00"
    assert parse_time("261127011322", "smpp", UTC) == "2026-11-27T01:13:22+00:00"
    assert parse_time("1712230046", "smpp", BERLIN) == "2017-12-22T23:46:00+00:00"
    assert parse_time("2405141702", "smpp", UTC) == "2024-05-14T17:02:00+00:00"  # providers §3 example
    for bad in ["26112701132", "2611270113221", "2613270113", "2611320113", "2611272513", "26112701xx", "", "ND"]:
        assert parse_time(bad, "smpp", UTC) is None, bad


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-14T17:03:14.930+0000", "2024-05-14T17:03:14.930000+00:00"),  # infobip
        ("2024-05-14T17:02:05.118Z", "2024-05-14T17:02:05.118000+00:00"),  # bandwidth
        ("2024-05-14T17:04:41.903+00:00", "2024-05-14T17:04:41.903000+00:00"),  # telnyx
        ("2024-05-14T17:03:19+00:00", "2024-05-14T17:03:19+00:00"),  # messagebird
        ("2024-05-14T19:03:19+02:00", "2024-05-14T17:03:19+00:00"),
        ("2024-05-14T17:02:06.880123456Z", "2024-05-14T17:02:06.880123+00:00"),  # long fraction
        ("2024-05-14T17:02:06.8Z", "2024-05-14T17:02:06.800000+00:00"),
        ("2024-05-14 17:03:40", "2024-05-14T21:03:40+00:00"),  # naive -> tz (New York)
        ("2024-05-14 17:03:40 UTC", "2024-05-14T17:03:40+00:00"),
        ("garbage", None),
        ("2024-13-14T17:03:40Z", None),
        ("", None),
    ],
)
def test_iso(value: str, expected: str | None) -> None:
    assert parse_time(value, "iso", NEW_YORK) == expected


def test_strptime_formats() -> None:
    # plivo, read in its configured zone
    assert parse_time("2024-05-14 17:03:20.500100", "%Y-%m-%d %H:%M:%S.%f", UTC) == "2024-05-14T17:03:20.500100+00:00"
    assert parse_time("2024-05-14 17:03:20.5", "%Y-%m-%d %H:%M:%S.%f", UTC) == "2024-05-14T17:03:20.500000+00:00"
    assert parse_time("14/05/2024 17:03", "%d/%m/%Y %H:%M", BERLIN) == "2024-05-14T15:03:00+00:00"
    # %z: the parsed offset wins over tz
    assert parse_time("2024-05-14 17:03:20 -0500", "%Y-%m-%d %H:%M:%S %z", BERLIN) == "2024-05-14T22:03:20+00:00"
    # %Z: UTC / GMT mean UTC
    assert parse_time("2024-05-14 17:03:20 GMT", "%Y-%m-%d %H:%M:%S %Z", BERLIN) == "2024-05-14T17:03:20+00:00"
    assert parse_time("nonsense", "%d/%m/%Y", UTC) is None
    # fixed-offset tzinfo and zone names are accepted
    est = timezone(timedelta(hours=-5))
    assert parse_time("2026-11-26 20:16:42", "%Y-%m-%d %H:%M:%S", est) == "2026-11-27T01:16:42+00:00"
    assert parse_time("2026-11-26 20:16:42", "%Y-%m-%d %H:%M:%S", "America/New_York") == "2026-11-27T01:16:42+00:00"
    assert parse_time("2026-11-26 20:16:42", "%Y-%m-%d %H:%M:%S", "No/Such_Zone") is None


def test_time_parser_cache_is_bounded() -> None:
    tp = TimeParser("epoch", UTC, max_entries=10)
    base = 1795742146
    for i in range(100):
        assert tp(base + i) is not None
        assert len(tp._cache) <= 10
    assert tp(base) == tp(base) == "2026-11-27T01:15:46+00:00"


ANY_FMT = st.sampled_from(
    [
        "iso",
        "epoch",
        "epoch_ms",
        "smpp",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M:%S.%f",
        "%d/%m/%y %H:%M %z",
        "%Y %Z",
        "%s",
    ]
)
ANY_TZ = st.sampled_from([UTC, BERLIN, NEW_YORK, ZoneInfo("Pacific/Kiritimati"), timezone(timedelta(hours=-12))])


@FAST
@given(st.one_of(st.text(max_size=40), st.integers(), st.floats()), ANY_FMT, ANY_TZ)
def test_parse_time_never_raises(value: object, fmt: str, tz: timezone) -> None:
    result = parse_time(value, fmt, tz)
    if result is not None:
        assert result.endswith("+00:00")
        assert datetime.fromisoformat(result) > datetime(1970, 1, 1, tzinfo=UTC)


@FAST
@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31)), ANY_TZ)
def test_parse_time_agrees_with_datetime(naive: datetime, tz: timezone) -> None:
    naive = naive.replace(microsecond=0)
    expected = naive.replace(tzinfo=tz).astimezone(UTC).isoformat()
    assert parse_time(naive.strftime("%Y-%m-%d %H:%M:%S"), "%Y-%m-%d %H:%M:%S", tz) == expected
    assert parse_time(naive.isoformat(), "iso", tz) == expected
    epoch = int(naive.replace(tzinfo=UTC).timestamp())
    assert parse_time(str(epoch), "epoch", tz) == naive.replace(tzinfo=UTC).isoformat()


# ---------------------------------------------------------------------------------------------------------------
# Kannel
# ---------------------------------------------------------------------------------------------------------------

ARABIC_HEX = (  # from kannel-FORMAT §3.2, coding 2
    "063106450632002006270644062A062D06420642002006270644062E06270635"
    "0020062806430020064706480020003400390037003100320038"
)


def test_kannel_text_ucs2() -> None:
    assert kannel_text(ARABIC_HEX, "2") == "رمز التحقق الخاص بك هو 497128"
    assert kannel_text("D83CDF84", "2") == "🎄"
    assert kannel_text("d83cdf84", 2) == "🎄"
    assert kannel_text("D83C", "2") == "\ufffd"  # lone surrogate replaced, no crash
    assert kannel_text("00", "2") == "\ufffd"  # odd byte count
    assert kannel_text("not hex", "2") == "not hex"
    assert kannel_text("ABC", "2") == "ABC"  # odd hex digits: unchanged


def test_kannel_text_8bit_and_7bit() -> None:
    assert kannel_text("48656C6C6F", "1") == "Hello"
    assert kannel_text("C3A9", "1") == "é"
    assert kannel_text("0605040B8423F0", "1") is None  # binary (WAP push UDH-ish)
    text = "Caf.. M..ller: your order #5556 is ready for pick-up. Merci!"
    assert kannel_text(text, "0") == text
    assert kannel_text(text, "-1") == text
    assert kannel_text("", "0") is None
    assert kannel_text("", "2") is None


def test_kannel_segments() -> None:
    assert kannel_segments(ARABIC_HEX, "2", "58") == 1
    assert kannel_segments("D83CDF84" * 58, "2", "234") == 2
    assert kannel_segments("AB" * 300, "2", "bad") == 3  # falls back to hex length / 2
    assert kannel_segments("ok", "0", "2") == 1
    assert kannel_segments("a" * 161, "0", 161) == 2
    assert kannel_segments("[" * 80, "0", 80) == 1  # 160 septets
    assert kannel_segments("[" * 81, "-1", 81) == 2
    assert kannel_segments("", "0", 0) == 1
    assert kannel_segments("C3A9" * 71, "1", 142) == 2


# ---------------------------------------------------------------------------------------------------------------
# receipts and SMPP tables
# ---------------------------------------------------------------------------------------------------------------


def test_parse_receipt_kannel_samples() -> None:
    r = parse_receipt(
        "id:cb008853-9d2c-47ed-a13f-fe7979cb9e86 sub:001 dlvrd:000 submit date:261127011322 "
        "done date:261127011323 stat:ENROUTE err:000 text:Dear Ines, thank you"
    )
    assert r == {
        "id": "cb008853-9d2c-47ed-a13f-fe7979cb9e86",
        "sub": "001",
        "dlvrd": "000",
        "submit_date": "261127011322",
        "done_date": "261127011323",
        "stat": "ENROUTE",
        "err": "000",
        "text": "Dear Ines, thank you",
    }
    r = parse_receipt(
        "id:1525128806 sub:001 dlvrd:001 submit date:2611270113 done date:2611270113 stat:DELIVRD err:000 text:"
    )
    assert r["stat"] == "DELIVRD"
    assert r["done_date"] == "2611270113"
    assert "text" not in r  # empty values are left out


def test_parse_receipt_tolerant() -> None:
    assert parse_receipt(
        "id:2a9f3c71 Sub:001 Dlvrd:001 Submit Date:2405141702 Done Date:2405141702 Stat:DELIVRD "
        "Err:000 Text:Your code is 482913"
    ) == {
        "id": "2a9f3c71",
        "sub": "001",
        "dlvrd": "001",
        "submit_date": "2405141702",
        "done_date": "2405141702",
        "stat": "DELIVRD",
        "err": "000",
        "text": "Your code is 482913",
    }
    # keys missing, other order, odd spacing
    assert parse_receipt("id:ABC stat:UNDELIV  err:001") == {"id": "ABC", "stat": "UNDELIV", "err": "001"}
    assert parse_receipt("stat: DELIVRD id: 42") == {"stat": "DELIVRD", "id": "42"}
    assert parse_receipt("id:7 submit_date:2405141702 donedate:2405141703 stat:EXPIRED") == {
        "id": "7",
        "submit_date": "2405141702",
        "done_date": "2405141703",
        "stat": "EXPIRED",
    }
    # text swallows everything, including key-like words
    r = parse_receipt("id:9 stat:DELIVRD text:reply stat:X id:Y err:1")
    assert r == {"id": "9", "stat": "DELIVRD", "text": "reply stat:X id:Y err:1"}
    # "id" inside another word is not a key
    assert parse_receipt("paid:3 stat:DELIVRD") == {"stat": "DELIVRD"}


@pytest.mark.parametrize("value", ["", "ACK/", "NACK/0x0000000b/Invalid Destination Address", "garbage", None, 5])
def test_parse_receipt_non_receipts(value: object) -> None:
    result = parse_receipt(value)  # type: ignore[arg-type]
    assert isinstance(result, dict)
    assert "stat" not in result


@FAST
@given(st.text(max_size=200))
def test_parse_receipt_never_raises(text: str) -> None:
    result = parse_receipt(text)
    assert all(v for v in result.values())
    assert set(result) <= {"id", "sub", "dlvrd", "submit_date", "done_date", "stat", "err", "text"}


TOKEN = st.text(alphabet="0123456789ABCDEFabcdef-", min_size=1, max_size=20)


@FAST
@given(TOKEN, st.sampled_from(sorted(SMPP_STATES)), st.text(max_size=20).filter(lambda s: s.strip() == s))
def test_parse_receipt_round_trips(msg_id: str, stat: str, body: str) -> None:
    receipt = (
        f"id:{msg_id} sub:001 dlvrd:001 submit date:2405141702 done date:2405141702 stat:{stat} err:000 text:{body}"
    )
    r = parse_receipt(receipt)
    assert r["id"] == msg_id
    assert r["stat"] == stat
    assert r.get("text", "") == body


def test_smpp_tables() -> None:
    assert SMPP_STATES["DELIVRD"] == "delivered"
    assert SMPP_STATES["UNDELIV"] == "undeliverable"
    assert SMPP_STATES["ACCEPTD"] == "accepted"
    assert SMPP_STATES["REJECTD"] == "rejected"
    assert SMPP_STATES["UNKNOWN"] == "unknown"
    assert {"SCHEDULED", "SKIPPED", "ENROUTE", "EXPIRED", "DELETED"} <= set(SMPP_STATES)
    assert set(SMPP_MESSAGE_STATES.values()) == set(SMPP_STATES.values())
    assert smpp_state_name("delivrd") == "delivered"
    assert smpp_state_name("DELIVERED") == "delivered"
    assert smpp_state_name(3) == "expired"
    assert smpp_state_name("5") == "undeliverable"
    assert smpp_state_name("nope") is None
    assert smpp_state_name(None) is None


def test_esme_table() -> None:
    assert ESME_STATUS[0x00] == "ESME_ROK"
    assert ESME_STATUS[0x01] == "ESME_RINVMSGLEN"
    assert ESME_STATUS[0x08] == "ESME_RSYSERR"
    assert ESME_STATUS[0x0A] == "ESME_RINVSRCADR"
    assert ESME_STATUS[0x0B] == "ESME_RINVDSTADR"
    assert ESME_STATUS[0x14] == "ESME_RMSGQFUL"
    assert ESME_STATUS[0x45] == "ESME_RSUBMITFAIL"
    assert ESME_STATUS[0x58] == "ESME_RTHROTTLED"
    assert ESME_STATUS[0x66] == "ESME_RX_R_APPN"
    assert ESME_STATUS[0xFF] == "ESME_RUNKNOWNERR"
    assert all(name.startswith("ESME_R") for name in ESME_STATUS.values())
    assert len(set(ESME_STATUS.values())) == len(ESME_STATUS)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0x0000000b", "ESME_RINVDSTADR"),  # Kannel NACK
        ("0x0000000A", "ESME_RINVSRCADR"),
        ("0x00000045", "ESME_RSUBMITFAIL"),
        ("88", "ESME_RTHROTTLED"),
        (0x58, "ESME_RTHROTTLED"),
        ("0x12345", None),
        ("zz", None),
        ("", None),
        (None, None),
    ],
)
def test_esme_status_name(value: object, expected: str | None) -> None:
    assert esme_status_name(value) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("CommandStatus.ESME_ROK", "ESME_ROK"),
        ("ESME_ROK", "ESME_ROK"),
        ("ERROR/ESME_RTHROTTLED", "ESME_RTHROTTLED"),
        ("ERROR/CommandStatus.ESME_RINVDSTADR", "ESME_RINVDSTADR"),
        ("CommandStatus.ESME_RX_R_APPN", "ESME_RX_R_APPN"),
        ("esme_rok", "ESME_ROK"),
        ("0x00000058", "ESME_RTHROTTLED"),
        (8, "ESME_RSYSERR"),
        ("None", None),
        ("", None),
        ("ERROR/", None),
        (None, None),
    ],
)
def test_esme_status(value: object, expected: str | None) -> None:
    assert esme_status(value) == expected  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------------------
# status classes
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("queued", "pending"),
        ("accepted", "pending"),
        ("scheduled", "pending"),
        ("sending", "pending"),
        ("enroute", "pending"),
        ("ENROUTE", "pending"),
        ("buffered", "pending"),
        ("dispatched", "pending"),
        ("Dispatched", "pending"),
        ("submitted", "pending"),
        ("pending", "pending"),
        ("_SMS.BUFFERED", "pending"),
        ("ERROR/ESME_RTHROTTLED", "pending"),  # retried by the gateway
        ("sent", "sent"),
        ("accepted-by-smsc", "sent"),
        ("ACCEPTD", "sent"),
        ("ESME_ROK", "sent"),
        ("CommandStatus.ESME_ROK", "sent"),
        ("delivered", "final"),
        ("DELIVRD", "final"),
        ("undelivered", "final"),
        ("undeliverable", "final"),
        ("UNDELIV", "final"),
        ("failed", "final"),
        ("delivery_failed", "final"),
        ("delivery-failed", "final"),
        ("expired", "final"),
        ("rejected", "final"),
        ("REJECTD", "final"),
        ("deleted", "final"),
        ("received", "final"),
        ("read", "final"),
        ("canceled", "final"),
        ("cancelled", "final"),
        ("unknown", "final"),
        ("UNKNOWN", "final"),
        ("esme_rinvdstadr", "final"),
        ("ESME_RINVSRCADR", "final"),
        ("_SMS.SUCCESS", "final"),
        ("  Delivered ", "final"),
        ("Unrecognised", "final"),  # MM4/MM7, both spellings (Tychron MMS reports)
        ("Unrecognized", "final"),
        ("frobnicated", "unknown"),
        ("", "unknown"),
    ],
)
def test_status_class(status: str, expected: str) -> None:
    assert status_class(status) == expected
    assert is_final(status) == (expected == "final")


def test_status_class_every_smpp_state_has_a_class() -> None:
    for stat, name in SMPP_STATES.items():
        assert status_class(stat) != "unknown", stat
        assert status_class(name) != "unknown", name


@FAST
@given(st.text(max_size=30))
def test_status_class_total(status: str) -> None:
    assert status_class(status) in {"pending", "sent", "final", "unknown"}


def test_status_class_junk_type() -> None:
    assert status_class(None) == "unknown"  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------------------
# Jasmin
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("b'6a1f2a01'", b"6a1f2a01"),
        ("b'ACMEBANK'", b"ACMEBANK"),
        ("b'Your ACME code: 482913.Do not share it.'", b"Your ACME code: 482913.Do not share it."),
        ('b"it\'s"', b"it's"),
        ("b'it\\'s \"q\"'", b'it\'s "q"'),
        ("b'\\x04\\x12\\x040'", b"\x04\x12\x040"),
        ("b'\\x11SMS\\x11TEST'", b"\x11SMS\x11TEST"),
        ("b'Hi \\x00 Hello'", b"Hi \x00 Hello"),
        ("b'a\\nb\\tc\\\\d\\re'", b"a\nb\tc\\d\re"),
        ("b''", b""),
        ("'f1'", "f1"),
        ("''", ""),
        ("'Caf\\xe9 \\u20ac \\U0001f384'", "Café € 🎄"),
        ("'Ваш код'", "Ваш код"),
        ("u'unicode py2'", "unicode py2"),
        ("'a\\'b'", "a'b"),
        ("ACME", "ACME"),  # Python 2 era bare value
        ("447700900123", "447700900123"),
        ("  ACME ", "ACME"),
        ("** 38 byte content **", "** 38 byte content **"),
        ("None", None),
        ("none", None),
        ("", None),
        (None, None),
        # malformed
        ("b'unterminated", None),
        ("'unterminated", None),
        ("b'bad\\x4'", None),
        ("b'trailing\\'", None),
        ("b'caf\u00e9'", None),  # non-ASCII in a bytes literal
        ("'it's'", None),
        # unusual but valid: slow path
        ("b'\\q'", b"\\q"),
        ("'\\d'", "\\d"),
        ("rb'\\x00'", b"\\x00"),
        ("'''tri'''", "tri"),
    ],
)
def test_py_literal(text: str | None, expected: bytes | str | None) -> None:
    assert py_literal(text) == expected


@FAST
@given(st.binary(max_size=200))
def test_py_literal_round_trips_bytes(data: bytes) -> None:
    assert py_literal(repr(data)) == data


@FAST
@given(st.text(max_size=200))
def test_py_literal_round_trips_str(text: str) -> None:
    assert py_literal(repr(text)) == text


@FAST
@given(st.text(max_size=100))
def test_py_literal_never_raises(text: str) -> None:
    result = py_literal(text)
    assert result is None or isinstance(result, (bytes, str))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"Hello", "Hello"),
        (b"Your ACME code: 482913.Do not share it.", "Your ACME code: 482913.Do not share it."),
        ("Caf\u00e9 M\u00fcller".encode(), "Café Müller"),
        (b"\x11SMS\x11TEST", "_SMS_TEST"),  # GSM 03.38 from the HTTP API (#586)
        (b"Hi \x00 Hello", "Hi @ Hello"),  # (#514)
        (b"Price \x1be5", "Price €5"),
        (b"\x00 Hello!", "@ Hello!"),
        ("Ваш код: 668390".encode("utf-16-be"), "Ваш код: 668390"),
        ("Ваш".encode("utf-16-be"), "Ваш"),
        ("Hello".encode("utf-16-be"), "Hello"),
        ("مرحبا".encode("utf-16-be"), "مرحبا"),
        ("🎄🎅".encode("utf-16-be"), "🎄🎅"),
        ("你好，世界！欢迎".encode("utf-16-be"), "你好，世界！欢迎"),  # noqa: RUF001
        (b"caf\xe9", "café"),  # latin-1 last resort
        (b"Cr\xe8me br\xfbl\xe9e \xe0 5\xa4", "Crème brûlée à 5¤"),
        ("non\u00a0breaking\u2009space".encode(), "non\u00a0breaking\u2009space"),
        ("👨\u200d👩\u200d👧".encode(), "👨\u200d👩\u200d👧"),
        ("👨\u200d👩\u200d👧 ok".encode("utf-16-be"), "👨\u200d👩\u200d👧 ok"),
        (b"\x1b", None),
        ("f1", "f1"),
        ("Ваш код", "Ваш код"),
        ("CafÃ©", "Café"),  # Python 2 UTF-8 bytes printed as a str
        ("\x11SMS", "_SMS"),
        ("Café", "Café"),
        (b"", None),
        ("", None),
        (None, None),
    ],
)
def test_jasmin_text(value: bytes | str | None, expected: str | None) -> None:
    assert jasmin_text(value) == expected


@FAST
@given(st.one_of(st.binary(max_size=120), st.text(max_size=60)))
def test_jasmin_text_never_raises(value: bytes | str) -> None:
    result = jasmin_text(value)
    assert result is None or (isinstance(result, str) and result != "")


@FAST
@given(st.text(alphabet=st.characters(categories=["L", "N", "P", "Zs"]), min_size=1, max_size=60))
def test_jasmin_text_utf8_round_trips(text: str) -> None:
    assert jasmin_text(text.encode()) == text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("b'6a1f2a01'", "6A1F2A01"),
        ("b'3550b803'", "3550B803"),
        ("0e999f21-81ef-4974-a414-3de98174e3c7", "E999F21-81EF-4974-A414-3DE98174E3C7"),
        ("E999F21-81EF-4974-A414-3DE98174E3C7", "E999F21-81EF-4974-A414-3DE98174E3C7"),
        ("b'000123'", "123"),
        ("000", "0"),
        (b"0abc", "ABC"),
        ("None", None),
        ("", None),
        (None, None),
    ],
)
def test_jasmin_msgid(value: str | bytes | None, expected: str | None) -> None:
    assert jasmin_msgid(value) == expected


# ---------------------------------------------------------------------------------------------------------------
# hashes and ids
# ---------------------------------------------------------------------------------------------------------------


def test_body_hash() -> None:
    assert body_hash("hi") == "sha256:8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4"
    assert body_hash("").startswith("sha256:")
    assert body_hash("\ud800").startswith("sha256:")  # lone surrogate does not crash


def test_stable_id() -> None:
    a = stable_id("kannel", "vodafone_uk", "2026-11-27T00:13:27+00:00", "88001", "+99912345678", "Your code is 111222")
    b = stable_id("kannel", "vodafone_uk", "2026-11-27T00:13:27+00:00", "88001", "+99912345678", "Your code is 111222")
    c = stable_id("kannel", "vodafone_uk", "2026-11-27T00:13:27+00:00", "88001", "+99912345678", "Your code is 111223")
    assert a == b != c
    assert a.startswith("kannel-")
    assert len(a) == len("kannel-") + 16
    assert stable_id("x", "ab", "c") != stable_id("x", "a", "bc")
    assert stable_id("x", None, "a") == stable_id("x", "", "a")  # type: ignore[arg-type]


@pytest.mark.parametrize("junk", [None, 5, 1.5, b"bytes", ["list"], {"d": 1}])
def test_wrong_types_never_raise(junk: object) -> None:
    assert to_e164("07700900415", junk) == "07700900415"  # type: ignore[arg-type]
    assert status_class(junk) == "unknown"  # type: ignore[arg-type]
    assert kannel_text(junk, "2") is None  # type: ignore[arg-type]
    assert kannel_segments(junk, "0", junk) == 1  # type: ignore[arg-type]
    assert kannel_segments(junk, "2", junk) == 1  # type: ignore[arg-type]
    assert parse_receipt(junk) == {}  # type: ignore[arg-type]
    assert parse_time("2026-11-27 01:13:22", "%Y-%m-%d %H:%M:%S", junk) is None or junk is None  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------------------
# MIME parts as JSON (Tychron MMS)
# ---------------------------------------------------------------------------------------------------------------


def _part(ctype: str, body: str = "", encoding: str = "identity", parts: list | None = None) -> dict:
    return {"headers": {"content-type": ctype}, "encoding": encoding, "body": body, "parts": parts or []}


def test_mime_text_finds_and_decodes_the_text_part() -> None:
    text = base64.b64encode("Dent on the bumper 🚗".encode()).decode()
    mms = _part("multipart/related", parts=[_part("application/smil", "<smil/>"),
                                            _part("text/plain; charset=utf-8", text, "base64"),
                                            _part("image/jpeg", "/9j/4AAQ", "base64")])
    assert t.mime_text(mms) == "Dent on the bumper 🚗"
    latin = base64.b64encode("café".encode("latin-1")).decode()
    assert t.mime_text(_part('text/plain; charset="iso-8859-1"', latin, "base64")) == "café"
    assert t.mime_text(_part("TEXT/PLAIN", "as written")) == "as written"


@pytest.mark.parametrize(("charset", "text"), [("base64", None), ("hex", None), ("zlib", None), ("rot13", None),
                                               ("bz2", None), ("no-such-charset", "Dent 🚗")])
def test_mime_text_of_a_charset_that_is_no_text_encoding_is_unknown(charset: str, text: str | None) -> None:
    """A bytes-to-bytes codec as charset loses the body, nothing else; an unknown charset is read as UTF-8."""
    body = base64.b64encode("Dent 🚗".encode()).decode()
    assert t.mime_text(_part(f"text/plain; charset={charset}", body, "base64")) == text


@pytest.mark.parametrize("part", [
    _part("multipart/related", parts=[_part("image/jpeg", "/9j/4AAQ", "base64")]),  # no text part
    _part("text/plain", "", "identity"),
    _part("text/plain", "//8=", "base64"),  # not UTF-8
    _part("text/plain", "not base64!", "base64"),
    {"parts": "x"}, "text", None,
])
def test_mime_text_is_unknown_without_a_readable_text_part(part) -> None:
    assert t.mime_text(part) is None


def test_mime_text_stops_at_a_depth_no_mms_has() -> None:
    deep = _part("text/plain", "deep")
    for _ in range(20):
        deep = _part("multipart/mixed", parts=[deep])
    assert t.mime_text(deep) is None
