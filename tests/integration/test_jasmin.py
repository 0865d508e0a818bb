"""The jasmin format: Jasmin messages.log lines of both eras (Python 3 literals, Python 2 bare values).

Lines come from the sample capture (tests/fixtures/jasmin), from jasmin-FORMAT.md, and are built from the format
strings in Jasmin's listeners.py / dlr.py (tag 0.11.0) as that doc quotes them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from agent.config import load
from agent.formats.source import Processor
from tests.conftest import FIXTURES, ROOT

P3 = "2025-03-18 10:00:01 INFO     1187 "
P2 = "2017-12-23 00:46:39 INFO     5350 "
MT_PRIVACY = (P3 + "SMS-MT [cid:smsc_eu1] [queue-msgid:5b0e6f0e-3f7c-4a8e-b1a4-0c7d2b9e8f11] "
              "[smpp-msgid:b'6a1f2a01'] [status:CommandStatus.ESME_ROK] [prio:0] "
              "[dlr:RegisteredDeliveryReceipt.SMSC_DELIVERY_RECEIPT_REQUESTED] [validity:none] [from:b'ACMEBANK'] "
              "[to:b'447700900123'] [content:** 38 byte content **]")
MT_APOSTROPHE = (P3 + "SMS-MT [cid:smsc_eu1] [queue-msgid:0c1d2e3f-4a5b-4c6d-8e7f-901a2b3c4d5e] "
                 "[smpp-msgid:b'000a3f9e'] [status:CommandStatus.ESME_ROK] [prio:0] "
                 "[dlr:RegisteredDeliveryReceipt.SMSC_DELIVERY_RECEIPT_REQUESTED] [validity:none] [from:b'ACME'] "
                 "[to:b'07700900123'] [content:b\"Don't forget: [ref 12] tomorrow\"] [tlvs:none]")
MT_UCS2 = (P3 + "SMS-MT [cid:smsc_eu1] [queue-msgid:77aa1c2e-0d3b-4f5e-9a8b-1c2d3e4f5a6b] "
           "[smpp-msgid:b'6a1f2a05'] [status:CommandStatus.ESME_ROK] [prio:0] "
           "[dlr:RegisteredDeliveryReceipt.NO_SMSC_DELIVERY_RECEIPT_REQUESTED] [validity:none] [from:b'ACME'] "
           "[to:b'+79161234567'] [content:b'\\x04\\x12\\x040\\x04H\\x00 \\x04:\\x04>\\x044'] "
           "[tlvs:sar_msg_ref_num:12,sar_total_segments:1]")
MT_GSM = (P3 + "SMS-MT [cid:smsc_eu1] [queue-msgid:1b2c3d4e-5f60-4718-a9b0-c1d2e3f4a5b6] [smpp-msgid:b'6a1f2a06'] "
          "[status:CommandStatus.ESME_ROK] [prio:0] [dlr:RegisteredDeliveryReceipt.SMSC_DELIVERY_RECEIPT_REQUESTED] "
          "[validity:none] [from:None] [to:b'447700900777'] [content:b'\\x11SMS\\x11TEST costs \\x1be5 \\x00 shop']")
MT_PY2 = (P2 + "SMS-MT [cid:routesms] [queue-msgid:b036c3b7-6120-4ced-bdbe-cc1d8e684958] "
          "[smpp-msgid:0e999f21-81ef-4974-a414-3de98174e3c7] [status:ESME_ROK] [prio:0] "
          "[dlr:SMSC_DELIVERY_RECEIPT_REQUESTED] [validity:none] [from:ACME] [to:447700900123] [content:'f1']")
DLR_PY2 = ("2017-12-23 00:46:45 INFO     5353 DLR [cid:routesms] [smpp-msgid:E999F21-81EF-4974-A414-3DE98174E3C7] "
           "[status:DELIVRD] [submit date:1712230046] [done date:1712230046] [sub/dlvrd messages:001/001] [err:000] "
           "[content:'']")
DLR_UNDELIV = ("2025-03-18 10:00:09 INFO     1190 DLR [cid:smsc_eu1_rx] [smpp-msgid:A3F9E] [status:UNDELIV] "
               "[submit date:250318100001] [done date:250318090008] [sub/dlvrd messages:001/000] [err:001] "
               "[content:b\"Don't forget: [ref \"]")
DLR_ACCEPTD = DLR_UNDELIV.replace("UNDELIV", "ACCEPTD").replace("[err:001]", "[err:000]")
DLR_EXPIRED_ND = DLR_UNDELIV.replace("UNDELIV", "EXPIRED").replace("[err:001]", "[err:ND]")
MT_RETRY = (P3 + "SMS-MT [cid:smsc_eu1] [queue-msgid:3c4d5e6f-7081-4293-a4b5-c6d7e8f90a1b] "
            "[status:ERROR/CommandStatus.ESME_RTHROTTLED] [retry:True] [prio:0] "
            "[dlr:RegisteredDeliveryReceipt.SMSC_DELIVERY_RECEIPT_REQUESTED] [validity:none] [from:b'ACME'] "
            "[to:b'447700900555'] [content:b'Your code is 1234']")
MT_REFUSED = MT_RETRY.replace("ESME_RTHROTTLED] [retry:True]", "ESME_RINVDSTADR] [retry:False]")
MT_REFUSED_PY2 = (P2 + "SMS-MT [cid:routesms] [queue-msgid:9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d] "
                  "[status:ERROR/ESME_RTHROTTLED] [retry:False] [prio:0] [dlr:SMSC_DELIVERY_RECEIPT_REQUESTED] "
                  "[validity:none] [from:ACME] [to:447700900124] [content:'promo']")
MO = (P3 + "SMS-MO [cid:smsc_eu1] [queue-msgid:6f5e4d3c-2b1a-4098-b7a6-5f4e3d2c1b0a] [status:CommandStatus.ESME_ROK] "
      "[prio:PriorityFlag.LEVEL_0] [validity:None] [from:b'447700900456'] [to:b'32123'] "
      "[content:b'\\x00H\\x00e\\x00l\\x00l\\x00o\\x00 \\xd8=\\xde\\x00'] [tlvs:none]")
MO_PY2 = (P2 + "SMS-MO [cid:routesms] [queue-msgid:2d3e4f50-6172-4839-94a5-b6c7d8e9f0a1] [status:ESME_ROK] "
          "[prio:0] [validity:None] [from:447700900457] [to:32123] [content:'STOP']")
MO_REFUSED = (P3 + "SMS-MO [cid:smsc_eu1] [i-status:CommandStatus.ESME_RX_R_APPN] [from:b'447700900456'] "
              "[to:b'32123'] [content:b'JOIN']")
NOISE = {
    "dlr-lookup-error": "2025-03-18 10:00:10 ERROR    1190 [msgid:6A1F2A09] (retrials: 1/2) DLRMapNotFound: Got a DLR "
                        "for an unknown message id: 6a1f2a09 (coded:6A1F2A09)",
    "connector-not-ready": "2025-03-18 10:00:11 ERROR    1187 SMPPC [cid:smsc_eu1] is not connected: Requeuing "
                           "(#1) SubmitSmPDU[5b0e6f0e], aged 0 seconds.",
    "mo-part": "2025-03-18 10:00:12 INFO     1187 DeliverSmContent[9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a] is part of "
               "long msg of (2), will be enqueued after concatenation.",
    "dlr-lookup-started": "2025-03-18 09:59:58 INFO     1190 Started DLRLookup #main.",
    "mo-refused": MO_REFUSED,
    "mt-retry": MT_RETRY,
    "receipt-intermediate": DLR_ACCEPTD,
    "http-api-duplicate": "2025-03-18 10:00:04 INFO     1190 SMS-MT [uid:acme01] [cid:smsc_eu1] "
                          "[msgid:5b0e6f0e-3f7c-4a8e-b1a4-0c7d2b9e8f11] [prio:0] [dlr:Terminal] [from:b'ACMEBANK'] "
                          "[to:b'447700900123'] [content:b'Your ACME code: 482913.Do not share it.']",
}


def _config(tmp: Path, paths: list[Path] | None = None) -> Path:
    path = tmp / "jasmin.yaml"
    listed = ", ".join(f'"{p}"' for p in (paths or [tmp / "none.log"]))
    path.write_text(f"""state_dir: {tmp / 'state'}
