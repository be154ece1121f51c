"""The annual report: its ranking (one call of `analysis.ranking` shared by
the staff pages and `flask index compute --rank`) and its writers, XLSX
(openpyxl, formatted, with a method sheet) and CSV.  The writers format what
`analysis` computed; they compute nothing.

`REPORT_COLUMNS` is the column list shared by both; the method sheet carries
the method version, the n_eff cap, the ranking rule, parameters, data cut-off
and the counts left out (from `IndexResult.meta` and `ranking_meta`).

Ranking (METHODOLOGY 6): by default only units whose sample is `adequate` get
a rank number; the others follow them as "not ranked: sample too small"
(`rank_status`), never with a rank.  The rule and the status words are those
of `analysis.ranking` (Vietnamese and English), so the rule sentence and the
label it quotes are the same text everywhere.
"""
from __future__ import annotations

import csv
import io
import json
import math
from typing import Callable, Optional

import pandas as pd

from analysis.ranking import RANK_AMONG, RANK_STATUSES, order_ranked, rank_status_label, rank_units, ranking_note

from .csv_export import csv_safe


def N_(message: str) -> str:
    """Marks `message` for `pybabel extract`; it is translated where it is written out (`translate`)."""
    return message


#: The default of `rank_among` (METHODOLOGY 6): rank only units with an adequate sample.
DEFAULT_RANK_AMONG = RANK_AMONG[0]


def rank_among_or_default(value) -> str:
    """`value` when it is a `rank_among` choice ("adequate", "all"), else the default."""
    return value if value in RANK_AMONG else DEFAULT_RANK_AMONG


def rank_report_units(units: pd.DataFrame, *, rank_among: str = DEFAULT_RANK_AMONG, group="kind",
                      **options) -> pd.DataFrame:
    """`analysis.ranking.rank_units` within `group`, in reading order
    (`order_ranked`): per group the ranked units by rank, then the others
    ("not ranked: sample too small", "no data") by unit code.  `options` go to
    `rank_units` (n_sim, seed, ...).  The parameters are in `attrs["rank"]`."""
    if units.empty:
        return units
    ranked = rank_units(units, group=group, rank_among=rank_among, **options)
    out = order_ranked(ranked, group=group).reset_index(drop=True)
    out.attrs = dict(ranked.attrs)
    return out


def ranking_meta(rank_among: str = DEFAULT_RANK_AMONG, group="kind", ranked: Optional[pd.DataFrame] = None) -> dict:
    """The ranking's entry of a result's meta (`meta["ranking"]`), the same keys
    as `python -m analysis index --rank`: rank_among, group, the rule in both
    languages and, once ranked, the simulation's n_sim and seed."""
    out = {"rank_among": rank_among, "group": group,
           "rule_vi": ranking_note(rank_among, "vi"), "rule_en": ranking_note(rank_among, "en")}
    params = (ranked.attrs.get("rank") if ranked is not None else None) or {}
    for key, name in (("n_sim", "n_sim"), ("seed", "seed"), ("scale", "scale"), ("level", "interval_level")):
        if key in params:
            out[name] = params[key]
    return out


def ranking_rule(meta: dict, lang: str = "vi") -> str:
    """The ranking rule of a result (its `meta["ranking"]`) in `lang`; "" when it was not ranked."""
    rk = meta.get("ranking") or {}
    return rk.get("rule_en" if lang == "en" else "rule_vi", "")


def rank_words(lang: str = "vi") -> dict[str, str]:
    """Reader's words of each `rank_status` ("not ranked: sample too small", ...)."""
    return {s: rank_status_label(s, lang) for s in RANK_STATUSES}


