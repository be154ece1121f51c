"""Load, soak and step test of the whole stack: gunicorn (several workers) on
PostgreSQL, Redis for the rate-limit counters, a threaded HTTP client written
with the standard library.  Loopback only; every loop is bounded in count and
time and the run stops by itself.

    python bench/load.py                       # the issue's 5-minute soak at 100 flows/s (about 9 min in all)
    python bench/load.py --minutes 1 --rate 50 --steps 25,50,100   # a shorter soak, then a step test
    python bench/load.py --no-soak --steps 25,50,75,100            # the step test alone
    python bench/load.py --steps default       # the soak, then the full step test (5 ... 150/s)

A flow is one citizen: form GET + POST + thank-you GET.  The last line says
plainly: flows/s served of those offered, lost, doubled, 5xx, p99, load average.

What it does:
1. creates a throw-away database on 127.0.0.1:5432 (dropped at the end),
   `flask db upgrade`, `instruments load`, `demo seed --responses 20000`,
   and (by default) more counters, so that the offered rate per counter stays
   within what one service desk can see (`--counters`);
2. starts gunicorn (`--workers` x `--threads`, gthread) on a free local port;
3. drives a realistic mix at a fixed arrival rate (open loop): a citizen
   opens the QR form (GET), sends it (POST), lands on the thank-you page (GET);
   2 % press "Send" twice (the second POST must not make a second row);
   a share of the submissions come from kiosks (/k/...); signed-in staff
   open the dashboard and unit pages at `--staff-rate` pages/s;
4. soak: `--rate` submissions/s for `--minutes`; then the step test: each
   rate in `--steps` for `--step-seconds` until one is not served in full;
   the knee is the last rate served in full (>= 98 % of the offered
   submissions thanked within the step + 5 s, no 5xx, no time-out) with p95
   <= `--knee-p95` (2 s: a citizen on a weak network should not wait longer);
5. afterwards, from the database: rows stored == thank-you pages served (by
   idempotency key), no duplicates, and no 5xx seen by the client.  Prints
   throughput, p50/p95/p99 per request kind and the knee, and exits 1 when a
   promise of the soak was broken.

The rate limits are raised for the run (all traffic comes from 127.0.0.1,
where in the field every citizen has their own address); the limiter still
counts every POST in Redis.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import gzip
import http.client
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
DEFAULT_STEPS = "5,10,15,20,25,30,40,50,60,80,100,125,150"
HOST = "127.0.0.1"
TIMEOUT = 30.0
GRACE = 5.0  # seconds after a phase's last arrival in which its thank-yous still count as on time
ITEMS = ("overall", "access", "procedure", "staff", "result", "feedback")
STRATA = ("ho_tich", "dat_dai", "xay_dung", "kinh_doanh", "y_te", "giao_duc", "khac", "")  # counter-quick v2
AGES = ("under_18", "18_29", "30_44", "45_59", "60_plus", "")
COMMENTS = ("", "", "", "Cán bộ nhiệt tình, cảm ơn.", "Phải chờ hơi lâu.", "Thủ tục nhanh gọn.",
            "Nên có thêm ghế ngồi chờ.")
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_KEY = re.compile(r'name="k" value="([^"]+)"')


# ------------------------------------------------------------------ set-up

def _run(cmd, env, what, timeout=1800):
    t = time.perf_counter()
    res = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        sys.exit(f"{what} failed ({res.returncode}):\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    print(f"  {what}: {time.perf_counter() - t:.1f} s", flush=True)
    return res.stdout


def _psql_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class Stack:
    db_name: str
    env: dict
    port: int = 0
    proc: subprocess.Popen | None = None
    counters: list[str] = field(default_factory=list)   # counter tokens
    staff: list[tuple[str, str]] = field(default_factory=list)
    unit_codes: list[str] = field(default_factory=list)


def setup(args) -> Stack:
    name = f"sipas_load_{uuid.uuid4().hex[:8]}"
    _psql_admin(f'CREATE DATABASE "{name}"')
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": f"{PG_SERVER}/{name}",
        "SECRET_KEY": secrets.token_hex(32),
        "RATELIMIT_STORAGE_URI": f"redis://{HOST}:6379/{args.redis_db}",
        "SIPAS_PUBLIC_LIMIT_IP": "1000000/minute",
        "SIPAS_PUBLIC_LIMIT_IP_GET": "1000000/minute",
        "SIPAS_PUBLIC_LIMIT_COUNTER": "1000000/minute",
        "SIPAS_COLLECT_VOLUME_FLOOR": "10000000",  # the hourly ceiling's window is still hit
        "SIPAS_PUBLIC_MIN_FILL_SECONDS": "0",  # forms are posted right after they are fetched
        "SIPAS_PUBLIC_LIMIT_DEVICE": "1000000/minute",
        "SIPAS_STAFF_LOGIN_RATE": "1000 per minute",
        "PYTHONUNBUFFERED": "1",
    })
    stack = Stack(name, env)
    flask = [sys.executable, "-m", "flask", "--app", "survey_app"]
    print(f"database {name} on 127.0.0.1:5432", flush=True)
    _run(flask + ["db", "upgrade"], env, "flask db upgrade")
    _run(flask + ["instruments", "load"], env, "flask instruments load")
    # `demo seed` writes instance/demo_credentials.txt: keep a developer's own file.
    creds = ROOT / "instance" / "demo_credentials.txt"
    saved = creds.read_bytes() if creds.exists() else None
    try:
        _run(flask + ["demo", "seed", "--responses", str(args.seed_responses), "--password", "load-test-password"],
             env, f"flask demo seed --responses {args.seed_responses}")
    finally:
        if saved is not None:
            creds.write_bytes(saved)
        elif creds.exists():
            creds.unlink()
    import psycopg

    with psycopg.connect(env["DATABASE_URL"]) as conn:
        units = [r[0] for r in conn.execute(
            "SELECT code FROM units WHERE kind NOT IN ('province') AND valid_to IS NULL ORDER BY code")]
        have = conn.execute("SELECT count(*) FROM counters WHERE active").fetchone()[0]
    extra = max(0, args.counters - have)
    if extra:
        path = Path(f"/tmp/{name}-counters.csv")
        with path.open("w", encoding="utf-8") as fh:
            fh.write("code,name_vi,name_en,kind,parent_code,valid_from,valid_to,successor_code\n")
            for i in range(extra):
                fh.write(f"LOAD-Q{i:04d},Quầy tải {i},Load desk {i},counter,{units[i % len(units)]},,,\n")
        _run(flask + ["units", "import", str(path)], env, f"{extra} more counters (flask units import)")
        path.unlink()
    _run(flask + ["users", "create", "--username", "load-analyst", "--password", "load-test-password",
                  "--role", "analyst", "--unit", _root_code(env)], env, "staff user")
    out = _run(flask + ["counters", "list"], env, "flask counters list")
    stack.counters = [urlsplit(row.split(",")[-1]).path.split("/")[-1] for row in out.strip().splitlines()[1:]]
    stack.staff = [("load-analyst", "load-test-password")]
    stack.unit_codes = units[:40]
    print(f"  {len(stack.counters)} active counters", flush=True)
    return stack


def _root_code(env) -> str:
    import psycopg

    with psycopg.connect(env["DATABASE_URL"]) as conn:
        return conn.execute("SELECT code FROM units WHERE parent_id IS NULL ORDER BY id LIMIT 1").fetchone()[0]


def start_server(stack: Stack, args) -> None:
    stack.port = free_port()
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
    cmd = [gunicorn, "-w", str(args.workers), "--threads", str(args.threads), "-k", "gthread",
           "-b", f"{HOST}:{stack.port}", "--timeout", "60", "--graceful-timeout", "10",
           "--access-logfile", "/dev/null", "--error-logfile", str(Path(f"/tmp/{stack.db_name}-gunicorn.log")),
           "survey_app:create_app()"]
    stack.proc = subprocess.Popen(cmd, env=stack.env, cwd=ROOT, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            status, _, _ = request(stack.port, "GET", "/healthz", {})
            if status == 200:
                print(f"gunicorn: {args.workers} workers x {args.threads} threads on {HOST}:{stack.port}",
                      flush=True)
                return
        except OSError:
            pass
        if stack.proc.poll() is not None:
            sys.exit("gunicorn exited at start")
        time.sleep(0.5)
    sys.exit("gunicorn did not answer /healthz in 120 s")


def teardown(stack: Stack) -> None:
    if stack.proc and stack.proc.poll() is None:
        os.killpg(stack.proc.pid, signal.SIGTERM)
        try:
            stack.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(stack.proc.pid, signal.SIGKILL)
    try:
        _psql_admin(f'DROP DATABASE IF EXISTS "{stack.db_name}" WITH (FORCE)')
    except Exception as exc:  # noqa: BLE001
        print(f"could not drop {stack.db_name}: {exc}", file=sys.stderr)


# ------------------------------------------------------------------ the HTTP client

def request(port: int, method: str, path: str, cookies: dict, body: dict | None = None):
    """(status, headers, text) of one request on a new loopback connection; cookies updated."""
    conn = http.client.HTTPConnection(HOST, port, timeout=TIMEOUT)
    try:
        # a browser's Accept-Encoding: pages come compressed, as phones get them (the server pays for it)
        headers = {"Accept-Language": "vi", "User-Agent": "sipas-bench", "Accept-Encoding": "gzip"}
        if cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        data = None
        if body is not None:
            data = urlencode(body).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        if resp.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        text = raw.decode("utf-8", "replace")
        for value in resp.headers.get_all("Set-Cookie") or []:
            c = SimpleCookie()
            c.load(value)
            for k, morsel in c.items():
                cookies[k] = morsel.value
        return resp.status, resp.headers, text
    finally:
        conn.close()


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.lat: dict[str, list[float]] = {}
        self.status: dict[int, int] = {}
        self.errors: list[str] = []
        self.thanked: set[str] = set()
        self.thank_times: list[float] = []   # perf_counter() when each thank-you page arrived
        self.t0 = time.perf_counter()
        self.submissions = 0
        self.lateness: list[float] = []

    def add(self, kind: str, seconds: float, status: int):
        with self.lock:
            self.lat.setdefault(kind, []).append(seconds)
            self.status[status] = self.status.get(status, 0) + 1

    def error(self, msg: str):
        with self.lock:
            if len(self.errors) < 1000:
                self.errors.append(msg)


def timed(rec: Recorder, kind: str, port: int, method: str, path: str, cookies: dict, body=None):
    t = time.perf_counter()
    try:
        status, headers, text = request(port, method, path, cookies, body)
    except OSError as exc:
        rec.add(kind, time.perf_counter() - t, 0)
        rec.error(f"{kind}: {type(exc).__name__}: {exc}")
        return 0, {}, ""
    rec.add(kind, time.perf_counter() - t, status)
    if status >= 500:
        rec.error(f"{kind}: HTTP {status} on {method} {path}")
    return status, headers, text


def answers(rng: random.Random) -> dict:
    base = rng.choice((5, 5, 4, 4, 4, 3, 2))
    out = {}
    for k in ITEMS:
        r = rng.random()
        out[k] = "na" if r < 0.05 else str(max(1, min(5, base + rng.choice((-1, 0, 0, 0, 1)))))
    out["stratum"] = rng.choice(STRATA)
    out["age_group"] = rng.choice(AGES)
    out["gender"] = rng.choice(("female", "male", ""))
    out["comment"] = rng.choice(COMMENTS)
    return out


def citizen(stack: Stack, rec: Recorder, rng: random.Random, kiosk: bool, double: bool) -> None:
    token = rng.choice(stack.counters)
    base = f"/{'k' if kiosk else 'c'}/{token}"
    cookies: dict = {}
    status, _, html = timed(rec, "kiosk GET" if kiosk else "form GET", stack.port, "GET", base, cookies)
    if status != 200:
        if status and status < 500:
            rec.error(f"form GET {status}")
        return
    m1, m2 = _CSRF.search(html), _KEY.search(html)
    if not (m1 and m2):
        rec.error("form without csrf/k")
        return
    body = {"csrf_token": m1.group(1), "k": m2.group(1), "website": ""}
    body.update(answers(rng))
    thanked = False
    for _ in range(2 if double else 1):
        status, headers, _ = timed(rec, "kiosk POST" if kiosk else "form POST", stack.port, "POST", base,
                                   cookies, body)
        if status == 303 and "/thanks" in (headers.get("Location") or ""):
            thanked = True
        elif status and status < 500:
            rec.error(f"POST {status}")
    if thanked:
        status, _, _ = timed(rec, "thanks GET", stack.port, "GET", f"{base}/thanks", cookies)
        if status == 200:
            with rec.lock:
                rec.thanked.add(body["k"])
                rec.thank_times.append(time.perf_counter())
    with rec.lock:
        rec.submissions += 1


def staff_session(stack: Stack) -> dict:
    cookies: dict = {}
    _, _, html = request(stack.port, "GET", "/staff/login", cookies)
    token = _CSRF.search(html).group(1)
    user, pw = stack.staff[0]
    status, _, _ = request(stack.port, "POST", "/staff/login", cookies,
                           {"username": user, "password": pw, "csrf_token": token, "next": "/staff/"})
    if status != 302:
        sys.exit(f"staff login failed: HTTP {status}")
    return cookies


def staff_view(stack: Stack, rec: Recorder, rng: random.Random, cookies: dict) -> None:
    path = "/staff/" if rng.random() < 0.5 else f"/staff/units/{rng.choice(stack.unit_codes)}"
    status, _, _ = timed(rec, "staff GET", stack.port, "GET", path, dict(cookies))
    if status not in (200, 404):
        rec.error(f"staff {status} {path}")


# ------------------------------------------------------------------ calibration

def cpu_per_submission(stack: Stack, n: int = 200) -> float:
    """CPU milliseconds the application spends on one submission (form GET +
    POST + thank-you GET), measured in this process with Flask's test client
    on the same database and Redis: the ceiling is cores x 1000 / this."""
    os.environ.update({k: v for k, v in stack.env.items() if k.startswith("SIPAS_") or k in (
        "DATABASE_URL", "SECRET_KEY", "RATELIMIT_STORAGE_URI")})
    sys.path.insert(0, str(ROOT))
    from survey_app import create_app

    app = create_app()
    client_rng = random.Random(7)

    def one(token):
        c = app.test_client()
        html = c.get(f"/c/{token}").get_data(as_text=True)
        body = {"csrf_token": _CSRF.search(html).group(1), "k": _KEY.search(html).group(1), "website": ""}
        body.update(answers(client_rng))
        r = c.post(f"/c/{token}", data=body)
        if r.status_code != 303:
            sys.exit(f"calibration: the form POST answered {r.status_code}, not 303: "
                     f"{r.get_data(as_text=True)[:300]}")
        c.get(r.headers["Location"])

    for i in range(20):
        one(stack.counters[i % len(stack.counters)])
    t = time.process_time()
    for i in range(n):
        one(stack.counters[(i * 7) % len(stack.counters)])
    ms = (time.process_time() - t) / n * 1e3
    from survey_app.extensions import db

    with app.app_context():
        db.engine.dispose()
    cores = os.cpu_count() or 1
    print(f"calibration: {ms:.1f} ms of application CPU per submission (3 requests, in-process); "
          f"ceiling on {cores} cores with nothing else running: {cores * 1000 / ms:.0f} submissions/s",
          flush=True)
    return ms


# ------------------------------------------------------------------ a phase at a fixed rate

def phase(stack: Stack, rate: float, seconds: float, args, label: str, staff_cookies: dict) -> Recorder:
    """Open loop: submission i starts at t0 + i / rate, staff views at their own rate."""
    rec = Recorder()
    rng = random.Random(hash((label, rate)) & 0xFFFFFFFF)
    n = int(rate * seconds)
    n_staff = int(args.staff_rate * seconds)
    events = [(i / rate, "citizen") for i in range(n)] + [((j + 0.5) / args.staff_rate, "staff")
                                                          for j in range(n_staff)]
    events.sort()
    pool = cf.ThreadPoolExecutor(max_workers=args.client_threads)
    t0 = rec.t0 = time.perf_counter()
    futures = []
    for at, kind in events:
        delay = t0 + at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        seed = rng.getrandbits(32)
        if kind == "citizen":
            kiosk = rng.random() < args.kiosk_share
            double = rng.random() < 0.02
            futures.append(pool.submit(citizen, stack, rec, random.Random(seed), kiosk, double))
        else:
            futures.append(pool.submit(staff_view, stack, rec, random.Random(seed), staff_cookies))
    offered_end = time.perf_counter() - t0
    # Bounded drain: 60 s for the backlog, then submissions not yet started are
    # dropped (counted as unfinished) and the running ones end (request timeouts).
    done, pending = cf.wait(futures, timeout=60)
    not_started = sum(1 for f in pending if f.cancel())
    pool.shutdown(wait=True, cancel_futures=True)
    rec.elapsed = time.perf_counter() - t0
    rec.offered_seconds = offered_end
    rec.unfinished = not_started
    rec.offered = n
    return rec


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def report(rec: Recorder, label: str) -> dict:
    print(f"\n== {label}: offered {rec.offered} submissions in {rec.offered_seconds:.0f} s, "
          f"all done after {rec.elapsed:.0f} s", flush=True)
    print(f"{'request':<12} {'count':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    all_lat = []
    for kind, lat in sorted(rec.lat.items()):
        all_lat += lat
        print(f"{kind:<12} {len(lat):>7} {pct(lat, 50) * 1e3:>8.0f} {pct(lat, 95) * 1e3:>8.0f} "
              f"{pct(lat, 99) * 1e3:>8.0f} {max(lat) * 1e3:>8.0f}")
    fivexx = sum(v for k, v in rec.status.items() if k >= 500)
    conn_err = rec.status.get(0, 0)
    thanks = len(rec.thanked)
    # Served at the offered pace: thank-you pages that arrived within the
    # phase (+ GRACE s), not during the drain after it.
    in_time = sum(1 for t in rec.thank_times if t - rec.t0 <= rec.offered_seconds + GRACE)
    summary = {
        "label": label, "offered": rec.offered, "thanked": thanks, "thanked_in_time": in_time,
        "throughput": in_time / rec.offered_seconds if rec.offered_seconds else 0.0,
        "requests_per_s": len(all_lat) / rec.elapsed if rec.elapsed else 0.0,
        "p50": pct(all_lat, 50), "p95": pct(all_lat, 95), "p99": pct(all_lat, 99),
        "post_p95": pct(rec.lat.get("form POST", []) + rec.lat.get("kiosk POST", []), 95),
        "5xx": fivexx, "conn_errors": conn_err, "unfinished": rec.unfinished,
        "status": dict(sorted(rec.status.items())),
    }
    print(f"thank-you pages {thanks}, {in_time} of them within the phase + {GRACE:g} s "
          f"({summary['throughput']:.1f}/s), {summary['requests_per_s']:.0f} requests/s, "
          f"all requests p50/p95/p99 = {summary['p50'] * 1e3:.0f}/{summary['p95'] * 1e3:.0f}/"
          f"{summary['p99'] * 1e3:.0f} ms; status {summary['status']}; unfinished {rec.unfinished}", flush=True)
    if rec.errors:
        print(f"first errors: {rec.errors[:5]}", flush=True)
    return summary


def verify_database(stack: Stack, rec: Recorder, since_iso: str) -> dict:
    """Rows stored by this phase vs thank-you pages served, by idempotency key."""
    import psycopg

    with psycopg.connect(stack.env["DATABASE_URL"]) as conn:
        rows = conn.execute("SELECT idempotency_key FROM responses WHERE received_at >= %s "
                            "AND idempotency_key IS NOT NULL", (since_iso,)).fetchall()
        dup = conn.execute("SELECT count(*) FROM (SELECT idempotency_key FROM responses WHERE idempotency_key "
                           "IS NOT NULL GROUP BY 1 HAVING count(*) > 1) d").fetchone()[0]
        orphans = conn.execute("SELECT count(*) FROM responses r WHERE received_at >= %s AND NOT EXISTS "
                               "(SELECT 1 FROM answers a WHERE a.response_id = r.id)", (since_iso,)).fetchone()[0]
    stored = [r[0] for r in rows]
    stored_set = set(stored)
    lost = rec.thanked - stored_set
    unacknowledged = stored_set - rec.thanked
    out = {"stored": len(stored), "thanked": len(rec.thanked), "lost": len(lost), "duplicates": dup,
           "stored_without_thanks": len(unacknowledged), "without_answers": orphans}
    print(f"database: stored {out['stored']}, thank-you pages {out['thanked']}, lost {out['lost']}, "
          f"duplicate keys {dup}, stored but not acknowledged {out['stored_without_thanks']}, "
          f"responses without answers {orphans}", flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=5.0, help="soak length (default 5)")
    ap.add_argument("--rate", type=float, default=100.0, help="soak submissions per second (default 100)")
    ap.add_argument("--steps", default=None,
                    help="also run a step test at these rates (submissions/s, comma-separated, or 'default' for "
                         f"{DEFAULT_STEPS}); stops at the first rate not served in full")
    ap.add_argument("--step-seconds", type=float, default=20.0)
    ap.add_argument("--knee-p95", type=float, default=2.0,
                    help="latency bound of the knee: p95 of all requests in seconds (default 2)")
    ap.add_argument("--no-steps", action="store_true", help="(the default now) no step test")
    ap.add_argument("--no-soak", action="store_true")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--client-threads", type=int, default=128)
    ap.add_argument("--kiosk-share", type=float, default=0.2)
    ap.add_argument("--staff-rate", type=float, default=0.5, help="staff page views per second")
    ap.add_argument("--seed-responses", type=int, default=20000)
    ap.add_argument("--counters", type=int, default=600, help="active counters in total (demo has ~60)")
    ap.add_argument("--redis-db", type=int, default=11)
    ap.add_argument("--json", help="write the figures to this file too")
    args = ap.parse_args(argv)
    if args.minutes <= 0 or args.minutes > 60 or args.rate <= 0 or args.rate > 2000:
        ap.error("--minutes in (0, 60], --rate in (0, 2000]")

    if args.steps == "default":
        args.steps = DEFAULT_STEPS
    if args.no_steps:
        args.steps = None
    started = time.time()
    load_start = os.getloadavg()
    stack = setup(args)
    results: dict = {"args": vars(args)}
    ok = True
    try:
        results["cpu_ms_per_submission"] = cpu_per_submission(stack)
        start_server(stack, args)
        staff_cookies = staff_session(stack)
        print("warm-up: 10 s at 10/s", flush=True)
        phase(stack, 10, 10, args, "warm-up", staff_cookies)
        import psycopg

        def db_now():
            with psycopg.connect(stack.env["DATABASE_URL"]) as conn:
                return conn.execute("SELECT now()").fetchone()[0].isoformat()

        if not args.no_soak:
            since = db_now()
            rec = phase(stack, args.rate, args.minutes * 60, args, "soak", staff_cookies)
            s = report(rec, f"soak: {args.rate:g} submissions/s for {args.minutes:g} min")
            s["db"] = verify_database(stack, rec, since)
            results["soak"] = s
            # The promise: every thank-you is a stored row, no row twice, no 5xx.
            promise = (s["db"]["lost"] == 0 and s["db"]["duplicates"] == 0 and s["5xx"] == 0
                       and s["db"]["without_answers"] == 0)
            met = (promise and s["thanked_in_time"] >= 0.98 * s["offered"] and s["conn_errors"] == 0
                   and s["unfinished"] == 0)
            print(f"SOAK: zero lost {s['db']['lost'] == 0}, zero doubled {s['db']['duplicates'] == 0}, "
                  f"zero 5xx {s['5xx'] == 0}; rate met {met} "
                  f"({s['throughput']:.1f}/s served of {args.rate:g}/s offered; client time-outs "
                  f"{s['conn_errors']}, never started {s['unfinished']})", flush=True)
            results["soak_rate_met"] = met
            ok = ok and promise
        if args.steps:
            knee = last = None
            steps = []
            for r in [float(x) for x in args.steps.split(",") if x.strip()]:
                since = db_now()
                rec = phase(stack, r, args.step_seconds, args, f"step {r:g}/s", staff_cookies)
                s = report(rec, f"step {r:g} submissions/s for {args.step_seconds:g} s")
                s["db"] = verify_database(stack, rec, since)
                steps.append(s)
                served = (s["thanked_in_time"] >= 0.98 * s["offered"] and s["5xx"] == 0
                          and s["conn_errors"] == 0 and s["unfinished"] == 0)
                ok = ok and s["db"]["lost"] == 0 and s["db"]["duplicates"] == 0
                if served and s["p95"] <= args.knee_p95 and (knee is None or knee == last):
                    knee = r
                last = r
                if not served:
                    print(f"step {r:g}/s not served in full: stopping the step test", flush=True)
                    break
            results["steps"] = steps
            results["knee"] = knee
            print("\nstep test: " + ", ".join(
                f"{s['label']}: {s['throughput']:.0f}/s p95 {s['p95'] * 1e3:.0f} ms" for s in steps), flush=True)
            print(f"KNEE: {knee if knee is not None else 'below the first step'} submissions/s "
                  f"(the last of the consecutive rates served in full: >= 98 % of the offered submissions "
                  f"thanked within the step + {GRACE:g} s, no 5xx, no time-out, p95 of all requests "
                  f"<= {args.knee_p95:g} s)", flush=True)
    finally:
        teardown(stack)
    results["seconds"] = time.time() - started
    results["load_average_start"], results["load_average_end"] = load_start, os.getloadavg()
    load = f"load average {load_start[0]:.1f} -> {os.getloadavg()[0]:.1f} (1 min), {os.cpu_count()} cores"
    if "soak" in results:
        s = results["soak"]
        print(f"\nRESULT soak {args.minutes:g} min at {args.rate:g} flows/s (GET + POST + thanks): served "
              f"{s['throughput']:.1f} flows/s (goal {args.rate:g}: {'met' if results['soak_rate_met'] else 'MISSED'}); "
              f"lost {s['db']['lost']}, doubled {s['db']['duplicates']}, 5xx {s['5xx']} "
              f"(goal 0/0/0: {'met' if ok else 'MISSED'}); p99 all requests {s['p99'] * 1e3:.0f} ms, "
              f"POST p95 {s['post_p95'] * 1e3:.0f} ms; application CPU "
              f"{results['cpu_ms_per_submission']:.1f} ms per flow; {load}", flush=True)
    else:
        print(f"\n{load}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    print(f"\ntotal {results['seconds'] / 60:.1f} min; {'OK' if ok else 'PROMISE BROKEN'}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
