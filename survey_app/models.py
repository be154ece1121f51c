"""The data model (SQLAlchemy 2.x typed models).

Nouns from DESIGN.md: an effective-dated unit tree, counters (QR service
points), versioned instruments with items, responses with a long answers
table, transaction volumes, reporting calendar and targets, users with a role
and a unit scope, an audit log, and import batches.

All timestamps are stored as timezone-aware UTC.  `submitted_at` of a response
is when the citizen submitted (UTC); reporting periods are cut in local time by
`analysis.periods`.
"""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Optional

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    event,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from analysis.schema import ALL_STRATUM, CHANNELS, ITEM_KEYS, UNIT_KINDS  # noqa: F401  (re-exported)

from .extensions import db

ROLES = ("counter_staff", "unit_leader", "analyst", "admin")


# The six 1–5 items every instrument shares (analysis.schema.ITEM_KEYS).
# `Response.pattern` packs a response's answers to them into one integer, so
# the statistics aggregate one table without a pivot.
PATTERN_ITEMS = ITEM_KEYS


def answer_pattern(answers) -> int:
    """Σ v_i · 6^i over PATTERN_ITEMS (v = 1–5, 0 = not answered)."""
    code = 0
    for i, key in enumerate(PATTERN_ITEMS):
        v = answers.get(key)
        if v is not None and 1 <= int(v) <= 5:
            code += int(v) * 6 ** i
    return code


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class UTCDateTime(TypeDecorator):
    """An aware datetime stored as UTC on every backend.

    PostgreSQL keeps `timestamptz`; SQLite has no time zones, so the value is
    converted to UTC before it is stored and marked UTC when read back.  A
    naive datetime is refused: its local time would be ambiguous.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime: store aware (UTC) timestamps only")
        value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


class Unit(db.Model):
    """A node of the effective-dated administrative tree.

    `valid_from` is the first day the unit exists, `valid_to` the first day it
    no longer exists (exclusive; NULL = still exists).  A merged or retired
    unit names its `successor`.
    """

    __tablename__ = "units"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name_vi: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(30))
    parent_id: Mapped[Optional[int]] = mapped_column(ForeignKey("units.id"), index=True)
    valid_from: Mapped[Optional[dt.date]] = mapped_column(Date)
    valid_to: Mapped[Optional[dt.date]] = mapped_column(Date)
    successor_id: Mapped[Optional[int]] = mapped_column(ForeignKey("units.id"))

    parent: Mapped[Optional["Unit"]] = relationship(
        remote_side=[id], foreign_keys=[parent_id], back_populates="children"
    )
    children: Mapped[list["Unit"]] = relationship(
        foreign_keys=[parent_id], back_populates="parent"
    )
    successor: Mapped[Optional["Unit"]] = relationship(
        remote_side=[id], foreign_keys=[successor_id], back_populates="predecessors"
    )
    #: The units merged into this one (their `successor` is it).
    predecessors: Mapped[list["Unit"]] = relationship(
        foreign_keys=[successor_id], back_populates="successor", order_by=lambda: (Unit.valid_to, Unit.code)
    )
    counters: Mapped[list["Counter"]] = relationship(back_populates="unit")

    __table_args__ = (
        CheckConstraint(
            "valid_to IS NULL OR valid_from IS NULL OR valid_to > valid_from",
            name="valid_range",
        ),
    )

    def name(self, locale: str = "vi") -> str:
        return (self.name_en or self.name_vi) if locale == "en" else self.name_vi

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"<Unit {self.code}>"


class Counter(db.Model):
    """A service point people rate (a desk of a one-stop department).

    `unit` is the unit it belongs to (commune, department, centre): the unit
    whose transaction volumes weight its responses.  Rotating the token
    (`token_version += 1`) invalidates every printed QR poster.
    """

    __tablename__ = "counters"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    name_vi: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    token_version: Mapped[int] = mapped_column(Integer, default=1)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    unit: Mapped[Unit] = relationship(back_populates="counters")

    def name(self, locale: str = "vi") -> str:
        return (self.name_en or self.name_vi) if locale == "en" else self.name_vi


class Instrument(db.Model):
    """A versioned questionnaire.  The definition (as loaded from
    `survey_app/questionnaires/*.json`) is kept verbatim; `checksum` detects a
    changed definition that was not given a new version."""

    __tablename__ = "instruments"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(60))
    version: Mapped[int] = mapped_column(Integer)
    title_vi: Mapped[str] = mapped_column(String(300))
    title_en: Mapped[str] = mapped_column(String(300), default="")
    element_index: Mapped[str] = mapped_column(String(20), default="direct")
    checksum: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("key", "version"),)

    @property
    def label(self) -> str:
        return f"{self.key}@{self.version}"


#: The partial indexes of `responses` (name, WHERE): comments, flagged or excluded, typed, paper batches.
RESPONSE_PARTIAL_INDEXES = (
    ("commented", "comment IS NOT NULL AND comment <> ''"),
    ("flagged", "flags <> '' OR excluded IS true"),
    ("typed", "channel IN ('paper', 'phone')"),
    ("batched", "paper_batch IS NOT NULL"),
)


class Response(db.Model):
    """One citizen's questionnaire.  Anonymous: no name, phone, ID, or IP.

    `unit` is the service unit (where the citizen was served, not where they
    live); `counter` the QR service point when known.  `stratum` is the
    procedure field (lĩnh vực) used for weighting cells, `_all` when unknown.
    """

    __tablename__ = "responses"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    counter_id: Mapped[Optional[int]] = mapped_column(ForeignKey("counters.id"), index=True)
    instrument_id: Mapped[int] = mapped_column(ForeignKey("instruments.id"))
    channel: Mapped[str] = mapped_column(String(10))
    submitted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    stratum: Mapped[str] = mapped_column(String(60), default=ALL_STRATUM)
    dossier_hash: Mapped[Optional[str]] = mapped_column(String(64), unique=True)
    idempotency_key: Mapped[Optional[str]] = mapped_column(String(64), unique=True)
    # Keyed hash of the first-party device cookie (burst detection); never an IP.
    device_hash: Mapped[Optional[str]] = mapped_column(String(64))
    age_group: Mapped[Optional[str]] = mapped_column(String(20))
    gender: Mapped[Optional[str]] = mapped_column(String(20))
    respondent: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)
    comment: Mapped[Optional[str]] = mapped_column(Text)
    # Quality: semicolon-separated sorted flags (duplicate, burst, identical_answers, ...)
    # answer_pattern() of the answers: derived, kept in step on insert.
    pattern: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    flags: Mapped[str] = mapped_column(String(200), default="")
    flag_reason: Mapped[Optional[str]] = mapped_column(Text)
    excluded: Mapped[bool] = mapped_column(Boolean, default=False)
    excluded_reason: Mapped[Optional[str]] = mapped_column(Text)
    import_batch_id: Mapped[Optional[int]] = mapped_column(ForeignKey("import_batches.id"))
    # Typed entry (paper / phone): the staff user who typed it and the paper batch label.
    entered_by_user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    paper_batch: Mapped[Optional[str]] = mapped_column(String(80))

    unit: Mapped[Unit] = relationship()
    counter: Mapped[Optional[Counter]] = relationship()
    instrument: Mapped[Instrument] = relationship()
    answers: Mapped[list["Answer"]] = relationship(
        back_populates="response", cascade="all, delete-orphan"
    )

    __table_args__ = (
        Index("ix_responses_unit_submitted", "unit_id", "submitted_at"),
        Index("ix_responses_submitted", "submitted_at"),
        # Recent responses at a counter (burst / identical-answer checks on submission).
        Index("ix_responses_counter_submitted", "counter_id", "submitted_at"),
        # Covering index for the statistics' GROUP BY (index-only scans on PostgreSQL).
        Index("ix_responses_stats", "submitted_at", "unit_id", "stratum", "excluded", "age_group", "pattern"),
        # The staff pages' lists and counts of a period (issue 14): partial, so they hold only those rows.
        *(Index(f"ix_responses_{name}", "submitted_at", "unit_id", postgresql_where=text(where),
                sqlite_where=text(where)) for name, where in RESPONSE_PARTIAL_INDEXES),
        CheckConstraint(
            "channel IN ('qr','kiosk','paper','online','phone','import')", name="channel"
        ),
    )


@event.listens_for(Response, "before_insert")
def _set_pattern(mapper, connection, target: Response) -> None:
    target.pattern = answer_pattern({a.item_key: a.value for a in target.answers})


class Answer(db.Model):
    """(response, item, value): a long table so SQL aggregates without JSON.
    Not answered / not applicable is no row."""

    __tablename__ = "answers"

    response_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("responses.id", ondelete="CASCADE"), primary_key=True
    )
    item_key: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[int] = mapped_column(SmallInteger)

    response: Mapped[Response] = relationship(back_populates="answers")


class Volume(db.Model):
    """Transactions (dossiers) of a unit in a period (both days inclusive),
    optionally per stratum (procedure field); `_all` = all fields."""

    __tablename__ = "volumes"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_end: Mapped[dt.date] = mapped_column(Date)
    stratum: Mapped[str] = mapped_column(String(60), default=ALL_STRATUM)
    transactions: Mapped[int] = mapped_column(Integer)
    import_batch_id: Mapped[Optional[int]] = mapped_column(ForeignKey("import_batches.id"))

    unit: Mapped[Unit] = relationship()

    __table_args__ = (
        UniqueConstraint("unit_id", "period_start", "period_end", "stratum"),
        CheckConstraint("transactions >= 0", name="transactions_nonneg"),
        CheckConstraint("period_end >= period_start", name="period_order"),
    )


class ReportingCalendar(db.Model):
    """The annual report cut-off (default 15/12, Asia/Ho_Chi_Minh)."""

    __tablename__ = "reporting_calendars"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(40), unique=True)
    cutoff_month: Mapped[int] = mapped_column(SmallInteger, default=12)
    cutoff_day: Mapped[int] = mapped_column(SmallInteger, default=15)
    timezone: Mapped[str] = mapped_column(String(60), default="Asia/Ho_Chi_Minh")
    calendar_periods: Mapped[bool] = mapped_column(Boolean, default=False)


class Target(db.Model):
    """Satisfaction target (fraction) for a report year, by unit kind or one unit."""

    __tablename__ = "targets"

    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int] = mapped_column(Integer)
    unit_kind: Mapped[Optional[str]] = mapped_column(String(30))
    unit_id: Mapped[Optional[int]] = mapped_column(ForeignKey("units.id"))
    target: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        UniqueConstraint("year", "unit_kind", "unit_id"),
        CheckConstraint("target > 0 AND target <= 1", name="target_range"),
    )


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    unit_id: Mapped[Optional[int]] = mapped_column(ForeignKey("units.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Incremented on logout / password change: every older session is refused.
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    # Where the alerts of the user's cases are e-mailed (unit leaders; services/cases.py).
    email: Mapped[Optional[str]] = mapped_column(String(254))

    unit: Mapped[Optional[Unit]] = relationship()

    __table_args__ = (
        CheckConstraint(
            "role IN ('counter_staff','unit_leader','analyst','admin')", name="role"
        ),
    )


class AuditLog(db.Model):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(60))
    target_type: Mapped[Optional[str]] = mapped_column(String(40))
    target_id: Mapped[Optional[str]] = mapped_column(String(80))
    details: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)


class ImportBatch(db.Model):
    """One accepted import file.  (kind, sha256) is unique, so the same file
    imported twice (or concurrently) is refused cleanly."""

    __tablename__ = "import_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(300))
    rows: Mapped[int] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("kind", "sha256"),)


EXCLUSION_ACTIONS = ("exclude", "include")
EXCLUSION_STATUSES = ("pending", "approved", "rejected", "withdrawn")


class ExclusionRequest(db.Model):
    """A request to leave a response out of the figures (`exclude`) or to count
    it again (`include`), and its four-eyes decision.

    Only an approved request changes `Response.excluded` (the state the
    statistics read); a pending one changes nothing.  The decider is never the
    requester (services.exclusions holds the rules).
    """

    __tablename__ = "exclusion_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("responses.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[str] = mapped_column(String(10), default="exclude")
    status: Mapped[str] = mapped_column(String(10), default="pending", index=True)
    reason: Mapped[str] = mapped_column(Text)
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    decision_note: Mapped[Optional[str]] = mapped_column(Text)

    response: Mapped[Response] = relationship()
    requested_by: Mapped[User] = relationship(foreign_keys=[requested_by_id])
    decided_by: Mapped[Optional[User]] = relationship(foreign_keys=[decided_by_id])

    __table_args__ = (
        CheckConstraint("action IN ('exclude','include')", name="action"),
        CheckConstraint("status IN ('pending','approved','rejected','withdrawn')", name="status"),
    )


# ---------------------------------------------------------------- publishing (closing periods, approval)

SNAPSHOT_STATES = ("open", "closed")
APPROVAL_STATES = ("draft", "submitted", "changes_requested", "accepted", "published")


class PeriodSnapshot(db.Model):
    """One numbered version of a closed report period for a subtree
    (`scope` = the subtree's root unit code, `*` = the whole tree).

    Version 1 is made by closing; reopening adds version n+1 in state `open`
    (with its reason) and closing again freezes it.  A closed version never
    changes: `table` holds the full results table (every unit and roll-up
    row, every column), `meta` the method version, parameters, data cut-off
    and counts left out, `input_hash` the sha256 of the canonical inputs
    (responses, answers, volumes, targets, units, parameters)."""

    __tablename__ = "period_snapshots"

    id: Mapped[int] = mapped_column(primary_key=True)
    period: Mapped[str] = mapped_column(String(40))
    scope: Mapped[str] = mapped_column(String(40))
    unit_id: Mapped[Optional[int]] = mapped_column(ForeignKey("units.id"))
    version: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(10))
    reason: Mapped[Optional[str]] = mapped_column(Text)
    opened_by: Mapped[Optional[str]] = mapped_column(String(80))
    opened_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    closed_by: Mapped[Optional[str]] = mapped_column(String(80))
    closed_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    method_version: Mapped[Optional[str]] = mapped_column(String(60))
    data_cutoff: Mapped[Optional[str]] = mapped_column(String(40))
    input_hash: Mapped[Optional[str]] = mapped_column(String(64))
    meta: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)
    table: Mapped[Optional[list[Any]]] = mapped_column(JSON)

    unit: Mapped[Optional[Unit]] = relationship()
    approvals: Mapped[list["UnitApproval"]] = relationship(back_populates="snapshot",
                                                           cascade="all, delete-orphan")

    __table_args__ = (
        UniqueConstraint("period", "scope", "version"),
        CheckConstraint("state IN ('open','closed')", name="state"),
        CheckConstraint("version >= 1", name="version_positive"),
    )


class UnitApproval(db.Model):
    """A unit's figures in one closed version on their way to the public page:
    draft → submitted (by the unit's leader, with a reflection) → accepted
    (by analysts outside the unit whose scope covers it; `PUBLISH_APPROVAL_LEVELS`
    of them) or changes_requested → published."""

    __tablename__ = "unit_approvals"

    id: Mapped[int] = mapped_column(primary_key=True)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("period_snapshots.id", ondelete="CASCADE"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    status: Mapped[str] = mapped_column(String(20), default="draft")
    reflection: Mapped[Optional[str]] = mapped_column(Text)
    submitted_by: Mapped[Optional[str]] = mapped_column(String(80))
    submitted_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    # Each acceptance: {"by": username, "scope": unit code or "*", "at": iso time}.
    acceptances: Mapped[Optional[list[Any]]] = mapped_column(JSON)
    review_note: Mapped[Optional[str]] = mapped_column(Text)
    reviewed_by: Mapped[Optional[str]] = mapped_column(String(80))
    reviewed_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    published_by: Mapped[Optional[str]] = mapped_column(String(80))
    published_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)

    snapshot: Mapped[PeriodSnapshot] = relationship(back_populates="approvals")
    unit: Mapped[Unit] = relationship()

    __table_args__ = (
        UniqueConstraint("snapshot_id", "unit_id"),
        CheckConstraint("status IN ('draft','submitted','changes_requested','accepted','published')",
                        name="status"),
        Index("ix_unit_approvals_status", "status", "published_at"),
    )


# ------------------------------------------------------------------ integration (issue 12, owner h-api)

class ApiClient(db.Model):
    """A one-stop system or counter device calling API v1.  The key is shown
    once and stored as its SHA-256 (a 256-bit random key needs no slow hash);
    `key_prefix` (the first characters) tells keys apart in listings.  The
    client sees and writes only its unit's subtree; `rights` is a
    comma-separated subset of events, volumes, links, results."""

    __tablename__ = "api_clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_prefix: Mapped[str] = mapped_column(String(16))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    rights: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)

    unit: Mapped[Unit] = relationship()

    @property
    def right_set(self) -> set[str]:
        return {r for r in self.rights.split(",") if r}


class Dossier(db.Model):
    """A dossier (hồ sơ) of the one-stop system, as its events left it.

    `code` is the one-stop system's MaHoSo: it never appears in a URL we
    mint or a log line: its rating link carries the opaque reference of
    `services.tokens.dossier_signature`.  `link_hash`, set with `offered_at`
    on the first link request, is the keyed hash a response through that
    link carries (`Response.dossier_hash`).  `officer` (NguoiXuLy) is staff personal
    data for internal views only, never in an API answer."""

    __tablename__ = "dossiers"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(100), unique=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    procedure_code: Mapped[Optional[str]] = mapped_column(String(100))
    stratum: Mapped[str] = mapped_column(String(60), default=ALL_STRATUM)
    channel: Mapped[Optional[str]] = mapped_column(String(40))
    status: Mapped[Optional[str]] = mapped_column(String(40))
    received_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    due_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    returned_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    returned_on: Mapped[Optional[dt.date]] = mapped_column(Date)  # local day of returned_at (periods)
    complaints: Mapped[int] = mapped_column(Integer, default=0)
    officer: Mapped[Optional[str]] = mapped_column(String(200))
    link_hash: Mapped[Optional[str]] = mapped_column(String(64), unique=True)
    offered_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_dossiers_unit_returned", "unit_id", "returned_on"),)


class DossierEvent(db.Model):
    """One event (SuKien) of a dossier at a time: unique, so a batch sent
    twice writes nothing the second time."""

    __tablename__ = "dossier_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(20))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    client_id: Mapped[Optional[int]] = mapped_column(ForeignKey("api_clients.id"))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("dossier_id", "event", "at"),
        CheckConstraint("event IN ('tiep_nhan','tra_ket_qua','cap_nhat','phan_anh')", name="event"),
    )


class ResponseCell(db.Model):
    """Sufficient statistics of the responses (issue 14): how many responses
    fall in each (unit, counter, procedure field, excluded, under 18, answer
    pattern, local half-month) cell.  Derived, never written by the application:
    database triggers on `responses` keep it exact in the same transaction as
    every insert, update and delete (services/aggregates.py), so the index is
    computed from this table without reading `responses`."""

    __tablename__ = "response_cells"
    __table_args__ = {"info": {"derived": True}}  # rebuilt from `responses`, not backed up

    unit_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    counter_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # 0 = none
    stratum: Mapped[str] = mapped_column(String(60), primary_key=True)
    excluded: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    under18: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    pattern: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    # First day (yyyymmdd) of the local half-month (+07:00): 1–14 or 15–end.
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    n: Mapped[int] = mapped_column(Integer, default=0)


class UnitMark(db.Model):
    """A unit's change counter: the response triggers add one for every
    response of the unit written, changed or deleted, so a stored figure
    knows whether the units it was computed from have changed since."""

    __tablename__ = "unit_marks"
    __table_args__ = {"info": {"derived": True}}

    unit_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer, default=0)


class FigureEntry(db.Model):
    """The persisted copy of a computed staff figure (staff/figures.py): a
    restarted server answers from here while the shared cache is cold."""

    __tablename__ = "figure_store"
    __table_args__ = {"info": {"derived": True}}

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    stamp: Mapped[str] = mapped_column(String(80))
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    recipe: Mapped[Optional[bytes]] = mapped_column(LargeBinary)
    value: Mapped[bytes] = mapped_column(LargeBinary)
# ------------------------------------------------------------------ alerts and cases (issue 14.6, owner h-alerts)

CASE_KINDS = ("dissatisfied", "reply_requested", "threshold")
CASE_STATUSES = ("new", "in_progress", "answered", "closed")


class Case(db.Model):
    """A case opened by an alert (services/cases.py): one dissatisfied rating, a
    comment whose citizen asked for a reply (`response_id`, one case per
    response), or a window of one unit's ratings over the threshold
    (`window_key`, one case per unit and window).  Its `owner` is a leader of
    the unit; `due_on` the local day it is due (working days); the recorded
    reply says what the unit answered, who and when.  `CaseEvent` rows are its
    history."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    kind: Mapped[str] = mapped_column(String(20))
    response_id: Mapped[Optional[uuid.UUID]] = mapped_column(
        ForeignKey("responses.id", ondelete="SET NULL"), unique=True)
    window_key: Mapped[Optional[str]] = mapped_column(String(40))
    reply_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(12), default="new")
    owner_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    due_on: Mapped[dt.date] = mapped_column(Date)
    # The threshold window: {"start", "end", "n", "dissatisfied"}.
    details: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)
    reply_text: Mapped[Optional[str]] = mapped_column(Text)
    replied_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    replied_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    closed_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)

    unit: Mapped[Unit] = relationship()
    response: Mapped[Optional[Response]] = relationship()
    owner: Mapped[Optional[User]] = relationship(foreign_keys=[owner_id])
    replied_by: Mapped[Optional[User]] = relationship(foreign_keys=[replied_by_id])
    events: Mapped[list["CaseEvent"]] = relationship(back_populates="case", cascade="all, delete-orphan",
                                                     order_by="CaseEvent.id")

    __table_args__ = (
        UniqueConstraint("unit_id", "window_key"),
        Index("ix_cases_unit_status", "unit_id", "status", "due_on"),
        CheckConstraint("kind IN ('dissatisfied','reply_requested','threshold')", name="kind"),
        CheckConstraint("status IN ('new','in_progress','answered','closed')", name="status"),
    )


