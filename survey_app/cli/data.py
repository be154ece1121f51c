"""`flask units|volumes|responses import`, `responses export`, `responses flag`: the CSV files."""
from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import AppGroup

from ..extensions import db
from .common import fail, period_or_fail, subtree_or_fail


def _run_import(file: str, func_name: str, module: str = "csv_import", **options) -> None:
    """One import through `services.csv_import` (or `services.bieu06`): the file is streamed (memory
    bounded), all-or-nothing."""
    import importlib

    from ..services import csv_import

    service = importlib.import_module(f"..services.{module}", __package__)

    try:
        fh = Path(file).open("rb")
    except OSError as exc:
        fail(f"không đọc được tệp {file}: {exc.strerror}")
    with fh:
        try:
            res = getattr(service, func_name)(fh, Path(file).name, actor="cli", **options)
        except csv_import.ImportRejected as exc:
            db.session.rollback()
            fail(str(exc))
    changed = f"thay thế {res.updated} dòng đã có" if options.get("replace") else f"cập nhật {res.updated}"
    click.echo(f"Đã nhập {res.rows} dòng từ {file} (tạo mới {res.created}, {changed}).")


units_cli = AppGroup("units", help="The unit tree.")
volumes_cli = AppGroup("volumes", help="Transaction volumes.")
responses_cli = AppGroup("responses", help="Responses (CSV).")
bieu06_cli = AppGroup("bieu06", help="Biểu 06/VPCP/KSTT tables: dossiers per field and unit (volumes in, figures out).")


@units_cli.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
def units_import(file):
    """Import units CSV: code,name_vi,name_en,kind,parent_code,valid_from,valid_to,successor_code
    (kind 'counter' creates a counter under parent_code). All-or-nothing."""
    _run_import(file, "import_units")


@volumes_cli.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--replace", is_flag=True, default=False,
              help="Replace stored volume rows of the same unit and stratum whose periods the file's rows overlap "
                   "(audited). Without it such rows are refused.")
def volumes_import(file, replace):
    """Import volumes CSV: unit_code,period_start,period_end,stratum,transactions. All-or-nothing; a period
    overlapping another row of the file or a stored one (same unit and stratum) is refused unless --replace."""
    _run_import(file, "import_volumes", replace=replace)


@responses_cli.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
def responses_import(file):
    """Import responses CSV (DESIGN.md format; channel as given, default 'import'). All-or-nothing;
    a counter_code must be a counter of the row's unit_code."""
    _run_import(file, "import_responses")


def _write_chunks(chunks, fh) -> None:
    for chunk in chunks:
        fh.write(chunk)


@responses_cli.command("export")
@click.option("--period", default=None, help="Report period, e.g. 2025, 2025-Q1, 2025-H1, cal:2025 (default: all).")
@click.option("--unit", "unit_code", default=None, help="Only this unit's subtree.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="Output CSV ('-' = stdout).")
def responses_export(period, unit_code, out):
    """Export responses as CSV (the input format of `python -m analysis`)."""
    from ..services import csv_export

    p = period_or_fail(period)
    start, end = (p.start, p.end) if p else (None, None)
    unit_ids = subtree_or_fail(unit_code)
    n = csv_export.count_rows(db.session, start=start, end=end, unit_ids=unit_ids)
    chunks = csv_export.export_chunks(db.session, start=start, end=end, unit_ids=unit_ids)
    if out == "-":
        _write_chunks(chunks, sys.stdout.buffer)
        sys.stdout.buffer.flush()
    else:
        tmp = Path(out).with_suffix(Path(out).suffix + ".part")
        with tmp.open("wb") as fh:
            _write_chunks(chunks, fh)
        tmp.replace(out)
    click.echo(f"Đã xuất {n} phiếu.", err=True)


@responses_cli.command("flag")
@click.option("--period", default=None, help="Only this period (default: all responses).")
def responses_flag(period):
    """Flag duplicates, bursts and identical-answer runs among stored responses
    (flags only: nothing is dropped or excluded)."""
    from ..services import quality

    p = period_or_fail(period)
    start, end = (p.start, p.end) if p else (None, None)
    counts = quality.scan(start, end)
    click.echo(f"Đã quét {counts.pop('responses_scanned')} phiếu; gắn cờ mới {counts.pop('responses_flagged')} phiếu"
               + (" (" + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) + ")" if counts else "") + ".")


@bieu06_cli.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--replace", is_flag=True, default=False,
              help="Replace stored volume rows of the same unit and field whose periods the table's rows overlap "
                   "(audited). Without it such rows are refused.")
def bieu06_import(file, replace):
    """Import a Biểu 06 table (CSV or XLSX) as volumes: N per unit, field and period is "Số hồ sơ đã giải
    quyết: Tổng số". All-or-nothing, with the checks of `volumes import`."""
    _run_import(file, "import_table", module="bieu06", replace=replace)


@bieu06_cli.command("export")
@click.option("--period", required=True, help="Reporting period, e.g. 2025, 2025-Q1, 2025-H1.")
@click.option("--unit", "unit_code", default=None, help="Only this unit's subtree.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="Output file: .xlsx for a workbook, otherwise CSV ('-' = stdout).")
def bieu06_export(period, unit_code, out):
    """Export the Biểu 06 table of a period with the survey's columns per field and unit
    (index, 95% interval, n, N, response rate)."""
    from ..services import bieu06

    p = period_or_fail(period)
    rows = bieu06.table(p, subtree_or_fail(unit_code))
    if out == "-":
        click.echo(bieu06.to_csv(rows), nl=False)
    elif out.lower().endswith(".xlsx"):
        Path(out).write_bytes(bieu06.to_xlsx(rows, period_label=p.label))
    else:
        Path(out).write_text("\ufeff" + bieu06.to_csv(rows), encoding="utf-8")
    click.echo(f"Đã xuất {len(rows)} dòng Biểu 06 ({p.label}).", err=True)
