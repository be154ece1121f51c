"""python -m analysis: outputs, metadata, exit codes."""
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from analysis import METHOD_VERSION
from analysis.__main__ import main

ROOT = Path(__file__).resolve().parents[2]
CASE = ROOT / "tests" / "r" / "cases" / "rollup"
ARGS = ["index", "--responses", str(CASE / "responses.csv"), "--volumes", str(CASE / "volumes.csv"),
        "--units", str(CASE / "units.csv"), "--period", "2025"]


def test_csv_output_with_companion_meta(tmp_path):
    out = tmp_path / "idx.csv"
    assert main(ARGS + ["--target", "0.7", "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert set(table["level"]) == {"unit", "district", "province", "root"}
    meta = json.loads((tmp_path / "idx.csv.meta.json").read_text())
    assert meta["method_version"] == METHOD_VERSION and meta["parameters"]["target"] == 0.7
    assert meta["n_left_out"] == {"outside_period": 0, "excluded": 0, "under_18": 0}


def test_xlsx_has_method_sheet(tmp_path):
    out = tmp_path / "idx.xlsx"
    assert main(ARGS + ["--level", "parent", "--ci", "beta", "--out", str(out)]) == 0
    sheets = pd.read_excel(out, sheet_name=None)
    assert set(sheets) == {"index", "method"}
    assert set(sheets["index"]["level"]) == {"district", "province"}
    kv = dict(zip(sheets["method"]["key"], sheets["method"]["value"]))
    assert kv["method_version"] == METHOD_VERSION and kv["parameters.ci"] == "beta"


def test_json_has_meta_key(tmp_path):
    out = tmp_path / "idx.json"
    assert main(ARGS + ["--level", "root", "--rollup", "mean_of_units", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["meta"]["parameters"]["rollup"] == "mean_of_units"
    assert len(doc["rows"]) == 1 and doc["rows"][0]["unit_code"] == "_root"


def test_stdout_csv(capsys):
    assert main(ARGS + ["--level", "unit"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("unit_code,") and out.count("\n") == 6


def test_input_errors_exit_2_naming_file_line_column(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("response_id,unit_code,submitted_at,channel,instrument,stratum,excluded,overall\n"
                   "r1,C11,2025-03-01T10:00:00,qr,q,,,4\n")
    assert main(["index", "--responses", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}, line 2, column 'submitted_at'" in err and "Traceback" not in err


def test_unknown_period_and_missing_file_exit_2(capsys):
    assert main(ARGS[:-1] + ["2025-Q7"]) == 2
    assert "2025-Q7" in capsys.readouterr().err
    assert main(["index", "--responses", "/nonexistent.csv"]) == 2
    assert "file not found" in capsys.readouterr().err


def test_adequacy_planning_from_volumes(capsys):
    assert main(["adequacy", "--volumes", str(CASE / "volumes.csv"), "--units", str(CASE / "units.csv"),
                 "--period", "2025", "--adequacy", "cochran"]) == 0
    import io
    t = pd.read_csv(io.StringIO(capsys.readouterr().out)).set_index("unit_code")
    # C11: N = 150, Cochran with FPC = ceil(384.146 / (1 + 383.146/150)) = 109
    assert t.loc["C11", "required_n"] == 109 and t.loc["C11", "allocation"] == "a:73;b:37"


def test_optional_modules_not_available(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "analysis.drivers", None)
    monkeypatch.setitem(sys.modules, "analysis.trend", None)
    base = ["--responses", str(CASE / "responses.csv"), "--period", "2025"]
    assert main(["drivers"] + base) == 2
    assert "not available yet" in capsys.readouterr().err
    assert main(["trend"] + base) == 2
    assert "not available yet" in capsys.readouterr().err


def test_real_process_exit_code_and_no_traceback(tmp_path):
    p = subprocess.run([sys.executable, "-m", "analysis", "index", "--responses", str(tmp_path / "none.csv")],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "Traceback" not in p.stderr and "none.csv" in p.stderr
    assert p.stdout == ""
