"""Both command lines name the method version and the ranking rule (issue 10):
`flask index compute --rank [--rank-among adequate|all]` on the database and
`python -m analysis index --rank` on CSV files."""
import csv
import io
import json

import openpyxl
import pandas as pd
import pytest

from analysis import METHOD_VERSION
from analysis.__main__ import main as analysis_main
from analysis.ranking import RANK_AMONG, ranking_note
from tests.factories import RANKING_UNITS, make_responses, make_units, make_volumes, seed_ranking_province, uniform_rows


@pytest.fixture
def seeded(app):
    return seed_ranking_province(app)


def compute(runner, *args):
    res = runner.invoke(args=["index", "compute", "--period", "2025", "--level", "unit", *args])
    assert res.exit_code == 0, res.output
    return res


def test_flask_index_rank_only_adequate_units_by_default(runner, seeded, tmp_path):
    out = tmp_path / "idx.csv"
    res = compute(runner, "--rank", "--out", str(out))
    table = pd.read_csv(out)
    assert set(table["unit_code"]) == set(RANKING_UNITS)
    small = table[table["unit_code"].isin(seeded["inadequate"])]
    assert (small["adequacy"] != "adequate").all()
    assert small["rank"].isna().all() and small["rank_low"].isna().all()
    assert (small["rank_status"] == "sample_too_small").all()
    ranked = table[table["unit_code"].isin(seeded["adequate"])]
    assert (ranked["rank_status"] == "ranked").all() and ranked["rank"].notna().all()
    # ranked within level and kind: the communes 1..3, the department 1 of 1
    assert sorted(ranked[ranked["kind"] == "commune"]["rank"]) == [1, 2, 3]
    assert ranked[ranked["kind"] == "department"]["rank"].tolist() == [1]
    # the unranked follow the ranked ones of their kind
    communes = table[table["kind"] == "commune"]["rank_status"].tolist()
    assert communes == sorted(communes, key=lambda s: s != "ranked")
    meta = json.loads((tmp_path / "idx.csv.meta.json").read_text(encoding="utf-8"))
    assert meta["method_version"] == METHOD_VERSION and set(table["method"]) == {METHOD_VERSION}
    assert meta["ranking"]["rank_among"] == "adequate"
    assert meta["ranking"]["rule_vi"] == ranking_note("adequate", "vi")
    assert meta["ranking"]["rule_en"] == ranking_note("adequate", "en")
    # and on the terminal
    assert METHOD_VERSION in res.stderr and ranking_note("adequate", "vi") in res.stderr


def test_flask_index_rank_among_all_ranks_everyone(runner, seeded, tmp_path):
    out = tmp_path / "idx.json"
    res = compute(runner, "--rank", "--rank-among", "all", "--out", str(out))
    doc = json.loads(out.read_text(encoding="utf-8"))
    rows = doc["rows"]
    assert len(rows) == len(RANKING_UNITS)
    assert all(r["rank_status"] == "ranked" and r["rank"] is not None for r in rows)
    assert doc["meta"]["method_version"] == METHOD_VERSION
    assert doc["meta"]["ranking"]["rank_among"] == "all"
    assert doc["meta"]["ranking"]["rule_en"] == ranking_note("all", "en")
    assert ranking_note("all", "vi") in res.stderr


def test_flask_index_xlsx_method_sheet_and_stdout(runner, seeded, tmp_path):
    out = tmp_path / "idx.xlsx"
    compute(runner, "--rank", "--out", str(out))
    wb = openpyxl.load_workbook(out)
    kv = {k: v for k, v in wb["method"].iter_rows(min_row=2, values_only=True)}
    assert kv["method_version"] == METHOD_VERSION
    assert kv["ranking.rank_among"] == "adequate" and kv["ranking.rule_vi"] == ranking_note("adequate", "vi")
    # CSV on stdout: the method column and the rank status; the rule on stderr
    res = compute(runner, "--rank", "--out", "-")
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert {r["method"] for r in rows} == {METHOD_VERSION}
    assert {r["rank_status"] for r in rows if r["unit_code"] in seeded["inadequate"]} == {"sample_too_small"}
    assert all(r["rank"] == "" for r in rows if r["unit_code"] in seeded["inadequate"])
    assert ranking_note("adequate", "vi") in res.stderr


