"""Rating links, offered counts, responses via links, volumes from events,
the QĐ 766 metric, results and the log redaction of dossier codes."""
from __future__ import annotations

import logging

import pytest

from tests.factories import dossier_event
from tests.helpers import submit

BASE = "http://sipas.test"


def _returned(code, unit="P-A", stratum="ho_tich", **kw):
    return [dossier_event(code=code, unit=unit, MaLinhVuc=stratum, **kw),
            dossier_event(code=code, unit=unit, event="tra_ket_qua", MaLinhVuc=stratum, **kw)]


def test_link_is_minted_once_counts_offered_once_and_hides_the_code(api_world, api):
    from sqlalchemy import func, select

    from survey_app.extensions import db
    from survey_app.models import AuditLog, Dossier

    api("a").events(*_returned("000.00.12.H12-250301-0001"))
    first = api("a").get("/dossiers/000.00.12.H12-250301-0001/link")
    assert first.status_code == 200
    url = first.json["url"]
    assert url.startswith(BASE + "/c/") and "?d=" in url
    assert "H12-250301" not in url and "0001" not in url.split("?d=")[1][:4] + url.split("/c/")[1].split("?")[0]
    assert first.json["qr_svg"].startswith("<svg") and "</svg>" in first.json["qr_svg"]
    again = api("a").get("/dossiers/000.00.12.H12-250301-0001/link")
    assert again.json["url"] == url and again.json["offered_at"] == first.json["offered_at"]
    with api_world["app"].app_context():
        assert db.session.scalar(select(func.count()).select_from(Dossier).where(Dossier.offered_at.is_not(None))) == 1
        assert db.session.scalar(select(func.count()).select_from(AuditLog)
                                 .where(AuditLog.action == "api.dossier_offered")) == 1
    row = _unit_row(api("a"), "P-A")
    assert row["offered"] == 1 and row["link_responses"] == 0 and row["link_response_rate"] == 0


def test_unknown_dossier_is_404_and_unit_without_counter_409(api_world, api):
    from survey_app.extensions import db
    from tests.factories import make_unit

    assert api("p").get("/dossiers/NOPE/link").status_code == 404
    with api_world["app"].app_context():
        from sqlalchemy import select

        from survey_app.models import Unit

        make_unit("P-C", parent=db.session.scalar(select(Unit).where(Unit.code == "P")))
        db.session.commit()
    api("p").events(dossier_event(code="HS-NC", unit="P-C"))
    r = api("p").get("/dossiers/HS-NC/link")
    assert r.status_code == 409 and r.json["error"]["code"] == "no_counter"


def _unit_row(client, code, period="2025"):
    r = client.get(f"/results?period={period}")
    assert r.status_code == 200, r.json
    rows = [x for x in r.json["units"] if x["unit_code"] == code and x["level"] == "unit"]
    assert rows, r.json
    return rows[0]


def test_a_rating_through_the_link_counts_as_a_response_via_link(api_world, api):
    from tests.helpers import ANSWERS

    api("a").events(*_returned("HS-R1"), *_returned("HS-R2"))
    url = api("a").get("/dossiers/HS-R1/link").json["url"]
    api("a").get("/dossiers/HS-R2/link")
    path = url[len(BASE):]
    http = api_world["app"].test_client()
    r = submit(http, path, dict(ANSWERS, overall="2"))
    assert r.status_code == 303, r.data[:300]
    assert http.get(path).status_code == 409  # one rating per dossier, as before
    row = _unit_row(api("a"), "P-A")
    assert (row["offered"], row["link_responses"], row["link_response_rate"]) == (2, 1, 0.5)
    # Rated dissatisfied (overall 2): the QĐ 766 metric subtracts it.
    assert row["m766"]["handled"] == 2 and row["m766"]["rate"] == 0.5


def test_poster_only_units_have_no_offered_count(api_world, api):
    api("p").events(*_returned("HS-X1"))
    r = api("p").get("/results?period=2025").json
    b = [x for x in r["units"] if x["unit_code"] == "P-B"]
    for x in b:
        assert x["offered"] is None and x["link_response_rate"] is None and x["m766"]["rate"] is None
    assert "100%" in r["m766_note"] or "100 %" in r["m766_note"]


def test_n_from_events_equals_a_hand_count(api_world, api):
    from survey_app.services import stats

    events = []
    # Returned in report year 2025 (15/12/2024 – 14/12/2025, local days): 3 ho_tich + 2 dat_dai in P-A.
    for i, (stratum, ngay_tra) in enumerate([("ho_tich", "20250305160000"), ("ho_tich", "20241215000500"),
                                             ("ho_tich", "20251214235900"), ("dat_dai", "20250601080000"),
                                             ("dat_dai", "20250701080000"),
                                             # outside: 14/12/2024 23:59 and 15/12/2025 00:00 local
                                             ("ho_tich", "20241214235900"), ("ho_tich", "20251215000000")]):
        events.append(dossier_event(code=f"N-{i}", unit="P-A", event="tra_ket_qua", MaLinhVuc=stratum,
                                    NgayTiepNhan="20241201080000", NgayTra=ngay_tra))
    events.append(dossier_event(code="N-open", unit="P-A"))  # received, never returned: not in N
    assert api("p").events(*events).json["accepted"] == 8
    with api_world["app"].app_context():
        from survey_app.services.periods import resolve_period

        frame = stats.volumes_frame(resolve_period("2025"))
        got = {(r.unit_code, r.stratum): r.transactions for r in frame.itertuples()}
    assert got == {("P-A", "ho_tich"): 3, ("P-A", "dat_dai"): 2}


