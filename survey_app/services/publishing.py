"""Closing report periods, frozen numbered versions, the approval chain and
the published (public) figures.  Pages, the CLI and the public results pages
all call these functions; every action is audited (`services.audit`).

- `close_period` freezes the full results table of a period for a subtree
  (every unit and roll-up row, every column, trend included) with its meta
  (method version, parameters, data cut-off, counts left out and why) and the
  sha256 of the canonical inputs (responses, answers, volumes, targets, the
  unit tree, the parameters).  `verify` recomputes both from the stored data.
- Versions, not edits: while the newest version of a period is closed,
  `guard_change` refuses an exclusion, import or target change that would
  alter its figures (`PeriodClosed`, a clear message).  `reopen_period`
  adds version n+1 (state `open`, with its reason); closing again freezes it.
  Older versions stay readable; `diff` compares two.
- Approval (per unit and version): draft → submitted (the unit's leader, with
  a reflection) → accepted (PUBLISH_APPROVAL_LEVELS analysts outside the unit
  whose scope covers it, each one level above the previous) or
  changes_requested → published (an analyst covering the unit, or an admin;
  never the unit's leader).
- `public_rows` is what the public page shows: per unit its newest published
  version; small samples (n < PUBLIC_MIN_N) without a figure.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import uuid
from dataclasses import dataclass
from typing import Any, Iterable, Optional

import sqlalchemy as sa
from flask import current_app, has_request_context
from flask_babel import force_locale, gettext

from analysis.schema import UNIT_LEVEL

from ..extensions import db
from ..models import (
    Answer,
    PeriodSnapshot,
    Response,
    Target,
    Unit,
    UnitApproval,
    User,
    Volume,
    utcnow,
)
from .audit import record
from .periods import resolve_period
from .units import subtree_ids

WHOLE_TREE = "*"
#: What a guarded change is (the words of `PeriodClosed`).
CHANGE_KINDS = ("exclusion", "import", "target", "volume", "entry")
#: Meta keys that are the record of a computation, not its result: left out of `verify`.
VOLATILE_META = ("computed_at", "generated_at", "n_read", "source")
#: Columns of the public table (and its CSV / JSON), in order.
PUBLIC_COLUMNS = ("unit_code", "name_vi", "name_en", "kind", "level", "index", "index_ci_low", "index_ci_high",
                  "n", "adequacy", "target", "target_status", "trend_direction", "trend_change", "suppressed",
                  "version")
PUBLIC_SORTS = ("name", "index", "n", "interval", "target_status", "trend")


def _(message: str, **params) -> str:
    """`gettext` in the page's language, or the default language (Vietnamese) in a command."""
    if has_request_context():
        return gettext(message, **params)
    with force_locale(current_app.config["BABEL_DEFAULT_LOCALE"]):
        return gettext(message, **params)


class PublishingError(Exception):
    """A refused publishing action: `str(exc)` is the reader's message; `status` the HTTP status."""

    def __init__(self, message: str, status: int = 409):
        super().__init__(message)
        self.status = status


class PeriodClosed(PublishingError):
    """A change that would alter the figures of a closed period."""

    def __init__(self, snapshot: PeriodSnapshot, kind: str):
        words = {"exclusion": _("an exclusion"), "import": _("an import"), "target": _("a target change"),
                 "volume": _("a volume change"), "entry": _("a paper entry"), "merge": _("a unit merge")}
        super().__init__(_("Period %(p)s of %(s)s is closed (version %(v)s, closed on %(d)s): %(what)s would "
                           "change its figures, so it was refused. To correct it, an analyst reopens the period "
                           "with a reason (this makes version %(n)s), then closes it again.",
                           p=snapshot.period, s=snapshot.scope, v=snapshot.version,
                           d=snapshot.closed_at.date().isoformat() if snapshot.closed_at else "?",
                           what=words.get(kind, kind), n=snapshot.version + 1), 409)
        self.snapshot = snapshot
        self.kind = kind


# ---------------------------------------------------------------- scope and who may do what

def scope_of(unit_code: Optional[str]) -> tuple[Optional[Unit], str]:
    """(unit, scope key) for a subtree root code; (None, "*") for the whole tree."""
    if not unit_code or unit_code == WHOLE_TREE:
        return None, WHOLE_TREE
    unit = db.session.scalar(sa.select(Unit).where(Unit.code == unit_code))
    if unit is None:
        raise PublishingError(_("Unknown unit %(c)s.", c=unit_code), 404)
    return unit, unit.code


def _scope_ids(snapshot_or_unit) -> Optional[set[int]]:
    unit_id = getattr(snapshot_or_unit, "unit_id", None) if not isinstance(snapshot_or_unit, Unit) \
        else snapshot_or_unit.id
    return None if unit_id is None else subtree_ids(unit_id)


def _ancestors(unit_id: int) -> list[int]:
    """`unit_id` and its ancestors (by parent links), nearest first."""
    parents = dict(db.session.execute(sa.select(Unit.id, Unit.parent_id)).all())
    out, seen = [], set()
    while unit_id is not None and unit_id not in seen:
        out.append(unit_id)
        seen.add(unit_id)
        unit_id = parents.get(unit_id)
    return out


