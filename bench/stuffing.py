"""Ballot stuffing at the citizen form, measured (issue 11): stored / flagged / refused.

    .venv/bin/python bench/stuffing.py [--scale 30] [--attack-minutes 5] [--crowd 300]

Loopback only and bounded: about 3 to 4 minutes of wall time (one simulated hour for
the honest crowd, then a few simulated minutes per attack), SQLite in a
temporary directory, nothing left behind.

What is real: the app (`create_app` with the defaults of config.py: rate
limits, hourly ceiling, quality flags, device tokens, CSRF), served by the
werkzeug threaded server in a child process on a free port, and HTTP
requests from this process (http.client; every client is the one loopback IP,
so the honest crowd is "300 people behind one NAT").

What is simulated, and how:
- **Time is compressed.**  The child process replaces `time.time` and
  `survey_app.models.utcnow` (everywhere it was imported) before serving, so
  its clock runs `--scale` times faster than the wall clock (default 30: one
  simulated hour in 120 s).  The rate limiter's windows (memory storage), the
  device-token and CSRF timestamps and `submitted_at` (hence every quality
  flag's window) all read that clock; nothing else is changed.  Rates below
  are per simulated minute; the scripts pace themselves on the simulated clock.
- **The province** is one province with seven communes, each with one counter;
  six communes have a volume row of 21,000 dossiers in the last 30 days (a
  busy centre: ~120 an hour on average, so the expected busiest hour E is
  3 × 120 = 358 and the hourly ceiling 2E = 716); one has no volume data (E is
  the floor, 60; ceiling 120).  Each scenario has its own
  counter (limits are per counter, so scenarios do not share windows), and the
  scenarios run one after another (they do share the one loopback IP).
- **The honest crowd**: `--crowd` people arrive at random (uniform) over one
  simulated hour at one counter; each opens the form (a new phone: no cookie),
  takes 30–150 simulated seconds to answer, and sends it; answers drawn from a
  skewed distribution (mostly 4–5, some "no opinion", 10% comment).
- **Scripts** (each for `--attack-minutes` simulated minutes):
  one device at 100/min (one real token, a new idempotency key each time);
  rotating invented cookies at 60/min; rotating fresh server-issued tokens at
  60/min, posted at once after the GET; the same but waiting 4 s (simulated)
  after each GET, a script that knows the minimum fill time (at a busy counter,
  and at the counter without volume data); HEAD with a form body at 100/min.
  Scripted answers are random (never identical on purpose).

After the run `flask responses flag` (the batch rules) is run on the database
and its counts are printed too.  "refused" = 429 (rate limit, hourly ceiling,
or a fresh token posted at once); other statuses are listed.  The honest
crowd is the baseline measured in the same run.
"""
from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import secrets
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter as Tally
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # before bench/ (its analysis.py is not the package)
HOST = "127.0.0.1"
SECRET = "bench-stuffing-" + "x" * 40
ITEMS = ("overall", "access", "procedure", "staff", "result", "feedback")
SCENARIOS = ("honest", "one_device", "invented", "fresh_at_once", "fresh_waiting", "quiet", "head")
VOLUME = 21000


# ------------------------------------------------------------------ the server (child process)

def serve(port: int, url: str, scale: float) -> None:
    """Run the app with a clock `scale` times faster than the wall clock."""
    import datetime as dt

    real_time, t0 = time.time, time.time()

    def fast_time() -> float:
        return t0 + (real_time() - t0) * scale

    def fast_utcnow() -> dt.datetime:
        return dt.datetime.fromtimestamp(fast_time(), dt.timezone.utc)

    time.time = fast_time
    from werkzeug.serving import make_server

    from survey_app import create_app, models

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": SECRET, "PUBLIC_BASE_URL": f"http://{HOST}",
                      "RATELIMIT_STORAGE_URI": "memory://"})
    original = models.utcnow
    for mod in list(sys.modules.values()):
        if getattr(mod, "utcnow", None) is original:
            mod.utcnow = fast_utcnow
    print("ready", flush=True)
    make_server(HOST, port, app, threaded=True).serve_forever()


# ------------------------------------------------------------------ setup

