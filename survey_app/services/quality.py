"""Quality flags on responses: flags (never drops, never excludes).

One rule set, applied in two places: online, `quality_flags` (called by
`responses.create_response`) flags a response as it arrives; in batch, `scan`
checks stored responses (imports, the demo seed, data stored before a rule
changed).  Both read their limits from `limits()` and write the reason
from `reason()`, so a response gets the same flag and the same words either
way, and a scan after online submissions adds nothing:

- `burst`: the same device sent more than COLLECT_BURST_COUNT responses at one
  counter within COLLECT_BURST_WINDOW seconds (kiosk: COLLECT_KIOSK_* settings);
- `duplicate`: a response whose whole content (answers, field, demographics,
  comment, channel) equals another's at the same counter within
  COLLECT_DUPLICATE_WINDOW seconds (default 60): the later one is flagged
  (a citizen going Back after the thank-you page and pressing Send again);
- `identical_answers`: more than COLLECT_IDENTICAL_COUNT responses with exactly
  the same answers at one counter within COLLECT_IDENTICAL_WINDOW seconds;
- `no_device_burst`: more than COLLECT_NO_DEVICE_COUNT responses sent without a
  valid device token (`devices.UNKNOWN`: no cookie, or an invented or altered
  one) at one counter within COLLECT_NO_DEVICE_WINDOW seconds;
- `over_volume`: more than `expected_hour(unit)` responses at one counter
  within an hour, the counter's busiest real hour estimated from its unit's
  transaction volumes (formula at `expected_hour`), or a rush of more than
  the busiest minute allows (`volume_limits`).  The rate limiter refuses
  beyond `counter_ceiling` (PUBLIC_CEILING_MULTIPLIER times that).

`burst`, `no_device_burst` and `over_volume` apply to the channels with a
device (QR, kiosk, online form); imported and seeded rows have no device hash
(NULL, "not recorded"), which is not an unknown device.  Only responses that
take part in such a run beyond the allowed count get the flag, with a reason.
Flags are added to existing ones; running the scan twice changes nothing the
second time.
"""
from __future__ import annotations

import datetime as dt
import math
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Optional

from flask import current_app
from sqlalchemy import Boolean, String, and_, case, func, literal, select

from analysis.schema import ALL_STRATUM, TYPED_CHANNELS

from ..extensions import db
from ..models import PATTERN_ITEMS, Answer, Counter, Response, Volume, answer_pattern, utcnow
from .devices import UNKNOWN

#: The channels with a device of their own (burst applies to them).
DEVICE_CHANNELS = ("qr", "kiosk", "online")
BURST, DUPLICATE, IDENTICAL = "burst", "duplicate", "identical_answers"
NO_DEVICE, OVER_VOLUME = "no_device_burst", "over_volume"
HOUR, MINUTE = 3600, 60

# flag -> (window setting, count setting); burst at a kiosk has its own (defaults in config.py).
_SETTINGS = {
    BURST: ("COLLECT_BURST_WINDOW", "COLLECT_BURST_COUNT"),
    "kiosk_" + BURST: ("COLLECT_KIOSK_BURST_WINDOW", "COLLECT_KIOSK_BURST_COUNT"),
    DUPLICATE: ("COLLECT_DUPLICATE_WINDOW", None),  # a duplicate: more than 1 (the original)
    IDENTICAL: ("COLLECT_IDENTICAL_WINDOW", "COLLECT_IDENTICAL_COUNT"),
    NO_DEVICE: ("COLLECT_NO_DEVICE_WINDOW", "COLLECT_NO_DEVICE_COUNT"),
}


@dataclass(frozen=True)
class Limit:
    """A rule's limit: more than `allowed` earlier responses within `window`
    seconds flags the next one."""

    window: int
    allowed: int


def limits(flag: str, channel: str = "") -> Limit:
    key = "kiosk_" + flag if flag == BURST and channel == "kiosk" else flag
    wname, cname = _SETTINGS[key]
    cfg = current_app.config
    return Limit(int(cfg[wname]), int(cfg[cname]) if cname else 1)


def _span(seconds: int) -> str:
    return f"{seconds // 60} phút" if seconds >= 60 and seconds % 60 == 0 else f"{seconds} giây"


