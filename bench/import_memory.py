"""Peak memory of a CSV import against the file's size (issue 11, hole 6).

Usage (from the repository root)::

    python bench/import_memory.py                  # 50 MB responses file, this tree and the old one
    python bench/import_memory.py --mb 10 --baseline-ref none
    python bench/import_memory.py --kind volumes --mb 20

Generates a responses file (DESIGN.md format: ids, units, counters of the
row's unit, times, six items, some comments) of about ``--mb`` MB, then imports
it into a fresh SQLite database in a child process per code tree and prints
the child's peak resident memory (``resource.getrusage(RUSAGE_SELF).ru_maxrss``)
before the import (the app, pandas and the schema loaded) and after it, beside
the file size and the ratios.  The baseline is the same import with the code
of ``--baseline-ref`` (default: main just before the streaming importer; the
tree is taken with ``git archive``), measured in the same run on the same file.
Times are printed for information only.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: main before issue 11 hole 6 (the importer that read the whole file into memory).
BASELINE_REF = "185f327"
UNITS = 200

CHILD = r"""
import json, resource, sys, time
root, db_path, csv_path, kind, mode, units = sys.argv[1:7]
sys.path.insert(0, root)
from survey_app import create_app
from survey_app.extensions import db
from survey_app.models import Counter, Unit
from survey_app.services import csv_import
from survey_app.services.instruments import sync_instruments
import pandas, analysis.io  # noqa: F401  (loaded by every import: part of the "before" figure)

app = create_app({"TESTING": True, "SECRET_KEY": "x" * 40, "SQLALCHEMY_DATABASE_URI": "sqlite:///" + db_path,
                  "RATELIMIT_STORAGE_URI": "memory://"})
