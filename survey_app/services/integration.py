"""Integration with the one-stop systems (issue 12; DESIGN.md "Integration",
METHODOLOGY.md §7): API clients and their keys, dossier events in,
per-dossier rating links out, volumes from events, offered counts, response
rates among offered and the QĐ 766 satisfaction metric.

The API (`survey_app.api`), the CLI (`flask api ...`), the statistics and
the demo seed all come through here.

Privacy: a dossier code (MaHoSo) is the one-stop system's data.  It is kept
in `dossiers.code` so that events of the same dossier meet, but it never
appears in a link we mint (the link carries a random opaque reference), an
audit entry or a log line.  NguoiXuLy (the officer) is staff personal data,
kept for internal views only, never in an API answer.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

import sqlalchemy as sa
from flask import current_app, has_request_context
from flask_babel import force_locale, gettext
from sqlalchemy.exc import IntegrityError

from analysis import InputError
from analysis.schema import ALL_STRATUM

from ..extensions import db
from ..models import Answer, ApiClient, Dossier, DossierEvent, Response, Unit, Volume, utcnow
from .audit import record
from .bieu06 import API_NAMES
from .units import subtree_ids

RIGHTS = ("events", "volumes", "links", "results")
EVENTS = ("tiep_nhan", "tra_ket_qua", "cap_nhat", "phan_anh")
#: The largest batch of events one request may carry.
MAX_BATCH = 1000
KEY_PREFIX = "sipas_"
#: Version of the QĐ 766 computation (the like/dislike mapping is part of it).
M766_VERSION = "766-v1"


def _(message: str, **values) -> str:
    """gettext, also outside a request (the CLI, the demo seed): then in the default language."""
    if has_request_context():
        return gettext(message, **values)
    with force_locale(current_app.config["BABEL_DEFAULT_LOCALE"]):
        return gettext(message, **values)


# ------------------------------------------------------------------ clients and keys

def hash_key(key: str) -> str:
    """SHA-256 of an API key (keys are 256-bit random: a fast hash suffices)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_rights(text: Optional[str]) -> list[str]:
    """The rights named in `text` (comma-separated; empty = all); ValueError for an unknown one."""
    if not text:
        return list(RIGHTS)
    names = [r.strip() for r in text.split(",") if r.strip()]
    unknown = [r for r in names if r not in RIGHTS]
    if unknown or not names:
        raise ValueError(", ".join(unknown) or text)
    return [r for r in RIGHTS if r in names]


def create_client(name: str, unit: Unit, rights: Iterable[str], *, actor: str,
                  user_id: Optional[int] = None) -> tuple[ApiClient, str]:
    """A new client and its key (returned once, stored only hashed).  Commits.
    ValueError when the name is taken or empty."""
    name = (name or "").strip()
    if not name or len(name) > 80:
        raise ValueError(_("The client name must have 1 to 80 characters."))
    if db.session.scalar(sa.select(ApiClient.id).where(ApiClient.name == name)) is not None:
        raise ValueError(_("An API client named %(name)s already exists.", name=name))
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    client = ApiClient(name=name, key_hash=hash_key(key), key_prefix=key[:12], unit_id=unit.id,
                       rights=",".join(rights), active=True)
    db.session.add(client)
    db.session.flush()
    record(actor=actor, user_id=user_id, action="api.client_create", target_type="api_client",
           target_id=client.id, details={"name": name, "unit": unit.code, "rights": client.rights})
    db.session.commit()
    return client, key


def revoke_client(name: str, *, actor: str, user_id: Optional[int] = None) -> ApiClient:
    """Revoke a client's key (kept for the record); LookupError when unknown."""
    client = db.session.scalar(sa.select(ApiClient).where(ApiClient.name == name))
    if client is None:
        raise LookupError(name)
    if client.active:
        client.active = False
        client.revoked_at = utcnow()
        record(actor=actor, user_id=user_id, action="api.client_revoke", target_type="api_client",
               target_id=client.id, details={"name": name})
        db.session.commit()
    return client


def list_clients() -> list[ApiClient]:
    return list(db.session.scalars(sa.select(ApiClient).order_by(ApiClient.name)))


def authenticate(key: Optional[str]) -> Optional[ApiClient]:
    """The active client whose key this is, else None.  Looked up by its hash
    (the stored secret is never compared as text), then compared in constant time."""
    if not key or not key.startswith(KEY_PREFIX) or len(key) > 100:
        return None
    digest = hash_key(key)
    client = db.session.scalar(sa.select(ApiClient).where(ApiClient.key_hash == digest))
    if client is None or not client.active or not hmac.compare_digest(client.key_hash, digest):
        return None
    return client


