"""`volt-agent service install|uninstall`: the README's "Install on a host" as one command, like `cloudflared service
install`.

Every change is a Step, built before anything runs: `--dry-run` prints the very list a real run executes, and the
config is checked with the agent's own loader (formats compiled, as `validate` does) before the first step.
`--root DIR` writes the files under DIR (tests, images); steps that touch this host's accounts or systemd are skipped
there, each with a line saying so. Where things go is what systemd/volt-agent@.service expects: the config in
/etc/volt-agent/NAME.yaml, the token in /etc/volt-agent/NAME.token (a systemd credential), state in
/var/lib/volt-agent/NAME (created by systemd, StateDirectory=).
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import grp
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from agent.config import ConfigError, load
from agent.files.discovery import expand, watch_roots
from agent.formats.source import check_compiles
from agent.secrets import Secret, TokenError, parse_token, read_token_file

USER = "volt-agent"
TEMPLATE = "volt-agent@.service"
UNIT_BIN = "/opt/volt-agent/bin/volt-agent"  # what the shipped unit runs; replaced by this agent's own path
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
READY_TIMEOUT = 90.0  # systemd's default TimeoutStartSec: the unit has failed by then
EXIT_FAILED, EXIT_INPUT = 1, 2
# Directories other programs write to: a recursive ACL or a chgrp on one of them is never what an operator wants
# (a glob like /var/log/kannel-*.log has /var/log as its directory).
SHARED_DIRS = frozenset({"/", "/etc", "/home", "/opt", "/run", "/srv", "/tmp", "/usr", "/var", "/var/lib",
                         "/var/log", "/var/tmp"})
USERADD = ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
           "--shell", "/usr/sbin/nologin", USER]


class ServiceError(Exception):
    """An input that cannot work, or a step that failed: the message says which and what to do."""


@dataclass(frozen=True)
class Step:
    """One change, or a note when `run` is None. `system` steps touch this host's accounts or systemd."""

    what: str
    run: Callable[[], None] | None = None
    system: bool = False
    detail: str = ""  # printed under the line (the config written); never a secret


