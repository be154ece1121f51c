"""The submission service: the single place a response is created from a form.

Used by the citizen pages (`public/`: QR and kiosk) and by staff paper / phone
entry (`entry/`).  Three steps:

1. `questions(definition, locale)`: the instrument's items as form questions
   (texts vi/en come from the instrument definition).
2. `validate(definition, form)`: every posted field checked against the
   instrument (unknown fields or items, values out of range, repeated values,
   oversize text).  Returns the clean answers and field-level errors; nothing
   is written.
3. `create_response(...)`: one transaction writes the Response and its
   Answers.  An idempotency key (unique) makes a double tap or a retry store
   one row; a dossier hash (unique) is redeemed in the same transaction.
   Suspicious patterns (a burst from one device, identical answer vectors at
   one counter in a short window) are flagged with a reason, never dropped.
"""
from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import SmallInteger, String, and_, case, func, insert, literal, select, true
from sqlalchemy.exc import IntegrityError

from .extensions import db
from .models import PATTERN_ITEMS, Answer, Response, answer_pattern, utcnow
from .privacy import keyed_hash, mask_pii

# Form fields that carry no answer: the CSRF token, the idempotency key, the
# honeypot and the dossier signature.
CSRF_FIELD = "csrf_token"
KEY_FIELD = "k"
HONEYPOT_FIELD = "website"
DOSSIER_FIELD = "d"
TRANSPORT_FIELDS = (CSRF_FIELD, KEY_FIELD, HONEYPOT_FIELD, DOSSIER_FIELD)

NA = "na"
MAX_FIELD_CHARS = 200          # any non-text field
DEFAULT_TEXT_MAX = 1000
KEY_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
RESPONDENT_STORES = ("respondent",)


def new_key() -> str:
    """A fresh one-time idempotency key for a rendered form."""
    return uuid.uuid4().hex


def valid_key(key: Optional[str]) -> bool:
    return bool(key) and bool(KEY_RE.match(key))


def device_hash(cookie_value: Optional[str]) -> Optional[str]:
    if not cookie_value:
        return None
    return keyed_hash(current_app.config["SECRET_KEY"], cookie_value, "device")


def dossier_hash(dossier_ref: str) -> str:
    return keyed_hash(current_app.config["SECRET_KEY"], dossier_ref, "dossier")


# ------------------------------------------------------------------ questions

def _text(obj: Mapping[str, str], locale: str) -> str:
    return (obj.get("en") or obj.get("vi", "")) if locale == "en" else obj.get("vi", "")


@dataclass
class Option:
    value: str
    label: str
    na: bool = False


@dataclass
class Question:
    key: str
    kind: str
    legend: str
    short: str
    options: list[Option] = field(default_factory=list)
    max_length: Optional[int] = None
    element: Optional[str] = None


def questions(definition: dict, locale: str = "vi") -> list[Question]:
    """The instrument's items as questions in `locale` (vi default)."""
    elements = definition.get("elements", {})
    scale = definition.get("scale", {})
    yesno = definition.get("yesno", {
        "1": {"vi": "Có", "en": "Yes"}, "0": {"vi": "Không", "en": "No"},
        "na": {"vi": "Không biết", "en": "Don't know"}})
    out = []
    for it in definition["items"]:
        kind = it["kind"]
        legend = _text(it["text"], locale)
        el = it.get("element")
        if kind == "likert5" and el and el in elements:
            short = _text(elements[el], locale)
        elif it["key"] == "overall" and kind == "likert5":
            short = _("Overall satisfaction")
        else:
            short = legend
        q = Question(key=it["key"], kind=kind, legend=legend, short=short, element=el)
        if kind == "likert5":
            q.options = [Option(v, _text(scale.get(v, {"vi": v, "en": v}), locale)) for v in "12345"]
            q.options.append(Option(NA, _text(scale.get(NA, {"vi": "Không ý kiến", "en": "No opinion"}),
                                                locale), na=True))
        elif kind == "yesno":
            q.options = [Option(v, _text(yesno[v], locale)) for v in ("1", "0")]
            q.options.append(Option(NA, _text(yesno[NA], locale), na=True))
        elif kind in ("choice", "multi"):
            q.options = [Option(o["value"], _text(o, locale)) for o in it.get("options", [])]
        elif kind == "text":
            q.max_length = int(it.get("max_length", DEFAULT_TEXT_MAX))
        out.append(q)
    return out


