"""Issue 11, hole 6: imports cannot move a unit's figures unseen.

Scope on every row whatever the header looks like; a counter must be one of
the row's unit; the same data re-saved is the same file; overlapping volume
periods are refused unless replaced (audited); files are streamed in chunks,
still all-or-nothing; year-1 / year-9999 times are row errors.  The page and
the CLI share these checks (services.csv_import); the request-size cap before
sign-in is in tests/staff/test_import_page.py."""
import datetime as dt
import io

import pytest
from sqlalchemy import func, select

from analysis import read_volumes
from survey_app.extensions import db
from survey_app.models import AuditLog, ImportBatch, Response, Unit, Volume
from survey_app.services import csv_import
from survey_app.services.units import subtree_ids
from tests.factories import make_counter, make_unit, make_volume

VOL_HEAD = "unit_code,period_start,period_end,stratum,transactions\n"
RESP_HEAD = "response_id,unit_code,counter_code,submitted_at,channel,instrument,stratum,excluded,overall\n"


@pytest.fixture
def two_provinces(ctx):
    """P > P-A (counter P-A-Q1), P-B (counter P-B-Q1); Q > Q-Y (counter Q-Y-Q1).  Returns P's scope."""
    p = make_unit("P", kind="province")
    a, b = make_unit("P-A", parent=p), make_unit("P-B", parent=p)
    q = make_unit("Q", kind="province")
    y = make_unit("Q-Y", parent=q)
    for u in (a, b, y):
        make_counter(u, code=f"{u.code}-Q1")
    db.session.commit()
    return subtree_ids(p.id)


def _rejected(func, text, **kw) -> csv_import.ImportRejected:
    with pytest.raises(csv_import.ImportRejected) as exc:
        func(text.encode("utf-8") if isinstance(text, str) else text, "f.csv", actor="t", **kw)
    db.session.rollback()
    return exc.value


