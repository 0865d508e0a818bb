"""The shipped dashboard and alert rules use only metrics the agent exports, with labels those metrics have.

The list comes from AgentMetrics' registry, so renaming a metric or dropping a label breaks this test rather
than an operator's dashboard. The rules' behaviour is tested by promtool (when installed) with the shipped
prometheus-alerts.test.yaml.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from agent.ops.metrics import AgentMetrics

MONITORING = Path(__file__).resolve().parents[2] / "config" / "monitoring"
DASHBOARD = MONITORING / "grafana-dashboard.json"
ALERTS = MONITORING / "prometheus-alerts.yaml"
TARGET_LABELS = {"job", "instance"}  # added by Prometheus to every scraped series

_METRIC = re.compile(r"\bvolt_agent_[a-zA-Z0-9_]+")
_SELECTOR = re.compile(r"\b(volt_agent_[a-zA-Z0-9_]+|up)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")
_LABEL_VALUES = re.compile(r"label_values\(\s*(volt_agent_[a-zA-Z0-9_]+)[^,]*,\s*([a-zA-Z_]+)\s*\)")
_LEGEND = re.compile(r"\{\{\s*([a-zA-Z_]+)\s*\}\}")


def exported() -> dict[str, set[str]]:
    """Every sample name the agent exports (histograms as _bucket/_sum/_count) and the labels it carries."""
    names: dict[str, set[str]] = {}
    for metric in AgentMetrics().registry:
        labels = set(metric.label_names)
        if metric.kind == "histogram":
            names.update({metric.name + "_bucket": labels | {"le"}, metric.name + "_sum": labels,
                          metric.name + "_count": labels})
        else:
            names[metric.name] = labels
    return names


def dashboard_queries() -> Iterator[tuple[str, str, str]]:
    """(where, expr, legend) for every query in the dashboard, templating variables included."""
    data = json.loads(DASHBOARD.read_text())
    for var in data["templating"]["list"]:
        if var["type"] == "query":
            yield f"variable {var['name']}", var["query"]["query"], ""
    for panel in data["panels"]:
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r}", target["expr"], target.get("legendFormat", "")


def alert_queries() -> Iterator[tuple[str, str, str]]:
    """(where, expr, annotations) for every rule."""
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            yield f"alert {rule['alert']}", rule["expr"], " ".join(rule.get("annotations", {}).values())


def problems(where: str, expr: str, templated: str, names: dict[str, set[str]]) -> list[str]:
    """What in one query names a metric the agent does not export, or a label the metrics in it do not have."""
    found: list[str] = []
    used = set(_METRIC.findall(expr))
    found += [f"{where}: {m} is not exported by the agent" for m in sorted(used - set(names))]
    in_query = TARGET_LABELS.union(*(names.get(m, set()) for m in used))
    for metric, matchers in _SELECTOR.findall(expr):
        allowed = TARGET_LABELS | names.get(metric, set())
        found += [f"{where}: {metric} has no label {label!r}" for label in _MATCHER.findall(matchers)
                  if label not in allowed]
    for group in _GROUPING.findall(expr):
        found += [f"{where}: grouping by {label!r}, which none of {sorted(used)} has"
                  for label in re.findall(r"[a-zA-Z_]+", group) if label not in in_query]
    for metric, label in _LABEL_VALUES.findall(expr):
        if label not in TARGET_LABELS | names.get(metric, set()):
            found.append(f"{where}: label_values of {metric} by {label!r}, which it does not have")
    templated_labels = _LEGEND.findall(templated) + re.findall(r"\$labels\.([a-zA-Z_]+)", templated)
    found += [f"{where}: shows label {label!r}, which the query does not return" for label in templated_labels
              if label not in in_query]
    return found


def test_every_metric_and_label_in_the_dashboard_and_rules_is_exported() -> None:
    names = exported()
    queries = [*dashboard_queries(), *alert_queries()]
    found = [p for where, expr, text in queries for p in problems(where, expr, text, names)]
    assert not found, "\n".join(found)
    used = {m for _, expr, _ in queries for m in _METRIC.findall(expr)}
    # what the issue asks the dashboard and rules to show (and proof the extraction finds names at all)
    assert {"volt_agent_lines_read_total", "volt_agent_records_sent_total", "volt_agent_records_dead_lettered_total",
            "volt_agent_records_retried_total", "volt_agent_queue_records", "volt_agent_file_bytes_behind",
            "volt_agent_request_duration_seconds_bucket", "volt_agent_in_flight_requests",
            "volt_agent_last_success_timestamp_seconds", "volt_agent_token_rejected_total",
            "volt_agent_concurrency_limit", "volt_agent_throttled_total"} <= used


def test_the_check_catches_a_wrong_name_and_a_wrong_label() -> None:
    names = exported()
    assert problems("x", "rate(volt_agent_lines_total[5m])", "", names) == [
        "x: volt_agent_lines_total is not exported by the agent"]
    assert problems("x", 'sum by (path) (volt_agent_records_sent_total{source="a"})', "{{code_class}}", names) == [
        "x: volt_agent_records_sent_total has no label 'source'",
        "x: grouping by 'path', which none of ['volt_agent_records_sent_total'] has",
        "x: shows label 'code_class', which the query does not return"]
    assert problems("x", "histogram_quantile(0.5, sum by (le) (rate(volt_agent_request_duration_seconds_bucket"
                         '{instance="a"}[5m])))', "", names) == []


def test_alert_rules_pass_promtool() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    for args in (["check", "rules", ALERTS.name], ["test", "rules", "prometheus-alerts.test.yaml"]):
        out = subprocess.run([promtool, *args], cwd=MONITORING, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
