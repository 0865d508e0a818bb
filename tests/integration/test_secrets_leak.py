"""The token never leaks: run the agent through every path that prints, and look for the token everywhere.

Paths: accepted records, auth failures, connection errors, a proxy that echoes the Authorization
header into its error answer (dead letter and log excerpt), dry-run, ping (each verdict), validate,
bad configs and malformed tokens. Places: stdout, stderr, the dead-letter file, the checkpoint file,
the metrics text.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.conftest import ROOT, TOKEN, StandInProcess, free_port, wait_for
from tests.integration.test_sender import Run, _record

BAD = "leakcanary-Q7w3Z9xv"  # a token the stand-in refuses
NUMERIC = "918273645546372819"  # a token YAML reads as a number, so the config check trips on it
SHORT = "Zq7#x9W"  # one character short of a token: refused, and never echoed

ECHO_SERVER = """
import sys, http.server as h
class H(h.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get('Content-Length') or 0))
        body = ('.' * int(sys.argv[2]) + 'refused; you sent ' + self.headers.get('Authorization', '')).encode()
        self.send_response(400)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
s = h.HTTPServer(('127.0.0.1', int(sys.argv[1])), H)
print('up', flush=True)
s.serve_forever()
"""


# The excerpt kept of an answer is 200 characters: with this much in front, the echoed token straddles the cut.
STRADDLE = 200 - len("refused; you sent Bearer ") - len(TOKEN) // 2


@pytest.fixture
def echo_urls() -> Iterator[tuple[str, str]]:
    """Hostile upstreams: they answer 400 with the request's Authorization header in the body, at its start
    and across the excerpt's cut."""
    procs, urls = [], []
    try:
        for pad in (0, STRADDLE):
            port = free_port()
            procs.append(subprocess.Popen([sys.executable, "-c", ECHO_SERVER, str(port), str(pad)],
                                          stdout=subprocess.PIPE, text=True))
            assert procs[-1].stdout is not None and procs[-1].stdout.readline().strip() == "up"
            urls.append(f"http://127.0.0.1:{port}/data/messages")
        yield urls[0], urls[1]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def _cli(*args: str, env: dict | None = None) -> str:
    full_env = {"PATH": "/usr/bin:/bin", "VOLT_TOKEN": TOKEN, **(env or {})}
    res = subprocess.run([sys.executable, "-m", "agent.cli", *args], capture_output=True, text=True, cwd=ROOT,
                         timeout=60, env=full_env)
    return f"exit={res.returncode}\n{res.stdout}\n{res.stderr}"


def _finish(run: Run) -> str:
    """Everything a finished agent run left behind: its output and the files it wrote."""
    metrics = orjson.dumps(run.metrics()).decode()
    code = run.agent.stop()
    files = [p.read_text(errors="replace") for p in (run.dead, run.state / "checkpoints.json") if p.exists()]
    out = run.agent.stdout_path.read_text(errors="replace")
    return "\n".join([f"exit={code}", run.agent.logs(), out, metrics, *files])


