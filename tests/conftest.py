"""Shared fixtures: the app on SQLite or PostgreSQL, a clean schema per test,
data factories, a live server and a headless Chromium.

Choose the database with `pytest --db sqlite` (default) or `--db postgresql`.
PostgreSQL comes from TEST_DATABASE_URL / DATABASE_URL, else the server on
127.0.0.1:5432 when reachable, else a throw-away server started from the
installed binaries.  Each run uses its own fresh database, dropped at the end.
When PostgreSQL cannot be had, the run fails under CI (CI=true) and is skipped
with a loud message elsewhere.  Likewise for the browser (Debian chromium).
"""
from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
import tempfile
import threading
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.helpers import TEST_CONFIG, login, pg_admin

ROOT = Path(__file__).resolve().parent.parent

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"


def pytest_addoption(parser):
    parser.addoption("--db", default=os.environ.get("TEST_DB", "sqlite"), choices=("sqlite", "postgresql"),
                     help="database backend for the app tests")
    parser.addoption("--all-tests", action="store_true",
                     help="under --db postgresql, also run the database-independent (dbless) tests")
    parser.addoption("--today", default=os.environ.get("SIPAS_TEST_TODAY") or None, metavar="YYYY-MM-DD",
                     help="run the whole suite as if the real clock read this day (10:00 in Viet Nam), "
                          "to prove that no test depends on the date it runs (env SIPAS_TEST_TODAY)")


def pytest_report_header(config):
    lines = [f"database backend: {config.getoption('--db')}"]
    if config.getoption("--today"):
        lines.append(f"clock shifted to: {config.getoption('--today')}")
    return lines


# ------------------------------------------------------------------ the clock

VN = ZoneInfo("Asia/Ho_Chi_Minh")
#: The instant the date-relative tests run at (`frozen_clock`): the middle of a
#: reporting year, far from the 15/12 cut-off, a weekday, 10:00 in Viet Nam.
#: Given in UTC so that time-machine leaves the process time zone alone (the
#: server's zone must not matter: the app works in Asia/Ho_Chi_Minh itself).
FROZEN_NOW = dt.datetime(2026, 6, 17, 10, 0, tzinfo=VN).astimezone(dt.timezone.utc)


#: Fixtures through which a test reaches the backend chosen by --db.  A test
#: whose fixtures include none of them (and that is not marked `postgresql`)
#: gives the same result on every backend: it runs in the SQLite pass only.
BACKEND_FIXTURES = frozenset({"database_url", "fresh_database", "pg_server_url", "backend"})


def _dbless(item) -> bool:
    return item.get_closest_marker("postgresql") is None and not BACKEND_FIXTURES.intersection(item.fixturenames)


def pytest_collection_modifyitems(config, items):
    """Mark the database-independent tests `dbless`; under --db postgresql leave
    them out (the SQLite pass runs them) unless --all-tests."""
    for item in items:
        if _dbless(item):
            item.add_marker(pytest.mark.dbless)
    if config.getoption("--db") == "postgresql" and not config.getoption("--all-tests"):
        keep = [i for i in items if not _dbless(i)]
        dropped = [i for i in items if _dbless(i)]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = keep


def _compile_catalogues() -> None:
    """The message catalogue as `make setup` compiles it (the app never does), once per run, so the
    tests see the .po as it is; a broken translation (placeholders) stops the run."""
    from babel.messages.frontend import CommandLineInterface

    directory = Path(__file__).resolve().parent.parent / "survey_app" / "translations"
    if CommandLineInterface().run(["pybabel", "-q", "compile", "-d", str(directory)]):
        pytest.exit("pybabel compile failed: fix survey_app/translations (see the errors above)", returncode=4)


