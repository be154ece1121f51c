"""The rating step as a citizen meets it (issue 13), beside the previous form
version, measured in the same run in Debian's headless Chromium:

- height of the rating step at 360x640 (and where the Send button ends),
- words on it (the text of <main>),
- taps to a stored rating (six ratings + Send; radio inputs needed),
- bytes on the wire for the page load (compressed, as the browser received them:
  CDP Network.loadingFinished encodedDataLength),
- completion time of a scripted rating on an emulated slow 3G link (CDP
  Network.emulateNetworkConditions: 400 ms RTT, 400 kbit/s each way): open the
  form, tap six choices, Send, until the thank-you page has loaded.  Median of
  `--runs` runs (a fresh browser context each time).

Each version is served from its own checkout (`git archive` of the revision)
by its own process on SQLite, with a fresh database, the questionnaires loaded
and one counter.  The current version is the working tree; the previous one is
the revision before counter-quick version 2 was added (or `--old REV`).

    .venv/bin/python bench/rating_page.py [--runs 5] [--old REV] [--json bench/out/rating_page.json]

`measure(url)` measures one form URL; `compare(...)` both versions (what
bench/collect.py may call).  Figures go to BENCHMARKS.md with `uptime`.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
PHONE = {"width": 360, "height": 640}
SLOW_3G = {"offline": False, "latency": 400, "downloadThroughput": 400_000 / 8, "uploadThroughput": 400_000 / 8}
ANSWERS = (("overall", "5"), ("access", "4"), ("procedure", "4"), ("staff", "5"), ("result", "3"), ("feedback", "4"))

# Run inside a checkout: a fresh SQLite app with the questionnaires and one counter, served on PORT.
SERVE = r"""
import os, sys, tempfile
from werkzeug.serving import make_server
from survey_app import create_app
from survey_app.extensions import db
from survey_app.services.instruments import sync_instruments
from tests.helpers import TEST_CONFIG
from tests.factories import make_place
d = tempfile.mkdtemp(prefix="sipas-rating-bench-")
cfg = dict(TEST_CONFIG, SQLALCHEMY_DATABASE_URI="sqlite:///" + os.path.join(d, "db.sqlite"), TESTING=False,
           PUBLIC_LIMIT_DEVICE="10000/minute", PUBLIC_LIMIT_COUNTER="10000/minute", PUBLIC_LIMIT_IP="10000/minute",
           WTF_CSRF_ENABLED=True)
app = create_app(cfg, instance_path=d)
with app.app_context():
    db.create_all()
    sync_instruments(db.session)
    db.session.commit()
    place = make_place()
