"""Outbound webhooks (issue 12 item 6, `services.webhooks`): configuration by
CLI and admin page, one signed POST per subscribed client in scope, links and
never answer content, retries with growing delays through the job queue, dead
letters and re-sending."""
from __future__ import annotations

import datetime as dt
import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import event, func, select

from tests.api.conftest import seed_api_units
from tests.factories import make_user
from tests.helpers import ANSWERS, csrf_token_of, submit

COMMENT = "Cán bộ thờ ơ, số tôi 0912 345 678"


class Receiver:
    """A local HTTP server that records every POST and answers `status` (a list: one per request, the last repeats)."""

    def __init__(self, statuses=(200,)):
        self.statuses = list(statuses)
        self.requests: list[dict] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append({"path": self.path, "headers": self.headers, "body": body})  # any case
                code = outer.statuses.pop(0) if len(outer.statuses) > 1 else outer.statuses[0]
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(statuses=(200,)):
        r = Receiver(statuses)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def _closed_port_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/hook"


def _set_hook(app, client_name, url, events=None):
    """`flask api clients webhook NAME --url URL [--events]` -> the secret it prints."""
    args = ["api", "clients", "webhook", client_name, "--url", url]
    if events:
        args += ["--events", events]
    r = app.test_cli_runner().invoke(args=args)
    assert r.exit_code == 0, (r.output, r.stderr)
    assert "chỉ hiện một lần" in r.stderr
    return r.stdout.strip()


def _rate(app, unit_code, overall, comment=COMMENT):
    """A citizen rating at the unit's counter through the public form."""
    from survey_app.extensions import db
    from survey_app.models import Counter, Unit
    from survey_app.services.tokens import counter_token

    with app.app_context():
        c = db.session.scalar(select(Counter).join(Unit).where(Unit.code == unit_code))
        path = f"/c/{counter_token(c.id, c.token_version)}"
    r = submit(app.test_client(), path, answers=dict(ANSWERS, overall=str(overall), comment=comment))
    assert r.status_code == 303, r.get_data(as_text=True)[:500]
    from survey_app.services import cases, jobs

    with app.app_context():  # the case (and its alert.created event) is opened by a job after the POST
        jobs.run_due(kinds=[cases.OPEN_JOB])


def _deliveries(app):
    from survey_app.extensions import db
    from survey_app.models import WebhookDelivery

    with app.app_context():
        rows = list(db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))
        out = [{"id": d.id, "client": d.client.name, "unit": d.unit.code, "type": d.event_type,
                "status": d.status, "attempts": d.attempts, "last_status": d.last_status,
                "last_error": d.last_error, "job_id": d.job_id, "body": d.body} for d in rows]
        return out


def _run(app, now=None):
    """Run the due webhook deliveries (not the other jobs a rating queues, e.g. its case's e-mails)."""
    from survey_app.models import utcnow
    from survey_app.services import jobs
    from survey_app.services.webhooks import JOB_KIND

    with app.app_context():
        return jobs.run_due(now=now or utcnow(), kinds=(JOB_KIND,))


def _job(app, job_id):
    from survey_app.extensions import db
    from survey_app.models import Job

    with app.app_context():
        j = db.session.get(Job, job_id)
        return {"status": j.status, "attempts": j.attempts, "run_after": j.run_after}


@pytest.fixture
def wapp(make_loaded_app):
    """The API test units and clients (tests/api/conftest.py) in an app with CSRF off."""
    app = make_loaded_app(WTF_CSRF_ENABLED=False, STAFF_LOGIN_RATE="1000 per minute")
    seed_api_units(app)
    return app


