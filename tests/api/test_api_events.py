"""POST /api/v1/dossier-events: idempotent, partial batches, every error class."""
from __future__ import annotations

import datetime as dt

import pytest

from tests.factories import dossier_event
from tests.helpers import count, fingerprint


def _dossier(app, code):
    from sqlalchemy import select

    from survey_app.extensions import db
    from survey_app.models import Dossier

    with app.app_context():
        d = db.session.scalar(select(Dossier).where(Dossier.code == code))
        db.session.expunge_all()
        return d


def test_a_batch_sent_twice_changes_nothing(api_world, api):
    from survey_app.models import Dossier, DossierEvent

    batch = [dossier_event(code=f"HS-{i}", unit="P-A") for i in range(5)]
    batch += [dossier_event(code=f"HS-{i}", unit="P-A", event="tra_ket_qua") for i in range(3)]
    first = api("p").events(*batch).json
    assert first["accepted"] == 8 and first["duplicates"] == 0 and first["errors"] == 0
    assert [r["status"] for r in first["results"]] == ["accepted"] * 8
    before = fingerprint(api_world["app"])
    second = api("p").events(*batch).json
    assert second["accepted"] == 0 and second["duplicates"] == 8
    assert [r["status"] for r in second["results"]] == ["duplicate"] * 8
    assert fingerprint(api_world["app"]) == before
    assert count(api_world["app"], Dossier) == 5 and count(api_world["app"], DossierEvent) == 8


def test_the_same_event_twice_in_one_batch_is_one_event(api_world, api):
    from survey_app.models import DossierEvent

    ev = dossier_event(code="HS-D", unit="P-A")
    res = api("p").events(ev, dict(ev)).json["results"]
    assert [r["status"] for r in res] == ["accepted", "duplicate"]
    assert count(api_world["app"], DossierEvent) == 1


def test_event_identity_is_code_event_and_time(api_world, api):
    from survey_app.models import DossierEvent

    api("p").events(dossier_event(code="HS-T", unit="P-A", event="cap_nhat", ThoiDiemXuLy="20250302100000"))
    r = api("p").events(dossier_event(code="HS-T", unit="P-A", event="cap_nhat", ThoiDiemXuLy="20250303100000"),
                        # the same instant written in ISO 8601 (UTC) is the same event
                        dossier_event(code="HS-T", unit="P-A", event="cap_nhat",
                                      ThoiDiemXuLy="2025-03-02T03:00:00+00:00"))
    assert [x["status"] for x in r.json["results"]] == ["accepted", "duplicate"]
    assert count(api_world["app"], DossierEvent) == 2


def test_portal_times_are_local_time(api_world, api):
    api("p").events(dossier_event(code="HS-L", unit="P-A", event="tra_ket_qua", NgayTra="20250314233000"))
    d = _dossier(api_world["app"], "HS-L")
    assert d.returned_at == dt.datetime(2025, 3, 14, 16, 30, tzinfo=dt.timezone.utc)
    assert d.returned_on == dt.date(2025, 3, 14)  # the local day, not the UTC one
    assert d.received_at == dt.datetime(2025, 3, 1, 1, 30, tzinfo=dt.timezone.utc)
    assert (d.stratum, d.procedure_code, d.status) == ("ho_tich", "1.001234", "10")


BAD = [
    (lambda: "not an object", "not_an_object", None),
    (lambda: dossier_event(MaHoSo=None), "missing", "MaHoSo"),
    (lambda: dossier_event(SuKien="xoa"), "invalid_value", "SuKien"),
    (lambda: dossier_event(MaDonVi=None), "missing", "MaDonVi"),
    (lambda: dossier_event(MaDonVi="NOPE"), "out_of_scope", "MaDonVi"),
    (lambda: dossier_event(MaDonVi="Q-Y"), "out_of_scope", "MaDonVi"),
    (lambda: dossier_event(NgayTiepNhan="2025-03-01T08:30:00"), "invalid_time", "NgayTiepNhan"),
    (lambda: dossier_event(NgayTiepNhan="20251301083000"), "invalid_time", "NgayTiepNhan"),
    (lambda: dossier_event(NgayTiepNhan="yesterday"), "invalid_time", "NgayTiepNhan"),
    (lambda: dossier_event(NgayTiepNhan=20250301083000), "invalid_time", "NgayTiepNhan"),
    (lambda: dossier_event(NgayTiepNhan=None), "missing", "NgayTiepNhan"),
    (lambda: dossier_event(event="tra_ket_qua", NgayTra=None), "missing", "NgayTra"),
    (lambda: dossier_event(event="cap_nhat", ThoiDiemXuLy=None), "missing", "ThoiDiemXuLy"),
    (lambda: dossier_event(event="tra_ket_qua", NgayTra="20250201000000"), "invalid_value", "NgayTra"),
    (lambda: dossier_event(MaHoSo="x" * 101), "too_long", "MaHoSo"),
    (lambda: dossier_event(MaTTHC={"a": 1}), "invalid_type", "MaTTHC"),
    (lambda: dossier_event(MaHoSo=True), "invalid_type", "MaHoSo"),
    (lambda: dossier_event(MaHoSo="HS\n1"), "invalid_characters", "MaHoSo"),
    (lambda: dossier_event(MaDonVi="\x00"), "invalid_characters", "MaDonVi"),  # PostgreSQL refuses NUL: never 500
]


