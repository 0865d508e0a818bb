"""The provider webhook formats (twilio, telnyx, bandwidth, vonage, plivo, sinch, infobip, messagebird, pinpoint,
ringcentral, cdyne, imimobile, tychron, commio).

Every expected record below is written out by hand from the provider's documented payload and
the project's mapping conventions: it is the spec of the format. The processors are built from the shipped example
configs (config/<provider>.yaml), so those are checked too. Lines come from config/samples/<provider>.jsonl (two
real-shaped webhooks per provider for the first nine, one per event kind for the others) and from webhooks
constructed from each provider's documented field lists.
"""

from __future__ import annotations

import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.config import ConfigError, load
from agent.formats.source import Processor
from agent.record import problem
from tests.conftest import ROOT

PROVIDERS = ("twilio", "telnyx", "bandwidth", "vonage", "plivo", "sinch", "infobip", "messagebird", "pinpoint",
             "ringcentral", "cdyne", "imimobile", "tychron", "commio")


@cache
def processor(provider: str) -> Processor:
    """The source of the shipped example config for `provider` (its format, zones and options)."""
    cfg = load(ROOT / "config" / f"{provider}.yaml")
    return Processor(cfg.sources[0])


def sample_lines(provider: str) -> list[str]:
    return (ROOT / "config" / "samples" / f"{provider}.jsonl").read_text(encoding="utf-8").splitlines()


def records(provider: str, webhook: Any) -> list[dict[str, Any]]:
    """Map one logged webhook (a JSON line, or an object serialised to one); it must not be refused."""
    line = webhook if isinstance(webhook, str) else orjson.dumps(webhook).decode()
    result = processor(provider).run(line)
    assert result.reject is None, result.reject
    return result.records


def one(provider: str, webhook: Any) -> dict[str, Any]:
    out = records(provider, webhook)
    assert len(out) == 1, out
    return out[0]


# ---------------------------------------------------------------------------------------------------------------
# The sample webhooks of every provider, exactly (a line that is no message event is skipped: no record)
# ---------------------------------------------------------------------------------------------------------------