def client_scope(client: ApiClient) -> set[int]:
    """The unit ids a client may read and write (its unit's subtree, services.units)."""
    return subtree_ids(client.unit_id)


# ------------------------------------------------------------------ times

_PORTAL_TIME = re.compile(r"^\d{14}$")


def parse_time(value: Any, zone=None) -> dt.datetime:
    """A portal time (`yyyyMMddHHmmss`, local time of the calendar's zone) or
    ISO 8601 with an offset, as aware UTC; ValueError with the reason.
    `zone`: the calendar's zone when the caller has it (a batch parses thousands)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(_("expected a time as text: yyyyMMddHHmmss or ISO 8601 with an offset"))
    text = value.strip()
    if _PORTAL_TIME.match(text):
        if zone is None:
            from .periods import local_zone

            zone = local_zone()
        try:
            naive = dt.datetime(int(text[0:4]), int(text[4:6]), int(text[6:8]), int(text[8:10]),
                                int(text[10:12]), int(text[12:14]))
        except ValueError:
            raise ValueError(_("not a real date and time (yyyyMMddHHmmss)")) from None
        return naive.replace(tzinfo=zone).astimezone(dt.timezone.utc)
    try:
        stamp = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(_("not a time: use yyyyMMddHHmmss or ISO 8601 with an offset")) from None
    if stamp.tzinfo is None or stamp.utcoffset() is None:
        raise ValueError(_("an ISO 8601 time needs an offset, e.g. +07:00"))
    if not 1990 <= stamp.year <= 2100:
        raise ValueError(_("the year is out of range"))
    return stamp.astimezone(dt.timezone.utc)


def local_day(stamp: dt.datetime, zone=None) -> dt.date:
    if zone is None:
        from .periods import local_zone

        zone = local_zone()
    return stamp.astimezone(zone).date()


# ------------------------------------------------------------------ events in

#: Event field -> (dossier attribute, maximum length) for the text fields.
TEXT_FIELDS = {"MaTTHC": ("procedure_code", 100), "MaLinhVuc": ("stratum", 60), "HinhThuc": ("channel", 40),
               "TrangThaiHoSo": ("status", 40), "NguoiXuLy": ("officer", 200)}
TIME_FIELDS = {"NgayTiepNhan": "received_at", "NgayHenTra": "due_at", "NgayTra": "returned_at"}
#: The time that identifies an event (with MaHoSo and SuKien), by SuKien;
#: `ThoiDiemXuLy` (the portal's processing time) when given takes precedence.
EVENT_TIME = {"tiep_nhan": "NgayTiepNhan", "tra_ket_qua": "NgayTra", "cap_nhat": "ThoiDiemXuLy",
              "phan_anh": "ThoiDiemXuLy"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class EventError(Exception):
    code: str
    field: Optional[str]
    message: str


@dataclass
class _Event:
    index: int
    code: str
    event: str
    at: dt.datetime
    unit_id: int
    values: dict = field(default_factory=dict)  # dossier attribute -> value
    phone: Optional[str] = None  # to send the link to (consent given); never stored


def _text(ev: dict, name: str, limit: int, required: bool = False) -> Optional[str]:
    value = ev.get(name)
    if value is None or value == "":
        if required:
            raise EventError("missing", name, _("This field is required."))
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise EventError("invalid_type", name, _("Expected text."))
    value = str(value).strip()
    if not value and required:
        raise EventError("missing", name, _("This field is required."))
    if len(value) > limit:
        raise EventError("too_long", name, _("At most %(n)d characters.", n=limit))
    if _CONTROL.search(value):
        raise EventError("invalid_characters", name, _("Control characters are not allowed."))
    return value or None


def _parse_event(i: int, ev: Any, units: dict[str, int], zone=None) -> _Event:
    if not isinstance(ev, dict):
        raise EventError("not_an_object", None, _("Each event must be a JSON object."))
    code = _text(ev, "MaHoSo", 100, required=True)
    kind = _text(ev, "SuKien", 20, required=True)
    if kind not in EVENTS:
        raise EventError("invalid_value", "SuKien", _("SuKien must be one of: %(values)s.",
                                                      values=", ".join(EVENTS)))
    unit_code = _text(ev, "MaDonVi", 40, required=True)
    unit_id = units.get(unit_code)
    if unit_id is None:
        raise EventError("out_of_scope", "MaDonVi",
                         _("Unit %(code)s does not exist or is outside the scope of this API key.", code=unit_code))
    values: dict[str, Any] = {}
    for name, (attr, limit) in TEXT_FIELDS.items():
        v = _text(ev, name, limit)
        if v is not None:
            values[attr] = v
    times: dict[str, dt.datetime] = {}
    for name in (*TIME_FIELDS, "ThoiDiemXuLy"):
        if ev.get(name) not in (None, ""):
            try:
                times[name] = parse_time(ev[name], zone)
            except ValueError as exc:
                raise EventError("invalid_time", name, str(exc)) from None
    for name, attr in TIME_FIELDS.items():
        if name in times:
            values[attr] = times[name]
    if "returned_at" in values:
        values["returned_on"] = local_day(values["returned_at"], zone)
    key_field = "ThoiDiemXuLy" if "ThoiDiemXuLy" in times else EVENT_TIME[kind]
    if key_field not in times:
        raise EventError("missing", key_field, _("This event needs the field %(name)s (its time).", name=key_field))
    if kind == "tra_ket_qua" and "returned_at" not in values:
        raise EventError("missing", "NgayTra", _("A tra_ket_qua event needs NgayTra."))
    if "received_at" in values and "returned_at" in values and values["returned_at"] < values["received_at"]:
        raise EventError("invalid_value", "NgayTra", _("NgayTra is before NgayTiepNhan."))
    phone = None
    if kind == "tra_ket_qua" and ev.get("DongYNhanTin") is True and ev.get("SoDienThoai") not in (None, ""):
        from .gateway import valid_phone

        if not valid_phone(ev["SoDienThoai"]):
            raise EventError("invalid_value", "SoDienThoai", _("Not a phone number."))
        phone = str(ev["SoDienThoai"])
    return _Event(i, code, kind, times[key_field], unit_id, values, phone)


def _insert_ignore(table):
    """INSERT ... ON CONFLICT DO NOTHING for the session's dialect."""
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).on_conflict_do_nothing()


