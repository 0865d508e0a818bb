"""volt-agent command line: run, parse, validate, state, ping, top, formats, service, standin.

Exit codes: 0 ok, 1 runtime failure, 2 config error, 3 Volt unreachable, 4 token rejected.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import gc
import os
import socket
import sys
from pathlib import Path

import orjson
import yaml

from agent import __version__
from agent.config import Config, ConfigError, load
from agent.files.checkpoints import CheckpointStore, StateDirError
from agent.files.discovery import expand, watch_roots
from agent.files.fingerprint import file_key
from agent.files.statelock import StateDirLocked, state_lock
from agent.formats.source import PRESET_DIR, Processor, check_compiles, preset_names
from agent.ops import logs, service
from agent.secrets import Secret, TokenError, load_token
from agent.status_memory import FinalStatusMemory

log = logs.get("volt_agent")
EXIT_CONFIG, EXIT_UNREACHABLE, EXIT_TOKEN = 2, 3, 4


def _fail(message: str, code: int) -> int:
    print(f"volt-agent: {message}", file=sys.stderr)
    return code


def _config_failed(exc: ConfigError) -> int:
    """One line per problem, each naming the file, the key and what was expected."""
    for error in exc.errors:
        print(f"volt-agent: config error: {error}", file=sys.stderr)
    return EXIT_CONFIG


def _token(cfg: Config) -> Secret:
    return load_token(env_name=cfg.volt.token_env, token_file=cfg.volt.token_file, inline=cfg.volt.token_inline,
                      config_path=cfg.file, warn=log.warning)


GC_YOUNG_THRESHOLD = 10_000  # new objects between young garbage collections (CPython's default: 700)


def cmd_run(args: argparse.Namespace, cfg: Config) -> int:
    """The state dir is locked before the token is read or a file opened. A dry run keeps no state: it takes
    no lock, so a config can be tried beside the running service.

    Young garbage collections are made rarer for the agent's process: a request in flight holds a few dozen
    objects for its whole round trip, so with hundreds in flight the default (every 700 new objects) kept
    traversing and promoting live requests. At 512 in flight 100 ms away that was about a fifth of the agent's CPU,
    and its rate to Volt rose from about 3,000 to 3,800 records/s without it (bench/run.py --only remote). Only
    garbage in reference cycles waits longer; records are freed at once.
    """
    from agent.app import Agent

    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    try:
        with contextlib.nullcontext() if args.dry_run else state_lock(cfg.state_dir):
            token = None if args.dry_run else _token(cfg)
            return asyncio.run(Agent(cfg, token=token, dry_run=args.dry_run, once=args.once).run())
    except StateDirLocked as exc:
        return _fail(str(exc), EXIT_CONFIG)
    except StateDirError as exc:
        return _fail(str(exc), 1)
    except KeyboardInterrupt:
        return 130


def cmd_parse(args: argparse.Namespace, cfg: Config) -> int:
    sources = [s for s in cfg.sources if args.source in (None, s.name)]
    if not sources:
        return _fail(f"{cfg.file}: sources: no source named {args.source!r}; "
                     f"known: {', '.join(s.name for s in cfg.sources)}", EXIT_CONFIG)
    scfg = sources[0]
    processor = Processor(scfg)
    if args.explain:  # how the lines are read (a kannel access_log_format shows as the regex it compiles to)
        for text in processor.explain():
            print(f"source {scfg.name}: {text}", file=sys.stderr)
    guard = FinalStatusMemory(cfg.final_status_memory)
    inputs = args.files or expand(scfg.paths, scfg.exclude)
    out = sys.stdout.buffer
    counts = {"lines": 0, "records": 0, "rejected": 0, "skipped": 0}
    for name in inputs:
        try:
            stream = sys.stdin.buffer if name == "-" else open(name, "rb")  # noqa: SIM115
        except OSError as exc:
            processor.close()
            return _fail(f"cannot read {name}: {exc.strerror}", EXIT_CONFIG)
        with stream:
            for number, raw in enumerate(stream, 1):
                text = raw.rstrip(b"\r\n").decode(scfg.encoding, "replace")
                if not text and not raw.strip():
                    continue
                counts["lines"] += 1
                result = processor.run(text)
                for record in result.records:
                    guard(record)
                counts["records"] += len(result.records)
                if result.reject:
                    counts["rejected"] += 1
                elif not result.records:
                    counts["skipped"] += 1
                if args.explain:
                    where = f"{name}:{number}"
                    if result.reject:
                        out.write(f"{where} rejected: {result.reject}\n".encode())
                    if not result.records and not result.reject:
                        out.write(f"{where} skipped by rule {result.rule}\n".encode())
                    for record in result.records:
                        out.write(f"{where} rule={result.rule} ".encode() + orjson.dumps(record) + b"\n")
                else:
                    for record in result.records:
                        out.write(orjson.dumps(record) + b"\n")
    processor.close()
    print(" ".join(f"{k}={v}" for k, v in counts.items()), file=sys.stderr)
    return 0


def cmd_validate(args: argparse.Namespace, cfg: Config) -> int:
    problems: list[str] = []
    for scfg in cfg.sources:
        for root in watch_roots(scfg.paths):
            if os.path.isdir(root) and not os.access(root, os.R_OK | os.X_OK):
                print(f"warning: source {scfg.name}: directory {root} cannot be listed by this user (it needs read "
                      "and execute permission); no file in it will be found", file=sys.stderr)
        matched = expand(scfg.paths, scfg.exclude)
        if not matched:
            print(f"warning: source {scfg.name}: no file matches {', '.join(scfg.paths)} yet", file=sys.stderr)
        unreadable = [path for path in matched if not os.access(path, os.R_OK)]
        for path in unreadable:  # the agent skips it (file_unreadable) and follows the others
            print(f"warning: source {scfg.name}: {path} is not readable by this user", file=sys.stderr)
        if matched and len(unreadable) == len(matched):
            problems.append(f"source {scfg.name}: none of its {len(matched)} files is readable by this user "
                            "(add the agent's user to the logs' group)")
    if not args.dry_run:
        problem = _state_dir_problem(cfg.state_dir)
        if problem:
            problems.append(problem)
        try:
            _token(cfg)
        except TokenError as exc:
            problems.append(str(exc))
    if cfg.metrics_listen:
        from agent.ops.http import parse_listen

        try:
            host, port = parse_listen(cfg.metrics_listen)
            with socket.create_server((host, port)):  # free now? (a second instance copying the config is not)
                pass
        except ValueError as exc:
            problems.append(f"{cfg.file}: metrics.listen: {exc}")
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:  # no such address here, or a port this user may not use
                problems.append(f"{cfg.file}: metrics.listen: cannot listen on {cfg.metrics_listen}: {exc.strerror}")
            else:  # maybe this very agent, running: a warning, not an error
                print(f"warning: {cfg.file}: metrics.listen: {cfg.metrics_listen} is in use now (the agent, if "
                      "running, holds it; a second instance needs its own port)", file=sys.stderr)
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    if problems:
        return EXIT_CONFIG
    print(f"{cfg.file}: ok ({len(cfg.sources)} sources)")
    return 0


def _state_dir_problem(state: Path) -> str | None:
    """What stops the agent from using `state` (it creates missing directories), or None."""
    try:
        probe = state
        while not probe.exists() and not probe.is_symlink():  # a dangling link is in the way, not missing
            probe = probe.parent
        if not probe.is_dir():
            return f"state_dir {state} cannot be created: {probe} is not a directory"
        if not os.access(probe, os.W_OK | os.X_OK):
            return f"state_dir {state} cannot be created or written by this user ({probe} is not writable)"
    except OSError as exc:
        return f"state_dir {state} cannot be checked: {exc.strerror}"
    return None


def cmd_state(args: argparse.Namespace, cfg: Config) -> int:
    store = CheckpointStore(cfg.state_dir, cfg.checkpoint_max_age)
    if not store.path.exists():
        print(f"no checkpoints yet in {store.path}")
        return 0
    try:
        store.load(readonly=True)
    except StateDirError as exc:
        return _fail(str(exc), 1)
    # A file renamed since the last checkpoint (rotated under a matching name) is found by its identity.
    current: dict[tuple[str, str], str] = {}
    for scfg in cfg.sources:
        for path in expand(scfg.paths, scfg.exclude):
            with contextlib.suppress(OSError):
                current.setdefault((scfg.name, file_key(os.stat(path))), path)
    rows = [("SOURCE", "FILE", "IDENTITY", "COMMITTED", "SIZE", "BEHIND")]
    for cp in sorted(store.entries.values(), key=lambda c: (c.source, c.path)):
        path = current.get((cp.source, cp.key), cp.path)
        size = behind = "gone"
        with contextlib.suppress(OSError):
            st = os.stat(path)
            if file_key(st) == cp.key:
                size, behind = str(st.st_size), str(max(0, st.st_size - cp.offset))
        rows.append((cp.source, path, cp.key, str(cp.offset), size, behind))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0


def cmd_ping(args: argparse.Namespace, cfg: Config) -> int:
    from agent.send.sender import Reach, ping

    verdict, status, meaning = asyncio.run(ping(cfg.volt, _token(cfg)))
    answered = f"HTTP {status}" if status is not None else "no HTTP answer"
    print(f"{verdict.value}: {cfg.volt.endpoint}: {answered}: {meaning}")
    return {Reach.REACHABLE: 0, Reach.TOKEN_REJECTED: EXIT_TOKEN, Reach.UNREACHABLE: EXIT_UNREACHABLE}[verdict]


def cmd_top(args: argparse.Namespace) -> int:
    """Find the agent (its control socket, then its metrics.listen address; or --url) and show it."""
    from agent.ops import top
    from agent.ops.control import socket_path
    from agent.ops.http import parse_listen
    from agent.ops.scrape import AgentUnreachable, Target

    if not 0 < args.interval <= 3600:
        return _fail(f"top: --interval {args.interval:g}: expected seconds between 0 and 3600", EXIT_CONFIG)
    if args.url:
        try:
            targets = [Target(url=args.url)]
        except ValueError as exc:
            return _fail(f"top: --url {exc}", EXIT_CONFIG)
    elif args.config or args.state_dir:
        try:
            cfg = load(args.config, state_dir_override=args.state_dir) if args.config else None
        except ConfigError as exc:
            return _config_failed(exc)
        targets = [Target(socket_path=socket_path(cfg.state_dir if cfg else Path(args.state_dir)))]
        if cfg and cfg.metrics_listen:
            host, port = parse_listen(cfg.metrics_listen)
            host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # listening everywhere: ask locally
            targets.append(Target(url=f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"))
    else:
        return _fail("top: where is the agent? give --config F (it looks in F's state_dir), --state-dir D, "
                     "or --url http://HOST:PORT (its metrics.listen)", EXIT_CONFIG)
    problems = []
    for target in targets:
        try:
            show = top.once if args.once else top.live
            return show(target, args.interval, sys.stdout)
        except AgentUnreachable as exc:
            problems.append(str(exc))
    return _fail("top: " + "; ".join(problems), 1)


def cmd_formats(args: argparse.Namespace) -> int:
    for name in preset_names():
        data = yaml.safe_load((PRESET_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
        print(f"{name:14} {data.get('description', '')}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="volt-agent", description="Ship SMS gateway logs to Volt Insights.")
    parser.add_argument("--version", action="version", version=f"volt-agent {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", "-c", required=True, help="YAML config file")
        p.add_argument("--state-dir", help="override state_dir (checkpoints, dead letters)")
        return p

    run = with_config(sub.add_parser("run", help="follow the sources and send records to Volt"))
    run.add_argument("--dry-run", action="store_true", help="print mapped payloads instead of sending")
    run.add_argument("--once", action="store_true", help="read what is in the files now, then exit")
    parse = with_config(sub.add_parser("parse", help="map lines once and print the payloads"))
    parse.add_argument("--source", help="which source's format to use (default: the first)")
    parse.add_argument("--explain", action="store_true", help="show the rule for each line and why lines fail")
    parse.add_argument("files", nargs="*", help="files to read, or - for stdin (default: the source's paths)")
    validate = with_config(sub.add_parser("validate", help="check the config, paths, state dir and token"))
    validate.add_argument("--dry-run", action="store_true", help="skip the token and state dir checks")
    with_config(sub.add_parser("state", help="show each tracked file and how far it is acknowledged"))
    with_config(sub.add_parser("ping", help="check that Volt is reachable and takes the token"))
    top = sub.add_parser("top", help="live view of a running agent (its control socket or metrics address)")
    top.add_argument("--config", "-c", help="the agent's config: top looks in its state_dir, then metrics.listen")
    top.add_argument("--state-dir", help="the agent's state dir (override the config's)")
    top.add_argument("--url", help="the agent's metrics.listen address, http://HOST:PORT")
    top.add_argument("--once", action="store_true", help="print one view (rates over --interval) and exit")
    top.add_argument("--interval", type=float, default=1.0, help="seconds between readings (default 1)")
    sub.add_parser("formats", help="list the built-in formats")
    service.add_parser(sub)
    sub.add_parser("standin", help="run a local Volt stand-in (for tests and trying configs)", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["standin"]:
        from agent.standin import main as standin_main

        return standin_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command == "formats":
        return cmd_formats(args)
    try:  # Ctrl-C is how an operator leaves top (or a token prompt): an exit, not a traceback
        if args.command == "top":
            return cmd_top(args)
        if args.command == "service":
            return service.main(args)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    try:
        # validate compiles each source's format in the same pass, so it lists those problems with the others
        cfg = load(args.config, state_dir_override=args.state_dir,
                   check_source=check_compiles if args.command == "validate" else None)
    except ConfigError as exc:
        return _config_failed(exc)
    logs.setup(cfg.log_format, cfg.log_level)
    handlers = {"run": cmd_run, "parse": cmd_parse, "validate": cmd_validate, "state": cmd_state,
                "ping": cmd_ping}
    try:
        return handlers[args.command](args, cfg)
    except ConfigError as exc:
        return _config_failed(exc)
    except TokenError as exc:
        return _fail(str(exc), EXIT_CONFIG)
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
