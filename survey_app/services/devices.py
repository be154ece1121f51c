"""Device tokens: a first-party cookie the server issues and signs.

The citizen form sets `sipas_dev` to a random device id signed with the app's
SECRET_KEY (itsdangerous, salt "device").  Only a token that verifies names a
device: an invented, altered or foreign cookie counts as no device at all, so
rotating made-up cookies buys a script nothing.  Then

- the per-device rate limit falls back to the (hashed) client IP at the
  counter (public/routes.py `key_device`);
- the response is stored with `device_hash = UNKNOWN`, and a run of such
  responses at one counter is flagged `no_device_burst` (services/quality.py).

The device hash stored on a response is a keyed hash of the verified device id
only (never of the cookie as sent, never of an IP).  Responses written by
imports and the demo seed have no device hash (NULL): their device is not
unknown, it was never recorded.
"""
from __future__ import annotations

import secrets
from typing import Optional

from flask import current_app, g, request
from itsdangerous import BadData, URLSafeSerializer

from .privacy import keyed_hash

COOKIE = "sipas_dev"
#: `Response.device_hash` of a response sent without a valid device token.
UNKNOWN = "unknown"
_SALT = "device"
_MAX_LEN = 200  # a real token is about 60 characters; longer is never parsed


def _signer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def issue() -> str:
    """A new signed token for a new device."""
    return _signer().dumps(secrets.token_urlsafe(16))


def verify(value: Optional[str]) -> Optional[str]:
    """The device id of a valid token, else None (missing, invented, tampered, signed with another key)."""
    if not value or len(value) > _MAX_LEN:
        return None
    try:
        device = _signer().loads(value)
    except BadData:
        return None
    return device if isinstance(device, str) and device else None


def current() -> Optional[str]:
    """The verified device id of this request (checked once per request)."""
    if "sipas_device" not in g:
        g.sipas_device = verify(request.cookies.get(COOKIE))
    return g.sipas_device


def device_hash(device: Optional[str]) -> str:
    """What a response stores: a keyed hash of the verified device id, or UNKNOWN."""
    if not device:
        return UNKNOWN
    return keyed_hash(current_app.config["SECRET_KEY"], device, "device")