def _error(i: int, exc: EventError) -> dict:
    out = {"index": i, "status": "error", "code": exc.code, "message": exc.message}
    if exc.field:
        out["field"] = exc.field
    return out


def ingest_events(client: ApiClient, events: list, *, scope: Optional[set[int]] = None) -> dict:
    """Store a batch of dossier events for `client` in one transaction and
    commit.  Every event is validated first: a bad one is answered with its
    field and reason and never blocks the good ones, and nothing of it is
    written.  Idempotent on (MaHoSo, SuKien, time): an event already stored
    (earlier, or twice in this batch) is a `duplicate` and changes nothing.

    Returns {"results": [{"index", "status": accepted|duplicate|error, ...}],
    "accepted": n, "duplicates": n, "errors": n}."""
    for attempt in (1, 2):
        try:
            return _ingest(client, events, scope if scope is not None else client_scope(client))
        except IntegrityError:
            # A concurrent batch created the same dossier between our read and our write: once more.
            db.session.rollback()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def plain_code(value: Any, limit: int = 100) -> Optional[str]:
    """`value` as a code fit to look up (text or a number, no control
    characters, at most `limit` characters), else None: such a value matches
    nothing, and PostgreSQL refuses a NUL outright."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = str(value).strip()
    return text if text and len(text) <= limit and not _CONTROL.search(text) else None


def _unit_ids_by_code(values, scope: set[int]) -> dict[str, int]:
    """Unit code -> id of the codes among `values` that name a unit in `scope`."""
    codes = sorted({c for c in (plain_code(v, 40) for v in values) if c})
    if not codes:
        return {}
    rows = db.session.execute(sa.select(Unit.code, Unit.id).where(_among(Unit.code, codes))).all()
    return {code: uid for code, uid in rows if uid in scope}


def _pg() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _among(column, values: list):
    """`column IN values`: on PostgreSQL `= ANY(array)`, one parameter whatever the batch size
    (a statement text that the driver and the server prepare once, not one per size)."""
    if _pg():
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == sa.any_(sa.bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))


#: PostgreSQL: a batch's rows as arrays, unnested into one statement each (few parameters, prepared
#: once; no per-row statement or ORM object).  Elsewhere the same rows go through Core executemany.
_PG_NEW_DOSSIERS = sa.text(
    "INSERT INTO dossiers (code, unit_id, stratum, complaints, updated_at) "
    "SELECT u.code, u.unit_id, :stratum, 0, :now "
    "FROM unnest(CAST(:codes AS varchar[]), CAST(:units AS integer[])) WITH ORDINALITY AS u(code, unit_id, n) "
    "ORDER BY u.n ON CONFLICT DO NOTHING RETURNING id, code, unit_id")
_PG_EVENTS = sa.text(
    "INSERT INTO dossier_events (dossier_id, event, at, client_id, received_at) "
    "SELECT u.d, u.e, u.a, :client, :now "
    "FROM unnest(CAST(:d AS integer[]), CAST(:e AS varchar[]), CAST(:a AS timestamptz[])) "
    "WITH ORDINALITY AS u(d, e, a, n) ORDER BY u.n "
    "ON CONFLICT DO NOTHING RETURNING dossier_id, event, at")
_UPDATE_TYPES = {"procedure_code": "varchar", "stratum": "varchar", "channel": "varchar", "status": "varchar",
                 "received_at": "timestamptz", "due_at": "timestamptz", "returned_at": "timestamptz",
                 "returned_on": "date", "officer": "varchar"}


def _pg_update_dossiers():
    """One UPDATE for every dossier of the batch: a column an event did not carry is NULL in the
    arrays and keeps its stored value (an event never sets a column to NULL)."""
    cols = ", ".join(f"CAST(:{c} AS {t}[])" for c, t in _UPDATE_TYPES.items())
    sets = ", ".join(f"{c} = COALESCE(u.{c}, d.{c})" for c in _UPDATE_TYPES)
    return sa.text(
        f"UPDATE dossiers AS d SET {sets}, unit_id = u.unit_id, complaints = d.complaints + u.complaints_add, "
        f"updated_at = :now FROM unnest(CAST(:ids AS integer[]), CAST(:unit_ids AS integer[]), "
        f"CAST(:complaints_add AS integer[]), {cols}) "
        f"AS u(id, unit_id, complaints_add, {', '.join(_UPDATE_TYPES)}) WHERE d.id = u.id")


_PG_UPDATE = _pg_update_dossiers()


def _create_dossiers(new: dict[str, dict], state: dict[str, dict]) -> None:
    """Insert the batch's new dossiers (ON CONFLICT: a concurrent batch may have created one: then
    its row is read back) and note each in `state`."""
    now = utcnow()
    got: set[str] = set()
    if _pg():
        for row in db.session.execute(_PG_NEW_DOSSIERS, {
                "codes": list(new), "units": [n["unit_id"] for n in new.values()], "stratum": ALL_STRATUM,
                "now": now}):
            state[row.code] = {"id": row.id, "unit_id": row.unit_id, "new": True}
            got.add(row.code)
    else:
        db.session.execute(_insert_ignore(Dossier.__table__), [
            {"code": c, "unit_id": n["unit_id"], "stratum": ALL_STRATUM, "complaints": 0, "updated_at": now}
            for c, n in new.items()])
    missing = sorted(set(new) - got)
    if missing:
        for row in db.session.execute(sa.select(Dossier.id, Dossier.code, Dossier.unit_id)
                                      .where(_among(Dossier.code, missing))):
            state[row.code] = {"id": row.id, "unit_id": row.unit_id, "new": True}


def _insert_events(rows: list[tuple], client_id: int) -> set[tuple]:
    """Insert (dossier_id, event, at) rows, ignoring those already stored; the keys inserted."""
    now = utcnow()
    t = DossierEvent.__table__
    if _pg():
        result = db.session.execute(_PG_EVENTS, {"d": [r[0] for r in rows], "e": [r[1] for r in rows],
                                                 "a": [r[2] for r in rows], "client": client_id, "now": now})
    else:
        stmt = _insert_ignore(t).returning(t.c.dossier_id, t.c.event, t.c.at)
        result = db.session.execute(stmt, [{"dossier_id": d, "event": e, "at": at, "client_id": client_id,
                                            "received_at": now} for d, e, at in rows])
    inserted: set[tuple] = set()
    for r in result:
        at = r.at if r.at.tzinfo else r.at.replace(tzinfo=dt.timezone.utc)
        inserted.add((r.dossier_id, r.event, at.astimezone(dt.timezone.utc)))
    return inserted


def _ingest(client: ApiClient, events: list, scope: set[int]) -> dict:
    from .periods import local_zone

    zone = local_zone()
    units = _unit_ids_by_code((e.get("MaDonVi") for e in events if isinstance(e, dict)), scope)
    results: list[Optional[dict]] = [None] * len(events)
    parsed: list[_Event] = []
    for i, ev in enumerate(events):
        try:
            parsed.append(_parse_event(i, ev, units, zone))
        except EventError as exc:
            results[i] = _error(i, exc)

    codes = sorted({p.code for p in parsed})
    state: dict[str, dict] = {}
    if codes:
        cols = [Dossier.id, Dossier.code, Dossier.unit_id]
        for row in db.session.execute(sa.select(*cols).where(_among(Dossier.code, codes))):
            state[row.code] = {"id": row.id, "unit_id": row.unit_id, "new": False}
    keep: list[_Event] = []
    for p in parsed:
        known = state.get(p.code)
        if known is not None and known["unit_id"] not in scope:
            results[p.index] = _error(p.index, EventError(
                "out_of_scope", "MaHoSo", _("This dossier belongs to a unit outside the scope of this API key.")))
        else:
            keep.append(p)

    # New dossiers: created with the unit of their first event.
    new: dict[str, dict] = {}
    for p in keep:
        if p.code not in state and p.code not in new:
            new[p.code] = {"unit_id": p.unit_id}
    if new:
        _create_dossiers(new, state)

    # Events: the unique (dossier, event, time) decides what is new, also against concurrent batches.
    seen: set[tuple] = set()
    rows, candidates = [], []
    for p in keep:
        k = (state[p.code]["id"], p.event, p.at)
        if k in seen:
            results[p.index] = {"index": p.index, "status": "duplicate"}
            continue
        seen.add(k)
        candidates.append((k, p))
        rows.append(k)
    inserted = _insert_events(rows, client.id) if rows else set()

    # Fold the accepted events into their dossiers (in time order), one row per dossier.
    updates: dict[int, dict] = {}
    for k, p in sorted(candidates, key=lambda c: c[1].at):
        if k not in inserted:
            results[p.index] = {"index": p.index, "status": "duplicate"}
            continue
        results[p.index] = {"index": p.index, "status": "accepted"}
        u = updates.setdefault(k[0], {"b_id": k[0], "unit_id": p.unit_id, "complaints_add": 0})
        u["unit_id"] = p.unit_id
        u.update(p.values)
        if p.event == "phan_anh":
            u["complaints_add"] += 1
    if updates:
        _update_dossiers(list(updates.values()))
    accepted = sum(1 for r in results if r and r["status"] == "accepted")
    duplicates = sum(1 for r in results if r and r["status"] == "duplicate")
    errors = len(events) - accepted - duplicates
    if accepted:  # a batch that writes nothing (all duplicates or errors) leaves no trace either
        record(actor=f"api:{client.name}", action="api.dossier_events", target_type="api_client",
               target_id=client.id, details={"accepted": accepted, "duplicates": duplicates, "errors": errors})
    db.session.commit()
    to_send = [(k[0], p) for k, p in candidates if k in inserted and p.phone]
    if to_send:
        _send_links(to_send, results, actor=f"api:{client.name}")
    return {"results": results, "accepted": accepted, "duplicates": duplicates, "errors": errors}


def _send_links(to_send: list, results: list, *, actor: str) -> None:
    """Send the rating link of each returned dossier whose event carried
    consent and a phone number: once per dossier (sent = offered)."""
    from .gateway import gateway

    gw = gateway()
    for dossier_id, p in to_send:
        d = db.session.get(Dossier, dossier_id)
        url, first = _offer(d, actor=actor, via="sms")
        if url is None or not first:
            continue
        ok = gw.send(p.phone, _("Please rate how your dossier was handled: %(url)s", url=url))
        results[p.index]["sent"] = bool(ok)


_UPDATABLE = tuple(_UPDATE_TYPES)


def _update_dossiers(updates: list[dict]) -> None:
    """PostgreSQL: one UPDATE for all (`_PG_UPDATE`); elsewhere one executemany UPDATE per set
    of changed columns."""
    if _pg():
        db.session.execute(_PG_UPDATE, {
            "ids": [u["b_id"] for u in updates], "unit_ids": [u["unit_id"] for u in updates],
            "complaints_add": [u["complaints_add"] for u in updates], "now": utcnow(),
            **{c: [u.get(c) for u in updates] for c in _UPDATE_TYPES}})
        return
    t = Dossier.__table__
    groups: dict[tuple, list[dict]] = {}
    for u in updates:
        cols = tuple(c for c in _UPDATABLE if c in u)
        groups.setdefault(cols, []).append(u)
    now = utcnow()
    for cols, group in groups.items():
        values = {c: sa.bindparam(f"b_{c}", type_=t.c[c].type) for c in cols}
        values["unit_id"] = sa.bindparam("b_unit_id")
        values["complaints"] = t.c.complaints + sa.bindparam("b_complaints_add")
        values["updated_at"] = sa.bindparam("b_updated_at", type_=t.c.updated_at.type)
        stmt = t.update().where(t.c.id == sa.bindparam("b_id")).values(values)
        params = [{"b_id": u["b_id"], "b_unit_id": u["unit_id"], "b_complaints_add": u["complaints_add"],
                   "b_updated_at": now, **{f"b_{c}": u[c] for c in cols}} for u in group]
        db.session.execute(stmt, params)


# ------------------------------------------------------------------ links out

class NotInScope(LookupError):
    """The dossier is unknown or outside the client's scope (answered 404)."""