def reason(flag: str, channel: str = "") -> str:
    """The stored reason of a flag (Vietnamese: it is shown to officials as data)."""
    lim = limits(flag, channel)
    if flag == BURST:
        who = "máy kiosk" if channel == "kiosk" else "một thiết bị"
        return f"burst: {who} đã gửi hơn {lim.allowed} phiếu tại quầy này trong {_span(lim.window)}"
    if flag == IDENTICAL:
        return (f"identical_answers: hơn {lim.allowed} phiếu có câu trả lời giống hệt nhau tại quầy này "
                f"trong {_span(lim.window)}")
    if flag == NO_DEVICE:
        return (f"no_device_burst: hơn {lim.allowed} phiếu gửi từ thiết bị không xác định (không có mã thiết bị "
                f"hợp lệ) tại quầy này trong {_span(lim.window)}")
    return f"duplicate: trùng toàn bộ nội dung với một phiếu khác tại quầy này trong {_span(lim.window)}"


def over_volume_reason(allowed: int, window: int) -> str:
    return (f"over_volume: hơn {allowed} phiếu tại quầy này trong {'1 giờ' if window == HOUR else '1 phút'} "
            f"(ước tính theo số hồ sơ của đơn vị)")


def volume_limits(unit_id: int) -> tuple[Limit, Limit]:
    """The `over_volume` limits of a unit's counters: its busiest hour E per hour,
    and max(COLLECT_VOLUME_MINUTE_FLOOR, ceil(COLLECT_VOLUME_MINUTE_FACTOR * E / 60)) per minute."""
    cfg = current_app.config
    expected = expected_hour(unit_id)
    minute = max(int(cfg["COLLECT_VOLUME_MINUTE_FLOOR"]),
                 math.ceil(float(cfg["COLLECT_VOLUME_MINUTE_FACTOR"]) * expected / 60))
    return Limit(HOUR, expected), Limit(MINUTE, minute)


# ------------------------------------------------------------------ a counter's real volume

_expected_cache: dict = {}


def _weekdays(start: dt.date, end: dt.date) -> int:
    days = (end - start).days + 1
    weeks, rest = divmod(days, 7)
    return weeks * 5 + sum(1 for i in range(rest) if (start.weekday() + i) % 7 < 5)


def expected_hour(unit_id: int, today: Optional[dt.date] = None) -> int:
    """The busiest real hour of any counter of this unit, estimated from its volumes:

        E = max(COLLECT_VOLUME_FLOOR,
                ceil(COLLECT_VOLUME_PEAK * max over periods of
                     transactions / (weekdays in the period * COLLECT_VOLUME_HOURS_PER_DAY)))

    over the unit's volume periods ending within the last 400 days (a period's
    transactions: its `_all` row or the sum of its strata, whichever is larger).
    The whole unit's volume is credited to each of its counters (never
    divided), so a unit's busiest desk is not under-estimated.  Cached per
    process for COLLECT_VOLUME_CACHE_SECONDS."""
    cfg = current_app.config
    ttl = float(cfg["COLLECT_VOLUME_CACHE_SECONDS"])
    key = (id(current_app._get_current_object()), "unit", unit_id)
    hit = _expected_cache.get(key)
    if ttl and hit and hit[0] > time.monotonic():
        return hit[1]
    today = today or utcnow().date()
    rows = db.session.execute(
        select(Volume.period_start, Volume.period_end,
               func.sum(case((Volume.stratum == ALL_STRATUM, Volume.transactions), else_=0)),
               func.sum(case((Volume.stratum != ALL_STRATUM, Volume.transactions), else_=0)))
        .where(Volume.unit_id == unit_id, Volume.period_end >= today - dt.timedelta(days=400))
        .group_by(Volume.period_start, Volume.period_end)).all()
    hours_per_day = float(cfg["COLLECT_VOLUME_HOURS_PER_DAY"])
    rate = max((max(int(a or 0), int(b or 0)) / (max(_weekdays(s, e), 1) * hours_per_day)
                for s, e, a, b in rows), default=0.0)
    value = max(int(cfg["COLLECT_VOLUME_FLOOR"]), math.ceil(float(cfg["COLLECT_VOLUME_PEAK"]) * rate))
    if ttl:
        _expected_cache[key] = (time.monotonic() + ttl, value)
    return value


def counter_ceiling(counter_id: int) -> Optional[int]:
    """Submissions per hour beyond which the rate limiter refuses a counter's form
    (PUBLIC_CEILING_MULTIPLIER * expected_hour of its unit); None = no ceiling
    (multiplier 0, or an unknown counter: the view answers 404 anyway)."""
    cfg = current_app.config
    if float(cfg["PUBLIC_CEILING_MULTIPLIER"]) <= 0:
        return None
    ttl = float(cfg["COLLECT_VOLUME_CACHE_SECONDS"])
    key = (id(current_app._get_current_object()), "counter", counter_id)
    hit = _expected_cache.get(key)
    if ttl and hit and hit[0] > time.monotonic():
        unit_id = hit[1]
    else:
        unit_id = db.session.scalar(select(Counter.unit_id).where(Counter.id == counter_id))
        if ttl:
            _expected_cache[key] = (time.monotonic() + ttl, unit_id)
    return unit_ceiling(unit_id)


