"""Worker start-up benchmark: time and memory of `create_app()` in a fresh interpreter.

    .venv/bin/python bench/startup.py [--runs 5] [--ref COMMIT] [--json FILE]

What a gunicorn worker pays before serving its first citizen: interpreter start, `import survey_app`,
`create_app()`.  Each run is a new process (nothing cached in memory; the OS file cache is warm after the
first run, as it is for a real worker).  Measured per run: wall time of the whole process (parent's
clock), time of import + create_app (child's clock), resident memory (VmRSS) after create_app, and which
of pandas / numpy / scipy / statsmodels / matplotlib got imported.

Variants, interleaved run by run so that they share the machine's load:

- `now`:     this tree as it is;
- `stack`:   this tree, importing the statistics stack first (pandas, numpy, scipy.stats, statsmodels.api,
             matplotlib with Agg): what every worker paid when create_app imported it;
- `ref`:     with `--ref COMMIT`, that commit checked out in a temporary git worktree (e.g. the commit
             before the citizen path stopped importing the stack): the real "before".

Prints medians, the ratios to `now`, and the load average (figures from a loaded machine are not
comparable with figures from a quiet one).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("pandas", "numpy", "scipy", "statsmodels", "matplotlib")
STACK_IMPORTS = ("import pandas, numpy, scipy.stats, statsmodels.api, matplotlib; "
                 "matplotlib.use('Agg'); import matplotlib.pyplot")

CHILD = r"""
import json, os, sys, time
t0 = time.perf_counter()
sys.path.insert(0, os.environ["BENCH_TREE"])
{prelude}
import survey_app
app = survey_app.create_app({{"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "bench-startup"}},
                            instance_path=os.environ["BENCH_INSTANCE"])
t1 = time.perf_counter()
rss = 0
with open("/proc/self/status") as fh:
    for line in fh:
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print(json.dumps({{"create_s": t1 - t0, "rss_mb": rss, "heavy": heavy}}))
"""


def run_once(tree: Path, prelude: str, instance: str) -> dict:
    code = CHILD.format(prelude=prelude, heavy=HEAVY)
    env = dict(os.environ, BENCH_TREE=str(tree), BENCH_INSTANCE=instance)
    for name in ("DATABASE_URL", "RATELIMIT_STORAGE_URI"):
        env.pop(name, None)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], cwd=str(tree), env=env, capture_output=True, text=True,
                         timeout=300)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"child failed in {tree}:\n{out.stderr[-2000:]}")
    data = json.loads(out.stdout.strip().splitlines()[-1])
    data["wall_s"] = wall
    return data


def checkout(ref: str, where: Path) -> Path:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(where), ref], check=True,
                   capture_output=True)
    # compiled catalogues are not in git: the old tree compiled them at start-up, the new one at set-up
    for mo in (ROOT / "survey_app" / "translations").glob("*/LC_MESSAGES/*.mo"):
        target = where / mo.relative_to(ROOT)
        if target.parent.exists():
            target.write_bytes(mo.read_bytes())
    return where


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--ref", help="a commit to measure as the 'before' (checked out in a temporary worktree)")
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args()

    variants = {"now": (ROOT, ""), "stack": (ROOT, STACK_IMPORTS)}
    tmp = Path(tempfile.mkdtemp(prefix="sipas-startup-"))
    ref_tree = None
    try:
        if args.ref:
            ref_tree = checkout(args.ref, tmp / "ref")
            variants["ref"] = (ref_tree, "")
        results: dict[str, list[dict]] = {name: [] for name in variants}
        for name, (tree, prelude) in variants.items():  # warm-up: byte-code, OS file cache
            run_once(tree, prelude, str(tmp / f"inst-{name}"))
        for _ in range(args.runs):
            for name, (tree, prelude) in variants.items():
                results[name].append(run_once(tree, prelude, str(tmp / f"inst-{name}")))
    finally:
        if ref_tree is not None:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(ref_tree)],
                           capture_output=True)

    load = open("/proc/loadavg").read().strip()
    summary = {}
    for name, runs in results.items():
        summary[name] = {
            "wall_s": statistics.median(r["wall_s"] for r in runs),
            "create_s": statistics.median(r["create_s"] for r in runs),
            "rss_mb": statistics.median(r["rss_mb"] for r in runs),
            "heavy": runs[-1]["heavy"],
            "runs": len(runs),
        }
    now = summary["now"]
    print(f"worker start-up, median of {args.runs} fresh processes per variant (load average: {load})")
    print(f"{'variant':<8} {'process s':>10} {'import+create s':>16} {'RSS MB':>8}  statistics stack imported")
    for name, s in summary.items():
        print(f"{name:<8} {s['wall_s']:>10.2f} {s['create_s']:>16.2f} {s['rss_mb']:>8.0f}  "
              f"{', '.join(s['heavy']) or 'none'}")
    for name, s in summary.items():
        if name != "now":
            print(f"{name} / now: process time x{s['wall_s'] / now['wall_s']:.1f}, "
                  f"import+create x{s['create_s'] / now['create_s']:.1f}, RSS x{s['rss_mb'] / now['rss_mb']:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"loadavg": load, "ref": args.ref, "variants": summary}, indent=2))


if __name__ == "__main__":
    main()
