"""Differential: the per-line shortcuts give exactly what the general paths give.

Each shortcut sits in front of a general path that is still there: sliced times in front of the memoised parse
(`TimeParser.__call__`), a per-shape contract test in front of `record.problem`, a type test in front of
`field_problem` in compiled mappings, numbers already in E.164 in front of the cached `to_e164`, a spec read
twice in one mapping (the line time of created and sent) computed once in front of computing each again, a
transform's guard written inline in front of its wrapper function, and the dry
run's chunk path (`take`, `FinalStatusMemory.apply`) in front of one `offer` per record. A reference processor
is built with the shortcuts switched off; every built-in format then reads the same lines (generated ones, the
shipped samples, and both cut and corrupted) through both, and the rule, records and reject reason must be
identical, line by line. The end-to-end test does the same for the whole `run --dry-run --once` job against
the reference processor and one guard call per record.
"""

from __future__ import annotations

import contextlib
import importlib.util
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.config import load
from agent.formats import mapping
from agent.formats.source import Processor, preset_names
from agent.formats.transforms import times
from agent.record import ALL_FIELDS, ShapeCheck, problem
from agent.status_memory import FinalStatusMemory

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "config" / "samples"
ZONES = ("UTC", "Europe/Berlin", "Asia/Kolkata")  # whole-hour offsets with DST, and a half-hour offset