def unit_ceiling(unit_id: Optional[int]) -> Optional[int]:
    """`counter_ceiling` of a counter of this unit (the caller knows the unit: no lookup)."""
    mult = float(current_app.config["PUBLIC_CEILING_MULTIPLIER"])
    if mult <= 0 or unit_id is None:
        return None
    return math.ceil(mult * expected_hour(unit_id))


# ------------------------------------------------------------------ online: one new response

@dataclass(frozen=True)
class Content:
    """What besides the answers makes two responses the same (the `duplicate` rule):
    field, demographics and the stored (masked) comment."""

    stratum: str
    age_group: Optional[str]
    gender: Optional[str]
    comment: Optional[str]


def quality_flags(unit_id: int, counter_id: Optional[int], channel: str, dev_hash: Optional[str],
                  vector: tuple, now: dt.datetime,
                  content: Optional[Content] = None) -> tuple[list[str], list[str]]:
    """Flags (sorted names) and reasons for a new response at a counter.

    The rules of the module docstring, counted over the counter's responses
    of the last hour (the longest window) that are already stored; `duplicate`
    only when `content` is given.  One round trip: every count is computed in
    SQL (bounded by the hourly ceiling of the rate limiter; the unit condition
    lets the (unit_id, submitted_at) index find only recent rows).  Answer
    vectors are compared through the packed `pattern` when they use only the
    six shared items (always for counter-quick), else through the answers table.
    """
    if counter_id is None or channel not in DEVICE_CHANNELS:
        return [], []
    burst, ident, nodev, dup = limits(BURST, channel), limits(IDENTICAL), limits(NO_DEVICE), limits(DUPLICATE)
    per_hour, per_minute = volume_limits(unit_id)
    since = {name: now - dt.timedelta(seconds=lim.window)
             for name, lim in ((BURST, burst), (IDENTICAL, ident), (NO_DEVICE, nodev), (DUPLICATE, dup))}
    since[OVER_VOLUME] = now - dt.timedelta(seconds=HOUR)
    msince = now - dt.timedelta(seconds=MINUTE)
    params = {"u": unit_id, "c": counter_id, "ch": channel, "d": dev_hash, "unknown": UNKNOWN,
              "since": min(since.values()), "bsince": since[BURST], "isince": since[IDENTICAL],
              "nsince": since[NO_DEVICE], "hsince": since[OVER_VOLUME], "dsince": since[DUPLICATE],
              "msince": msince, "check_dup": content is not None}
    c = content or Content(ALL_STRATUM, None, None, None)
    params.update(st=c.stratum, ag=c.age_group, ge=c.gender, co=c.comment)
    if vector and all(k in PATTERN_ITEMS for k, _ in vector):
        # The packed pattern of the six shared items identifies the answer vector:
        # one query over the counter's recent responses, no join.
        counts = db.session.connection().execute(
            _pattern_flags_stmt(), dict(params, p=answer_pattern(dict(vector)))).one()
    else:
        counts = _portable_flag_counts(params, vector)
    same_device, identical, no_device, hour, minute, duplicate = (int(x or 0) for x in counts)
    flags = []
    if dev_hash and dev_hash != UNKNOWN and same_device >= burst.allowed:
        flags.append(BURST)
    if identical >= ident.allowed:
        flags.append(IDENTICAL)
    if dev_hash == UNKNOWN and no_device >= nodev.allowed:
        flags.append(NO_DEVICE)
    volume = per_hour if hour >= per_hour.allowed else per_minute if minute >= per_minute.allowed else None
    if volume is not None:
        flags.append(OVER_VOLUME)
    if content is not None and duplicate >= dup.allowed:
        flags.append(DUPLICATE)
    flags.sort()
    return flags, [over_volume_reason(volume.allowed, volume.window) if f == OVER_VOLUME else reason(f, channel)
                   for f in flags]


_pattern_flags: list = []


def _count_if(*conds):
    return func.coalesce(func.sum(case((and_(*conds), 1), else_=0)), 0)


