import io

import numpy as np
import pandas as pd
import pytest

from analysis import InputError, compute_index, read_responses, read_units, read_volumes
from analysis.io import prepare_responses

HEADER = "response_id,unit_code,submitted_at,channel,instrument,stratum,excluded,overall,access\n"


def _csv(text, name="r.csv"):
    buf = io.StringIO(text)
    buf.name = name
    return buf


def _problems(exc):
    return [(p.file, p.line, p.column) for p in exc.value.problems]


def test_input_error_is_a_value_error_with_problems():
    assert issubclass(InputError, ValueError)


def test_missing_columns_are_named():
    with pytest.raises(InputError) as exc:
        read_responses(_csv("response_id,unit_code\nr1,U\n"))
    cols = {p.column for p in exc.value.problems}
    assert {"submitted_at", "stratum", "excluded", "channel", "instrument"} <= cols
    assert all(p.line == 1 and p.file == "r.csv" for p in exc.value.problems)


def test_values_outside_scale_and_bad_excluded_name_line_and_column():
    text = HEADER + ("r1,U,2025-01-01T10:00:00+07:00,qr,q,,0,5,4\n"
                     "r2,U,2025-01-01T10:00:00+07:00,qr,q,,2,6,4\n"
                     "r3,U,2025-01-01T10:00:00+07:00,qr,q,,,4,x\n")
    with pytest.raises(InputError) as exc:
        read_responses(_csv(text))
    got = _problems(exc)
    assert ("r.csv", 3, "excluded") in got
    assert ("r.csv", 3, "overall") in got
    assert ("r.csv", 4, "access") in got
    assert len(got) == 3
    assert "line 3, column 'overall'" in str(exc.value)


@pytest.mark.parametrize("ts,ok", [
    ("2025-01-01T10:00:00+07:00", True), ("2025-01-01 10:00:00Z", True), ("2025-01-01T10:00:00.123+0700", True),
    ("2025-01-01T10:00+07", True), ("2025-01-01T03:00:00-05:30", True),
    ("2025-01-01T10:00:00", False), ("2025-01-01", False), ("01/01/2025 10:00+07:00", False),
    ("2025-02-30T10:00:00Z", False),
])
def test_timestamps_need_an_offset(ts, ok):
    text = HEADER + f"r1,U,{ts},qr,q,,,5,4\n"
    if ok:
        df = read_responses(_csv(text))
        assert str(df["submitted_at"].dtype).endswith("UTC]")
    else:
        with pytest.raises(InputError) as exc:
            read_responses(_csv(text))
        assert _problems(exc) == [("r.csv", 2, "submitted_at")]


def test_offsets_are_converted_to_utc():
    text = HEADER + "r1,U,2025-01-01T10:00:00+07:00,qr,q,,,5,4\nr2,U,2025-01-01 03:00:00Z,qr,q,,,5,4\n"
    df = read_responses(_csv(text))
    assert df["submitted_at"].iloc[0] == df["submitted_at"].iloc[1]


def test_blank_stratum_is_all_and_codes_trimmed():
    text = HEADER + "r1, U1 ,2025-01-01T10:00:00Z,qr,q,  ,,5,4\nr2,U1,2025-01-01T10:00:00Z,qr,q, land ,1,5,4\n"
    df = read_responses(_csv(text))
    assert df["unit_code"].tolist() == ["U1", "U1"]
    assert df["stratum"].tolist() == ["_all", "land"]
    assert df["excluded"].tolist() == [False, True]


def test_unknown_units_when_unit_file_given():
    text = HEADER + "r1,U1,2025-01-01T10:00:00Z,qr,q,,,5,4\nr2,ZZ,2025-01-01T10:00:00Z,qr,q,,,5,4\n"
    with pytest.raises(InputError) as exc:
        read_responses(_csv(text), known_units={"U1"})
    assert _problems(exc) == [("r.csv", 3, "unit_code")]
    assert "ZZ" in str(exc.value)


def test_volume_validation():
    text = ("unit_code,period_start,period_end,stratum,transactions\n"
            "U1,2025-01-01,2025-03-31,,100\n"
            "U1,2025-04-01,2025-03-31,,100\n"
            "U1,2025-13-01,2025-03-31,,100\n"
            "U1,2025-01-01,2025-03-31,,-5\n")
    with pytest.raises(InputError) as exc:
        read_volumes(_csv(text, "v.csv"))
    got = _problems(exc)
    assert ("v.csv", 3, "period_end") in got
    assert ("v.csv", 4, "period_start") in got
    assert ("v.csv", 5, "transactions") in got


def test_unit_validation_parent_and_overlap():
    text = ("code,name_vi,name_en,kind,parent_code,valid_from,valid_to,successor_code\n"
            "P,p,p,province,,,,\n"
            "A,a,a,commune,QQ,,,\n"
            "B,b,b,commune,P,2020-01-01,2025-07-01,\n"
            "B,b,b,commune,P,2025-01-01,,\n")
    with pytest.raises(InputError) as exc:
        read_units(_csv(text, "u.csv"))
    got = _problems(exc)
    assert ("u.csv", 3, "parent_code") in got
    assert ("u.csv", 5, "valid_from") in got


def test_unit_cycle_is_an_input_error():
    from tests.factories import make_responses, make_units
    units = make_units([("A", "district", "B"), ("B", "district", "A")])
    with pytest.raises(InputError):
        compute_index(make_responses([{"unit_code": "A", "overall": 5}]), units=units)


def test_unparseable_period_is_an_input_error():
    from tests.factories import make_responses
    with pytest.raises(InputError):
        compute_index(make_responses([{"unit_code": "A", "overall": 5}]), period="2025-Q9")


def test_count_column_validated():
    df = pd.DataFrame({"unit_code": ["A", "A"], "overall": [5, 4], "count": [2, -1]})
    with pytest.raises(InputError) as exc:
        prepare_responses(df)
    assert [(p.line, p.column) for p in exc.value.problems] == [(3, "count")]


def test_typed_frames_from_the_app_are_accepted():
    df = pd.DataFrame({"unit_code": ["A", "A"], "stratum": [None, "x"], "overall": [5, np.nan],
                       "access": pd.array([4, None], dtype="Int64"), "count": [3, 1], "excluded": [False, True]})
    out = prepare_responses(df)
    assert out["stratum"].tolist() == ["_all", "x"]
    assert np.isnan(out["overall"].iloc[1]) and out["access"].iloc[0] == 4
    assert out["count"].tolist() == [3, 1] and out["excluded"].tolist() == [False, True]