def setup(url: str) -> tuple[dict[str, str], dict[str, int]]:
    """The province: one commune + counter per scenario, each with a busy volume; token per scenario."""
    import datetime as dt

    from survey_app import create_app
    from survey_app.extensions import db
    from survey_app.models import Counter, Unit, Volume
    from survey_app.services.instruments import sync_instruments
    from survey_app.services.tokens import counter_token

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": SECRET})
    today = dt.date.today()
    with app.app_context():
        db.create_all()
        sync_instruments(db.session)
        province = Unit(code="TINH", name_vi="Tỉnh Thử nghiệm", name_en="Test province", kind="province")
        db.session.add(province)
        db.session.flush()
        counters = {}
        for i, name in enumerate(SCENARIOS, 1):
            unit = Unit(code=f"XA-{i}", name_vi=f"UBND xã {i}", name_en=f"Commune {i}", kind="commune",
                        parent_id=province.id)
            db.session.add(unit)
            db.session.flush()
            if name != "quiet":
                db.session.add(Volume(unit_id=unit.id, period_start=today - dt.timedelta(days=29),
                                      period_end=today, stratum="_all", transactions=VOLUME))
            counters[name] = Counter(code=f"XA-{i}-Q1", unit=unit, name_vi="Quầy 1", name_en="Desk 1")
            db.session.add(counters[name])
        db.session.commit()
        tokens = {name: counter_token(c.id, c.token_version) for name, c in counters.items()}
        ids = {name: c.id for name, c in counters.items()}
        db.engine.dispose()
    return tokens, ids


# ------------------------------------------------------------------ clients

_COOKIE = re.compile(r"^([^=;]+)=([^;]*)")
_HIDDEN = {name: re.compile(rf'name="{name}" value="([^"]*)"') for name in ("csrf_token", "k")}


class Phone:
    """One browser: its cookies and the hidden fields of the last form it saw."""

    def __init__(self, port: int):
        self.port, self.cookies, self.hidden = port, {}, {}

    def request(self, method: str, path: str, body: str | None = None) -> tuple[int, str]:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=60)
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            text = resp.read().decode("utf-8", "replace")
            for k, v in resp.getheaders():
                if k.lower() == "set-cookie":
                    m = _COOKIE.match(v)
                    if m:
                        self.cookies[m.group(1)] = m.group(2)
            return resp.status, text
        finally:
            conn.close()

    def open(self, path: str) -> int:
        status, html = self.request("GET", path)
        if status == 200:
            self.hidden = {name: rx.search(html).group(1) for name, rx in _HIDDEN.items()}
        return status

    def send(self, path: str, answers: dict, method: str = "POST", new_key: bool = False) -> int:
        fields = dict(answers, **self.hidden)
        if new_key:
            fields["k"] = uuid.uuid4().hex
        fields["k"] = fields.pop("k")  # the idempotency key goes last (the page's field order)
        return self.request(method, path, urlencode(fields))[0]


def honest_answers(rnd: random.Random) -> dict:
    out = {k: rnd.choices(["5", "4", "3", "2", "1", "na"], [45, 35, 10, 5, 3, 2])[0] for k in ITEMS}
    out["overall"] = rnd.choices(["5", "4", "3", "2", "1"], [45, 37, 10, 5, 3])[0]
    out["stratum"] = rnd.choice(["ho_tich", "dat_dai", "tu_phap", "khac"])
    out["age_group"] = rnd.choice(["18_29", "30_44", "45_59", "60_plus", ""])
    out["gender"] = rnd.choice(["female", "male", ""])
    out["comment"] = f"Ý kiến {rnd.randrange(10 ** 6)}" if rnd.random() < 0.1 else ""
    return out


def script_answers(rnd: random.Random) -> dict:
    out = {k: rnd.choice("12345") for k in ITEMS}
    out["stratum"] = rnd.choice(["ho_tich", "dat_dai", "tu_phap", "khac"])
    return out


# ------------------------------------------------------------------ scenarios

class Clock:
    """The child's simulated clock, read from here (same start, same scale)."""

    def __init__(self, scale: float):
        self.scale, self.start = scale, time.monotonic()

    def sleep(self, simulated_seconds: float) -> None:
        time.sleep(max(0.0, simulated_seconds / self.scale))

    def now(self) -> float:
        return (time.monotonic() - self.start) * self.scale


