"""What the citizen form's hot path keeps between requests (issue 13 item 9).

A rating costs a form GET, a POST and a thank-you GET; on two cores every
millisecond of CPU counts.  Three savings, each bounded and each off when
TESTING (the tests see every change at once; tests/public/test_hotpath.py
turns them on):

- `counter_ref(token)`: the signed counter token is verified once per request
  (the rate-limit keys, the hourly ceiling and the view all need it).
- `light_counter(counter_id)`: the few columns the form needs to accept a
  token (id, unit, token version, active, the unit's end date and names: all
  the thank-you page shows), kept per
  process for COLLECT_COUNTER_CACHE_SECONDS: a rotated or deactivated counter
  answers 410 at most that many seconds late in each worker.
- `cached_page(parts, render, fresh)`: a rendered form kept per process for
  COLLECT_PAGE_CACHE_SECONDS, with placeholders where the per-citizen values
  go (CSRF token, idempotency key), which are filled in on every request.
  Only pages whose whole input is `parts` may use it: never a page that shows
  posted answers, errors or an alert.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from typing import Callable, NamedTuple, Optional

from flask import current_app, g
from sqlalchemy import select

from ..extensions import db
from ..models import Counter, Unit
from ..services.tokens import CounterRef, parse_counter_token

#: Stand-ins rendered in place of the per-request values (never escaped: letters only).
CSRF_PLACEHOLDER = "SIPASxCSRFxPLACEHOLDERx"
KEY_PLACEHOLDER = "SIPASxKEYxPLACEHOLDERx"
MAX_COUNTERS = 20_000
MAX_PAGES = 2_000

_MISSING = object()


def counter_ref(token: str) -> Optional[CounterRef]:
    """`parse_counter_token(token)`, verified once per request."""
    memo = g.setdefault("sipas_counter_refs", {})
    ref = memo.get(token, _MISSING)
    if ref is _MISSING:
        ref = memo[token] = parse_counter_token(token)
    return ref


class LightUnit(NamedTuple):
    name_vi: str
    name_en: Optional[str]

    def name(self, locale: str = "vi") -> str:  # as models.Unit.name
        return (self.name_en or self.name_vi) if locale == "en" else self.name_vi


class LightCounter(NamedTuple):
    id: int
    unit_id: int
    token_version: int
    active: bool
    valid_to: object  # the unit's end date (None: current)
    unit_name_vi: str = ""
    unit_name_en: Optional[str] = None

    @property
    def unit(self) -> LightUnit:
        """The unit's names (what the thank-you page shows), no query."""
        return LightUnit(self.unit_name_vi, self.unit_name_en)


_counters: dict = {}


def _ttl(name: str) -> float:
    return float(current_app.config[name] or 0)


def light_counter(counter_id: int) -> Optional[LightCounter]:
    """The counter's light row (None: no such counter), cached for COLLECT_COUNTER_CACHE_SECONDS."""
    ttl = _ttl("COLLECT_COUNTER_CACHE_SECONDS")
    key = (current_app.config["SQLALCHEMY_DATABASE_URI"], counter_id)
    now = time.monotonic()
    hit = _counters.get(key)
    if ttl > 0 and hit is not None and hit[0] > now:
        return hit[1]
    row = db.session.connection().execute(
        select(Counter.id, Counter.unit_id, Counter.token_version, Counter.active, Unit.valid_to, Unit.name_vi,
               Unit.name_en)
        .join(Unit, Unit.id == Counter.unit_id).where(Counter.id == counter_id)).first()
    value = LightCounter(*row) if row is not None else None
    if ttl > 0:
        if len(_counters) >= MAX_COUNTERS:
            _counters.clear()
        _counters[key] = (now + ttl, value)
    return value


_pages: OrderedDict = OrderedDict()


def cached_page(parts: tuple, render: Callable[[str, str], str], fresh: dict[str, str]) -> str:
    """The page `render(csrf, key)` for `parts`, with `fresh["csrf"]` and `fresh["key"]` filled in.

    `parts` must name everything the page depends on besides those two values
    (template, instrument version, counter, language, path and query...).  The
    inline stylesheet's CSP hash is restored on a cache hit (errors.inline_css)."""
    ttl = _ttl("COLLECT_PAGE_CACHE_SECONDS")
    if ttl <= 0:
        return render(fresh["csrf"], fresh["key"])
    key = (current_app.config["SQLALCHEMY_DATABASE_URI"],) + parts
    now = time.monotonic()
    hit = _pages.get(key)
    if hit is None or hit[0] <= now:
        html = render(CSRF_PLACEHOLDER, KEY_PLACEHOLDER)
        if CSRF_PLACEHOLDER not in html or KEY_PLACEHOLDER not in html:
            return render(fresh["csrf"], fresh["key"])        # a page that does not use them: not cached
        hit = (now + ttl, html, g.get("inline_css_hash"))
        _pages[key] = hit
        if len(_pages) > MAX_PAGES:
            _pages.popitem(last=False)
    else:
        try:
            _pages.move_to_end(key)
        except KeyError:  # evicted by another thread meanwhile
            pass
        if hit[2]:
            g.inline_css_hash = hit[2]
    return hit[1].replace(CSRF_PLACEHOLDER, fresh["csrf"]).replace(KEY_PLACEHOLDER, fresh["key"])