@pytest.mark.parametrize("make, code, field", BAD, ids=[f"{b[1]}-{b[2]}-{i}" for i, b in enumerate(BAD)])
def test_every_error_class_names_field_and_reason_and_never_blocks_good_events(api_world, api, make, code, field):
    from survey_app.models import Dossier, DossierEvent

    bad = make()
    if isinstance(bad, dict) and bad.get("MaDonVi") == "XA-TP":
        bad["MaDonVi"] = "P-A"
    r = api("a").events(dossier_event(code="GOOD-1", unit="P-A"), bad, dossier_event(code="GOOD-2", unit="P-A"))
    assert r.status_code == 200
    res = r.json["results"]
    assert [x["status"] for x in res] == ["accepted", "error", "accepted"]
    assert res[1]["code"] == code and res[1].get("field") == field and res[1]["message"]
    assert r.json["errors"] == 1 and r.json["accepted"] == 2
    # Nothing of the bad event was written: only the two good dossiers and their events.
    assert count(api_world["app"], Dossier) == 2 and count(api_world["app"], DossierEvent) == 2


@pytest.mark.parametrize("body, status, code", [
    ({"events": []}, 400, "empty_batch"),
    ({"events": {}}, 400, "invalid_body"),
    ({"rows": []}, 400, "invalid_body"),
    ([1, 2], 400, "invalid_json"),
    ({"events": [{}] * 1001}, 413, "batch_too_large"),
])
def test_batch_errors(api, body, status, code):
    r = api("a").post("/dossier-events", body)
    assert r.status_code == status and r.json["error"]["code"] == code


def test_a_body_too_large_is_413_json(api_world, api):
    api_world["app"].config["API_MAX_BODY_BYTES"] = 1000
    r = api("a").events(*[dossier_event(code=f"BIG-{i}", unit="P-A") for i in range(20)])
    assert r.status_code == 413 and r.json["error"]["code"] == "too_large"


def test_a_body_that_is_not_json(api_world):
    http, key = api_world["http"], api_world["keys"]["a"]
    r = http.post("/api/v1/dossier-events", data="events=1", headers={"Authorization": f"Bearer {key}"},
                  content_type="application/x-www-form-urlencoded")
    assert r.status_code == 415 and r.json["error"]["code"] == "unsupported_media_type"
    r = http.post("/api/v1/dossier-events", data="{not json", headers={"Authorization": f"Bearer {key}"},
                  content_type="application/json")
    assert r.status_code == 400 and r.json["error"]["code"] == "invalid_json"


def test_officer_is_kept_internal_only(api_world, api):
    r = api("p").events(dossier_event(code="HS-O", unit="P-A", event="tra_ket_qua", NguoiXuLy="Nguyễn Văn Cán Bộ"))
    assert r.json["accepted"] == 1
    assert _dossier(api_world["app"], "HS-O").officer == "Nguyễn Văn Cán Bộ"
    for resp in (r, api("p").get("/dossiers/HS-O/link"), api("p").get("/results?period=2025")):
        assert "Cán Bộ" not in resp.get_data(as_text=True)


def test_complaints_add_up_and_fields_follow_the_latest_event(api_world, api):
    api("p").events(dossier_event(code="HS-C", unit="P-A"),
                    dossier_event(code="HS-C", unit="P-A", event="phan_anh", ThoiDiemXuLy="20250303080000"),
                    dossier_event(code="HS-C", unit="P-A", event="phan_anh", ThoiDiemXuLy="20250304080000"),
                    dossier_event(code="HS-C", unit="P-A", event="tra_ket_qua", MaLinhVuc="dat_dai"))
    api("p").events(dossier_event(code="HS-C", unit="P-A", event="phan_anh", ThoiDiemXuLy="20250303080000"))
    d = _dossier(api_world["app"], "HS-C")
    assert d.complaints == 2 and d.stratum == "dat_dai" and d.returned_on == dt.date(2025, 3, 5)