def _bench_generators() -> Any:
    spec = importlib.util.spec_from_file_location("bench_generate", ROOT / "bench" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATE = _bench_generators()


def _shift_times(line: str, rnd: random.Random) -> str:
    """The same line at another moment: around DST changes, midnight, the epoch, or an impossible time."""
    when = rnd.choice((datetime(2026, 3, 29, 0, 30), datetime(2026, 10, 25, 0, 30), datetime(2026, 12, 31, 23, 0),
                       datetime(1970, 1, 1, 0, 0))) + timedelta(seconds=rnd.randrange(3 * 3600))
    text = line
    if line[:4].isdigit() and line[4:5] == "-":  # a log line's time prefix
        text = f"{when:%Y-%m-%d %H:%M:%S}" + line[19:]
        if rnd.random() < 0.1:
            text = text[:14] + rnd.choice(("60", "5x", "99", "0")) + text[16:]
    for key in ("done date:", "submit date:", '"RawDlrDoneDate":"'):
        if key in text:
            i = text.index(key) + len(key)
            digits = 12 if text[i + 10 : i + 12].isdigit() else 10
            text = text[:i] + f"{when:%y%m%d%H%M%S}"[:digits] + text[i + digits :]
    return text


_KANNEL = re.compile(r"(\S+ \S+) (.*?) \[SMSC:([^\]]*)\] \[SVC:([^\]]*)\] \[ACT:([^\]]*)\] \[BINF:([^\]]*)\] "
                     r"\[FID:([^\]]*)\](?: \[META:[^\]]*\])? \[from:([^\]]*)\] \[to:([^\]]*)\] "
                     r"\[flags:[^:]*:([^:]*):[^:]*:[^:]*:([^\]]*)\] \[msg:(\d*):(.*)\] \[udh:\d*:[^\]]*\]")


def _custom_layout(line: str, n: int) -> str | None:
    """A default-layout Kannel line in the kannel-custom preset's layout (%t|%T|%l|smsc=%i|…|msg=%b)."""
    m = _KANNEL.fullmatch(line)
    if m is None:
        return None
    when, event, smsc, svc, act, binf, fid, frm, to, coding, dlr, length, text = m.groups()
    return (f"{when} {when}|{1795742146 + n}|{event}|smsc={smsc}|svc={svc}|acct={act}|binfo={binf}|"
            f"id=00000000-0000-4000-8000-{n:012x}|"  # %I is Kannel's message UUID
            f"fid={fid}|from={frm}|to={to}|coding={coding}|mclass=-1|dlr={dlr}|dlr-url=|udh=0:|len={length}|msg={text}")


def lines(count: int = 300, seed: int = 7) -> Iterator[str]:
    """Generated lines of every generator (Kannel's also in the custom layout), the shipped samples, then each
    again cut, shifted or corrupted."""
    rnd = random.Random(seed)
    base = [line for gen in GENERATE.GENERATORS.values() for line in gen(count)]
    base += [c for n, line in enumerate(base) if (c := _custom_layout(line, n)) is not None]
    base += [line for p in sorted(SAMPLES.iterdir()) for line in p.read_text(encoding="utf-8").splitlines()]
    yield from base
    for line in base:
        roll = rnd.random()
        if roll < 0.4:
            yield _shift_times(line, rnd)
        elif roll < 0.7:
            i = rnd.randrange(len(line) + 1)
            j = rnd.randrange(i, len(line) + 1)
            yield line[:i] + rnd.choice(("", "0", '"', ":", "]", "null", "é", "\x00", '"provider":"x",', " ", "-",
                                         "(0)", "+", "٣")) + line[j:]
        elif roll < 0.85:  # a JSON field of another type: a number, a list, a boolean
            yield re.sub(r'":"[^"]*"', rnd.choice(('":12', '":[]', '":true', '":["x"]')), line,
                         count=rnd.randrange(1, 4))
        else:
            yield line.replace('"twilio"', '"Twilio"').replace("+00:00", "").replace('"segment_count":1', '"x":1')


def _config(tmp_path: Path, fmt: str, zone: str, paths: list[str] | None = None) -> Path:
    cfg = tmp_path / f"{fmt}.yaml"
    cfg.write_text(f"state_dir: {tmp_path / 'state'}\nsources:\n  - name: s\n    format: {fmt}\n"
                   f"    paths: {orjson.dumps(paths or ['x']).decode()}\n    start_at: beginning\n"
                   f"    default_country: GB\n    timezone: {zone}\n    receipt_timezone: {zone}\n")
    return cfg


@contextlib.contextmanager
def general_paths(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every shortcut off, for processors built and run inside: mappings and checks take the general paths."""
    with monkeypatch.context() as m:
        mapping._time_parser.cache_clear()
        m.setattr(times, "_SLICED", {})
        m.setattr(mapping, "_E164_AS_WRITTEN", "{core}")
        m.setattr(mapping, "_repeated", lambda specs: frozenset())  # every occurrence of a spec computed again
        for func in mapping.FUNCTIONS.values():  # guarded transforms called through their wrapper, not inline
            if hasattr(func, "inline"):
                m.delattr(func, "inline")
        m.setattr(ShapeCheck, "_learn", lambda self, shape: self.general)
        general = mapping._check
        m.setattr(mapping, "_check", lambda name, expr: None if (c := general(name, expr)) is None
                  else c.replace("v.__class__ is not str and ", ""))
        yield
    mapping._time_parser.cache_clear()


def outcomes(processor: Processor, texts: list[str]) -> list[tuple[Any, ...]]:
    return [(r.rule, r.records, r.reject) for r in map(processor.run, texts)]


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("fmt", preset_names())
def test_shortcuts_give_what_the_general_paths_give(tmp_path, monkeypatch, fmt, zone):
    cfg = _config(tmp_path, fmt, zone)
    texts = list(lines())
    with general_paths(monkeypatch):
        want = outcomes(Processor(load(cfg).sources[0]), texts)
    got = outcomes(Processor(load(cfg).sources[0]), texts)
    for text, w, g in zip(texts, want, got, strict=True):
        assert g == w, text
    assert sum(len(records) for _, records, _ in got) > 0  # the lines reach this format's mappings too


@pytest.mark.parametrize("fmt", ["volt-jsonl", "kannel", "twilio"])
def test_dry_run_job_prints_what_the_reference_maps(tmp_path, monkeypatch, fmt):
    """The whole job (files layer, chunk path, guard, sink) against the reference, one record at a time."""
    data = tmp_path / "input.log"
    data.write_text("".join(line + "\n" for line in lines(2000)), encoding="utf-8")
    cfg = _config(tmp_path, fmt, "Europe/Berlin", [str(data)])
    guard = FinalStatusMemory(load(cfg).final_status_memory)
    want: list[bytes] = []
    with general_paths(monkeypatch):
        general = Processor(load(cfg).sources[0])
        for line in data.read_text(encoding="utf-8").splitlines():
            for record in general.run(line).records:
                guard(record)
                want.append(orjson.dumps(record))
    proc = subprocess.run([sys.executable, "-m", "agent.cli", "run", "--config", str(cfg), "--dry-run", "--once"],
                          capture_output=True, cwd=ROOT, timeout=120, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = proc.stdout.splitlines()
    assert len(want) > 1000
    assert got == want


def test_a_date_with_a_final_newline_breaks_the_contract() -> None:
    record = {"id": "a", "provider": "twilio", "message_created_at": "2026-01-01T00:00Z\n"}
    assert problem(record) is not None and ShapeCheck()(record) is not None


_ODD_VALUES = st.one_of(
    st.sampled_from(["", " ", None, 0, -1, 2**63, 2**70, True, [], {}, ["x"], {"a": 1}, 1.5, "acme-sms", "Twilio",
                     "twilio", "sent", "2026-11-27T01:35:00+00:00", "2026-11-27T01:35:00Z", "2026-11-27T01:35:00",
                     "2026-11-27 01:35:00+00:00", "2026-11-27T01:35:00.123456789+0530", "2026-11-27T01:35Z\n",
                     "2026-13-45T99:99:99+00:00", "٢٠٢٦-11-27T01:35:00Z"]),
    st.text(max_size=12), st.integers(-5, 5))


@settings(max_examples=300, deadline=None)
@given(records=st.lists(st.dictionaries(st.sampled_from(sorted(ALL_FIELDS | {"extra"})), _ODD_VALUES, max_size=8)
                        .map(lambda d: {"id": "x", "provider": "twilio", **d}), min_size=1, max_size=6),
       body_dropped=st.booleans())
def test_a_shape_check_says_what_problem_says_about_any_record(records, body_dropped) -> None:
    """The generated check per shape against the general one, on records whose fields are often wrong; each shape
    is checked more than once (learnt, then reused)."""
    unchecked = frozenset(("body",)) if body_dropped else frozenset()
    check = ShapeCheck(unchecked)
    for record in records * 2:
        general = problem({k: v for k, v in record.items() if k not in unchecked})
        assert check(dict(record)) == general, record