class CaseEvent(db.Model):
    """One change of a case: opened, taken, a reply requested, answered, closed
    (`from_status` -> `to_status`, who and when)."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(80))
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(20))
    from_status: Mapped[Optional[str]] = mapped_column(String(12))
    to_status: Mapped[Optional[str]] = mapped_column(String(12))

    case: Mapped[Case] = relationship(back_populates="events")


class Job(db.Model):
    """One unit of background work (`services.jobs`): figures to recompute, a
    webhook or an e-mail to deliver, a large export to write.  A job is written
    in the same transaction as the change that needs it; a worker claims due
    jobs, runs their handler and records the outcome.  A failed run is retried
    with exponential back-off until its handler's attempt limit, then the job is
    `dead` (the dead-letter list) until someone re-queues it."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_due", "status", "run_after"),
        Index("ix_jobs_kind_key", "kind", "key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(60))
    key: Mapped[Optional[str]] = mapped_column(String(200))
    payload: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)
    #: pending | running | done | dead
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    run_after: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    last_error: Mapped[Optional[str]] = mapped_column(Text)
    result: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)


class Webhook(db.Model):
    """The outbound webhook of one API client (optional; `services.webhooks`):
    where to POST, the event types it wants, and the random salt its signing
    secret is derived from (secret = HMAC of the salt under SECRET_KEY, so a
    copy of the database alone cannot forge signatures; SECURITY.md)."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("api_clients.id", ondelete="CASCADE"), unique=True)
    url: Mapped[str] = mapped_column(String(500))
    events: Mapped[str] = mapped_column(String(200))  # comma-separated event types
    secret_salt: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    client: Mapped[ApiClient] = relationship()

    @property
    def event_set(self) -> set[str]:
        return {e for e in self.events.split(",") if e}


class WebhookDelivery(db.Model):
    """One event for one client's webhook: the exact body signed and sent
    (links only, never answer content), and its delivery log.  `status`:
    pending (waiting or retrying) | delivered | dead (attempts used up: the
    dead-letter list, re-sent by hand).  `job_id` is the background job that
    delivers it (`services.jobs`)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_status", "status", "created_at"),
        Index("ix_webhook_deliveries_client", "client_id", "created_at"),
        CheckConstraint("status IN ('pending','delivered','dead')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("api_clients.id", ondelete="CASCADE"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    event_type: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status: Mapped[Optional[int]] = mapped_column(Integer)
    last_error: Mapped[Optional[str]] = mapped_column(String(300))
    job_id: Mapped[Optional[int]] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_attempt_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    delivered_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)

    client: Mapped[ApiClient] = relationship()
    unit: Mapped[Unit] = relationship()