class NoCounter(RuntimeError):
    """The dossier's unit has no active counter to rate through."""


def _link_counter(unit_id: int):
    from ..models import Counter

    return db.session.scalar(sa.select(Counter).where(Counter.unit_id == unit_id, Counter.active.is_(True))
                             .order_by(Counter.code).limit(1))


def _offer(d: Dossier, *, actor: str, via: str = "link") -> tuple[Optional[str], bool]:
    """(url, first) of a dossier's rating link, counting it as offered on the
    first call (only one call wins, even when two arrive at once); (None,
    False) when its unit has no active counter."""
    from .submissions import dossier_hash
    from .tokens import counter_url, dossier_signature

    counter = _link_counter(d.unit_id)
    if counter is None:
        return None, False
    first = False
    if d.offered_at is None:
        done = db.session.execute(sa.update(Dossier).where(Dossier.id == d.id, Dossier.offered_at.is_(None))
                                  .values(link_hash=dossier_hash(d.code), offered_at=utcnow()))
        if done.rowcount:
            first = True
            record(actor=actor, action="api.dossier_offered", target_type="dossier", target_id=d.id,
                   details={"via": via})
        db.session.commit()
        db.session.refresh(d)
    return counter_url(counter) + "?d=" + dossier_signature(counter.id, d.code), first