def _conditions(r):
    """The per-rule row conditions (bound parameters) shared by both statements."""
    from sqlalchemy import bindparam

    return {
        "device": (r.c.channel == bindparam("ch"), r.c.device_hash == bindparam("d"),
                   r.c.submitted_at >= bindparam("bsince")),
        "no_device": (r.c.device_hash == bindparam("unknown"), r.c.channel.in_(DEVICE_CHANNELS),
                      r.c.submitted_at >= bindparam("nsince")),
        "hour": (r.c.channel.in_(DEVICE_CHANNELS), r.c.submitted_at >= bindparam("hsince")),
        "minute": (r.c.channel.in_(DEVICE_CHANNELS), r.c.submitted_at >= bindparam("msince")),
        "content": (bindparam("check_dup", type_=Boolean), r.c.channel == bindparam("ch"),
                    r.c.stratum == bindparam("st"),
                    r.c.age_group.is_not_distinct_from(bindparam("ag", type_=String)),
                    r.c.gender.is_not_distinct_from(bindparam("ge", type_=String)),
                    r.c.comment.is_not_distinct_from(bindparam("co", type_=String)),
                    r.c.submitted_at >= bindparam("dsince")),
        "recent": (r.c.unit_id == bindparam("u"), r.c.counter_id == bindparam("c"),
                   r.c.submitted_at >= bindparam("since")),
    }


def _pattern_flags_stmt():
    """Every count in one statement with bound parameters (built and compiled once)."""
    if not _pattern_flags:
        from sqlalchemy import bindparam

        r = Response.__table__
        cond = _conditions(r)
        same_pattern = r.c.pattern == bindparam("p")
        _pattern_flags.append(
            select(_count_if(*cond["device"]),
                   _count_if(same_pattern, r.c.submitted_at >= bindparam("isince")),
                   _count_if(*cond["no_device"]),
                   _count_if(*cond["hour"]),
                   _count_if(*cond["minute"]),
                   _count_if(same_pattern, *cond["content"]))
            .where(*cond["recent"]))
    return _pattern_flags[0]


def _portable_flag_counts(params: dict, vector: tuple) -> tuple:
    """The same counts for answers outside the packed pattern (the answers table)."""
    from sqlalchemy import bindparam

    r = Response.__table__
    cond = _conditions(r)
    base = select(_count_if(*cond["device"]), _count_if(*cond["no_device"]), _count_if(*cond["hour"]),
                  _count_if(*cond["minute"])).where(*cond["recent"])
    device, no_device, hour, minute = db.session.execute(base, params).one()
    identical = duplicate = 0
    if vector:
        same = _same_answers(vector, r, *cond["recent"])
        recent = select(r).where(r.c.id.in_(select(same.c.response_id))).subquery()
        rc = _conditions(recent)
        identical, duplicate = db.session.execute(
            select(_count_if(recent.c.submitted_at >= bindparam("isince")),
                   _count_if(*rc["content"])).select_from(recent), params).one()
    return device, identical, no_device, hour, minute, duplicate


def _same_answers(vector: tuple, table, *conditions):
    """Subquery of the ids of the responses (`table` rows meeting `conditions`)
    whose answers are exactly `vector`, through the answers table."""
    matches = sum((case((and_(Answer.item_key == k, Answer.value == v), 1), else_=0) for k, v in vector),
                  start=literal(0))
    return (select(Answer.response_id).join(table, table.c.id == Answer.response_id).where(*conditions)
            .group_by(Answer.response_id)
            .having(and_(func.count() == len(vector), func.sum(matches) == len(vector))).subquery())


# ------------------------------------------------------------------ typed: paper / phone entry by staff

def typed_flags(counter_id: int, vector: tuple, now: dt.datetime) -> tuple[list[str], list[str]]:
    """`identical_answers` for a questionnaire typed by staff (paper, phone):
    the same rule and limits as online, on the typing clock -- more than
    COLLECT_IDENTICAL_COUNT typed questionnaires with exactly these answers
    received at this counter within COLLECT_IDENTICAL_WINDOW seconds.  (The
    date on a paper questionnaire is only a day, so `received_at` is the time
    axis here; `burst` needs a citizen's device and does not apply: one clerk
    types many papers.)"""
    if not vector:
        return [], []
    lim = limits(IDENTICAL)
    r = Response.__table__
    same = _same_answers(vector, r, r.c.counter_id == counter_id, r.c.channel.in_(TYPED_CHANNELS),
                         r.c.received_at >= now - dt.timedelta(seconds=lim.window))
    if int(db.session.scalar(select(func.count()).select_from(same)) or 0) >= lim.allowed:
        return [IDENTICAL], [reason(IDENTICAL)]
    return [], []


