"""Where the agent spends its time: py-spy samples of the parse + map job and of the send path.

Not part of `make bench`, and py-spy is not a project dependency; install it into the venv first:

    .venv/bin/pip install py-spy
    .venv/bin/python bench/profile.py                    parse + map of each format with a preset, 300k lines
    .venv/bin/python bench/profile.py kannel-hard --lines 1000000
    .venv/bin/python bench/profile.py --send             20,000 records to the stand-in at concurrency 16
                                                         (samples only the thread holding the GIL)

For each run it prints the top functions and source lines by own time (the frame on top of the stack when
sampled, so C calls such as orjson.loads or re.search count towards the Python line that made them) and the
top functions by inclusive time (any frame on the stack). The raw samples are kept in bench/out/profile-*.txt.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import generate
from run import OUT, PARSE_TARGETS, PARSE_VARIANTS, ROOT, Children, StandIn, agent_config, have_preset, source

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _short(frame: str) -> str:
    """`func (path:line)` -> `func (file)` with site-packages and the repo root cut off, lines merged."""
    m = _FRAME.match(frame)
    if m is None:
        return frame
    path = m.group("file").split("site-packages/")[-1].replace(str(ROOT) + "/", "")
    return f"{m.group('func')} ({path})"


def summarize(raw: Path, top: int) -> str:
    own: Counter[str] = Counter()
    own_lines: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        leaf = stack.rsplit(";", 1)[-1]
        frames = [_short(f) for f in stack.split(";")]
        total += count
        own[frames[-1]] += count
        own_lines[leaf.split("site-packages/")[-1].replace(str(ROOT) + "/", "")] += count
        for name in set(frames):
            inclusive[name] += count
    if not total:
        return f"{raw.name}: no samples"
    lines = [f"{raw.name}: {total} samples", f"  top {top} by own time:"]
    lines += [f"    {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    lines.append(f"  top {top} source lines by own time:")
    lines += [f"    {100 * n / total:5.1f}%  {name}" for name, n in own_lines.most_common(top)]
    lines.append(f"  top {top} by inclusive time (below the event loop):")
    skip = ("<module>", "_run_module_as_main", "_run_code", "main (agent/cli.py)", "cmd_run", "run (asyncio",
            "run_until_complete", "run_forever", "_run_once", "_run (asyncio", "Runner.run")
    inner = [(name, n) for name, n in inclusive.most_common() if not name.startswith(skip)]
    lines += [f"    {100 * n / total:5.1f}%  {name}" for name, n in inner[:top]]
    return "\n".join(lines)


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise SystemExit("py-spy not found: install it with `.venv/bin/pip install py-spy` (local use only)")
    return found


def record(children: Children, name: str, args: list[str], rate: int, *, gil: bool = False) -> Path:
    """py-spy over `python -m agent.cli ARGS`; with `gil`, only the thread holding the GIL is sampled."""
    raw = OUT / f"profile-{name}.txt"
    err = children.work / f"profile-{name}.err"
    cmd = [py_spy(), "record", "--format", "raw", "--rate", str(rate), "--output", str(raw),
           *(["--gil"] if gil else []), "--", sys.executable, "-m", "agent.cli", *args]
    with open(err, "wb") as fh:
        subprocess.run(cmd, cwd=ROOT, env=children.env, stdout=subprocess.DEVNULL, stderr=fh, check=True,
                       timeout=600)
    return raw


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("formats", nargs="*", help="inputs to profile, as in the bench (default: every one of "
                                                   f"{[k for v in PARSE_VARIANTS.values() for k in v]} with a preset)")
    parser.add_argument("--lines", type=int, default=300_000, help="lines per format (default 300000)")
    parser.add_argument("--rate", type=int, default=250, help="samples per second (default 250)")
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--send", action="store_true", help="profile sending to the stand-in instead")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--records", type=int, default=20_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="volt-profile-"))
    children = Children(work)
    try:
        if args.send:
            data = generate.ensure(OUT, "volt-jsonl", args.records)
            standin = StandIn(children, "profile-send")
            try:
                config = agent_config(work / "send.yaml", [source("bench", "volt-jsonl", data, start_at="beginning")],
                                      state_dir=work / "state", endpoint=standin.url,
                                      volt={"concurrency": args.concurrency})
                # --gil: aiohttp's executor threads mostly wait, and would otherwise fill the top of the list
                raw = record(children, f"send-c{args.concurrency}", ["run", "--config", str(config), "--once"],
                             args.rate, gil=True)
            finally:
                standin.stop()
            print(summarize(raw, args.top))
            return 0
        format_of = {kind: fmt for fmt, kinds in PARSE_VARIANTS.items() for kind in kinds}
        for kind in args.formats or [k for f in PARSE_TARGETS if have_preset(f) for k in PARSE_VARIANTS[f]]:
            fmt = format_of.get(kind, kind)
            data = generate.ensure(OUT, kind, args.lines)
            config = agent_config(work / f"{kind}.yaml", [source("bench", fmt, data, start_at="beginning")],
                                  state_dir=work / "state")
            raw = record(children, f"parse-{kind}", ["run", "--config", str(config), "--dry-run", "--once"],
                         args.rate)
            print(summarize(raw, args.top))
            print()
        return 0
    finally:
        children.kill_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
