"""Backup and restore: `flask backup --out FILE` / `flask restore FILE [--force]`.

Every table is compared after a round trip on the same backend, and across
backends (SQLite → PostgreSQL → SQLite, or PostgreSQL → SQLite → PostgreSQL).
Restore is all or nothing, refuses a non-empty database without --force,
refuses a damaged or foreign file, and leaves PostgreSQL sequences past the
restored ids.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import stat
import uuid
import zipfile

import pytest
import sqlalchemy as sa

from tests.helpers import (
    create_pg_database,
    disposing,
    drop_pg_database,
    fingerprint,
    standalone_app,
)

UTC = dt.timezone.utc


def _seed(app) -> None:
    """A demo province plus the awkward cases: a successor cycle, JSON null
    next to SQL NULL, non-ASCII text, an import batch and audit rows."""
    from survey_app.extensions import db
    from survey_app.models import AuditLog
    from survey_app.services import csv_import, demo
    from tests.factories import make_counter, make_exclusion_request, make_response, make_snapshot, make_unit, make_user

    with app.app_context():
        demo.seed(60, seed=11, password="demo-password-123")
        a = make_unit(code="REL-A", kind="commune")
        b = make_unit(code="REL-B", kind="commune", parent=a)
        a.successor_id, b.successor_id = b.id, a.id  # a cycle: only a two-step restore can load it
        db.session.flush()
        c = make_counter(b, code="REL-B-Q1")
        make_response(b, {"overall": 5}, counter=c, comment="Rất tốt 👍 \"quá\" hay,\nxuống dòng",
                      respondent={"lĩnh_vực": "hộ tịch"}, dossier_hash="ab" * 32, idempotency_key="k" * 32,
                      submitted_at=dt.datetime(2025, 3, 1, 23, 59, 59, 999999, tzinfo=UTC))
        typed = make_response(b, {"overall": 1, "staff": 2}, counter=c, respondent=None)  # JSON null
        analyst = make_user(username="rel-analyst", role="analyst", unit=a)
        typed.channel, typed.entered_by_user_id, typed.paper_batch = "paper", analyst.id, "Lô 1/2025"
        make_exclusion_request(typed, analyst, reason="nhập trùng")
        make_snapshot(a, status="published", reason="Đính chính", meta={"n_left_out": {}, "data_cutoff": None})
        # a case with its history and its alert e-mail job (issue 14.6: cases, case_events, jobs)
        make_user(username="rel-lead", role="unit_leader", unit=b).email = "lanh.dao@rel.gov.vn"
        from survey_app.services import cases

        cases.reply_requested_for(typed.id)
        db.session.execute(sa.insert(AuditLog).values(actor="test", action="sql_null", details=sa.null(),
                                                      at=dt.datetime.now(UTC)))
        from survey_app.services import jobs

        jobs.enqueue("backup.test", {"lĩnh_vực": "hộ tịch"}, key="unit:REL-B")  # a pending background job
        db.session.commit()
        # (2024: REL-A's 2025 is closed by the snapshot above, and the import guard refuses it)
        csv_import.import_volumes(b"unit_code,period_start,period_end,stratum,transactions\n"
                              b"REL-B,2024-01-01,2024-03-31,,42\n", "vol.csv", actor="test")
        from survey_app.models import ApiClient
        from survey_app.services import webhooks

        client = db.session.scalar(sa.select(ApiClient).order_by(ApiClient.id))  # the demo's one-stop system
        webhooks.configure(client, "https://hooks.example.vn/sipas", actor="test")
        webhooks.emit(client.unit_id, "alert.created", {"alert": 1})  # a delivery and its job
        db.session.commit()
        db.session.remove()


def _backup(app, path) -> None:
    res = app.test_cli_runner().invoke(args=["backup", "--out", str(path)])
    assert res.exit_code == 0, res.output
    assert "Đã sao lưu" in res.output


def _restore(app, path, *extra):
    return app.test_cli_runner().invoke(args=["restore", str(path), *extra])


def _revision(app):
    """The Alembic revision of an app's (migrated) database."""
    from survey_app.extensions import db
    from survey_app.services.backup import schema_revision

    with app.app_context(), db.engine.connect() as conn:
        return schema_revision(conn)


def _nonempty(fp: dict) -> set:
    return {name for name, (rows, _) in fp.items() if rows}


def _rewrite(src, dst, change) -> None:
    """Copy a backup zip, passing each member's bytes through change(name, data)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, change(info.filename, zin.read(info.filename)))


@pytest.fixture
def seeded(app):
    _seed(app)
    return app


@pytest.fixture
def fresh_app(fresh_database):
    """Factory: an app on a new empty database of the run's backend."""
    apps = []

    def make(**kw):
        a = standalone_app(fresh_database(), instruments=False, **kw)
        apps.append(a)
        return a

    yield make
    with disposing(*apps):
        pass