def dossier_link(code: str, scope: Optional[set[int]], *, actor: str = "system") -> dict:
    """{url, qr_svg, offered_at, first} for a dossier's rating link: the
    counter link of its unit with the opaque reference of
    `tokens.dossier_signature` (never the code).  The first call counts the
    dossier as offered (`first` = True); later calls return the same link.
    NotInScope / NoCounter when it cannot be given."""
    from .posters import qr_svg

    code = plain_code(code)
    d = db.session.scalar(sa.select(Dossier).where(Dossier.code == code)) if code else None
    if d is None or (scope is not None and d.unit_id not in scope):
        raise NotInScope(code)
    url, first = _offer(d, actor=actor)
    if url is None:
        raise NoCounter(d.unit_id)
    return {"url": url, "qr_svg": qr_svg(url), "offered_at": d.offered_at, "first": first}


def mark_offered(codes: Iterable[str], at: Optional[dt.datetime] = None) -> int:
    """Count many dossiers as offered at once (links printed in bulk, e.g. by
    the demo's stand-in one-stop system): what the first `dossier_link` call
    does for one dossier, without drawing the QR codes.  Dossiers already
    offered keep their first time.  Returns how many became offered."""
    from .submissions import dossier_hash

    rows = [{"b_code": c, "b_hash": dossier_hash(c)} for c in codes]
    if not rows:
        return 0
    t = Dossier.__table__
    stmt = (t.update().where(t.c.code == sa.bindparam("b_code"), t.c.offered_at.is_(None))
            .values(link_hash=sa.bindparam("b_hash"), offered_at=at or utcnow()))
    done = db.session.execute(stmt, rows).rowcount
    db.session.commit()
    return done


