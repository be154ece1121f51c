"""Generate the small, seeded CSV fixtures under tests/r/cases/<case>/.

Run from the repository root: ``python -m tests.r.make_cases``. Each case has
``responses.csv`` (DESIGN response CSV; timestamps in UTC with ``Z`` so that R
can read them without an offset parser), optionally ``volumes.csv`` and
``units.csv``, and ``params.csv`` (key,value: period label, its local first/last
days and UTC bounds, element mode, weights source) read by both
``make_expected.R`` and the Python tests.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.periods import parse_period
from analysis.schema import ELEMENTS, ITEM_KEYS

HERE = Path(__file__).resolve().parent
ITEMS = list(ITEM_KEYS)


def _answers(rng, n, p_sat, p_na):
    """Item answers 1-5 with about ``p_sat`` satisfied (4/5), NaN with prob. ``p_na``."""
    sat = rng.random(n) < p_sat
    v = np.where(sat, rng.integers(4, 6, n), rng.integers(1, 4, n)).astype(float)
    v[rng.random(n) < p_na] = np.nan
    return v


def _responses(rng, spec, period, extra_cols=None):
    """spec: list of (unit, stratum, n, p_sat, p_na)."""
    rows = []
    start = pd.Timestamp(period.start)
    span = (pd.Timestamp(period.end) - start).total_seconds()
    rid = 0
    for unit, stratum, n, p_sat, p_na in spec:
        block = {"unit_code": [unit] * n, "stratum": [stratum] * n}
        for item in ITEMS:
            block[item] = _answers(rng, n, p_sat, p_na)
        ts = start + pd.to_timedelta(rng.random(n) * span * 0.999, unit="s")
        block["submitted_at"] = [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in ts]
        frame = pd.DataFrame(block)
        rows.append(frame)
    df = pd.concat(rows, ignore_index=True)
    rid = np.arange(len(df))
    df.insert(0, "response_id", [f"r{i:05d}" for i in rid])
    df["channel"] = "qr"
    df["instrument"] = "counter-quick/1"
    df["excluded"] = ""
    df["age_group"] = ""
    cols = ["response_id", "unit_code", "submitted_at", "channel", "instrument", "stratum", "excluded",
            "age_group"] + ITEMS
    return df[cols]


def _driven_responses(rng, spec, period, coefs, intercept=-2.0, p_na=0.08):
    """Responses whose overall satisfaction follows a logistic model of the elements' satisfaction.

    spec: list of (unit, stratum, n); coefs: element -> log odds ratio.
    """
    r = _responses(rng, [(u, s, n, 0.7, 0.0) for u, s, n in spec], period)
    n = len(r)
    q = rng.random(n)
    lin = np.full(n, intercept)
    for e in ELEMENTS:
        sat = rng.random(n) < 0.45 + 0.4 * q
        r[e] = np.where(sat, rng.integers(4, 6, n), rng.integers(1, 4, n)).astype(float)
        lin += coefs.get(e, 0.0) * sat
        r.loc[rng.random(n) < p_na, e] = np.nan
    sat = rng.random(n) < 1.0 / (1.0 + np.exp(-lin))
    r["overall"] = np.where(sat, rng.integers(4, 6, n), rng.integers(1, 4, n)).astype(float)
    r.loc[rng.random(n) < p_na / 2, "overall"] = np.nan
    return r


def _write(case, period_label, responses, volumes=None, units=None, element_mode="direct",
           weights_from="volumes", extra=()):
    d = HERE / "cases" / case
    d.mkdir(parents=True, exist_ok=True)
    for f in d.glob("*.csv"):
        f.unlink()
    p = parse_period(period_label)
    responses.to_csv(d / "responses.csv", index=False, float_format="%.0f")
    if volumes is not None:
        volumes.to_csv(d / "volumes.csv", index=False)
    if units is not None:
        units.to_csv(d / "units.csv", index=False)
    with open(d / "params.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["key", "value"])
        for k, v in [("period", period_label), ("first", p.first.isoformat()), ("last", p.last.isoformat()),
                     ("start_utc", p.start.strftime("%Y-%m-%d %H:%M:%S")),
                     ("end_utc", p.end.strftime("%Y-%m-%d %H:%M:%S")),
                     ("element_mode", element_mode), ("weights_from", weights_from), *extra]:
            w.writerow([k, v])


def _vol(rows, first="2024-12-15", last="2025-12-14"):
    """rows: (unit, stratum, transactions[, first, last])."""
    return pd.DataFrame([{"unit_code": row[0], "period_start": row[3] if len(row) > 3 else first,
                          "period_end": row[4] if len(row) > 4 else last, "stratum": row[1],
                          "transactions": row[2]} for row in rows])


def main():
    period = parse_period("2025")

    # 1. equal weights: no volumes, w = 1, one cell per unit
    rng = np.random.default_rng(101)
    r = _responses(rng, [("U1", "", 40, 0.8, 0.1), ("U2", "", 25, 0.6, 0.05), ("U3", "x", 12, 0.9, 0.2),
                         ("U3", "y", 9, 0.7, 0.0)], period)
    _write("equal_weights", "2025", r, weights_from="none")

    # 2. volume weights with FPC; eligibility (excluded, under 18, outside the period)
    rng = np.random.default_rng(202)
    r = _responses(rng, [("A", "land", 30, 0.85, 0.1), ("A", "civil", 20, 0.7, 0.1), ("A", "", 8, 0.9, 0.0),
                         ("B", "land", 15, 0.6, 0.15), ("B", "civil", 35, 0.75, 0.05),
                         ("C", "civil", 22, 0.8, 0.1)], period)
    r.loc[[3, 40], "excluded"] = "1"
    r.loc[[5, 60], "age_group"] = "under_18"
    r.loc[[7], "submitted_at"] = "2024-12-14T16:59:00Z"   # 14/12/2024 23:59 local: year 2024
    r.loc[[9], "submitted_at"] = "2025-12-14T17:10:00Z"   # 15/12/2025 00:10 local: year 2026
    v = _vol([("A", "land", 120), ("A", "civil", 300), ("A", "_all", 40), ("B", "land", 50), ("B", "civil", 90),
              ("B", "_all", 10), ("C", "_all", 400)])
    _write("volume_fpc", "2025", r, v)

    # 3. quarterly volumes (summed) and a row overlapping the period in part (pro rata)
    rng = np.random.default_rng(303)
    r = _responses(rng, [("Q1", "a", 26, 0.8, 0.1), ("Q1", "b", 18, 0.65, 0.1), ("Q2", "a", 31, 0.9, 0.05)], period)
    q = parse_period("2025-Q1")
    rows = []
    for k in range(4):
        qq = parse_period(f"2025-Q{k + 1}")
        rows += [{"unit_code": "Q1", "period_start": qq.first.isoformat(), "period_end": qq.last.isoformat(),
                  "stratum": "a", "transactions": 30 + 7 * k},
                 {"unit_code": "Q1", "period_start": qq.first.isoformat(), "period_end": qq.last.isoformat(),
                  "stratum": "b", "transactions": 20 + 3 * k}]
    rows.append({"unit_code": "Q2", "period_start": "2025-06-01", "period_end": "2026-05-31", "stratum": "a",
                 "transactions": 730})
    rows.append({"unit_code": "Q2", "period_start": "2024-10-01", "period_end": "2024-12-31", "stratum": "a",
                 "transactions": 92})
    rows.append({"unit_code": "Q2", "period_start": "2023-01-01", "period_end": "2023-12-31", "stratum": "a",
                 "transactions": 999})
    del q
    _write("quarterly", "2025", r, pd.DataFrame(rows))

    # 4. 100% and 0% units (Var = 0), plus an ordinary one
    rng = np.random.default_rng(404)
    r = _responses(rng, [("ALL", "", 15, 1.0, 0.0), ("NONE", "", 12, 0.0, 0.0), ("MIX", "s", 20, 0.7, 0.1),
                         ("MIX", "t", 14, 0.8, 0.1)], period)
    v = _vol([("ALL", "_all", 200), ("NONE", "_all", 100), ("MIX", "s", 60), ("MIX", "t", 80)])
    _write("extremes", "2025", r, v)

    # 5. one-response cells (lonely PSU) and domains with design df 0
    rng = np.random.default_rng(505)
    r = _responses(rng, [("S1", "a", 1, 0.5, 0.0), ("S2", "a", 1, 0.5, 0.0), ("S2", "b", 1, 0.5, 0.0),
                         ("S3", "a", 1, 0.5, 0.0), ("S3", "b", 6, 0.6, 0.1), ("S4", "a", 7, 0.7, 0.1)], period)
    r.loc[1, ITEMS] = [5, 5, 5, 5, 5, 5]
    r.loc[2, ITEMS] = [2, 1, 2, 3, 2, 1]
    v = _vol([("S1", "a", 10), ("S2", "a", 20), ("S2", "b", 5), ("S3", "a", 3), ("S3", "b", 40), ("S4", "a", 30)])
    _write("tiny_cells", "2025", r, v)

    # 6. heavy item non-response; one element nobody answered in a unit
    rng = np.random.default_rng(606)
    r = _responses(rng, [("N1", "", 40, 0.75, 0.4), ("N2", "", 30, 0.8, 0.3)], period)
    r.loc[r["unit_code"] == "N2", "feedback"] = np.nan
    v = _vol([("N1", "_all", 500), ("N2", "_all", 300)])
    _write("item_nonresponse", "2025", r, v)

    # 7. a census cell (n = N) and a near-census cell
    rng = np.random.default_rng(707)
    r = _responses(rng, [("K1", "a", 12, 0.8, 0.1), ("K1", "b", 20, 0.7, 0.1), ("K2", "a", 9, 0.6, 0.0)], period)
    v = _vol([("K1", "a", 12), ("K1", "b", 21), ("K2", "a", 200)])
    _write("census_cell", "2025", r, v)

    # 8. more responses than transactions in a cell (over_population)
    rng = np.random.default_rng(808)
    r = _responses(rng, [("O1", "a", 15, 0.8, 0.1), ("O1", "b", 10, 0.7, 0.1), ("O2", "a", 18, 0.75, 0.0)], period)
    v = _vol([("O1", "a", 10), ("O1", "b", 100), ("O2", "a", 60)])
    _write("over_population", "2025", r, v)

    # 9. parent roll-up: communes -> districts -> province; one unit without volume
    rng = np.random.default_rng(909)
    spec = []
    for i, (u, n) in enumerate([("C11", 25), ("C12", 18), ("C21", 30), ("C22", 12), ("C23", 20)]):
        spec.append((u, "a", n, 0.6 + 0.07 * i, 0.1))
        spec.append((u, "b", n // 2 + 3, 0.7, 0.1))
    r = _responses(rng, spec, period)
    v = _vol([(u, s, t) for u, s, t in [("C11", "a", 100), ("C11", "b", 50), ("C12", "a", 80), ("C12", "b", 40),
                                           ("C21", "a", 300), ("C21", "b", 90), ("C22", "_all", 70),
                                           ("C23", "a", 60), ("C23", "b", 60)]])
    units = pd.DataFrame([
        ("P1", "Tinh 1", "Province 1", "province", ""),
        ("D1", "Huyen 1", "District 1", "district", "P1"),
        ("D2", "Huyen 2", "District 2", "district", "P1"),
        ("C11", "Xa 11", "Commune 11", "commune", "D1"),
        ("C12", "Xa 12", "Commune 12", "commune", "D1"),
        ("C21", "Xa 21", "Commune 21", "commune", "D2"),
        ("C22", "Xa 22", "Commune 22", "commune", "D2"),
        ("C23", "Xa 23", "Commune 23", "commune", "D2"),
    ], columns=["code", "name_vi", "name_en", "kind", "parent_code"])
    units["valid_from"] = "2020-01-01"
    units["valid_to"] = ""
    units["successor_code"] = ""
    _write("rollup", "2025", r, v, units)

    # 10. criteria element index (access by three yes/no criteria)
    rng = np.random.default_rng(1010)
    r = _responses(rng, [("G1", "a", 30, 0.8, 0.1), ("G1", "b", 14, 0.7, 0.1), ("G2", "a", 26, 0.75, 0.1)], period)
    for k, p in enumerate([0.9, 0.7, 0.8], start=1):
        c = (rng.random(len(r)) < p).astype(float)
        c[rng.random(len(r)) < 0.15] = np.nan
        r[f"access_c{k}"] = c
    v = _vol([("G1", "a", 90), ("G1", "b", 70), ("G2", "a", 100)])
    _write("criteria", "2025", r, v, element_mode="criteria")

    # 11. explicit weight column (weights vary inside a cell; no FPC)
    rng = np.random.default_rng(1111)
    r = _responses(rng, [("W1", "", 35, 0.75, 0.1), ("W2", "x", 20, 0.85, 0.1), ("W2", "y", 16, 0.6, 0.0)], period)
    r["weight"] = rng.integers(1, 5, len(r))
    _write("explicit_weights", "2025", r, weights_from="column")

    # 12. key drivers: svyglm on the complete responses as a domain of the full design, with FPC;
    # incomplete responses stay in their cells; a lonely one-response cell; two districts and the root
    rng = np.random.default_rng(1212)
    spec = [("E11", "a", 70), ("E11", "b", 45), ("E11", "c", 1), ("E12", "a", 80), ("E21", "a", 60),
            ("E21", "b", 55), ("E22", "", 70)]
    r = _driven_responses(rng, spec, period, {"staff": 1.8, "result": 0.9, "procedure": 0.4})
    v = _vol([("E11", "a", 150), ("E11", "b", 90), ("E11", "c", 4), ("E12", "a", 400), ("E21", "a", 100),
              ("E21", "b", 80), ("E22", "_all", 700)])
    units = pd.DataFrame([
        ("Q1", "Tinh", "Province", "province", ""),
        ("F1", "Huyen 1", "District 1", "district", "Q1"),
        ("F2", "Huyen 2", "District 2", "district", "Q1"),
        ("E11", "Xa 11", "Commune 11", "commune", "F1"),
        ("E12", "Xa 12", "Commune 12", "commune", "F1"),
        ("E21", "Xa 21", "Commune 21", "commune", "F2"),
        ("E22", "Xa 22", "Commune 22", "commune", "F2"),
    ], columns=["code", "name_vi", "name_en", "kind", "parent_code"])
    units["valid_from"] = "2020-01-01"
    units["valid_to"] = ""
    units["successor_code"] = ""
    _write("key_drivers", "2025", r, v, units, extra=[("drivers_level", "district")])

    def tree(rows):
        """rows: (code, kind, parent[, valid_from, valid_to, successor])."""
        out = []
        for row in rows:
            code, kind, parent = row[:3]
            vf, vt, succ = (list(row[3:]) + ["2020-01-01", "", ""][len(row) - 3:])[:3]
            out.append((code, f"Don vi {code}", f"Unit {code}", kind, parent, vf, vt, succ))
        return pd.DataFrame(out, columns=["code", "name_vi", "name_en", "kind", "parent_code", "valid_from",
                                          "valid_to", "successor_code"])

    # 13. mean_of_units roll-up: parents and the root are plain means of their members, Var = sum Var_w / U^2
    # (a 100% commune enters with its working variance; one commune without volume)
    rng = np.random.default_rng(1313)
    spec = []
    for i, (u, n) in enumerate([("M11", 30), ("M12", 22), ("M13", 15), ("M21", 40), ("M22", 26)]):
        spec.append((u, "a", n, 0.55 + 0.08 * i, 0.1))
        spec.append((u, "b", n // 2 + 2, 0.75, 0.1))
    spec.append(("M23", "", 9, 1.0, 0.0))
    r = _responses(rng, spec, period)
    v = _vol([("M11", "a", 90), ("M11", "b", 60), ("M12", "a", 200), ("M12", "b", 30), ("M13", "_all", 40),
              ("M21", "a", 500), ("M21", "b", 100), ("M23", "_all", 25)])
    units = tree([("R1", "province", ""), ("H1", "district", "R1"), ("H2", "district", "R1"),
                  ("M11", "commune", "H1"), ("M12", "commune", "H1"), ("M13", "commune", "H1"),
                  ("M21", "commune", "H2"), ("M22", "commune", "H2"), ("M23", "commune", "H2")])
    _write("rollup_mean", "2025", r, v, units, extra=[("rollup", "mean_of_units")])

    # 14. a quarter of the report year (15/3-14/6): responses all year round, quarterly and annual volumes
    rng = np.random.default_rng(1414)
    r = _responses(rng, [("T1", "a", 80, 0.8, 0.1), ("T1", "b", 60, 0.7, 0.1), ("T2", "a", 70, 0.85, 0.05),
                         ("T3", "", 40, 0.6, 0.1)], period)
    rows = []
    for k in range(4):
        qq = parse_period(f"2025-Q{k + 1}")
        rows += [{"unit_code": "T1", "period_start": qq.first.isoformat(), "period_end": qq.last.isoformat(),
                  "stratum": s, "transactions": N + 10 * k} for s, N in (("a", 60), ("b", 45))]
    rows.append({"unit_code": "T2", "period_start": "2024-12-15", "period_end": "2025-12-14", "stratum": "a",
                 "transactions": 365})
    rows.append({"unit_code": "T3", "period_start": "2025-04-01", "period_end": "2025-04-30", "stratum": "_all",
                 "transactions": 50})
    _write("quarter", "2025-Q2", r, pd.DataFrame(rows), tree([("Z", "district", ""), ("T1", "commune", "Z"),
                                                             ("T2", "commune", "Z"), ("T3", "commune", "Z")]))

    # 15. the tree as of a date: commune A2 moves from district B1 to B2 on 2025-07-01; as of 2025-03-31
    # it is still in B1 (the default, the period's last day, would put it in B2)
    rng = np.random.default_rng(1515)
    r = _responses(rng, [("A1", "", 35, 0.8, 0.1), ("A2", "", 28, 0.6, 0.1), ("A3", "", 30, 0.9, 0.1),
                         ("A4", "", 20, 0.7, 0.1)], period)
    v = _vol([("A1", "_all", 200), ("A2", "_all", 90), ("A3", "_all", 120), ("A4", "_all", 60)])
    units = tree([("S", "province", ""), ("B1", "district", "S"), ("B2", "district", "S"),
                  ("A1", "commune", "B1"), ("A2", "commune", "B1", "2020-01-01", "2025-07-01"),
                  ("A2", "commune", "B2", "2025-07-01"), ("A3", "commune", "B2"), ("A4", "commune", "B2")])
    _write("as_of", "2025", r, v, units, extra=[("as_of", "2025-03-31")])

    # 16. --map-successors: commune X1 (district G1) retired on 2025-06-01, successor Y1 (district G2).
    # Domains are mapped (X1's responses count for Y1 and G2); cells, weights and FPC stay X1's own.
    # District G3 is untouched; the province and the root are identical with and without mapping.
    rng = np.random.default_rng(1616)
    r = _responses(rng, [("X1", "a", 25, 0.6, 0.1), ("X1", "b", 12, 0.8, 0.1), ("K1", "", 30, 0.75, 0.1),
                         ("Y1", "a", 30, 0.9, 0.1), ("K2", "", 20, 0.7, 0.1), ("L1", "", 26, 0.8, 0.1),
                         ("L2", "a", 18, 0.65, 0.1)], period)
    x1 = (r["unit_code"] == "X1").to_numpy()
    first = parse_period("2025").start
    ts = pd.Timestamp(first) + pd.to_timedelta(rng.random(x1.sum()) * 150 * 86400, unit="s")
    r.loc[x1, "submitted_at"] = [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in ts]  # before the retirement
    v = _vol([("X1", "a", 60, "2024-12-15", "2025-05-31"), ("X1", "b", 20, "2024-12-15", "2025-05-31"),
              ("K1", "_all", 150), ("Y1", "a", 120), ("Y1", "_all", 30), ("K2", "_all", 80), ("L1", "_all", 90),
              ("L2", "a", 40)])
    units = tree([("W", "province", ""), ("G1", "district", "W"), ("G2", "district", "W"), ("G3", "district", "W"),
                  ("X1", "commune", "G1", "2020-01-01", "2025-06-01", "Y1"), ("K1", "commune", "G1"),
                  ("Y1", "commune", "G2"), ("K2", "commune", "G2"), ("L1", "commune", "G3"),
                  ("L2", "commune", "G3")])
    _write("map_successors", "2025", r, v, units, extra=[("map_successors", "1")])


if __name__ == "__main__":
    os.chdir(HERE.parents[1])
    main()