def covers(user: User, unit_id: int, *, strictly: bool = False) -> bool:
    """Whether `user`'s scope contains the unit (admins: every unit); `strictly`:
    and the user is not a member of it (their unit is a proper ancestor)."""
    if user.role == "admin":
        return True
    if user.unit_id is None:
        return False
    chain = _ancestors(unit_id)
    if strictly:
        return user.unit_id in chain[1:]
    return user.unit_id in chain


def may_close(user: Optional[User], scope_unit: Optional[Unit]) -> bool:
    """Analysts (for a subtree inside their scope) and admins close and reopen periods."""
    if user is None or user.role not in ("analyst", "admin"):
        return False
    if user.role == "admin":
        return True
    return scope_unit is not None and covers(user, scope_unit.id)


def _actor(user: Optional[User]) -> tuple[str, Optional[int]]:
    return (user.username, user.id) if user is not None else ("cli", None)


# ---------------------------------------------------------------- versions

def versions(period: str, scope: str) -> list[PeriodSnapshot]:
    """Every version of a period for a scope, oldest first."""
    return list(db.session.scalars(sa.select(PeriodSnapshot).where(
        PeriodSnapshot.period == period, PeriodSnapshot.scope == scope).order_by(PeriodSnapshot.version)))


def latest(period: str, scope: str) -> Optional[PeriodSnapshot]:
    vs = versions(period, scope)
    return vs[-1] if vs else None


def get_version(period: str, scope: str, version: Optional[int] = None) -> PeriodSnapshot:
    """The given version (default: the newest closed one); PublishingError if none."""
    vs = [v for v in versions(period, scope) if v.state == "closed" and (version is None or v.version == version)]
    if not vs:
        if version is None:
            raise PublishingError(_("Period %(p)s of %(s)s has not been closed.", p=period, s=scope), 404)
        raise PublishingError(_("Period %(p)s of %(s)s has no closed version %(v)s.", p=period, s=scope,
                                v=version), 404)
    return vs[-1]


def all_snapshots(unit_ids: Optional[set[int]] = None) -> list[PeriodSnapshot]:
    """Every version (newest period and version first), those whose scope lies in `unit_ids` (None: all)."""
    q = sa.select(PeriodSnapshot).order_by(PeriodSnapshot.period.desc(), PeriodSnapshot.scope,
                                           PeriodSnapshot.version.desc())
    rows = list(db.session.scalars(q))
    if unit_ids is None:
        return rows
    return [s for s in rows if s.unit_id is not None and s.unit_id in unit_ids]


# ---------------------------------------------------------------- computing and hashing

def _plain(v):
    """A JSON value for a table cell: numpy scalars unwrapped, NaN / NA as None."""
    if v is None:
        return None
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        try:
            v = v.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(v, float):
        return None if math.isnan(v) or math.isinf(v) else v
    if isinstance(v, (int, str, bool)):
        return v
    try:
        import pandas as pd

        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return str(v)


def _json_safe(obj):
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [_json_safe(v) for v in obj]
    return _plain(obj)


def _rows(table) -> list[dict]:
    cols = list(table.columns)
    return [{c: _plain(v) for c, v in zip(cols, vals)} for vals in zip(*(table[c].tolist() for c in cols))]


def compute_snapshot(period_label: str, unit_ids: Optional[set[int]]) -> tuple[list[dict], dict]:
    """(rows, meta) of the period for the scope as the live pages compute them:
    `services.stats.compute` with the stored targets, plus the trend against
    the previous period (`stats.with_trend`)."""
    from analysis import InputError

    from . import stats

    period = resolve_period(period_label)
    ids = None if unit_ids is None else sorted(unit_ids)
    res = stats.compute(period, unit_ids=ids)

    def index_of(p):
        try:
            return stats.compute(p, unit_ids=ids)
        except (InputError, KeyError, ValueError):
            return None

    table = stats.with_trend(res.table, period, ids, index_of)
    meta = _json_safe(res.meta)
    return _rows(table), meta


def _canon(v):
    """A value of an input row in its canonical text form (UUIDs as hex, times in UTC)."""
    if isinstance(v, uuid.UUID):
        return v.hex
    if isinstance(v, dt.datetime):
        return v.astimezone(dt.timezone.utc).isoformat()
    return _plain(v)


def _feed(h, tag: str, rows: Iterable) -> int:
    n = 0
    for row in rows:
        h.update(json.dumps([tag, *[_canon(v) for v in row]], ensure_ascii=False, separators=(",", ":"),
                            default=str).encode())
        h.update(b"\n")
        n += 1
    return n


