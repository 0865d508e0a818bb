"""Differential: the rule index picks, for every line, the rule that trying every rule in order picks."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from agent.formats.source import Processor, _Refined, preset_names
from tests.unit.test_fast_paths import lines
from tests.unit.test_formats_fuzz import processor


def _first(rules: Any, fields: Any) -> str | None:
    return next((r.name for r in rules if r.when is None or r.when(fields)), None)


def _picks(proc: Processor, line: str) -> list[tuple[str | None, str | None]]:
    """(indexed, in order) for each group whose regex matches the line, or each JSON event in it."""
    if proc.kind == "regex":
        matches = [(g, m) for g in proc.groups if (m := g.regex.search(line)) is not None]  # type: ignore[union-attr]
    else:
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            return []
        items = obj if proc.explode_root and isinstance(obj, list) else [obj]
        if proc.explode is not None:
            items = proc.explode(obj) if isinstance(obj, dict) else None
        matches = [(g, item) for item in items if isinstance(item, dict) for g in proc.groups] \
            if isinstance(items, list) else []
    return [(_first(g.candidates(f), f), _first(g.rules, f)) for g, f in matches]


@pytest.mark.parametrize("fmt", preset_names())
def test_the_index_picks_the_rule_the_order_picks(tmp_path, fmt):
    proc = processor(tmp_path, fmt)
    picked = 0
    for line in lines():
        for indexed, in_order in _picks(proc, line):
            assert indexed == in_order, line
            picked += in_order is not None
    assert picked > 0


def test_kannel_receipts_are_indexed_by_event_and_dlr_type(tmp_path):
    """A final receipt tries only the receipt rules, not the ACK and NACK ones before them."""
    group = processor(tmp_path, "kannel").groups[0]
    assert group.index is not None
    receipts = group.index["Receive DLR"]
    assert isinstance(receipts, _Refined)
    assert [r.name for r in receipts.others][:3] == ["receipt", "receipt", "receipt-without-id"]
    assert [r.name for r in receipts.index["16"]][:2] == ["receipt-nack-smsc", "receipt-nack"]