def test_dissatisfied_rating_reaches_the_receiver_signed_with_links_only(wapp, receiver, backend):
    from survey_app.services.webhooks import verify

    rec = receiver()
    secret = _set_hook(wapp, "client-p", rec.url, events="rating.dissatisfied")
    assert re.fullmatch(r"whsec_[0-9a-f]{64}", secret)
    _rate(wapp, "P-A", 1)
    [d] = _deliveries(wapp)
    assert (d["client"], d["unit"], d["type"], d["status"], d["attempts"]) == (
        "client-p", "P-A", "rating.dissatisfied", "pending", 0)
    assert rec.requests == []  # nothing is sent inside the citizen's request
    assert _run(wapp) == 1
    [got] = rec.requests
    h, body = got["headers"], got["body"]
    assert got["path"] == "/hook" and h["Content-Type"].startswith("application/json")
    assert h["X-SIPAS-Event"] == "rating.dissatisfied" and h["X-SIPAS-Delivery"] == str(d["id"])
    stamp, sig = h["X-SIPAS-Timestamp"], h["X-SIPAS-Signature"]
    assert re.fullmatch(r"\d{10}", stamp) and sig.startswith("sha256=")
    assert verify(secret, stamp, body, sig)
    assert not verify(secret[:-1] + ("0" if secret[-1] != "0" else "1"), stamp, body, sig)  # wrong secret
    assert not verify(secret, str(int(stamp) + 1), body, sig)  # another timestamp
    assert not verify(secret, stamp, body + b" ", sig)  # another body
    payload = json.loads(body)
    assert set(payload) == {"id", "type", "created_at", "unit", "links"}
    import jsonschema_rs

    from survey_app.services.webhooks import EVENT_TYPES

    doc = wapp.test_client().get("/api/v1/openapi.json").json  # the body is what the document says
    assert set(doc["webhooks"]) == set(EVENT_TYPES)
    jsonschema_rs.validate(doc["components"]["schemas"]["WebhookEvent"], payload)
    assert payload["id"] == d["id"] and payload["type"] == "rating.dissatisfied"
    assert payload["unit"] == {"code": "P-A", "name": "Đơn vị P-A"}
    assert payload["links"]["unit"].startswith("http://sipas.test/staff/units/P-A?period=")
    assert payload["links"]["results"].startswith("http://sipas.test/api/v1/results?period=")
    text = body.decode("utf-8")
    for secret_thing in ("Cán bộ", "0912", "overall", "comment", "answers", "ho_tich", "45_59", "female"):
        assert secret_thing not in text, secret_thing
    assert _deliveries(wapp)[0]["status"] == "delivered"
    assert _deliveries(wapp)[0]["last_status"] == 200
    assert _run(wapp) == 0  # delivered once


def test_scope_event_types_and_satisfied_ratings(wapp, receiver, backend):
    rec = receiver()
    _set_hook(wapp, "client-a", rec.url, events="rating.dissatisfied")  # P-A only
    _set_hook(wapp, "client-y", rec.url, events="rating.dissatisfied")  # Q-Y only
    _set_hook(wapp, "reader", rec.url, events="alert.created")          # P, alerts but not ratings

    def made():
        return [(d["client"], d["unit"], d["type"]) for d in _deliveries(wapp)]

    _rate(wapp, "P-B", 2)    # no rating event: nobody of P-B takes ratings; the alert (a case) goes to reader
    assert made() == [("reader", "P-B", "alert.created")]
    _rate(wapp, "P-A", 4)    # satisfied: no event
    _rate(wapp, "P-A", 3)    # neutral: no event
    assert len(made()) == 1
    _rate(wapp, "P-A", 2)
    assert sorted(made()[1:]) == [("client-a", "P-A", "rating.dissatisfied"), ("reader", "P-A", "alert.created")]
    _rate(wapp, "Q-Y", 1)
    assert made()[3:] == [("client-y", "Q-Y", "rating.dissatisfied")]  # reader (P) sees nothing of Q
    assert _run(wapp) == 4
    alerts = [json.loads(r["body"]) for r in rec.requests if r["headers"]["X-SIPAS-Event"] == "alert.created"]
    assert len(alerts) == 2 and all("/staff/cases/" in a["links"]["case"] for a in alerts)
    assert {a["data"]["kind"] for a in alerts} == {"dissatisfied"}