def _n(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def _where(rej):
    return [(e.line, e.column, e.code) for e in rej.errors]


# ------------------------------------------------------------------ 1. scope on every row, any header spelling

@pytest.mark.parametrize("head", [" unit_code", "Unit_Code ", "\ufeffunit_code", "unit_code\u200b", "UNIT_CODE"])
def test_header_spelling_does_not_defeat_the_scope_check(two_provinces, head):
    vols = VOL_HEAD.replace("unit_code", head) + "P-A,2030-01-01,2030-01-31,,10\nQ-Y,2030-01-01,2030-01-31,,5\n"
    rej = _rejected(csv_import.import_volumes, vols, scope=two_provinces)
    assert _where(rej) == [(3, "unit_code", "out_of_scope")]
    assert "dòng 3, cột unit_code: đơn vị Q-Y nằm ngoài phạm vi" in str(rej)
    resp = RESP_HEAD.replace("unit_code", head) + (",P-A,,2030-01-01T09:00:00+07:00,paper,,,,5\n"
                                                   ",Q-Y,,2030-01-01T09:00:00+07:00,paper,,,,5\n")
    rej = _rejected(csv_import.import_responses, resp, scope=two_provinces)
    assert _where(rej) == [(3, "unit_code", "out_of_scope")]
    assert _n(Volume) == _n(Response) == 0


def test_every_row_is_checked_not_only_the_first(two_provinces):
    rows = "".join(f"P-{'AB'[i % 2]},2030-{i + 1:02d}-01,2030-{i + 1:02d}-28,,1\n" for i in range(10))
    rej = _rejected(csv_import.import_volumes, VOL_HEAD + rows + "Q-Y,2030-01-01,2030-01-31,,5\n",
                    scope=two_provinces)
    assert _where(rej) == [(12, "unit_code", "out_of_scope")]
    assert csv_import.import_volumes((VOL_HEAD + rows).encode(), "ok.csv", scope=two_provinces).rows == 10


def test_headers_are_normalised_once_in_the_validator():
    from analysis.io import normalise_header

    assert normalise_header([" Unit_Code", "\ufeffperiod_start ", "Ｓtratum", "a\u200bb"]) == \
        ["unit_code", "period_start", "stratum", "ab"]
    frame = read_volumes(io.StringIO(" Unit_Code ,PERIOD_START,period_end,stratum,transactions\nX,2030-01-01,"
                                     "2030-01-31,,4\n"))
    assert frame["unit_code"].tolist() == ["X"]


# ------------------------------------------------------------------ 2. a counter belongs to the row's unit

@pytest.mark.parametrize("counter", ["Q-Y-Q1", "P-B-Q1"])  # another province's, a sibling unit's
def test_counter_of_another_unit_is_refused(two_provinces, counter):
    text = RESP_HEAD + f",P-A,{counter},2030-01-01T09:00:00+07:00,paper,,,,5\n"
    for scope in (two_provinces, None):  # also for an administrator (no scope)
        rej = _rejected(csv_import.import_responses, text, scope=scope)
        assert _where(rej) == [(2, "counter_code", "counter_other_unit")]
        assert f"quầy {counter} không thuộc đơn vị P-A" in str(rej)
    ok = RESP_HEAD + ",P-A,P-A-Q1,2030-01-01T09:00:00+07:00,paper,,,,5\n"
    assert csv_import.import_responses(ok.encode(), "ok.csv", scope=two_provinces).rows == 1


# ------------------------------------------------------------------ 3. the same content is the same file

def _resaved(text: str) -> bytes:
    """What a spreadsheet makes of the file: a BOM, CRLF, quoted cells, blank lines at the end."""
    lines = text.strip("\n").split("\n")
    quoted = [lines[0]] + [",".join(f'"{c}"' if c else c for c in line.split(",")) for line in lines[1:]]
    return ("\ufeff" + "\r\n".join(quoted) + "\r\n\r\n").encode("utf-8")


@pytest.mark.parametrize("kind", ["volumes", "responses"])
def test_a_resaved_file_is_refused_as_already_imported(two_provinces, kind):
    if kind == "volumes":
        func, text = csv_import.import_volumes, VOL_HEAD + "P-A,2030-01-01,2030-01-31,,10\n"
    else:
        func, text = csv_import.import_responses, RESP_HEAD + ",P-A,,2030-01-01T09:00:00+07:00,paper,,,,5\n"
    func(text.encode(), "first.csv")
    rej = _rejected(func, _resaved(text))
    assert "đã được nhập trước đó (trùng nội dung)" in str(rej) and not rej.errors
    assert db.session.scalar(select(ImportBatch.rows)) == 1
    assert _n(ImportBatch) == 1


def test_digest_is_of_the_content():
    from analysis.io import CsvChunks

    def digest(data: bytes) -> str:
        reader = CsvChunks(io.BytesIO(data), chunk_rows=1)
        for _ in reader:
            pass
        return reader.digest()

    text = VOL_HEAD + "P-A,2030-01-01,2030-01-31,,10\n"
    assert digest(text.encode()) == digest(_resaved(text)) == digest(text.replace("\n", " \n").encode())
    assert digest(text.encode()) != digest(text.replace(",10", ",11").encode())


# ------------------------------------------------------------------ 4. overlapping volume periods

def test_overlap_with_a_stored_period_is_refused_naming_both(two_provinces):
    unit = db.session.scalar(select(Unit).where(Unit.code == "P-A"))
    make_volume(unit, 5391, start=dt.date(2025, 1, 1), end=dt.date(2025, 12, 31), stratum="ho_tich")
    db.session.commit()
    text = VOL_HEAD + "P-A,2025-07-01,2025-07-31,ho_tich,200\n"
    rej = _rejected(csv_import.import_volumes, text, scope=two_provinces)
    assert _where(rej) == [(2, "period_start", "volume_overlap_stored")]
    msg = str(rej)
    assert "đơn vị P-A, lĩnh vực ho_tich: kỳ 2025-07-01–2025-07-31 trùng thời gian với kỳ 2025-01-01–2025-12-31" in msg
    assert db.session.scalars(select(Volume.transactions)).all() == [5391]
    # another stratum, or the next year, is not an overlap
    ok = VOL_HEAD + "P-A,2025-07-01,2025-07-31,dat_dai,200\nP-A,2026-01-01,2026-12-31,ho_tich,10\n"
    assert csv_import.import_volumes(ok.encode(), "ok.csv", scope=two_provinces).created == 2


def test_the_same_period_again_is_an_overlap_too(two_provinces):
    text = VOL_HEAD + "P-A,2030-01-01,2030-03-31,,100\n"
    csv_import.import_volumes(text.encode(), "q1.csv")
    rej = _rejected(csv_import.import_volumes, text.replace("100", "120"))
    assert _where(rej) == [(2, "period_start", "volume_overlap_stored")]
    assert db.session.scalars(select(Volume.transactions)).all() == [100]


def test_overlap_within_the_file_is_refused(two_provinces):
    text = VOL_HEAD + ("P-A,2030-01-01,2030-03-31,,100\n"
                       "P-A,2030-04-01,2030-06-30,,100\n"   # adjacent: fine
                       "P-B,2030-03-01,2030-03-31,,7\n"     # another unit: fine
                       "P-A,2030-03-15,2030-04-15,,50\n")   # overlaps lines 2 and 3
    rej = _rejected(csv_import.import_volumes, text)
    assert [(e.line, e.code, e.params["first"]) for e in rej.errors] == [(5, "volume_overlap_file", 2),
                                                                         (5, "volume_overlap_file", 3)]
    assert "kỳ 2030-03-15–2030-04-15 trùng thời gian với kỳ 2030-01-01–2030-03-31 ở dòng 2" in str(rej)
    assert _n(Volume) == 0


def test_replace_deletes_the_overlapped_rows_and_is_audited(two_provinces):
    csv_import.import_volumes((VOL_HEAD + "P-A,2030-01-01,2030-12-31,,5391\nP-B,2030-01-01,2030-12-31,,8\n")
                              .encode(), "year.csv")
    text = VOL_HEAD + "P-A,2030-01-01,2030-06-30,,2600\nP-A,2030-07-01,2030-12-31,,2800\n"
    res = csv_import.import_volumes(text.encode(), "halves.csv", actor="ana", scope=two_provinces, replace=True)
    assert (res.created, res.updated) == (2, 1)
    assert sorted(db.session.scalars(select(Volume.transactions))) == [8, 2600, 2800]
    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "replace_volumes"))
    assert entry.actor == "ana" and entry.details["replaced"] == 1
    assert entry.details["rows"] == [{"unit": "P-A", "stratum": "_all", "period": "2030-01-01–2030-12-31",
                                      "transactions": 5391}]