def test_the_token_appears_in_no_output_file_or_metric(tmp_path: Path, standin: StandInProcess,
                                                        echo_urls: tuple[str, str]):
    echo_url, straddle_url = echo_urls
    seen: dict[str, str] = {}
    records = [_record("leak-ok", 1), _record("leak-refused", 1), _record("leak-ok", 2)]

    # accepted, dead-lettered, retried after 503 and dropped connections, with the accepted token
    standin.faults({"reject_ids": ["leak-refused"], "status": 503, "count": 2, "drop": 1})
    run = Run(tmp_path / "good", standin, records, volt="  concurrency: 2\n")
    wait_for(lambda: len(standin.records()) >= 2 and run.dead.exists(), 30, what="records sent and dead-lettered")
    seen["good run"] = _finish(run)

    # a proxy echoing the Authorization header into its 400 answer: the excerpt is redacted
    run = Run(tmp_path / "echo", None, [_record("echoed", 1)], endpoint=echo_url)
    wait_for(lambda: run.dead.exists() and run.dead.read_text(), 30, what="the echoed answer dead-lettered")
    assert "refused; you sent Bearer ***" in run.dead.read_text()
    seen["echoing upstream"] = _finish(run)
    run = Run(tmp_path / "straddle", None, [_record("echoed", 1)], endpoint=straddle_url)
    wait_for(lambda: run.dead.exists() and run.dead.read_text(), 30, what="the echoed answer dead-lettered")
    seen["echo across the excerpt's cut"] = _finish(run)
    assert "you sent Bearer ***" in seen["echo across the excerpt's cut"]
    assert TOKEN[:6] not in seen["echo across the excerpt's cut"]  # not even the part before the cut

    # the token refused: auth failures logged, data held
    run = Run(tmp_path / "bad", standin, [_record("held", 1)], env={"VOLT_TOKEN": BAD})
    wait_for(lambda: "token_rejected" in run.agent.logs(), 20, what="the auth failure")
    seen["auth failures"] = _finish(run)

    # nobody listening: connection errors
    closed = f"http://127.0.0.1:{free_port()}/data/messages"
    run = Run(tmp_path / "closed", None, [_record("unsent", 1)], endpoint=closed)
    wait_for(lambda: "send_retry" in run.agent.logs(), 20, what="connection errors")
    seen["connection errors"] = _finish(run)

    # dry-run and validate with the token written in a config others can read
    inline = tmp_path / "inline"
    inline.mkdir()
    src = inline / "app.jsonl"
    src.write_bytes(orjson.dumps(_record("dry", 1)) + b"\n")
    cfg = inline / "c.yaml"
    cfg.write_text(f"volt:\n  endpoint: {standin.url}\n  allow_insecure_http: true\n  token: {BAD}\n"
                   f"state_dir: {inline / 'state'}\nsources:\n  - name: a\n    format: volt-jsonl\n"
                   f"    paths: [\"{src}\"]\n    start_at: beginning\n")
    cfg.chmod(0o644)
    seen["dry-run"] = _cli("run", "--config", str(cfg), "--dry-run", "--once", env={"VOLT_TOKEN": ""})
    assert '"id":"dry"' in seen["dry-run"]
    seen["validate"] = _cli("validate", "--config", str(cfg), env={"VOLT_TOKEN": ""})
    assert "token_in_config_readable_by_others" in seen["validate"]
    seen["ping rejected (inline)"] = _cli("ping", "--config", str(cfg), env={"VOLT_TOKEN": ""})
    assert seen["ping rejected (inline)"].startswith("exit=4")

    # ping: each verdict
    good_cfg, echo_cfg, closed_cfg = (str(tmp_path / d / "agent.yaml") for d in ("good", "echo", "closed"))
    for label, config, token, code in (("reachable", good_cfg, TOKEN, 0), ("rejected", good_cfg, BAD, 4),
                                       ("unreachable", closed_cfg, TOKEN, 3), ("echo", echo_cfg, TOKEN, 0)):
        seen[f"ping {label}"] = _cli("ping", "--config", config, env={"VOLT_TOKEN": token})
        assert seen[f"ping {label}"].startswith(f"exit={code}"), seen[f"ping {label}"]

    # bad configs and malformed tokens: the errors name the key, never the value
    numeric = inline / "numeric.yaml"
    numeric.write_text(cfg.read_text().replace(f"token: {BAD}", f"token: {NUMERIC}"))
    seen["numeric token"] = _cli("validate", "--config", str(numeric), env={"VOLT_TOKEN": ""})
    assert seen["numeric token"].startswith("exit=2") and "volt.token" in seen["numeric token"]
    unknown = inline / "unknown.yaml"
    unknown.write_text(cfg.read_text() + "bogus_key: 1\n")
    seen["unknown key"] = _cli("run", "--config", str(unknown), env={"VOLT_TOKEN": ""})
    assert seen["unknown key"].startswith("exit=2")
    seen["token with a space"] = _cli("ping", "--config", good_cfg, env={"VOLT_TOKEN": f"Bearer {BAD}"})
    assert seen["token with a space"].startswith("exit=2")
    seen["short token"] = _cli("run", "--config", good_cfg, env={"VOLT_TOKEN": SHORT})
    assert seen["short token"].startswith("exit=2") and "shorter than 8" in seen["short token"]

    for where, text in seen.items():
        for secret in (TOKEN, BAD, NUMERIC, SHORT):
            assert secret not in text, f"{secret} leaked in {where}:\n{text}"