sources:
  - name: jasmin
    format: jasmin
    paths: [{listed}]
    timezone: Europe/London
    receipt_timezone: UTC
    default_country: GB
""")
    return path


def _one(tmp: Path, line: str) -> dict[str, Any]:
    result = Processor(load(_config(tmp)).sources[0]).run(line)
    assert result.reject is None and len(result.records) == 1, (result.rule, result.reject)
    return result.records[0]


def test_mt_python3_with_log_privacy_has_no_body_and_a_canonical_id(tmp_path):
    rec = _one(tmp_path, MT_PRIVACY)
    assert rec == {"id": "6A1F2A01", "provider": "smpp", "status": "ESME_ROK", "direction": "outbound",
                   "message_type": "SMS", "from_number": "ACMEBANK", "to_number": "+447700900123",
                   "message_created_at": "2025-03-18T10:00:01+00:00", "message_sent_at": "2025-03-18T10:00:01+00:00",
                   "message_profile_id": "smsc_eu1"}


def test_mt_content_literals_are_decoded_in_every_encoding(tmp_path):
    apostrophe = _one(tmp_path, MT_APOSTROPHE)
    assert apostrophe["body"] == "Don't forget: [ref 12] tomorrow"  # b"…" literal, brackets, trailing [tlvs:]
    assert (apostrophe["id"], apostrophe["to_number"]) == ("A3F9E", "+447700900123")  # leading zeros stripped
    assert _one(tmp_path, MT_UCS2)["body"] == "Ваш код"  # UTF-16BE bytes
    gsm = _one(tmp_path, MT_GSM)
    assert gsm["body"] == "_SMS_TEST costs €5 @ shop"  # GSM 03.38 as Jasmin's HTTP API stores it
    assert "from_number" not in gsm  # [from:None]
    assert gsm["segment_count"] == 1


def test_summer_time_is_read_in_the_source_zone(tmp_path):
    rec = _one(tmp_path, MT_PRIVACY.replace("2025-03-18 10:00:01", "2025-07-01 10:00:01"))
    assert rec["message_sent_at"] == "2025-07-01T09:00:01+00:00"  # BST, +01:00


def test_mt_and_receipt_share_the_id_in_both_eras(tmp_path):
    processor = Processor(load(_config(tmp_path)).sources[0])
    (mt,) = processor.run(MT_PY2).records
    (dlr,) = processor.run(DLR_PY2).records
    assert mt["id"] == dlr["id"] == "E999F21-81EF-4974-A414-3DE98174E3C7"
    assert dlr == {"id": "E999F21-81EF-4974-A414-3DE98174E3C7", "provider": "smpp", "status": "delivered",
                   "direction": "outbound", "message_type": "SMS",
                   "message_finalized_at": "2017-12-23T00:46:00+00:00"}
    (mt3,) = processor.run(MT_APOSTROPHE).records
    (undeliv,) = processor.run(DLR_UNDELIV).records
    assert mt3["id"] == undeliv["id"] == "A3F9E"
    assert {k: undeliv[k] for k in ("status", "error_code", "error_message", "message_finalized_at")} == {
        "status": "undeliverable", "error_code": "001", "error_message": "UNDELIV",
        "message_finalized_at": "2025-03-18T09:00:08+00:00"}  # done date with seconds, receipt_timezone UTC
    assert "body" not in undeliv and "message_profile_id" not in undeliv  # receipt text is not the body
    (expired,) = processor.run(DLR_EXPIRED_ND).records
    assert (expired["status"], expired.get("error_code"), expired["error_message"]) == ("expired", None, "EXPIRED")


def test_refused_submits_are_rejected_under_the_queue_msgid(tmp_path):
    rec = _one(tmp_path, MT_REFUSED)
    assert {k: rec.get(k) for k in ("id", "status", "error_code", "body", "to_number", "message_finalized_at")} == {
        "id": "3c4d5e6f-7081-4293-a4b5-c6d7e8f90a1b", "status": "rejected", "error_code": "ESME_RINVDSTADR",
        "body": "Your code is 1234", "to_number": "+447700900555", "message_finalized_at": "2025-03-18T10:00:01+00:00"}
    py2 = _one(tmp_path, MT_REFUSED_PY2)
    assert (py2["id"], py2["status"], py2["error_code"], py2["body"]) == (
        "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "rejected", "ESME_RTHROTTLED", "promo")


def test_mo_in_both_eras(tmp_path):
    mo = _one(tmp_path, MO)
    assert {k: mo[k] for k in ("id", "status", "direction", "from_number", "to_number", "body")} == {
        "id": "6f5e4d3c-2b1a-4098-b7a6-5f4e3d2c1b0a", "status": "received", "direction": "inbound",
        "from_number": "+447700900456", "to_number": "32123", "body": "Hello \U0001f600"}
    py2 = _one(tmp_path, MO_PY2)
    assert (py2["id"], py2["body"], py2["from_number"]) == ("2d3e4f50-6172-4839-94a5-b6c7d8e9f0a1", "STOP",
                                                            "+447700900457")


def test_noise_lines_are_skipped_by_name_and_unknown_lines_rejected(tmp_path):
    processor = Processor(load(_config(tmp_path)).sources[0])
    for rule, line in NOISE.items():
        result = processor.run(line)
        assert (result.rule, result.records, result.skipped) == (rule, [], True), line
    assert processor.run("2025-03-18 10:00:13 INFO     1187 Something new").reject == "no rule matched"


def test_messages_and_dlrlookupd_files_both_followed_by_run(tmp_path):
    """The example config's two paths: receipts in dlrlookupd-messages.log join the MT lines of messages.log."""
    messages = tmp_path / "messages.log"
    dlrlookupd = tmp_path / "dlrlookupd-messages.log"
    messages.write_text("\n".join([MT_PY2, NOISE["mo-part"], MO_PY2]) + "\n")
    dlrlookupd.write_text("\n".join([NOISE["dlr-lookup-started"], DLR_PY2]) + "\n")
    proc = subprocess.run([sys.executable, "-m", "agent.cli", "run", "--config", str(_config(tmp_path, [
        messages, dlrlookupd])), "--dry-run", "--once"], capture_output=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr.decode()
    records = [orjson.loads(line) for line in proc.stdout.splitlines()]
    by_id: dict[str, dict[str, Any]] = {}
    for rec in records:
        by_id.setdefault(rec["id"], {}).update(rec)
    assert len(records) == 3 and set(by_id) == {"E999F21-81EF-4974-A414-3DE98174E3C7",
                                                "2d3e4f50-6172-4839-94a5-b6c7d8e9f0a1"}
    mt = by_id["E999F21-81EF-4974-A414-3DE98174E3C7"]
    assert (mt["status"], mt["body"], mt["message_finalized_at"]) == ("delivered", "f1", "2017-12-23T00:46:00+00:00")


def test_sample_capture_through_parse_explain():
    proc = subprocess.run([sys.executable, "-m", "agent.cli", "parse", "--config", "config/jasmin.yaml", "--explain",
                           str(FIXTURES / "jasmin" / "messages.log")],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "lines=6 records=4 rejected=0 skipped=2" in proc.stderr
    rest = [line.split(" ", 1)[1] for line in proc.stdout.splitlines()]  # after "FILE:LINE "
    assert [r.split(" ", 1)[0] if r.startswith("rule=") else r for r in rest] == [
        "rule=mt", "rule=mt", "skipped by rule mo-refused", "skipped by rule http-api-duplicate", "rule=mt",
        "rule=receipt"]
