"""`flask backup` / `flask restore`: portable backups (SQLite <-> PostgreSQL)."""
from __future__ import annotations

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from ..extensions import db
from ..services.backup import BackupError, backup, restore
from .common import fail


@click.command("backup")
@with_appcontext
@click.option("--out", required=True, type=click.Path(dir_okay=False, writable=True),
              help="Output file (.zip), written 0600; replaced atomically.")
def backup_command(out):
    """Back up every table to a portable zip (SQLite ⇄ PostgreSQL)."""

    try:
        s = backup(db.engine, out, progress=lambda m: click.echo(m, err=True))
    except BackupError as exc:
        fail(str(exc))
    except sa.exc.OperationalError as exc:
        fail(f"không kết nối được cơ sở dữ liệu: {exc.orig}")
    except OSError as exc:
        fail(f"không ghi được {out}: {exc.strerror}")
    click.echo(f"Đã sao lưu {s.total_rows} dòng ở {len(s.tables)} bảng (lược đồ {s.revision or 'không rõ'}, "
               f"{s.backend}) vào {out}")


@click.command("restore")
@with_appcontext
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Empty a non-empty database first (in the same transaction).")
def restore_command(file, force):
    """Restore a backup into an empty migrated database (all or nothing)."""

    try:
        s = restore(db.engine, file, force=force, progress=lambda m: click.echo(m, err=True))
    except BackupError as exc:
        fail(f"Không khôi phục: {exc}")
    except sa.exc.OperationalError as exc:
        fail(f"Không khôi phục (không có gì được ghi): lỗi cơ sở dữ liệu: {exc.orig}")
    except (sa.exc.IntegrityError, sa.exc.DataError) as exc:
        fail(f"Không khôi phục (không có gì được ghi): dữ liệu bị cơ sở dữ liệu đích từ chối: {exc.orig}")
    click.echo(f"Đã khôi phục {s.total_rows} dòng ở {len(s.tables)} bảng từ {file} "
               f"(nguồn {s.backend}, lược đồ {s.revision or 'không rõ'}).")
