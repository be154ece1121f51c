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
import math
from typing import Callable, Optional

import pandas as pd

from analysis.ranking import RANK_AMONG, RANK_STATUSES, order_ranked, rank_status_label, rank_units, ranking_note
from analysis.schema import ROOT_CODE, ROOT_LEVEL

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


# (column in the ranked table, header key, kind) — kind: text | int | pct | num | rank (an integer when it is one)
REPORT_COLUMNS = [
    ("rank", N_("Rank"), "rank"),
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
    # The five elements, each with its 95% interval (the official annex shows both).
    ("access_rate", N_("Access"), "pct"),
    ("access_ci_low", N_("Access: interval (95%) low"), "pct"),
    ("access_ci_high", N_("Access: interval (95%) high"), "pct"),
    ("procedure_rate", N_("Procedure"), "pct"),
    ("procedure_ci_low", N_("Procedure: interval (95%) low"), "pct"),
    ("procedure_ci_high", N_("Procedure: interval (95%) high"), "pct"),
    ("staff_rate", N_("Civil servant"), "pct"),
    ("staff_ci_low", N_("Civil servant: interval (95%) low"), "pct"),
    ("staff_ci_high", N_("Civil servant: interval (95%) high"), "pct"),
    ("result_rate", N_("Result"), "pct"),
    ("result_ci_low", N_("Result: interval (95%) low"), "pct"),
    ("result_ci_high", N_("Result: interval (95%) high"), "pct"),
    ("feedback_rate", N_("Feedback"), "pct"),
    ("feedback_ci_low", N_("Feedback: interval (95%) low"), "pct"),
    ("feedback_ci_high", N_("Feedback: interval (95%) high"), "pct"),
    ("n", N_("Responses (n)"), "int"),
    ("N", N_("Transactions (N)"), "int"),
    ("response_rate", N_("Response rate"), "pct"),
    # Dossier-based figures (issue 12, METHODOLOGY §7): beside the index, never merged into it.
    ("offered", N_("Offered a rating link"), "int"),
    ("link_responses", N_("Responses via dossier links"), "int"),
    ("link_response_rate", N_("Response rate among offered"), "pct"),
    ("m766_rate", N_("QĐ 766 satisfaction (dossiers)"), "pct"),
    ("m766_points", N_("QĐ 766 points (of 6)"), "num"),
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

#: Columns that are "not known" when empty: a unit that sends no dossier
#: events (QR posters only) has no offered count (METHODOLOGY §7).
UNKNOWN_WHEN_EMPTY = ("offered", "link_responses", "link_response_rate")
NOT_KNOWN = {"vi": "không rõ", "en": "not known"}


def not_known(lang: str = "vi") -> str:
    return NOT_KNOWN.get(lang, NOT_KNOWN["vi"])


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
    (the rule in `lang`), `period`, `data_cutoff`, `closed_version`.  Beside the machine
    `rank_status`, `rank_note` gives its words in `lang` ("không xếp hạng: cỡ
    mẫu quá nhỏ"); a unit that is not ranked has empty rank cells."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    cols = [c for c, _, _ in REPORT_COLUMNS if c in table.columns]
    note = ["rank_note"] if "rank_status" in cols else []
    w.writerow(cols + note + ["method", "rank_among", "ranking_rule", "period", "data_cutoff", "closed_version"])
    words = rank_words(lang)
    tail = [meta.get("method_version", ""), (meta.get("ranking") or {}).get("rank_among", ""),
            ranking_rule(meta, lang), (meta.get("period") or {}).get("label", ""), meta.get("data_cutoff") or "",
            meta.get("closed_version") or ""]  # services.publishing.version_tag: the frozen version, if any
    for rec in table[cols].to_dict("records"):
        row = [csv_safe(_fmt_csv(_clean(rec[c]))) if c not in UNKNOWN_WHEN_EMPTY or _clean(rec[c]) is not None
               else not_known(lang) for c in cols]
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


#: Parameter names of the method sheet in words (`IndexResult.meta["parameters"]`).
PARAMETER_LABELS = {
    "adequacy": N_("Sample size rule"), "as_of": N_("Units as of"), "calendar": N_("Calendar periods"),
    "cap_n_eff": N_("Effective sample size capped"), "ci": N_("Interval method"),
    "element_mode": N_("Element rates"), "element_modes": N_("Element rates, per element"),
    "element_weights": N_("Element weights (set)"), "element_weights_normalised": N_("Element weights (used)"),
    "elements": N_("Elements"), "include_excluded": N_("Excluded responses counted"),
    "include_under_18": N_("Responses of people under 18 counted"), "level": N_("Confidence level"),
    "level_filter": N_("Levels shown"), "low_n": N_("Few responses below (effective)"),
    "map_successors": N_("Mapped to today's units"), "margin": N_("Margin of error aimed at"),
    "min_transactions": N_("Fewest transactions for a sample rule"), "quotas": N_("Quotas"),
    "rollup": N_("Roll-up method"), "target": N_("Targets"), "weights_from": N_("Weights from (set)"),
    "weights_from_used": N_("Weights from (used)"), "wide_ci": N_("Wide interval above"),
}
#: Parameter values that are words, not names (method names such as "wilson" stay as they are).
PARAMETER_WORDS = {"direct": N_("direct"), "pooled": N_("pooled"), "auto": N_("automatic"),
                   "volumes": N_("transaction volumes"), "*": N_("default")}


def _dmy(value) -> str:
    """An ISO date ("2026-12-14") as dd/mm/yyyy; anything else unchanged."""
    import datetime as dt

    try:
        return dt.date.fromisoformat(str(value)).strftime("%d/%m/%Y")
    except ValueError:
        return str(value)


def _words(v, translate: Callable[[str], str], codes: dict) -> str:
    """A parameter value in words: yes/no, "–" for none, lists and mappings
    joined ("Xã, 2026: 90%"), codes (kinds, elements) by their words."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return translate("yes") if v else translate("no")
    if isinstance(v, (list, tuple)):
        return ", ".join(_words(x, translate, codes) for x in v)
    if isinstance(v, dict):
        return "; ".join(f"{_key_words(k, translate, codes)}: {_words(x, translate, codes)}" for k, x in v.items())
    if isinstance(v, float):
        return f"{v:g}".replace(".", codes.get(".", "."))
    text = str(v)
    if text in codes:
        return codes[text]
    if text in PARAMETER_WORDS:
        return translate(PARAMETER_WORDS[text])
    if len(text) == 10 and text[4:5] == "-" and text[7:8] == "-":
        return _dmy(text)
    return text


def _key_words(key, translate, codes) -> str:
    """A mapping key of a parameter: "(2026, 'commune')" (a tuple written as text) → "2026, Xã"."""
    text = str(key)
    if text.startswith("(") and text.endswith(")"):
        parts = [p.strip().strip("'\"") for p in text[1:-1].split(",") if p.strip()]
        return ", ".join(codes.get(p, p) for p in parts)
    return _words(key, translate, codes)


def report_xlsx(table: pd.DataFrame, rollups: pd.DataFrame, meta: dict, *, title: str,
                translate: Callable[[str], str] = lambda s: s, value_words: Optional[dict] = None,
                lang: str = "vi", heading: Optional[dict] = None,
                local_time: Callable[[str], str] = lambda s: s or "",
                fields: Optional[tuple] = None) -> bytes:
    """The formatted workbook: sheet 1 the units (ranked ones first; the others
    with empty rank cells and their rank status), sheet 2 the roll-ups, sheet 3
    the method (version, n_eff cap, ranking rule in `lang`, parameters, data
    cut-off, counts left out).

    Each data sheet opens with the official header (`heading`: issuer_parent,
    issuer, motto, motto_sub, place_date), the title and the period / cut-off
    line; headers and values are words in `lang` (`value_words`: column →
    {code: words} or a callable giving a list of words, as for `flags`); empty
    cells stay empty (never "None" or "nan"); `local_time` writes the stored UTC
    timestamps in local time (dd/mm/yyyy HH:MM).  `fields` = (columns as
    (key, header, kind), rows): a last sheet, the Biểu 06-style table per field
    (lĩnh vực), when there are rows."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter

    value_words = dict(value_words or {})
    value_words.setdefault("rank_status", rank_words(lang))
    codes = {k: v for col in ("kind", "element") for k, v in (value_words.get(col) or {}).items()}
    codes["."] = "," if lang == "vi" else "."  # the decimal mark of numbers written in words
    heading = dict(heading or {})
    wb = Workbook()
    head_fill = PatternFill("solid", fgColor="1F3A5F")
    head_font = Font(bold=True, color="FFFFFF")
    thin = Side(style="thin", color="D0D7DE")
    per = meta.get("period") or {}
    cutoff = local_time(meta.get("data_cutoff")) or "–"
    period_line = translate("Period %(a)s – %(b)s · data up to %(c)s (local time) · method %(m)s") % {
        "a": _dmy(per.get("first", "")), "b": _dmy(per.get("last", "")), "c": cutoff,
        "m": meta.get("method_version", "")}

    def top(ws, width: int, heading_text: str) -> None:
        """The issuing body (left) and the national motto (right), then the title and the period line."""
        right = max(width - 5, 4)
        rows = [(heading.get("issuer_parent", ""), heading.get("motto", "")),
                (heading.get("issuer", ""), heading.get("motto_sub", "")),
                ("", heading.get("place_date", ""))]
        for i, (left, motto) in enumerate(rows, start=1):
            ws.cell(row=i, column=1, value=left or None).font = Font(bold=i == 2)
            cell = ws.cell(row=i, column=right, value=motto or None)
            cell.font = Font(bold=i < 3, italic=i == 3)
        ws.cell(row=4, column=1, value=heading_text).font = Font(bold=True, size=14)
        ws.cell(row=5, column=1, value=period_line)

    def sheet(ws, frame: pd.DataFrame, heading_text: str):
        cols = [(c, h, k) for c, h, k in REPORT_COLUMNS if c in frame.columns]
        top(ws, len(cols), heading_text)
        ws.append([])
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
                if c == "unit_code" and v == ROOT_CODE:
                    v = None
                elif c == "name_vi" and rec.get("level") == ROOT_LEVEL:
                    v = heading.get("root_name") or translate("All units")
                elif k == "text" and v is not None:
                    words = value_words.get(c, {})
                    v = "; ".join(words(v)) if callable(words) else words.get(v, v)
                    v = csv_safe(v) if v != "" else None
                elif v is None and c in UNKNOWN_WHEN_EMPTY:
                    v = not_known(lang)
                elif k in ("rank", "int") and isinstance(v, float) and v.is_integer():
                    v = int(v)
                elif isinstance(v, bool):
                    v = translate("yes") if v else translate("no")
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
                elif k == "rank":
                    cell.number_format = "0" if not isinstance(cell.value, float) else "0.0"
                elif k == "num":
                    cell.number_format = "0.0"
        ws.freeze_panes = ws.cell(row=hr + 1, column=1 + sum(1 for c, _, _ in cols[:6] if c in
                                                             ("rank", "unit_code", "name_vi")))
        for j, (c, h, k) in enumerate(cols, start=1):
            ws.column_dimensions[get_column_letter(j)].width = 34 if c == "name_vi" else (
                12 if k != "text" else 16)
        ws.row_dimensions[hr].height = 45
        ws.page_setup.orientation = "landscape"
        ws.page_setup.paperSize = ws.PAPERSIZE_A4
        ws.page_setup.fitToWidth = 1
        ws.page_setup.fitToHeight = 0
        ws.sheet_properties.pageSetUpPr.fitToPage = True
        ws.print_title_rows = f"{hr}:{hr}"
        ws.oddFooter.center.text = translate("Page &P of &N")

    ws = wb.active
    ws.title = translate("Units")[:31]
    sheet(ws, table, title)
    ws2 = wb.create_sheet(translate("Roll-ups")[:31])
    sheet(ws2, rollups, translate("Roll-ups to parent levels"))
    ws3 = wb.create_sheet(translate("Method")[:31])
    ws3.column_dimensions["A"].width = 40
    ws3.column_dimensions["B"].width = 90
    ws3.append([translate("Method"), meta.get("method_version", "")])
    ws3["A1"].font = Font(bold=True)
    rows = [
        (N_("Effective sample size cap"), meta.get("n_eff_cap", "")),
        (N_("Ranking rule"), ranking_rule(meta, lang)),
        (N_("Period"), per.get("label", "")),
        (N_("First day (local)"), _dmy(per.get("first", ""))),
        (N_("Last day (local)"), _dmy(per.get("last", ""))),
        (N_("Time zone"), per.get("tz", "")),
        (N_("Data cut-off (last response used)"), cutoff),
        (N_("Responses read"), meta.get("n_read", "")),
        (N_("Responses used"), meta.get("n_used", "")),
    ]
    for reason, n in (meta.get("n_left_out") or {}).items():
        rows.append((LEFT_OUT.get(reason, f"Left out: {reason}"), n))
    rows.append((N_("Weighting cells"), meta.get("cells", "")))
    rows.append((N_("Generated at"), local_time(meta.get("generated_at")) or ""))
    for k, v in rows:
        v = _clean(v)
        ws3.append([translate(k), _words(v, translate, codes) if isinstance(v, (dict, list, bool)) or v is None
                    else v])
    ws3.append([])
    ws3.append([translate("Parameters")])
    ws3.cell(row=ws3.max_row, column=1).font = Font(bold=True)
    for k, v in sorted((meta.get("parameters") or {}).items()):
        v = _clean(v) if not isinstance(v, (dict, list, tuple)) else v
        ws3.append([translate(PARAMETER_LABELS[k]) if k in PARAMETER_LABELS else k,
                    v if isinstance(v, (int, float)) and not isinstance(v, bool) else _words(v, translate, codes)])
    ws3.append([])
    for line in meta.get("notes", []):
        ws3.append(["", line])
    for row in ws3.iter_rows(min_col=2, max_col=2):
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    if fields and fields[1]:
        columns, rows = fields
        ws4 = wb.create_sheet(translate("By field")[:31])
        top(ws4, len(columns), translate("Dossiers and satisfaction per field (Biểu 06/VPCP/KSTT)"))
        ws4.append([])
        ws4.append([h for _, h, _ in columns])
        hr = ws4.max_row
        for j in range(1, len(columns) + 1):
            cell = ws4.cell(row=hr, column=j)
            cell.fill, cell.font = head_fill, head_font
            cell.alignment = Alignment(wrap_text=True, vertical="center")
        for rec in rows:
            ws4.append([csv_safe(rec.get(c)) if k == "text" and isinstance(rec.get(c), str) else _clean(rec.get(c))
                        for c, _, k in columns])
            for j, (_, _, k) in enumerate(columns, start=1):
                cell = ws4.cell(row=ws4.max_row, column=j)
                cell.border = Border(bottom=thin)
                cell.number_format = {"pct": "0.0%", "int": "#,##0"}.get(k, "General")
        for j, (c, _, k) in enumerate(columns, start=1):
            ws4.column_dimensions[get_column_letter(j)].width = 30 if c in ("unit_name", "field_name") else 13
        ws4.row_dimensions[hr].height = 45
        ws4.freeze_panes = ws4.cell(row=hr + 1, column=3)
        ws4.page_setup.orientation = "landscape"
        ws4.page_setup.paperSize = ws4.PAPERSIZE_A4
        ws4.print_title_rows = f"{hr}:{hr}"
        ws4.oddFooter.center.text = translate("Page &P of &N")
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def finite(x) -> bool:
    return isinstance(x, (int, float)) and not math.isnan(x)