def pytest_configure(config):
    _compile_catalogues()
    config.addinivalue_line("markers", "dbless: touches no database of the chosen backend "
                                       "(set by conftest; left out of the --db postgresql pass)")
    today = config.getoption("--today")
    if today:
        import time_machine

        day = dt.date.fromisoformat(today)
        start = dt.datetime.combine(day, dt.time(10, 0), tzinfo=VN).astimezone(dt.timezone.utc)
        config._sipas_shift = time_machine.travel(start, tick=True)
        config._sipas_shift.start()


def pytest_unconfigure(config):
    shift = getattr(config, "_sipas_shift", None)
    if shift is not None:
        shift.stop()


@pytest.fixture(autouse=True)
def _no_stray_job_worker():
    """An app made without TESTING (the production checks) starts the in-process job worker on its first
    request; stop it after the test, so that it never runs later tests' jobs on the shared database."""
    yield
    jobs = sys.modules.get("survey_app.services.jobs")
    if jobs is not None and jobs._thread is not None:
        jobs.stop_in_process()


@pytest.fixture
def frozen_clock():
    """The clock set to FROZEN_NOW (still ticking) for data that depend on
    today's date: "the current report year", "the last N days"."""
    import time_machine

    with time_machine.travel(FROZEN_NOW, tick=True) as traveller:
        yield traveller


def _unavailable(what: str):
    msg = f"\n\n*** {what} ***\n"
    if IN_CI:
        pytest.exit(msg + "CI requires it: failing.", returncode=3)
    pytest.skip(msg + "Skipped outside CI.")


# ------------------------------------------------------------------ databases

@pytest.fixture(scope="session")
def pg_server_url():
    """URL of a PostgreSQL server (maintenance database) to create test databases in."""
    from tests.pgserver import ThrowawayPostgres, reachable

    url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL") or ""
    if url.startswith("postgres"):
        from survey_app.config import normalise_database_url

        yield normalise_database_url(url)
        return
    if reachable("127.0.0.1", 5432):
        yield "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        return
    try:
        server = ThrowawayPostgres()
        server.start()
    except Exception as exc:  # noqa: BLE001 - any failure means "no PostgreSQL here"
        _unavailable(f"PostgreSQL unavailable: no server configured or on 127.0.0.1:5432, "
                     f"and a throw-away server could not start ({exc})")
    yield server.url
    server.cleanup()


@pytest.fixture(scope="session")
def fresh_database(request):
    """Factory: a URL of a new empty database of the chosen backend (dropped at the end)."""
    backend = request.config.getoption("--db")
    made: list = []
    tmpdir = tempfile.mkdtemp(prefix="sipas-test-")

    def make() -> str:
        if backend == "sqlite":
            path = Path(tmpdir) / f"{uuid.uuid4().hex[:8]}.sqlite3"
            return f"sqlite:///{path}"
        server = request.getfixturevalue("pg_server_url")
        name = f"sipas_test_{uuid.uuid4().hex[:10]}"
        pg_admin(server, f'CREATE DATABASE "{name}"')
        made.append((server, name))
        return server.rsplit("/", 1)[0] + "/" + name

    yield make
    for server, name in made:
        try:
            pg_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except Exception:  # noqa: BLE001
            pass
    shutil.rmtree(tmpdir, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(fresh_database):
    """The session's database, with the schema created once."""
    url = fresh_database()
    from survey_app import create_app
    from survey_app.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "schema", "TESTING": True})
    with app.app_context():
        db.create_all()
        db.engine.dispose()
    return url


def _clean(db) -> None:
    """Empty every table (a clean schema for the next test)."""
    import sqlalchemy as sa

    tables = list(reversed(db.metadata.sorted_tables))
    with db.engine.begin() as conn:
        if db.engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for t in tables:
                conn.execute(t.delete())


