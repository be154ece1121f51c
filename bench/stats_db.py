"""The index computed from the database (`survey_app.services.stats`), timed.

Against a database that already holds responses (e.g. one seeded with
`flask demo seed --responses 1000000`), prints for a period:
- the SQL aggregation of `stats.response_frame` (one GROUP BY over the packed
  answer pattern, covering index) and the full `stats.compute_index`;
- the baseline in the same run: the pivot join over the `answers` table that the
  packed pattern replaced (same groups), and the ratio.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/DB .venv/bin/python bench/stats_db.py --period 2026
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PIVOT = """
SELECT count(*) FROM (
  SELECT unit_id, stratum, excluded, age_group, o, ac, p, s, re, f, count(*) FROM (
    SELECT r.id, r.unit_id, r.stratum, r.excluded, r.age_group,
      max(CASE WHEN a.item_key='overall' THEN a.value END) o, max(CASE WHEN a.item_key='access' THEN a.value END) ac,
      max(CASE WHEN a.item_key='procedure' THEN a.value END) p, max(CASE WHEN a.item_key='staff' THEN a.value END) s,
      max(CASE WHEN a.item_key='result' THEN a.value END) re, max(CASE WHEN a.item_key='feedback' THEN a.value END) f
    FROM responses r LEFT JOIN answers a ON a.response_id = r.id
    WHERE r.submitted_at >= :start AND r.submitted_at < :end
    GROUP BY r.id, r.unit_id, r.stratum, r.excluded, r.age_group) x
  GROUP BY 1,2,3,4,5,6,7,8,9,10) y
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--period", default="2026")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    import sqlalchemy as sa

    from survey_app import create_app
    from survey_app.extensions import db
    from survey_app.services import stats
    from survey_app.services.periods import resolve_period

    app = create_app({"SECRET_KEY": os.environ.get("SECRET_KEY", "bench")})
    with app.app_context():
        p = resolve_period(args.period)
        frame_t, compute_t, pivot_t = [], [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            frame = stats.response_frame(p)
            frame_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            result = stats.compute_index(p)
            compute_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            groups = db.session.execute(sa.text(PIVOT), {"start": p.start, "end": p.end}).scalar_one()
            pivot_t.append(time.perf_counter() - t)
        n = int(frame["count"].sum())
        print(f"period {p.label}: {n} responses -> {len(frame)} compressed rows ({groups} pivot groups), "
              f"{len(result.table)} index rows; backend {db.engine.dialect.name}")
        fm, cm, pm = (statistics.median(x) for x in (frame_t, compute_t, pivot_t))
        print(f"  stats.response_frame (packed pattern): median {fm:.2f} s over {args.repeat}")
        print(f"  stats.compute_index (everything):      median {cm:.2f} s")
        print(f"  baseline pivot join over answers:      median {pm:.2f} s   -> aggregation {pm / fm:.1f}x faster")
        print(f"  load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