def test_emit_is_in_the_callers_transaction_and_refuses_content(wapp, receiver, backend):
    from survey_app.extensions import db
    from survey_app.models import Job, Unit, WebhookDelivery
    from survey_app.services import webhooks

    rec = receiver()
    _set_hook(wapp, "client-p", rec.url)
    with wapp.app_context():
        unit = db.session.scalar(select(Unit).where(Unit.code == "P-B"))
        for bad in ({"comment": "x"}, {"answers": "1"}, {"NguoiXuLy": "Nguyễn Văn A"}, {"MaHoSo": "HS-1"},
                    {"nested": {"a": 1}}, {"links": {"x": 1}}):
            with pytest.raises(ValueError):
                webhooks.emit(unit.id, "alert.created", bad)
        with pytest.raises(ValueError):
            webhooks.emit(unit.id, "no.such.event")
        made = webhooks.emit(unit.id, "alert.created", {"alert": 7, "rule": "low_index",
                                                         "links": {"alert": "http://sipas.test/staff/cases/7"}})
        assert len(made) == 1
        db.session.rollback()  # the caller's change fails: the event goes with it
        assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
        assert db.session.scalar(select(func.count()).select_from(Job)) == 0
        webhooks.emit(unit.id, "alert.created", {"alert": 7, "links": {"alert": "http://sipas.test/staff/cases/7"}})
        db.session.commit()
    assert _run(wapp) == 1
    payload = json.loads(rec.requests[0]["body"])
    assert payload["data"] == {"alert": 7}
    assert payload["links"]["alert"] == "http://sipas.test/staff/cases/7" and "unit" in payload["links"]
    assert rec.requests[0]["headers"]["X-SIPAS-Event"] == "alert.created"


def test_failing_receiver_is_retried_with_growing_delays_then_dead_then_resent(wapp, receiver, backend):
    from survey_app.services.webhooks import MAX_ATTEMPTS

    rec = receiver([500])
    _set_hook(wapp, "client-p", rec.url, events="rating.dissatisfied")
    _rate(wapp, "P-A", 1)
    [d] = _deliveries(wapp)
    from survey_app.models import utcnow

    now, waits = utcnow(), []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert _run(wapp, now) == 1
        job = _job(wapp, d["job_id"])
        row = _deliveries(wapp)[0]
        assert (row["attempts"], row["last_status"], row["last_error"]) == (attempt, 500, "HTTP 500")
        if attempt < MAX_ATTEMPTS:
            assert job["status"] == "pending" and row["status"] == "pending"
            assert _run(wapp, job["run_after"] - dt.timedelta(seconds=1)) == 0  # not before its time
            waits.append((job["run_after"] - now).total_seconds())
            now = job["run_after"]
    assert waits == [30, 60, 120, 240, 480]
    assert _job(wapp, d["job_id"])["status"] == "dead" and _deliveries(wapp)[0]["status"] == "dead"
    assert len(rec.requests) == MAX_ATTEMPTS
    assert len({r["headers"]["X-SIPAS-Delivery"] for r in rec.requests}) == 1  # one delivery id throughout
    runner = wapp.test_cli_runner()
    dead = runner.invoke(args=["api", "webhooks", "list", "--dead"])
    assert dead.exit_code == 0 and dead.output.startswith(f"{d['id']}\t") and "\tdead\t6\tHTTP 500" in dead.output
    rec.statuses = [204]
    again = runner.invoke(args=["api", "webhooks", "resend", str(d["id"])])
    assert again.exit_code == 0, again.output
    assert _deliveries(wapp)[0]["status"] == "pending"
    assert runner.invoke(args=["api", "webhooks", "resend", str(d["id"])]).exit_code == 1  # already waiting
    assert runner.invoke(args=["api", "webhooks", "resend", "999999"]).exit_code == 1
    assert _run(wapp) == 1
    row = _deliveries(wapp)[0]
    assert (row["status"], row["last_status"], row["last_error"]) == ("delivered", 204, None)
    assert len(rec.requests) == MAX_ATTEMPTS + 1 and rec.requests[-1]["body"] == rec.requests[0]["body"]
    assert runner.invoke(args=["api", "webhooks", "list", "--dead"]).output.startswith("Không có thư chết")
    # a delivered one may be sent again too
    assert runner.invoke(args=["api", "webhooks", "resend", str(d["id"])]).exit_code == 0
    assert _run(wapp) == 1 and len(rec.requests) == MAX_ATTEMPTS + 2
    from survey_app.extensions import db
    from survey_app.models import AuditLog

    with wapp.app_context():
        assert db.session.scalar(select(func.count()).select_from(AuditLog)
                                 .where(AuditLog.action == "api.webhook_resend")) == 2