# (column in the ranked table, header key, kind) — kind: text | int | pct | num
REPORT_COLUMNS = [
    ("rank", N_("Rank"), "num"),
    ("rank_low", N_("Rank interval: best"), "int"),
    ("rank_high", N_("Rank interval: worst"), "int"),
    ("rank_status", N_("Rank status"), "text"),
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
    ("exclusions_approved", N_("Exclusions approved"), "int"),
    ("exclusions_pending", N_("Exclusions waiting for approval"), "int"),
    ("typed_share", N_("Typed from paper or phone (share)"), "pct"),
]

#: The integrity columns (services.exclusions.integrity_table): exclusions approved / pending, typed share.
INTEGRITY_COLUMNS = ("exclusions_approved", "exclusions_pending", "typed_share")


def with_integrity(table: pd.DataFrame, integrity: dict) -> pd.DataFrame:
    """`table` with the integrity columns: a `unit` row gets its own responses'
    figures, a parent row those of its subtree, the root row all of them
    (`integrity` as `services.exclusions.integrity_table` returns it).  The
    statistics are not touched: an approved exclusion is already left out by
    them; these columns say how many, how many wait, and how much was typed."""
    if table.empty:
        return table.assign(**{c: pd.Series(dtype=float) for c in INTEGRITY_COLUMNS})
    out = table.copy()
    values = {c: [] for c in INTEGRITY_COLUMNS}
    for code, level in zip(out["unit_code"], out["level"]):
        part = (integrity["unit"] if level == "unit" else integrity["root"] if level == "root"
                else integrity["subtree"]).get("" if level == "root" else code)
        values["exclusions_approved"].append(part.excluded if part else 0)
        values["exclusions_pending"].append(part.pending if part else 0)
        values["typed_share"].append(part.typed_share if part and part.total else float("nan"))
    for c, v in values.items():
        out[c] = v
    return out

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


def report_csv(table: pd.DataFrame, meta: dict, *, lang: str = "vi") -> str:
    """CSV with machine names as headers (fractions stay fractions) in a
    comment-free, footer-free file; the method goes in columns repeated on
    every row: `method` (the method version), `rank_among` and `ranking_rule`
    (the rule in `lang`), `period`, `data_cutoff`.  Beside the machine
    `rank_status`, `rank_note` gives its words in `lang` ("không xếp hạng: cỡ
    mẫu quá nhỏ"); a unit that is not ranked has empty rank cells."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    cols = [c for c, _, _ in REPORT_COLUMNS if c in table.columns]
    note = ["rank_note"] if "rank_status" in cols else []
    w.writerow(cols + note + ["method", "rank_among", "ranking_rule", "period", "data_cutoff"])
    words = rank_words(lang)
    tail = [meta.get("method_version", ""), (meta.get("ranking") or {}).get("rank_among", ""),
            ranking_rule(meta, lang), (meta.get("period") or {}).get("label", ""), meta.get("data_cutoff") or ""]
    for rec in table[cols].to_dict("records"):
        row = [csv_safe(_fmt_csv(_clean(rec[c]))) for c in cols]
        if note:
            row.append(words.get(_clean(rec["rank_status"]), ""))
        w.writerow(row + [csv_safe(v) for v in tail])
    return buf.getvalue()


def _fmt_csv(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}" if not v.is_integer() else str(int(v))
    return v


def report_xlsx(table: pd.DataFrame, rollups: pd.DataFrame, meta: dict, *, title: str,
                translate: Callable[[str], str] = lambda s: s, value_words: Optional[dict] = None,
                lang: str = "vi") -> bytes:
    """The formatted workbook: sheet 1 the units (ranked ones first; the others
    with empty rank cells and their rank status), sheet 2 the roll-ups, sheet 3
    the method (version, n_eff cap, ranking rule in `lang`, parameters, data
    cut-off, counts left out)."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter

    value_words = dict(value_words or {})
    value_words.setdefault("rank_status", rank_words(lang))
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
        (N_("Effective sample size cap"), meta.get("n_eff_cap", "")),
        (N_("Ranking rule"), ranking_rule(meta, lang)),
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
