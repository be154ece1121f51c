"""The fast export (Core query over the packed pattern; COPY on PostgreSQL)
writes the same bytes as the old export, which read every answer of every
response from the `answers` table: columns, order, escaping, masked comments
and scope."""
import csv
import datetime as dt
import io

import pytest
from sqlalchemy import select

from analysis.schema import ALL_STRATUM, RESPONSE_COLUMNS
from survey_app.extensions import db
from survey_app.models import Instrument, Response, Unit
from survey_app.services import csv_export
from survey_app.services.privacy import mask_pii
from tests.factories import make_counter, make_response, make_unit

UTC = dt.timezone.utc

COMMENTS = [None, "", "=SUM(A1)", "+84 912", "-x", "@home", "\tindent", "a, b", 'say "hi"', "dòng 1\ndòng 2",
            "Cán bộ nhiệt tình", " leading space", "plain"]


def _seed():
    prov = make_unit("P", kind="province")
    a = make_unit("P-A", parent=prov)
    b = make_unit("-B", parent=prov)  # a code a spreadsheet would run
    out = make_unit("Q", kind="province")
    ca = make_counter(a, code="P-A-Q1")
    full = {"access_c1": 1, "access_c2": 0, "access": 4, "staff_c3": 1, "staff": 5, "overall": 4,
            "priority_time": 1, "feedback_c4": 0}
    t0 = dt.datetime(2025, 3, 1, 2, 0, tzinfo=UTC)
    for i in range(60):
        unit = (a, b, out)[i % 3]
        ts = t0 + dt.timedelta(hours=i, microseconds=(i * 137) if i % 4 else 0)
        if i % 5 == 0:
            answers, inst = dict(full, access=1 + i % 5), "sipas-services"
        else:
            answers = {k: 1 + (i + j) % 5 for j, k in enumerate(("overall", "access", "procedure", "staff",
                                                               "result", "feedback")) if (i + j) % 7}
            inst = "counter-quick"
        make_response(unit, answers, counter=ca if unit is a and i % 2 else None, submitted_at=ts,
                      instrument=inst, channel=("qr", "paper", "import")[i % 3],
                      stratum=("ho_tich", ALL_STRATUM, "=dat_dai")[i % 3], excluded=(i % 11 == 0),
                      age_group=(None, "18_29", "under_18")[i % 3], gender=(None, "female")[i % 2],
                      comment=mask_pii(COMMENTS[i % len(COMMENTS)] or "") or COMMENTS[i % len(COMMENTS)])
    # Two responses in the same second: the order is (submitted_at, id).
    make_response(a, {"overall": 5}, submitted_at=t0)
    make_response(a, {"overall": 2}, submitted_at=t0)
    db.session.commit()
    return prov, a, b, out


def _old_export(session, start, end, unit_ids) -> bytes:
    """The export as it was: every answer from the answers table (ORM objects)."""
    cond = [Response.submitted_at >= start, Response.submitted_at < end]
    if unit_ids is not None:
        cond.append(Response.unit_id.in_(unit_ids))
    inst_ids = set(session.scalars(select(Response.instrument_id).where(*cond)))
    columns = csv_export.response_columns(session, inst_ids)
    items = columns[len(RESPONSE_COLUMNS):-4]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    insts = {i.id: i.label for i in session.scalars(select(Instrument))}
    for r in session.scalars(select(Response).where(*cond).order_by(Response.submitted_at, Response.id)):
        a = {x.item_key: x.value for x in r.answers}
        row = [str(r.id), r.unit.code, r.submitted_at.isoformat().replace("+00:00", "Z"), r.channel,
               insts[r.instrument_id], r.stratum or ALL_STRATUM, "1" if r.excluded else "0"]
        row = [csv_export.csv_safe(v) for v in row]
        row += ["" if a.get(k) is None else str(a[k]) for k in items]
        row += [r.age_group or "", r.gender or "", csv_export.csv_safe(r.comment),
                r.counter.code if r.counter else ""]
        w.writerow(row)
    return buf.getvalue().encode("utf-8")