def test_refused_connection_is_an_attempt_with_its_error(wapp, backend):
    url = _closed_port_url()
    _set_hook(wapp, "client-a", url, events="rating.dissatisfied")
    _rate(wapp, "P-A", 2)
    assert _run(wapp) == 1
    [row] = _deliveries(wapp)
    assert row["status"] == "pending" and row["attempts"] == 1 and row["last_status"] is None
    assert "refused" in row["last_error"].lower()
    assert _job(wapp, row["job_id"])["status"] == "pending"


def test_turned_off_webhook_ends_its_pending_deliveries(wapp, receiver, backend):
    rec = receiver()
    _set_hook(wapp, "client-a", rec.url, events="rating.dissatisfied")
    _rate(wapp, "P-A", 1)
    r = wapp.test_cli_runner().invoke(args=["api", "clients", "webhook", "client-a", "--off"])
    assert r.exit_code == 0 and "Đã tắt" in r.output
    assert _run(wapp) == 1
    [row] = _deliveries(wapp)
    assert (row["status"], row["last_error"]) == ("dead", "webhook turned off") and rec.requests == []
    _rate(wapp, "P-A", 1)
    assert len(_deliveries(wapp)) == 1  # nobody listens now


def test_webhook_addresses_and_cli_errors(wapp):
    from survey_app.services.webhooks import check_url

    with wapp.app_context():
        assert check_url("https://igate.example.vn/sipas", production=True) == "https://igate.example.vn/sipas"
        assert check_url("http://localhost:8080/x", production=True)
        assert check_url("http://127.0.0.1/x", production=True)
        assert check_url("http://igate.lan/x", production=False)
        for bad in ("http://igate.example.vn/x", "ftp://x.vn/", "https://", "javascript:alert(1)",
                    "https://x.vn/a b", "https://x.vn/#f", "", "https://x.vn:99999/", "https://x.vn/" + "a" * 500):
            with pytest.raises(ValueError):
                check_url(bad, production=True)
    runner = wapp.test_cli_runner()
    assert runner.invoke(args=["api", "clients", "webhook", "nope", "--url", "https://x.vn/"]).exit_code == 1
    r = runner.invoke(args=["api", "clients", "webhook", "client-a", "--url", "ftp://x.vn/"])
    assert r.exit_code == 2 and "https://" in r.output
    r = runner.invoke(args=["api", "clients", "webhook", "client-a", "--url", "https://x.vn/", "--events", "x.y"])
    assert r.exit_code == 2 and "rating.dissatisfied" in r.output
    assert runner.invoke(args=["api", "clients", "webhook", "client-a"]).exit_code == 2  # no URL yet
    first = runner.invoke(args=["api", "clients", "webhook", "client-a", "--url", "https://x.vn/"])
    assert first.exit_code == 0
    # changing the address keeps the secret (nothing printed); --new-secret prints a new one
    same = wapp.test_cli_runner().invoke(
        args=["api", "clients", "webhook", "client-a", "--url", "https://y.vn/", "--events", "alert.created"])
    assert same.exit_code == 0 and same.stdout == ""
    new = wapp.test_cli_runner().invoke(args=["api", "clients", "webhook", "client-a", "--new-secret"])
    assert new.exit_code == 0 and new.stdout.startswith("whsec_")
    assert new.stdout.strip() not in first.output
    from survey_app.extensions import db
    from survey_app.models import ApiClient, Webhook

    with wapp.app_context():
        hook = db.session.scalar(select(Webhook).join(ApiClient).where(ApiClient.name == "client-a"))
        assert (hook.url, hook.events) == ("https://y.vn/", "alert.created")
        assert new.stdout.strip() not in (hook.secret_salt, hook.url)  # the secret itself is not stored


