"""API v1 benchmark (issue 12): dossier events ingested per second.

    .venv/bin/python bench/api.py [--seconds 10] [--concurrency 4] [--workers 2]

One run, loopback only, bounded in time:

1. Creates a throw-away PostgreSQL database on 127.0.0.1:5432 (user postgres)
   with the schema, a province with 20 communes (a counter each) and an API
   client of the province.  Dropped at the end.
2. Starts two gunicorn servers (`--workers` workers x 4 threads, gthread):
   - SIPAS (`survey_app:create_app()`), `POST /api/v1/dossier-events`
     (Bearer key, scope, validation, idempotency, audit), the per-client
     limit raised out of the way;
   - baseline: a bare Flask route that parses the same JSON and inserts the
     same rows (the dossiers, then their events) with two executemany
     INSERTs: no key, scope, validation, idempotency or audit.
3. For batches of 100 and of 1,000 events (each dossier: `tiep_nhan` then
   `tra_ket_qua`, new codes every batch), `--concurrency` clients post as
   fast as they can for `--seconds` per server, in 4 interleaved slices
   (baseline, SIPAS, baseline, ...: the same run, so the same machine load):
   events/s and per-batch latency p50 / p99.
4. Checks correctness: SIPAS stored exactly the events it accepted, and a
   batch sent again is answered all `duplicate` and adds no row.

Goal: SIPAS >= 50% of the baseline's events/s; p99 < 200 ms for a
100-event batch.  Prints a table (and `--json FILE`).

`--in-process N` instead measures CPU milliseconds per batch in process (Flask
test client, no server: the application's own work), SIPAS beside the
baseline, N batches of each size per round, 5 interleaved rounds;
`--profile 100|1000` adds a cProfile (CPU time) of SIPAS's batches.
"""
from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.collect import HOST, PG_SERVER, SECRET, Server, count_rows, pct, pg_admin  # noqa: E402

UNITS = 20
SLICES = 4
_seq = itertools.count()