# ------------------------------------------------------------------ batch: stored responses

def _window_hits(times: list[dt.datetime], window: int, allowed: int) -> list[int]:
    """Indexes i such that more than `allowed` earlier items lie within `window`
    seconds before times[i] (times sorted ascending)."""
    hits, lo = [], 0
    for i, t in enumerate(times):
        while (t - times[lo]).total_seconds() > window:
            lo += 1
        if i - lo >= allowed:
            hits.append(i)
    return hits


def scan(start: Optional[dt.datetime] = None, end: Optional[dt.datetime] = None, actor: str = "cli") -> dict:
    """Flag suspicious responses in [start, end); returns counts per flag."""
    cond = [Response.counter_id.is_not(None)]
    if start is not None:
        cond.append(Response.submitted_at >= start)
    if end is not None:
        cond.append(Response.submitted_at < end)
    rows = db.session.execute(
        select(Response.id, Response.unit_id, Response.counter_id, Response.channel, Response.device_hash,
               Response.submitted_at,
               Response.stratum, Response.age_group, Response.gender, Response.comment,
               Answer.item_key, Answer.value)
        .outerjoin(Answer, Answer.response_id == Response.id).where(*cond)
        .order_by(Response.counter_id, Response.submitted_at, Response.id)
    ).all()
    info: dict = {}
    for rid, uid, cid, ch, dev, at, stratum, age, gender, comment, key, value in rows:
        r = info.setdefault(rid, {"unit": uid, "counter": cid, "channel": ch, "dev": dev, "at": at, "answers": [],
                                  "rest": (ch, stratum, age, gender, comment)})
        if key is not None:
            r["answers"].append((key, value))
    by_device: dict = defaultdict(list)
    by_vector: dict = defaultdict(list)
    by_content: dict = defaultdict(list)
    no_device: dict = defaultdict(list)
    by_counter: dict = defaultdict(list)
    for rid, r in info.items():
        if r["channel"] in DEVICE_CHANNELS:
            by_counter[(r["unit"], r["counter"])].append((r["at"], rid))
            if r["dev"] == UNKNOWN:
                no_device[r["counter"]].append((r["at"], rid))
        if r["dev"] and r["dev"] != UNKNOWN:
            by_device[(r["counter"], r["channel"], r["dev"])].append((r["at"], rid))
        if r["answers"]:
            vector = tuple(sorted(r["answers"]))
            by_vector[(r["counter"], vector)].append((r["at"], rid))
            by_content[(r["counter"], vector, r["rest"])].append((r["at"], rid))
    new_flags: dict = defaultdict(dict)
    for (cid, ch, dev), items in by_device.items():
        if ch not in DEVICE_CHANNELS:
            continue
        items.sort()
        lim = limits(BURST, ch)
        for i in _window_hits([t for t, _ in items], lim.window, lim.allowed):
            new_flags[items[i][1]][BURST] = reason(BURST, ch)
    for (uid, _cid), items in by_counter.items():
        items.sort()
        times = [t for t, _ in items]
        for lim in reversed(volume_limits(uid)):  # the hour's reason wins where both apply (as online)
            for i in _window_hits(times, lim.window, lim.allowed):
                new_flags[items[i][1]][OVER_VOLUME] = over_volume_reason(lim.allowed, lim.window)
    for flag, groups in ((DUPLICATE, by_content), (IDENTICAL, by_vector), (NO_DEVICE, no_device)):
        lim = limits(flag)
        for key, items in groups.items():
            items.sort()
            for i in _window_hits([t for t, _ in items], lim.window, lim.allowed):
                new_flags[items[i][1]][flag] = reason(flag)
    counts: dict = defaultdict(int)
    changed = 0
    for rid, flags in new_flags.items():
        resp = db.session.get(Response, rid)
        have = set(filter(None, (resp.flags or "").split(";")))
        added = set(flags) - have
        if not added:
            continue
        resp.flags = ";".join(sorted(have | added))
        reasons = [flags[f] for f in sorted(added)]
        resp.flag_reason = "; ".join(filter(None, [resp.flag_reason] + reasons))
        changed += 1
        for f in added:
            counts[f] += 1
    if changed:
        from .audit import record

        record(actor=actor, action="quality_scan", target_type="responses",
               details={"flagged": changed, **counts})
    db.session.commit()
    return dict(counts, responses_scanned=len(info), responses_flagged=changed)
