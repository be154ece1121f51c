"""Writing result tables with their method and parameters.

Every output carries the method version and the parameters:

- ``.csv``: the table (UTF-8, comment-free, so any CSV reader takes it; the
  ``method`` column names the method version on every row) plus a companion
  ``<out>.meta.json`` with the full ``meta`` dict;
- ``.xlsx``: sheet ``index`` (the table) and sheet ``method`` (meta as
  key/value rows, nested keys joined with dots);
- ``.json``: ``{"meta": {...}, "rows": [...]}`` (NaN written as null);
- ``-``: CSV on standard output (the ``method`` column is the only meta).
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["write_table", "flatten_meta", "json_default"]


def json_default(o):
    """JSON encoder fallback for NumPy / pandas / date values."""
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return None if not np.isfinite(o) else float(o)
    if isinstance(o, (np.bool_,)):
        return bool(o)
    if hasattr(o, "isoformat"):
        return o.isoformat()
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)


def _clean(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def flatten_meta(meta: dict, prefix: str = "") -> list[tuple[str, str]]:
    """Nested dict -> [(dotted key, value as text)]."""
    rows = []
    for k, v in meta.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            rows += flatten_meta(v, key + ".")
        else:
            rows.append((key, json.dumps(v, default=json_default, ensure_ascii=False)
                         if isinstance(v, (list, tuple)) else ("" if v is None else str(v))))
    return rows


def _records(table: pd.DataFrame) -> list[dict]:
    recs = table.astype(object).where(table.notna(), None).to_dict(orient="records")
    return [{k: _clean(json_default(v) if isinstance(v, (np.generic,)) else v) for k, v in r.items()} for r in recs]


def write_table(table: pd.DataFrame, meta: dict, out: str, sheet: str = "index") -> list[str]:
    """Write ``table`` and ``meta`` to ``out`` (format from the suffix); returns the files written."""
    if out == "-":
        table.to_csv(sys.stdout, index=False)
        return []
    path = Path(out)
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        with pd.ExcelWriter(path, engine="openpyxl") as xw:
            table.to_excel(xw, sheet_name=sheet, index=False)
            pd.DataFrame(flatten_meta(meta), columns=["key", "value"]).to_excel(xw, sheet_name="method", index=False)
        return [str(path)]
    if suffix == ".json":
        path.write_text(json.dumps({"meta": meta, "rows": _records(table)}, default=json_default,
                                   ensure_ascii=False, indent=1), encoding="utf-8")
        return [str(path)]
    if suffix not in (".csv", ".txt", ""):
        raise ValueError(f"unknown output format {suffix!r}: use .csv, .xlsx, .json or -")
    table.to_csv(path, index=False)
    meta_path = path.with_name(path.name + ".meta.json")
    meta_path.write_text(json.dumps(meta, default=json_default, ensure_ascii=False, indent=1), encoding="utf-8")
    return [str(path), str(meta_path)]
