"""Small data factories for the analysis tests (pure pandas, no app)."""
from __future__ import annotations

import pandas as pd

ITEMS = ["overall", "access", "procedure", "staff", "result", "feedback"]


def make_responses(rows, ts="2025-03-01T10:00:00+07:00"):
    """rows: list of dicts with unit_code and optional stratum, items, excluded, age_group, submitted_at."""
    out = []
    for i, r in enumerate(rows):
        rec = {"response_id": f"r{i}", "unit_code": r.get("unit_code", "U"), "submitted_at": r.get("submitted_at", ts),
               "channel": "qr", "instrument": "counter-quick/1", "stratum": r.get("stratum", ""),
               "excluded": r.get("excluded", ""), "age_group": r.get("age_group", "")}
        for k in ITEMS:
            rec[k] = r.get(k, "")
        for k, v in r.items():
            if k not in rec:
                rec[k] = v
        out.append(rec)
    return pd.DataFrame(out).astype(str).replace({"nan": ""})


def make_volumes(rows):
    """rows: (unit, stratum, transactions[, start, end])."""
    recs = []
    for r in rows:
        u, s, t = r[:3]
        start, end = (r[3], r[4]) if len(r) > 3 else ("2024-12-15", "2025-12-14")
        recs.append({"unit_code": u, "period_start": start, "period_end": end, "stratum": s, "transactions": t})
    return pd.DataFrame(recs)


def make_units(rows):
    """rows: (code, kind, parent[, valid_from, valid_to, successor])."""
    recs = []
    for r in rows:
        code, kind, parent = r[:3]
        vf, vt, succ = (list(r[3:]) + ["", "", ""])[:3]
        recs.append({"code": code, "name_vi": code, "name_en": code, "kind": kind, "parent_code": parent,
                     "valid_from": vf, "valid_to": vt, "successor_code": succ})
    return pd.DataFrame(recs)


def uniform_rows(unit, n, value=5, stratum="", **extra):
    return [dict(unit_code=unit, stratum=stratum, **{k: value for k in ITEMS}, **extra) for _ in range(n)]