@dataclass(frozen=True)
class Layout:
    """Where one instance's files go under `root`, as volt-agent@.service expects them."""

    root: Path
    name: str

    def at(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    @property
    def etc(self) -> Path:
        return self.at("/etc/volt-agent")

    @property
    def config(self) -> Path:
        return self.etc / f"{self.name}.yaml"

    @property
    def token(self) -> Path:
        return self.etc / f"{self.name}.token"

    @property
    def unit(self) -> Path:
        return self.at("/etc/systemd/system") / TEMPLATE

    @property
    def dropin(self) -> Path:
        return self.at("/etc/systemd/system") / f"{self.unit_name}.d"

    @property
    def state(self) -> Path:
        return self.at("/var/lib/volt-agent") / self.name

    @property
    def unit_name(self) -> str:
        return f"volt-agent@{self.name}.service"

    def other_instances(self) -> list[str]:
        """Instances besides this one that have a config: they still need the template unit."""
        return sorted(p.stem for p in self.etc.glob("*.yaml") if p.stem != self.name)


# --- what install writes -------------------------------------------------------------------------------------------

def instance_config(name: str, fmt: str, paths: Iterable[str], timezone: str | None,
                    receipt_timezone: str | None) -> str:
    source: dict[str, object] = {"name": name, "format": fmt, "paths": list(paths)}
    for key, value in (("timezone", timezone), ("receipt_timezone", receipt_timezone)):
        if value:
            source[key] = value
    body = yaml.safe_dump({"state_dir": f"/var/lib/volt-agent/{name}", "sources": [source]}, sort_keys=False)
    return (f"# volt-agent@{name}, written by `volt-agent service install`. After an edit: systemctl reload "
            f"volt-agent@{name}\n# (it validates first). The token is /etc/volt-agent/{name}.token; every key: the "
            "README's config reference.\n" + body)


def checked_config(text: str, target: Path) -> None:
    """Load `text` as the agent would, before anything changes; errors name `target`, where it is going."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / target.name
        path.write_text(text, encoding="utf-8")
        try:
            load(path, check_source=check_compiles)
        except ConfigError as exc:
            raise ServiceError("\n".join(f"config error: {target}: {e.key}: {e.expected}" for e in exc.errors)) \
                from None


def template_unit() -> Path:
    """The shipped template: in a checkout (or an editable install) and in an installed package's share/."""
    candidates = [Path(__file__).resolve().parents[2] / "systemd" / TEMPLATE,
                  Path(sys.prefix) / "share" / "volt-agent" / "systemd" / TEMPLATE]
    for path in candidates:
        if path.is_file():
            return path
    raise ServiceError(f"the unit {TEMPLATE} is in none of {', '.join(map(str, candidates))}: reinstall volt-agent")


def agent_binary() -> str:
    """This agent's own executable, so the unit runs the version that installed it."""
    beside = Path(sys.executable).parent / "volt-agent"  # a virtualenv's script, next to its python (not resolved)
    found = str(beside) if beside.is_file() and os.access(beside, os.X_OK) else shutil.which("volt-agent")
    if not found or not os.path.isabs(found) or re.search(r"\s", found):
        raise ServiceError("cannot find the volt-agent executable by an absolute path without spaces (install it "
                           "in /opt/volt-agent as the README shows)")
    return found


def read_token(token_file: str | None, layout: Layout, *, ask: bool) -> tuple[Secret | None, str]:
    """The token to store and where it came from: --token-file (- for standard input), $VOLT_TOKEN, the installed
    token (kept: None), or the terminal, never echoed (when `ask`; a dry run asks for nothing: None)."""
    if token_file == "-":
        return parse_token(sys.stdin.read(), "standard input"), "standard input"
    if token_file:
        return read_token_file(Path(token_file), f"--token-file {token_file}"), f"--token-file {token_file}"
    if os.environ.get("VOLT_TOKEN", "").strip():
        return parse_token(os.environ["VOLT_TOKEN"], "the environment variable VOLT_TOKEN"), "$VOLT_TOKEN"
    if layout.token.exists():
        return None, "kept"
    if not ask:
        return None, "asked"
    if not sys.stdin.isatty():
        raise TokenError("no Volt token: give --token-file FILE (- reads standard input), set $VOLT_TOKEN, or run "
                         "in a terminal to be asked for it")
    return parse_token(getpass.getpass("Volt token (not shown): "), "the terminal"), "the terminal"


def write_file(path: Path, data: bytes, mode: int, group: str | None) -> None:
    """Replace `path` at once: readers see the old file or the new one, never half of one, and never with wider
    permissions than `mode` (the token is 0600 from its first byte)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)
            if group is not None:
                os.fchown(fh.fileno(), 0, grp.getgrnam(group).gr_gid)
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def run_command(cmd: list[str]) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=READY_TIMEOUT + 30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServiceError(f"{' '.join(cmd)}: {exc}") from None
    if proc.returncode != 0:
        raise ServiceError(f"{' '.join(cmd)} failed (exit {proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


# --- log access --------------------------------------------------------------------------------------------------

def _group_name(gid: int) -> str | None:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return None


def _group_reads(directory: Path, files: list[Path]) -> str | None:
    """The group (not root's) through which the directory and its files are readable already, or None."""
    st = directory.stat()
    needed = stat.S_IRGRP | stat.S_IXGRP
    if st.st_gid == 0 or st.st_mode & needed != needed:
        return None
    for path in files:
        fst = path.stat()
        if fst.st_gid != st.st_gid or not fst.st_mode & stat.S_IRGRP:
            return None
    return _group_name(st.st_gid)


def _acl(directory: Path) -> None:
    run_command(["setfacl", "-R", "-m", f"g:{USER}:rX", str(directory)])
    run_command(["setfacl", "-R", "-d", "-m", f"g:{USER}:rX", str(directory)])


def _chgrp(directory: Path, files: list[Path]) -> None:
    gid = grp.getgrnam(USER).gr_gid
    os.chown(directory, -1, gid)
    directory.chmod(directory.stat().st_mode | stat.S_IRGRP | stat.S_IXGRP)
    for path in files:
        os.chown(path, -1, gid)
        path.chmod(path.stat().st_mode | stat.S_IRGRP)


def log_access_steps(layout: Layout, paths: Iterable[str]) -> list[Step]:
    """Read access through a group, the least invasive way that works: the group that reads the logs already (a
    drop-in adds it to the unit's SupplementaryGroups; nothing on the log directory changes); else an ACL for group
    volt-agent (the directory's owner, group and mode stay; a default ACL covers files created after rotation); else,
    without setfacl, the directory and its files get group volt-agent and g+r(x)."""
    rooted = [str(layout.at(p)) for p in paths]
    found = [Path(p) for p in expand(rooted, ())]
    steps: list[Step] = []
    groups: list[str] = []
    for root in sorted(watch_roots(rooted)):
        directory = Path(root)
        if not directory.is_dir():
            steps.append(Step(f"note: {directory} does not exist yet; once the gateway has created it, give group "
                              f"{USER} read access to it (or run this command again)"))
            continue
        files = [f for f in found if directory in f.parents]
        group = _group_reads(directory, files)
        if group == "adm":
            steps.append(Step(f"note: {directory} is readable through group adm, which the unit's "
                              "SupplementaryGroups= has already"))
        elif group is not None:
            groups.append(group)
        elif str(Path("/", os.path.relpath(directory, layout.root))) in SHARED_DIRS:
            steps.append(Step(f"note: {directory} holds other programs' files: its group and ACL are left alone "
                              f"(a recursive ACL or chgrp there would open every log to {USER}, or lock out the "
                              f"program that writes them); give group {USER} read access to the gateway's files "
                              f"only (setfacl -m g:{USER}:r FILE, and in logrotate `create 0640 <owner> {USER}`), "
                              "or let the gateway log into a directory of its own"))
        elif shutil.which("setfacl"):
            steps.append(Step(f"give group {USER} read access to {directory} and its files by an ACL, now and for "
                              f"files created later: setfacl -R -m g:{USER}:rX and -d -m g:{USER}:rX "
                              "(owner, group and mode stay as they are)",
                              lambda d=directory: _acl(d), system=True))
        else:
            steps.append(Step(f"give group {USER} read access to {directory}: chgrp {USER} and chmod g+rx on it, "
                              f"g+r on its {len(files)} files (setfacl is not installed: `apt-get install acl` "
                              "would leave their group alone); files the gateway creates later need that group "
                              f"too, e.g. logrotate `create 0640 <owner> {USER}`",
                              lambda d=directory, f=files: _chgrp(d, f), system=True))
    if groups:
        names = " ".join(dict.fromkeys(groups))
        text = (f"# Written by `volt-agent service install`: the logs of {layout.name} are readable through these "
                f"groups.\n[Service]\nSupplementaryGroups={names}\n")
        target = layout.dropin / "log-groups.conf"
        steps.append(Step(f"write {target} (0644): SupplementaryGroups={names}, the group(s) that read the logs "
                          "already; nothing on the log directories changes",
                          lambda: write_file(target, text.encode(), 0o644, None)))
    return steps


# --- systemd -----------------------------------------------------------------------------------------------------

def _show(unit: str) -> dict[str, str]:
    out = run_command(["systemctl", "show", "-p", "ActiveState,SubState,Result,StatusText", unit])
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def _is_active(unit: str) -> bool:
    if not Path("/run/systemd/system").is_dir():  # sd_booted(3): systemd is not running here
        return False
    return subprocess.run(["systemctl", "is-active", "--quiet", unit], capture_output=True, check=False,
                          timeout=30).returncode == 0


def _status(unit: str, lines: int) -> str:
    return subprocess.run(["systemctl", "status", "--no-pager", f"--lines={lines}", unit], capture_output=True,
                          text=True, check=False, timeout=30).stdout.rstrip()


def wait_ready(unit: str, timeout: float = READY_TIMEOUT) -> None:
    """Until the agent has said READY=1 (Type=notify: the unit is `active` only then), then show the proof."""
    deadline = time.monotonic() + timeout
    state = _show(unit)
    while state.get("ActiveState") != "active":
        if state.get("ActiveState") == "failed" or time.monotonic() > deadline:
            print(_status(unit, 20))
            raise ServiceError(f"{unit} did not become ready ({state.get('ActiveState')}/{state.get('SubState')}, "
                               f"result {state.get('Result')}): see journalctl -u {unit} -n 50 --no-pager")
        time.sleep(0.5)
        state = _show(unit)
    print(_status(unit, 5))
    print(f"{unit} is ready: {state.get('StatusText') or 'active'}")
    print(f"follow its log: journalctl -u {unit} -f")


def _systemctl(*args: str, unit: str | None = None) -> Step:
    """A systemctl command; one that starts `unit` shows its status and where the reason is when it fails."""
    cmd = ["systemctl", *args, *([unit] if unit else [])]

    def run() -> None:
        try:
            print(run_command(cmd), end="")
        except ServiceError as exc:
            if unit is None:
                raise
            print(_status(unit, 20))
            raise ServiceError(f"{exc}; the reason is in: journalctl -u {unit} -n 50 --no-pager") from None

    return Step(" ".join(cmd), run, system=True)


# --- the two commands --------------------------------------------------------------------------------------------

def install_steps(args: argparse.Namespace, layout: Layout) -> list[Step]:
    """Everything is checked here, before any step runs: name, paths, config, unit, executable, token."""
    rooted = layout.root != Path("/")
    bad = [p for p in args.paths if not os.path.isabs(p) or ".." in Path(p).parts]
    if bad:  # a .. would also lead out of --root
        raise ServiceError(f"--paths: absolute paths without .. (the service runs in /), got {', '.join(bad)}")
    text = instance_config(layout.name, args.format, args.paths, args.timezone, args.receipt_timezone)
    checked_config(text, layout.config)
    binary = agent_binary()
    unit = template_unit().read_text(encoding="utf-8").replace(UNIT_BIN, binary)
    token, source = read_token(args.token_file, layout, ask=not args.dry_run)
    group = None if rooted else USER  # under --root the accounts are not this host's
    steps: list[Step] = []
    if binary != UNIT_BIN and binary.startswith(("/home/", "/root/")):
        steps.append(Step(f"warning: the unit runs {binary}, but ProtectHome=yes hides /home and /root from it: "
                          "install the agent under /opt/volt-agent (see the README)"))
    try:
        pwd.getpwnam(USER)
        steps.append(Step(f"note: the system user {USER} exists"))
    except KeyError:
        steps.append(Step(f"create the system user {USER}: {' '.join(USERADD)}", lambda: print(
            run_command(USERADD), end=""), system=True))
    steps.append(Step(f"create {layout.etc} (0755)", lambda: layout.etc.mkdir(0o755, parents=True, exist_ok=True)))
    steps.append(Step(f"write {layout.config} (0640, group {group or 'unchanged under --root'}), checked with the "
                      "agent's config loader", lambda: write_file(layout.config, text.encode(), 0o640, group),
                      detail=text))
    if token is not None:
        steps.append(Step(f"store the token from {source} in {layout.token} (0600, root only; passed to the agent "
                          "as the systemd credential volt-token)",
                          lambda: write_file(layout.token, token.reveal().encode() + b"\n", 0o600, None)))
    elif source == "kept":
        steps.append(Step(f"note: keeping the token in {layout.token} (give --token-file or $VOLT_TOKEN to replace "
                          "it)"))
    else:
        steps.append(Step(f"note: no token given: a real run asks for it on the terminal (not shown) and stores it "
                          f"in {layout.token} (0600); or give --token-file or $VOLT_TOKEN"))
    steps.append(Step(f"install the template unit {layout.unit} (0644), running {binary}",
                      lambda: write_file(layout.unit, unit.encode(), 0o644, None)))
    steps.extend(log_access_steps(layout, args.paths))
    steps.append(_systemctl("daemon-reload"))
    steps.append(_systemctl("enable", "--now", unit=layout.unit_name))
    if not rooted and _is_active(layout.unit_name):
        steps.append(_systemctl("restart", unit=layout.unit_name))  # it ran already: load the new config
    steps.append(Step(f"wait until {layout.unit_name} is active (the agent's READY=1) and show its status",
                      lambda: wait_ready(layout.unit_name), system=True))
    return steps


def _remove(path: Path) -> Callable[[], None]:
    def run() -> None:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    return run


def uninstall_steps(args: argparse.Namespace, layout: Layout) -> list[Step]:
    steps = [_systemctl("disable", "--now", layout.unit_name) if layout.unit.exists() else
             Step(f"note: {layout.unit} is not installed: nothing to stop")]
    ours = [layout.dropin, layout.config, layout.token]
    for path in ours:
        if path.exists():
            steps.append(Step(f"remove {path}", _remove(path)))
    others = layout.other_instances()
    if others:
        steps.append(Step(f"note: keeping {layout.unit}: the instances {', '.join(others)} use it"))
    elif layout.unit.exists():
        steps.append(Step(f"remove {layout.unit}", _remove(layout.unit)))
    if layout.etc.is_dir() and all(p in ours for p in layout.etc.iterdir()):
        steps.append(Step(f"remove the empty {layout.etc}", layout.etc.rmdir))
    steps.append(_systemctl("daemon-reload"))
    if args.purge and layout.state.exists():
        steps.append(Step(f"remove the state {layout.state} (checkpoints, dead letters)", _remove(layout.state)))
    elif layout.state.exists():
        steps.append(Step(f"note: keeping the state {layout.state} (checkpoints, dead letters); --purge removes it"))
    steps.append(Step(f"note: the user {USER} and any group access to the log directories stay (userdel {USER}, "
                      f"setfacl -R -x g:{USER} DIR remove them)"))
    return steps


def execute(steps: list[Step], *, dry_run: bool, rooted: bool) -> None:
    number = 0
    for step in steps:
        if step.run is None:
            print(f"      {step.what}")
            continue
        number += 1
        if step.system and rooted:
            print(f"[{number}] skipped under --root (this host's accounts and systemd are not touched): {step.what}")
            continue
        print(f"[{number}] {'would ' if dry_run else ''}{step.what}", flush=True)
        if step.detail:
            print("".join(f"      | {line}\n" for line in step.detail.splitlines()), end="")
        if not dry_run:
            step.run()


def add_parser(sub: argparse._SubParsersAction) -> None:
    service = sub.add_parser("service", help="install or remove volt-agent@NAME as a systemd service")
    actions = service.add_subparsers(dest="action", required=True)
    install = actions.add_parser("install", help="user, config, token, unit, log access, enable --now, wait")
    install.add_argument("--format", required=True, help="a built-in format (see `volt-agent formats`)")
    install.add_argument("--paths", required=True, nargs="+", help="absolute paths or globs of the logs")
    install.add_argument("--timezone", help="the IANA zone the logs' times are written in (default UTC)")
    install.add_argument("--receipt-timezone", help="the zone of delivery receipts' dates, the SMSC's clock (default: "
                                                    "--timezone)")
    install.add_argument("--token-file", help="read the Volt token from this file (- for standard input); default "
                                              "$VOLT_TOKEN, else the installed token, else asked for")
    uninstall = actions.add_parser("uninstall", help="stop, disable, remove config, token and unit (state kept)")
    uninstall.add_argument("--purge", action="store_true", help="remove the state (checkpoints, dead letters) too")
    for p in (install, uninstall):
        p.add_argument("--name", required=True, help="the instance: volt-agent@NAME, /etc/volt-agent/NAME.yaml")
        p.add_argument("--dry-run", action="store_true", help="print every step, change nothing")
        p.add_argument("--root", default="/", help="install under this directory (systemctl and useradd skipped)")


def main(args: argparse.Namespace) -> int:
    if not NAME.fullmatch(args.name):
        print(f"volt-agent: --name: letters, digits, _ . - (a systemd instance name), got {args.name!r}",
              file=sys.stderr)
        return EXIT_INPUT
    layout = Layout(Path(args.root).absolute(), args.name)
    rooted = layout.root != Path("/")
    if not args.dry_run and not rooted:
        if os.geteuid() != 0:
            print("volt-agent: service: changes /etc and systemd: run it as root (sudo), or with --dry-run",
                  file=sys.stderr)
            return EXIT_FAILED
        if not shutil.which("systemctl"):
            print("volt-agent: service: systemctl not found (no systemd here?); --root DIR writes the files only",
                  file=sys.stderr)
            return EXIT_FAILED
    try:
        steps = (install_steps if args.action == "install" else uninstall_steps)(args, layout)
    except (ServiceError, TokenError) as exc:
        print(f"volt-agent: {exc}".replace("\n", "\nvolt-agent: "), file=sys.stderr)
        print("volt-agent: nothing was changed", file=sys.stderr)
        return EXIT_INPUT
    print(f"volt-agent service {args.action} {args.name}{' (dry run: nothing is changed)' if args.dry_run else ''}"
          f"{f' under {layout.root}' if rooted else ''}")
    try:
        execute(steps, dry_run=args.dry_run, rooted=rooted)
    except (ServiceError, OSError) as exc:
        print(f"volt-agent: the step above failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return 0
