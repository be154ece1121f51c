"""`flask periods ...`: close a report period (frozen, numbered versions),
reopen it with a reason, see the versions, verify a version against the
stored data, compare two versions, publish the accepted units.  Every action
is audited (actor `cli`); `services.publishing` does the work."""
from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from .common import fail

periods_cli = AppGroup("periods", help="Close, reopen, verify, compare and publish report periods.")

_period = click.option("--period", required=True, help="Report period: 2025, 2025-Q1, 2025-H1, cal:2025, ...")
_unit = click.option("--unit", "unit_code", default=None,
                     help="Root unit code of the subtree (default: the whole tree).")


def _run(fn, *args, **kw):
    from ..services.publishing import PublishingError

    try:
        return fn(*args, **kw)
    except PublishingError as exc:
        fail(str(exc), 2 if exc.status == 400 else 1)


@periods_cli.command("close")
@_period
@_unit
def close_command(period, unit_code):
    """Freeze the period's figures for the subtree (version 1, or the reopened version)."""
    from ..services import publishing

    snap = _run(publishing.close_period, period, unit_code)
    click.echo(f"Đã khoá kỳ {snap.period} cho {snap.scope}: phiên bản {snap.version}, {len(snap.table or [])} dòng, "
               f"phương pháp {snap.method_version}, dữ liệu đến {snap.data_cutoff or '–'}, "
               f"mã băm đầu vào {snap.input_hash}.")


@periods_cli.command("reopen")
@_period
@_unit
@click.option("--reason", required=True, help="Why the period is reopened (shown with the new version).")
def reopen_command(period, unit_code, reason):
    """Make version n+1 of a closed period (its data may change again; older versions stay readable)."""
    from ..services import publishing

    snap = _run(publishing.reopen_period, period, unit_code, reason=reason)
    click.echo(f"Đã mở lại kỳ {snap.period} cho {snap.scope}: phiên bản {snap.version} đang mở (lý do: {snap.reason}). "
               f"Khoá lại bằng: flask periods close --period {snap.period}"
               + (f" --unit {snap.scope}" if snap.scope != publishing.WHOLE_TREE else ""))


@periods_cli.command("status")
@click.option("--period", default=None, help="Only this period.")
@_unit
def status_command(period, unit_code):
    """The versions of closed periods and where each unit's figures stand."""
    from collections import Counter

    from ..services import publishing

    snaps = publishing.all_snapshots()
    if period:
        label = _run(publishing._label, period)
        snaps = [s for s in snaps if s.period == label]
    if unit_code:
        snaps = [s for s in snaps if s.scope == unit_code]
    if not snaps:
        click.echo("Chưa có kỳ nào được khoá" + (f" cho {period}" if period else "") + ".")
        return
    for s in snaps:
        counts = Counter(a.status for a in s.approvals)
        states = ", ".join(f"{publishing.status_word(k)} {counts[k]}" for k in
                           ("draft", "submitted", "changes_requested", "accepted", "published") if counts[k])
        when = s.closed_at.isoformat(timespec="minutes") if s.closed_at else "–"
        click.echo(f"{s.period}\t{s.scope}\tv{s.version}\t{'đã khoá' if s.state == 'closed' else 'đang mở'}\t"
                   f"{when}\t{(s.input_hash or '')[:12]}\t{states or '–'}"
                   + (f"\tlý do: {s.reason}" if s.reason else ""))


@periods_cli.command("verify")
@_period
@_unit
@click.option("--version", type=int, default=None, help="Version to check (default: the newest closed one).")
def verify_command(period, unit_code, version):
    """Recompute a closed version from the stored data; exit 1 unless it matches to the last digit."""
    from ..services import publishing

    v = _run(publishing.verify, period, unit_code, version)
    s = v.snapshot
    if v.ok:
        click.echo(f"Khớp hoàn toàn: kỳ {s.period} cho {s.scope}, phiên bản {s.version} (mã băm {v.stored_hash}).")
        return
    click.echo(f"KHÔNG khớp: kỳ {s.period} cho {s.scope}, phiên bản {s.version}.")
    click.echo(f"  mã băm đầu vào: {'giống' if v.hash_ok else 'khác'} (lưu {v.stored_hash}, nay {v.current_hash})")
    for d in v.differences[:50]:
        click.echo(f"  {d['unit_code']} {d['level']} {d['column']}: {d['stored']!r} → {d['now']!r}")
    if len(v.differences) > 50:
        click.echo(f"  ... và {len(v.differences) - 50} khác biệt nữa")
    raise SystemExit(1)


@periods_cli.command("diff")
@_period
@_unit
@click.option("--from", "a", type=int, required=True, help="The older version.")
@click.option("--to", "b", type=int, required=True, help="The newer version.")
@click.option("--out", default="-", type=click.Path(dir_okay=False, allow_dash=True), show_default=True,
              help="CSV output ('-' = stdout).")
def diff_command(period, unit_code, a, b, out):
    """Which units moved between two versions, by how much and why (CSV)."""
    from ..services import publishing

    _va, _vb, rows = _run(publishing.diff, period, unit_code, a, b)
    text = publishing.diff_csv(rows)
    moved = sum(1 for r in rows if r["change"] != "same")
    if out == "-":
        click.echo(text, nl=False)
    else:
        try:
            Path(out).write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(f"Không ghi được {out}: {exc.strerror}", 2)
    click.echo(f"{moved} trong {len(rows)} dòng thay đổi giữa phiên bản {a} và {b}.", err=True)


@periods_cli.command("publish")
@_period
@_unit
@click.option("--version", type=int, default=None, help="Version (default: the newest closed one).")
def publish_command(period, unit_code, version):
    """Publish every accepted unit of the version; the others are listed with their status."""
    from ..services import publishing

    scope = _run(publishing.scope_of, unit_code)[1]
    snap = _run(publishing.get_version, _run(publishing._label, period), scope, version)
    done, waiting = [], []
    for a in publishing.approvals_of(snap):
        if a.status == "accepted":
            _run(publishing.publish, a, None)
            done.append(a.unit.code)
        elif a.status != "published":
            waiting.append(f"{a.unit.code} ({publishing.status_word(a.status)})")
    click.echo(f"Đã công bố {len(done)} đơn vị của kỳ {snap.period}, phiên bản {snap.version}"
               + (f": {', '.join(done)}" if done else "") + ".")
    if waiting:
        click.echo("Chưa được chấp nhận nên chưa công bố: " + ", ".join(waiting))
