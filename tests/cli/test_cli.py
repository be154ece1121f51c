"""Command line: demo seed, users, imports (all-or-nothing), export, counters."""
import csv
import io

import sqlalchemy as sa
from sqlalchemy import func, select

from survey_app.extensions import db
from survey_app.models import Answer, AuditLog, Counter, Response, Unit, User, Volume
from survey_app.services.tokens import parse_counter_token
from tests.factories import make_counter, make_unit


def snapshot() -> dict:
    """Every row of every table, for 'the database is exactly as it was'."""
    out = {}
    for table in db.metadata.sorted_tables:
        rows = db.session.execute(sa.select(table)).all()
        out[table.name] = sorted(repr(tuple(r)) for r in rows)
    return out


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_demo_seed_small_is_deterministic_and_realistic(runner, ctx):
    res = runner.invoke(args=["demo", "seed", "--responses", "3000", "--seed", "7", "--password", "demo-pass-123"])
    assert res.exit_code == 0, res.output
    assert "admin / demo-pass-123" in res.output and "/c/" in res.output
    assert count(Response) == 3000
    units = db.session.scalars(select(Unit)).all()
    kinds = {u.kind for u in units}
    assert {"province", "service_center", "department", "district", "commune"} <= kinds
    districts = [u for u in units if u.kind == "district"]
    assert districts and all(str(d.valid_to) == "2025-07-01" and d.successor_id for d in districts)
    current_communes = [u for u in units if u.kind == "commune" and u.valid_to is None]
    assert len(current_communes) >= 10
    old = [u for u in units if u.kind == "commune" and u.valid_to is not None]
    assert old and all(u.successor_id in {c.id for c in current_communes} for u in old)
    per_unit = db.session.execute(select(Counter.unit_id, func.count()).group_by(Counter.unit_id)).all()
    assert all(1 <= n <= 3 for _, n in per_unit)
    assert count(Volume) > 0
    # satisfaction rates differ by element and lie in a realistic band
    rates = dict(db.session.execute(
        select(Answer.item_key, func.avg(sa.case((Answer.value >= 4, 1.0), else_=0.0))).group_by(Answer.item_key)
    ).all())
    assert all(0.6 < float(r) < 0.995 for r in rates.values()), rates
    assert float(rates["staff"]) > float(rates["feedback"])
    # the same seed gives the same data: compare the stored ids
    ids1 = sorted(str(i) for i in db.session.scalars(select(Response.id)))
    db.session.remove()
    for table in reversed(db.metadata.sorted_tables):
        db.session.execute(table.delete())
    db.session.commit()
    from survey_app.services.instruments import sync_instruments

    sync_instruments(db.session)
    db.session.commit()
    res = runner.invoke(args=["demo", "seed", "--responses", "3000", "--seed", "7", "--password", "demo-pass-123"])
    assert res.exit_code == 0
    assert sorted(str(i) for i in db.session.scalars(select(Response.id))) == ids1


def test_demo_seed_refuses_non_empty_database(runner, ctx):
    make_unit("X1")
    db.session.commit()
    res = runner.invoke(args=["demo", "seed", "--responses", "10"])
    assert res.exit_code == 1 and "đã có đơn vị" in res.output
    res = runner.invoke(args=["demo", "seed", "--if-empty"])
    assert res.exit_code == 0


