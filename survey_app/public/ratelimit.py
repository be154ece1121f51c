"""The citizen forms' rate limits, all windows of a request counted in one storage call.

Flask-Limiter counts each decorated limit with its own storage round trip: a
form POST has four windows (per IP, per counter a minute and the hourly
ceiling, per device), so with Redis four round trips per rating, ~30% of the
POST's CPU (issue 13 item 9).  Here the view names its windows and `hit()`
counts them with the app's Flask-Limiter instance (`extensions.limiter`: its
storage, strategy, key prefix, in-memory fallback and `RATELIMIT_ENABLED`)
exactly as Flask-Limiter would, with the same storage keys, but

- on Redis with the fixed-window strategy (the default) in ONE round trip: a
  Lua script increments the windows in order and stops at the first breached
  one (Flask-Limiter's `RATELIMIT_FAIL_ON_FIRST_BREACH`, its default);
- elsewhere (memory://, the embedded default; another strategy or storage)
  one `strategy.hit` per window, in the same order (in-process: no round trip).

Order: windows of shorter granularity first, declared order within one
(Flask-Limiter sorts a view's limits the same way), so a refused POST has
counted in the windows before the breached one and in none after it.  Keys
never hold a raw IP (the key functions of public/routes.py hash it).
"""
from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from typing import Optional, Sequence

from flask import request
from limits import RateLimitItem, parse_many
from limits.storage import RedisStorage
from limits.storage.redis_cluster import RedisClusterStorage
from limits.strategies import FixedWindowRateLimiter

from ..extensions import limiter

log = logging.getLogger(__name__)

#: KEYS: the windows' prefixed keys; ARGV: expiry and allowed amount of each, in pairs.
#: Returns 0 when every window took its hit, else the 1-based index of the first
#: window over its limit (the windows after it are not counted).
_LUA_HIT_ALL = """
for i, key in ipairs(KEYS) do
    local current = redis.call("incrby", key, 1)
    if current == 1 then
        redis.call("expire", key, ARGV[2 * i - 1])
    end
    if current > tonumber(ARGV[2 * i]) then
        return i
    end
end
return 0
"""

#: Seconds between two checks whether a dead storage is back (while the in-memory fallback counts).
RECHECK_SECONDS = 5.0


@dataclass(frozen=True)
class Window:
    """One limit of one request: `scope` names the limit (e.g. "public-ip"), `key` the
    client it counts (e.g. "ip:<hash>"), `item` the amount per period."""

    scope: str
    key: str
    item: RateLimitItem

    def identifiers(self, endpoint: str, prefix: str) -> list[str]:
        # Flask-Limiter's identifiers of a decorated, non-shared limit: [prefix,] key, "endpoint:scope"
        ids = [self.key, f"{endpoint}:{self.scope}"]
        return [prefix, *ids] if prefix else ids


@functools.lru_cache(maxsize=256)
def parse(limit_string: str) -> tuple[RateLimitItem, ...]:
    """Flask-Limiter syntax ("10/minute", "60/minute;500/hour"), parsed once per process."""
    return tuple(parse_many(limit_string))


def windows(scope: str, key: str, limit_string: Optional[str]) -> list[Window]:
    """The windows of one limit string for one key (none for an empty string)."""
    return [Window(scope, key, item) for item in parse(limit_string)] if limit_string else []


def ordered(ws: Sequence[Window]) -> list[Window]:
    """Shorter granularity first, declared order within one granularity."""
    return sorted(ws, key=lambda w: w.item.GRANULARITY.seconds)


_scripts: dict[int, object] = {}
_last_recheck = [0.0]


def _script(storage: RedisStorage):
    script = _scripts.get(id(storage))
    if script is None:
        script = _scripts[id(storage)] = storage.get_connection().register_script(_LUA_HIT_ALL)
    return script


def _hit_with(strategy, ws: list[Window], endpoint: str, prefix: str) -> Optional[Window]:
    storage = strategy.storage
    if type(strategy) is FixedWindowRateLimiter and isinstance(storage, RedisStorage) \
            and not isinstance(storage, RedisClusterStorage):
        keys, argv = [], []
        for w in ws:
            keys.append(storage.prefixed_key(w.item.key_for(*w.identifiers(endpoint, prefix))))
            argv += [w.item.get_expiry(), w.item.amount]
        breached = int(_script(storage)(keys=keys, args=argv))
        return ws[breached - 1] if breached else None
    for w in ws:
        if not strategy.hit(w.item, *w.identifiers(endpoint, prefix)):
            return w
    return None


def _recheck_storage() -> None:
    """While the in-memory fallback counts, see now and then whether the storage is back."""
    now = time.monotonic()
    if now - _last_recheck[0] < RECHECK_SECONDS:
        return
    _last_recheck[0] = now
    if limiter.storage.check():
        log.info("rate limit storage recovered")
        limiter._storage_dead = False


def hit(ws: Sequence[Window]) -> Optional[Window]:
    """Count this request in every window (in `ordered` order); the first window over its
    limit (the request is refused), or None.  Nothing is counted when rate limiting is
    off (RATELIMIT_ENABLED).  A storage that fails switches to Flask-Limiter's in-memory
    fallback (RATELIMIT_IN_MEMORY_FALLBACK_ENABLED), else the error is swallowed
    (RATELIMIT_SWALLOW_ERRORS: the request goes on) or raised."""
    if not ws or not (limiter.enabled and limiter.initialized):
        return None
    ws = ordered(ws)
    endpoint = request.endpoint or ""
    prefix = limiter._key_prefix or ""
    if limiter._storage_dead:
        _recheck_storage()
    try:
        breached = _hit_with(limiter.limiter, ws, endpoint, prefix)
    except Exception:  # noqa: BLE001 - the storage's errors: fall back as Flask-Limiter does
        if limiter._in_memory_fallback_enabled and not limiter._storage_dead:
            log.warning("rate limit storage unreachable - falling back to in-memory storage")
            limiter._storage_dead = True
            _last_recheck[0] = time.monotonic()
            breached = _hit_with(limiter.limiter, ws, endpoint, prefix)
        elif limiter._swallow_errors:
            log.exception("failed to rate limit; swallowing the error")
            return None
        else:
            raise
    if breached is not None:
        log.info("ratelimit %s (%s) exceeded at endpoint: %s", breached.item, breached.key, endpoint)
    return breached
