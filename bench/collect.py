"""Collection benchmark: form page weight and submission throughput/latency.

    .venv/bin/python bench/collect.py [--seconds 15] [--concurrency 16] [--rate 100] [--workers 2]

One run, loopback only, bounded in requests and time:

1. Creates a throw-away PostgreSQL database on 127.0.0.1:5432 (user postgres),
   the schema, the instruments, a unit and 200 counters.  Dropped at the end.
2. Page weight: the rating step (phone and kiosk) as the server sends it to a
   browser that accepts brotli/gzip: the page (HTML, inline CSS) and every
   script it loads, headers included; goal <= 14 KB in all (one round trip's
   worth).  Then bench/rating_page.py (the page's height at 360x640, words,
   taps, bytes, slow-3G completion time) when that script exists.
3. Starts two gunicorn servers (2 workers x 4 threads each, gthread):
   - SIPAS (`survey_app:create_app()`), rate limits in Redis when
     127.0.0.1:6379 answers (else memory), limits raised for one loopback IP;
   - baseline: a bare Flask route that parses the same form and does one
     INSERT of the same response row (no validation, CSRF, answers, flags).
4. Pre-fetches one form per simulated phone (cookies, CSRF token, one-time
   key), then measures POST submissions only:
   - closed loop: `--concurrency` clients as fast as they can for `--seconds`;
   - open loop: `--rate` submissions/s for `--seconds` (p50 / p99 latency).
5. Checks correctness: every accepted submission is exactly one row, and
   re-sending 50 already-sent forms adds none.

Prints a table (and `--json FILE`).  Goal: SIPAS >= 60% of the baseline's
throughput; p99 < 100 ms at 100 submissions/s.
"""
from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_SERVER = os.environ.get("BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
SECRET = "bench-secret-key-0123456789abcdef0123456789abcdef"
MAX_REQUESTS = 60_000
HOST = "127.0.0.1"


# ------------------------------------------------------------------ helpers

def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def redis_up() -> bool:
    try:
        with socket.create_connection((HOST, 6379), timeout=0.5):
            return True
    except OSError:
        return False


def pg_admin(sql: str) -> None:
    import sqlalchemy as sa

    eng = sa.create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.execute(sa.text(sql))
    eng.dispose()


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100 * (len(v) - 1)))))
    return v[k]


# ------------------------------------------------------------------ baseline app

def make_baseline():
    """A bare Flask route doing one INSERT of the same response row."""
    import datetime as dt

    import sqlalchemy as sa
    from flask import Flask, redirect, request

    app = Flask("baseline")
    engine = sa.create_engine(os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://"),
                              pool_size=5, pool_pre_ping=True)
    stmt = sa.text(
        "INSERT INTO responses (id, unit_id, counter_id, instrument_id, channel, submitted_at, received_at, "
        "stratum, idempotency_key, device_hash, flags, excluded) VALUES (:id, :unit, :counter, :inst, 'qr', "
        ":now, :now, :stratum, :key, NULL, '', false)")
    unit, counter, inst = (int(os.environ[k]) for k in ("BENCH_UNIT", "BENCH_COUNTER", "BENCH_INSTRUMENT"))

    @app.get("/ok")
    def ok():
        return "ok"

    @app.post("/b")
    def insert_one():
        form = request.form
        now = dt.datetime.now(dt.timezone.utc)
        with engine.begin() as conn:
            conn.execute(stmt, {"id": uuid.uuid4(), "unit": unit, "counter": counter, "inst": inst, "now": now,
                                "stratum": form.get("stratum") or "_all", "key": (form.get("k") or "") + "-b"})
        return redirect("/thanks", 303)

    return app


# ------------------------------------------------------------------ servers

class Server:
    def __init__(self, target: str, env: dict, workers: int, log: Path):
        self.port = free_port()
        self.log = log
        cmd = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-k", "gthread", "--threads", "4",
               "-b", f"{HOST}:{self.port}", "--graceful-timeout", "5", "--timeout", "30", target]
        self.fh = log.open("w")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.fh, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def wait(self, path: str, timeout: float = 60) -> None:
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited; see {self.log}")
            try:
                c = http.client.HTTPConnection(HOST, self.port, timeout=2)
                c.request("GET", path)
                if c.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"server did not start in {timeout}s; see {self.log}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.fh.close()