def paced(clock: Clock, rate_per_min: float, minutes: float, attempt, threads: int = 8) -> Tally:
    """Run attempt(i) at `rate_per_min` (simulated) for `minutes`, from a few threads."""
    n = int(rate_per_min * minutes)
    statuses: Tally = Tally()
    lock = threading.Lock()
    begin = clock.now()
    next_i = iter(range(n))

    def worker():
        rnd = random.Random(threading.get_ident())
        while True:
            with lock:
                i = next(next_i, None)
            if i is None:
                return
            wait = begin + i * 60.0 / rate_per_min - clock.now()
            clock.sleep(wait)
            status = attempt(i, rnd)
            with lock:
                statuses[status] += 1

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    statuses["_simulated_minutes"] = round((clock.now() - begin) / 60, 1)
    return statuses


def run_honest(port, path, clock: Clock, people: int, seed: int = 7) -> Tally:
    rnd = random.Random(seed)
    arrivals = sorted(rnd.uniform(0, 3600) for _ in range(people))
    fills = [rnd.uniform(30, 150) for _ in range(people)]
    answers = [honest_answers(rnd) for _ in range(people)]
    statuses: Tally = Tally()
    lock = threading.Lock()
    begin = clock.now()

    def person(i):
        phone = Phone(port)
        phone.open(path)
        clock.sleep(fills[i])
        status = phone.send(path, answers[i])
        with lock:
            statuses[status] += 1

    pool = []
    for i, at in enumerate(arrivals):
        clock.sleep(begin + at - clock.now())
        t = threading.Thread(target=person, args=(i,))
        t.start()
        pool.append(t)
    for t in pool:
        t.join()
    statuses["_simulated_minutes"] = round((clock.now() - begin) / 60, 1)
    return statuses


def run_attacks(port, paths, clock: Clock, minutes: float) -> dict[str, Tally]:
    out = {}
    one = Phone(port)
    one.open(paths["one_device"])
    clock.sleep(5)  # past the minimum fill time once; then as fast as it likes
    out["one_device"] = paced(clock, 100, minutes,
                              lambda i, rnd: one.send(paths["one_device"], script_answers(rnd), new_key=True))

    inv = Phone(port)
    inv.open(paths["invented"])

    def invented(i, rnd):
        phone = Phone(port)
        phone.hidden, phone.cookies = inv.hidden, dict(inv.cookies, sipas_dev=secrets.token_urlsafe(16))
        return phone.send(paths["invented"], script_answers(rnd), new_key=True)

    out["invented"] = paced(clock, 60, minutes, invented)

    def fresh(path, wait):
        def attempt(i, rnd):
            phone = Phone(port)
            phone.open(path)
            clock.sleep(wait)
            return phone.send(path, script_answers(rnd))
        return attempt

    out["fresh_at_once"] = paced(clock, 60, minutes, fresh(paths["fresh_at_once"], 0))
    out["fresh_waiting"] = paced(clock, 60, minutes, fresh(paths["fresh_waiting"], 4), threads=16)
    out["quiet"] = paced(clock, 60, minutes, fresh(paths["quiet"], 4), threads=16)
    head = Phone(port)
    head.open(paths["head"])
    out["head"] = paced(clock, 100, minutes,
                        lambda i, rnd: head.send(paths["head"], script_answers(rnd), method="HEAD", new_key=True))
    return out


# ------------------------------------------------------------------ counting

def stored(db_file: str, counter_id: int) -> dict:
    con = sqlite3.connect(db_file)
    try:
        rows = con.execute("SELECT flags FROM responses WHERE counter_id = ?", (counter_id,)).fetchall()
    finally:
        con.close()
    flags = Tally(f for (fl,) in rows for f in (fl or "").split(";") if f)
    return {"stored": len(rows), "flagged": sum(1 for (fl,) in rows if fl), "by_flag": dict(flags)}