def test_mixing_typed_volumes_and_events_is_refused_with_unit_and_period(api_world, api):
    api("p").events(*_returned("HS-M"))
    r = api("p").post("/volumes", {"rows": [{"MaDonVi": "P-A", "TuNgay": "2025-03-01", "DenNgay": "2025-03-31",
                                            "MaLinhVuc": "ho_tich", "SoHoSo": 10}]})
    assert r.status_code == 409 and r.json["error"]["code"] == "mixed_sources" and "P-A" in r.json["error"]["message"]
    # A typed row that got in another way (a CSV import) makes the index refuse, naming unit and period.
    with api_world["app"].app_context():
        from sqlalchemy import select

        from survey_app.extensions import db
        from survey_app.models import Unit
        from tests.factories import make_volume

        make_volume(db.session.scalar(select(Unit).where(Unit.code == "P-A")), 10)
        db.session.commit()
    r = api("p").get("/results?period=2025")
    assert r.status_code == 409 and r.json["error"]["code"] == "invalid_data"
    assert "P-A" in r.json["error"]["message"] and "2025" in r.json["error"]["message"]


def test_volumes_are_stored_and_bad_rows_refuse_the_batch(api_world, api):
    from survey_app.models import Volume
    from tests.helpers import count

    row = {"MaDonVi": "P-B", "TuNgay": "2025-01-01", "DenNgay": "2025-03-31", "MaLinhVuc": "ho_tich", "SoHoSo": 40}
    assert api("p").post("/volumes", {"rows": [row]}).json == {"stored": 1}
    assert api("p").post("/volumes", {"rows": [dict(row, SoHoSo=50)]}).json == {"stored": 1}  # replaces
    assert count(api_world["app"], Volume) == 1
    r = api("p").post("/volumes", {"rows": [dict(row, MaDonVi="P-A"), dict(row, SoHoSo=-1)]})
    assert r.status_code == 400 and r.json["errors"][0]["index"] == 1 and r.json["error"]["field"] == "SoHoSo"
    assert count(api_world["app"], Volume) == 1
    r = api("a").post("/volumes", {"rows": [row]})
    assert r.status_code == 400 and r.json["error"]["code"] == "out_of_scope"
    r = api("p").post("/volumes", {"rows": [dict(row, DenNgay="2024-12-31")]})
    assert r.json["error"]["field"] == "DenNgay"
    r = api("p").post("/volumes", {"rows": [dict(row, TuNgay="01/01/2025")]})
    assert r.json["error"]["code"] == "invalid_date"


def test_m766_on_a_hand_made_example(api_world, api):
    """10 dossiers returned: 1 rated dissatisfied, 1 with a complaint, 1 late,
    1 late AND with a complaint (subtracted once), 1 rated satisfied, 5 unrated.
    r = (10 - 4) / 10 = 0.6; points = min(6, 6 * 0.6 / 0.9) = 4.0."""
    from tests.helpers import ANSWERS

    ev = []
    for i in range(10):
        late = i in (2, 3)
        ev += _returned(f"M-{i}", NgayHenTra="20250304170000" if late else "20250310170000")
    ev.append(dossier_event(code="M-1", unit="P-A", event="phan_anh", ThoiDiemXuLy="20250306090000"))
    ev.append(dossier_event(code="M-3", unit="P-A", event="phan_anh", ThoiDiemXuLy="20250306090000"))
    assert api("a").events(*ev).json["errors"] == 0
    http = api_world["app"].test_client()
    for code, overall in (("M-0", "1"), ("M-4", "5")):
        url = api("a").get(f"/dossiers/{code}/link").json["url"]
        assert submit(http, url[len(BASE):], dict(ANSWERS, overall=overall)).status_code == 303
    row = _unit_row(api("a"), "P-A")
    assert row["m766"] == {"handled": 10, "rate": pytest.approx(0.6), "points": pytest.approx(4.0)}
    # The province row adds up its units.
    prov = [x for x in api("p").get("/results?period=2025").json["units"] if x["unit_code"] == "P"]
    assert prov and prov[0]["m766"]["handled"] == 10 and prov[0]["offered"] == 2
    from survey_app.services.integration import m766

    assert m766(0, 0) == (None, 0.0) and m766(100, 5)[1] == 6.0


def test_dossier_codes_never_reach_a_log_line(api_world, api, caplog):
    from survey_app.api import RedactDossierCodes

    record = logging.LogRecord("werkzeug", logging.INFO, __file__, 1, '"%s" %s %s',
                               ("GET /api/v1/dossiers/HS-SECRET-9/link HTTP/1.1", "200", "-"), None)
    RedactDossierCodes().filter(record)
    assert "HS-SECRET-9" not in record.getMessage() and "/api/v1/dossiers/<MaHoSo>/link" in record.getMessage()

    class Atoms(dict):  # gunicorn's access-log atoms: a dict subclass looked up by the format
        pass

    atoms = Atoms(r="GET /api/v1/dossiers/HS-SECRET-9/link HTTP/1.1", U="/api/v1/dossiers/HS-SECRET-9/link", s="200")
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, '%(r)s %(U)s %(s)s', (atoms,), None)
    RedactDossierCodes().filter(record)
    assert "HS-SECRET-9" not in record.getMessage() and isinstance(record.args, Atoms)
    # Installed for every logger of the process: a record made anywhere is redacted.
    with caplog.at_level(logging.INFO):
        logging.getLogger("werkzeug").info('"%s" %s', "GET /api/v1/dossiers/HS-SECRET-9/link", 200)
        logging.getLogger("survey_app.anything").warning("path %s", "/api/v1/dossiers/HS-SECRET-9/link")
        api("a").get("/dossiers/HS-SECRET-9/link")
    assert caplog.records and "HS-SECRET-9" not in caplog.text
