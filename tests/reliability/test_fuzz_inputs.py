"""Property-based fuzzing (hypothesis) of every input a stranger or a file controls.

- The public form (QR and kiosk): any field, any value, any size, any
  encoding and content type, repeated and missing fields, with and without
  a valid CSRF token and idempotency key.  Never a 5xx or a traceback; a
  thank-you means exactly one new response (or none for a repeat / the
  honeypot); any other answer leaves the database unchanged.
- Every CSV import (units, volumes, responses via services.csv_import): accepted, or
  refused with ImportRejected and a message, the database unchanged.
- `python -m analysis` inputs: read_responses / read_volumes / read_units,
  compute_index, and the command line itself: a result or InputError
  (exit 2 with `error:` lines), never a traceback.

A fixed, derandomised budget here (bench/fuzz.py runs the same properties
with a larger, random one).
"""
from __future__ import annotations

import io
import re

import pytest
import sqlalchemy as sa
from hypothesis import event, example, given
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from tests.factories import make_place
from tests.helpers import fingerprint, scrape
from tests.reliability.fuzz_strategies import (
    CONTENT_TYPES,
    ENCODINGS,
    RESPONSE_HEADER,
    UNIT_HEADER,
    VOLUME_HEADER,
    budget,
    csv_file,
    form_strategies,
    multipart_bytes,
    text_value,
    urlencode_bytes,
)


def _definition():
    import json
    from pathlib import Path

    import survey_app

    return json.loads((Path(survey_app.__file__).parent / "questionnaires" / "counter-quick.json").read_text())


VALID, PAIRS = form_strategies(_definition())


def _counts(app) -> tuple[int, int]:
    from survey_app.extensions import db
    from survey_app.models import Answer, Response

    with app.app_context():
        out = (db.session.scalar(sa.select(sa.func.count()).select_from(Response)),
               db.session.scalar(sa.select(sa.func.count()).select_from(Answer)))
        db.session.remove()
        return out


def _no_traceback(resp):
    body = resp.get_data()
    assert b"Traceback" not in body and b"sqlalchemy" not in body.lower(), body[:500]


def _answers_in_range(app):
    from survey_app.extensions import db
    from survey_app.models import Answer

    with app.app_context():
        bad = db.session.scalar(sa.select(sa.func.count()).select_from(Answer)
                                .where(sa.or_(Answer.value < 0, Answer.value > 5)))
        db.session.remove()
    assert bad == 0


@pytest.fixture
def form_world(open_app):
    app = open_app()
    with app.app_context():
        place = make_place()
    return app, place


def _check_outcome(app, resp, before, fuzzing=True):
    assert resp.status_code < 500, (resp.status_code, resp.get_data()[:300])
    _no_traceback(resp)
    if fuzzing:
        event(f"status {resp.status_code}")
    after = _counts(app)
    if resp.status_code == 303:
        assert "/thanks" in resp.headers["Location"]
        assert after[0] - before[0] in (0, 1), (before, after)
    else:
        assert after == before, f"rejected input ({resp.status_code}) changed the database"


@given(valid=VALID, pairs=PAIRS, with_hidden=st.booleans(), kiosk=st.booleans(), drop=st.sets(
    st.sampled_from(["csrf_token", "k"])), repeat_hidden=st.booleans())
@example(valid={"overall": "4"}, pairs=[("comment", "\U0001f44d" * 1000)], with_hidden=True, kiosk=True,
         drop=set(), repeat_hidden=False)
@example(valid={"overall": "3"}, pairs=[("comment", "x" * 40000)], with_hidden=True, kiosk=False,
         drop=set(), repeat_hidden=True)
@budget(60)
def test_public_form_fields(form_world, valid, pairs, with_hidden, kiosk, drop, repeat_hidden):
    app, place = form_world
    client = app.test_client()
    url = place.kiosk_url if kiosk else place.url
    data = MultiDict()
    if with_hidden:
        hidden = scrape(client.get(url).get_data(as_text=True))
        for k, v in hidden.items():
            if k not in drop:
                data.add(k, v)
                if repeat_hidden and k == "k":
                    data.add(k, v)
        for k, v in valid.items():
            data.add(k, v)
    for k, v in pairs:
        data.add(k, v)
    before = _counts(app)
    resp = client.post(url, data=data)
    _check_outcome(app, resp, before)
    _answers_in_range(app)


