"""`flask qr posters|rotate|link`: counter QR codes."""
from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup
from sqlalchemy import select

from ..extensions import db
from ..models import Counter, Unit
from ..services.posters import rotate_token, write_posters
from ..services.tokens import counter_url, dossier_signature
from .common import fail

qr_cli = AppGroup("qr", help="Counter QR codes: posters, token rotation, links.")


def _counter(code: str) -> Counter:
    counter = db.session.scalar(select(Counter).where(Counter.code == code))
    if counter is None:
        fail(f"Không tìm thấy quầy {code}.")
    return counter


@qr_cli.command("posters")
@click.option("--unit", "unit_code", required=True, help="Unit code: posters for every active counter under it.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--format", "fmt", default="png,svg", show_default=True,
              help="Comma-separated: png, svg, pdf.")
@click.option("--kiosk", is_flag=True, help="Posters for the kiosk link /k/<token> instead of /c/<token>.")
def posters_cmd(unit_code, out_dir, fmt, kiosk):
    """Write an A5 poster per counter under a unit (QR code, names, short URL, instruction)."""
    formats = tuple(f.strip().lower() for f in fmt.split(",") if f.strip())
    bad = [f for f in formats if f not in ("png", "svg", "pdf")]
    if bad or not formats:
        fail(f"Định dạng không hợp lệ: {', '.join(bad) or fmt} (cho phép: png, svg, pdf).", 2)
    unit = db.session.scalar(select(Unit).where(Unit.code == unit_code))
    if unit is None:
        fail(f"Không tìm thấy đơn vị {unit_code}.")
    written = write_posters(unit, Path(out_dir), formats, kiosk=kiosk)
    if not written:
        fail(f"Đơn vị {unit_code} không có quầy nào đang hoạt động.")
    for p in written:
        click.echo(str(p))
    click.echo(f"Đã tạo {len(written)} tệp áp phích cho {len(written) // len(formats)} quầy.", err=True)


@qr_cli.command("rotate")
@click.option("--counter", "counter_code", required=True, help="Counter code.")
def rotate_cmd(counter_code):
    """Give a counter a new QR token: every old poster of it stops working (410)."""
    counter = _counter(counter_code)
    version = rotate_token(counter, actor="cli")
    db.session.commit()
    click.echo(f"Quầy {counter.code}: mã QR mới (phiên bản {version}). In lại áp phích: mã cũ không còn dùng được.")
    click.echo(counter_url(counter))


@qr_cli.command("link")
@click.option("--counter", "counter_code", required=True, help="Counter code.")
@click.option("--dossier", default=None, help="Dossier reference: print a one-time rating link for it.")
@click.option("--kiosk", is_flag=True, help="The kiosk link.")
def link_cmd(counter_code, dossier, kiosk):
    """Print a counter's link (or a dossier-linked link for a receipt)."""
    counter = _counter(counter_code)
    url = counter_url(counter, kiosk=kiosk)
    if dossier:
        if kiosk:
            fail("Liên kết hồ sơ không dùng cho kiosk.", 2)
        url += "?d=" + dossier_signature(counter.id, dossier)
    click.echo(url)