@pytest.mark.parametrize("replace", [False, True])
def test_an_overlap_stored_by_a_concurrent_import_is_caught(two_provinces, monkeypatch, replace):
    """Another import commits an overlapping row after this file was checked: the final check before
    the commit sees it (PostgreSQL: the units' rows are locked for it)."""
    unit_id = db.session.scalar(select(Unit.id).where(Unit.code == "P-A"))
    original = csv_import._record_batch

    def meanwhile(*args, **kw):
        with db.engine.begin() as other:
            other.execute(Volume.__table__.insert(), {"unit_id": unit_id, "stratum": "_all", "transactions": 77,
                                                      "period_start": dt.date(2030, 1, 1),
                                                      "period_end": dt.date(2030, 12, 31)})
        return original(*args, **kw)

    monkeypatch.setattr(csv_import, "_record_batch", meanwhile)
    text = VOL_HEAD + "P-A,2030-03-01,2030-03-31,,5\nP-B,2030-03-01,2030-03-31,,6\n"
    if not replace:
        rej = _rejected(csv_import.import_volumes, text)
        assert _where(rej) == [(2, "period_start", "volume_overlap_stored")]
        assert db.session.scalars(select(Volume.transactions)).all() == [77]
        assert _n(ImportBatch) == 0
    else:
        csv_import.import_volumes(text.encode(), "f.csv", replace=True)
        assert sorted(db.session.scalars(select(Volume.transactions))) == [5, 6]


def test_replace_does_not_allow_overlaps_within_the_file(two_provinces):
    text = VOL_HEAD + "P-A,2030-01-01,2030-06-30,,1\nP-A,2030-06-30,2030-12-31,,1\n"
    rej = _rejected(csv_import.import_volumes, text, replace=True)
    assert _where(rej) == [(3, "period_start", "volume_overlap_file")]


# ------------------------------------------------------------------ 5. streamed in chunks, still all-or-nothing

