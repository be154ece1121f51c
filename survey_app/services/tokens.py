"""Signed counter tokens for QR links: `/c/<token>` and `/k/<token>`.

A token carries the counter id and its token version, signed with the app's
secret (itsdangerous, HMAC-SHA256 truncated to 128 bits) so it stays short
enough for a small, easily scanned QR code: e.g. `1f.1.Xq3...` (about 27
characters).  Rotating a counter (`token_version += 1`) makes old posters
answer 410 Gone.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Optional

from flask import current_app
from itsdangerous import BadSignature, Signer
from itsdangerous.signer import HMACAlgorithm


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


def dossier_signature(counter_id: int, dossier_ref: str) -> str:
    """Signature a one-stop system prints on a receipt: `/c/<token>?d=<this>`."""
    return _signer("dossier").sign(f"{_b36(counter_id)}~{dossier_ref}").decode()


def parse_dossier_signature(sig: str) -> Optional[tuple[int, str]]:
    if not sig or len(sig) > 200:
        return None
    try:
        value = _signer("dossier").unsign(sig).decode()
        cid, ref = value.split("~", 1)
        return int(cid, 36), ref
    except (BadSignature, ValueError, UnicodeDecodeError):
        return None
