"""Batch quality scan of stored responses: flags (never drops, never excludes).

The submission path (`collect.quality_flags`) flags a response as it arrives;
responses that came another way (imports, the demo seed, data stored before a
rule changed) are checked here with the same rules and settings:

- `burst`: the same device sent more than COLLECT_BURST_COUNT responses at one
  counter within COLLECT_BURST_WINDOW seconds (kiosk: COLLECT_KIOSK_* settings);
- `duplicate`: a response whose whole content (answers, field, demographics,
  comment, channel) equals another's at the same counter within
  COLLECT_DUPLICATE_WINDOW seconds (default 60): the later one is flagged;
- `identical_answers`: more than COLLECT_IDENTICAL_COUNT responses with exactly
  the same answers at one counter within COLLECT_IDENTICAL_WINDOW seconds.

Only responses that take part in such a run beyond the allowed count get the
flag, with a reason.  Flags are added to existing ones; running the scan twice
changes nothing the second time.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Optional

from flask import current_app
from sqlalchemy import select

from .extensions import db
from .models import Answer, Response


def _cfg(name: str, default: int) -> int:
    return int(current_app.config.get(name, default))


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
        items.sort()
        kiosk = ch == "kiosk"
        window = _cfg("COLLECT_KIOSK_BURST_WINDOW", 60) if kiosk else _cfg("COLLECT_BURST_WINDOW", 600)
        allowed = _cfg("COLLECT_KIOSK_BURST_COUNT", 2) if kiosk else _cfg("COLLECT_BURST_COUNT", 3)
        for i in _window_hits([t for t, _ in items], window, allowed):
            new_flags[items[i][1]]["burst"] = (f"burst: một thiết bị đã gửi hơn {allowed} phiếu tại quầy này "
                                               f"trong {window} giây (quét lô)")
    window = _cfg("COLLECT_DUPLICATE_WINDOW", 60)
    for key, items in by_content.items():
        items.sort()
        for i in _window_hits([t for t, _ in items], window, 1):
            new_flags[items[i][1]]["duplicate"] = (
                f"duplicate: trùng toàn bộ nội dung với một phiếu khác tại quầy này trong {window} giây (quét lô)")
    window = _cfg("COLLECT_IDENTICAL_WINDOW", 180)
    allowed = _cfg("COLLECT_IDENTICAL_COUNT", 2)
    for key, items in by_vector.items():
        items.sort()
        for i in _window_hits([t for t, _ in items], window, allowed):
            new_flags[items[i][1]]["identical_answers"] = (
                f"identical_answers: hơn {allowed} phiếu giống hệt nhau tại quầy này trong {window} giây (quét lô)")
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