def test_public_form_nul_in_comment(form_world):
    """Found by the fuzzer: a NUL character in the comment."""
    app, place = form_world
    client = app.test_client()
    data = dict(scrape(client.get(place.url).get_data(as_text=True)), overall="5", comment="NUL \x00 inside")
    before = _counts(app)
    resp = client.post(place.url, data=data)
    _check_outcome(app, resp, before, fuzzing=False)
    assert resp.status_code == 303  # the comment is kept, without its NUL
    if resp.status_code == 303:
        from survey_app.extensions import db
        from survey_app.models import Response

        with app.app_context():
            stored = db.session.scalar(sa.select(Response.comment))
            db.session.remove()
        assert stored == "NUL  inside", "a NUL stored on SQLite cannot be restored to PostgreSQL"


@given(pairs=PAIRS, valid=VALID, ctype=st.sampled_from(CONTENT_TYPES), encoding=st.sampled_from(ENCODINGS),
       shape=st.sampled_from(["urlencoded", "multipart", "raw"]), raw=st.binary(max_size=4000),
       with_hidden=st.booleans())
@budget(50)
def test_public_form_raw_bodies(form_world, pairs, valid, ctype, encoding, shape, raw, with_hidden):
    app, place = form_world
    client = app.test_client()
    fields = list(pairs)
    if with_hidden:
        hidden = scrape(client.get(place.url).get_data(as_text=True))
        fields = list(hidden.items()) + list(valid.items()) + fields
    if shape == "urlencoded":
        body = urlencode_bytes(fields, encoding)
    elif shape == "multipart":
        body = multipart_bytes(fields, encoding)
        if ctype.startswith("multipart/form-data"):
            ctype = "multipart/form-data; boundary=sipasfuzz"
    else:
        body = raw
    before = _counts(app)
    resp = client.post(place.url, data=body, content_type=ctype or None)
    _check_outcome(app, resp, before)


@given(query=st.lists(st.tuples(st.sampled_from(["lang", "d", "k", "x", ""]), text_value), max_size=4),
       token=st.one_of(st.none(), text_value.filter(lambda t: "/" not in t and "?" not in t and "#" not in t)),
       kiosk=st.booleans())
@budget(40)
def test_public_pages_any_query_or_token(form_world, query, token, kiosk):
    from urllib.parse import quote

    app, place = form_world
    client = app.test_client()
    tok = place.token if token is None else quote(token[:2000], safe="")
    path = f"/{'k' if kiosk else 'c'}/{tok}"
    for suffix in ("", "/thanks"):
        resp = client.get(path + suffix, query_string=[(k, v[:2000]) for k, v in query])
        assert resp.status_code < 500, (resp.status_code, path)
        _no_traceback(resp)


# ------------------------------------------------------------------ CSV imports

@pytest.fixture
def import_world(open_app):
    """A small tree the CSV rows can refer to: P-ROOT with counter P-ROOT-Q1, FZ-1."""
    from survey_app.extensions import db
    from tests.factories import make_counter, make_unit

    app = open_app()
    with app.app_context():
        root = make_unit(code="P-ROOT", kind="province")
        make_counter(root, code="P-ROOT-Q1")
        make_unit(code="FZ-1", parent=root)
        db.session.commit()
    return app


def _import_property(app, kind, data):
    from survey_app.extensions import db
    from survey_app.services import csv_import

    func = {"units": csv_import.import_units, "volumes": csv_import.import_volumes,
            "responses": csv_import.import_responses}[kind]
    before = fingerprint(app)
    with app.app_context():
        try:
            func(data, "fuzz.csv", actor="fuzz")
            accepted = True
            event("accepted")
        except csv_import.ImportRejected as exc:
            db.session.rollback()
            accepted = False
            event("refused")
            message = str(exc)
            assert message.strip(), "a refusal says why"
            assert "Traceback" not in message
        finally:
            db.session.remove()
    if not accepted:
        assert fingerprint(app) == before, "a refused file changed the database"


@given(data=csv_file(UNIT_HEADER, ["code", "name_vi", "kind"]))
@budget(50)
def test_units_import_fuzz(import_world, data):
    _import_property(import_world, "units", data)


@given(data=csv_file(VOLUME_HEADER, ["unit_code", "period_start", "period_end", "transactions"]))
@budget(50)
def test_volumes_import_fuzz(import_world, data):
    _import_property(import_world, "volumes", data)


@given(data=csv_file(RESPONSE_HEADER, ["response_id", "unit_code", "submitted_at"]))
@budget(50)
def test_responses_import_fuzz(import_world, data):
    _import_property(import_world, "responses", data)