server = make_server("127.0.0.1", int(sys.argv[1]), app, threaded=True)
print(place.url, flush=True)
server.serve_forever()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def previous_revision() -> str:
    """The revision before counter-quick version 2 was added."""
    added = subprocess.run(["git", "log", "--format=%H", "--diff-filter=A", "--",
                            "survey_app/questionnaires/counter-quick-v2.json"],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    if not added:
        raise SystemExit("counter-quick-v2.json is not committed: give --old REV")
    return added[-1] + "^"


def checkout(rev: str, into: Path) -> Path:
    data = subprocess.run(["git", "archive", "--format=tar", rev], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    subprocess.run([str(ROOT / ".venv/bin/pybabel"), "-q", "compile", "-d", "survey_app/translations"],
                   cwd=into, check=True)
    return into


class App:
    """One version's app in its own process."""

    def __init__(self, tree: Path):
        self.port = free_port()
        env = dict(os.environ, PYTHONPATH=str(tree))
        env.pop("DATABASE_URL", None)
        self.proc = subprocess.Popen([sys.executable, "-c", SERVE, str(self.port)], cwd=tree, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        path = self.proc.stdout.readline().strip()
        if not path:
            raise RuntimeError(f"the app in {tree} did not start")
        self.url = f"http://127.0.0.1:{self.port}{path}"
        for _ in range(100):
            try:
                urllib.request.urlopen(self.url, timeout=2).read()
                break
            except OSError:
                time.sleep(0.1)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def _tap_all(page) -> int:
    taps = 0
    for name, value in ANSWERS:
        page.click(f'label:has(> input[name="{name}"][value="{value}"])')
        taps += 1
    page.click("form.survey button[type=submit]:not([hidden])")
    return taps + 1


def _wire_bytes(cdp) -> dict:
    sizes = {}
    cdp.on("Network.responseReceived", lambda e: e["response"]["url"].startswith("http") and sizes.setdefault(
        e["requestId"], [e["response"]["url"], 0]))
    cdp.on("Network.loadingFinished",
           lambda e: sizes.get(e["requestId"], [None, 0]).__setitem__(1, e["encodedDataLength"]))
    return sizes


def measure(browser, url: str, runs: int = 5) -> dict:
    """The figures of one form URL (see the module docstring)."""
    ctx = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="vi-VN")
    page = ctx.new_page()
    cdp = ctx.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    sizes = _wire_bytes(cdp)
    page.goto(url, wait_until="load")
    page.wait_for_timeout(300)  # late requests (scripts) finish
    out = {
        "height_px": page.evaluate("document.documentElement.scrollHeight"),
        "send_bottom_px": round(page.evaluate(
            "document.querySelector('form.survey button[type=submit]:not([hidden])').getBoundingClientRect().bottom"
            " + window.scrollY")),
        "words": page.evaluate("document.querySelector('main').innerText.split(/\\s+/).filter(Boolean).length"),
        "radio_inputs": page.evaluate("document.querySelectorAll('form.survey input[type=radio]').length"),
        "bytes_on_wire": sum(n for _, n in sizes.values()),
        "requests": len(sizes),  # over the network (the faces are data: URLs inside the inline stylesheet)
    }
    out["taps"] = _tap_all(page)
    page.wait_for_url("**/thanks**")
    ctx.close()
    times = []
    for _ in range(runs):
        ctx = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="vi-VN")
        page = ctx.new_page()
        cdp = ctx.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", SLOW_3G)
        t0 = time.perf_counter()
        page.goto(url, wait_until="load")
        _tap_all(page)
        page.wait_for_url("**/thanks**", wait_until="load")
        times.append(time.perf_counter() - t0)
        ctx.close()
    out["slow3g_completion_s"] = round(statistics.median(times), 2)
    out["slow3g_runs_s"] = [round(t, 2) for t in times]
    return out


def compare(runs: int = 5, old: str | None = None) -> dict:
    """Both versions in one run: {"previous": {...}, "current": {...}, "ratio": {...}}."""
    from playwright.sync_api import sync_playwright

    old = old or previous_revision()
    tmp = Path(tempfile.mkdtemp(prefix="sipas-rating-old-"))
    apps = []
    try:
        apps = [App(checkout(old, tmp)), App(ROOT)]
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            try:
                previous, current = (measure(browser, a.url, runs) for a in apps)
            finally:
                browser.close()
    finally:
        for a in apps:
            a.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    keys = ("height_px", "words", "taps", "bytes_on_wire", "slow3g_completion_s")
    return {"previous_revision": subprocess.run(["git", "rev-parse", "--short", old], cwd=ROOT, capture_output=True,
                                                text=True).stdout.strip(),
            "previous": previous, "current": current,
            "ratio_current_to_previous": {k: round(current[k] / previous[k], 2) for k in keys if previous[k]}}


def report(r: dict) -> str:
    rows = [("rating step height at 360x640 (px)", "height_px"), ("Send button ends at (px)", "send_bottom_px"),
            ("words", "words"), ("radio inputs", "radio_inputs"), ("taps to a stored rating", "taps"),
            ("bytes on the wire, page load (compressed)", "bytes_on_wire"), ("requests", "requests"),
            ("slow 3G completion, median (s)", "slow3g_completion_s")]
    lines = [f"| measure | previous form ({r['previous_revision']}) | current form | ratio |", "|---|---|---|---|"]
    for label, k in rows:
        ratio = r["ratio_current_to_previous"].get(k, "")
        lines.append(f"| {label} | {r['previous'][k]} | {r['current'][k]} | {ratio} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--old", help="revision of the previous form (default: before counter-quick v2)")
    ap.add_argument("--json", default=str(ROOT / "bench" / "out" / "rating_page.json"))
    args = ap.parse_args(argv)
    load0 = os.getloadavg()[0]
    r = compare(args.runs, args.old)
    r["load_avg_start"], r["load_avg_end"] = round(load0, 1), round(os.getloadavg()[0], 1)
    r["uptime"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(r, indent=1))
    print(report(r))
    print(f"\nuptime: {r['uptime']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