SAMPLE_RECORDS: dict[str, list[dict[str, Any]]] = {
    "twilio": [
        {"id": "SM83f1535f99ab0bf4e9d02dfd85d3e3f7", "provider": "twilio", "status": "sent", "direction": "outbound",
         "from_number": "+12025550143", "to_number": "+13125550178",
         "message_profile_id": "MG961e38b5146c0b07d078f53dec9b699a", "message_type": "SMS"},
        {"id": "SM83f1535f99ab0bf4e9d02dfd85d3e3f7", "provider": "twilio", "status": "delivered",
         "direction": "outbound", "from_number": "+12025550143", "to_number": "+13125550178",
         "message_profile_id": "MG961e38b5146c0b07d078f53dec9b699a", "message_type": "SMS",
         "message_finalized_at": "2024-05-14T17:02:00+00:00"},
    ],
    "telnyx": [
        {"id": "eca35a3c-7246-4c0c-a542-e97bbf047497", "provider": "telnyx", "status": "sent",
         "direction": "outbound", "from_number": "+12025550143", "to_number": "+13125550178",
         "body": "Acme: your appointment is confirmed for Tue 10:30. Reply STOP to opt out.", "segment_count": 1,
         "message_type": "SMS", "mno_name": "T-MOBILE USA, INC.", "line_type": "Wireless",
         "message_profile_id": "40017ced-0e07-439d-88ff-5a1f3c2b9e61",
         "message_created_at": "2024-05-14T17:02:03.076000+00:00",
         "message_sent_at": "2024-05-14T17:02:03.272000+00:00"},
        {"id": "eca35a3c-7246-4c0c-a542-e97bbf047497", "provider": "telnyx", "status": "delivered",
         "direction": "outbound", "from_number": "+12025550143", "to_number": "+13125550178",
         "body": "Acme: your appointment is confirmed for Tue 10:30. Reply STOP to opt out.", "segment_count": 1,
         "message_type": "SMS", "mno_name": "T-MOBILE USA, INC.", "line_type": "Wireless",
         "message_profile_id": "40017ced-0e07-439d-88ff-5a1f3c2b9e61",
         "message_created_at": "2024-05-14T17:02:03.076000+00:00",
         "message_sent_at": "2024-05-14T17:02:03.272000+00:00",
         "message_finalized_at": "2024-05-14T17:02:05.154000+00:00"},
    ],
    "bandwidth": [
        {"id": "1715706693844qjsh74foapo9z85v", "provider": "bandwidth", "status": "delivered",
         "direction": "outbound", "from_number": "+12025550143", "to_number": "+13125550178", "segment_count": 1,
         "message_type": "SMS", "message_profile_id": "93de2206-9669-4e07-948d-329f4b722ee2",
         "message_created_at": "2024-05-14T17:02:03.456000+00:00",
         "message_finalized_at": "2024-05-14T17:02:05.118000+00:00"},
        {"id": "1715706402712qbqrmoxvnteam9po", "provider": "bandwidth", "status": "failed",
         "direction": "outbound", "from_number": "+12025550143", "to_number": "+14155550121", "segment_count": 1,
         "message_type": "SMS", "message_profile_id": "93de2206-9669-4e07-948d-329f4b722ee2",
         "error_code": "4720", "error_message": "Carrier Rejected as Invalid Destination Address",
         "message_created_at": "2024-05-14T17:03:11.902000+00:00",
         "message_finalized_at": "2024-05-14T17:03:12.730000+00:00"},
    ],
    # msisdn is the recipient, `to` the sender; scts 1802 is London summer time (receipt_timezone in the config)
    "vonage": [
        {"id": "A6FF8B7C91757C24", "provider": "vonage", "status": "accepted", "direction": "outbound",
         "from_number": "+447700900001", "to_number": "+447700900123", "message_type": "SMS",
         "message_sent_at": "2024-05-14T17:02:00+00:00"},
        {"id": "A6FF8B7C91757C24", "provider": "vonage", "status": "delivered", "direction": "outbound",
         "from_number": "+447700900001", "to_number": "+447700900123", "message_type": "SMS",
         "message_finalized_at": "2024-05-14T17:02:00+00:00"},
    ],
    "plivo": [
        {"id": "9bfae283-4128-47da-a3c8-e50adafc1c4d", "provider": "plivo", "status": "queued",
         "direction": "outbound", "from_number": "+12025550143", "to_number": "+13125550178", "segment_count": 1,
         "message_type": "SMS", "message_profile_id": "5f48eb7e-554c-4900-ab0f-224fb863db36",
         "message_created_at": "2024-05-14T17:02:11.123456+00:00"},
        {"id": "9bfae283-4128-47da-a3c8-e50adafc1c4d", "provider": "plivo", "status": "sent",
         "direction": "outbound", "from_number": "+12025550143", "to_number": "+13125550178", "segment_count": 1,
         "message_type": "SMS", "message_profile_id": "5f48eb7e-554c-4900-ab0f-224fb863db36",
         "message_created_at": "2024-05-14T17:02:11.123456+00:00",
         "message_sent_at": "2024-05-14T17:02:12.040117+00:00"},
    ],
    "sinch": [
        {"id": "01HXW0R6Q5H17E5YMQ0G653360:13125550178", "provider": "sinch", "status": "dispatched",
         "direction": "outbound", "to_number": "+13125550178", "message_type": "SMS",
         "message_sent_at": "2024-05-14T17:02:03.512000+00:00"},
        {"id": "01HXW0R6Q5H17E5YMQ0G653360:13125550178", "provider": "sinch", "status": "delivered",
         "direction": "outbound", "to_number": "+13125550178", "message_type": "SMS",
         "message_finalized_at": "2024-05-14T17:02:00+00:00"},
    ],
    "infobip": [
        {"id": "602619055693196015", "provider": "infobip", "status": "delivered", "direction": "outbound",
         "from_number": "+12025550143", "to_number": "+13125550178", "segment_count": 1, "message_type": "SMS",
         "message_sent_at": "2024-05-14T17:02:03.118000+00:00",
         "message_finalized_at": "2024-05-14T17:02:06.402000+00:00"},
        {"id": "825036576359786573", "provider": "infobip", "status": "undeliverable", "direction": "outbound",
         "from_number": "+12025550143", "to_number": "+14155550121", "segment_count": 1, "message_type": "SMS",
         "error_code": "27", "error_message": "Absent Subscriber",
         "message_sent_at": "2024-05-14T17:03:10.005000+00:00",
         "message_finalized_at": "2024-05-14T17:03:14.930000+00:00"},
    ],
    "messagebird": [
        {"id": "84097b5a87510155d04330aab2ce7751", "provider": "messagebird", "status": "sent",
         "direction": "outbound", "to_number": "+31612345678", "segment_count": 1, "message_type": "SMS",
         "message_sent_at": "2024-05-14T17:02:03+00:00"},
        {"id": "84097b5a87510155d04330aab2ce7751", "provider": "messagebird", "status": "delivered",
         "direction": "outbound", "to_number": "+31612345678", "segment_count": 1, "message_type": "SMS",
         "message_finalized_at": "2024-05-14T17:02:07+00:00"},
    ],
    "pinpoint": [
        {"id": "30625da4-0893-423e-ae44-82d826819daa", "provider": "pinpoint", "status": "pending",
         "direction": "outbound", "from_number": "+12025550143", "to_number": "+13125550178", "segment_count": 1,
         "message_type": "SMS", "message_profile_id": "9d9caa8c4d73d743cb4f52050a2bb81b"},
        {"id": "30625da4-0893-423e-ae44-82d826819daa", "provider": "pinpoint", "status": "delivered",
         "direction": "outbound", "from_number": "+12025550143", "to_number": "+13125550178", "segment_count": 1,
         "message_type": "SMS", "message_profile_id": "9d9caa8c4d73d743cb4f52050a2bb81b",
         "message_finalized_at": "2024-05-14T17:02:06.322000+00:00"},
    ],
    # A2P outbound DeliveryFailed, A2P inbound (keeps RingCentral's `delivered`), instant MMS; message-store skipped
    "ringcentral": [
        {"id": "60217745", "provider": "ringcentral", "status": "deliveryfailed", "direction": "outbound",
         "from_number": "+15125550190", "to_number": "+16465550117",
         "body": "Lakeside Gym: your membership renews on 7/1. Reply HELP for help.", "segment_count": 1,
         "message_type": "SMS", "error_code": "SMS-CAR-412",
         "message_created_at": "2024-07-08T09:14:20.551208+00:00",
         "message_finalized_at": "2024-07-08T09:14:24.007316+00:00"},
        {"id": "60218902", "provider": "ringcentral", "status": "delivered", "direction": "inbound",
         "from_number": "+16465550117", "to_number": "+15125550190", "body": "HELP", "segment_count": 1,
         "message_type": "SMS", "message_created_at": "2024-07-08T09:16:02.514730+00:00"},
        {"id": "22950017004", "provider": "ringcentral", "status": "received", "direction": "inbound",
         "from_number": "+13035550146", "to_number": "+15125550133", "body": "Parking pass attached",
         "message_type": "MMS", "message_created_at": "2024-07-08T10:02:44.275000+00:00"},
    ],
    # sent postback, REJECTD receipt (Code 023), reply; 10-digit NANP numbers, times UTC month first
    "cdyne": [
        {"id": "0b6e94d1-7c3a-4f28-9e15-d4a2c8f07b63", "provider": "cdyne", "status": "sent",
         "direction": "outbound", "from_number": "+18045550131", "to_number": "+18045550172", "message_type": "SMS",
         "message_sent_at": "2024-07-19T08:05:51+00:00"},
        {"id": "0b6e94d1-7c3a-4f28-9e15-d4a2c8f07b63", "provider": "cdyne", "status": "rejected",
         "direction": "outbound", "from_number": "+18045550131", "to_number": "+18045550172", "error_code": "023"},
        {"id": "52c0e7a9-1f84-4d3b-a6e2-9b07d5c3f418", "provider": "cdyne", "status": "received",
         "direction": "inbound", "from_number": "+18045550172", "to_number": "+18045550131", "body": "Wrong number",
         "segment_count": 1, "message_type": "SMS", "message_created_at": "2024-07-19T08:09:14+00:00"},
    ],
    # Delivered and Failed receipts (times +01:00), inbound SMS with a service id
    "imimobile": [
        {"id": "d3a90f6e-2b71-4c58-8e04-6f1b9a2c7d35", "provider": "imimobile", "status": "delivered",
         "direction": "outbound", "to_number": "+447700900655", "segment_count": 1, "message_type": "SMS",
         "message_finalized_at": "2024-07-22T08:31:48.205000+00:00"},
        {"id": "70b2e4c9-5a16-4d83-b9f0-1c7e3a6d2f48", "provider": "imimobile", "status": "failed",
         "direction": "outbound", "to_number": "+447700900810", "segment_count": 1, "message_type": "SMS",
         "error_code": "7102", "error_message": "Invalid address",
         "message_finalized_at": "2024-07-22T08:33:02.660000+00:00"},
        {"id": "8e21c7f4-0a93-4b65-a2d8-5f1e6c0b9d37", "provider": "imimobile", "status": "received",
         "direction": "inbound", "from_number": "+447700900683", "to_number": "+447700900040",
         "body": "Is my prescription ready?", "segment_count": 1, "message_type": "SMS",
         "message_profile_id": "51820", "message_created_at": "2024-07-22T09:14:07.512000+00:00"},
    ],
    # inbound SMS, SMS receipt (id sms.id, numbers swapped), inbound MMS (text part), MMS report (id mms.id); cdr
    # skipped
    "tychron": [
        {"id": "01J2QW4E6R8T0Y2V4X6Z8P0A2S", "provider": "tychron", "status": "received", "direction": "inbound",
         "from_number": "+15125550163", "to_number": "+16465550108", "body": "Running 10 min late, sorry",
         "segment_count": 1, "message_type": "SMS", "message_created_at": "2024-07-09T14:03:27.615092+00:00"},
        {"id": "01J2QX2B4C6D8E0F2G4H6J8K0M", "provider": "tychron", "status": "undelivered",
         "direction": "outbound", "from_number": "+15125550163", "to_number": "+16465550174", "message_type": "SMS",
         "error_code": "027", "message_sent_at": "2024-07-09T14:10:51.004412+00:00",
         "message_finalized_at": "2024-07-09T14:12:00+00:00"},
        {"id": "01J2R3F5G7H9J1K3M5N7P9Q1R3", "provider": "tychron", "status": "received", "direction": "inbound",
         "from_number": "+15125550163", "to_number": "+16465550108", "body": "Here's the dent on the bumper 🚗",
         "message_type": "MMS", "message_created_at": "2024-07-09T14:41:52.118406+00:00"},
        {"id": "01J2R07Y9Z1A3B5C7D9E1F3G5H", "provider": "tychron", "status": "forwarded", "direction": "outbound",
         "from_number": "+15125550163", "to_number": "+16465550174", "message_type": "MMS",
         "mno_name": "T-Mobile USA, Inc."},
    ],
    # UNDELIV notification, inbound SMS, inbound MMS whose message is a media URL (no body)
    "commio": [
        {"id": "71c0b5e2-4d93-4a6f-8b17-e2c9d05a3f68", "provider": "commio", "status": "undeliv",
         "direction": "outbound", "from_number": "+15125550122", "to_number": "+16465550175",
         "error_code": "027"},  # no message_type: a notification does not say (it would overwrite an MMS)
        {"id": "0f6a2d81-93c4-4b7e-a5d0-8e1b7c29f346", "provider": "commio", "status": "received",
         "direction": "inbound", "from_number": "+16465550175", "to_number": "+15125550122",
         "body": "What time do you close today?", "segment_count": 1, "message_type": "SMS"},
        {"id": "a4e9c1b0-26d7-4f85-9c3a-51b8e0f7d2a9", "provider": "commio", "status": "received",
         "direction": "inbound", "from_number": "+16465550175", "to_number": "+15125550122", "message_type": "MMS"},
    ],
}
SKIPPED_SAMPLE_LINES = {"ringcentral": 1, "tychron": 1}  # message-store counts; a billing record


@pytest.mark.parametrize("provider", PROVIDERS)
def test_sample_webhooks_map_exactly(provider: str) -> None:
    results = [processor(provider).run(line) for line in sample_lines(provider)]
    assert [r.reject for r in results if r.reject is not None] == []
    assert sum(r.skipped for r in results) == SKIPPED_SAMPLE_LINES.get(provider, 0)
    assert all(len(r.records) <= 1 for r in results)
    assert [record for r in results for record in r.records] == SAMPLE_RECORDS[provider]


_COUNT_KEY = re.compile(r"count|parts|units|segment|num_messages", re.IGNORECASE)