def input_hash(period_label: str, unit_ids: Optional[set[int]]) -> tuple[str, dict]:
    """sha256 of the canonical inputs of the period's figures for the scope and
    the number of rows of each: every response submitted in the period (id,
    unit, time, channel, stratum, excluded, age group, packed answers), every
    answer of those, the volume rows overlapping it, the targets, the unit
    tree and the calendar.  Equal hashes: the same inputs."""
    period = resolve_period(period_label)
    h = hashlib.sha256()
    counts = {}
    where = [Response.submitted_at >= period.start, Response.submitted_at < period.end]
    if unit_ids is not None:
        where.append(Response.unit_id.in_(sorted(unit_ids)))
    resp = (sa.select(Response.id, Unit.code, Response.submitted_at, Response.channel, Response.stratum,
                      Response.excluded, Response.age_group, Response.pattern)
            .join(Unit, Unit.id == Response.unit_id).where(*where).order_by(Response.id)
            .execution_options(yield_per=20000))
    counts["responses"] = _feed(h, "r", db.session.execute(resp))
    ans = (sa.select(Answer.response_id, Answer.item_key, Answer.value)
           .join(Response, Response.id == Answer.response_id).where(*where)
           .order_by(Answer.response_id, Answer.item_key).execution_options(yield_per=50000))
    counts["answers"] = _feed(h, "a", db.session.execute(ans))
    vol = sa.select(Unit.code, Volume.period_start, Volume.period_end, Volume.stratum, Volume.transactions).join(
        Unit, Unit.id == Volume.unit_id).where(Volume.period_end >= period.first, Volume.period_start <= period.last)
    if unit_ids is not None:
        vol = vol.where(Volume.unit_id.in_(sorted(unit_ids)))
    counts["volumes"] = _feed(h, "v", db.session.execute(vol.order_by(Unit.code, Volume.period_start,
                                                                      Volume.period_end, Volume.stratum)))
    tgt = (sa.select(Target.year, Target.unit_kind, Unit.code, Target.target).outerjoin(Unit, Unit.id == Target.unit_id)
           .where(Target.year == period.year))
    counts["targets"] = _feed(h, "t", sorted(db.session.execute(tgt).all(), key=lambda r: tuple(map(str, r))))
    parent, succ = sa.orm.aliased(Unit), sa.orm.aliased(Unit)
    units = (sa.select(Unit.code, Unit.kind, parent.code, Unit.valid_from, Unit.valid_to, succ.code)
             .outerjoin(parent, parent.id == Unit.parent_id).outerjoin(succ, succ.id == Unit.successor_id)
             .order_by(Unit.code))
    counts["units"] = _feed(h, "u", db.session.execute(units))
    _feed(h, "p", [[period.label, period.start, period.end, current_app.config["DEFAULT_TARGET"]]])
    return h.hexdigest(), counts


# ---------------------------------------------------------------- closing, reopening, verifying

def close_period(period_label: str, unit_code: Optional[str] = None, *, user: Optional[User] = None
                 ) -> PeriodSnapshot:
    """Freeze the period for the subtree (version 1, or the open version after
    a reopening).  Commits; audited."""
    try:
        period = resolve_period(period_label)
    except ValueError as exc:
        raise PublishingError(_("Invalid period %(p)s: %(why)s", p=period_label, why=str(exc)), 400) from exc
    unit, scope = scope_of(unit_code)
    if user is not None and not may_close(user, unit):
        raise PublishingError(_("Only an analyst whose scope covers %(s)s, or an administrator, may close or "
                                "reopen its periods.", s=scope), 403)
    if period.end > utcnow():
        raise PublishingError(_("Period %(p)s is not over yet (it ends on %(d)s): it can be closed after its "
                                "last day.", p=period.label, d=period.last.isoformat()), 409)
    current = latest(period.label, scope)
    if current is not None and current.state == "closed":
        raise PublishingError(_("Period %(p)s of %(s)s is already closed (version %(v)s). Reopen it with a "
                                "reason to make a new version.", p=period.label, s=scope, v=current.version), 409)
    ids = _scope_ids(unit) if unit is not None else None
    from analysis import InputError

    try:
        rows, meta = compute_snapshot(period.label, ids)
    except InputError as exc:
        raise PublishingError(_("The figures could not be computed: %(why)s", why=str(exc)[:500]), 409) from exc
    digest, counts = input_hash(period.label, ids)
    meta["input_counts"] = counts
    actor, uid = _actor(user)
    snap = current or PeriodSnapshot(period=period.label, scope=scope, unit_id=unit.id if unit else None,
                                     version=1, opened_by=actor, opened_at=utcnow())
    snap.state = "closed"
    snap.closed_by, snap.closed_at = actor, utcnow()
    snap.method_version = meta.get("method_version")
    snap.data_cutoff = meta.get("data_cutoff")
    snap.input_hash = digest
    snap.meta = meta
    snap.table = rows
    db.session.add(snap)
    db.session.flush()
    units = dict(db.session.execute(sa.select(Unit.code, Unit.id)).all())
    for code in sorted({r["unit_code"] for r in rows if r.get("unit_code") in units}):
        db.session.add(UnitApproval(snapshot_id=snap.id, unit_id=units[code], status="draft", acceptances=[]))
    record(actor=actor, user_id=uid, action="period_close", target_type="period",
           target_id=f"{period.label}:{scope}",
           details={"version": snap.version, "input_hash": digest, "rows": len(rows), "counts": counts,
                    "method_version": snap.method_version, "data_cutoff": snap.data_cutoff})
    db.session.commit()
    return snap


