"""Test helpers that are not data builders (those are in tests/factories.py):
the test configuration, logins, form scraping and submitting, stored rows,
database fingerprints, standalone apps and PostgreSQL databases."""
from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path

from tests.factories import PASSWORD

#: The configuration every test app starts from.
TEST_CONFIG = {
    "TESTING": True,
    "SECRET_KEY": "test-secret-key-not-for-production",
    "PUBLIC_BASE_URL": "http://sipas.test",
    "RATELIMIT_STORAGE_URI": "memory://",
    # tests post a form right after fetching it (tests/public/test_stuffing.py sets it)
    "PUBLIC_MIN_FILL_SECONDS": 0,
    # no background worker thread, even in an app made with TESTING=False (tests call jobs.run_due)
    "JOBS_IN_PROCESS": False,
}


# ------------------------------------------------------------------ staff pages

def login(client, username, password=PASSWORD):
    return client.post("/staff/login", data={"username": username, "password": password})


def csrf_token_of(client, url: str) -> str:
    """The CSRF token of the page at `url` (for an app with CSRF on)."""
    return _CSRF.search(client.get(url).get_data(as_text=True)).group(1)


def csrf_login(client, username, password=PASSWORD):
    """Sign in through the login form of an app with CSRF on (as a browser does)."""
    token = csrf_token_of(client, "/staff/login")
    return client.post("/staff/login", data={"username": username, "password": password, "csrf_token": token})


# ------------------------------------------------------------------ the citizen form

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_KEY = re.compile(r'name="k" value="([^"]+)"')


def scrape(html: str) -> dict:
    """The hidden fields of a rendered form."""
    out = {"csrf_token": _CSRF.search(html).group(1), "k": _KEY.search(html).group(1)}
    d = re.search(r'name="d" value="([^"]+)"', html)
    if d:
        out["d"] = d.group(1)
    return out


def open_form(client, url: str) -> dict:
    r = client.get(url)
    assert r.status_code == 200, r.status_code
    return scrape(r.get_data(as_text=True))


ANSWERS = {"overall": "5", "access": "4", "procedure": "3", "staff": "5", "result": "na", "feedback": "2",
           "stratum": "ho_tich", "age_group": "45_59", "gender": "female", "comment": "Cán bộ nhiệt tình."}


