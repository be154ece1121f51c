"""`flask --app survey_app ...` commands.

Every command has `--help`; errors print a clear message and exit non-zero
(1 = refused input or state, 2 = usage error) without a traceback.
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .extensions import db
from .models import ROLES, Counter, Unit, User


def _fail(message: str, code: int = 1):
    click.echo(message, err=True)
    sys.exit(code)


def _period_or_fail(label):
    """The Period for a label, None for no label; exit 2 with a message if invalid."""
    if not label:
        return None
    from .periods import resolve_period

    try:
        return resolve_period(label)
    except ValueError as exc:
        _fail(f"Kỳ không hợp lệ {label!r}: {exc}", 2)


def _subtree_or_fail(unit_code):
    """Ids of a unit's subtree (None for no unit); exit 1 if the unit is unknown."""
    if not unit_code:
        return None
    from .auth import subtree_ids

    unit = db.session.scalar(select(Unit).where(Unit.code == unit_code))
    if unit is None:
        _fail(f"Không tìm thấy đơn vị {unit_code}.")
    return sorted(subtree_ids(unit.id))


def _read_file(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        _fail(f"không đọc được tệp {path}: {exc.strerror}")


# ---------------------------------------------------------------- demo
demo_cli = AppGroup("demo", help="Demo data.")


@demo_cli.command("seed")
@click.option("--responses", "n", default=None, type=click.IntRange(0, 5_000_000),
              help="Number of synthetic responses (default 50,000).")
@click.option("--seed", "seed_", default=2025, show_default=True, type=int, help="Random seed.")
@click.option("--password", default=None, help="Password for the demo users (default: random, printed).")
@click.option("--if-empty", is_flag=True, help="Do nothing (exit 0) when the database already has units.")
def demo_seed(n, seed_, password, if_empty):
    """Create the demo province (units, counters, volumes, responses, users)."""
    from . import demo

    if demo.already_seeded():
        if if_empty:
            click.echo("Cơ sở dữ liệu đã có dữ liệu; bỏ qua nạp demo.")
            return
        _fail("Cơ sở dữ liệu đã có đơn vị: demo chỉ nạp vào cơ sở dữ liệu trống.")
    n = current_app.config["DEMO_RESPONSES"] if n is None else n
    res = demo.seed(int(n), seed_, password)
    from .tokens import counter_url

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
    from . import quality

    counts = quality.scan(actor="demo")
    click.echo(f"Kiểm tra chất lượng: gắn cờ {counts['responses_flagged']} phiếu "
               f"(trùng lặp {counts.get('duplicate', 0)}, dồn dập {counts.get('burst', 0)}, "
               f"giống hệt {counts.get('identical_answers', 0)}).")


# ---------------------------------------------------------------- users
users_cli = AppGroup("users", help="Staff accounts.")


@users_cli.command("create")
@click.option("--username", required=True)
@click.option("--password", required=True)
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--unit", "unit_code", default=None, help="Unit code of the user's scope (required but for admin).")
def users_create(username, password, role, unit_code):
    """Create a staff user scoped to a unit subtree."""
    from .audit import record
    from .auth import hash_password

    if len(password) < 8:
        _fail("Mật khẩu phải có ít nhất 8 ký tự.", 2)
    unit = None
    if role != "admin" and not unit_code:
        _fail(f"Vai trò {role} cần --unit (phạm vi đơn vị).", 2)
    if unit_code:
        unit = db.session.scalar(select(Unit).where(Unit.code == unit_code))
        if unit is None:
            _fail(f"Không tìm thấy đơn vị {unit_code}.")
    if db.session.scalar(select(User.id).where(User.username == username)):
        _fail(f"Tên đăng nhập {username} đã tồn tại.")
    user = User(username=username, password_hash=hash_password(password), role=role,
                unit_id=unit.id if unit else None)
    db.session.add(user)
    record(actor="cli", action="user_create", target_type="user", target_id=username,
           details={"role": role, "unit": unit_code})
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        _fail(f"Tên đăng nhập {username} đã tồn tại.")
    click.echo(f"Đã tạo người dùng {username} ({role}{', ' + unit_code if unit_code else ''}).")


# ---------------------------------------------------------------- imports
def _import_command(group: AppGroup, kind: str, func_name: str, help_text: str):
    @group.command("import", help=help_text)
    @click.argument("file", type=click.Path(dir_okay=False))
    def _cmd(file):
        from . import dataio

        data = _read_file(file)
        try:
            res = getattr(dataio, func_name)(data, Path(file).name, actor="cli")
        except dataio.ImportRejected as exc:
            db.session.rollback()
            _fail(str(exc))
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
@click.option("--out", required=True, type=click.Path(dir_okay=False, allow_dash=True), help="Output CSV ('-' = stdout).")
def responses_export(period, unit_code, out):
    """Export responses as CSV (the input format of `python -m analysis`)."""
    from . import dataio

    p = _period_or_fail(period)
    start, end = (p.start, p.end) if p else (None, None)
    unit_ids = _subtree_or_fail(unit_code)
    rows = dataio.iter_response_rows(db.session, start=start, end=end, unit_ids=unit_ids)
    if out == "-":
        n = dataio.write_csv(rows, sys.stdout)
    else:
        tmp = Path(out).with_suffix(Path(out).suffix + ".part")
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            n = dataio.write_csv(rows, fh)
        tmp.replace(out)
    click.echo(f"Đã xuất {n} phiếu.", err=True)


@responses_cli.command("flag")
@click.option("--period", default=None, help="Only this period (default: all responses).")
def responses_flag(period):
    """Flag duplicates, bursts and identical-answer runs among stored responses
    (flags only: nothing is dropped or excluded)."""
    from . import quality

    p = _period_or_fail(period)
    start, end = (p.start, p.end) if p else (None, None)
    counts = quality.scan(start, end)
    click.echo(f"Đã quét {counts.pop('responses_scanned')} phiếu; gắn cờ mới {counts.pop('responses_flagged')} phiếu"
               + (" (" + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) + ")" if counts else "") + ".")