# ------------------------------------------------------------------ validation

@dataclass
class Clean:
    """Validated answers of one questionnaire."""

    answers: dict[str, int] = field(default_factory=dict)
    stratum: str = "_all"
    age_group: Optional[str] = None
    gender: Optional[str] = None
    respondent: dict[str, str] = field(default_factory=dict)
    comment: Optional[str] = None

    def vector(self) -> tuple:
        return tuple(sorted(self.answers.items()))


@dataclass
class Validation:
    clean: Clean
    errors: dict[str, str]          # field key -> message ("" key: form-level)
    values: dict[str, Any]          # what was posted (to re-show the form)

    @property
    def ok(self) -> bool:
        return not self.errors


_CONTROL = dict.fromkeys(c for c in range(32) if c not in (9, 10))
_CONTROL[127] = None


def _normalise_text(value: str) -> str:
    """Newlines normalised; NUL and the other control characters (but tab and
    newline) removed: PostgreSQL refuses NUL in text, and none belongs in a comment."""
    return value.replace("\r\n", "\n").replace("\r", "\n").translate(_CONTROL).strip()


def posted_values(definition: dict, form) -> dict[str, Any]:
    """The posted answers (for re-showing a form with the citizen's answers kept)."""
    out: dict[str, Any] = {}
    for it in definition["items"]:
        if it["kind"] == "multi":
            out[it["key"]] = [v[:MAX_FIELD_CHARS] for v in form.getlist(it["key"])][:50]
        else:
            v = form.get(it["key"], "")
            limit = int(it.get("max_length", DEFAULT_TEXT_MAX)) * 2 if it["kind"] == "text" else MAX_FIELD_CHARS
            out[it["key"]] = v[:limit]
    return out


def validate(definition: dict, form, *, extra_fields: tuple[str, ...] = TRANSPORT_FIELDS,
             require_answer: bool = True) -> Validation:
    """Check a posted form (a werkzeug MultiDict) against the instrument."""
    errors: dict[str, str] = {}
    clean = Clean()
    items = {it["key"]: it for it in definition["items"]}

    unknown = [k for k in form.keys() if k not in items and k not in extra_fields]
    if unknown:
        names = ", ".join(sorted(k[:40] for k in unknown)[:5])
        errors[""] = _("The form contained fields this questionnaire does not have: %(names)s.", names=names)

    for key in extra_fields:
        if key in form and len(form.getlist(key)) > 1:
            errors[""] = _("The form was sent in an unexpected shape. Please send it again.")
        if len(form.get(key, "")) > 2 * MAX_FIELD_CHARS:
            errors[""] = _("The form was sent in an unexpected shape. Please send it again.")

    for key, it in items.items():
        kind = it["kind"]
        values = form.getlist(key)
        if kind != "multi" and len(values) > 1:
            errors[key] = _("Only one answer can be chosen here.")
            continue
        if kind == "multi":
            allowed = {o["value"] for o in it.get("options", [])}
            bad = [v for v in values if v not in allowed]
            if bad or len(values) > len(allowed):
                errors[key] = _("This answer is not one of the choices.")
                continue
            if values:
                for opt in sorted(allowed):
                    clean.answers[f"{key}_{opt}"] = 1 if opt in values else 0
            continue
        value = values[0] if values else ""
        if kind == "text":
            text = _normalise_text(value)
            limit = int(it.get("max_length", DEFAULT_TEXT_MAX))
            if len(text) > limit:
                errors[key] = _("Too long: at most %(max)s characters (now %(n)s).", max=f"{limit:,}".replace(",", "."),
                                n=f"{len(text):,}".replace(",", "."))
            elif text:
                clean.comment = text
            continue
        if len(value) > MAX_FIELD_CHARS:
            errors[key] = _("This answer is not one of the choices.")
            continue
        value = value.strip()
        if value in ("", NA) and kind in ("likert5", "yesno"):
            if it.get("required") and value == "":
                errors[key] = _("Please choose an answer.")
            continue
        if kind == "likert5":
            if value not in ("1", "2", "3", "4", "5"):
                errors[key] = _("This answer is not one of the choices.")
                continue
            clean.answers[key] = int(value)
        elif kind == "yesno":
            if value not in ("0", "1"):
                errors[key] = _("This answer is not one of the choices.")
                continue
            clean.answers[key] = int(value)
        elif kind == "choice":
            if value == "":
                if it.get("required"):
                    errors[key] = _("Please choose an answer.")
                continue
            if value not in {o["value"] for o in it.get("options", [])}:
                errors[key] = _("This answer is not one of the choices.")
                continue
            store = it.get("store", "respondent")
            if store == "stratum":
                clean.stratum = value
            elif store == "age_group":
                clean.age_group = value
            elif store == "gender":
                clean.gender = value
            else:
                clean.respondent[key] = value
        else:  # an item kind this service does not know: never store it silently
            errors[key] = _("This answer is not one of the choices.")

    if require_answer and not errors and not clean.answers:
        errors[""] = _("Please choose at least one rating before sending.")
    return Validation(clean=clean, errors=errors, values=posted_values(definition, form))