def varied_answers(i: int) -> dict:
    """The i-th of 625 distinct answer sets (with its own comment): many honest
    people who neither duplicate nor repeat each other's answers."""
    v = [str(1 + (i // 5 ** k) % 5) for k in range(4)]
    return dict(ANSWERS, overall=v[0], access=v[1], procedure=v[2], staff=v[3], comment=f"Ý kiến số {i}.")


def submit(client, url: str, answers: dict | None = None, hidden: dict | None = None, **kw):
    hidden = hidden if hidden is not None else open_form(client, url)
    data = dict(hidden)
    data.update(ANSWERS if answers is None else answers)
    return client.post(url, data=data, **kw)


def responses(app):
    """Every stored response (oldest first), detached, with `answer_map`."""
    from sqlalchemy import select

    from survey_app.extensions import db
    from survey_app.models import Response

    with app.app_context():
        rows = list(db.session.scalars(select(Response).order_by(Response.received_at)))
        for r in rows:
            r.answer_map = {a.item_key: a.value for a in r.answers}
        db.session.expunge_all()
        return rows


def form_fields(html: str) -> dict:
    """What a browser would send on pressing the first POST form's button:
    hidden and text inputs, checked radios / checkboxes (first value kept),
    textareas.  Empty when the page has no POST form."""
    from html.parser import HTMLParser

    class P(HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.fields: dict = {}
            self.in_form = self.done = False
            self.textarea = None

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if self.done:
                return
            if tag == "form" and (a.get("method") or "").lower() == "post":
                self.in_form = True
            if not self.in_form:
                return
            if tag == "input" and a.get("name"):
                kind = (a.get("type") or "text").lower()
                if kind in ("radio", "checkbox"):
                    if "checked" in a:
                        self.fields.setdefault(a["name"], a.get("value") or "on")
                elif kind not in ("submit", "button", "image", "file", "reset"):
                    self.fields.setdefault(a["name"], a.get("value") or "")
            elif tag == "textarea" and a.get("name"):
                self.textarea = a["name"]
                self.fields.setdefault(self.textarea, "")

        def handle_data(self, data):
            if self.textarea:
                self.fields[self.textarea] += data

        def handle_endtag(self, tag):
            if tag == "textarea":
                self.textarea = None
            elif tag == "form" and self.in_form:
                self.in_form, self.done = False, True

    p = P()
    p.feed(html)
    return p.fields


# ------------------------------------------------------------------ database state

def fingerprint(app) -> dict:
    """(rows, SHA-256) of every application table: equal = same content."""
    from survey_app.extensions import db
    from survey_app.services.backup import database_digest

    with app.app_context():
        db.session.remove()
        return database_digest(db.engine)


def count(app, model) -> int:
    from sqlalchemy import func, select

    from survey_app.extensions import db

    with app.app_context():
        n = db.session.scalar(select(func.count()).select_from(model))
        db.session.remove()
        return n


# ------------------------------------------------------------------ apps and databases of their own

def standalone_app(url: str, *, schema: str = "create_all", instruments: bool = True, **overrides):
    """An app on its own database `url`: schema made by `create_all` or by the
    migrations (`schema="migrate"`), instruments loaded unless told not to."""
    from survey_app import create_app
    from survey_app.extensions import db
    from survey_app.services.instruments import sync_instruments

    cfg = dict(TEST_CONFIG, SQLALCHEMY_DATABASE_URI=url, RATELIMIT_ENABLED=False)
    cfg.update(overrides)
    app = create_app(cfg)
    with app.app_context():
        if schema == "migrate":
            from flask_migrate import upgrade

            upgrade()
        else:
            db.create_all()
        if instruments:
            sync_instruments(db.session)
            db.session.commit()
        db.session.remove()
    return app


def pg_admin(server_url: str, sql: str) -> None:
    """Run `sql` outside a transaction on the server of `server_url`."""
    import sqlalchemy as sa

    eng = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as conn:
            conn.execute(sa.text(sql))
    finally:
        eng.dispose()


def create_pg_database(server_url: str, prefix: str = "sipas_rel") -> str:
    """A new empty database on the PostgreSQL server of `server_url`; its URL."""
    import uuid

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    pg_admin(server_url, f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + "/" + name


def drop_pg_database(url: str) -> None:
    """Drop the database of `url` (best effort)."""
    server, name = url.rsplit("/", 1)
    try:
        pg_admin(server + "/postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except Exception:  # noqa: BLE001 - best effort at teardown
        pass


def race(n, prepare, act):
    """Run act(i, prepared[i]) in n threads released together (a barrier);
    results in order (an exception is returned as the result)."""
    import threading

    prepared = [prepare(i) for i in range(n)]
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i):
        try:
            barrier.wait(30)
            results[i] = act(i, prepared[i])
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a request hung"
    return results


@contextmanager
def disposing(*apps):
    try:
        yield
    finally:
        from survey_app.extensions import db

        for a in apps:
            with a.app_context():
                db.session.remove()
                db.engine.dispose()


def route_path(rule, args) -> str:
    """The URL of a werkzeug `rule` with its variables filled from `args`."""
    import re

    path = rule.rule
    for a in rule.arguments:
        path = re.sub(rf"<(?:[a-z]+:)?{a}>", str(args[a]), path)
    return path


# ------------------------------------------------------------------ accessibility (axe-core in Chromium)

#: axe-core, installed by `make setup-dev` (npm ci, pinned in package-lock.json).
AXE_JS = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"
#: The rule sets checked: WCAG 2.1 levels A and AA.
AXE_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")

_SCRIPTING = ("() => { const d = document.createElement('div'); d.innerHTML = '<noscript><p></p></noscript>';"
              " return d.querySelector('noscript p') === null; }")


def _axe_run(page, source: str) -> list:
    if not page.evaluate("() => typeof window.axe === 'object'"):
        # through the DevTools protocol: the page's CSP needs no exception
        page.evaluate("src => { (0, eval)(src); }", source)
    return page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})"
        ".then(r => r.violations)", list(AXE_TAGS))


def axe_violations(page, source: str | None = None) -> list[dict]:
    """Run axe-core on the page's current document (WCAG 2.1 A/AA rules) and
    return its violations (each a dict: id, impact, help, nodes[].target/html).
    A page without JavaScript (axe needs timers) is checked as a copy of its
    current DOM served at the same address in a JavaScript-enabled context of the
    same browser, viewport and language.  Prefer the `axe_violations` fixture,
    which fails under CI (skips loudly elsewhere) when axe-core is missing."""
    if source is None:
        source = AXE_JS.read_text(encoding="utf-8")
    if page.evaluate(_SCRIPTING):
        found = _axe_run(page, source)
    else:
        html, url = page.content(), page.url
        lang = page.evaluate("() => navigator.language")
        ctx = page.context.browser.new_context(viewport=page.viewport_size, locale=lang)
        try:
            copy = ctx.new_page()
            copy.route(url, lambda route: route.fulfill(body=html, content_type="text/html; charset=utf-8"))
            copy.goto(url)
            copy.evaluate("() => document.querySelectorAll('script').forEach(s => s.remove())")
            found = _axe_run(copy, source)
        finally:
            ctx.close()
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [{"target": n["target"], "html": n["html"][:200]} for n in v["nodes"]]}
            for v in found]


def axe_report(violations: list[dict]) -> str:
    """A readable list of axe violations for an assertion message."""
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']}")
        lines.extend(f"    {n['target']}: {n['html']}" for n in v["nodes"][:5])
    return "\n".join(lines)