def test_users_create(runner, ctx):
    make_unit("U1")
    db.session.commit()
    res = runner.invoke(args=["users", "create", "--username", "lan", "--password", "secret-pass-1",
                              "--role", "unit_leader", "--unit", "U1"])
    assert res.exit_code == 0, res.output
    user = db.session.scalar(select(User).where(User.username == "lan"))
    assert user.role == "unit_leader" and user.unit.code == "U1"
    assert "secret-pass-1" not in user.password_hash and user.password_hash.startswith("scrypt")
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "user_create")).target_id == "lan"
    # errors: duplicate, missing scope, unknown unit, bad role
    assert runner.invoke(args=["users", "create", "--username", "lan", "--password", "secret-pass-1",
                               "--role", "admin"]).exit_code == 1
    assert runner.invoke(args=["users", "create", "--username", "x", "--password", "secret-pass-1",
                               "--role", "analyst"]).exit_code == 2
    assert runner.invoke(args=["users", "create", "--username", "y", "--password", "secret-pass-1",
                               "--role", "analyst", "--unit", "NOPE"]).exit_code == 1
    assert runner.invoke(args=["users", "create", "--username", "z", "--password", "secret-pass-1",
                               "--role", "king"]).exit_code == 2


UNITS_CSV = """code,name_vi,name_en,kind,parent_code,valid_from,valid_to,successor_code
P,Tỉnh P,P Province,province,,,,
H1,Huyện 1,District 1,district,P,,2025-07-01,X1
X1,Xã 1,Commune 1,commune,P,2025-07-01,,
X1-Q1,Quầy 1,Desk 1,counter,X1,,,
"""


def test_units_import_creates_tree_and_counters(runner, ctx, tmp_path):
    f = tmp_path / "units.csv"
    f.write_text(UNITS_CSV, encoding="utf-8")
    res = runner.invoke(args=["units", "import", str(f)])
    assert res.exit_code == 0, res.output
    h1 = db.session.scalar(select(Unit).where(Unit.code == "H1"))
    assert h1.parent.code == "P" and h1.successor.code == "X1" and str(h1.valid_to) == "2025-07-01"
    counter = db.session.scalar(select(Counter).where(Counter.code == "X1-Q1"))
    assert counter.unit.code == "X1"
    # the same file again is refused cleanly
    res = runner.invoke(args=["units", "import", str(f)])
    assert res.exit_code == 1 and "đã được nhập" in res.output


def test_imports_with_one_bad_row_leave_database_exactly_as_it_was(runner, ctx, tmp_path):
    f = tmp_path / "units.csv"
    f.write_text(UNITS_CSV, encoding="utf-8")
    assert runner.invoke(args=["units", "import", str(f)]).exit_code == 0
    before = snapshot()
    cases = {
        "units": "code,name_vi,name_en,kind,parent_code,valid_from,valid_to,successor_code\n"
                 "X2,Xã 2,,commune,P,,,\nX3,Xã 3,,commune,NOPE,,,\nX4,,,commune,P,2025-13-01,,\n",
        "volumes": "unit_code,period_start,period_end,stratum,transactions\n"
                   "X1,2025-07-01,2025-09-14,,100\nX1,2025-09-15,2025-12-14,,-5\nZZ,2025-01-01,2024-01-01,,3\n",
        "responses": "response_id,unit_code,submitted_at,channel,instrument,stratum,excluded,overall,staff\n"
                     ",X1,2025-08-01T09:00:00+07:00,paper,counter-quick,,,4,5\n"
                     ",X1,2025-08-01 09:00:00,paper,counter-quick,,,6,5\n"
                     ",X1,2025-08-01T09:00:00Z,fax,counter-quick,,2,4,5\n",
    }
    expected_lines = {"units": ["dòng 3", "dòng 4"], "volumes": ["dòng 3", "dòng 4"],
                      "responses": ["dòng 3", "dòng 4"]}
    for kind, text in cases.items():
        p = tmp_path / f"{kind}.csv"
        p.write_text(text, encoding="utf-8")
        res = runner.invoke(args=[kind, "import", str(p)])
        assert res.exit_code == 1, (kind, res.output)
        for line in expected_lines[kind]:
            assert line in res.output, (kind, res.output)
        assert "dòng 2" not in res.output  # the good row is not reported
        db.session.rollback()
        assert snapshot() == before, kind
    # specific reasons are named
    res = runner.invoke(args=["responses", "import", str(tmp_path / "responses.csv")])
    assert "thiếu múi giờ" in res.output and "ngoài khoảng" in res.output and "fax" in res.output
    assert "excluded" in res.output