# ------------------------------------------------------------------ clients

_COOKIE = re.compile(r"^([^=;]+)=([^;]*)")


class Phone:
    """One simulated phone: its cookies and one rendered form."""

    def __init__(self, port: int, path: str):
        self.port, self.path, self.cookies, self.hidden = port, path, {}, {}

    def _store(self, resp):
        for k, v in resp.getheaders():
            if k.lower() == "set-cookie":
                m = _COOKIE.match(v)
                if m:
                    self.cookies[m.group(1)] = m.group(2)

    def headers(self, extra=None):
        h = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        h.update(extra or {})
        return h

    def fetch(self, conn) -> bytes:
        conn.request("GET", self.path, headers=self.headers({"Accept-Encoding": "identity"}))
        resp = conn.getresponse()
        body = resp.read()
        self._store(resp)
        html = body.decode()
        self.hidden = {"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', html).group(1),
                       "k": re.search(r'name="k" value="([^"]+)"', html).group(1)}
        return body

    def body(self, rnd: random.Random) -> str:
        data = dict(self.hidden)
        for item in ("overall", "access", "procedure", "staff", "result", "feedback"):
            data[item] = rnd.choice("12345") if rnd.random() > 0.1 else "na"
        data["stratum"] = rnd.choice(["ho_tich", "dat_dai", "xay_dung", ""])
        data["comment"] = rnd.choice(["", "", "Cán bộ nhiệt tình, hướng dẫn rõ ràng.", "Phải chờ hơi lâu."])
        return urlencode(data)


def post(conn, port, path, phone: Phone, body: str) -> tuple[int, float]:
    t0 = time.perf_counter()
    conn.request("POST", path, body=body,
                 headers=phone.headers({"Content-Type": "application/x-www-form-urlencoded"}))
    resp = conn.getresponse()
    resp.read()
    return resp.status, time.perf_counter() - t0


def send(conn, port: int, job) -> tuple[int, float, http.client.HTTPConnection]:
    """POST one job; a broken connection counts as status 0 and is replaced."""
    path, phone, body = job
    try:
        status, took = post(conn, port, path, phone, body)
    except (OSError, http.client.HTTPException):
        return 0, 0.0, http.client.HTTPConnection(HOST, port, timeout=30)
    return status, took, conn


