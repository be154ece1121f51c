"""Writers of the annual report: XLSX (openpyxl, formatted, with a method
sheet) and CSV.  They format what `analysis` computed; they compute nothing.

`report_rows(table)` is the column list shared by both; the method sheet
carries the method version, parameters, data cut-off and the counts left out
(from `IndexResult.meta`).
"""
from __future__ import annotations

import csv
import io
import json
import math
from typing import Callable, Optional

import pandas as pd

from .csv_export import csv_safe


def N_(message: str) -> str:
    """Marks `message` for `pybabel extract`; it is translated where it is written out (`translate`)."""
    return message


# (column in the ranked table, header key, kind) — kind: text | int | pct | num
REPORT_COLUMNS = [
    ("rank", N_("Rank"), "num"),
    ("rank_low", N_("Rank interval: best"), "int"),
    ("rank_high", N_("Rank interval: worst"), "int"),
    ("unit_code", N_("Unit code"), "text"),
    ("name_vi", N_("Unit"), "text"),
    ("kind", N_("Kind"), "text"),
    ("level", N_("Level"), "text"),
    ("parent_code", N_("Parent"), "text"),
    ("index", N_("Satisfaction index"), "pct"),
    ("index_ci_low", N_("Interval (95%): low"), "pct"),
    ("index_ci_high", N_("Interval (95%): high"), "pct"),
    ("moe", N_("Margin of error"), "pct"),
    ("overall_rate", N_("Overall satisfaction"), "pct"),
    ("access_rate", N_("Access"), "pct"),
    ("procedure_rate", N_("Procedure"), "pct"),
    ("staff_rate", N_("Civil servant"), "pct"),
    ("result_rate", N_("Result"), "pct"),
    ("feedback_rate", N_("Feedback"), "pct"),
    ("n", N_("Responses (n)"), "int"),
    ("N", N_("Transactions (N)"), "int"),
    ("response_rate", N_("Response rate"), "pct"),
    ("required_n", N_("Required n"), "int"),
    ("adequacy", N_("Sample adequacy"), "text"),
    ("target", N_("Target"), "pct"),
    ("target_status", N_("Target status"), "text"),
    ("vs_parent", N_("Compared with parent"), "text"),
    ("flags", N_("Flags"), "text"),
]

#: The method sheet's words for the reasons a response was left out.
LEFT_OUT = {"excluded": N_("Left out: excluded"), "outside_period": N_("Left out: outside_period"),
            "under_18": N_("Left out: under_18")}


def _clean(v):
    if v is None:
        return None
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    if hasattr(v, "item"):
        v = v.item()
    return v


