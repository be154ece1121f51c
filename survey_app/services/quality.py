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
  COLLECT_DUPLICATE_WINDOW seconds (default 60): the later one is flagged;
- `identical_answers`: more than COLLECT_IDENTICAL_COUNT responses with exactly
  the same answers at one counter within COLLECT_IDENTICAL_WINDOW seconds.

`burst` applies to the channels with a device (QR, kiosk, online form);
`duplicate` is checked in batch only (online, a double post is stopped by the
form's idempotency key).  Only responses that take part in such a run beyond
the allowed count get the flag, with a reason.  Flags are added to existing ones; running the scan twice
changes nothing the second time.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Optional

from flask import current_app
from sqlalchemy import and_, case, func, literal, select

from analysis.schema import TYPED_CHANNELS

from ..extensions import db
from ..models import PATTERN_ITEMS, Answer, Response, answer_pattern

#: The channels with a device of their own (burst applies to them).
DEVICE_CHANNELS = ("qr", "kiosk", "online")
BURST, DUPLICATE, IDENTICAL = "burst", "duplicate", "identical_answers"

# flag -> (window setting, count setting); burst at a kiosk has its own (defaults in config.py).
_SETTINGS = {
    BURST: ("COLLECT_BURST_WINDOW", "COLLECT_BURST_COUNT"),
    "kiosk_" + BURST: ("COLLECT_KIOSK_BURST_WINDOW", "COLLECT_KIOSK_BURST_COUNT"),
    DUPLICATE: ("COLLECT_DUPLICATE_WINDOW", None),  # a duplicate: more than 1 (the original)
    IDENTICAL: ("COLLECT_IDENTICAL_WINDOW", "COLLECT_IDENTICAL_COUNT"),
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
    return f"duplicate: trùng toàn bộ nội dung với một phiếu khác tại quầy này trong {_span(lim.window)}"


# ------------------------------------------------------------------ online: one new response

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
    if counter_id is None or channel not in DEVICE_CHANNELS:
        return [], []
    burst, ident = limits(BURST, channel), limits(IDENTICAL)
    burst_window, ident_window = burst.window, ident.window

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
    flags = []
    if dev_hash and int(same_device or 0) >= burst.allowed:
        flags.append(BURST)
    if int(identical or 0) >= ident.allowed:
        flags.append(IDENTICAL)
    return sorted(flags), [reason(f, channel) for f in sorted(flags)]


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
    matches = sum((case((and_(Answer.item_key == k, Answer.value == v), 1), else_=0) for k, v in vector),
                  start=literal(0))
    same = (select(Answer.response_id).join(Response, Response.id == Answer.response_id)
            .where(Response.counter_id == counter_id, Response.channel.in_(TYPED_CHANNELS),
                   Response.received_at >= now - dt.timedelta(seconds=lim.window))
            .group_by(Answer.response_id)
            .having(and_(func.count() == len(vector), func.sum(matches) == len(vector))).subquery())
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
        select(Response.id, Response.counter_id, Response.channel, Response.device_hash, Response.submitted_at,
               Response.stratum, Response.age_group, Response.gender, Response.comment,
               Answer.item_key, Answer.value)
        .outerjoin(Answer, Answer.response_id == Response.id).where(*cond)
        .order_by(Response.counter_id, Response.submitted_at, Response.id)
    ).all()
    info: dict = {}
    for rid, cid, ch, dev, at, stratum, age, gender, comment, key, value in rows:
        r = info.setdefault(rid, {"counter": cid, "channel": ch, "dev": dev, "at": at, "answers": [],
                                  "rest": (ch, stratum, age, gender, comment)})
        if key is not None:
            r["answers"].append((key, value))
    by_device: dict = defaultdict(list)
    by_vector: dict = defaultdict(list)
    by_content: dict = defaultdict(list)
    for rid, r in info.items():
        if r["dev"]:
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
    for flag, groups in ((DUPLICATE, by_content), (IDENTICAL, by_vector)):
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