def test_responses_import_export_roundtrip(runner, ctx, tmp_path):
    u = make_unit("X1")
    c = make_counter(u, code="X1-Q1")
    db.session.commit()
    src = ("response_id,unit_code,submitted_at,channel,instrument,stratum,excluded,overall,access,procedure,"
           "staff,result,feedback,age_group,gender,comment,counter_code\n"
           "0b9e0f8e-2f6a-4d55-9d8e-0d1e2c3b4a59,X1,2025-03-01T10:00:00+07:00,paper,counter-quick@1,ho_tich,0,"
           "4,5,3,,2,1,30_44,female,Gọi tôi 0912345678,X1-Q1\n"
           "1b9e0f8e-2f6a-4d55-9d8e-0d1e2c3b4a59,X1,2025-03-02 10:00:00+0700,,counter-quick,,1,5,,,,,,,,=cmd(),\n")
    f = tmp_path / "r.csv"
    f.write_text(src, encoding="utf-8")
    res = runner.invoke(args=["responses", "import", str(f)])
    assert res.exit_code == 0, res.output
    r = db.session.get(Response, __import__("uuid").UUID("0b9e0f8e-2f6a-4d55-9d8e-0d1e2c3b4a59"))
    assert r.channel == "paper" and r.counter_id == c.id and r.stratum == "ho_tich"
    assert r.submitted_at.replace(tzinfo=None).isoformat() == "2025-03-01T03:00:00"
    assert "0912345678" not in r.comment
    assert {a.item_key: a.value for a in r.answers} == {"overall": 4, "access": 5, "procedure": 3, "result": 2,
                                                          "feedback": 1}
    out = tmp_path / "out.csv"
    res = runner.invoke(args=["responses", "export", "--period", "2025", "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert len(rows) == 2
    first = next(x for x in rows if x["response_id"].startswith("0b9e"))
    assert first["unit_code"] == "X1" and first["submitted_at"] == "2025-03-01T03:00:00Z"
    assert first["overall"] == "4" and first["staff"] == "" and first["channel"] == "paper"
    second = next(x for x in rows if x["response_id"].startswith("1b9e"))
    assert second["channel"] == "import" and second["excluded"] == "1"
    assert second["comment"] == "'=cmd()"  # formula injection escaped
    # a period that holds none of them
    res = runner.invoke(args=["responses", "export", "--period", "2024", "--out", str(out)])
    assert len(list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))) == 0
    assert runner.invoke(args=["responses", "export", "--period", "20x5", "--out", str(out)]).exit_code == 2


def test_counters_list(runner, ctx):
    u = make_unit("X1")
    c = make_counter(u, code="X1-Q1")
    make_counter(u, code="X1-Q2", active=False)
    db.session.commit()
    res = runner.invoke(args=["counters", "list"])
    assert res.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(res.output)))
    assert [r["code"] for r in rows] == ["X1-Q1"]
    assert rows[0]["unit_code"] == "X1" and rows[0]["url"].startswith("http://sipas.test/c/")
    ref = parse_counter_token(rows[0]["url"].rsplit("/", 1)[1])
    assert ref.counter_id == c.id and ref.version == 1


def test_users_create_uses_the_one_password_policy(runner, ctx):
    from survey_app.services.accounts import MIN_PASSWORD_LENGTH

    short = "x" * (MIN_PASSWORD_LENGTH - 1)
    res = runner.invoke(args=["users", "create", "--username", "short", "--password", short, "--role", "admin"])
    assert res.exit_code == 2 and str(MIN_PASSWORD_LENGTH) in res.output
    res = runner.invoke(args=["users", "create", "--username", "ok", "--password", short + "y", "--role", "admin"])
    assert res.exit_code == 0, res.output