# ------------------------------------------------------------------ flags

def _cfg(name: str, default):
    return current_app.config.get(name, default)


def quality_flags(unit_id: int, counter_id: Optional[int], channel: str, dev_hash: Optional[str],
                  vector: tuple, now: dt.datetime) -> tuple[list[str], list[str]]:
    """Flags (sorted names) and reasons for a new response at a counter.

    burst: the same device (for a kiosk: the kiosk itself) already sent
    COLLECT_BURST_COUNT responses at this counter within the window.
    identical_answers: COLLECT_IDENTICAL_COUNT responses with exactly the same
    answers at this counter within COLLECT_IDENTICAL_WINDOW seconds.

    One round trip; both counts are computed in SQL over the counter's recent
    responses (bounded by the per-counter rate limit; the unit condition lets
    the (unit_id, submitted_at) index find only recent rows).  Answer vectors
    are compared through the packed `pattern` when they use only the six
    shared items (always for counter-quick), else through the answers table.
    """
    if counter_id is None or channel not in ("qr", "kiosk", "online"):
        return [], []
    if channel == "kiosk":
        burst_window = int(_cfg("COLLECT_KIOSK_BURST_WINDOW", 60))
        burst_count = int(_cfg("COLLECT_KIOSK_BURST_COUNT", 2))
    else:
        burst_window = int(_cfg("COLLECT_BURST_WINDOW", 600))
        burst_count = int(_cfg("COLLECT_BURST_COUNT", 3))
    ident_window = int(_cfg("COLLECT_IDENTICAL_WINDOW", 180))
    ident_count = int(_cfg("COLLECT_IDENTICAL_COUNT", 2))

    burst_since = now - dt.timedelta(seconds=burst_window)
    ident_since = now - dt.timedelta(seconds=ident_window)
    if vector and all(k in PATTERN_ITEMS for k, _ in vector):
        # The packed pattern of the six shared items identifies the answer vector:
        # one query over the counter's recent responses, no join.
        same_device, identical = db.session.connection().execute(_pattern_flags_stmt(), {
            "u": unit_id, "c": counter_id, "ch": channel, "d": dev_hash, "p": answer_pattern(dict(vector)),
            "since": min(burst_since, ident_since), "bsince": burst_since, "isince": ident_since}).one()
    else:
        same_device, identical = _portable_flag_counts(unit_id, counter_id, channel, dev_hash, vector,
                                                       burst_since, ident_since)
    return _flags_from_counts(channel, dev_hash, int(same_device or 0), int(identical or 0), burst_window,
                              burst_count, ident_window, ident_count)