def reopen_period(period_label: str, unit_code: Optional[str] = None, *, reason: str,
                  user: Optional[User] = None) -> PeriodSnapshot:
    """Make version n+1 of a closed period (state `open`, with `reason`): the
    period's data may change again; the closed versions stay readable and
    published.  Commits; audited."""
    reason = (reason or "").strip()
    if len(reason) < 5:
        raise PublishingError(_("Give the reason for reopening (at least 5 characters): it is shown with the "
                                "new version."), 400)
    unit, scope = scope_of(unit_code)
    if user is not None and not may_close(user, unit):
        raise PublishingError(_("Only an analyst whose scope covers %(s)s, or an administrator, may close or "
                                "reopen its periods.", s=scope), 403)
    label = _label(period_label)
    current = latest(label, scope)
    if current is None or current.state != "closed":
        raise PublishingError(_("Period %(p)s of %(s)s is not closed, so there is nothing to reopen.",
                                p=label, s=scope), 409)
    actor, uid = _actor(user)
    snap = PeriodSnapshot(period=label, scope=scope, unit_id=current.unit_id, version=current.version + 1,
                          state="open", reason=reason[:2000], opened_by=actor, opened_at=utcnow())
    db.session.add(snap)
    record(actor=actor, user_id=uid, action="period_reopen", target_type="period", target_id=f"{label}:{scope}",
           details={"version": snap.version, "reason": snap.reason, "previous_hash": current.input_hash})
    db.session.commit()
    return snap


def _label(period_label: str) -> str:
    try:
        return resolve_period(period_label).label
    except ValueError as exc:
        raise PublishingError(_("Invalid period %(p)s: %(why)s", p=period_label, why=str(exc)), 400) from exc


@dataclass
class Verification:
    snapshot: PeriodSnapshot
    hash_ok: bool
    stored_hash: str
    current_hash: str
    differences: list[dict]

    @property
    def ok(self) -> bool:
        return self.hash_ok and not self.differences


def _comparable_meta(meta: dict) -> dict:
    out = {k: v for k, v in (meta or {}).items() if k not in VOLATILE_META and k != "input_counts"}
    left = dict(out.get("n_left_out") or {})
    left.pop("outside_period", None)  # responses of later periods arrive after closing
    out["n_left_out"] = left
    return out


def verify(period_label: str, unit_code: Optional[str] = None, version: Optional[int] = None, *,
           user: Optional[User] = None) -> Verification:
    """Recompute a closed version from the stored data: the input hash and
    every cell of the table (and the meta) must be identical.  Audited."""
    scope = scope_of(unit_code)[1]
    snap = get_version(_label(period_label), scope, version)
    ids = _scope_ids(snap)
    digest, _counts = input_hash(snap.period, ids)
    rows, meta = compute_snapshot(snap.period, ids)
    diffs = table_diff(snap.table or [], rows)
    stored_meta, new_meta = _comparable_meta(snap.meta), _comparable_meta(meta)
    for key in sorted(set(stored_meta) | set(new_meta)):
        if stored_meta.get(key) != new_meta.get(key):
            diffs.append({"unit_code": "(meta)", "level": "", "column": key, "stored": stored_meta.get(key),
                          "now": new_meta.get(key)})
    result = Verification(snap, digest == snap.input_hash, snap.input_hash or "", digest, diffs)
    actor, uid = _actor(user)
    record(actor=actor, user_id=uid, action="period_verify", target_type="period",
           target_id=f"{snap.period}:{snap.scope}",
           details={"version": snap.version, "ok": result.ok, "hash_ok": result.hash_ok,
                    "differences": len(diffs)})
    db.session.commit()
    return result


def _keyed(rows: list[dict]) -> dict:
    return {(r.get("unit_code"), r.get("level")): r for r in rows}


def table_diff(stored: list[dict], now: list[dict]) -> list[dict]:
    """Every cell that differs between two results tables (rows keyed by unit and level)."""
    a, b = _keyed(stored), _keyed(now)
    out = []
    for key in sorted(set(a) | set(b), key=lambda k: tuple(map(str, k))):
        ra, rb = a.get(key), b.get(key)
        if ra is None or rb is None:
            out.append({"unit_code": key[0], "level": key[1], "column": "(row)",
                        "stored": "present" if ra else "absent", "now": "present" if rb else "absent"})
            continue
        for col in sorted(set(ra) | set(rb)):
            if ra.get(col) != rb.get(col):
                out.append({"unit_code": key[0], "level": key[1], "column": col, "stored": ra.get(col),
                            "now": rb.get(col)})
    return out


# ---------------------------------------------------------------- versions compared

DIFF_COLUMNS = ("unit_code", "level", "name_vi", "change", "index_a", "index_b", "index_change",
                "index_ci_low_a", "index_ci_low_b", "index_ci_high_a", "index_ci_high_b", "n_a", "n_b", "N_a",
                "N_b", "target_status_a", "target_status_b", "why")


