"""Signed counter tokens for QR links: `/c/<token>` and `/k/<token>`.

A token carries the counter id and its token version, signed with the app's
secret (itsdangerous, HMAC-SHA256 truncated to 128 bits) so it stays short
enough for a small, easily scanned QR code: e.g. `1f.1.Xq3...` (about 27
characters).  Rotating a counter (`token_version += 1`) makes old posters
answer 410 Gone.

A receipt link (`/c/<token>?d=<ref>`, one rating per dossier) carries an
opaque signed reference: the counter id and a keyed hash of the dossier code,
never the code (`dossier_signature`).
"""
from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Optional

from flask import current_app
from itsdangerous import BadSignature, Signer
from itsdangerous.signer import HMACAlgorithm

#: Purpose salts: counter tokens, receipt links (opaque), and the first
#: receipt-link format (the dossier code readable; recognised only to refuse it).
DOSSIER_SALT = "dossier-ref"
LEGACY_DOSSIER_SALT = "dossier"


class _TruncatedHMAC(HMACAlgorithm):
    def get_signature(self, key: bytes, value: bytes) -> bytes:
        return super().get_signature(key, value)[:16]


def _signer(salt: str) -> Signer:
    return Signer(current_app.config["SECRET_KEY"], salt=salt, sep=".",
                  algorithm=_TruncatedHMAC(hashlib.sha256))


def _b36(n: int) -> str:
    chars = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = chars[r] + out
        if n == 0:
            return out


@dataclass(frozen=True)
class CounterRef:
    counter_id: int
    version: int


def counter_token(counter_id: int, version: int) -> str:
    return _signer("counter").sign(f"{_b36(counter_id)}.{_b36(version)}").decode()


def parse_counter_token(token: str) -> Optional[CounterRef]:
    """The (counter id, version) a token names, or None when it is tampered or malformed."""
    if not token or len(token) > 80:
        return None
    try:
        value = _signer("counter").unsign(token).decode()
        cid, ver = value.split(".")
        return CounterRef(int(cid, 36), int(ver, 36))
    except (BadSignature, ValueError, UnicodeDecodeError):
        return None


def counter_url(counter, kiosk: bool = False) -> str:
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    return f"{base}/{'k' if kiosk else 'c'}/{counter_token(counter.id, counter.token_version)}"


@dataclass(frozen=True)
class DossierRef:
    counter_id: int
    dossier_hash: str  # hex, as stored in `responses.dossier_hash`


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def dossier_signature(counter_id: int, dossier_ref: str) -> str:
    """The opaque reference a one-stop system prints on a receipt: `/c/<token>?d=<this>`.

    It carries the counter id and the keyed hash of the dossier code (HMAC with
    the app's secret, `submissions.dossier_hash`), signed: the code itself is
    never in the link, so never in an access log; the server needs only the
    hash to allow one rating per dossier.  About 70 characters."""
    from .submissions import dossier_hash

    ref = _b64(bytes.fromhex(dossier_hash(dossier_ref)))
    return _signer(DOSSIER_SALT).sign(f"{_b36(counter_id)}.{ref}").decode()


def parse_dossier_signature(sig: str) -> Optional[DossierRef]:
    """The counter and dossier hash a receipt link names, or None when it is
    tampered, malformed or in the old format (`is_legacy_dossier_signature`)."""
    if not sig or len(sig) > 200:
        return None
    try:
        cid, ref = _signer(DOSSIER_SALT).unsign(sig).decode().split(".")
        digest = base64.urlsafe_b64decode(ref + "=" * (-len(ref) % 4))
        if len(digest) != 32:
            return None
        return DossierRef(int(cid, 36), digest.hex())
    except (BadSignature, ValueError, UnicodeDecodeError):  # binascii.Error is a ValueError
        return None


def is_legacy_dossier_signature(sig: str) -> bool:
    """Whether `sig` is a genuine link of the first format (`<counter>~<dossier
    code>.<signature>`, the code readable): such links are no longer answered
    (410), and are recognised only to say so clearly."""
    if not sig or len(sig) > 200:
        return False
    try:
        return "~" in _signer(LEGACY_DOSSIER_SALT).unsign(sig).decode()
    except (BadSignature, UnicodeDecodeError):
        return False