def test_nobody_listening_costs_one_cached_check(make_loaded_app, receiver):
    app = make_loaded_app(WTF_CSRF_ENABLED=False, WEBHOOK_SUBSCRIBER_CACHE_SECONDS=60)
    seed_api_units(app)
    from survey_app.extensions import db
    from survey_app.services import webhooks

    webhooks.forget_subscribers()
    with app.app_context():
        seen = []
        listener = lambda *a: seen.append(a[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            assert webhooks.any_subscribers("rating.dissatisfied") is False
            assert webhooks.any_subscribers("rating.dissatisfied") is False
            assert len([s for s in seen if "webhooks" in s]) == 1
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
    rec = receiver()
    _set_hook(app, "client-p", rec.url, events="rating.dissatisfied")  # a change in this process is seen at once
    _rate(app, "P-A", 1)
    assert len(_deliveries(app)) == 1
    webhooks.forget_subscribers()


def test_admin_page_sets_webhook_lists_deliveries_and_dead_letters_and_resends(make_loaded_app, receiver, backend):
    from survey_app.extensions import db
    from survey_app.models import ApiClient, AuditLog, Job, WebhookDelivery
    from survey_app.services.webhooks import verify

    app = make_loaded_app(WTF_CSRF_ENABLED=True, STAFF_LOGIN_RATE="1000 per minute")
    seed_api_units(app)
    with app.app_context():
        make_user("boss", role="admin")
        make_user("lead", role="unit_leader", unit=None)
        db.session.commit()
        cid = db.session.scalar(select(ApiClient.id).where(ApiClient.name == "client-p"))
    from tests.helpers import csrf_login

    staff = app.test_client()
    assert csrf_login(staff, "boss").status_code == 302
    rec = receiver([200])
    token = csrf_token_of(staff, "/staff/admin/api")
    form = {"url": rec.url, "event_rating.dissatisfied": "1"}
    assert staff.post(f"/staff/admin/api/{cid}/webhook", data=form).status_code == 400  # no CSRF token
    r = staff.post(f"/staff/admin/api/{cid}/webhook", data=dict(form, csrf_token=token))
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    secret = re.search(r'<code id="webhook-secret">([^<]+)</code>', r.get_data(as_text=True)).group(1)
    bad = staff.post(f"/staff/admin/api/{cid}/webhook", data=dict(form, url="ftp://x", csrf_token=token))
    assert bad.status_code == 400 and "https://" in bad.get_data(as_text=True)
    none = staff.post(f"/staff/admin/api/{cid}/webhook", data={"url": rec.url, "csrf_token": token})
    assert none.status_code == 400
    _rate(app, "P-A", 1)
    _rate(app, "P-B", 2)
    assert _run(app) == 2
    assert all(verify(secret, q["headers"]["X-SIPAS-Timestamp"], q["body"], q["headers"]["X-SIPAS-Signature"])
               for q in rec.requests)
    with app.app_context():  # make the second one a dead letter
        d2 = db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()[1]
        d2.status, d2.last_status, d2.last_error, d2.attempts = "dead", 500, "HTTP 500", 6
        db.session.get(Job, d2.job_id).status = "dead"
        db.session.commit()
        did = d2.id
    page = staff.get("/staff/admin/api").get_data(as_text=True)
    dead = page.split('id="dead-table"')[1].split("</table>")[0]
    log = page.split('id="delivery-table"')[1].split("</table>")[0]
    assert f">{did}</th>" in dead and "HTTP 500" in dead and "P-B" in dead
    assert log.count("rating.dissatisfied") == 2 and "P-A" in log and "đã gửi" in log
    assert secret not in page and rec.url in page
    assert staff.post(f"/staff/admin/api/deliveries/{did}/resend").status_code == 400  # CSRF
    r = staff.post(f"/staff/admin/api/deliveries/{did}/resend", data={"csrf_token": token})
    assert r.status_code == 302
    assert _run(app) == 1 and len(rec.requests) == 3
    with app.app_context():
        assert db.session.get(WebhookDelivery, did).status == "delivered"
        entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "api.webhook_resend"))
        assert entry.actor == "boss" and entry.target_id == str(did)
        assert db.session.scalar(select(func.count()).select_from(AuditLog)
                                 .where(AuditLog.action == "api.webhook_set")) == 1
    r = staff.post(f"/staff/admin/api/{cid}/webhook/off", data={"csrf_token": token})
    assert r.status_code == 302
    assert "Không có thư chết" in staff.get("/staff/admin/api").get_data(as_text=True)
    other = app.test_client()
    assert csrf_login(other, "lead").status_code == 302
    assert other.get("/staff/admin/api").status_code == 403
    otoken = csrf_token_of(other, "/staff/")
    assert other.post(f"/staff/admin/api/deliveries/{did}/resend", data={"csrf_token": otoken}).status_code == 403