# ------------------------------------------------------------------ volumes from events (METHODOLOGY §7)

def _returned_in(period, unit_ids):
    cond = [Dossier.returned_on >= period.first, Dossier.returned_on <= period.last]
    if unit_ids is not None:
        cond.append(Dossier.unit_id.in_(sorted(set(unit_ids))))
    return sa.and_(*cond)


def event_volume_rows(period, unit_ids=None) -> list[tuple[str, dt.date, dt.date, str, int]]:
    """(unit_code, period_start, period_end, stratum, transactions) per unit ×
    stratum: the dossiers returned (NgayTra, local day) in the period.
    InputError when a unit of them also has typed volume rows overlapping the
    period (one source per unit and period)."""
    if period is None:
        return []
    q = (sa.select(Unit.code, Dossier.stratum, sa.func.count()).join(Unit, Unit.id == Dossier.unit_id)
         .where(_returned_in(period, unit_ids)).group_by(Unit.code, Dossier.stratum))
    rows = db.session.execute(q).all()
    if not rows:
        return []
    from_events = sorted({r[0] for r in rows})
    typed = sorted(set(db.session.scalars(
        sa.select(Unit.code).join(Volume, Volume.unit_id == Unit.id)
        .where(Unit.code.in_(from_events), Volume.period_end >= period.first, Volume.period_start <= period.last))))
    if typed:
        raise InputError(_("Unit %(codes)s, period %(period)s: transaction volumes come both from typed rows "
                           "and from dossier events. Keep one source per unit and period (delete the typed "
                           "rows or stop the events).", codes=", ".join(typed), period=period.label))
    return [(code, period.first, period.last, stratum or ALL_STRATUM, int(n)) for code, stratum, n in rows]


def volume_source(unit_id: int, period) -> str:
    """Where a unit's N comes from in the period: "events", "typed" or "none"."""
    if period is not None and db.session.scalar(
            sa.select(sa.func.count()).select_from(Dossier).where(_returned_in(period, [unit_id]))):
        return "events"
    q = sa.select(sa.func.count()).select_from(Volume).where(Volume.unit_id == unit_id)
    if period is not None:
        q = q.where(Volume.period_end >= period.first, Volume.period_start <= period.last)
    return "typed" if db.session.scalar(q) else "none"