def test_a_returned_dossier_with_consent_gets_its_link_once_and_the_number_is_never_kept(api_world, api, caplog):
    import logging

    from survey_app.services.gateway import gateway

    ev = dossier_event(code="HS-SMS", unit="P-A", event="tra_ket_qua", SoDienThoai="0912345678", DongYNhanTin=True)
    no_consent = dossier_event(code="HS-NOSMS", unit="P-A", event="tra_ket_qua", SoDienThoai="0987654321")
    with caplog.at_level(logging.INFO):
        r = api("a").events(ev, no_consent).json
    assert r["results"][0]["sent"] is True and "sent" not in r["results"][1]
    with api_world["app"].app_context():
        sent = gateway().sent
        assert sent == [("******5678", sent[0][1])] and "http://sipas.test/c/" in sent[0][1]
        assert "HS-SMS" not in sent[0][1]
    assert _dossier(api_world["app"], "HS-SMS").offered_at is not None  # sent = offered
    assert _dossier(api_world["app"], "HS-NOSMS").offered_at is None
    # Another tra_ket_qua of the same dossier (a correction) sends nothing more.
    api("a").events(dict(ev, NgayTra="20250306100000"))
    with api_world["app"].app_context():
        assert len(gateway().sent) == 1
    assert "0912345678" not in caplog.text and "5678" in caplog.text
    with api_world["app"].app_context():
        import sqlalchemy as sa

        from survey_app.extensions import db

        for table in db.metadata.sorted_tables:  # the number is in no row of any table
            for row in db.session.execute(sa.select(table)).all():
                assert "0912345678" not in repr(tuple(row)), table.name
    bad = api("a").events(dict(ev, MaHoSo="HS-BADPHONE", SoDienThoai="12")).json["results"][0]
    assert bad["code"] == "invalid_value" and bad["field"] == "SoDienThoai"


def test_a_later_event_without_a_field_keeps_the_stored_value(api_world, api):
    """Fields an event does not carry keep what earlier events stored, for every dossier of a
    batch that mixes dossiers carrying a field with dossiers that do not."""
    first = [dossier_event(code="HS-K1", unit="P-A", MaTTHC="2.000001", NguoiXuLy="Cán bộ A"),
             dossier_event(code="HS-K2", unit="P-A", MaTTHC="2.000002", NgayHenTra=None)]
    assert api("p").events(*first).json["accepted"] == 2
    later = [dossier_event(code="HS-K1", unit="P-A", event="cap_nhat", MaTTHC=None, MaLinhVuc=None, HinhThuc=None,
                           NgayTiepNhan=None, NgayHenTra=None, TrangThaiHoSo="5"),
             dossier_event(code="HS-K2", unit="P-A", event="cap_nhat", MaTTHC=None, MaLinhVuc="dat_dai",
                           HinhThuc=None, NgayTiepNhan=None, NgayHenTra="20250312170000", TrangThaiHoSo=None)]
    assert api("p").events(*later).json["accepted"] == 2
    k1, k2 = _dossier(api_world["app"], "HS-K1"), _dossier(api_world["app"], "HS-K2")
    assert (k1.procedure_code, k1.stratum, k1.channel, k1.status, k1.officer) == (
        "2.000001", "ho_tich", "1", "5", "Cán bộ A")
    assert k1.received_at == dt.datetime(2025, 3, 1, 1, 30, tzinfo=dt.timezone.utc)
    assert k1.due_at == dt.datetime(2025, 3, 10, 10, 0, tzinfo=dt.timezone.utc)
    assert (k2.procedure_code, k2.stratum, k2.status, k2.officer) == ("2.000002", "dat_dai", "2", None)
    assert k2.due_at == dt.datetime(2025, 3, 12, 10, 0, tzinfo=dt.timezone.utc) and k2.returned_on is None


def test_a_full_batch_of_new_and_known_dossiers(api_world, api):
    """MAX_BATCH events, half of them for dossiers stored by an earlier batch: every result in
    order, each event stored once, each dossier once."""
    from survey_app.models import Dossier, DossierEvent
    from survey_app.services.integration import MAX_BATCH

    half = MAX_BATCH // 2
    api("p").events(*[dossier_event(code=f"HS-F{i}", unit="P-A") for i in range(half)])
    batch = [dossier_event(code=f"HS-F{i}", unit="P-A", event="tra_ket_qua") for i in range(half)]
    batch += [dossier_event(code=f"HS-G{i}", unit="P-B") for i in range(half - 1)]
    batch.insert(7, dossier_event(code="HS-F3", unit="P-A"))     # already stored: a duplicate
    res = api("p").events(*batch).json
    assert res["accepted"] == MAX_BATCH - 1 and res["duplicates"] == 1
    assert [r["index"] for r in res["results"]] == list(range(MAX_BATCH))
    assert res["results"][7]["status"] == "duplicate"
    assert count(api_world["app"], Dossier) == MAX_BATCH - 1
    assert count(api_world["app"], DossierEvent) == MAX_BATCH + half - 1
    assert _dossier(api_world["app"], "HS-F9").returned_on == dt.date(2025, 3, 5)
