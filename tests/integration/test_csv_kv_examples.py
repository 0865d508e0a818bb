"""The CSV CDR and logfmt examples (config/smsc-cdr.yaml, config/app-logfmt.yaml) through the real CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from tests.conftest import ROOT

CDR_SAMPLE = ROOT / "config" / "samples" / "smsc-cdr.csv"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "agent.cli", *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_cdr_example_maps_every_row_skips_headers_and_refuses_the_cut_row():
    proc = _cli("parse", "--config", "config/smsc-cdr.yaml", "--explain")
    assert "lines=12 records=9 rejected=1 skipped=2" in proc.stderr
    assert "source smsc-cdr: parser csv, columns msg_id, submit_time, done_time, source_addr" in proc.stderr
    out = proc.stdout.splitlines()
    assert [line.split(" ", 1)[1] for line in out if " rule=" not in line] == [
        "skipped by rule header", "skipped by rule header", "rejected: invalid CSV: unterminated quote"]
    records = {r["id"]: r for r in (orjson.loads(line.split(" ", 2)[2]) for line in out if " rule=cdr " in line)}
    assert records["5AE79E52"] == {
        "id": "5AE79E52", "provider": "smpp", "direction": "outbound", "message_type": "SMS",
        "status": "undeliverable", "from_number": "88001", "to_number": "+447700900415", "error_code": "001",
        "error_message": "UNDELIV", "segment_count": 1, "message_created_at": "2026-11-27T01:13:22+00:00",
        "message_finalized_at": "2026-11-27T01:13:31+00:00", "mno_name": "EE Limited",
        "message_profile_id": "vf-lon-1"}
    assert records["367e5d6d-fd74-4069-abb6-a3de65151c40"]["mno_name"] == "Orange, S.A."  # quoted delimiter
    assert records["5AE79E58"]["mno_name"] == 'Three ("3") UK'  # doubled quotes
    enroute = records["14881edc-127e-4abe-9bde-b398032fbce3"]  # empty done_time and error_code: left out
    assert enroute["status"] == "enroute" and "message_finalized_at" not in enroute and "error_code" not in enroute
    assert "mno_name" not in records["5AE79E53"]


def _dry_run(tmp_path: Path, config: str, *files: Path) -> list[dict[str, Any]]:
    text = (ROOT / config).read_text(encoding="utf-8")
    if files:
        sample = "config/samples/" + Path(text.split("config/samples/", 1)[1].split("]", 1)[0]).name
        text = text.replace(f"[{sample}]", "[" + ", ".join(str(f) for f in files) + "]")
    path = tmp_path / "agent.yaml"
    path.write_text(text, encoding="utf-8")
    proc = _cli("run", "--config", str(path), "--state-dir", str(tmp_path / "state"), "--dry-run", "--once")
    return [orjson.loads(line) for line in proc.stdout.splitlines()]


def test_a_cdr_file_and_its_rotated_predecessor_each_with_a_header_are_read_whole(tmp_path):
    rows = CDR_SAMPLE.read_text(encoding="utf-8").splitlines()
    header, good = rows[0], [r for r in rows[1:9] if r != rows[0]]
    (tmp_path / "cdr.csv.1").write_text("\n".join([header, *good[:3]]) + "\n", encoding="utf-8")
    (tmp_path / "cdr.csv").write_text("\n".join([header, *good[3:]]) + "\n", encoding="utf-8")
    records = _dry_run(tmp_path, "config/smsc-cdr.yaml", tmp_path / "cdr.csv.1", tmp_path / "cdr.csv")
    assert sorted(r["id"] for r in records) == sorted(r.split(",", 1)[0] for r in good)


def test_logfmt_example_runs_dry_with_quoted_values_and_dotted_keys(tmp_path):
    records = _dry_run(tmp_path, "config/app-logfmt.yaml")
    by_id: dict[str, dict[str, Any]] = {}
    for rec in records:
        by_id.setdefault(rec["id"], {}).update(rec)
    assert len(records) == 7 and len(by_id) == 4
    parcel = by_id["SM77a01c3e2b"]
    assert parcel["body"].startswith('Hi Sam, your parcel "A-4471" is out') and parcel["segment_count"] == 2
    assert (parcel["status"], parcel["error_code"], parcel["error_message"]) == (
        "undelivered", "30003", "Unreachable destination handset")
    assert parcel["to_number"] == "+447700900415"
    failed = by_id["SM91d2e6b0c4"]
    assert failed["status"] == "failed" and "error_message" not in failed  # `error.message=`: empty, left out
    assert by_id["SM0c4b9e1f88"]["direction"] == "inbound"