# ------------------------------------------------------------------ python -m analysis

ANALYSIS_RESPONSE_HEADER = [c for c in RESPONSE_HEADER if c != "counter_code"]


@given(responses=csv_file(ANALYSIS_RESPONSE_HEADER, ["response_id", "unit_code", "submitted_at"]),
       volumes=st.one_of(st.none(), csv_file(VOLUME_HEADER, ["unit_code", "period_start", "period_end",
                                                             "transactions"])),
       units=st.one_of(st.none(), csv_file(UNIT_HEADER, ["code", "name_vi", "kind"])),
       period=st.sampled_from(["2025", "2025-Q1", "cal:2025", "2025-H1", "2025-03", "bogus", "", "2025-Q5"]),
       ci=st.sampled_from(["wilson", "beta", "logit"]))
@budget(60)
def test_analysis_library_inputs(responses, volumes, units, period, ci):
    from analysis import (
        IndexOptions,
        InputError,
        compute_index,
        read_responses,
        read_units,
        read_volumes,
    )

    try:
        u = read_units(io.BytesIO(units), source="units.csv") if units is not None else None
        known = set(u["code"]) if u is not None else None
        v = read_volumes(io.BytesIO(volumes), source="volumes.csv", known_units=known) if volumes is not None else None
        r = read_responses(io.BytesIO(responses), source="responses.csv", known_units=known)
        result = compute_index(r, v, u, period=period, options=IndexOptions(ci=ci))
    except InputError as exc:
        assert str(exc).strip()
        event("InputError")
        return
    event(f"result with {min(len(result.table), 3)}+ rows")
    _assert_sane_estimates(result.table)


def _assert_sane_estimates(table) -> None:
    """Whatever the input: every rate and index lies in [0, 1] inside its own
    interval, and the counts are whole and not negative."""
    import pandas as pd

    from analysis.schema import ITEM_KEYS

    eps = 1e-9
    for est, prefix in [("index", "index")] + [(f"{k}_rate", k) for k in ITEM_KEYS]:
        e = pd.to_numeric(table[est], errors="coerce")
        lo = pd.to_numeric(table[f"{prefix}_ci_low"], errors="coerce")
        hi = pd.to_numeric(table[f"{prefix}_ci_high"], errors="coerce")
        has = e.notna()
        assert e[has].between(-eps, 1 + eps).all(), (est, e[has].tolist())
        both = has & lo.notna() & hi.notna()
        assert (lo[both] <= e[both] + eps).all() and (e[both] <= hi[both] + eps).all(), (est, table[both])
    n = pd.to_numeric(table["n"], errors="coerce")
    assert n.notna().all() and (n >= 0).all() and (n == n.round()).all()


@given(responses=csv_file(ANALYSIS_RESPONSE_HEADER, ["response_id", "unit_code", "submitted_at"]),
       volumes=st.one_of(st.none(), csv_file(VOLUME_HEADER, ["unit_code", "period_start", "period_end",
                                                             "transactions"])),
       args=st.lists(st.sampled_from(["--period", "2025", "--level", "unit", "parent", "--ci", "beta", "--target",
                                      "0.9", "commune=0.95", "--quota", "commune=150", "--as-of", "2025-06-30",
                                      "--rollup", "mean_of_units", "--map-successors", "--criteria", "--weights-from",
                                      "column", "volumes", "x", "", "--calendar", "-1", "2025-02-30"]), max_size=6),
       command=st.sampled_from(["index", "index", "adequacy", "trend", "drivers"]))
@budget(40)
def test_analysis_command_line(tmp_path_factory, capsys, responses, volumes, args, command):
    from analysis.__main__ import main

    d = tmp_path_factory.mktemp("cli")
    (d / "r.csv").write_bytes(responses)
    argv = [command, "--responses", str(d / "r.csv"), "--out", str(d / "out.csv")]
    if volumes is not None:
        (d / "v.csv").write_bytes(volumes)
        argv += ["--volumes", str(d / "v.csv")]
    argv += args
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse usage errors: exit 2 with a usage line
        code = exc.code
    err = capsys.readouterr().err
    event(f"exit {code}")
    assert "Traceback" not in err
    assert code in (0, 2), (code, err[-500:])
    if code == 2:
        assert err.strip(), "a refusal says why"
        assert re.search(r"error|usage|not available", err), err[-500:]
