"""Keys, rights, scope, rate limits, CSRF and the CLI of API v1."""
from __future__ import annotations

from tests.api.conftest import Api
from tests.factories import dossier_event


def test_no_key_wrong_key_and_revoked_key_get_401_json(api_world, api):
    http = api_world["http"]
    r = http.post("/api/v1/dossier-events", json={"events": []})
    assert r.status_code == 401
    assert r.json["error"]["code"] == "unauthorized"
    assert "khóa API" in r.json["error"]["message"]  # Vietnamese first
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert Api(http, "sipas_not-a-key").get("/results?period=2025").status_code == 401
    assert Api(http, api_world["keys"]["p"] + "x").get("/results?period=2025").status_code == 401
    assert api("p").get("/results?period=2025").status_code == 200
    with api_world["app"].app_context():
        from survey_app.services.integration import revoke_client

        revoke_client("client-p", actor="test")
    assert api("p").get("/results?period=2025").status_code == 401


def test_key_is_stored_hashed_only(api_world):
    from sqlalchemy import select

    from survey_app.extensions import db
    from survey_app.models import ApiClient

    key = api_world["keys"]["a"]
    with api_world["app"].app_context():
        c = db.session.scalar(select(ApiClient).where(ApiClient.name == "client-a"))
        assert key not in (c.key_hash, c.key_prefix) and len(c.key_hash) == 64
        assert key.startswith(c.key_prefix)


def test_a_right_not_granted_is_403(api):
    r = api("reader").events(dossier_event(unit="P-A"))
    assert r.status_code == 403 and r.json["error"]["code"] == "forbidden"
    assert api("reader").get("/dossiers/HS-1/link").status_code == 403
    assert api("reader").get("/results?period=2025").status_code == 200


def test_a_client_of_unit_a_posting_for_unit_b_is_refused_clearly(api):
    r = api("a").events(dossier_event(code="HS-B", unit="P-B"), dossier_event(code="HS-A", unit="P-A"))
    assert r.status_code == 200
    bad, good = r.json["results"]
    assert bad["status"] == "error" and bad["code"] == "out_of_scope" and bad["field"] == "MaDonVi"
    assert "P-B" in bad["message"] and "phạm vi" in bad["message"]
    assert good["status"] == "accepted"
    # The province client owns B: the dossier of B is then invisible to A (404), visible to P.
    assert api("p").events(dossier_event(code="HS-B", unit="P-B")).json["accepted"] == 1
    assert api("a").get("/dossiers/HS-B/link").status_code == 404
    assert api("p").get("/dossiers/HS-B/link").status_code == 200
    # An event of A for B's dossier (naming its own unit) cannot take the dossier over.
    r = api("a").events(dossier_event(code="HS-B", unit="P-A", event="cap_nhat"))
    assert r.json["results"][0]["code"] == "out_of_scope" and r.json["results"][0]["field"] == "MaHoSo"
    assert api("a").get("/results?period=2025&unit=P-B").status_code == 404
    assert api("a").get("/results?period=2025&unit=Q-Y").status_code == 404
    assert api("a").get("/results?period=2025&unit=NOPE").status_code == 404
    assert api("a").get("/results?period=2025&unit=%00").status_code == 404  # NUL: a 404, not a 500 (PostgreSQL)
    assert api("a").get("/dossiers/HS%00A/link").status_code == 404
    r = api("p").post("/volumes", {"rows": [{"MaDonVi": "\x00", "TuNgay": "2025-01-01", "DenNgay": "2025-01-31",
                                            "SoHoSo": 1}]})
    assert r.status_code == 400 and r.json["error"]["code"] == "out_of_scope"


def test_rate_limit_is_per_client(make_loaded_app):
    from survey_app.extensions import db
    from tests.factories import make_api_client, make_unit

    app = make_loaded_app(API_RATE_LIMIT="3/minute", RATELIMIT_ENABLED=True)  # the limiter keeps the last app's flag
    with app.app_context():
        u = make_unit("L")
        db.session.commit()
        k1 = make_api_client(u, "one")[1]
        k2 = make_api_client(u, "two")[1]
    http = app.test_client()
    one, two = Api(http, k1), Api(http, k2)
    codes = [one.get("/results?period=2025").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = one.get("/results?period=2025")
    assert r.json["error"]["code"] == "rate_limited"
    assert two.get("/results?period=2025").status_code == 200


def test_csrf_is_not_asked_of_the_api_but_still_of_staff_forms(api_world, api):
    # api_world runs with CSRF enabled: a Bearer POST without a CSRF token is accepted...
    assert api("a").events(dossier_event(unit="P-A")).status_code == 200
    # ...while a staff form POST without one is still refused.
    assert api_world["http"].post("/staff/login", data={"username": "x", "password": "y"}).status_code in (400, 200)
    r = api_world["http"].post("/staff/login", data={"username": "x", "password": "y"})
    assert b"sipas_" not in r.data


def test_unknown_api_path_and_method_answer_json(api):
    r = api("p").get("/nothing-here")
    assert r.status_code == 404 and r.json["error"]["code"] == "not_found"
    r = api("p").get("/dossier-events")
    assert r.status_code == 405 and r.json["error"]["code"] == "method_not_allowed"


def test_cli_create_list_revoke(api_world):
    runner = api_world["app"].test_cli_runner()
    r = runner.invoke(args=["api", "clients", "create", "--name", "igate", "--unit", "P", "--rights",
                            "events,links"])
    assert r.exit_code == 0, r.output
    key = r.stdout.strip().splitlines()[-1]
    assert key.startswith("sipas_")
    http = api_world["http"]
    assert Api(http, key).events(dossier_event(unit="P-A")).status_code == 200
    assert Api(http, key).get("/results?period=2025").status_code == 403
    listing = runner.invoke(args=["api", "clients", "list"]).output
    assert "igate" in listing and "events,links" in listing and key not in listing
    assert runner.invoke(args=["api", "clients", "create", "--name", "igate", "--unit", "P"]).exit_code == 1
    assert runner.invoke(args=["api", "clients", "create", "--name", "x", "--unit", "NOPE"]).exit_code == 1
    bad = runner.invoke(args=["api", "clients", "create", "--name", "x", "--unit", "P", "--rights", "admin"])
    assert bad.exit_code == 2 and "admin" in bad.output
    assert runner.invoke(args=["api", "clients", "revoke", "igate"]).exit_code == 0
    assert Api(http, key).events(dossier_event(unit="P-A")).status_code == 401
    assert runner.invoke(args=["api", "clients", "revoke", "nobody"]).exit_code == 1


def test_writes_are_audited_without_dossier_codes(api_world, api):
    from sqlalchemy import select

    from survey_app.extensions import db
    from survey_app.models import AuditLog

    api("a").events(dossier_event(code="SECRET-CODE-1", unit="P-A"))
    api("a").get("/dossiers/SECRET-CODE-1/link")
    with api_world["app"].app_context():
        rows = db.session.scalars(select(AuditLog).where(AuditLog.action.like("api.%"))).all()
        actions = sorted(r.action for r in rows)
        assert actions == ["api.client_create"] * 4 + ["api.dossier_events", "api.dossier_offered"]
        assert all("SECRET-CODE-1" not in str(r.details) + str(r.target_id) for r in rows)