def report_csv(table: pd.DataFrame, meta: dict) -> str:
    """CSV with machine names as headers (fractions stay fractions) and the
    method written in leading comment-free columns of a footer-free file:
    `method`, `period`, `data_cutoff` columns repeat on every row."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    cols = [c for c, _, _ in REPORT_COLUMNS if c in table.columns]
    w.writerow(cols + ["method", "period", "data_cutoff"])
    method = meta.get("method_version", "")
    period = (meta.get("period") or {}).get("label", "")
    cutoff = meta.get("data_cutoff") or ""
    for rec in table[cols].to_dict("records"):
        w.writerow([csv_safe(_fmt_csv(_clean(rec[c]))) for c in cols] + [method, period, cutoff])
    return buf.getvalue()


def _fmt_csv(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}" if not v.is_integer() else str(int(v))
    return v


def report_xlsx(table: pd.DataFrame, rollups: pd.DataFrame, meta: dict, *, title: str,
                translate: Callable[[str], str] = lambda s: s, value_words: Optional[dict] = None) -> bytes:
    """The formatted workbook: sheet 1 the ranked units, sheet 2 the roll-ups,
    sheet 3 the method (version, parameters, data cut-off, counts left out)."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter

    value_words = value_words or {}
    wb = Workbook()
    head_fill = PatternFill("solid", fgColor="1F3A5F")
    head_font = Font(bold=True, color="FFFFFF")
    thin = Side(style="thin", color="D0D7DE")

    def sheet(ws, frame: pd.DataFrame, heading: str):
        ws.append([heading])
        ws["A1"].font = Font(bold=True, size=14)
        ws.append([translate("Method %(m)s · period %(p)s · data up to %(c)s") % {
            "m": meta.get("method_version", ""), "p": (meta.get("period") or {}).get("label", ""),
            "c": meta.get("data_cutoff") or "–"}])
        ws.append([])
        cols = [(c, h, k) for c, h, k in REPORT_COLUMNS if c in frame.columns]
        ws.append([translate(h) for _, h, _ in cols])
        hr = ws.max_row
        for j in range(1, len(cols) + 1):
            cell = ws.cell(row=hr, column=j)
            cell.fill, cell.font = head_fill, head_font
            cell.alignment = Alignment(wrap_text=True, vertical="center")
        for rec in frame.to_dict("records"):
            out = []
            for c, _, k in cols:
                v = _clean(rec.get(c))
                if k == "text" and v is not None:
                    v = csv_safe(value_words.get(c, {}).get(v, v))
                out.append(v)
            ws.append(out)
            r = ws.max_row
            for j, (c, _, k) in enumerate(cols, start=1):
                cell = ws.cell(row=r, column=j)
                cell.border = Border(bottom=thin)
                if k == "pct":
                    cell.number_format = "0.0%"
                elif k == "int":
                    cell.number_format = "#,##0"
                elif k == "num":
                    cell.number_format = "0.#"
        ws.freeze_panes = ws.cell(row=hr + 1, column=1)
        for j, (c, h, k) in enumerate(cols, start=1):
            ws.column_dimensions[get_column_letter(j)].width = 34 if c == "name_vi" else (
                14 if k != "text" else 16)
        ws.row_dimensions[hr].height = 32
        ws.page_setup.orientation = "landscape"
        ws.page_setup.paperSize = ws.PAPERSIZE_A4
        ws.page_setup.fitToWidth = 1
        ws.print_title_rows = f"{hr}:{hr}"

    ws = wb.active
    ws.title = translate("Units")[:31]
    sheet(ws, table, title)
    ws2 = wb.create_sheet(translate("Roll-ups")[:31])
    sheet(ws2, rollups, translate("Roll-ups to parent levels"))
    ws3 = wb.create_sheet(translate("Method")[:31])
    ws3.column_dimensions["A"].width = 36
    ws3.column_dimensions["B"].width = 90
    ws3.append([translate("Method"), meta.get("method_version", "")])
    ws3["A1"].font = Font(bold=True)
    per = meta.get("period") or {}
    rows = [
        (N_("Period"), per.get("label", "")),
        (N_("First day (local)"), per.get("first", "")),
        (N_("Last day (local)"), per.get("last", "")),
        (N_("Time zone"), per.get("tz", "")),
        (N_("Data cut-off (last response used)"), meta.get("data_cutoff") or ""),
        (N_("Responses read"), meta.get("n_read", "")),
        (N_("Responses used"), meta.get("n_used", "")),
    ]
    for reason, n in (meta.get("n_left_out") or {}).items():
        rows.append((LEFT_OUT.get(reason, f"Left out: {reason}"), n))
    rows.append((N_("Weighting cells"), meta.get("cells", "")))
    rows.append((N_("Generated at"), meta.get("generated_at", "")))
    for k, v in rows:
        ws3.append([translate(k), _clean(v) if not isinstance(v, (dict, list)) else json.dumps(v)])
    ws3.append([])
    ws3.append([translate("Parameters")])
    ws3.cell(row=ws3.max_row, column=1).font = Font(bold=True)
    for k, v in sorted((meta.get("parameters") or {}).items()):
        ws3.append([k, json.dumps(v, ensure_ascii=False, default=str) if isinstance(v, (dict, list, tuple))
                    else ("" if v is None else str(v))])
    ws3.append([])
    for line in meta.get("notes", []):
        ws3.append(["", line])
    for row in ws3.iter_rows(min_col=2, max_col=2):
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def finite(x) -> bool:
    return isinstance(x, (int, float)) and not math.isnan(x)
