"""services.csv_import: one validator per CSV format (analysis.io) plus the
checks that need the database; row errors keep line, column and reason and
are worded in the user's language."""
import io

import pytest
from sqlalchemy import select

from analysis import InputError, read_responses, read_units, read_volumes
from survey_app.extensions import db
from survey_app.models import Response, Volume
from survey_app.services import csv_import
from tests.factories import make_unit

VOL_HEAD = "unit_code,period_start,period_end,stratum,transactions\n"
RESP_HEAD = "response_id,unit_code,submitted_at,channel,instrument,stratum,excluded,overall\n"
UNIT_HEAD = "code,name_vi,name_en,kind,parent_code,valid_from,valid_to,successor_code\n"


def test_problems_carry_a_stable_code_and_params():
    with pytest.raises(InputError) as exc:
        read_responses(io.StringIO(RESP_HEAD + ",X1,2025-08-01T09:00:00Z,qr,counter-quick,,,6\n"))
    (p,) = exc.value.problems
    assert (p.line, p.column, p.code, p.params) == (2, "overall", "value_range", {"value": "6", "low": 1, "high": 5})


def test_transactions_must_be_whole_numbers_in_both_paths(ctx):
    make_unit("X1")
    db.session.commit()
    text = VOL_HEAD + "X1,2025-01-01,2025-03-31,,12.5\n"
    with pytest.raises(InputError) as exc:
        read_volumes(io.StringIO(text))
    assert exc.value.problems[0].code == "not_count"
    with pytest.raises(csv_import.ImportRejected) as rej:
        csv_import.import_volumes(text.encode(), "v.csv")
    assert [(e.line, e.column, e.code) for e in rej.value.errors] == [(2, "transactions", "not_count")]


def test_the_app_keeps_one_version_per_unit_code(ctx):
    text = UNIT_HEAD + "P,Tỉnh,,province,,,2025-07-01,\nP,Tỉnh mới,,province,,2025-07-01,,\n"
    assert len(read_units(io.StringIO(text))) == 2  # the file format allows versions
    with pytest.raises(csv_import.ImportRejected) as rej:
        csv_import.import_units(text.encode(), "u.csv")
    assert [(e.line, e.column, e.code) for e in rej.value.errors] == [(3, "code", "duplicate_code")]


def test_excluded_is_read_as_analysis_reads_it(ctx):
    make_unit("X1")
    db.session.commit()
    text = RESP_HEAD + ",X1,2025-08-01T09:00:00Z,qr,counter-quick,,true,4\n,X1,2025-08-01T10:00:00Z,qr,,,1.0,5\n"
    assert read_responses(io.StringIO(text))["excluded"].tolist() == [True, True]
    assert csv_import.import_responses(text.encode(), "r.csv").rows == 2
    assert db.session.scalars(select(Response.excluded)).all() == [True, True]


def test_row_errors_in_vietnamese_and_english(app):
    bad = (VOL_HEAD + "X1,2025-01-01,2025-03-31,,10\nNOPE,2025-01-01,2025-03-31,,5\n").encode()
    with app.app_context():
        make_unit("X1")
        db.session.commit()
        with pytest.raises(csv_import.ImportRejected) as rej:
            csv_import.import_volumes(bad, "v.csv")
        assert "dòng 3, cột unit_code: không tìm thấy đơn vị 'NOPE'" in str(rej.value)
    with app.test_request_context("/?lang=en"):
        with pytest.raises(csv_import.ImportRejected) as rej:
            csv_import.import_volumes(bad, "v.csv")
        (e,) = rej.value.errors
        assert (e.line, e.column, e.message) == (3, "unit_code", "unit 'NOPE' not found")
        assert "line 3, column unit_code" in str(rej.value)
    with app.app_context():
        assert db.session.scalar(select(Volume.id)) is None