def batch(size: int, tag: str) -> list[dict]:
    """`size` events: size/2 new dossiers, each received then returned."""
    out = []
    for _ in range(size // 2):
        n = next(_seq)
        code = f"000.00.{tag}.H{n:08d}"
        unit = f"BX{n % UNITS:02d}"
        common = {"MaHoSo": code, "MaDonVi": unit, "MaTTHC": "1.001234", "MaLinhVuc": "ho_tich", "HinhThuc": "1",
                  "NgayTiepNhan": "20260301083000", "NgayHenTra": "20260310170000"}
        out.append(dict(common, SuKien="tiep_nhan", TrangThaiHoSo="2"))
        out.append(dict(common, SuKien="tra_ket_qua", TrangThaiHoSo="10", NgayTra="20260305160000",
                        NguoiXuLy="Cán bộ một cửa"))
    return out


# ------------------------------------------------------------------ baseline app

def make_baseline():
    """A bare Flask route inserting the same rows (dossiers, then events)."""
    import datetime as dt

    import sqlalchemy as sa
    from flask import Flask, jsonify, request

    app = Flask("baseline")
    engine = sa.create_engine(os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://"),
                              pool_size=5, pool_pre_ping=True)
    units = {}
    ins_d = sa.text("INSERT INTO dossiers (code, unit_id, procedure_code, stratum, channel, status, received_at, "
                    "due_at, returned_at, returned_on, complaints, officer, updated_at) VALUES (:code, :unit, :proc, "
                    ":stratum, :channel, :status, :received, :due, :returned, :returned_on, 0, :officer, :now) "
                    "RETURNING id")
    ins_e = sa.text("INSERT INTO dossier_events (dossier_id, event, at, received_at) VALUES (:d, :e, :at, :now)")

    def t(v):
        return dt.datetime.strptime(v, "%Y%m%d%H%M%S").replace(tzinfo=dt.timezone(dt.timedelta(hours=7))) \
            if v else None

    @app.get("/ok")
    def ok():
        return "ok"

    @app.post("/b")
    def insert_batch():
        events = request.get_json()["events"]
        now = dt.datetime.now(dt.timezone.utc)
        with engine.begin() as conn:
            if not units:
                units.update(dict(conn.execute(sa.text("SELECT code, id FROM units")).all()))
            ids = {}
            for e in events:
                if e["MaHoSo"] in ids:
                    continue
                ret = t(e.get("NgayTra"))
                ids[e["MaHoSo"]] = conn.execute(ins_d, {
                    "code": e["MaHoSo"], "unit": units[e["MaDonVi"]], "proc": e.get("MaTTHC"),
                    "stratum": e.get("MaLinhVuc") or "_all", "channel": e.get("HinhThuc"),
                    "status": e.get("TrangThaiHoSo"), "received": t(e.get("NgayTiepNhan")),
                    "due": t(e.get("NgayHenTra")), "returned": ret, "returned_on": ret.date() if ret else None,
                    "officer": e.get("NguoiXuLy"), "now": now}).scalar_one()
            conn.execute(ins_e, [{"d": ids[e["MaHoSo"]], "e": e["SuKien"],
                                  "at": t(e.get("NgayTra") if e["SuKien"] == "tra_ket_qua" else e["NgayTiepNhan"]),
                                  "now": now} for e in events])
        return jsonify(accepted=len(events))

    return app


# ------------------------------------------------------------------ load

def closed_loop(port: int, path: str, headers: dict, size: int, seconds: float, concurrency: int, tag: str) -> dict:
    lat: list[float] = []
    events = [0]
    codes: dict = {}
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client(i):
        conn = http.client.HTTPConnection(HOST, port, timeout=60)
        while time.perf_counter() < stop:
            body = json.dumps({"events": batch(size, f"{tag}{i}")})
            t0 = time.perf_counter()
            conn.request("POST", path, body=body, headers=dict(headers, **{"Content-Type": "application/json"}))
            resp = conn.getresponse()
            data = resp.read()
            dt_ = time.perf_counter() - t0
            with lock:
                codes[resp.status] = codes.get(resp.status, 0) + 1
                if resp.status == 200:
                    lat.append(dt_)
                    events[0] += json.loads(data)["accepted"]

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return {"lat": lat, "events": events[0], "seconds": time.perf_counter() - t0, "codes": codes}


def summary(parts: list[dict]) -> dict:
    lat = [x for p in parts for x in p["lat"]]
    events = sum(p["events"] for p in parts)
    seconds = sum(p["seconds"] for p in parts)
    codes: dict = {}
    for p in parts:
        for k, v in p["codes"].items():
            codes[k] = codes.get(k, 0) + v
    return {"batches": len(lat), "events": events, "seconds": round(seconds, 2), "events_per_s": events / seconds,
            "p50_ms": pct(lat, 50) * 1000, "p99_ms": pct(lat, 99) * 1000, "codes": codes}


def setup_database(url: str) -> str:
    """Schema, units, counters and an API client; returns its key."""
    from survey_app import create_app
    from survey_app.extensions import db
    from survey_app.models import Counter, Unit
    from survey_app.services.integration import create_client

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": SECRET, "TESTING": False})
    with app.app_context():
        db.create_all()
        prov = Unit(code="BP", name_vi="Tỉnh Đo Tải", name_en="Bench province", kind="province")
        db.session.add(prov)
        for i in range(UNITS):
            u = Unit(code=f"BX{i:02d}", name_vi=f"Xã {i}", name_en=f"Commune {i}", kind="commune", parent=prov)
            db.session.add(u)
            db.session.add(Counter(code=f"BX{i:02d}-Q1", unit=u, name_vi="Quầy 1", name_en="Desk 1"))
        db.session.commit()
        _client, key = create_client("bench", prov, ["events"], actor="bench")
        db.engine.dispose()
    return key


def in_process(url: str, key: str, n: int, profile: int | None) -> None:
    """CPU per batch through the Flask test client, SIPAS and the baseline interleaved."""
    import statistics

    from survey_app import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": SECRET, "TESTING": False,
                      "RATELIMIT_STORAGE_URI": "memory://", "API_RATE_LIMIT": "1000000/minute"})
    os.environ["DATABASE_URL"] = url
    base = make_baseline()
    auth = {"Authorization": f"Bearer {key}"}

    def one(kind: str, size: int, tag: str, prof=None) -> float:
        c = (base if kind == "baseline" else app).test_client()
        path, headers = ("/b", {}) if kind == "baseline" else ("/api/v1/dossier-events", auth)
        body = {"events": batch(size, tag)}
        t = time.process_time()
        if prof:
            prof.enable()
        r = c.post(path, json=body, headers=headers)
        if prof:
            prof.disable()
        spent = time.process_time() - t
        assert r.status_code == 200 and r.get_json()["accepted"] == size, (kind, r.status_code, r.get_data()[:300])
        return spent * 1000

    for size in (100, 1000):
        for kind in ("baseline", "sipas"):
            one(kind, size, f"w{kind[0]}{size}")                # warm-up
    if profile:
        import cProfile
        import pstats

        prof = cProfile.Profile(time.process_time)
        for i in range(n):
            one("sipas", profile, f"p{i}", prof)
        stats = pstats.Stats(prof).strip_dirs()
        stats.sort_stats("cumulative").print_stats(50)
        stats.sort_stats("tottime").print_stats(25)
        if os.environ.get("BENCH_PROFILE_OUT"):
            prof.dump_stats(os.environ["BENCH_PROFILE_OUT"])
    load0 = os.getloadavg()[0]
    rounds: dict = {(k, s): [] for s in (100, 1000) for k in ("baseline", "sipas")}
    for r in range(5):
        for (kind, size), out in rounds.items():
            out.append(statistics.mean(one(kind, size, f"r{r}{kind[0]}{size}x{i}") for i in range(n)))
    print(f"CPU per batch, in process, PostgreSQL, {n} batches per round, median of 5 rounds "
          f"(load average {load0:.1f} -> {os.getloadavg()[0]:.1f}):")
    for size in (100, 1000):
        b, s_ = (statistics.median(rounds[(k, size)]) for k in ("baseline", "sipas"))
        print(f"  {size:>5} events: baseline {b:7.1f} ms, SIPAS {s_:7.1f} ms -> baseline / SIPAS = {b / s_:.0%} "
              f"(the in-process share of the goal >= 50%)")
    from survey_app.extensions import db

    with app.app_context():
        db.engine.dispose()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each measured phase (max 60)")
    ap.add_argument("--concurrency", type=int, default=4, help="closed-loop clients")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers per server")
    ap.add_argument("--json", default=None, help="also write the figures as JSON here")
    ap.add_argument("--in-process", type=int, default=0, metavar="N",
                    help="measure CPU per batch in process instead (N batches of each size per round)")
    ap.add_argument("--profile", type=int, choices=(100, 1000), default=None,
                    help="with --in-process: cProfile SIPAS's batches of this size")
    args = ap.parse_args(argv)
    args.seconds = min(max(args.seconds, 2.0), 60.0)
    if args.in_process:
        name = f"sipas_bench_api_{uuid.uuid4().hex[:8]}"
        url = PG_SERVER.rsplit("/", 1)[0] + "/" + name
        pg_admin(f'CREATE DATABASE "{name}"')
        try:
            in_process(url, setup_database(url), args.in_process, args.profile)
        finally:
            pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return 0

    name = f"sipas_bench_api_{uuid.uuid4().hex[:8]}"
    url = PG_SERVER.rsplit("/", 1)[0] + "/" + name
    out_dir = ROOT / "bench" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    servers: list[Server] = []
    results: dict = {"database": "postgresql", "workers": args.workers, "threads_per_worker": 4,
                     "concurrency": args.concurrency, "seconds": args.seconds,
                     "uptime_start": os.popen("uptime").read().strip()}
    pg_admin(f'CREATE DATABASE "{name}"')
    try:
        key = setup_database(url)
        env = dict(os.environ, DATABASE_URL=url, SECRET_KEY=SECRET, PUBLIC_BASE_URL="http://127.0.0.1",
                   RATELIMIT_STORAGE_URI="memory://", SIPAS_API_RATE_LIMIT="1000000/minute")
        env.pop("FLASK_DEBUG", None)
        sipas = Server("survey_app:create_app()", env, args.workers, out_dir / "gunicorn-api-sipas.log")
        base = Server("bench.api:make_baseline()", env, args.workers, out_dir / "gunicorn-api-baseline.log")
        servers += [sipas, base]
        sipas.wait("/healthz")
        base.wait("/ok")
        auth = {"Authorization": f"Bearer {key}"}
        for size in (100, 1000):
            # SLICES interleaved slices each, so both servers see the same background load.
            parts: dict = {"baseline": [], "sipas": []}
            for k in range(SLICES):
                parts["baseline"].append(closed_loop(base.port, "/b", {}, size, args.seconds / SLICES,
                                                     args.concurrency, f"b{size}x{k}"))
                parts["sipas"].append(closed_loop(sipas.port, "/api/v1/dossier-events", auth, size,
                                                  args.seconds / SLICES, args.concurrency, f"s{size}x{k}"))
            r_base, r_sipas = summary(parts["baseline"]), summary(parts["sipas"])
            results[f"batch_{size}"] = {"baseline": r_base, "sipas": r_sipas,
                                        "ratio": r_sipas["events_per_s"] / r_base["events_per_s"]}
        # correctness: every accepted event is one row; a batch sent again adds none
        accepted = sum(results[f"batch_{s}"]["sipas"]["events"] for s in (100, 1000))
        base_rows = sum(results[f"batch_{s}"]["baseline"]["events"] for s in (100, 1000))
        rows = count_rows(url, "dossier_events")
        again = batch(100, "again")
        conn = http.client.HTTPConnection(HOST, sipas.port, timeout=30)
        for _ in range(2):
            conn.request("POST", "/api/v1/dossier-events", body=json.dumps({"events": again}),
                         headers=dict(auth, **{"Content-Type": "application/json"}))
            second = json.loads(conn.getresponse().read())
        results["correctness"] = {"rows": rows, "accepted_plus_baseline": accepted + base_rows,
                                  "rows_equal_accepted": rows == accepted + base_rows,
                                  "resent_all_duplicate": second["duplicates"] == len(again),
                                  "rows_added_by_resending": count_rows(url, "dossier_events") - rows - len(again)}
    finally:
        for s in servers:
            s.stop()
        try:
            pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except Exception as exc:  # noqa: BLE001
            print(f"warning: could not drop {name}: {exc}", file=sys.stderr)
    results["uptime_end"] = os.popen("uptime").read().strip()
    report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    return 0


