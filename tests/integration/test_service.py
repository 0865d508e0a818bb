"""`volt-agent service install|uninstall` for real, under --root: the files and their modes, the config checked with the
agent's loader before anything changes, dry runs that change nothing, and uninstall taking back what install made."""

from __future__ import annotations

import grp
import os
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.conftest import FIXTURES, ROOT, TOKEN
from tests.integration.test_ops import PLACEHOLDER_BIN, _verify, needs_systemd_analyze


def _service(*args: str, env: dict | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent.cli", "service", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=60, input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **(env or {})})


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})


def _tree(root: Path) -> dict[str, int]:
    """Every path under root with its mode: what a step changed shows up here."""
    return {str(p.relative_to(root)): p.lstat().st_mode for p in sorted(root.rglob("*"))} if root.exists() else {}


@pytest.fixture
def setup(tmp_path: Path) -> dict[str, Path]:
    logs = tmp_path / "logs"
    logs.mkdir()
    shutil.copy(FIXTURES / "kannel" / "access.log", logs / "access.log")
    shutil.copy(FIXTURES / "jasmin" / "messages.log", logs / "messages.log")
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    return {"logs": logs, "token": token, "root": tmp_path / "root"}


def _install(s: dict[str, Path], name: str = "kannel", fmt: str = "kannel", log: str = "access.log",
             *extra: str) -> subprocess.CompletedProcess[str]:
    return _service("install", "--name", name, "--format", fmt, "--paths", str(s["logs"] / log),
                    "--token-file", str(s["token"]), "--root", str(s["root"]), *extra)


def test_install_writes_config_token_and_unit_that_run_the_sample(setup):
    done = _install(setup, "kannel", "kannel", "access.log", "--timezone", "Europe/Berlin", "--receipt-timezone", "UTC")
    assert done.returncode == 0, done.stderr
    etc = setup["root"] / "etc" / "volt-agent"
    unit = setup["root"] / "etc" / "systemd" / "system" / "volt-agent@.service"
    modes = {p: p.stat().st_mode & 0o7777 for p in (etc, etc / "kannel.yaml", etc / "kannel.token", unit)}
    assert modes == {etc: 0o755, etc / "kannel.yaml": 0o640, etc / "kannel.token": 0o600, unit: 0o644}
    assert (etc / "kannel.token").read_text() == TOKEN + "\n"
    assert TOKEN not in done.stdout + done.stderr
    (execstart,) = [line for line in unit.read_text().splitlines() if line.startswith("ExecStart=")]
    binary = execstart.removeprefix("ExecStart=").split(" ")[0]
    assert os.access(binary, os.X_OK) and binary != PLACEHOLDER_BIN, "the unit runs the agent that installed it"
    assert unit.read_text().replace(binary, PLACEHOLDER_BIN) == (ROOT / "systemd" / "volt-agent@.service").read_text()
    skipped = [line for line in done.stdout.splitlines() if "skipped under --root" in line]
    assert [line.split(": ", 1)[1] for line in skipped][-3:] == [
        "systemctl daemon-reload", "systemctl enable --now volt-agent@kannel.service",
        "wait until volt-agent@kannel.service is active (the agent's READY=1) and show its status"]

    config = str(etc / "kannel.yaml")
    assert _cli("validate", "--dry-run", "--config", config).returncode == 0
    ran = _cli("run", "--dry-run", "--once", "--config", config)
    assert ran.returncode == 0, ran.stderr
    assert len(ran.stdout.splitlines()) == 341  # every record of the capture (see test_kannel)
    records = [orjson.loads(line) for line in ran.stdout.splitlines()]
    receipt = ("1525260275", "delivered")
    delivered = [r["message_finalized_at"] for r in records if (r["id"], r.get("status")) == receipt]
    assert delivered == ["2026-11-27T01:35:00+00:00"]  # the receipt's done date, read as UTC (--receipt-timezone)


@needs_systemd_analyze
def test_the_installed_unit_passes_systemd_analyze_verify(setup):
    assert _install(setup).returncode == 0
    assert _verify(setup["root"] / "etc" / "systemd" / "system", "volt-agent@kannel.service") == (0, [])