def test_flask_index_without_rank_still_names_the_method_and_refuses_an_unknown_rule(runner, seeded, tmp_path):
    out = tmp_path / "idx.csv"
    res = compute(runner, "--out", str(out))
    assert "rank" not in pd.read_csv(out).columns and METHOD_VERSION in res.stderr
    res = compute(runner, "--no-cap-n-eff", "--out", str(out))
    assert set(pd.read_csv(out)["method"]) == {METHOD_VERSION + "-uncapped"}
    bad = runner.invoke(args=["index", "compute", "--period", "2025", "--rank", "--rank-among", "some",
                              "--out", str(out)])
    assert bad.exit_code == 2 and "some" in bad.output and "Traceback" not in bad.output


def test_flask_rank_among_choices_are_the_analysis_ones():
    from survey_app.cli.index import index_compute

    opt = next(o for o in index_compute.params if o.name == "rank_among")
    assert tuple(opt.type.choices) == RANK_AMONG and opt.default == RANK_AMONG[0]


def ranking_csv_files(tmp_path) -> dict:
    """The units of RANKING_UNITS as the CSV inputs of `python -m analysis`."""
    rows = []
    for code, (kind, N, n, share) in RANKING_UNITS.items():
        happy = round(share * n)
        rows += uniform_rows(code, happy, 5) + uniform_rows(code, n - happy, 2)
    frames = {"responses": make_responses(rows),
              "volumes": make_volumes([(code, "", spec[1]) for code, spec in RANKING_UNITS.items()]),
              "units": make_units([("R", "province", "")] + [(c, spec[0], "R") for c, spec in RANKING_UNITS.items()])}
    files = {}
    for kind, frame in frames.items():
        files[kind] = tmp_path / f"{kind}.csv"
        frame.to_csv(files[kind], index=False)
    return files


def test_analysis_cli_names_method_version_and_ranking_rule(tmp_path, capsys):
    """`python -m analysis index --rank` on the same units as CSV files."""
    files = ranking_csv_files(tmp_path)
    inadequate = ["R-ONE", "R-S"]
    base = ["index", "--responses", str(files["responses"]), "--volumes", str(files["volumes"]),
            "--units", str(files["units"]), "--period", "2025", "--level", "unit", "--rank"]
    for fmt in ("csv", "json", "xlsx"):
        out = tmp_path / f"a.{fmt}"
        assert analysis_main(base + ["--out", str(out)]) == 0
        if fmt == "csv":
            table = pd.read_csv(out)
            meta = json.loads((tmp_path / "a.csv.meta.json").read_text(encoding="utf-8"))
            rule = meta["ranking"]["rule_vi"]
            version = meta["method_version"]
        elif fmt == "json":
            doc = json.loads(out.read_text(encoding="utf-8"))
            table, rule, version = pd.DataFrame(doc["rows"]), doc["meta"]["ranking"]["rule_en"], \
                doc["meta"]["method_version"]
        else:
            sheets = pd.read_excel(out, sheet_name=None)
            kv = dict(zip(sheets["method"]["key"], sheets["method"]["value"]))
            table, rule, version = sheets["index"], kv["ranking.rule_vi"], kv["method_version"]
        assert version == METHOD_VERSION and set(table["method"]) == {METHOD_VERSION}
        assert rule == ranking_note("adequate", "en" if fmt == "json" else "vi")
        small = table[table["unit_code"].isin(inadequate)]
        assert len(small) == len(inadequate) and small["rank"].isna().all()
        assert (small["rank_status"] == "sample_too_small").all()
    # stdout: the method column names the version, the rank method the rule's choice
    assert analysis_main(base + ["--rank-among", "all", "--out", "-"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert set(table["method"]) == {METHOD_VERSION} and (table["rank_status"] == "ranked").all()
    assert table["rank_method"].str.contains("rank_among=all").all()