# ---------------------------------------------------------------- counters
counters_cli = AppGroup("counters", help="Service counters (QR points).")


@counters_cli.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include inactive counters.")
def counters_list(show_all):
    """CSV code,name,unit_code,url of every active counter."""
    from .tokens import counter_url

    q = select(Counter, Unit.code).join(Unit, Counter.unit_id == Unit.id).order_by(Counter.code)
    if not show_all:
        q = q.where(Counter.active.is_(True))
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(["code", "name", "unit_code", "url"])
    for counter, unit_code in db.session.execute(q):
        w.writerow([counter.code, counter.name_vi, unit_code, counter_url(counter)])


# ---------------------------------------------------------------- instruments
instruments_cli = AppGroup("instruments", help="Questionnaires.")


@instruments_cli.command("load")
def instruments_load():
    """Load survey_app/instruments/*.json into the database (idempotent)."""
    from .instruments import InstrumentVersionError, sync_instruments

    try:
        result = sync_instruments(db.session)
        db.session.commit()
    except InstrumentVersionError as exc:
        db.session.rollback()
        _fail(str(exc))
    for key, version, status in result:
        click.echo(f"{key}@{version}: {'đã tạo' if status == 'created' else 'không đổi'}")


# ---------------------------------------------------------------- index
index_cli = AppGroup("index", help="Satisfaction indices computed on the database.")


@index_cli.command("compute")
@click.option("--period", required=True, help="Report period: 2025, 2025-Q1, 2025-H1, cal:2025, 2025-03, A..B.")
@click.option("--level", type=click.Choice(["unit", "parent", "root"]), default=None, help="Only these rows.")
@click.option("--ci", type=click.Choice(["wilson", "beta", "logit"]), default="wilson", show_default=True)
@click.option("--adequacy", type=click.Choice(["yamane", "cochran", "quota"]), default="yamane", show_default=True)
@click.option("--rollup", type=click.Choice(["pooled", "mean_of_units"]), default="pooled", show_default=True)
@click.option("--as-of", "as_of", default=None, help="Date of the unit tree (default: the period's last day).")
@click.option("--map-successors", is_flag=True, help="Count responses of retired units in their successors.")
@click.option("--unit", "unit_code", default=None, help="Only this unit's subtree.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="Output: .csv, .xlsx, .json or '-' (CSV on stdout).")
def index_compute(period, level, ci, adequacy, rollup, as_of, map_successors, unit_code, out):
    """Compute the index for a period from the database (aggregated in SQL)."""
    import datetime as dt

    from analysis import InputError
    from analysis.output import write_table

    from . import stats

    p = _period_or_fail(period)
    try:
        as_of_date = dt.date.fromisoformat(as_of) if as_of else None
    except ValueError:
        _fail(f"Ngày không hợp lệ cho --as-of: {as_of!r} (YYYY-MM-DD)", 2)
    unit_ids = _subtree_or_fail(unit_code)
    try:
        result = stats.compute_index(p, unit_ids=unit_ids, level=level, ci=ci, as_of=as_of_date, rollup=rollup,
                                     adequacy=adequacy, map_successors=map_successors)
    except InputError as exc:
        _fail(f"Dữ liệu không hợp lệ: {exc}")
    try:
        write_table(result.table, result.meta, out)
    except (ValueError, OSError) as exc:
        _fail(f"Không ghi được {out}: {exc}", 2)
    click.echo(f"{len(result.table)} dòng, n = {result.meta.get('n_used')} phiếu, kỳ {p.label}", err=True)


def register_cli(app) -> None:
    for group in (demo_cli, users_cli, units_cli, volumes_cli, responses_cli, counters_cli, instruments_cli,
                  index_cli):
        app.cli.add_command(group)
    from .posters import qr_cli

    app.cli.add_command(qr_cli)
    from .backup import register as register_backup  # backup / restore (survey_app/backup.py)
    register_backup(app)