def units_with_events(period, unit_ids) -> set[int]:
    q = sa.select(Dossier.unit_id).where(_returned_in(period, unit_ids)).distinct()
    return set(db.session.scalars(q))


# ------------------------------------------------------------------ offered, response rate, QĐ 766

DOSSIER_COLUMNS = ("offered", "link_responses", "link_response_rate", "m766_handled", "m766_rate", "m766_points")


def dossier_counts(period, unit_ids=None) -> dict[int, dict]:
    """Per unit id, over the dossiers returned in the period: handled, offered
    (a link was minted), rated (a response came through the link), and the
    QĐ 766 deductions (rated dissatisfied, with a complaint, handled late;
    `bad` counts each dossier once)."""
    dissatisfied_max = int(current_app.config["M766_DISSATISFIED_MAX"])
    a = sa.orm.aliased(Answer)
    dissatisfied = sa.and_(a.value.is_not(None), a.value <= dissatisfied_max)
    late = sa.and_(Dossier.due_at.is_not(None), Dossier.returned_at > Dossier.due_at)
    complaint = Dossier.complaints > 0

    def n(cond):
        return sa.func.sum(sa.case((cond, 1), else_=0))

    q = (sa.select(Dossier.unit_id, sa.func.count(), n(Dossier.offered_at.is_not(None)), n(Response.id.is_not(None)),
                   n(dissatisfied), n(complaint), n(late), n(sa.or_(dissatisfied, complaint, late)))
         .select_from(Dossier)
         .outerjoin(Response, Response.dossier_hash == Dossier.link_hash)
         .outerjoin(a, sa.and_(a.response_id == Response.id, a.item_key == "overall"))
         .where(_returned_in(period, unit_ids)).group_by(Dossier.unit_id))
    out = {}
    for uid, handled, offered, rated, dis, comp, lat, bad in db.session.execute(q):
        out[uid] = dict(handled=int(handled), offered=int(offered or 0), rated=int(rated or 0),
                        dissatisfied=int(dis or 0), complaints=int(comp or 0), late=int(lat or 0), bad=int(bad or 0))
    return out


def m766(handled: int, bad: int) -> tuple[Optional[float], float]:
    """(r, points) of QĐ 766/QĐ-TTg: r = (handled − bad) / handled, points =
    min(6, 6 · r / 0.90); no dossiers → (None, 0)."""
    if not handled:
        return None, 0.0
    r = (handled - bad) / handled
    return r, min(6.0, 6.0 * r / 0.90)


def add_dossier_columns(table, period, unit_ids=None, meta: Optional[dict] = None):
    """The index table with DOSSIER_COLUMNS added when some unit of the scope
    has dossiers returned in the period (NaN = not known: a unit that sends
    no dossier events, e.g. QR posters only).  Parent and root rows
    add up the units below them.  When some unit has dossiers, `meta` gets
    the QĐ 766 version and its plain sentence (`m766`, and in `notes`)."""
    import numpy as np
    import pandas as pd

    from analysis.schema import ROOT_LEVEL, UNIT_LEVEL

    if period is None or table.empty:
        return table
    counts = dossier_counts(period, unit_ids)
    if not counts:  # nobody sends dossier events: no such columns (the CSV path's table exactly)
        return table
    for c in DOSSIER_COLUMNS:
        table[c] = np.nan
    units = db.session.execute(sa.select(Unit.id, Unit.code, Unit.parent_id)).all()
    code_of = {u.id: u.code for u in units}
    parent_of = {u.id: u.parent_id for u in units}
    per_code: dict[str, dict] = {}
    total: dict[str, int] = {}
    for uid, c in counts.items():
        # The unit itself, then each ancestor (a cycle in the data cannot loop: `seen`).
        seen, node = set(), uid
        while node is not None and node not in seen:
            seen.add(node)
            agg = per_code.setdefault(code_of[node], {})
            for k, v in c.items():
                agg[k] = agg.get(k, 0) + v
            node = parent_of.get(node)
        for k, v in c.items():
            total[k] = total.get(k, 0) + v
    own = {code_of[uid]: c for uid, c in counts.items()}
    rows = []
    for code, level in zip(table["unit_code"], table["level"]):
        c = total if level == ROOT_LEVEL else (own.get(code) if level == UNIT_LEVEL else per_code.get(code))
        if not c:
            rows.append([np.nan] * len(DOSSIER_COLUMNS))
            continue
        r, points = m766(c["handled"], c["bad"])
        offered = c["offered"]
        rows.append([offered, c["rated"], (c["rated"] / offered) if offered else np.nan, c["handled"],
                     np.nan if r is None else r, points])
    table[list(DOSSIER_COLUMNS)] = pd.DataFrame(rows, columns=list(DOSSIER_COLUMNS), index=table.index)
    if meta is not None:
        note = m766_note()
        meta["m766"] = {"version": M766_VERSION, "dissatisfied_max": int(current_app.config["M766_DISSATISFIED_MAX"]),
                        "note": note}
        meta["notes"] = list(meta.get("notes") or []) + [note]
    return table


