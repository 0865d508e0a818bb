"""The per-file backlog gauge: one series per source and path, even while two files share a name."""

from __future__ import annotations

from agent.app import Agent
from agent.config import load


class _Server:
    def behind(self) -> list[tuple[str, int]]:
        # a rotated file still being read and its successor, both under the name the glob matches
        return [("/var/log/app.log", 300), ("/var/log/app.log", 20), ("/var/log/other.log", 5)]


def test_bytes_behind_has_one_series_per_path(tmp_path):
    path = tmp_path / "agent.yaml"
    path.write_text(f"state_dir: {tmp_path}\nsources:\n  - name: a\n    format: volt-jsonl\n    paths: [x]\n")
    agent = Agent(load(path), token=None, dry_run=True)
    agent.servers = {"a": (_Server(), None, None)}  # type: ignore[dict-item]
    assert sorted(agent._bytes_behind()) == [(("a", "/var/log/app.log"), 320), (("a", "/var/log/other.log"), 5)]