def diff(period_label: str, unit_code: Optional[str], a: int, b: int) -> tuple[PeriodSnapshot, PeriodSnapshot,
                                                                                list[dict]]:
    """(version a, version b, one row per unit and level): which units moved,
    by how much (index points), and why (n, N, target, the reason of b)."""
    scope = scope_of(unit_code)[1]
    label = _label(period_label)
    va, vb = get_version(label, scope, a), get_version(label, scope, b)
    ra, rb = _keyed(va.table or []), _keyed(vb.table or [])
    out = []
    for key in sorted(set(ra) | set(rb), key=lambda k: tuple(map(str, k))):
        x, y = ra.get(key) or {}, rb.get(key) or {}
        ix, iy = x.get("index"), y.get("index")
        change = "added" if not x else "removed" if not y else (
            "same" if all(x.get(c) == y.get(c) for c in set(x) | set(y)) else "changed")
        why = []
        for col, word in (("n", "n"), ("N", "N"), ("target", _("target")), ("adequacy", _("adequacy"))):
            if x and y and x.get(col) != y.get(col):
                why.append(f"{word} {_fmt(x.get(col))} → {_fmt(y.get(col))}")
        if change == "changed" and not why:
            why.append(_("same responses counted, other answers or weights"))
        if change != "same" and vb.reason:
            why.append(_("reason of version %(v)s: %(r)s", v=vb.version, r=vb.reason))
        out.append({"unit_code": key[0], "level": key[1], "name_vi": y.get("name_vi") or x.get("name_vi"),
                    "change": change, "index_a": ix, "index_b": iy,
                    "index_change": (iy - ix) if isinstance(ix, (int, float)) and isinstance(iy, (int, float))
                    else None,
                    "index_ci_low_a": x.get("index_ci_low"), "index_ci_low_b": y.get("index_ci_low"),
                    "index_ci_high_a": x.get("index_ci_high"), "index_ci_high_b": y.get("index_ci_high"),
                    "n_a": x.get("n"), "n_b": y.get("n"), "N_a": x.get("N"), "N_b": y.get("N"),
                    "target_status_a": x.get("target_status"), "target_status_b": y.get("target_status"),
                    "why": "; ".join(why)})
    return va, vb, out


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def diff_csv(rows: list[dict]) -> str:
    import csv
    import io

    from .csv_export import csv_safe

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(DIFF_COLUMNS)
    for r in rows:
        w.writerow([csv_safe("" if r.get(c) is None else r.get(c)) for c in DIFF_COLUMNS])
    return buf.getvalue()


# ---------------------------------------------------------------- the guard (exclusions, imports, targets)

def _closed_latest() -> list[PeriodSnapshot]:
    """The newest version of every (period, scope) when that version is closed."""
    newest = (sa.select(PeriodSnapshot.period, PeriodSnapshot.scope, sa.func.max(PeriodSnapshot.version).label("v"))
              .group_by(PeriodSnapshot.period, PeriodSnapshot.scope).subquery())
    q = sa.select(PeriodSnapshot).join(newest, sa.and_(PeriodSnapshot.period == newest.c.period,
                                                      PeriodSnapshot.scope == newest.c.scope,
                                                      PeriodSnapshot.version == newest.c.v)).where(
        PeriodSnapshot.state == "closed")
    return list(db.session.scalars(q))


def _as_utc(t) -> tuple[dt.datetime, dt.datetime]:
    """[t, t] as UTC instants; a date is its whole local day."""
    if isinstance(t, dt.datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=dt.timezone.utc)
        return t, t
    from .periods import local_zone

    tz = local_zone()
    start = dt.datetime.combine(t, dt.time(0), tzinfo=tz).astimezone(dt.timezone.utc)
    return start, start + dt.timedelta(days=1) - dt.timedelta(microseconds=1)


def closed_period_for(unit_ids, start=None, end=None, *, year: Optional[int] = None
                      ) -> Optional[PeriodSnapshot]:
    """The closed version whose figures a change at these units (an id, a set
    of ids, or None = every unit) between `start` and `end` (datetimes or local
    dates, `end` default `start`) — or anywhere in report `year` — would alter;
    None when no closed period is concerned."""
    closed = _closed_latest()
    if not closed:
        return None
    if unit_ids is not None and not isinstance(unit_ids, (set, frozenset, list, tuple)):
        unit_ids = [unit_ids]
    lo = hi = None
    if start is not None:
        lo = _as_utc(start)[0]
        hi = _as_utc(end if end is not None else start)[1]
    chains = None if unit_ids is None else [set(_ancestors(u)) for u in unit_ids if u is not None]
    for snap in closed:
        try:
            period = resolve_period(snap.period)
        except ValueError:
            continue
        if year is not None and period.year != year:
            continue
        if lo is not None and not (lo < period.end and hi >= period.start):
            continue
        if chains is not None and snap.unit_id is not None and not any(snap.unit_id in c for c in chains):
            continue
        return snap
    return None


def guard_change(kind: str, unit_ids, start=None, end=None, *, year: Optional[int] = None) -> None:
    """Refuse (raise `PeriodClosed`) a change of `kind` that would alter the
    figures of a closed period: the one hook exclusions, imports, paper entry
    and target changes call before writing.  See `closed_period_for`."""
    snap = closed_period_for(unit_ids, start, end, year=year)
    if snap is not None:
        raise PeriodClosed(snap, kind)


def refusal(kind: str, unit_ids, start=None, end=None, *, year: Optional[int] = None) -> Optional[str]:
    """`guard_change` for a page or a command: the refusal's message, or None when the change may go ahead."""
    snap = closed_period_for(unit_ids, start, end, year=year)
    return None if snap is None else str(PeriodClosed(snap, kind))