def m766_note() -> str:
    """The one plain sentence shown beside the survey index (translated)."""
    return _("The QĐ 766 figure counts every handled dossier as satisfied unless it was rated dissatisfied, "
             "drew a complaint or was late, so dossiers nobody rated raise it: it sits near 100% and is not "
             "the survey index.")


# ------------------------------------------------------------------ volumes in (POST /api/v1/volumes)

def store_volumes(client: ApiClient, rows: list, scope: set[int]) -> dict:
    """Typed volume rows sent by a system: {MaDonVi, TuNgay, DenNgay,
    MaLinhVuc, SoHoSo}, the CSV names (unit_code, period_start, period_end,
    stratum, transactions) or the Biểu 06 headers (`bieu06.API_NAMES`).  All or nothing: any bad row refuses the batch
    with its index, field and reason.  A row for a unit and days that already
    have a row replaces it.  Returns {"stored": n} or {"errors": [...]}."""
    errors, clean = [], []
    units = _unit_ids_by_code((next((r[k] for k in API_NAMES["unit_code"] if r.get(k)), None)
                               for r in rows if isinstance(r, dict)), scope)
    for i, r in enumerate(rows):
        try:
            clean.append(_volume_row(r, units))
        except EventError as exc:
            errors.append(_error(i, exc))
    if errors:
        return {"errors": errors}
    mixed = [c for c in clean if db.session.scalar(sa.select(sa.func.count()).select_from(Dossier).where(
        Dossier.unit_id == c["unit_id"], Dossier.returned_on >= c["period_start"],
        Dossier.returned_on <= c["period_end"]))]
    if mixed:
        code = next(k for k, v in units.items() if v == mixed[0]["unit_id"])
        return {"errors": [{"index": clean.index(mixed[0]), "status": "error", "code": "mixed_sources",
                            "field": "MaDonVi",
                            "message": _("Unit %(code)s already has dossier events returned in these days: its "
                                         "volumes come from the events. Keep one source per unit and period.",
                                         code=code)}]}
    for c in clean:
        db.session.execute(sa.delete(Volume).where(Volume.unit_id == c["unit_id"],
                                                   Volume.period_start == c["period_start"],
                                                   Volume.period_end == c["period_end"],
                                                   Volume.stratum == c["stratum"]))
        db.session.add(Volume(**c))
    record(actor=f"api:{client.name}", action="api.volumes", target_type="api_client", target_id=client.id,
           details={"rows": len(clean)})
    db.session.commit()
    return {"stored": len(clean)}


def _volume_row(r: Any, units: dict[str, int]) -> dict:
    if not isinstance(r, dict):
        raise EventError("not_an_object", None, _("Each row must be a JSON object."))

    def pick(*names):
        for n in names:
            if r.get(n) not in (None, ""):
                return n, r[n]
        return names[0], None

    name, code = pick(*API_NAMES["unit_code"])
    if code is None:
        raise EventError("missing", name, _("This field is required."))
    unit_id = units.get(str(code).strip())
    if unit_id is None:
        raise EventError("out_of_scope", name,
                         _("Unit %(code)s does not exist or is outside the scope of this API key.", code=code))
    days = []
    for names in (API_NAMES["period_start"], API_NAMES["period_end"]):
        name, value = pick(*names)
        try:
            days.append(dt.date.fromisoformat(str(value)) if value is not None else None)
        except ValueError:
            raise EventError("invalid_date", name, _("Expected a date YYYY-MM-DD.")) from None
        if days[-1] is None:
            raise EventError("missing", name, _("This field is required."))
    if days[1] < days[0]:
        raise EventError("invalid_value", "DenNgay", _("The end date is before the start date."))
    name, stratum = pick(*API_NAMES["stratum"])
    stratum = str(stratum).strip() if stratum is not None else ALL_STRATUM
    if len(stratum) > 60 or _CONTROL.search(stratum):
        raise EventError("invalid_value", name, _("At most %(n)d characters.", n=60))
    name, n = pick(*API_NAMES["transactions"])
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise EventError("invalid_value", name, _("Expected a whole number, 0 or more."))
    return {"unit_id": unit_id, "period_start": days[0], "period_end": days[1], "stratum": stratum or ALL_STRATUM,
            "transactions": n}
