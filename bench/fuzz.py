"""The long fuzzing run: the properties of tests/reliability/test_fuzz_inputs.py
(public form, CSV imports, `python -m analysis`) with a budget `--scale`
times the test suite's, random seeds instead of the suite's fixed ones, on
each database backend.  Prints, per property: examples run, time, and the
outcome distribution (status codes, accepted / refused, exit codes); any
falsifying example is printed whole.  Bounded by `--timeout` per backend.

    python bench/fuzz.py                      # scale 20 on sqlite and postgresql
    python bench/fuzz.py --scale 100 --db postgresql
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = "tests/reliability/test_fuzz_inputs.py"


def run(backend: str, scale: float, timeout: int, extra: list[str]) -> int:
    env = dict(os.environ, SIPAS_FUZZ_SCALE=str(scale))
    cmd = [sys.executable, "-m", "pytest", TARGET, "--db", backend, "-q", "-p", "no:cacheprovider",
           "--hypothesis-show-statistics", "--durations=0", "-o", "console_output_style=classic", *extra]
    t = time.perf_counter()
    try:
        res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        out, code = res.stdout + res.stderr, res.returncode
    except subprocess.TimeoutExpired as exc:
        out, code = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or ""), 124
    took = time.perf_counter() - t
    print(f"\n===== {backend}: scale {scale:g}, {took:.0f} s, pytest exit {code}")
    durations = {m.group(2): float(m.group(1)) for m in re.finditer(r"^([\d.]+)s call\s+\S+::(\S+)", out, re.M)}
    stats = re.split(r"^(?=\S+::\S+:$)", out.split("Hypothesis Statistics", 1)[-1], flags=re.M)
    print(f"{'property':<48} {'seconds':>8}  outcomes")
    for block in stats:
        head = block.strip().splitlines()[:1]
        if not head or "::" not in head[0]:
            continue
        name = head[0].split("::")[-1].rstrip(":")
        passing = re.search(r"(\d+) passing examples?, (\d+) failing examples?, (\d+) invalid", block)
        events = re.findall(r"\* ([\d.]+%), (.+)", block)
        counts = f"{passing.group(1)} passing, {passing.group(2)} failing" if passing else ""
        shown = "; ".join(f"{e} {p}" for p, e in events[:6])
        print(f"{name:<48} {durations.get(name, float('nan')):>8.1f}  {counts}  {shown}")
    summary = [ln for ln in out.splitlines() if re.search(r"\d+ (passed|failed)", ln)]
    print(summary[-1] if summary else out[-2000:])
    if code != 0:
        failures = out.split("= FAILURES =", 1)[-1] if "= FAILURES =" in out else out[-6000:]
        print(failures[:12000])
    return code


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=20.0, help="budget multiplier over the test suite (default 20)")
    ap.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per backend (default 1800)")
    ap.add_argument("-k", default=None, help="only the properties matching this pytest -k expression")
    args = ap.parse_args(argv)
    extra = ["-k", args.k] if args.k else []
    backends = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    codes = [run(b, args.scale, args.timeout, extra) for b in backends]
    return 0 if all(c == 0 for c in codes) else 1


if __name__ == "__main__":
    sys.exit(main())