def batch_refusal(batch_id: int) -> Optional[str]:
    """For an import batch written but not yet committed: the refusal's message
    when its responses or volume rows would alter a closed period, else None.
    The import's hook then rolls back and rejects the file."""
    for uid, first, last in db.session.execute(
            sa.select(Response.unit_id, sa.func.min(Response.submitted_at), sa.func.max(Response.submitted_at))
            .where(Response.import_batch_id == batch_id).group_by(Response.unit_id)):
        first, last = (t if not isinstance(t, str) else dt.datetime.fromisoformat(t) for t in (first, last))
        why = refusal("import", uid, first, last)
        if why:
            return why
    for uid, start, end in db.session.execute(sa.select(Volume.unit_id, sa.func.min(Volume.period_start),
                                                        sa.func.max(Volume.period_end))
                                              .where(Volume.import_batch_id == batch_id).group_by(Volume.unit_id)):
        if isinstance(start, str):
            start, end = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
        why = refusal("import", uid, start, end)
        if why:
            return why
    return None


# ---------------------------------------------------------------- the approval chain

def approval_levels() -> int:
    return max(1, int(current_app.config["PUBLISH_APPROVAL_LEVELS"]))


def approvals_of(snapshot: PeriodSnapshot) -> list[UnitApproval]:
    return sorted(snapshot.approvals, key=lambda a: a.unit.code)


def approval_for(snapshot: PeriodSnapshot, unit_code: str) -> UnitApproval:
    for a in snapshot.approvals:
        if a.unit.code == unit_code:
            return a
    raise PublishingError(_("Unit %(c)s has no figures in version %(v)s of period %(p)s.", c=unit_code,
                            v=snapshot.version, p=snapshot.period), 404)


def _audit_approval(user: Optional[User], action: str, a: UnitApproval, **details) -> None:
    actor, uid = _actor(user)
    record(actor=actor, user_id=uid, action=action, target_type="unit_approval",
           target_id=f"{a.snapshot.period}:{a.snapshot.scope}:v{a.snapshot.version}:{a.unit.code}",
           details=dict(status=a.status, **details))


def submit(a: UnitApproval, user: User, reflection: str) -> UnitApproval:
    """The unit's leader submits its figures with a short reflection."""
    reflection = (reflection or "").strip()
    if user.role != "unit_leader" or not covers(user, a.unit_id):
        raise PublishingError(_("Only the leader of %(c)s may submit its figures.", c=a.unit.code), 403)
    if a.status not in ("draft", "changes_requested"):
        raise PublishingError(_("These figures are already %(s)s.", s=status_word(a.status)), 409)
    if len(reflection) < 10:
        raise PublishingError(_("Write a short reflection on the figures (at least 10 characters): what went "
                                "well, what the unit will improve."), 400)
    a.status, a.reflection = "submitted", reflection[:4000]
    a.submitted_by, a.submitted_at = user.username, utcnow()
    a.acceptances = []
    _audit_approval(user, "approval_submit", a)
    db.session.commit()
    return a


def _reviewer_check(a: UnitApproval, user: User) -> None:
    if user.role not in ("analyst", "admin") or not covers(user, a.unit_id, strictly=True):
        raise PublishingError(_("Only an analyst whose scope covers %(c)s and who is not a member of it may "
                                "review its figures.", c=a.unit.code), 403)


def accept(a: UnitApproval, user: User, note: str = "") -> UnitApproval:
    """An analyst outside the unit accepts its submitted figures; with
    PUBLISH_APPROVAL_LEVELS > 1 each further acceptance must come from a
    reviewer above the previous one."""
    _reviewer_check(a, user)
    if a.status != "submitted":
        raise PublishingError(_("Only submitted figures can be accepted (these are %(s)s).",
                                s=status_word(a.status)), 409)
    done = list(a.acceptances or [])
    if any(x.get("by") == user.username for x in done):
        raise PublishingError(_("You have already accepted these figures; the next level must accept them."), 409)
    if done and user.role != "admin":
        prev = db.session.scalar(sa.select(User).where(User.username == done[-1]["by"]))
        if prev is not None and (prev.role == "admin" or prev.unit_id is None
                                 or user.unit_id not in _ancestors(prev.unit_id)[1:]):
            raise PublishingError(_("The next acceptance must come from a level above the previous reviewer."),
                                  403)
    done.append({"by": user.username, "scope": user.unit.code if user.unit else WHOLE_TREE,
                 "at": utcnow().isoformat(timespec="seconds")})
    a.acceptances = done
    a.reviewed_by, a.reviewed_at, a.review_note = user.username, utcnow(), (note or "").strip()[:2000] or None
    if len(done) >= approval_levels():
        a.status = "accepted"
    _audit_approval(user, "approval_accept", a, level=len(done))
    db.session.commit()
    return a


def request_changes(a: UnitApproval, user: User, note: str) -> UnitApproval:
    """An analyst outside the unit sends the figures back to its leader with a note."""
    _reviewer_check(a, user)
    note = (note or "").strip()
    if a.status not in ("submitted", "accepted"):
        raise PublishingError(_("Only submitted or accepted figures can be sent back (these are %(s)s).",
                                s=status_word(a.status)), 409)
    if len(note) < 5:
        raise PublishingError(_("Say what should change (at least 5 characters)."), 400)
    a.status, a.review_note = "changes_requested", note[:2000]
    a.reviewed_by, a.reviewed_at, a.acceptances = user.username, utcnow(), []
    _audit_approval(user, "approval_request_changes", a, note=a.review_note)
    db.session.commit()
    return a