def test_same_backend_round_trip_compares_every_table(seeded, fresh_app, tmp_path):
    path = tmp_path / "sipas.zip"
    _backup(seeded, path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, "a backup holds password hashes: owner only"
    source = fingerprint(seeded)
    assert _nonempty(source) == set(source), f"every table should hold rows in this test: {source}"

    target = fresh_app()
    res = _restore(target, path)
    assert res.exit_code == 0, res.output
    assert fingerprint(target) == source

    # SQL NULL and JSON null survive as they were (the fingerprint tells them
    # apart too; this says it in plain SQL).
    from survey_app.extensions import db
    from survey_app.models import AuditLog, Response, Unit

    nulls = []
    for app in (seeded, target):
        with app.app_context():
            nulls.append((
                db.session.scalar(sa.select(sa.func.count()).select_from(AuditLog).where(AuditLog.details.is_(None))),
                db.session.scalar(sa.select(sa.func.count()).select_from(Response)
                                  .where(Response.respondent.is_(None))),
                db.session.scalar(sa.select(sa.func.count()).select_from(Response)
                                  .where(Response.respondent.is_not(None))),
            ))
            db.session.remove()
    assert nulls[0] == nulls[1]
    assert nulls[0][0] >= 1 and nulls[0][1] >= 1 and nulls[0][2] >= 2

    # New rows after a restore get fresh ids (sequences moved past the restored ones).
    with target.app_context():
        top = db.session.scalar(sa.select(sa.func.max(Unit.id)))
        u = Unit(code="AFTER-RESTORE", name_vi="Mới", kind="commune")
        db.session.add(u)
        db.session.commit()
        assert u.id > top
        db.session.remove()


def test_restore_refuses_non_empty_database_unless_forced(seeded, fresh_app, tmp_path):
    path = tmp_path / "sipas.zip"
    _backup(seeded, path)
    source = fingerprint(seeded)
    target = fresh_app()
    assert _restore(target, path).exit_code == 0
    from survey_app.extensions import db
    from survey_app.models import Unit

    with target.app_context():
        db.session.add(Unit(code="LOCAL-ONLY", name_vi="Chỉ ở đích", kind="commune"))
        db.session.commit()
        db.session.remove()
    before = fingerprint(target)

    res = _restore(target, path)
    assert res.exit_code == 1
    assert "không trống" in res.output and "--force" in res.output
    assert "Traceback" not in res.output
    assert fingerprint(target) == before

    res = _restore(target, path, "--force")
    assert res.exit_code == 0, res.output
    assert fingerprint(target) == source


def test_damaged_or_foreign_files_are_refused_and_nothing_is_written(seeded, fresh_app, tmp_path):
    path = tmp_path / "sipas.zip"
    _backup(seeded, path)
    target = fresh_app()
    empty = fingerprint(target)

    def flip_value(name, data):
        if name == "tables/answers.jsonl":
            return data.replace(b",5]", b",4]", 1)
        return data

    cases = {}
    _rewrite(path, tmp_path / "edited.zip", flip_value)
    cases["edited.zip"] = "không khớp"
    (tmp_path / "notzip.zip").write_bytes(b"PK\x03\x04 this is not a zip")
    cases["notzip.zip"] = "zip"
    _rewrite(path, tmp_path / "nomanifest.zip", lambda n, d: d)
    with zipfile.ZipFile(tmp_path / "nomanifest.zip") as z:
        members = {i.filename: z.read(i.filename) for i in z.infolist() if i.filename != "manifest.json"}
    with zipfile.ZipFile(tmp_path / "nomanifest.zip", "w") as z:
        for k, v in members.items():
            z.writestr(k, v)
    cases["nomanifest.zip"] = "manifest"

    def future_format(name, data):
        if name == "manifest.json":
            m = json.loads(data)
            m["format_version"] = 99
            return json.dumps(m).encode()
        return data

    _rewrite(path, tmp_path / "future.zip", future_format)
    cases["future.zip"] = "99"
    cases["missing.zip"] = "không tìm thấy"

    for name, expect in cases.items():
        res = _restore(target, tmp_path / name)
        assert res.exit_code == 1, (name, res.output)
        assert expect in res.output, (name, res.output)
        assert "Traceback" not in res.output
        assert fingerprint(target) == empty, name


def test_restore_is_all_or_nothing(seeded, fresh_app, tmp_path):
    """A backup whose last table breaks a constraint of the target (a repeated
    primary key, checksums made to match) loads nothing at all."""
    import hashlib

    path = tmp_path / "sipas.zip"
    _backup(seeded, path)
    with zipfile.ZipFile(path) as z:
        answers = z.read("tables/answers.jsonl")
    first = answers.split(b"\n", 1)[0] + b"\n"
    doubled = answers + first

    def duplicate_answer(name, data):
        if name == "tables/answers.jsonl":
            return doubled
        if name == "manifest.json":
            m = json.loads(data)
            for t in m["tables"]:
                if t["name"] == "answers":
                    t["rows"] += 1
                    t["sha256"] = hashlib.sha256(doubled).hexdigest()
            return json.dumps(m).encode()
        return data

    _rewrite(path, tmp_path / "dup.zip", duplicate_answer)
    target = fresh_app()
    empty = fingerprint(target)
    res = _restore(target, tmp_path / "dup.zip")
    assert res.exit_code == 1
    assert "không có gì được ghi" in res.output
    assert "Traceback" not in res.output
    assert fingerprint(target) == empty


def test_schema_revision_mismatch_is_refused(seeded, fresh_database, tmp_path):
    path = tmp_path / "sipas.zip"
    _backup(seeded, path)

    def other_revision(name, data):
        if name == "manifest.json":
            m = json.loads(data)
            m["schema_revision"] = "9999_future"
            return json.dumps(m).encode()
        return data

    _rewrite(path, tmp_path / "future.zip", other_revision)
    target = standalone_app(fresh_database(), schema="migrate", instruments=False)
    with disposing(target):
        empty = fingerprint(target)
        res = _restore(target, tmp_path / "future.zip")
        assert res.exit_code == 1
        assert "9999_future" in res.output and _revision(target) in res.output
        assert fingerprint(target) == empty


@pytest.fixture
def other_backend_url(backend, request, tmp_path):
    """A new empty database of the other backend than the run's."""
    if backend == "postgresql":
        yield f"sqlite:///{tmp_path / 'other.sqlite3'}"
        return
    server = request.getfixturevalue("pg_server_url")
    url = create_pg_database(server)
    yield url
    drop_pg_database(url)


def test_cross_backend_round_trip(seeded, fresh_database, other_backend_url, tmp_path):
    """run's backend → the other backend (migrated with Alembic) → the run's
    backend again: every table equal at each step."""
    source = fingerprint(seeded)
    first = tmp_path / "first.zip"
    _backup(seeded, first)

    other = standalone_app(other_backend_url, schema="migrate", instruments=False)
    back = standalone_app(fresh_database(), schema="migrate", instruments=False)
    with disposing(other, back):
        res = _restore(other, first)
        assert res.exit_code == 0, res.output
        assert fingerprint(other) == source

        second = tmp_path / "second.zip"
        _backup(other, second)
        with zipfile.ZipFile(second) as z:
            manifest = json.loads(z.read("manifest.json"))
        assert manifest["source_backend"] == sa.make_url(other_backend_url).get_backend_name()
        assert manifest["schema_revision"] is not None
        assert manifest["schema_revision"] == _revision(other)

        res = _restore(back, second)
        assert res.exit_code == 0, res.output
        assert fingerprint(back) == source


def test_backup_is_a_consistent_snapshot_while_responses_arrive(seeded, fresh_app, tmp_path):
    """Responses inserted while the backup runs: the file is internally
    consistent (every answer's response is in it) and restores cleanly."""
    import threading

    from survey_app.extensions import db
    from survey_app.models import Unit
    from tests.factories import make_response

    stop = threading.Event()
    written = []

    def writer():
        with seeded.app_context():
            unit = db.session.scalar(sa.select(Unit).where(Unit.code == "REL-B"))
            while not stop.is_set() and len(written) < 200:
                r = make_response(unit, {"overall": 4, "staff": 3}, submitted_at=dt.datetime.now(UTC),
                                  idempotency_key=uuid.uuid4().hex)
                db.session.commit()
                written.append(r.id)
            db.session.remove()

    t = threading.Thread(target=writer)
    t.start()
    try:
        path = tmp_path / "live.zip"
        _backup(seeded, path)
    finally:
        stop.set()
        t.join(60)
    target = fresh_app()
    res = _restore(target, path)
    assert res.exit_code == 0, res.output
    with zipfile.ZipFile(path) as z:
        ids = {json.loads(line)[0] for line in z.read("tables/responses.jsonl").splitlines()}
        answer_ids = {json.loads(line)[0] for line in z.read("tables/answers.jsonl").splitlines()}
    assert answer_ids <= ids, "an answer without its response: the backup was not one snapshot"