_pattern_flags: list = []


def _pattern_flags_stmt():
    """Both counts in one statement with bound parameters (built and compiled once)."""
    if not _pattern_flags:
        from sqlalchemy import bindparam

        r = Response.__table__

        def count_if(*conds):
            return func.coalesce(func.sum(case((and_(*conds), 1), else_=0)), 0)

        _pattern_flags.append(
            select(count_if(r.c.channel == bindparam("ch"), r.c.device_hash == bindparam("d"),
                            r.c.submitted_at >= bindparam("bsince")),
                   count_if(r.c.pattern == bindparam("p"), r.c.submitted_at >= bindparam("isince")))
            .where(r.c.unit_id == bindparam("u"), r.c.counter_id == bindparam("c"),
                   r.c.submitted_at >= bindparam("since")))
    return _pattern_flags[0]


def _portable_flag_counts(unit_id, counter_id, channel, dev_hash, vector, burst_since,
                          ident_since) -> tuple[int, int]:
    burst_q = (select(func.count()).select_from(Response)
               .where(Response.unit_id == unit_id, Response.counter_id == counter_id, Response.channel == channel,
                      Response.device_hash == dev_hash,
                      Response.submitted_at >= burst_since)
               .scalar_subquery()) if dev_hash else literal(0)
    if vector:
        matches = sum((case((and_(Answer.item_key == k, Answer.value == v), 1), else_=0) for k, v in vector),
                      start=literal(0))
        same = (select(Answer.response_id)
                .join(Response, Response.id == Answer.response_id)
                .where(Response.unit_id == unit_id, Response.counter_id == counter_id,
                       Response.submitted_at >= ident_since)
                .group_by(Answer.response_id)
                .having(and_(func.count() == len(vector), func.sum(matches) == len(vector)))
                .subquery())
        ident_q = select(func.count()).select_from(same).scalar_subquery()
    else:
        ident_q = literal(0)
    return tuple(db.session.execute(select(burst_q, ident_q)).one())


def _flags_from_counts(channel, dev_hash, same_device, identical, burst_window, burst_count, ident_window,
                       ident_count) -> tuple[list[str], list[str]]:
    flags, reasons = [], []
    if dev_hash and same_device >= burst_count:
        flags.append("burst")
        who = "máy kiosk" if channel == "kiosk" else "một thiết bị"
        span = f"{burst_window // 60} phút" if burst_window >= 60 else f"{burst_window} giây"
        reasons.append(f"burst: {who} đã gửi {same_device + 1} phiếu tại quầy này trong {span}")
    if identical >= ident_count:
        flags.append("identical_answers")
        reasons.append(f"identical_answers: {identical + 1} phiếu có câu trả lời giống hệt nhau tại quầy "
                       f"này trong {max(ident_window // 60, 1)} phút")
    return sorted(flags), reasons


# ------------------------------------------------------------------ the insert

@dataclass
class Outcome:
    status: str                       # created | duplicate | dossier_used
    response_id: Optional[uuid.UUID] = None
    flags: str = ""


def create_response(*, unit_id: int, counter_id: Optional[int], instrument, clean: Clean,
                    channel: str, idempotency_key: Optional[str], dev_hash: Optional[str] = None,
                    dossier: Optional[str] = None, submitted_at: Optional[dt.datetime] = None,
                    check_flags: bool = True) -> Outcome:
    """Write one response with its answers in one transaction and commit.

    A second call with the same idempotency key returns `duplicate` (the first
    row's id) and writes nothing; a dossier already rated returns
    `dossier_used`.  Both are decided by unique constraints, so concurrent
    requests (several workers) cannot both win.
    """
    now = utcnow()
    submitted_at = submitted_at or now
    flags, reasons = (quality_flags(unit_id, counter_id, channel, dev_hash, clean.vector(), now)
                      if check_flags else ([], []))
    rid = uuid.uuid4()
    row = dict(
        id=rid, unit_id=unit_id, counter_id=counter_id, instrument_id=instrument.id, channel=channel,
        submitted_at=submitted_at, received_at=now, stratum=clean.stratum or "_all",
        dossier_hash=dossier, idempotency_key=idempotency_key, device_hash=dev_hash,
        age_group=clean.age_group, gender=clean.gender, respondent=clean.respondent or None,
        comment=mask_pii(clean.comment) if clean.comment else None,
        flags=";".join(flags), flag_reason="; ".join(reasons) or None, excluded=False,
        pattern=answer_pattern(clean.answers),  # what the ORM's before_insert event would set
    )
    try:
        _insert(row, clean.answers)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        if idempotency_key:
            existing = db.session.scalar(select(Response.id).where(Response.idempotency_key == idempotency_key))
            if existing is not None:
                return Outcome("duplicate", existing)
        if dossier and db.session.scalar(select(Response.id).where(Response.dossier_hash == dossier)):
            return Outcome("dossier_used")
        raise
    return Outcome("created", rid, ";".join(flags))