def publish(a: UnitApproval, user: Optional[User]) -> UnitApproval:
    """Publish accepted figures (an analyst covering the unit from outside, an
    admin, or the command line).  A unit leader never publishes."""
    if user is not None:
        if user.role not in ("analyst", "admin"):
            raise PublishingError(_("A unit leader cannot publish figures: an analyst or an administrator "
                                    "publishes them after acceptance."), 403)
        if not covers(user, a.unit_id, strictly=True):
            raise PublishingError(_("Only an analyst whose scope covers %(c)s and who is not a member of it may "
                                    "publish its figures.", c=a.unit.code), 403)
    if a.status != "accepted":
        raise PublishingError(_("Only accepted figures can be published (%(c)s: %(s)s).", c=a.unit.code,
                                s=status_word(a.status)), 409)
    a.status, a.published_at = "published", utcnow()
    a.published_by = user.username if user is not None else "cli"
    _audit_approval(user, "approval_publish", a)
    db.session.commit()
    return a


def status_word(status: str) -> str:
    return {"draft": _("draft"), "submitted": _("submitted"), "changes_requested": _("change requested"),
            "accepted": _("accepted"), "published": _("published")}.get(status, status)


def statuses(period_label: str, unit_ids: Optional[set[int]]) -> dict[str, dict]:
    """unit code → {status, version} of the newest closed version of the period
    that holds the unit (the annual report's status column)."""
    out: dict[str, dict] = {}
    q = (sa.select(Unit.code, UnitApproval.unit_id, UnitApproval.status, PeriodSnapshot.version)
         .join(PeriodSnapshot, PeriodSnapshot.id == UnitApproval.snapshot_id)
         .join(Unit, Unit.id == UnitApproval.unit_id)
         .where(PeriodSnapshot.period == period_label, PeriodSnapshot.state == "closed")
         .order_by(PeriodSnapshot.version))
    for code, uid, status, version in db.session.execute(q):
        if unit_ids is None or uid in unit_ids:
            out[code] = {"status": status, "version": version}
    return out


def _newest_by_scope(period_label: str) -> dict[str, PeriodSnapshot]:
    q = sa.select(PeriodSnapshot).where(PeriodSnapshot.period == period_label).order_by(
        PeriodSnapshot.scope, PeriodSnapshot.version)
    return {snap.scope: snap for snap in db.session.scalars(q)}


def version_tag(period_label: str) -> str:
    """A short machine form of `version_note` for exports: `P:v2 closed; Q:v3 open` ("" when never closed)."""
    return "; ".join(f"{scope}:v{s.version} {s.state}" for scope, s in sorted(_newest_by_scope(period_label).items()))


def version_note(period_label: str) -> Optional[str]:
    """The sentence a page or export of a period's live figures carries when the
    period has been closed: which version is frozen (and published), or that a
    new version is being prepared.  None when the period was never closed."""
    newest = _newest_by_scope(period_label)
    if not newest:
        return None
    parts = []
    for scope, snap in sorted(newest.items()):
        where = _("whole tree") if scope == WHOLE_TREE else scope
        if snap.state == "closed":
            parts.append(_("%(s)s: closed, version %(v)s (closed on %(d)s, inputs %(h)s)", s=where, v=snap.version,
                           d=snap.closed_at.date().isoformat() if snap.closed_at else "?",
                           h=(snap.input_hash or "")[:12]))
        else:
            parts.append(_("%(s)s: reopened for version %(v)s (%(r)s); version %(o)s stays the published one",
                           s=where, v=snap.version, r=snap.reason or "", o=snap.version - 1))
    return _("Period %(p)s has been closed — %(parts)s. Figures shown here are computed from the stored data "
             "and equal the closed version while it is closed.", p=period_label, parts="; ".join(parts))


# ---------------------------------------------------------------- what the public sees

def publication_stamp() -> str:
    """Changes whenever something is published (the public pages' cache key)."""
    n, last = db.session.execute(sa.select(sa.func.count(), sa.func.max(UnitApproval.published_at))
                                 .where(UnitApproval.status == "published")).one()
    return f"{n}:{last}"


def published_years(unit_code: Optional[str] = None) -> list[dict]:
    """What is published: one entry per (report year, top unit) with the number of units."""
    q = (sa.select(PeriodSnapshot.period, UnitApproval.unit_id)
         .join(PeriodSnapshot, PeriodSnapshot.id == UnitApproval.snapshot_id)
         .where(UnitApproval.status == "published"))
    parents = dict(db.session.execute(sa.select(Unit.id, Unit.parent_id)).all())
    units = {u.id: u for u in db.session.scalars(sa.select(Unit))}
    found: dict[tuple, set] = {}
    for period, uid in db.session.execute(q):
        if not period.isdigit():
            continue  # the public pages show report years
        top = uid
        while parents.get(top) is not None:
            top = parents[top]
        found.setdefault((int(period), top), set()).add(uid)
    out = [{"year": y, "unit": units[t], "units": len(s)} for (y, t), s in found.items()
           if unit_code is None or units[t].code == unit_code]
    return sorted(out, key=lambda e: (-e["year"], e["unit"].code))