@pytest.fixture
def make_app(database_url):
    """Factory for an app bound to the clean test database; extra config as kwargs."""
    from survey_app import create_app
    from survey_app.extensions import db

    apps = []
    instance = tempfile.mkdtemp(prefix="sipas-instance-")

    def make(**overrides):
        cfg = dict(TEST_CONFIG, SQLALCHEMY_DATABASE_URI=database_url)
        cfg.update(overrides)
        app = create_app(cfg, instance_path=instance)
        apps.append(app)
        return app

    yield make
    for a in apps:
        with a.app_context():
            db.session.remove()
            db.engine.dispose()
    if apps:
        cleaner = create_app(dict(TEST_CONFIG, SQLALCHEMY_DATABASE_URI=database_url))
        with cleaner.app_context():
            _clean(db)
            db.engine.dispose()
    shutil.rmtree(instance, ignore_errors=True)


@pytest.fixture
def make_loaded_app(make_app):
    """Factory: an app (extra config as kwargs) with the questionnaires loaded."""
    def make(**overrides):
        from survey_app.extensions import db
        from survey_app.services.instruments import sync_instruments

        app = make_app(**overrides)
        with app.app_context():
            sync_instruments(db.session)
            db.session.commit()
        return app

    return make


@pytest.fixture
def open_app(make_loaded_app):
    """Factory: a loaded app with the public rate limits out of the way
    (fuzzing and concurrency post a lot from one client); extra config as kwargs."""
    def make(**overrides):
        return make_loaded_app(**dict({"RATELIMIT_ENABLED": False}, **overrides))

    return make


@pytest.fixture
def backend(request) -> str:
    """The database backend of this run: "sqlite" or "postgresql"."""
    return request.config.getoption("--db")


@pytest.fixture
def app(make_loaded_app):
    return make_loaded_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def ctx(app):
    """An application context for direct database work in a test."""
    with app.app_context():
        yield app


# ------------------------------------------------------------------ data of the collection and staff tests

@pytest.fixture
def place(app):
    """A commune with one counter (tests.factories.Place) in `app`."""
    from tests.factories import make_place

    with app.app_context():
        return make_place()


@pytest.fixture
def sapp(make_loaded_app):
    """The staff tests' app: CSRF off, login rate limit out of the way."""
    return make_loaded_app(WTF_CSRF_ENABLED=False, STAFF_LOGIN_RATE="1000 per minute")


@pytest.fixture
def world(sapp, frozen_clock):
    """tests.factories.seed_world in `sapp`."""
    from tests.factories import seed_world

    return seed_world(sapp)


@pytest.fixture
def as_role(sapp, world):
    """as_role(role) -> a test client signed in with that role."""
    def make(role):
        c = sapp.test_client()
        r = login(c, world["users"][role])
        assert r.status_code == 302, r.data[:500]
        return c
    return make


# ------------------------------------------------------------------ analysis

@pytest.fixture
def rng():
    """A seeded NumPy generator."""
    import numpy as np

    return np.random.default_rng(12345)


# ------------------------------------------------------------------ live server + browser

@pytest.fixture
def live_server(app):
    """Serve `app` on a free local port in a background thread; yields the base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    port = server.socket.getsockname()[1]
    app.config["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    t.join(5)


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium driven by Playwright (no browser download)."""
    if not os.path.exists(CHROMIUM):
        _unavailable(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage"],
        )
        yield b
        b.close()


@pytest.fixture(scope="session")
def axe_violations(browser):
    """`axe_violations(page)` -> the page's WCAG 2.1 A/AA violations found by
    axe-core (tests.helpers.axe_violations); assert it is [] with
    `tests.helpers.axe_report` as the message.  axe-core comes from npm
    (`make setup-dev` runs `npm ci`): missing, it fails under CI and skips loudly elsewhere."""
    from tests.helpers import AXE_JS
    from tests.helpers import axe_violations as run

    if not AXE_JS.exists():
        _unavailable(f"axe-core not found at {AXE_JS} (run `npm ci` or `make setup-dev`)")
    source = AXE_JS.read_text(encoding="utf-8")
    return lambda page: run(page, source)


@pytest.fixture
def screenshot_dir():
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