def run_threads(n: int, target) -> None:
    ts = [threading.Thread(target=target) for _ in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def prefetch(port: int, paths: list[str], n: int, threads: int = 8) -> list[Phone]:
    phones = [Phone(port, paths[i % len(paths)]) for i in range(n)]
    it = iter(phones)
    lock = threading.Lock()

    def worker():
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        while True:
            with lock:
                p = next(it, None)
            if p is None:
                return
            p.fetch(conn)

    run_threads(threads, worker)
    return phones


def closed_loop(port: int, jobs: list[tuple[str, Phone, str]], concurrency: int, seconds: float):
    """`concurrency` clients send as fast as they can until `seconds` or the jobs run out."""
    it = iter(jobs)
    lock = threading.Lock()
    lat: list[float] = []
    codes: dict[int, int] = {}
    sent: list = []
    stop_at = time.perf_counter() + seconds

    def worker():
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        rnd_local = []
        while time.perf_counter() < stop_at:
            with lock:
                job = next(it, None)
            if job is None:
                break
            status, dt_, conn = send(conn, port, job)
            rnd_local.append((status, dt_, job))
        with lock:
            for status, dt_, job in rnd_local:
                codes[status] = codes.get(status, 0) + 1
                if status == 303:
                    lat.append(dt_)
                    sent.append(job)

    t0 = time.perf_counter()
    run_threads(concurrency, worker)
    elapsed = time.perf_counter() - t0
    return {"ok": len(lat), "seconds": elapsed, "rps": len(lat) / elapsed, "p50_ms": pct(lat, 50) * 1000,
            "p99_ms": pct(lat, 99) * 1000, "codes": codes, "lat": lat}, sent


def _take(it, n):
    for _ in range(n):
        x = next(it, None)
        if x is None:
            return
        yield x


def _merge(parts: list[dict]) -> dict:
    """Combine closed-loop slices."""
    ok = sum(p["ok"] for p in parts)
    secs = sum(p["seconds"] for p in parts)
    codes: dict[int, int] = {}
    for p in parts:
        for k, v in p["codes"].items():
            codes[k] = codes.get(k, 0) + v
    lat = [x for p in parts for x in p.pop("lat")]
    return {"ok": ok, "seconds": secs, "rps": ok / secs if secs else 0.0,
            "p50_ms": pct(lat, 50) * 1000, "p99_ms": pct(lat, 99) * 1000,
            "codes": codes, "slices_rps": [round(p["rps"], 1) for p in parts]}


def open_loop(port: int, jobs: list[tuple[str, Phone, str]], rate: float, seconds: float, threads: int = 32):
    """Send at a fixed rate (a request is due every 1/rate s, whatever the answers' speed)."""
    n = min(len(jobs), int(rate * seconds))
    due = [i / rate for i in range(n)]
    idx = iter(range(n))
    lock = threading.Lock()
    lat: list[float] = []
    late: list[float] = []
    codes: dict[int, int] = {}
    t0 = time.perf_counter()

    def worker():
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        while True:
            with lock:
                i = next(idx, None)
            if i is None:
                return
            wait = t0 + due[i] - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            start_lag = max(0.0, time.perf_counter() - (t0 + due[i]))
            status, dt_, conn = send(conn, port, jobs[i])
            with lock:
                codes[status] = codes.get(status, 0) + 1
                if status == 303:
                    lat.append(dt_ + start_lag)  # queueing in the client counts as latency
                    late.append(start_lag)

    run_threads(threads, worker)
    elapsed = time.perf_counter() - t0
    return {"ok": len(lat), "seconds": elapsed, "rps": len(lat) / elapsed, "p50_ms": pct(lat, 50) * 1000,
            "p99_ms": pct(lat, 99) * 1000, "max_ms": max(lat) * 1000 if lat else float("nan"),
            "client_lag_p99_ms": pct(late, 99) * 1000, "codes": codes}


# ------------------------------------------------------------------ bytes on the wire

_SCRIPT_SRC = re.compile(r'<script src="([^"]+)"')
WIRE_ENCODINGS = "br, gzip"


def _get_raw(port: int, path: str) -> tuple[int, dict, bytes, int]:
    """(status, headers, body as sent, bytes on the wire: status line + headers + body)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    conn.request("GET", path, headers={"Accept-Encoding": WIRE_ENCODINGS})
    resp = conn.getresponse()
    raw = resp.read()
    head = len(f"HTTP/1.1 {resp.status} {resp.reason}\r\n") + sum(
        len(k) + len(v) + 4 for k, v in resp.getheaders()) + 2
    conn.close()
    return resp.status, dict(resp.getheaders()), raw, head + len(raw)


def _decode(headers: dict, raw: bytes) -> bytes:
    enc = headers.get("Content-Encoding", "")
    if enc == "br":
        import brotli

        return brotli.decompress(raw)
    return gzip.decompress(raw) if enc == "gzip" else raw


def on_the_wire(port: int, path: str) -> dict:
    """The rating step's page and every script it loads, as a browser accepting brotli/gzip receives
    them from the server: bytes on the wire in all (headers included), and each part."""
    status, headers, raw, wire = _get_raw(port, path)
    parts = {"html": {"wire": wire, "encoding": headers.get("Content-Encoding", "identity"),
                      "cache": headers.get("Cache-Control", "")}}
    html = _decode(headers, raw).decode()
    for src in _SCRIPT_SRC.findall(html):
        st, h, r, w = _get_raw(port, src.replace("&amp;", "&"))
        parts[src.split("?")[0]] = {"wire": w, "encoding": h.get("Content-Encoding", "identity"),
                                    "cache": h.get("Cache-Control", "")}
    total = sum(p["wire"] for p in parts.values())
    return {"total_bytes": total, "total_kb": round(total / 1024, 2), "parts": parts,
            "goal_met": total <= 14 * 1024}


def rating_page(port: int, token: str) -> dict | None:
    """bench/rating_page.py's figures (height at 360x640, words, taps, bytes, slow-3G time, the
    current form beside the previous version, each served by its own process), when that script
    exists.  (`port` and `token` are unused: rating_page.py serves both versions itself.)"""
    script = ROOT / "bench" / "rating_page.py"
    if not script.exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "rating_page.json"
        out = subprocess.run([sys.executable, str(script), "--runs", "3", "--json", str(target)],
                             cwd=ROOT, capture_output=True, text=True, timeout=900)
        if out.returncode != 0:
            return {"error": (out.stderr or out.stdout)[-500:]}
        try:
            return json.loads(target.read_text())
        except (OSError, ValueError):
            return {"output": out.stdout[-2000:]}


# ------------------------------------------------------------------ main

def setup_database(url: str, counters: int):
    from survey_app import create_app
    from survey_app.extensions import db
    from survey_app.models import Counter, Unit
    from survey_app.services.instruments import latest, sync_instruments
    from survey_app.services.tokens import counter_token

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": SECRET, "TESTING": False})
    with app.app_context():
        db.create_all()
        sync_instruments(db.session)
        unit = Unit(code="BENCH", name_vi="UBND phường Bến Thành", name_en="Ben Thanh ward", kind="commune")
        db.session.add(unit)
        db.session.flush()
        cs = [Counter(code=f"BENCH-Q{i}", unit=unit, name_vi=f"Quầy {i}", name_en=f"Desk {i}")
              for i in range(1, counters + 1)]
        db.session.add_all(cs)
        db.session.commit()
        tokens = [counter_token(c.id, c.token_version) for c in cs]
        ids = (unit.id, cs[0].id, latest(db.session, "counter-quick").id)
        db.engine.dispose()
    return tokens, ids


def count_rows(url: str, table: str = "responses") -> int:
    import sqlalchemy as sa

    eng = sa.create_engine(url)
    with eng.connect() as conn:
        n = conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()
    eng.dispose()
    return int(n)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=15.0, help="length of each measured phase (max 60)")
    ap.add_argument("--concurrency", type=int, default=16, help="closed-loop clients")
    ap.add_argument("--rate", type=float, default=100.0, help="open-loop submissions per second")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers per server (2+)")
    ap.add_argument("--json", default=None, help="also write the figures as JSON here")
    ap.add_argument("--no-browser", action="store_true",
                    help="skip bench/rating_page.py (headless Chromium: height, words, taps, slow 3G)")
    ap.add_argument("--limiter", choices=("auto", "redis", "memory"), default="auto",
                    help="rate-limit storage of the SIPAS server (auto: Redis when it answers)")
    args = ap.parse_args(argv)
    args.seconds = min(max(args.seconds, 2.0), 60.0)
    args.workers = max(args.workers, 2)

    name = f"sipas_bench_{uuid.uuid4().hex[:8]}"
    url = PG_SERVER.rsplit("/", 1)[0] + "/" + name
    out_dir = ROOT / "bench" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    servers: list[Server] = []
    results: dict = {"database": "postgresql", "workers": args.workers, "threads_per_worker": 4,
                     "load_avg_start": round(os.getloadavg()[0], 1)}
    pg_admin(f'CREATE DATABASE "{name}"')
    try:
        tokens, (unit_id, counter_id, inst_id) = setup_database(url, 200)
        use_redis = redis_up() if args.limiter == "auto" else args.limiter == "redis"
        env = dict(os.environ, DATABASE_URL=url, SECRET_KEY=SECRET, PUBLIC_BASE_URL="http://127.0.0.1",
                   RATELIMIT_STORAGE_URI=(f"redis://{HOST}:6379/13" if use_redis else "memory://"),
                   SIPAS_RATELIMIT_KEY_PREFIX=name,
                   # one loopback IP plays every phone: raise the per-IP and per-counter ceilings
                   SIPAS_PUBLIC_LIMIT_IP="100000/minute", SIPAS_PUBLIC_LIMIT_IP_GET="100000/minute",
                   SIPAS_PUBLIC_LIMIT_COUNTER="100000/minute",
                   SIPAS_COLLECT_VOLUME_FLOOR="10000000",  # the hourly ceiling's window is still hit
                   SIPAS_PUBLIC_MIN_FILL_SECONDS="0",  # pre-fetched forms may be posted at once
                   BENCH_UNIT=str(unit_id), BENCH_COUNTER=str(counter_id), BENCH_INSTRUMENT=str(inst_id))
        env.pop("FLASK_DEBUG", None)
        sipas = Server("survey_app:create_app()", env, args.workers, out_dir / "gunicorn-sipas.log")
        base = Server("bench.collect:make_baseline()", env, args.workers, out_dir / "gunicorn-baseline.log")
        servers += [sipas, base]
        sipas.wait("/healthz")
        base.wait("/ok")
        results["rate_limit_storage"] = "redis" if use_redis else "memory"

        # 1. page weight: the rating step as a browser gets it from the server (compressed), with its scripts
        paths = [f"/c/{t}" for t in tokens]
        probe = Phone(sipas.port, paths[0])
        body = probe.fetch(http.client.HTTPConnection(HOST, sipas.port, timeout=10))
        css_inline = b"<style>" in body
        results["page"] = {"html_bytes": len(body), "gzip_bytes": len(gzip.compress(body, 6)),
                           "css_inline": css_inline,
                           "gzip_kb": round(len(gzip.compress(body, 6)) / 1024, 2), "goal_kb": 14}
        results["page"]["wire"] = {kind: on_the_wire(sipas.port, f"/{kind[0]}/{tokens[0]}")
                                   for kind in ("c (phone)", "k (kiosk)")}
        results["rating_page"] = None if args.no_browser else rating_page(sipas.port, tokens[0])

        # 2. forms for every submission we may send (bounded)
        n_closed = min(MAX_REQUESTS // 2, int(args.seconds * 500))
        n_open = int(args.rate * args.seconds)
        t0 = time.perf_counter()
        phones = prefetch(sipas.port, paths, n_closed + n_open + 200)
        results["prefetch"] = {"forms": len(phones), "seconds": round(time.perf_counter() - t0, 1)}
        rnd = random.Random(2025)
        jobs = [(p.path, p, p.body(rnd)) for p in phones]
        warm, closed_jobs, open_jobs = jobs[:200], jobs[200:200 + n_closed], jobs[200 + n_closed:]
        base_jobs = [("/b", p, b) for _, p, b in jobs]

        w1, _ = closed_loop(sipas.port, warm[:100], 4, 10)          # warm both servers up
        w2, _ = closed_loop(base.port, base_jobs[:100], 4, 10)
        w1.pop("lat"), w2.pop("lat")

        # 3. closed loop: the most each can do
        results["closed_loop"] = {"concurrency": args.concurrency}
        # interleaved slices: both servers see the same background load on this shared machine
        slices = 5
        base_iter, sipas_iter = iter(base_jobs[200:200 + n_closed]), iter(closed_jobs)
        parts_b, parts_s, sent = [], [], []
        for _ in range(slices):
            rb, _ = closed_loop(base.port, list(_take(base_iter, n_closed // slices)), args.concurrency,
                                args.seconds / slices)
            rs, sent_s = closed_loop(sipas.port, list(_take(sipas_iter, n_closed // slices)), args.concurrency,
                                     args.seconds / slices)
            parts_b.append(rb)
            parts_s.append(rs)
            sent += sent_s
        r_base, r_sipas = _merge(parts_b), _merge(parts_s)
        results["closed_loop"]["baseline"] = r_base
        results["closed_loop"]["sipas"] = r_sipas
        results["closed_loop"]["ratio"] = round(r_sipas["rps"] / r_base["rps"], 3) if r_base["rps"] else None

        # 4. open loop at the target rate
        results["open_loop"] = {"rate": args.rate}
        results["open_loop"]["sipas"] = open_loop(sipas.port, open_jobs, args.rate, args.seconds)
        results["open_loop"]["baseline"] = open_loop(
            base.port, base_jobs[200 + n_closed:200 + n_closed + n_open], args.rate, args.seconds)

        # 5. correctness: accepted = rows; re-sending changes nothing
        before = count_rows(url)
        accepted = w1["ok"] + w2["ok"] + r_base["ok"] + r_sipas["ok"] + results["open_loop"]["sipas"]["ok"] + \
            results["open_loop"]["baseline"]["ok"]
        conn = http.client.HTTPConnection(HOST, sipas.port, timeout=30)
        resent = [post(conn, sipas.port, path, phone, b)[0] for path, phone, b in sent[:50]]
        after = count_rows(url)
        results["correctness"] = {"rows": before, "accepted_303": accepted, "rows_equal_accepted": before == accepted,
                                  "resent_50_all_303": all(s == 303 for s in resent),
                                  "rows_added_by_resending": after - before}
    finally:
        for s in servers:
            s.stop()
        try:
            pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except Exception as exc:  # noqa: BLE001
            print(f"warning: could not drop {name}: {exc}", file=sys.stderr)
        if redis_up():
            try:
                import redis

                r = redis.Redis(host=HOST, port=6379, db=13)
                keys = r.keys(f"*{name}*")
                if keys:
                    r.delete(*keys)
            except Exception:  # noqa: BLE001
                pass

    results["load_avg_end"] = round(os.getloadavg()[0], 1)
    report(results, args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    return 0


def report(r: dict, args) -> None:
    p = r["page"]
    print(f"Form page: {p['html_bytes']:,} B HTML (CSS inline: {p['css_inline']}), "
          f"{p['gzip_bytes']:,} B gzip -6 = {p['gzip_kb']} KB")
    for kind, w in p["wire"].items():
        parts = ", ".join(f"{name} {x['wire']:,} B {x['encoding']}" for name, x in w["parts"].items())
        print(f"  rating step {kind} on the wire ({WIRE_ENCODINGS}), headers included: {w['total_bytes']:,} B = "
              f"{w['total_kb']} KB (goal <= 14 KB: {'met' if w['goal_met'] else 'MISSED'}): {parts}")
    if args.no_browser:
        print("bench/rating_page.py: skipped (--no-browser)")
    elif r.get("rating_page") is not None:
        print(f"bench/rating_page.py: {json.dumps(r['rating_page'], ensure_ascii=False)[:1500]}")
    else:
        print("bench/rating_page.py: not present in this tree (h-rating's page figures not run)")
    print(f"gunicorn: {r['workers']} workers x {r['threads_per_worker']} threads each; PostgreSQL; "
          f"rate-limit storage {r['rate_limit_storage']}; load average {r['load_avg_start']} -> {r['load_avg_end']}")
    c = r["closed_loop"]
    print(f"\nClosed loop, {c['concurrency']} clients, {args.seconds:.0f} s:")
    print(f"  {'':10} {'subm/s':>8} {'p50 ms':>8} {'p99 ms':>8}  codes")
    for k in ("baseline", "sipas"):
        x = c[k]
        print(f"  {k:10} {x['rps']:8.1f} {x['p50_ms']:8.1f} {x['p99_ms']:8.1f}  {x['codes']}")
    print(f"  SIPAS / baseline throughput: {c['ratio']:.0%} (goal >= 60%: {'met' if c['ratio'] >= 0.6 else 'MISSED'})")
    o = r["open_loop"]
    print(f"\nOpen loop at {o['rate']:.0f} submissions/s, {args.seconds:.0f} s:")
    for k in ("baseline", "sipas"):
        x = o[k]
        print(f"  {k:10} {x['rps']:8.1f} {x['p50_ms']:8.1f} {x['p99_ms']:8.1f}  max {x['max_ms']:.1f} ms  "
              f"{x['codes']}")
    print(f"  SIPAS p99 {o['sipas']['p99_ms']:.1f} ms (goal < 100 ms: "
          f"{'met' if o['sipas']['p99_ms'] < 100 else 'MISSED'})")
    cr = r["correctness"]
    print(f"\nCorrectness: rows {cr['rows']} = accepted {cr['accepted_303']}: {cr['rows_equal_accepted']}; "
          f"50 forms sent again -> all 303: {cr['resent_50_all_303']}, rows added: {cr['rows_added_by_resending']}")


if __name__ == "__main__":
    sys.exit(main())