def batch_scan(env: dict) -> str:
    out = subprocess.run([sys.executable, "-m", "flask", "--app", "survey_app:create_app()", "responses", "flag"],
                         env=env, capture_output=True, text=True, cwd=ROOT, timeout=300)
    return (out.stdout + out.stderr).strip().splitlines()[-1] if (out.stdout + out.stderr).strip() else ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=30.0, help="simulated seconds per wall second")
    ap.add_argument("--attack-minutes", type=float, default=3.0, help="simulated minutes per script")
    ap.add_argument("--crowd", type=int, default=300, help="honest people in the simulated hour")
    ap.add_argument("--serve", nargs=3, metavar=("PORT", "URL", "SCALE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        serve(int(args.serve[0]), args.serve[1], float(args.serve[2]))
        return 0

    tmp = tempfile.mkdtemp(prefix="sipas-stuffing-")
    db_file = os.path.join(tmp, "bench.sqlite3")
    url = f"sqlite:///{db_file}"
    tokens, ids = setup(url)
    paths = {name: f"/c/{tok}" for name, tok in tokens.items()}
    port = free_port()
    env = dict(os.environ, SECRET_KEY=SECRET, DATABASE_URL=url, PYTHONPATH=str(ROOT))
    env.pop("FLASK_DEBUG", None)
    log = open(os.path.join(tmp, "server.log"), "w")
    child = subprocess.Popen([sys.executable, __file__, "--serve", str(port), url, str(args.scale)],
                             env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True)
    wall = time.monotonic()
    try:
        if child.stdout.readline().strip() != "ready":
            raise SystemExit("the server did not start; see " + log.name)
        for _ in range(100):
            try:
                socket.create_connection((HOST, port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        clock = Clock(args.scale)
        results = {"honest": run_honest(port, paths["honest"], clock, args.crowd)}
        results.update(run_attacks(port, paths, clock, args.attack_minutes))
    finally:
        child.terminate()
        child.wait(timeout=30)
        log.close()
    online = {name: stored(db_file, ids[name]) for name in SCENARIOS}
    scan_line = batch_scan(env)
    after = {name: stored(db_file, ids[name]) for name in SCENARIOS}
    load = os.getloadavg()
    report(results, online, after, args, time.monotonic() - wall, load, scan_line)
    return 0


LABELS = {
    "honest": "honest crowd, 1 IP, 1 busy counter",
    "one_device": "one device (real token), 100/min",
    "invented": "rotating invented cookies, 60/min",
    "fresh_at_once": "fresh server tokens, posted at once, 60/min",
    "fresh_waiting": "fresh server tokens, waits 4 s, 60/min",
    "quiet": "the same at a counter without volume data (E = floor 60)",
    "head": "HEAD with a form body, 100/min",
}


def report(results, online, after, args, wall, load, scan_line) -> None:
    print(f"# Ballot stuffing (bench/stuffing.py): scale {args.scale:g}x, crowd {args.crowd} in a simulated hour, "
          f"scripts {args.attack_minutes:g} simulated min each; busy counters (unit volume {VOLUME:,} dossiers "
          f"in 30 days)")
    print(f"wall {wall:.0f} s; load average after the run {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"batch scan: {scan_line}")
    print()
    print("| scenario | sim. min | attempts | stored | stored unflagged | flagged online | flagged after scan "
          "| refused (429) | other statuses | flags |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in SCENARIOS:
        st = results[name]
        minutes = st.pop("_simulated_minutes")
        attempts = sum(st.values())
        refused = st.get(429, 0)
        other = ", ".join(f"{k}: {v}" for k, v in sorted(st.items()) if k not in (303, 429)) or "-"
        on, af = online[name], after[name]
        flags = ", ".join(f"{k} {v}" for k, v in sorted(af["by_flag"].items())) or "-"
        print(f"| {LABELS[name]} | {minutes} | {attempts} | {on['stored']} | {on['stored'] - on['flagged']} "
              f"| {on['flagged']} | {af['flagged']} | {refused} | {other} | {flags} |")
    honest = online["honest"]
    ratio = (honest["stored"] - honest["flagged"]) / max(1, sum(results["honest"].values()))
    print()
    print(f"baseline (honest crowd, same run): {ratio:.0%} of honest people stored unflagged")


if __name__ == "__main__":
    sys.exit(main())
