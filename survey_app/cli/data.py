"""`flask units|volumes|responses import`, `responses export`, `responses flag`: the CSV files."""
from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import AppGroup

from ..extensions import db
from .common import fail, period_or_fail, read_file, subtree_or_fail


def _import_command(group: AppGroup, kind: str, func_name: str, help_text: str):
    @group.command("import", help=help_text)
    @click.argument("file", type=click.Path(dir_okay=False))
    def _cmd(file):
        from ..services import csv_import

        data = read_file(file)
        try:
            res = getattr(csv_import, func_name)(data, Path(file).name, actor="cli")
        except csv_import.ImportRejected as exc:
            db.session.rollback()
            fail(str(exc))
        click.echo(f"Đã nhập {res.rows} dòng từ {file} (tạo mới {res.created}, cập nhật {res.updated}).")

    return _cmd


units_cli = AppGroup("units", help="The unit tree.")
volumes_cli = AppGroup("volumes", help="Transaction volumes.")
responses_cli = AppGroup("responses", help="Responses (CSV).")
_import_command(units_cli, "units", "import_units",
                "Import units CSV: code,name_vi,name_en,kind,parent_code,valid_from,valid_to,successor_code "
                "(kind 'counter' creates a counter under parent_code). All-or-nothing.")
_import_command(volumes_cli, "volumes", "import_volumes",
                "Import volumes CSV: unit_code,period_start,period_end,stratum,transactions. All-or-nothing.")
_import_command(responses_cli, "responses", "import_responses",
                "Import responses CSV (DESIGN.md format; channel as given, default 'import'). All-or-nothing.")


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
    rows = csv_export.iter_response_rows(db.session, start=start, end=end, unit_ids=unit_ids)
    if out == "-":
        n = csv_export.write_csv(rows, sys.stdout)
    else:
        tmp = Path(out).with_suffix(Path(out).suffix + ".part")
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            n = csv_export.write_csv(rows, fh)
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