def test_chunks_keep_line_numbers_and_write_nothing_on_a_late_error(two_provinces, monkeypatch):
    monkeypatch.setattr(csv_import, "CHUNK_ROWS", 3)
    good = [f",P-A,,2030-01-01T09:{i:02d}:00+07:00,paper,,,,{1 + i % 5}\n" for i in range(10)]
    bad = list(good)
    bad[4] = bad[4].replace(",5\n", ",9\n")  # line 6, chunk 2
    bad[9] = bad[9].replace("2030", "0001")  # line 11, chunk 4
    rej = _rejected(csv_import.import_responses, RESP_HEAD + "".join(bad))
    assert _where(rej) == [(6, "overall", "value_range"), (11, "submitted_at", "timestamp_range")]
    assert _n(Response) == 0
    res = csv_import.import_responses(io.BytesIO((RESP_HEAD + "".join(good)).encode()), "ok.csv")
    assert res.rows == _n(Response) == 10


def test_repeated_ids_are_found_across_chunks(two_provinces, monkeypatch):
    monkeypatch.setattr(csv_import, "CHUNK_ROWS", 2)
    rid = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
    rows = [f"{rid if i in (1, 4) else ''},P-A,,2030-01-01T09:00:00+07:00,paper,,,,5\n" for i in range(6)]
    rej = _rejected(csv_import.import_responses, RESP_HEAD + "".join(rows))
    assert [(e.line, e.code, e.params.get("first")) for e in rej.errors] == [(6, "duplicate_id", 3)]


def test_the_error_list_is_capped(two_provinces, monkeypatch):
    monkeypatch.setattr(csv_import, "CHUNK_ROWS", 100)
    rows = "".join(f"P-A,2030-01-{1 + i % 28:02d},2030-01-01,,x\n" for i in range(1500))
    rej = _rejected(csv_import.import_volumes, VOL_HEAD + rows)
    assert len(rej.errors) == csv_import.MAX_ERRORS
    assert "có ít nhất 1000 dòng lỗi" in rej.summary


def test_a_stream_that_cannot_seek_is_imported(two_provinces):
    class OneWay(io.RawIOBase):
        def __init__(self, data):
            self._inner = io.BytesIO(data)

        def readable(self):
            return True

        def readinto(self, b):
            chunk = self._inner.read(len(b))
            b[:len(chunk)] = chunk
            return len(chunk)

    data = (VOL_HEAD + "P-A,2030-01-01,2030-01-31,,10\n").encode()
    assert csv_import.import_volumes(OneWay(data), "pipe.csv").rows == 1


# ------------------------------------------------------------------ 7. year 1 / year 9999

@pytest.mark.parametrize("ts", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59-01:00", "9999-12-31T12:00:00+07:00"])
def test_far_timestamps_are_row_errors(two_provinces, ts):
    rej = _rejected(csv_import.import_responses, RESP_HEAD + f",P-A,,{ts},paper,,,,5\n")
    assert _where(rej) == [(2, "submitted_at", "timestamp_range")]
    assert "không nằm trong khoảng năm 2000–2099" in str(rej) and "Traceback" not in str(rej)


# ------------------------------------------------------------------ the CLI shares the checks

def test_cli_refuses_an_overlap_and_replaces_with_the_flag(app, two_provinces, tmp_path):
    runner = app.test_cli_runner()
    first = tmp_path / "year.csv"
    first.write_text(VOL_HEAD + "P-A,2030-01-01,2030-12-31,,5391\n", encoding="utf-8")
    assert runner.invoke(args=["volumes", "import", str(first)]).exit_code == 0
    again = tmp_path / "july.csv"
    again.write_text(VOL_HEAD + "P-A,2030-07-01,2030-07-31,,200\n", encoding="utf-8")
    r = runner.invoke(args=["volumes", "import", str(again)])
    assert r.exit_code == 1 and "trùng thời gian với kỳ 2030-01-01–2030-12-31" in r.output
    r = runner.invoke(args=["volumes", "import", "--replace", str(again)])
    assert r.exit_code == 0 and "thay thế 1 dòng đã có" in r.output
    db.session.remove()
    assert db.session.scalars(select(Volume.transactions)).all() == [200]
