"""`flask demo seed`: the demo province."""
from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from ..extensions import db
from ..models import Counter
from .common import fail

demo_cli = AppGroup("demo", help="Demo data.")


@demo_cli.command("seed")
@click.option("--responses", "n", default=None, type=click.IntRange(0, 5_000_000),
              help="Number of synthetic responses (default 50,000).")
@click.option("--seed", "seed_", default=2025, show_default=True, type=int, help="Random seed.")
@click.option("--password", default=None, help="Password for the demo users (default: random, printed).")
@click.option("--if-empty", is_flag=True, help="Do nothing (exit 0) when the database already has units.")
def demo_seed(n, seed_, password, if_empty):
    """Create the demo province (units, counters, volumes, responses, users)."""
    from ..services import demo

    if demo.already_seeded():
        if if_empty:
            click.echo("Cơ sở dữ liệu đã có dữ liệu; bỏ qua nạp demo.")
            return
        fail("Cơ sở dữ liệu đã có đơn vị: demo chỉ nạp vào cơ sở dữ liệu trống.")
    n = current_app.config["DEMO_RESPONSES"] if n is None else n
    res = demo.seed(int(n), seed_, password)
    from ..services.tokens import counter_url

    counter = db.session.scalar(select(Counter).where(Counter.code == res.counter_code))
    creds = Path(current_app.instance_path) / "demo_credentials.txt"
    lines = [f"{u} / {p}" for u, p in res.users.items()]
    creds.write_text("\n".join(lines) + "\n")
    creds.chmod(0o600)
    click.echo(f"Demo: {res.units} đơn vị, {res.counters} quầy, {res.responses} phiếu trong {res.seconds:.1f} s")
    click.echo(f"Đăng nhập cán bộ: {current_app.config['PUBLIC_BASE_URL']}/staff/login")
    for line in lines:
        click.echo(f"  {line}")
    click.echo(f"(lưu tại {creds})")
    click.echo(f"Đường dẫn một quầy: {counter_url(counter)}")
    from ..services import quality

    counts = quality.scan(actor="demo")
    click.echo(f"Kiểm tra chất lượng: gắn cờ {counts['responses_flagged']} phiếu "
               f"(trùng lặp {counts.get('duplicate', 0)}, dồn dập {counts.get('burst', 0)}, "
               f"giống hệt {counts.get('identical_answers', 0)}).")