def _engines(backend):
    return ["rows", "copy"] if backend == "postgresql" else ["rows"]


@pytest.mark.parametrize("scope", ["all", "province", "unit"])
def test_fast_export_equals_the_old_one(ctx, backend, scope):
    prov, a, b, out = _seed()
    start, end = dt.datetime(2025, 1, 1, tzinfo=UTC), dt.datetime(2025, 3, 3, 12, tzinfo=UTC)
    ids = {"all": None, "province": [prov.id, a.id, b.id], "unit": [a.id]}[scope]
    expected = _old_export(db.session, start, end, ids)
    rows = list(csv.reader(io.StringIO(expected.decode())))
    assert len(rows) > 20 and {"access_c1", "priority_time", "overall"} <= set(rows[0])
    if scope == "unit":
        assert {r[1] for r in rows[1:]} == {"P-A"}
    if scope == "province":
        assert "Q" not in {r[1] for r in rows[1:]} and "'-B" in {r[1] for r in rows[1:]}
    for engine in _engines(backend):
        got = b"".join(csv_export.export_chunks(db.session, start=start, end=end, unit_ids=ids, engine=engine))
        assert got == expected, engine
    assert csv_export.count_rows(db.session, start=start, end=end, unit_ids=ids) == len(rows) - 1


def test_fast_export_escapes_and_masks(ctx, backend):
    _seed()
    make_response(Unit.query.filter_by(code="P-A").one(), {"overall": 3},
                  submitted_at=dt.datetime(2025, 3, 2, tzinfo=UTC),
                  comment=mask_pii("gọi tôi 0912345678 hoặc a@b.vn"))
    db.session.commit()
    start, end = dt.datetime(2025, 1, 1, tzinfo=UTC), dt.datetime(2026, 1, 1, tzinfo=UTC)
    for engine in _engines(backend):
        text = b"".join(csv_export.export_chunks(db.session, start=start, end=end, engine=engine)).decode()
        rows = list(csv.DictReader(io.StringIO(text)))
        comments = {r["comment"] for r in rows}
        assert "'=SUM(A1)" in comments and "'+84 912" in comments and "a, b" in comments
        assert "dòng 1\ndòng 2" in comments and 'say "hi"' in comments
        assert not any("0912345678" in c or "a@b.vn" in c for c in comments)
        assert {r["stratum"] for r in rows} >= {"'=dat_dai", ALL_STRATUM}
        assert all(r["submitted_at"].endswith("Z") for r in rows)
        assert {r["instrument"] for r in rows} == {"counter-quick@2", "sipas-services@1"}


def test_empty_export_is_the_header(ctx, backend):
    _seed()
    start, end = dt.datetime(2020, 1, 1, tzinfo=UTC), dt.datetime(2020, 2, 1, tzinfo=UTC)
    for engine in _engines(backend):
        got = b"".join(csv_export.export_chunks(db.session, start=start, end=end, engine=engine))
        assert got == _old_export(db.session, start, end, None)
        assert got.decode().splitlines()[0].startswith("response_id,unit_code")


def test_an_export_closed_early_leaves_the_session_usable(ctx, backend, monkeypatch):
    """A client that goes away mid-stream: the COPY is cancelled, the session still answers."""
    _seed()
    monkeypatch.setattr(csv_export, "CHUNK_BYTES", 64)  # many chunks from a small export
    start, end = dt.datetime(2025, 1, 1, tzinfo=UTC), dt.datetime(2026, 1, 1, tzinfo=UTC)
    for engine in _engines(backend):
        chunks = csv_export.export_chunks(db.session, start=start, end=end, engine=engine)
        next(chunks), next(chunks), next(chunks)
        chunks.close()
        assert db.session.scalar(select(Unit.code).where(Unit.code == "P-A")) == "P-A", engine