def report(r: dict) -> None:
    print(f"gunicorn: {r['workers']} workers x {r['threads_per_worker']} threads each; PostgreSQL; "
          f"{r['concurrency']} clients, {r['seconds']:.0f} s per phase")
    print(f"uptime before: {r['uptime_start']}")
    print(f"uptime after:  {r['uptime_end']}")
    print(f"\n  {'batch':>6} {'server':10} {'events/s':>9} {'batches':>8} {'p50 ms':>8} {'p99 ms':>8}  codes")
    for size in (100, 1000):
        b = r[f"batch_{size}"]
        for k in ("baseline", "sipas"):
            x = b[k]
            print(f"  {size:>6} {k:10} {x['events_per_s']:9.0f} {x['batches']:8d} {x['p50_ms']:8.1f} "
                  f"{x['p99_ms']:8.1f}  {x['codes']}")
        print(f"  {size:>6} SIPAS / baseline events/s: {b['ratio']:.0%} (goal >= 50%: "
              f"{'met' if b['ratio'] >= 0.5 else 'MISSED'})")
    p99 = r["batch_100"]["sipas"]["p99_ms"]
    print(f"\n  p99 of a 100-event batch: {p99:.1f} ms (goal < 200 ms: {'met' if p99 < 200 else 'MISSED'})")
    c = r["correctness"]
    print(f"Correctness: rows {c['rows']} = accepted (both servers) {c['accepted_plus_baseline']}: "
          f"{c['rows_equal_accepted']}; a batch sent again -> all duplicate: {c['resent_all_duplicate']}, "
          f"rows added: {c['rows_added_by_resending']}")


if __name__ == "__main__":
    sys.exit(main())