def test_dry_run_prints_every_step_and_changes_nothing(setup):
    dry = _install(setup, "kannel", "kannel", "access.log", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert not setup["root"].exists()
    steps = [line for line in dry.stdout.splitlines() if line.startswith("[")]
    assert all(" would " in line or "skipped under --root" in line for line in steps), steps
    assert any("would write " in line and "kannel.yaml (0640" in line for line in steps)
    assert "      |   format: kannel" in dry.stdout.splitlines()  # the config it would write
    assert TOKEN not in dry.stdout + dry.stderr

    assert _install(setup).returncode == 0
    before = _tree(setup["root"])
    dry = _service("uninstall", "--name", "kannel", "--purge", "--dry-run", "--root", str(setup["root"]))
    assert dry.returncode == 0 and "would remove " in dry.stdout, dry.stderr
    assert _tree(setup["root"]) == before


def test_uninstall_removes_what_install_made_and_keeps_state_unless_purged(setup):
    root = setup["root"]
    assert _install(setup, "kannel", "kannel", "access.log").returncode == 0
    assert _install(setup, "jasmin", "jasmin", "messages.log").returncode == 0
    state = root / "var" / "lib" / "volt-agent" / "kannel"
    state.mkdir(parents=True)  # systemd creates it (StateDirectory=) and the agent fills it
    (state / "checkpoints.json").write_text("{}")
    etc, unit = root / "etc" / "volt-agent", root / "etc" / "systemd" / "system" / "volt-agent@.service"

    first = _service("uninstall", "--name", "kannel", "--root", str(root))
    assert first.returncode == 0, first.stderr
    assert sorted(p.name for p in etc.iterdir()) == ["jasmin.token", "jasmin.yaml"]
    assert unit.exists() and "the instances jasmin use it" in first.stdout
    assert (state / "checkpoints.json").exists() and "--purge removes it" in first.stdout

    assert _service("uninstall", "--name", "jasmin", "--root", str(root)).returncode == 0
    assert not etc.exists() and not unit.exists()
    purged = _service("uninstall", "--name", "kannel", "--purge", "--root", str(root))
    assert purged.returncode == 0, purged.stderr
    assert [p for p in root.rglob("*") if not p.is_dir()] == []


@pytest.mark.parametrize(("change", "expected"), [
    ({"--format": "kanel"}, "kannel.yaml: sources[kannel].format: a built-in format, one of: "),
    ({"--timezone": "Mars/Olympus"}, "kannel.yaml: sources[kannel].timezone: an IANA time zone"),
    ({"--paths": "var/log/kannel/access.log"}, "--paths: absolute paths"),
    ({"--paths": "/var/log/../../etc/*.log"}, "--paths: absolute paths without .."),
    ({"--paths": None}, "the following arguments are required: --paths"),
    ({"--name": "../etc"}, "--name: letters, digits"),
    ({"--token-file": None}, "no Volt token: give --token-file"),
    ({"--token-file": "/nonexistent/token"}, "cannot read the Volt token from --token-file /nonexistent/token"),
])
def test_bad_input_fails_before_any_change(setup, change, expected):
    args = {"--name": "kannel", "--format": "kannel", "--paths": str(setup["logs"] / "access.log"),
            "--token-file": str(setup["token"]), "--root": str(setup["root"]), **change}
    flat = [item for key, value in args.items() if value is not None for item in (key, value)]
    failed = _service("install", *flat)
    assert failed.returncode == 2 and expected in failed.stderr, failed.stderr
    assert "Traceback" not in failed.stderr
    assert not setup["root"].exists()


def test_the_token_comes_from_stdin_or_the_environment_and_a_reinstall_keeps_it(setup):
    root = setup["root"]
    base = ["install", "--name", "app", "--format", "volt-jsonl", "--paths", str(setup["logs"] / "app.jsonl"),
            "--root", str(root)]
    token = root / "etc" / "volt-agent" / "app.token"
    piped = _service(*base, "--token-file", "-", stdin="from-stdin-7\n")
    assert piped.returncode == 0, piped.stderr
    assert token.read_text() == "from-stdin-7\n" and "from-stdin-7" not in piped.stdout + piped.stderr
    kept = _service(*base)
    assert kept.returncode == 0 and "keeping the token" in kept.stdout and token.read_text() == "from-stdin-7\n"
    from_env = _service(*base, env={"VOLT_TOKEN": "from-env-8"})
    assert from_env.returncode == 0 and "from $VOLT_TOKEN" in from_env.stdout
    assert token.read_text() == "from-env-8\n" and token.stat().st_mode & 0o777 == 0o600


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the log directory another group")
def test_logs_readable_through_their_group_get_a_drop_in_and_keep_their_permissions(setup):
    root = setup["root"]
    logs = root / "var" / "log" / "gateway"
    logs.mkdir(parents=True)
    (logs / "access.log").write_text("")
    group = grp.getgrgid(65534).gr_name  # nogroup: any group but root's and adm
    for path, mode in ((logs, 0o750), (logs / "access.log", 0o640)):
        os.chown(path, 0, 65534)
        path.chmod(mode)
    before = _tree(logs)
    done = _service("install", "--name", "gw", "--format", "kannel", "--paths", "/var/log/gateway/access.log",
                    "--token-file", str(setup["token"]), "--root", str(root))
    assert done.returncode == 0, done.stderr
    dropin = root / "etc" / "systemd" / "system" / "volt-agent@gw.service.d" / "log-groups.conf"
    assert f"[Service]\nSupplementaryGroups={group}\n" in dropin.read_text()
    assert _tree(logs) == before and logs.stat().st_gid == 65534

    private = root / "var" / "log" / "private"
    private.mkdir(mode=0o700)  # root's group: an ACL (or chgrp) for group volt-agent, skipped under --root
    other = _service("install", "--name", "pv", "--format", "kannel", "--paths", "/var/log/private/*.log",
                     "--token-file", str(setup["token"]), "--root", str(root))
    assert other.returncode == 0, other.stderr
    (line,) = [line for line in other.stdout.splitlines() if f"read access to {private}" in line]
    assert "skipped under --root" in line and ("setfacl" in line or "chgrp volt-agent" in line)
    assert private.stat().st_mode & 0o777 == 0o700


def test_a_directory_other_programs_write_to_gets_no_acl_or_chgrp(setup):
    root = setup["root"]
    (root / "var" / "log" / "gateway").mkdir(parents=True)
    (root / "var" / "log" / "gateway-1.log").write_text("")
    (root / "var" / "log" / "gateway" / "access.log").write_text("")
    done = _service("install", "--name", "gw", "--format", "kannel", "--dry-run", "--root", str(root),
                    "--paths", "/var/log/gateway-*.log", "/var/log/gateway/*.log", "--token-file", str(setup["token"]))
    assert done.returncode == 0, done.stderr
    shared = [line for line in done.stdout.splitlines() if f" {root}/var/log " in line]
    assert len(shared) == 1 and "note:" in shared[0] and "left alone" in shared[0], done.stdout
    own = [line for line in done.stdout.splitlines() if f"read access to {root}/var/log/gateway:" in line]
    assert len(own) == 1 and ("setfacl" in own[0] or "chgrp" in own[0]), done.stdout
