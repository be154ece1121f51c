"""A responses export larger than a page can wait for becomes a background job
(services.jobs): the page offers it, a POST queues it (audited), the worker
writes the file under instance/exports/ named by a token, and only the
requester downloads it — the scope checked again, until it expires."""
import csv
import datetime as dt
import io

from sqlalchemy import select

from survey_app.extensions import db
from survey_app.models import AuditLog, Job, User


def _queue(c, code="P"):
    page = c.get(f"/staff/units/{code}/responses.csv")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "Chuẩn bị tệp" in html and "170" in html
    r = c.post(f"/staff/units/{code}/responses-export?period=" + html.split("period=")[1].split('"')[0])
    assert r.status_code == 303 and r.headers["Location"].endswith("/staff/exports")
    return r


def _token(app):
    with app.app_context():
        job = db.session.scalar(select(Job).where(Job.kind == "export_responses").order_by(Job.id.desc()))
        return job.payload["token"], job.id


def _run_jobs(app):
    from survey_app.services import jobs

    with app.app_context():
        return jobs.run_due()


def test_large_export_is_a_job_with_a_private_expiring_download(make_loaded_app, frozen_clock):
    from tests.factories import seed_world
    from tests.helpers import login

    # the province's 170 rows are "large" here
    app = make_loaded_app(EXPORT_ASYNC_ROWS=100, WTF_CSRF_ENABLED=False, STAFF_LOGIN_RATE="1000 per minute")
    world = seed_world(app)
    c = app.test_client()
    login(c, world["users"]["analyst"])
    streamed = c.get("/staff/units/P-B/responses.csv")  # 40 rows: streamed as before
    assert streamed.is_streamed and streamed.mimetype == "text/csv"
    assert len(streamed.get_data(as_text=True).strip().splitlines()) == 41
    _queue(c)
    token, job_id = _token(app)
    listing = c.get("/staff/exports").get_data(as_text=True)
    assert "đang chờ" in listing and token not in listing  # no link before the file exists
    assert c.get(f"/staff/exports/{token}").status_code == 404
    assert _run_jobs(app) == 1
    with app.app_context():
        from survey_app.services.csv_export import exports_dir

        files = [f.name for f in exports_dir().iterdir()]
        assert files == [f"{token}.csv"]  # named by the token only
        assert db.session.get(Job, job_id).result == "170"
    listing = c.get("/staff/exports").get_data(as_text=True)
    assert f"/staff/exports/{token}" in listing and "sẵn sàng" in listing
    r = c.get(f"/staff/exports/{token}")
    assert r.status_code == 200 and "attachment" in r.headers["Content-Disposition"]
    assert "responses_P_" in r.headers["Content-Disposition"]
    text = r.get_data(as_text=True).lstrip("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 170 and "Q-Y" not in {x["unit_code"] for x in rows}
    # another user (even an admin) cannot download it
    other = app.test_client()
    login(other, world["users"]["admin"])
    assert other.get(f"/staff/exports/{token}").status_code == 404
    # the requester's scope is checked again at download
    with app.app_context():
        u = db.session.scalar(select(User).where(User.username == world["users"]["analyst"]))
        keep = u.unit_id
        u.unit_id = db.session.scalar(select(User.unit_id).where(User.username == world["users"]["unit_leader"]))
        db.session.commit()
    assert c.get(f"/staff/exports/{token}").status_code == 404
    with app.app_context():
        u = db.session.scalar(select(User).where(User.username == world["users"]["analyst"]))
        u.unit_id = keep
        db.session.commit()
    assert c.get(f"/staff/exports/{token}").status_code == 200
    # it expires
    with app.app_context():
        job = db.session.get(Job, job_id)
        job.finished_at = job.finished_at - dt.timedelta(hours=25)
        db.session.commit()
    r = c.get(f"/staff/exports/{token}")
    assert r.status_code == 410 and "hết hạn" in r.get_data(as_text=True)
    with app.app_context():
        actions = [a for a in db.session.scalars(select(AuditLog.action))]
        assert "export_responses_queued" in actions and actions.count("download_export") == 2


def test_queueing_needs_the_export_right_scope_and_csrf(make_loaded_app, frozen_clock):
    from tests.factories import seed_world
    from tests.helpers import csrf_login, csrf_token_of

    app = make_loaded_app(EXPORT_ASYNC_ROWS=10, WTF_CSRF_ENABLED=True)
    world = seed_world(app)
    c = app.test_client()
    csrf_login(c, world["users"]["analyst"])
    assert c.post("/staff/units/P/responses-export").status_code == 400  # no CSRF token
    token = csrf_token_of(c, "/staff/data/import")
    assert c.post("/staff/units/Q-Y/responses-export", data={"csrf_token": token}).status_code == 404  # outside
    clerk = app.test_client()
    csrf_login(clerk, world["users"]["counter_staff"])  # no export right
    assert clerk.post("/staff/units/P-A/responses-export", data={"csrf_token": token}).status_code in (400, 403)
    with app.app_context():
        assert db.session.scalar(select(Job).where(Job.kind == "export_responses")) is None