_pg_insert_stmts: dict[tuple[str, ...], Any] = {}


def _pg_insert(columns: tuple[str, ...]):
    """WITH r AS (INSERT INTO responses ... RETURNING id) INSERT INTO answers
    SELECT r.id, k, v FROM r, unnest(:keys, :vals): one statement, built and
    compiled once per column set."""
    stmt = _pg_insert_stmts.get(columns)
    if stmt is None:
        from sqlalchemy import ARRAY, bindparam

        table = Response.__table__
        r = (insert(table).values({name: bindparam(name, type_=table.c[name].type) for name in columns})
             .returning(table.c.id).cte("r"))
        pairs = func.unnest(bindparam("answer_keys", type_=ARRAY(String)),
                            bindparam("answer_values", type_=ARRAY(SmallInteger))).table_valued("k", "v").render_derived(name="v")
        stmt = insert(Answer.__table__).from_select(
            ["response_id", "item_key", "value"],
            select(r.c.id, pairs.c.k, pairs.c.v).select_from(r).join(pairs, true()))
        _pg_insert_stmts[columns] = stmt
    return stmt


def _insert(row: dict, answers: dict[str, int]) -> None:
    """Response + answers: on PostgreSQL one statement, elsewhere two Core
    inserts; the caller commits both at once."""
    conn = db.session.connection()
    if conn.dialect.name == "postgresql":
        conn.execute(_pg_insert(tuple(row)),
                     dict(row, answer_keys=list(answers), answer_values=list(answers.values())))
        return
    conn.execute(insert(Response.__table__), row)
    if answers:
        conn.execute(insert(Answer.__table__), [{"response_id": row["id"], "item_key": k, "value": val}
                                                for k, val in answers.items()])


def dossier_used(dossier: str) -> bool:
    return db.session.scalar(select(Response.id).where(Response.dossier_hash == dossier)) is not None


@dataclass(frozen=True)
class InstrumentRef:
    """What a form needs of an instrument version (immutable: a changed
    definition is a new version)."""

    id: int
    key: str
    version: int
    definition: dict


_instrument_cache: dict[tuple[str, str], tuple[float, InstrumentRef]] = {}


def latest_instrument(key: str) -> Optional[InstrumentRef]:
    """The latest version of instrument `key`, cached per process for
    COLLECT_INSTRUMENT_CACHE_SECONDS (default 60; 0 when testing): loading a
    new version is picked up within that time, and versions never change."""
    import time

    from .instruments import latest

    ttl = float(current_app.config.get("COLLECT_INSTRUMENT_CACHE_SECONDS", 0 if current_app.testing else 60))
    cache_key = (current_app.config["SQLALCHEMY_DATABASE_URI"], key)
    hit = _instrument_cache.get(cache_key)
    now = time.monotonic()
    if ttl > 0 and hit is not None and hit[0] > now:
        return hit[1]
    inst = latest(db.session, key)
    if inst is None:
        return None
    ref = InstrumentRef(inst.id, inst.key, inst.version, inst.definition)
    if ttl > 0:
        _instrument_cache[cache_key] = (now + ttl, ref)
    return ref