def _count_paths(value: Any, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Where a webhook carries a part count (smsCount, messageCount, NumSegments, Units, parts, ...)."""
    found: list[tuple[str | int, ...]] = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        if isinstance(key, str) and _COUNT_KEY.search(key) and isinstance(child, int | str) and child is not True:
            found.append((*path, key))
        found += _count_paths(child, (*path, key))
    return found


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("bad", [0, -1, "0", "-1"])
def test_a_count_of_zero_or_minus_one_is_left_out_and_the_record_is_kept(provider: str, bad: Any) -> None:
    """Infobip sends smsCount 0 on a REJECTED report, IMImobile messageCount "-1" on Failed: an unknown count."""
    changed = 0
    for line in sample_lines(provider):
        for path in _count_paths(orjson.loads(line)):
            webhook = orjson.loads(line)
            node = webhook
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = bad
            out = records(provider, webhook)  # not refused; a count left out may be computed from the body
            assert all(record.get("segment_count", 1) >= 1 for record in out), (path, out)
            changed += 1
    assert changed or provider in ("twilio", "vonage", "sinch", "cdyne", "commio", "tychron"), provider


def test_parse_command_prints_the_sample_records() -> None:
    """The operator's path: `volt-agent parse` on the example config prints one payload per line."""
    proc = subprocess.run([sys.executable, "-m", "agent.cli", "parse", "--config", "config/bandwidth.yaml"],
                          cwd=ROOT, capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert [orjson.loads(line) for line in proc.stdout.splitlines()] == SAMPLE_RECORDS["bandwidth"]
    assert b"lines=2 records=2 rejected=0 skipped=0" in proc.stderr


@pytest.mark.parametrize("provider", PROVIDERS)
def test_dry_run_of_the_example_config_prints_the_sample_records(provider: str) -> None:
    """What the example config's header tells the operator to run: the payloads it would send, nothing sent."""
    proc = subprocess.run([sys.executable, "-m", "agent.cli", "run", "--config", f"config/{provider}.yaml",
                           "--dry-run", "--once"], cwd=ROOT, capture_output=True, timeout=60, check=False,
                          env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert [orjson.loads(line) for line in proc.stdout.splitlines()] == SAMPLE_RECORDS[provider]
    assert b"line_rejected" not in proc.stderr


# ---------------------------------------------------------------------------------------------------------------
# Twilio
# ---------------------------------------------------------------------------------------------------------------

TWILIO_INBOUND = {
    "ToCountry": "US", "ToState": "DC", "SmsMessageSid": "SM1f0e8ae6ade43cb3c0ce4525424e404f", "NumMedia": "0",
    "ToCity": "", "FromZip": "60601", "SmsSid": "SM1f0e8ae6ade43cb3c0ce4525424e404f", "FromState": "IL",
    "SmsStatus": "received", "FromCity": "CHICAGO", "Body": "Yes, 10:30 works", "FromCountry": "US",
    "To": "+12025550143", "MessagingServiceSid": "MG961e38b5146c0b07d078f53dec9b699a", "ToZip": "",
    "NumSegments": "1", "ReferralNumMedia": "0", "MessageSid": "SM1f0e8ae6ade43cb3c0ce4525424e404f",
    "AccountSid": "AC4c122831efef10ac68b5223dccd6f614", "From": "+13125550178", "ApiVersion": "2010-04-01",
}


def test_twilio_inbound_sms() -> None:
    assert one("twilio", TWILIO_INBOUND) == {
        "id": "SM1f0e8ae6ade43cb3c0ce4525424e404f", "provider": "twilio", "status": "received",
        "direction": "inbound", "from_number": "+13125550178", "to_number": "+12025550143",
        "body": "Yes, 10:30 works", "segment_count": 1, "message_type": "SMS",
        "message_profile_id": "MG961e38b5146c0b07d078f53dec9b699a",
    }


def test_twilio_inbound_mms_without_text() -> None:
    mms = {**TWILIO_INBOUND, "MessageSid": "MM5ef8732a3c49700934481addd5ce1659",
           "SmsMessageSid": "MM5ef8732a3c49700934481addd5ce1659", "SmsSid": "MM5ef8732a3c49700934481addd5ce1659",
           "Body": "", "NumMedia": "1", "NumSegments": "1", "MediaContentType0": "image/jpeg",
           "MediaUrl0": "https://api.twilio.com/2010-04-01/Accounts/AC4c/Messages/MM5e/Media/ME85"}
    assert one("twilio", mms) == {
        "id": "MM5ef8732a3c49700934481addd5ce1659", "provider": "twilio", "status": "received",
        "direction": "inbound", "from_number": "+13125550178", "to_number": "+12025550143", "segment_count": 1,
        "message_type": "MMS", "message_profile_id": "MG961e38b5146c0b07d078f53dec9b699a",
    }


def test_twilio_undelivered_callback_from_the_docs() -> None:
    callback = {"ApiVersion": "2010-04-01", "AccountSid": "AC4c122831efef10ac68b5223dccd6f614",
                "From": "+12025550143", "MessageSid": "SM0f826a89cf68c399c5f4cf320c1a5842",
                "MessageStatus": "undelivered", "MessagingServiceSid": "MG961e38b5146c0b07d078f53dec9b699a",
                "SmsSid": "SM0f826a89cf68c399c5f4cf320c1a5842", "SmsStatus": "undelivered", "To": "+14155550121",
                "ErrorCode": "30003", "RawDlrDoneDate": "2405141705"}
    assert one("twilio", callback) == {
        "id": "SM0f826a89cf68c399c5f4cf320c1a5842", "provider": "twilio", "status": "undelivered",
        "direction": "outbound", "from_number": "+12025550143", "to_number": "+14155550121", "error_code": "30003",
        "message_finalized_at": "2024-05-14T17:05:00+00:00",
        "message_profile_id": "MG961e38b5146c0b07d078f53dec9b699a", "message_type": "SMS",
    }


def test_twilio_mms_callback_by_sid_and_older_callback_without_message_status() -> None:
    mms = {"From": "+12025550143", "To": "+13125550178", "MessageSid": "MM5ef8732a3c49700934481addd5ce1659",
           "MessageStatus": "sent", "SmsStatus": "sent", "ErrorCode": "0"}
    assert one("twilio", mms) == {
        "id": "MM5ef8732a3c49700934481addd5ce1659", "provider": "twilio", "status": "sent", "direction": "outbound",
        "from_number": "+12025550143", "to_number": "+13125550178", "message_type": "MMS",
    }
    legacy = {"From": "+12025550143", "To": "+13125550178", "MessageSid": "SM83f1535f99ab0bf4e9d02dfd85d3e3f7",
              "SmsStatus": "Failed", "ErrorCode": "30008"}
    assert one("twilio", legacy) == {
        "id": "SM83f1535f99ab0bf4e9d02dfd85d3e3f7", "provider": "twilio", "status": "failed",
        "direction": "outbound", "from_number": "+12025550143", "to_number": "+13125550178", "error_code": "30008",
        "message_type": "SMS",
    }


# ---------------------------------------------------------------------------------------------------------------
# Telnyx
# ---------------------------------------------------------------------------------------------------------------


def test_telnyx_delivery_failed_from_the_docs() -> None:
    webhook = {"data": {"event_type": "message.finalized", "id": "0e647f28-da2a-46b6-a4a5-1e217990dd1c",
                        "occurred_at": "2024-05-14T17:04:41.903+00:00", "payload": {
                            "cc": [], "completed_at": "2024-05-14T17:04:41.903+00:00",
                            "cost": {"amount": "0.0080", "currency": "USD"}, "direction": "outbound",
                            "encoding": "GSM-7",
                            "errors": [{"code": "40008", "title": "Undeliverable",
                                        "detail": "The message was not accepted by the destination carrier."}],
                            "from": {"carrier": "Telnyx", "line_type": "VoIP", "phone_number": "+12025550143"},
                            "id": "44fadf6d-0ce5-44b6-a7d2-2562d91c41eb", "media": [],
                            "messaging_profile_id": "40017ced-0e07-439d-88ff-5a1f3c2b9e61",
                            "organization_id": "1be7b732-8b26-4ae0-9634-0c2f4e8d1a77", "parts": 2,
                            "received_at": "2024-05-14T17:04:39.020+00:00", "record_type": "message",
                            "sent_at": "2024-05-14T17:04:39.318+00:00", "tags": [],
                            "text": "Acme: we could not process your payment for order 88412.",
                            "to": [{"carrier": "CELLCO PARTNERSHIP DBA VERIZON WIRELESS", "line_type": "Wireless",
                                    "phone_number": "+14155550121", "status": "delivery_failed"}],
                            "type": "SMS", "valid_until": None, "webhook_failover_url": "",
                            "webhook_url": "https://example.com/webhooks/telnyx"},
                        "record_type": "event"},
               "meta": {"attempt": 1, "delivered_to": "https://example.com/webhooks/telnyx"}}
    assert one("telnyx", webhook) == {
        "id": "44fadf6d-0ce5-44b6-a7d2-2562d91c41eb", "provider": "telnyx", "status": "delivery_failed",
        "direction": "outbound", "from_number": "+12025550143", "to_number": "+14155550121",
        "body": "Acme: we could not process your payment for order 88412.", "segment_count": 2,
        "message_type": "SMS", "mno_name": "CELLCO PARTNERSHIP DBA VERIZON WIRELESS", "line_type": "Wireless",
        "message_profile_id": "40017ced-0e07-439d-88ff-5a1f3c2b9e61",
        "message_created_at": "2024-05-14T17:04:39.020000+00:00",
        "message_sent_at": "2024-05-14T17:04:39.318000+00:00",
        "message_finalized_at": "2024-05-14T17:04:41.903000+00:00",
        "error_code": "40008", "error_message": "The message was not accepted by the destination carrier.",
    }


def test_telnyx_inbound_mms() -> None:
    webhook = {"data": {"event_type": "message.received", "id": "b301ed3f-1490-491f-995f-6e64e69674d4",
                        "occurred_at": "2024-05-14T17:05:10.100+00:00", "payload": {
                            "cc": [], "completed_at": None, "cost": None, "direction": "inbound",
                            "encoding": "GSM-7", "errors": [],
                            "from": {"carrier": "T-Mobile USA", "line_type": "long_code",
                                     "phone_number": "+13125550178"},
                            "id": "84cca175-9755-4859-b67f-4730d7f58aa3",
                            "media": [{"url": "https://media.telnyx.com/example/receipt.jpg",
                                       "content_type": "image/jpeg", "size": 40213}],
                            "messaging_profile_id": "40017ced-0e07-439d-88ff-5a1f3c2b9e61", "parts": 1,
                            "received_at": "2024-05-14T17:05:10.000+00:00", "record_type": "message",
                            "sent_at": None, "tags": [], "text": "Photo of the receipt",
                            "to": [{"carrier": "Telnyx", "line_type": "Wireless", "phone_number": "+12025550143",
                                    "status": "webhook_delivered"}],
                            "type": "MMS", "valid_until": None, "webhook_failover_url": None,
                            "webhook_url": "https://example.com/webhooks/telnyx"},
                        "record_type": "event"},
               "meta": {"attempt": 1, "delivered_to": "https://example.com/webhooks/telnyx"}}
    assert one("telnyx", webhook) == {
        "id": "84cca175-9755-4859-b67f-4730d7f58aa3", "provider": "telnyx", "status": "webhook_delivered",
        "direction": "inbound", "from_number": "+13125550178", "to_number": "+12025550143",
        "body": "Photo of the receipt", "segment_count": 1, "message_type": "MMS", "mno_name": "Telnyx",
        "line_type": "Wireless", "message_profile_id": "40017ced-0e07-439d-88ff-5a1f3c2b9e61",
        "message_created_at": "2024-05-14T17:05:10+00:00",
    }
    # without to[].status an inbound message is `received`; without `type`, media decides
    payload = webhook["data"]["payload"]
    bare = {"data": {"event_type": "message.received",
                     "payload": {**payload, "to": [{"phone_number": "+12025550143"}], "type": None}}}
    record = one("telnyx", bare)
    assert (record["status"], record["message_type"], "mno_name" in record) == ("received", "MMS", False)


# ---------------------------------------------------------------------------------------------------------------
# Bandwidth
# ---------------------------------------------------------------------------------------------------------------


def test_bandwidth_inbound_mms_and_several_events_in_one_callback() -> None:
    callback = [
        {"type": "message-received", "time": "2024-05-14T17:06:00.120Z", "description": "Incoming message received",
         "to": "+12025550143",
         "message": {"id": "14762070468292kw2fuqty55yp2b2", "time": "2024-05-14T17:06:00.100Z",
                     "to": ["+12025550143"], "from": "+13125550178", "text": "See attached",
                     "applicationId": "93de2206-9669-4e07-948d-329f4b722ee2", "owner": "+12025550143",
                     "media": ["https://messaging.bandwidth.com/api/v2/users/123/media/14762070468292kw2fuqty55yp2b2/0/"
                               "image.jpg"],
                     "direction": "in", "segmentCount": 1}},
        {"type": "message-sending", "time": "2024-05-14T17:06:01.500Z", "description": "Message is sending to carrier",
         "to": "+13125550178",
         "message": {"id": "1715706761000abcdefghijklmnop", "owner": "+12025550143",
                     "applicationId": "93de2206-9669-4e07-948d-329f4b722ee2", "time": "2024-05-14T17:06:01.200Z",
                     "segmentCount": 1, "direction": "out", "to": ["+13125550178"], "from": "+12025550143",
                     "text": "", "media": ["https://example.com/coupon.png"], "tag": "coupon"}},
    ]
    assert records("bandwidth", callback) == [
        {"id": "14762070468292kw2fuqty55yp2b2", "provider": "bandwidth", "status": "received",
         "direction": "inbound", "from_number": "+13125550178", "to_number": "+12025550143", "body": "See attached",
         "segment_count": 1, "message_type": "MMS", "message_profile_id": "93de2206-9669-4e07-948d-329f4b722ee2",
         "message_created_at": "2024-05-14T17:06:00.100000+00:00"},
        {"id": "1715706761000abcdefghijklmnop", "provider": "bandwidth", "status": "sending",
         "direction": "outbound", "from_number": "+12025550143", "to_number": "+13125550178", "segment_count": 1,
         "message_type": "MMS", "message_profile_id": "93de2206-9669-4e07-948d-329f4b722ee2",
         "message_created_at": "2024-05-14T17:06:01.200000+00:00",
         "message_sent_at": "2024-05-14T17:06:01.500000+00:00"},
    ]


def test_bandwidth_empty_callback_is_skipped_not_rejected() -> None:
    result = processor("bandwidth").run("[]")
    assert (result.records, result.reject, result.skipped) == ([], None, True)


# ---------------------------------------------------------------------------------------------------------------
# Vonage
# ---------------------------------------------------------------------------------------------------------------


def test_vonage_failed_receipt_from_the_docs() -> None:
    receipt = {"msisdn": "447700900456", "to": "447700900001", "network-code": "23410",
               "messageId": "3B9CBD6EA6600E8C", "price": "0.03330000", "status": "failed", "scts": "2405141803",
               "err-code": "6", "api-key": "a1b2c3d4", "message-timestamp": "2024-05-14 17:03:40"}
    assert one("vonage", receipt) == {
        "id": "3B9CBD6EA6600E8C", "provider": "vonage", "status": "failed", "direction": "outbound",
        "from_number": "+447700900001", "to_number": "+447700900456", "error_code": "6", "message_type": "SMS",
        "message_finalized_at": "2024-05-14T17:03:00+00:00",
    }


def test_vonage_buffered_receipt_has_no_time_and_alphanumeric_sender_is_kept() -> None:
    receipt = {"msisdn": "447700900456", "to": "AcmeShop", "messageId": "3B9CBD6EA6600E8C", "status": "buffered",
               "scts": "2405141803", "err-code": "0", "message-timestamp": "2024-05-14 17:03:40"}
    assert one("vonage", receipt) == {
        "id": "3B9CBD6EA6600E8C", "provider": "vonage", "status": "buffered", "direction": "outbound",
        "from_number": "AcmeShop", "to_number": "+447700900456", "message_type": "SMS",
    }


def test_vonage_sms_api_inbound() -> None:
    inbound = {"msisdn": "447700900123", "to": "447700900001", "messageId": "0A0000000123ABCD1",
               "text": "Hello world", "type": "text", "keyword": "HELLO", "api-key": "a1b2c3d4",
               "message-timestamp": "2024-05-14 17:05:00"}
    assert one("vonage", inbound) == {
        "id": "0A0000000123ABCD1", "provider": "vonage", "status": "received", "direction": "inbound",
        "from_number": "+447700900123", "to_number": "+447700900001", "body": "Hello world", "segment_count": 1,
        "message_type": "SMS", "message_created_at": "2024-05-14T17:05:00+00:00",
    }


def test_vonage_messages_api_status_and_inbound() -> None:
    rejected = {"message_uuid": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab", "to": "447700900000",
                "from": "447700900001", "timestamp": "2024-05-14T17:06:00.000Z", "status": "rejected",
                "error": {"type": "https://developer.nexmo.com/api-errors/messages-olympus#1000", "title": 1000,
                          "detail": "Throttled - You have exceeded the submission capacity allowed on this account.",
                          "instance": "bf0ca0bf927b3b52e3cb03217e1a1ddf"},
                "usage": {"currency": "EUR", "price": "0.0333"}, "client_ref": "abc123", "channel": "sms",
                "destination": {"network_code": "23410"}, "sms": {"count_total": "2"}}
    assert one("vonage", rejected) == {
        "id": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab", "provider": "vonage", "status": "rejected",
        "direction": "outbound", "from_number": "+447700900001", "to_number": "+447700900000", "segment_count": 2,
        "message_type": "SMS", "error_code": "1000",
        "error_message": "Throttled - You have exceeded the submission capacity allowed on this account.",
        "message_finalized_at": "2024-05-14T17:06:00+00:00",
    }
    submitted = {"message_uuid": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab", "to": "447700900000",
                 "from": "447700900001", "timestamp": "2024-05-14T17:05:59.000Z", "status": "submitted",
                 "channel": "sms", "sms": {"count_total": "2"}}
    assert one("vonage", submitted) == {
        "id": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab", "provider": "vonage", "status": "submitted",
        "direction": "outbound", "from_number": "+447700900001", "to_number": "+447700900000", "segment_count": 2,
        "message_type": "SMS", "message_sent_at": "2024-05-14T17:05:59+00:00",
    }
    inbound = {"channel": "sms", "message_uuid": "bbbbbbbb-cccc-dddd-eeee-0123456789ab", "message_type": "text",
               "to": "447700900000", "from": "447700900001", "timestamp": "2024-05-14T17:07:00Z",
               "text": "Hello From Vonage!", "sms": {"num_messages": "1", "keyword": "HELLO"},
               "usage": {"price": "0.0057", "currency": "EUR"}}
    assert one("vonage", inbound) == {
        "id": "bbbbbbbb-cccc-dddd-eeee-0123456789ab", "provider": "vonage", "status": "received",
        "direction": "inbound", "from_number": "+447700900001", "to_number": "+447700900000",
        "body": "Hello From Vonage!", "segment_count": 1, "message_type": "SMS",
        "message_created_at": "2024-05-14T17:07:00+00:00",
    }


# ---------------------------------------------------------------------------------------------------------------
# Plivo
# ---------------------------------------------------------------------------------------------------------------


def test_plivo_undelivered_callback_from_the_docs() -> None:
    callback = {"From": "12025550143", "To": "14155550121", "MessageUUID": "7db53074-24f7-4446-a982-dcfb55be3577",
                "Status": "undelivered", "Type": "sms", "Units": "2", "TotalRate": "0.00550",
                "TotalAmount": "0.01100", "MCC": "310", "MNC": "260",
                "ParentMessageUUID": "7db53074-24f7-4446-a982-dcfb55be3577", "PartInfo": "1 of 1", "Sequence": "3",
                "PowerpackUUID": "", "requester_ip": "203.0.113.10", "MessageTime": "2024-05-14 17:03:20.500100",
                "QueuedTime": "2024-05-14 17:03:20.610022", "SentTime": "2024-05-14 17:03:21.300845",
                "DeliveryReportTime": "2024-05-14 17:03:29.004117", "ErrorCode": "30"}
    assert one("plivo", callback) == {
        "id": "7db53074-24f7-4446-a982-dcfb55be3577", "provider": "plivo", "status": "undelivered",
        "direction": "outbound", "error_code": "30", "from_number": "+12025550143", "to_number": "+14155550121",
        "segment_count": 2, "message_type": "SMS", "message_created_at": "2024-05-14T17:03:20.500100+00:00",
        "message_sent_at": "2024-05-14T17:03:21.300845+00:00",
        "message_finalized_at": "2024-05-14T17:03:29.004117+00:00",
    }


def test_plivo_inbound_sms_and_mms() -> None:
    sms = {"From": "13125550178", "To": "12025550143", "Type": "sms", "Text": "STOP",
           "MessageUUID": "3ad6b9a4-6a07-11ef-9c6a-0242ac110002", "Units": "1", "TotalRate": "0.00000",
           "TotalAmount": "0.00000", "MessageIntent": "optout", "PowerpackUUID": ""}
    assert one("plivo", sms) == {
        "id": "3ad6b9a4-6a07-11ef-9c6a-0242ac110002", "provider": "plivo", "status": "received",
        "direction": "inbound", "from_number": "+13125550178", "to_number": "+12025550143", "body": "STOP",
        "segment_count": 1, "message_type": "SMS",
    }
    mms = {"From": "13125550178", "To": "12025550143", "Type": "mms", "Body": "Our storefront",
           "MessageUUID": "4be7cab5-6a07-11ef-9c6a-0242ac110002", "Units": "1", "MediaCount": "1",
           "Media0": "https://media.plivo.com/Account/MAXXX/Message/4be7/Media/0",
           "PowerpackUUID": "5f48eb7e-554c-4900-ab0f-224fb863db36"}
    assert one("plivo", mms) == {
        "id": "4be7cab5-6a07-11ef-9c6a-0242ac110002", "provider": "plivo", "status": "received",
        "direction": "inbound", "from_number": "+13125550178", "to_number": "+12025550143",
        "body": "Our storefront", "segment_count": 1, "message_type": "MMS",
        "message_profile_id": "5f48eb7e-554c-4900-ab0f-224fb863db36",
    }


# ---------------------------------------------------------------------------------------------------------------
# Sinch
# ---------------------------------------------------------------------------------------------------------------


def test_sinch_failed_report_from_the_docs() -> None:
    report = {"type": "recipient_delivery_report_sms", "batch_id": "01HXCNPA5T72E7QVP3J9WBRAN0",
              "recipient": "14155550121", "code": 62, "status": "Failed", "at": "2024-05-14T17:04:09.340Z",
              "operator_status_at": "2024-05-14T17:04:00Z", "operator": "310410"}
    assert one("sinch", report) == {
        "id": "01HXCNPA5T72E7QVP3J9WBRAN0:14155550121", "provider": "sinch", "status": "failed",
        "direction": "outbound", "to_number": "+14155550121", "message_type": "SMS", "error_code": "62",
        "message_finalized_at": "2024-05-14T17:04:00+00:00",
    }


def test_sinch_report_without_operator_time_and_a_queued_one() -> None:
    expired = {"type": "recipient_delivery_report_mms", "batch_id": "01HXCNPA5T72E7QVP3J9WBRAN1",
               "recipient": "14155550121", "code": 406, "status": "Expired", "at": "2024-05-15T17:04:09.340Z",
               "applied_originator": "12025550143", "number_of_message_parts": 1}
    assert one("sinch", expired) == {
        "id": "01HXCNPA5T72E7QVP3J9WBRAN1:14155550121", "provider": "sinch", "status": "expired",
        "direction": "outbound", "from_number": "+12025550143", "to_number": "+14155550121", "segment_count": 1,
        "message_type": "MMS", "error_code": "406", "message_finalized_at": "2024-05-15T17:04:09.340000+00:00",
    }
    queued = {"type": "recipient_delivery_report_sms", "batch_id": "01HXCNPA5T72E7QVP3J9WBRAN2",
              "recipient": "14155550121", "code": 400, "status": "Queued", "at": "2024-05-14T17:04:09.340Z"}
    assert one("sinch", queued) == {
        "id": "01HXCNPA5T72E7QVP3J9WBRAN2:14155550121", "provider": "sinch", "status": "queued",
        "direction": "outbound", "to_number": "+14155550121", "message_type": "SMS",
    }


def test_sinch_inbound_text_binary_and_batch_report() -> None:
    mo_text = {"type": "mo_text", "id": "01HXW1A2B3C4D5E6F7G8H9J0K1", "from": "13125550178", "to": "12025550143",
               "body": "Yes", "received_at": "2024-05-14T17:08:00.123Z", "operator_id": "310260"}
    assert one("sinch", mo_text) == {
        "id": "01HXW1A2B3C4D5E6F7G8H9J0K1", "provider": "sinch", "status": "received", "direction": "inbound",
        "from_number": "+13125550178", "to_number": "+12025550143", "body": "Yes", "segment_count": 1,
        "message_type": "SMS", "message_created_at": "2024-05-14T17:08:00.123000+00:00",
    }
    mo_binary = {**mo_text, "type": "mo_binary", "body": "AAECAwQ=", "udh": "050003010201"}
    assert one("sinch", mo_binary) == {
        "id": "01HXW1A2B3C4D5E6F7G8H9J0K1", "provider": "sinch", "status": "received", "direction": "inbound",
        "from_number": "+13125550178", "to_number": "+12025550143", "message_type": "SMS",
        "message_created_at": "2024-05-14T17:08:00.123000+00:00",
    }
    batch = {"type": "delivery_report_sms", "batch_id": "01HXCNPA5T72E7QVP3J9WBRAN0", "total_message_count": 2,
             "statuses": [{"code": 0, "count": 2, "status": "Delivered"}]}
    result = processor("sinch").run(orjson.dumps(batch).decode())
    assert (result.records, result.reject, result.rule) == ([], None, "batch-report")


def test_sinch_bare_batch_id_override_documented_in_the_config(tmp_path: Path) -> None:
    """config/sinch.yaml tells single-recipient senders how to keep the bare batch_id; inbound keeps its id."""
    config = tmp_path / "sinch.yaml"
    config.write_text(f"""sources:
  - name: sinch
    format: sinch
    paths: [{tmp_path}/sinch.jsonl]
    map: {{id: {{first: [$batch_id, $id]}}}}
""")
    source = Processor(load(config).sources[0])
    report = source.run(sample_lines("sinch")[1]).records
    assert report == [{**SAMPLE_RECORDS["sinch"][1], "id": "01HXW0R6Q5H17E5YMQ0G653360"}]
    mo_text = {"type": "mo_text", "id": "01HXW1A2B3C4D5E6F7G8H9J0K1", "from": "13125550178", "to": "12025550143",
               "body": "Yes", "received_at": "2024-05-14T17:08:00.123Z"}
    assert source.run(orjson.dumps(mo_text).decode()).records[0]["id"] == "01HXW1A2B3C4D5E6F7G8H9J0K1"


# ---------------------------------------------------------------------------------------------------------------
# Infobip
# ---------------------------------------------------------------------------------------------------------------


def test_infobip_intermediate_reports_are_not_finalised() -> None:
    base = {"bulkId": "2034072219640523073", "messageId": "825036576359786574", "to": "14155550121",
            "from": "12025550143", "sentAt": "2024-05-14T17:03:10.005+0000", "doneAt": "2024-05-14T17:03:11.100+0000",
            "smsCount": 2, "mccMnc": "310260",
            "error": {"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR", "description": "No Error",
                      "permanent": False}}
    body = {"results": [
        {**base, "status": {"groupId": 1, "groupName": "PENDING", "id": 7, "name": "PENDING_ENROUTE",
                            "description": "Message sent to next instance"}},
        {**base, "status": {"groupId": 3, "groupName": "DELIVERED", "id": 2, "name": "DELIVERED_TO_OPERATOR",
                            "description": "Message delivered to operator"}},
    ]}
    common = {"id": "825036576359786574", "provider": "infobip", "direction": "outbound",
              "from_number": "+12025550143", "to_number": "+14155550121", "segment_count": 2, "message_type": "SMS",
              "message_sent_at": "2024-05-14T17:03:10.005000+00:00"}
    assert records("infobip", body) == [{**common, "status": "pending"}, {**common, "status": "delivered"}]


def test_infobip_inbound() -> None:
    body = {"results": [{"messageId": "817790313235066447", "from": "385916242493", "to": "385921004026",
                         "text": "QUIZ Correct answer is Paris", "cleanText": "Correct answer is Paris",
                         "keyword": "QUIZ", "receivedAt": "2024-05-14T17:09:00.000+0000", "smsCount": 1,
                         "price": {"pricePerMessage": 0, "currency": "EUR"}, "callbackData": "callbackData"}],
            "messageCount": 1, "pendingMessageCount": 0}
    assert one("infobip", body) == {
        "id": "817790313235066447", "provider": "infobip", "status": "received", "direction": "inbound",
        "from_number": "+385916242493", "to_number": "+385921004026", "body": "QUIZ Correct answer is Paris",
        "segment_count": 1, "message_type": "SMS", "message_created_at": "2024-05-14T17:09:00+00:00",
    }


def test_infobip_failed_report_without_an_error_says_why_from_its_status() -> None:
    """A failure group with error NO_ERROR: status.description is the only error text, so it is error_message."""
    body = orjson.loads(sample_lines("infobip")[1])
    body["results"][0]["error"] = {"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR",
                                   "description": "No Error", "permanent": False}
    expected = {k: v for k, v in SAMPLE_RECORDS["infobip"][1].items() if k != "error_code"}
    assert one("infobip", body) == {**expected, "error_message": "Message rejected by operator"}
    for group, name in (("EXPIRED", "EXPIRED_EXPIRED"), ("REJECTED", "REJECTED_NETWORK")):
        body["results"][0]["status"] = {"groupId": 4, "groupName": group, "id": 15, "name": name,
                                        "description": "Message expired" if group == "EXPIRED" else "Rejected"}
        record = one("infobip", body)
        assert (record["status"], record["error_message"], "error_code" in record) == (
            group.lower(), body["results"][0]["status"]["description"], False)
    # a delivered report's status text is no error
    assert "error_message" not in one("infobip", sample_lines("infobip")[0])


# ---------------------------------------------------------------------------------------------------------------
# MessageBird
# ---------------------------------------------------------------------------------------------------------------


def test_messagebird_delivery_failed_from_the_docs() -> None:
    report = {"id": "814eba0ba07dc96f705b78f23f59aec4", "reference": "order-8841", "recipient": "31612345001",
              "status": "delivery_failed", "statusDatetime": "2024-05-14T17:03:19+00:00",
              "statusReason": "unknown subscriber", "price[amount]": "0.0700", "price[currency]": "EUR",
              "mccmnc": "20408", "ported": "0", "messageLength": "62", "messagePartCount": "1",
              "statusErrorCode": "1"}
    assert one("messagebird", report) == {
        "id": "814eba0ba07dc96f705b78f23f59aec4", "provider": "messagebird", "status": "delivery_failed",
        "direction": "outbound", "to_number": "+31612345001", "segment_count": 1, "message_type": "SMS",
        "error_code": "1", "error_message": "unknown subscriber",
        "message_finalized_at": "2024-05-14T17:03:19+00:00",
    }


def test_messagebird_inbound_and_buffered() -> None:
    inbound = {"id": "e8077d803532c0b5937c639b60216938", "recipient": "3197010520000", "originator": "31612345001",
               "body": "Hi there", "createdDatetime": "2024-05-14T17:10:00+00:00"}
    assert one("messagebird", inbound) == {
        "id": "e8077d803532c0b5937c639b60216938", "provider": "messagebird", "status": "received",
        "direction": "inbound", "from_number": "+31612345001", "to_number": "+3197010520000", "body": "Hi there",
        "segment_count": 1, "message_type": "SMS", "message_created_at": "2024-05-14T17:10:00+00:00",
    }
    buffered = {"id": "84097b5a87510155d04330aab2ce7751", "recipient": 31612345678, "status": "buffered",
                "statusDatetime": "2024-05-14T17:02:04+00:00", "statusReason": "pending DLR"}
    assert one("messagebird", buffered) == {
        "id": "84097b5a87510155d04330aab2ce7751", "provider": "messagebird", "status": "buffered",
        "direction": "outbound", "to_number": "+31612345678", "message_type": "SMS",
    }


# ---------------------------------------------------------------------------------------------------------------
# Pinpoint / End User Messaging
# ---------------------------------------------------------------------------------------------------------------

EUM_SUCCESS = {"eventType": "TEXT_SUCCESSFUL", "eventVersion": "1.0", "eventTimestamp": 1686975103470,
               "isFinal": True, "originationPhoneNumber": "+12065550152", "destinationPhoneNumber": "+14255550156",
               "isInternationalSend": False, "mcc": "310", "mnc": "800",
               "messageId": "862a8790-60c0-4430-9b2b-658bdexample", "messageRequestTimestamp": 1686975103170,
               "messageEncoding": "GSM", "messageType": "PROMOTIONAL", "messageStatus": "SUCCESSFUL",
               "messageStatusDescription": "Message has been accepted by phone carrier",
               "context": {"account": "bar"}, "totalMessageParts": 1, "totalMessagePrice": 0.09582,
               "totalCarrierFee": 0.0}
EUM_RECORD = {"id": "862a8790-60c0-4430-9b2b-658bdexample", "provider": "pinpoint", "direction": "outbound",
              "from_number": "+12065550152", "to_number": "+14255550156", "segment_count": 1, "message_type": "SMS",
              "message_created_at": "2023-06-17T04:11:43.170000+00:00"}


def test_pinpoint_end_user_messaging_events() -> None:
    assert one("pinpoint", EUM_SUCCESS) == {
        **EUM_RECORD, "status": "successful", "message_finalized_at": "2023-06-17T04:11:43.470000+00:00"}
    unreachable = {**EUM_SUCCESS, "eventType": "TEXT_CARRIER_UNREACHABLE", "messageStatus": "CARRIER_UNREACHABLE",
                   "messageStatusDescription": "The destination carrier could not be reached"}
    assert one("pinpoint", unreachable) == {
        **EUM_RECORD, "status": "carrier_unreachable", "error_code": "CARRIER_UNREACHABLE",
        "error_message": "The destination carrier could not be reached",
        "message_finalized_at": "2023-06-17T04:11:43.470000+00:00"}
    pending = {**EUM_SUCCESS, "eventType": "TEXT_PENDING", "isFinal": False, "messageStatus": "PENDING",
               "messageStatusDescription": "Message is pending delivery"}
    assert one("pinpoint", pending) == {**EUM_RECORD, "status": "pending"}
    media = {**EUM_SUCCESS, "eventType": "MEDIA_SUCCESSFUL"}
    assert one("pinpoint", media)["message_type"] == "MMS"
    voice = {**EUM_SUCCESS, "eventType": "VOICE_COMPLETED"}
    result = processor("pinpoint").run(orjson.dumps(voice).decode())
    assert (result.records, result.reject, result.rule) == ([], None, "voice")


def test_pinpoint_legacy_failure_and_two_way_inbound() -> None:
    failure = orjson.loads(sample_lines("pinpoint")[1])
    failure["event_type"] = "_SMS.FAILURE"
    failure["attributes"]["record_status"] = "UNREACHABLE"
    assert one("pinpoint", failure) == {
        **SAMPLE_RECORDS["pinpoint"][1], "status": "unreachable", "error_code": "UNREACHABLE"}
    inbound = {"originationNumber": "+13125550178", "destinationNumber": "+12025550143",
               "messageKeyword": "KEYWORD_123456789012", "messageBody": "Yes please",
               "inboundMessageId": "cae173d2-66b9-564c-8309-21f858e9fb84",
               "previousPublishedMessageId": "wJ0ae5jdq9F1bbTvYXwAKpEvvKl3Rz3b"}
    assert one("pinpoint", inbound) == {
        "id": "cae173d2-66b9-564c-8309-21f858e9fb84", "provider": "pinpoint", "status": "received",
        "direction": "inbound", "from_number": "+13125550178", "to_number": "+12025550143", "body": "Yes please",
        "segment_count": 1, "message_type": "SMS",
    }


# ---------------------------------------------------------------------------------------------------------------
# RingCentral
# ---------------------------------------------------------------------------------------------------------------


def _ringcentral(index: int, **body: Any) -> dict[str, Any]:
    """Sample line `index` with fields of its body replaced (None removes one)."""
    event = orjson.loads(sample_lines("ringcentral")[index])
    event["body"] = {k: v for k, v in {**event["body"], **body}.items() if v is not None}
    return event


def test_ringcentral_a2p_outbound_statuses_and_their_times() -> None:
    base = {k: v for k, v in SAMPLE_RECORDS["ringcentral"][0].items()
            if k not in ("status", "error_code", "message_finalized_at")}
    assert one("ringcentral", _ringcentral(0, messageStatus="Queued", errorCode=None)) == {**base, "status": "queued"}
    assert one("ringcentral", _ringcentral(0, messageStatus="Sent", errorCode=None)) == {
        **base, "status": "sent", "message_sent_at": "2024-07-08T09:14:24.007316+00:00"}
    assert one("ringcentral", _ringcentral(0, messageStatus="Delivered", errorCode=None)) == {
        **base, "status": "delivered", "message_finalized_at": "2024-07-08T09:14:24.007316+00:00"}
    # SendingFailed may come without segmentCount: then the text gives it
    failed = _ringcentral(0, messageStatus="SendingFailed", errorCode="SMS-RC-413", segmentCount=None, cost=None,
                          text="A" * 200)
    assert one("ringcentral", failed) == {
        **base, "status": "sendingfailed", "error_code": "SMS-RC-413", "body": "A" * 200, "segment_count": 2,
        "message_finalized_at": "2024-07-08T09:14:24.007316+00:00"}


def test_ringcentral_instant_sms_goes_to_the_target_recipient() -> None:
    group = [{"phoneNumber": "+15125550101", "name": "Front desk"},
             {"phoneNumber": "+15125550133", "name": "Sales Line", "target": True}]
    sms = _ringcentral(2, to=group, attachments=[{"id": "22950017004", "type": "Text",
                                                  "contentType": "text/plain"}], subject="On my way")
    assert one("ringcentral", sms) == {
        "id": "22950017004", "provider": "ringcentral", "status": "received", "direction": "inbound",
        "from_number": "+13035550146", "to_number": "+15125550133", "body": "On my way", "segment_count": 1,
        "message_type": "SMS", "message_created_at": "2024-07-08T10:02:44.275000+00:00"}
    # no entry marked as the target: the first recipient
    untargeted = _ringcentral(2, to=[{"phoneNumber": "+15125550101"}, {"phoneNumber": "+15125550133"}])
    assert one("ringcentral", untargeted)["to_number"] == "+15125550101"


def test_ringcentral_message_store_and_other_events_are_skipped_not_refused() -> None:
    result = processor("ringcentral").run(sample_lines("ringcentral")[3])
    assert (result.records, result.reject, result.skipped, result.rule) == ([], None, True, "message-store")
    other = orjson.loads(sample_lines("ringcentral")[3])
    for event in ("/restapi/v1.0/account/~/extension/~/presence", "/restapi/v1.0/account/~/a2p-sms/batches",
                  "/restapi/v1.0/account/~/a2p-sms/opt-outs", "/restapi/v1.0/account/~/telephony/sessions"):
        result = processor("ringcentral").run(orjson.dumps({**other, "event": event}).decode())
        assert (result.records, result.reject, result.skipped, result.rule) == ([], None, True, "other-event"), event
    # no RingCentral event URI: not a RingCentral notification at all
    assert processor("ringcentral").run(orjson.dumps({**other, "event": "presence"}).decode()).reject == (
        "no rule matched")


# ---------------------------------------------------------------------------------------------------------------
# CDYNE
# ---------------------------------------------------------------------------------------------------------------

CDYNE_RECEIPT = orjson.loads(sample_lines("cdyne")[1])


@pytest.mark.parametrize(("code", "status", "error_code"), [
    ("000", "deliveredtodevice", None),
    ("003", "deliveredtocarrier", None),
    ("004", "accepted", None),
    ("005", "undelivordeleted", "005"),
    ("090", "badaddress", "090"),
    ("999", "carriererrorunknown", "999"),
    ("027", None, "027"),  # outside the documented enum: no word for it, the code is kept
])
def test_cdyne_receipt_status_is_the_code_enum_name(code: str, status: str | None, error_code: str | None) -> None:
    record = one("cdyne", {**CDYNE_RECEIPT, "Code": code})
    assert (record.get("status"), record.get("error_code")) == (status, error_code)
    assert "message_type" not in record  # the sent postback says SMS or MMS; a receipt does not


def test_cdyne_mms_postbacks_eleven_digit_numbers_and_short_codes() -> None:
    sent = {"MMSSent": "1", "MessageID": "9a2f4c61-0d7e-4b38-8c15-e6f3a9d20b47", "ReferenceID": "",
            "FromPhoneNumber": "18045550131", "ToPhoneNumber": "18045550172", "SentTime": "12/3/2024 11:45:02 PM"}
    assert one("cdyne", sent) == {
        "id": "9a2f4c61-0d7e-4b38-8c15-e6f3a9d20b47", "provider": "cdyne", "status": "sent",
        "direction": "outbound", "from_number": "+18045550131", "to_number": "+18045550172", "message_type": "MMS",
        "message_sent_at": "2024-12-03T23:45:02+00:00"}
    reply = {"MMSResponse": "1", "MessageID": "e4b71a90-3c2d-4f86-9a05-7d1c8e6b3f24",
             "MatchedMessageID": "00000000-0000-0000-0000-000000000000", "ReferenceID": "",
             "FromPhoneNumber": "8045550172", "ToPhoneNumber": "74121", "ResponseReceiveDate": "12/3/2024 11:50:10 PM",
             "Message": "Here is the photo you asked for"}
    assert one("cdyne", reply) == {
        "id": "e4b71a90-3c2d-4f86-9a05-7d1c8e6b3f24", "provider": "cdyne", "status": "received",
        "direction": "inbound", "from_number": "+18045550172", "to_number": "74121",
        "body": "Here is the photo you asked for", "message_type": "MMS",
        "message_created_at": "2024-12-03T23:50:10+00:00"}  # no SMS segment count for an MMS


def test_cdyne_not_taken_by_the_aggregator_has_no_status_word() -> None:
    refused = {**orjson.loads(sample_lines("cdyne")[0]), "SMSSent": "0"}
    assert one("cdyne", refused) == {
        "id": "0b6e94d1-7c3a-4f28-9e15-d4a2c8f07b63", "provider": "cdyne", "direction": "outbound",
        "from_number": "+18045550131", "to_number": "+18045550172", "message_type": "SMS"}


def test_cdyne_numbers_are_nanp_whatever_the_default_country(tmp_path: Path) -> None:
    config = tmp_path / "cdyne.yaml"
    config.write_text(f"sources:\n  - name: c\n    format: cdyne\n    paths: [{tmp_path}/x]\n    default_country: GB\n")
    record = Processor(load(config).sources[0]).run(sample_lines("cdyne")[0]).records[0]
    assert (record["from_number"], record["to_number"]) == ("+18045550131", "+18045550172")


def test_default_country_no_read_by_yaml_as_false_says_to_quote_it(tmp_path: Path) -> None:
    config = tmp_path / "cdyne.yaml"
    config.write_text(f"sources:\n  - name: c\n    format: cdyne\n    paths: [{tmp_path}/x]\n    default_country: NO\n")
    with pytest.raises(ConfigError) as err:
        load(config)
    assert err.value.key == "sources[c].default_country" and 'quote it: "NO"' in err.value.expected
    config.write_text(config.read_text().replace("NO", '"NO"'))
    assert load(config).sources[0].default_country == "NO"


# ---------------------------------------------------------------------------------------------------------------
# IMImobile / Webex Connect
# ---------------------------------------------------------------------------------------------------------------


def test_imimobile_submitted_receipt_is_sent_and_has_no_error() -> None:
    receipt = orjson.loads(sample_lines("imimobile")[0])
    info = receipt["deliveryInfoNotification"]["deliveryInfo"]
    info.update(deliveryStatus="Submitted", code="7501", Description="Submitted", messageCount="2")
    assert one("imimobile", receipt) == {
        "id": "d3a90f6e-2b71-4c58-8e04-6f1b9a2c7d35", "provider": "imimobile", "status": "submitted",
        "direction": "outbound", "to_number": "+447700900655", "segment_count": 2, "message_type": "SMS",
        "message_sent_at": "2024-07-22T08:31:48.205000+00:00"}


def test_imimobile_inbound_to_a_short_code_without_a_service() -> None:
    inbound = orjson.loads(sample_lines("imimobile")[2])
    inbound["da"] = "60777"
    inbound["dataIntegration"]["context"]["serviceId"] = ""
    assert one("imimobile", inbound) == {
        **{k: v for k, v in SAMPLE_RECORDS["imimobile"][2].items() if k != "message_profile_id"},
        "to_number": "60777"}


def test_imimobile_inbound_needs_a_sender_or_a_text_besides_its_transid() -> None:
    inbound = orjson.loads(sample_lines("imimobile")[2])
    expected = SAMPLE_RECORDS["imimobile"][2]
    without_sender = {k: v for k, v in inbound.items() if k != "oa"}
    assert one("imimobile", without_sender) == {k: v for k, v in expected.items() if k != "from_number"}
    assert one("imimobile", {k: v for k, v in inbound.items() if k != "message"}) == {
        k: v for k, v in expected.items() if k not in ("body", "segment_count")}
    result = processor("imimobile").run(orjson.dumps({"transid": "t1", "status": "x"}).decode())
    assert result.records == [] and result.reject is not None and "no rule" in result.reject, result.reject


# ---------------------------------------------------------------------------------------------------------------
# Tychron
# ---------------------------------------------------------------------------------------------------------------


def test_tychron_inbound_sms_segments_from_udh_or_parts() -> None:
    sms = orjson.loads(sample_lines("tychron")[0])
    assert one("tychron", {**sms, "udh": {"ref_num": 17, "count": 3}})["segment_count"] == 3
    assert one("tychron", {**sms, "parts": [{"id": "p1"}, {"id": "p2"}]})["segment_count"] == 2


def test_tychron_sms_receipts_use_the_message_id_and_the_delivery_status() -> None:
    dlr = orjson.loads(sample_lines("tychron")[1])
    delivered = {**dlr, "status": "failed", "error_code": "500", "delivery_status": "delivered",
                 "delivery_error_code": "000"}  # the top-level status/error_code are Tychron's processing
    assert one("tychron", delivered) == {
        **{k: v for k, v in SAMPLE_RECORDS["tychron"][1].items() if k != "error_code"}, "status": "delivered"}
    enroute = {**dlr, "delivery_status": "enroute", "delivery_error_code": "000"}
    assert one("tychron", enroute) == {
        **{k: v for k, v in SAMPLE_RECORDS["tychron"][1].items() if k not in ("error_code", "message_finalized_at")},
        "status": "enroute"}
    without_message = {k: v for k, v in dlr.items() if k != "sms"}  # the top-level id names the receipt: no id
    assert processor("tychron").run(orjson.dumps(without_message).decode()).reject == (
        "record breaks the contract: missing required field 'id'")


def test_tychron_final_mms_report_and_a_billing_record() -> None:
    report = {**orjson.loads(sample_lines("tychron")[3]), "status_code": "Retrieved"}
    assert one("tychron", report) == {**SAMPLE_RECORDS["tychron"][3], "status": "retrieved",
                                      "message_finalized_at": "2024-07-09T14:30:10.861274+00:00"}
    for word in ("Unrecognized", " unrecognised ", "REJECTED "):  # both spellings; spaces around the word
        assert one("tychron", {**report, "status_code": word}) == {
            **SAMPLE_RECORDS["tychron"][3], "status": word.strip().lower(),
            "message_finalized_at": "2024-07-09T14:30:10.861274+00:00"}
    receipt = {**orjson.loads(sample_lines("tychron")[1]), "delivery_status": " Delivered "}
    assert one("tychron", receipt)["status"] == "delivered" and "message_finalized_at" in one("tychron", receipt)
    result = processor("tychron").run(sample_lines("tychron")[4])
    assert (result.records, result.reject, result.skipped, result.rule) == ([], None, True, "cdr")


def test_tychron_receipt_orientation_override_from_the_example_config(tmp_path: Path) -> None:
    """config/tychron.yaml shows how to keep the payload's from/to if receipts turn out not to be swapped."""
    example = (ROOT / "config" / "tychron.yaml").read_text()
    override = "\n".join(line.replace("    # ", "    ", 1) for line in example.splitlines()
                         if line.startswith(("    # map:", "    #   from_number", "    #   to_number")))
    config = tmp_path / "tychron.yaml"
    config.write_text(f"sources:\n  - name: t\n    format: tychron\n    paths: [{tmp_path}/x]\n{override}\n")
    source = Processor(load(config).sources[0])
    records = [r for line in sample_lines("tychron") for r in source.run(line).records]
    assert [(r["from_number"], r["to_number"]) for r in records] == [
        ("+15125550163", "+16465550108"), ("+16465550174", "+15125550163"),
        ("+15125550163", "+16465550108"), ("+16465550174", "+15125550163")]


# ---------------------------------------------------------------------------------------------------------------
# Commio
# ---------------------------------------------------------------------------------------------------------------


def test_commio_delivered_notification_has_no_error_code() -> None:
    delivered = {**orjson.loads(sample_lines("commio")[0]), "send_status": "delivered", "status": "DELIVRD",
                 "error": "000", "source_did": "15125550122"}
    assert one("commio", delivered) == {**{k: v for k, v in SAMPLE_RECORDS["commio"][0].items() if k != "error_code"},
                                        "status": "delivrd"}


def test_commio_inbound_mms_text_is_the_body_and_an_id_is_required() -> None:
    mms = {**orjson.loads(sample_lines("commio")[2]), "message": "Is this the right part?"}
    assert one("commio", mms) == {**SAMPLE_RECORDS["commio"][2], "body": "Is this the right part?"}
    base64_image = {**mms, "message": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA"}
    assert "body" not in one("commio", base64_image)
    without_id = {k: v for k, v in orjson.loads(sample_lines("commio")[1]).items() if k != "id"}
    assert processor("commio").run(orjson.dumps(without_id).decode()).reject == (
        "record breaks the contract: missing required field 'id'")


# ---------------------------------------------------------------------------------------------------------------
# Refusals and robustness
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(("line", "reason"), [
    ('{"MessageSid": "SM1", "MessageStatus": "sent"', "invalid JSON"),
    ("not json at all", "invalid JSON"),
    ('{"event": "heartbeat", "ok": true}', None),
    ("42", None),
])
def test_broken_or_unknown_lines_are_refused_with_a_reason(provider: str, line: str, reason: str | None) -> None:
    result = processor(provider).run(line)
    assert result.records == []
    assert result.reject, f"{provider}: {line!r} should be refused"
    if reason:
        assert result.reject.startswith(reason)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_record_without_an_id_is_refused_not_sent(provider: str) -> None:
    webhook = orjson.loads(sample_lines(provider)[1])
    for key in ("MessageSid", "messageId", "MessageUUID", "id", "batch_id", "message_id", "MessageID", "transid",
                "guid"):
        _drop_key(webhook, key)
    result = processor(provider).run(orjson.dumps(webhook).decode())
    assert result.records == []
    # refused either by the rules (they select events by their id field) or by the contract check
    assert result.reject in ("no rule matched", "record breaks the contract: missing required field 'id'")


def _drop_key(value: Any, key: str) -> None:
    if isinstance(value, dict):
        value.pop(key, None)
        for v in value.values():
            _drop_key(v, key)
    elif isinstance(value, list):
        for v in value:
            _drop_key(v, key)


JSON_SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
                | st.sampled_from(["", "0", "sent", "delivered", "received", "+12025550143", "2405141702",
                                   "2024-05-14T17:02:03Z", "message-failed", "mo_text", "PENDING", "_SMS.SUCCESS"]))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


def assert_clean(provider: str, line: str) -> None:
    """Never raises; every record fits the contract and holds no unknown (None, "", [], {}) value."""
    result = processor(provider).run(line)
    assert result.reject is None or isinstance(result.reject, str)
    for record in result.records:
        assert problem(record) is None
        assert record["provider"] == provider
        for key, value in record.items():
            assert value not in (None, "", [], {}), (key, value)
            assert type(value) is (int if key == "segment_count" else str), (key, value)


def _mutate(value: Any, data: st.DataObject) -> Any:
    """Replace, drop or keep each field of a real webhook, recursively, with arbitrary JSON."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            action = data.draw(st.sampled_from(["keep", "keep", "mutate", "replace", "drop"]))
            if action == "drop":
                continue
            out[k] = v if action == "keep" else _mutate(v, data) if action == "mutate" else data.draw(JSON_VALUES)
        return out
    if isinstance(value, list):
        return [_mutate(v, data) for v in value]
    return data.draw(JSON_VALUES) if data.draw(st.booleans()) else value


@pytest.mark.parametrize("provider", PROVIDERS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=JSON_VALUES)
def test_arbitrary_json_never_crashes_or_leaks_unknowns(provider: str, value: Any) -> None:
    assert_clean(provider, orjson.dumps(value).decode())


@pytest.mark.parametrize("provider", PROVIDERS)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mangled_real_webhooks_never_crash_or_leak_unknowns(provider: str, data: st.DataObject) -> None:
    webhook = orjson.loads(data.draw(st.sampled_from(sample_lines(provider))))
    assert_clean(provider, orjson.dumps(_mutate(webhook, data)).decode())
