"""Device tokens: a first-party cookie the server issues and signs.

The citizen form sets `sipas_dev` to a random device id signed with the app's
SECRET_KEY (itsdangerous, salt "device").  Only a token that verifies names a
device: an invented, altered or foreign cookie counts as no device at all, so
rotating made-up cookies buys a script nothing.  Then

- the per-device rate limit falls back to the (hashed) client IP at the
  counter (public/routes.py `key_device`);
- the response is stored with `device_hash = UNKNOWN`, and a run of such
  responses at one counter is flagged `no_device_burst` (services/quality.py).

A token carries the time it was issued.  A form sent less than
PUBLIC_MIN_FILL_SECONDS after its device's token was issued (a script that
fetches a fresh token and posts at once; nobody reads and answers the form that
fast) is shown again instead of being stored (public/routes.py); `age()`.

The device hash stored on a response is a keyed hash of the verified device id
only (never of the cookie as sent, never of an IP).  Responses written by
imports and the demo seed have no device hash (NULL): their device is not
unknown, it was never recorded.
"""
from __future__ import annotations

import secrets
import time
from typing import Optional

from flask import current_app, g, request
from itsdangerous import BadData, URLSafeTimedSerializer

from .privacy import keyed_hash

COOKIE = "sipas_dev"
#: `Response.device_hash` of a response sent without a valid device token.
UNKNOWN = "unknown"
_SALT = "device"
_MAX_LEN = 200  # a real token is about 60 characters; longer is never parsed


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def issue() -> str:
    """A new signed token for a new device."""
    return _signer().dumps(secrets.token_urlsafe(16))


def _verified(value: Optional[str]) -> tuple[Optional[str], Optional[float]]:
    if not value or len(value) > _MAX_LEN:
        return None, None
    try:
        device, issued = _signer().loads(value, return_timestamp=True)
    except BadData:
        return None, None
    if not isinstance(device, str) or not device:
        return None, None
    return device, issued.timestamp()


def verify(value: Optional[str]) -> Optional[str]:
    """The device id of a valid token, else None (missing, invented, tampered, signed with another key)."""
    return _verified(value)[0]


def _request_device() -> tuple[Optional[str], Optional[float]]:
    if "sipas_device" not in g:
        g.sipas_device = _verified(request.cookies.get(COOKIE))
    return g.sipas_device


def current() -> Optional[str]:
    """The verified device id of this request (checked once per request)."""
    return _request_device()[0]


def age() -> Optional[float]:
    """Seconds since this request's device token was issued; None without a valid token."""
    issued = _request_device()[1]
    return None if issued is None else time.time() - issued


def device_hash(device: Optional[str]) -> str:
    """What a response stores: a keyed hash of the verified device id, or UNKNOWN."""
    if not device:
        return UNKNOWN
    return keyed_hash(current_app.config["SECRET_KEY"], device, "device")
