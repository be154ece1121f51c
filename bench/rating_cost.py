"""Cost of one rating, in process: CPU milliseconds of the form GET, the POST
and the thank-you GET, against a bare INSERT route measured in the same run.

    .venv/bin/python bench/rating_cost.py [--n 400] [--limiter memory|redis] [--profile post|get|thanks]

One run creates a throw-away PostgreSQL database on 127.0.0.1:5432 (dropped at
the end) with the schema, the questionnaires, a unit and 200 counters; builds
the app (`create_app()`, not TESTING, CSRF on, the real limits raised for one
client) and drives it with Flask's test client (no network, no server: only
the application's own work).  The baseline is bench/collect.py's bare Flask
route (parse the same form, one INSERT of the same response row), on the same
database.  `--profile KIND` prints a cProfile profile (CPU time) of that request
kind.  Each figure is the median of 5 rounds of `--n`
requests; the load average is printed with them (the machine is shared).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.collect import PG_SERVER, SECRET, make_baseline, pg_admin, redis_up, setup_database  # noqa: E402
from tests.helpers import scrape  # noqa: E402

ITEMS = ("overall", "access", "procedure", "staff", "result", "feedback")


def answers(rnd: random.Random) -> dict:
    out = {k: (rnd.choice("12345") if rnd.random() > 0.1 else "na") for k in ITEMS}
    out["stratum"] = rnd.choice(["ho_tich", "dat_dai", "xay_dung", ""])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=400, help="requests of each kind per round (max 5000)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--limiter", choices=("memory", "redis"), default="redis" if redis_up() else "memory")
    ap.add_argument("--profile", choices=("get", "post", "thanks", "baseline"), default=None)
    ap.add_argument("--profiler", choices=("cprofile", "pyinstrument"), default="cprofile",
                    help="cProfile (CPU time, flat) or pyinstrument (wall time, call tree; dev tool)")
    ap.add_argument("--ab", action="append", default=[], metavar="KEY=JSON",
                    help="also measure an app with these settings, interleaved (B rows), e.g. "
                         "COLLECT_PAGE_CACHE_SECONDS=0")
    ap.add_argument("--config", action="append", default=[], metavar="KEY=JSON",
                    help="an app setting for an A/B run, e.g. RATELIMIT_ENABLED=false (repeatable)")
    args = ap.parse_args(argv)
    args.n = max(20, min(args.n, 5000))

    name = f"sipas_cost_{uuid.uuid4().hex[:8]}"
    url = PG_SERVER.rsplit("/", 1)[0] + "/" + name
    pg_admin(f'CREATE DATABASE "{name}"')
    load0 = os.getloadavg()[0]
    try:
        tokens, (unit_id, counter_id, inst_id) = setup_database(url, 200)
        os.environ.update(DATABASE_URL=url, BENCH_UNIT=str(unit_id), BENCH_COUNTER=str(counter_id),
                          BENCH_INSTRUMENT=str(inst_id))
        from survey_app import create_app

        storage = "redis://127.0.0.1:6379/13" if args.limiter == "redis" else "memory://"
        common = {"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": SECRET, "TESTING": False,
                  "RATELIMIT_STORAGE_URI": storage, "RATELIMIT_KEY_PREFIX": name,
                  "PUBLIC_LIMIT_IP": "1000000/minute", "PUBLIC_LIMIT_IP_GET": "1000000/minute",
                  "PUBLIC_LIMIT_COUNTER": "1000000/minute", "PUBLIC_LIMIT_DEVICE": "1000000/minute",
                  "COLLECT_VOLUME_FLOOR": 10_000_000, "PUBLIC_MIN_FILL_SECONDS": 0}

        def settings(pairs):
            return {k: json.loads(v) for k, v in (c.split("=", 1) for c in pairs)}

        app = create_app(dict(common, **settings(args.config)))
        app_b = create_app(dict(common, **settings(args.config), **settings(args.ab))) if args.ab else None
        base = make_baseline()
        rnd = random.Random(7)
        seq = iter(range(10**9))

        def token():
            return tokens[next(seq) % len(tokens)]

        def flow_parts(app):
            """One citizen: returns (client, path, hidden) after the form GET."""
            c = app.test_client()
            path = f"/c/{token()}"
            r = c.get(path)
            return c, path, scrape(r.get_data(as_text=True))

        def measure(kind: str, n: int, prof=None) -> float:
            """CPU ms per request of `kind` (the set-up of each request is neither timed nor profiled);
            a kind ending in " B" runs on the --ab app."""
            app_ = app_b if kind.endswith(" B") else app
            kind = kind.removesuffix(" B")
            spent = 0.0
            on, off = (prof.enable, prof.disable) if prof else (lambda: None, lambda: None)
            for _ in range(n):
                if kind == "get":
                    c, call, want = app_.test_client(), "get", 200
                    args_ = (f"/c/{token()}",)
                elif kind == "post":
                    c, path, hidden = flow_parts(app_)
                    call, want, args_ = "post", 303, (path,)
                    kw = {"data": dict(hidden, **answers(rnd))}
                elif kind == "thanks":
                    c, call, want = app_.test_client(), "get", 200
                    args_ = (f"/c/{token()}/thanks",)
                else:  # the bare INSERT baseline
                    c, call, want, args_ = base.test_client(), "post", 303, ("/b",)
                    kw = {"data": dict(k=uuid.uuid4().hex, **answers(rnd))}
                if call == "get":
                    kw = {}
                t = time.process_time()
                on()
                r = getattr(c, call)(*args_, **kw)
                off()
                spent += time.process_time() - t
                assert r.status_code == want, (kind, r.status_code, r.get_data(as_text=True)[:300])
            return spent / n * 1e3

        kinds = ("get", "post", "thanks", "baseline") + (("get B", "post B", "thanks B") if app_b else ())
        for k in kinds:                                  # warm-up (caches, compiled statements, pools)
            measure(k, 30)
        if args.profile and args.profiler == "pyinstrument":
            from pyinstrument import Profiler
            from pyinstrument.renderers import ConsoleRenderer
            from pyinstrument.session import Session

            class _PerRequest:
                """pyinstrument cannot pause: one session per request, combined at the end."""

                def __init__(self):
                    self.sessions: list = []

                def enable(self):
                    self.p = Profiler(interval=0.0002, async_mode="disabled")
                    self.p.start()

                def disable(self):
                    self.sessions.append(self.p.stop())

            per = _PerRequest()
            measure(args.profile, args.n, per)
            session = per.sessions[0]
            for s in per.sessions[1:]:
                session = Session.combine(session, s)
            print(ConsoleRenderer(unicode=True, color=False, time="percent_of_total").render(session))
        elif args.profile:                               # CPU time (process_time), not wall: waits excluded
            import cProfile
            import pstats

            prof = cProfile.Profile(time.process_time)
            measure(args.profile, args.n, prof)
            stats = pstats.Stats(prof).strip_dirs()
            stats.sort_stats("cumulative").print_stats(45)
            stats.sort_stats("tottime").print_stats(25)
            if os.environ.get("BENCH_PROFILE_OUT"):              # for pstats / snakeviz afterwards
                prof.dump_stats(os.environ["BENCH_PROFILE_OUT"])
        rounds: dict[str, list[float]] = {k: [] for k in kinds}
        for _ in range(args.rounds):
            for k in kinds:                              # interleaved: all kinds share the background load
                rounds[k].append(measure(k, args.n))
        med = {k: statistics.median(v) for k, v in rounds.items()}
        load1 = os.getloadavg()[0]
        print(f"CPU per request, in process, PostgreSQL, limiter {args.limiter} {' '.join(args.config)}, "
              f"median of {args.rounds} x {args.n} (load average {load0:.1f} -> {load1:.1f}):")
        for k in kinds:
            print(f"  {k:9} {med[k]:6.2f} ms   (rounds: {', '.join(f'{x:.2f}' for x in rounds[k])})")
        flow = med["get"] + med["post"] + med["thanks"]
        print(f"  POST / baseline: {med['post'] / med['baseline']:.2f}x; baseline / POST = "
              f"{med['baseline'] / med['post']:.0%} (the in-process share of the closed-loop goal >= 60%)")
        print(f"  one citizen (GET + POST + thanks): {flow:.1f} ms CPU -> at most "
              f"{(os.cpu_count() or 1) * 1000 / flow:.0f} flows/s on {os.cpu_count()} idle cores")
        if app_b:
            flow_b = med["get B"] + med["post B"] + med["thanks B"]
            print(f"  B = {' '.join(args.ab)}: one citizen {flow_b:.1f} ms CPU; POST / baseline "
                  f"{med['post B'] / med['baseline']:.2f}x")
        from survey_app.extensions import db

        for a in (app, app_b):
            if a is not None:
                with a.app_context():
                    db.engine.dispose()
    finally:
        try:
            pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except Exception as exc:  # noqa: BLE001
            print(f"warning: could not drop {name}: {exc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