def _pick_row(rows: list[dict], code: str) -> Optional[dict]:
    mine = [r for r in rows if r.get("unit_code") == code]
    roll = [r for r in mine if r.get("level") != UNIT_LEVEL]
    return (roll or mine or [None])[0]


def public_rows(unit_code: str, year: int, *, sort: str = "name", descending: bool = False
                ) -> tuple[Optional[Unit], list[dict], dict]:
    """(unit, rows, about) for `/public/<unit>/<year>`: every published unit
    of the unit's subtree with its newest published version; a unit below
    PUBLIC_MIN_N responses shown without any figure (`suppressed`).  `about`:
    versions shown with their reasons, method version, data cut-off, the minimum."""
    unit = db.session.scalar(sa.select(Unit).where(Unit.code == unit_code))
    if unit is None:
        return None, [], {}
    ids = subtree_ids(unit.id)
    q = (sa.select(UnitApproval, PeriodSnapshot)
         .join(PeriodSnapshot, PeriodSnapshot.id == UnitApproval.snapshot_id)
         .where(UnitApproval.status == "published", PeriodSnapshot.period == str(year),
                UnitApproval.unit_id.in_(sorted(ids)))
         .order_by(PeriodSnapshot.version))
    newest: dict[int, tuple] = {}
    for a, snap in db.session.execute(q).all():
        newest[a.unit_id] = (a, snap)  # ordered by version: the newest published wins
    min_n = int(current_app.config["PUBLIC_MIN_N"])
    rows, versions_shown = [], {}
    for a, snap in newest.values():
        r = _pick_row(snap.table or [], a.unit.code)
        if r is None:
            continue
        small = (r.get("n") or 0) < min_n
        row = {c: r.get(c) for c in PUBLIC_COLUMNS if c in r}
        row.update(unit_code=a.unit.code, name_vi=a.unit.name_vi, name_en=a.unit.name_en or a.unit.name_vi,
                   kind=r.get("kind") or a.unit.kind, version=snap.version, suppressed=small)
        if small:
            for c in ("index", "index_ci_low", "index_ci_high", "n", "adequacy", "target_status",
                      "trend_direction", "trend_change"):
                row[c] = None
        rows.append({c: row.get(c) for c in PUBLIC_COLUMNS})
        versions_shown[snap.version] = {"version": snap.version, "reason": snap.reason,
                                        "closed_at": snap.closed_at.date().isoformat() if snap.closed_at else None,
                                        "method_version": snap.method_version, "data_cutoff": snap.data_cutoff,
                                        "published_at": a.published_at.date().isoformat() if a.published_at
                                        else None}
    rows = sort_public(rows, sort, descending)
    about = {"period": str(year), "min_n": min_n, "versions": [versions_shown[v] for v in sorted(versions_shown)],
             "method_version": ", ".join(sorted({v["method_version"] or "" for v in versions_shown.values()})),
             "data_cutoff": max((v["data_cutoff"] or "" for v in versions_shown.values()), default="")}
    return unit, rows, about


def sort_public(rows: list[dict], sort: str, descending: bool) -> list[dict]:
    """Rows sorted by a public column; suppressed units (no figure) always last."""
    keys = {"name": lambda r: (r["name_vi"] or "").lower(), "index": lambda r: r["index"],
            "n": lambda r: r["n"], "interval": lambda r: r["index_ci_low"],
            "target_status": lambda r: r["target_status"] or "", "trend": lambda r: r["trend_change"]}
    key = keys.get(sort, keys["name"])
    shown = [r for r in rows if key(r) is not None and not (sort != "name" and r["suppressed"])]
    rest = sorted([r for r in rows if r not in shown], key=lambda r: (r["name_vi"] or "").lower())
    return sorted(shown, key=key, reverse=descending) + rest


def public_csv(rows: list[dict], about: dict) -> str:
    """The public table as CSV (machine column names, fractions as fractions)
    with the method version, period and data cut-off on every row."""
    import csv
    import io

    from .csv_export import csv_safe

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(list(PUBLIC_COLUMNS) + ["period", "method", "data_cutoff"])
    for r in rows:
        cells = ["" if r.get(c) is None else (repr(r[c]) if isinstance(r[c], float) else r[c])
                 for c in PUBLIC_COLUMNS]
        w.writerow([csv_safe(v) for v in cells] + [about.get("period"), about.get("method_version"),
                                                   about.get("data_cutoff")])
    return buf.getvalue()


def public_json(unit: dict, rows: list[dict], about: dict, note: str) -> dict[str, Any]:
    """The open-data document of a public page: the same rows, the method note and the versions."""
    return {"unit": unit, "period": about.get("period"), "method_version": about.get("method_version"),
            "method_note": note, "data_cutoff": about.get("data_cutoff"), "min_n": about.get("min_n"),
            "versions": about.get("versions"), "columns": list(PUBLIC_COLUMNS), "rows": rows}
