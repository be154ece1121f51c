"""Concurrency: races decided by the database, never by luck.

- N people open one dossier-linked rating link and press "Send" at the same
  moment (each with their own form, i.e. their own idempotency key): exactly
  one response is stored and exactly one thank-you is shown.
- One form sent N times at once (a double tap reaching several workers):
  one row, and every request ends on the thank-you page.
- The same CSV imported twice at once: one import, the other refused
  cleanly (ImportRejected), the data written once.

Threads share one app (one engine, one connection each): on PostgreSQL the
requests really run together; on SQLite the database serialises the writers.
"""
from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from tests.factories import make_place
from tests.helpers import ANSWERS, count, scrape
from tests.helpers import race as _race

N = 8


def test_one_dossier_link_redeemed_by_many_at_once(open_app, backend):
    from survey_app.models import Response
    from survey_app.services.tokens import dossier_signature

    app = open_app()
    with app.app_context():
        place = make_place()
        sig = dossier_signature(place.counter_id, "HS-2025-000123")

    def prepare(i):
        c = app.test_client()
        page = c.get(f"{place.url}?d={sig}")
        assert page.status_code == 200
        hidden = scrape(page.get_data(as_text=True))
        assert hidden.get("d") == sig
        return c, dict(hidden, **ANSWERS)

    results = _race(N, prepare, lambda i, p: p[0].post(place.url, data=p[1]))
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    statuses = sorted(r.status_code for r in results)
    thanks = [r for r in results if r.status_code == 303 and "/thanks" in r.headers["Location"]]
    assert len(thanks) == 1, statuses
    assert all(r.status_code == 409 for r in results if r not in thanks), statuses
    with app.app_context():
        from survey_app.extensions import db

        stored = db.session.scalar(sa.select(sa.func.count()).select_from(Response)
                                   .where(Response.dossier_hash.is_not(None)))
        db.session.remove()
    assert stored == 1
    assert count(app, Response) == 1


def test_one_form_sent_many_times_at_once(open_app):
    from survey_app.models import Response

    app = open_app()
    with app.app_context():
        place = make_place()
    client = app.test_client()
    data = dict(scrape(client.get(place.url).get_data(as_text=True)), **ANSWERS)
    cookies = {c.key: c.value for c in client._cookies.values()}

    def prepare(i):
        c = app.test_client()
        for key, value in cookies.items():  # the same phone: the same session cookie
            c.set_cookie(key, value)
        return c

    results = _race(N, prepare, lambda i, c: c.post(place.url, data=data))
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    statuses = [r.status_code for r in results]
    assert all(s == 303 for s in statuses), statuses
    assert count(app, Response) == 1


def _import_race(app, kind, monkeypatch):
    """Two threads import one file at the same moment; (results, rows the file holds, model).

    Both are held at the start of `_record_batch` (its checksum) until both
    got there, so both pass the "already imported?" SELECT: the worst case
    every time, not only when the scheduler happens to interleave them."""
    from survey_app.extensions import db
    from survey_app.models import Response, Volume
    from survey_app.services import csv_import
    from tests.factories import make_unit

    with app.app_context():
        make_unit(code="IMP-1")
        db.session.commit()
    if kind == "volumes":
        lines = ["unit_code,period_start,period_end,stratum,transactions"]
        lines += [f"IMP-1,2025-{m:02d}-01,2025-{m:02d}-28,s{s},{10 * m + s}" for m in range(1, 13) for s in range(30)]
        func, model, rows = csv_import.import_volumes, Volume, 360
    else:
        lines = ["response_id,unit_code,submitted_at,channel,instrument,stratum,excluded,overall,staff"]
        lines += [f",IMP-1,2025-03-01T08:{i // 60:02d}:{i % 60:02d}+07:00,paper,,_all,0,{1 + i % 5},{1 + i % 4}"
                  for i in range(300)]
        func, model, rows = csv_import.import_responses, Response, 300
    data = ("\n".join(lines) + "\n").encode()
    together = threading.Barrier(2)
    digest = csv_import._sha256

    def held_sha256(raw):
        together.wait(30)
        return digest(raw)

    monkeypatch.setattr(csv_import, "_sha256", held_sha256)

    def act(i, _):
        with app.app_context():
            try:
                return func(data, f"same-{i}.csv", actor=f"t{i}")
            except Exception as exc:  # noqa: BLE001 - the test looks at what the loser got
                db.session.rollback()
                return exc
            finally:
                db.session.remove()

    return _race(2, lambda i: None, act), rows, model


@pytest.mark.parametrize("kind", ["volumes", "responses"])
def test_same_file_imported_twice_at_once_is_written_once(open_app, kind, monkeypatch):
    from survey_app.models import Answer, ImportBatch, Response
    from survey_app.services import csv_import

    app = open_app()
    results, rows, model = _import_race(app, kind, monkeypatch)
    accepted = [r for r in results if isinstance(r, csv_import.ImportResult)]
    assert len(accepted) == 1, results
    assert count(app, ImportBatch) == 1
    assert count(app, model) == rows
    if model is Response:
        assert count(app, Answer) == 2 * rows


@pytest.mark.parametrize("kind", ["volumes", "responses"])
def test_same_file_imported_twice_at_once_loser_is_refused_cleanly(open_app, kind, monkeypatch):
    from survey_app.services import csv_import

    app = open_app()
    results, _, _ = _import_race(app, kind, monkeypatch)
    unexpected = [r for r in results if isinstance(r, BaseException) and not isinstance(r, csv_import.ImportRejected)]
    assert not unexpected, f"the loser must be refused with ImportRejected, got: {unexpected!r}"
    refused = [r for r in results if isinstance(r, csv_import.ImportRejected)]
    assert len(refused) == 1 and str(refused[0]), results
