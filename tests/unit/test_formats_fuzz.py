"""Every built-in format, and each example written without one (CSV, logfmt), takes any line without crashing and
emits only records that fit the contract."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.config import load
from agent.formats.source import Processor, preset_names
from agent.record import problem

SAMPLES = Path(__file__).resolve().parents[2] / "config" / "samples"
EXAMPLES = ("smsc-cdr", "app-logfmt")  # config/<name>.yaml: a parser and rules of their own, no built-in format


def processor(tmp_path: Path, fmt: str) -> Processor:
    if fmt in EXAMPLES:
        return Processor(load(SAMPLES.parent / f"{fmt}.yaml").sources[0])
    cfg = tmp_path / f"{fmt}.yaml"
    cfg.write_text(f"sources:\n  - name: s\n    format: {fmt}\n    paths: [x]\n    default_country: GB\n")
    return Processor(load(cfg).sources[0])


SAMPLE_LINES = [line for p in sorted(SAMPLES.iterdir()) for line in p.read_text(encoding="utf-8").splitlines()]


def mutate(line: str, data: st.DataObject) -> str:
    """Cut, splice or corrupt a real line: the inputs closest to what breaks parsers."""
    i = data.draw(st.integers(0, len(line)))
    j = data.draw(st.integers(i, len(line)))
    return line[:i] + data.draw(st.text(max_size=20)) + line[j:]


@pytest.mark.parametrize("fmt", [*preset_names(), *EXAMPLES])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_line_is_mapped_or_refused_with_a_reason(tmp_path, fmt, data):
    proc = processor(tmp_path, fmt)
    line = data.draw(st.one_of(st.text(max_size=300), st.sampled_from(SAMPLE_LINES)))
    if data.draw(st.booleans()):
        line = mutate(line, data)
    result = proc.run(line)
    for record in result.records:
        assert problem(record) is None, (line, record)
        assert "" not in record.values() and None not in record.values(), (line, record)
    assert result.records or result.reject or result.skipped or result.rule