with app.app_context():
    db.create_all()
    sync_instruments(db.session)
    for i in range(int(units)):
        u = Unit(code=f"BM-{i:03d}", name_vi=f"Xã {i}", name_en=f"Commune {i}", kind="commune")
        db.session.add(u)
        db.session.flush()
        db.session.add(Counter(code=f"BM-{i:03d}-Q1", unit_id=u.id, name_vi="Quầy 1", name_en="Desk 1",
                               token_version=1, active=True))
    db.session.commit()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    func = getattr(csv_import, "import_" + kind)
    try:
        with open(csv_path, "rb") as fh:
            res = func(fh.read() if mode == "bytes" else fh, "bench.csv", actor="bench")
    except csv_import.ImportRejected as exc:
        sys.exit("refused: " + str(exc)[:300].replace("\n", " | "))
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"before_kb": before, "peak_kb": after, "rows": res.rows, "seconds": seconds}))
"""


def make_responses(path: Path, target_bytes: int, seed: int = 11) -> int:
    rng = random.Random(seed)
    comments = ["", "", "", "Cán bộ nhiệt tình, hướng dẫn rõ ràng.", "Phải chờ lâu.", ""]
    n = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("response_id,unit_code,counter_code,submitted_at,channel,instrument,stratum,excluded,"
                 "overall,access,procedure,staff,result,feedback,age_group,gender,comment\n")
        while fh.tell() < target_bytes:
            u = rng.randrange(UNITS)
            day, sec = rng.randrange(1, 29), rng.randrange(86400)
            items = ",".join(str(rng.choice((1, 2, 3, 4, 4, 5, 5, 5))) for _ in range(6))
            fh.write(f"{uuid.UUID(int=rng.getrandbits(128), version=4)},BM-{u:03d},BM-{u:03d}-Q1,"
                     f"2025-{rng.randrange(1, 12):02d}-{day:02d}T{sec // 3600:02d}:{sec // 60 % 60:02d}:"
                     f"{sec % 60:02d}+07:00,paper,counter-quick,{rng.choice(('ho_tich', 'dat_dai', ''))},0,"
                     f"{items},{rng.choice(('18_29', '30_44', '45_59', ''))},{rng.choice(('female', 'male', ''))},"
                     f"\"{rng.choice(comments)}\"\n")
            n += 1
    return n


def make_volumes(path: Path, target_bytes: int) -> int:
    n = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("unit_code,period_start,period_end,stratum,transactions\n")
        day = 0
        while fh.tell() < target_bytes:
            start = dt.date(2000, 1, 1) + dt.timedelta(days=day)
            for u in range(UNITS):
                fh.write(f"BM-{u:03d},{start.isoformat()},{start.isoformat()},s{day % 7},{(u * 7 + day) % 50}\n")
                n += 1
            day += 1
    return n


def tree_of(ref: str, into: Path) -> Path:
    """The repository at `ref`, unpacked into `into` (git archive)."""
    archive = into / "tree.tar"
    with archive.open("wb") as fh:
        subprocess.run(["git", "-C", str(ROOT), "archive", ref], stdout=fh, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    archive.unlink()
    return into / "tree"


def measure(root: Path, csv_path: Path, kind: str, mode: str, work: Path) -> dict:
    db_path = work / f"bench-{uuid.uuid4().hex[:8]}.db"
    env = dict(os.environ, PYTHONPATH=str(root))
    out = subprocess.run([sys.executable, "-c", CHILD, str(root), str(db_path), str(csv_path), kind, mode,
                          str(UNITS)],
                         capture_output=True, text=True, env=env, cwd=str(root))
    db_path.unlink(missing_ok=True)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=50.0, help="size of the generated file in MB (default 50)")
    ap.add_argument("--kind", choices=("responses", "volumes"), default="responses")
    ap.add_argument("--baseline-ref", default=BASELINE_REF,
                    help=f"git ref of the old importer to measure beside this tree ('none' to skip; default "
                         f"{BASELINE_REF})")
    args = ap.parse_args(argv)
    load = os.getloadavg()
    print(f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} CPUs)")
    with tempfile.TemporaryDirectory(prefix="sipas-import-mem-") as tmp:
        work = Path(tmp)
        csv_path = work / f"{args.kind}.csv"
        t0 = time.perf_counter()
        rows = (make_responses if args.kind == "responses" else make_volumes)(csv_path, int(args.mb * 1024 * 1024))
        size = csv_path.stat().st_size
        print(f"file: {args.kind}, {rows:,} rows, {size / 1048576:.1f} MB (generated in "
              f"{time.perf_counter() - t0:.1f} s)")
        runs = [("this tree (streamed)", ROOT, "stream")]
        if args.baseline_ref.lower() != "none":
            try:
                runs.append((f"baseline {args.baseline_ref} (whole file)", tree_of(args.baseline_ref, work), "bytes"))
            except (subprocess.CalledProcessError, OSError) as exc:
                print(f"baseline {args.baseline_ref}: not measurable ({exc})")
        print(f"{'code':34} {'rows':>9} {'before MB':>10} {'peak MB':>9} {'peak/file':>10} "
              f"{'(peak-before)/file':>19} {'seconds':>8}")
        results = {}
        for label, root, mode in runs:
            r = measure(root, csv_path, args.kind, mode, work)
            results[label] = r
            if "error" in r:
                print(f"{label:34} failed: {r['error']}")
                continue
            before, peak = r["before_kb"] * 1024, r["peak_kb"] * 1024
            print(f"{label:34} {r['rows']:>9,} {before / 1048576:>10.0f} {peak / 1048576:>9.0f} "
                  f"{peak / size:>10.2f} {(peak - before) / size:>19.2f} {r['seconds']:>8.1f}")
        ok = [r for r in results.values() if "error" not in r]
        if len(ok) == 2:
            new, old = ok
            own_new, own_old = new["peak_kb"] - new["before_kb"], old["peak_kb"] - old["before_kb"]
            print(f"ratio of peaks, baseline / this tree: {old['peak_kb'] / new['peak_kb']:.1f}x; of the "
                  f"import's own memory (peak - before): {own_old / max(1, own_new):.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
