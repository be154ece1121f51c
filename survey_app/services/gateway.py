"""Sending rating links by SMS / Zalo ZNS (issue 12, item 5): a pluggable
gateway.  `SMS_GATEWAY = "log"` (default: tests and the demo) logs a masked
line and keeps what it would have sent in memory; `"http"` POSTs
`{"to", "text"}` with `Authorization: Bearer SMS_GATEWAY_KEY` to
`SMS_GATEWAY_URL` (a provider's adapter); `"off"` sends nothing.

A phone number is used once, to send, and is never stored or logged in
clear (`mask`)."""
from __future__ import annotations

import json
import logging
import urllib.request
from typing import Protocol

from flask import current_app

log = logging.getLogger(__name__)


def mask(phone: str) -> str:
    """`0912345678` -> `******5678`."""
    digits = "".join(ch for ch in str(phone) if ch.isdigit())
    return "*" * max(len(digits) - 4, 0) + digits[-4:]


def valid_phone(phone) -> bool:
    digits = "".join(ch for ch in str(phone or "") if ch.isdigit())
    return isinstance(phone, (str, int)) and not isinstance(phone, bool) and 9 <= len(digits) <= 15


class Gateway(Protocol):
    def send(self, phone: str, text: str) -> bool:
        """Send `text` to `phone`; True when the gateway took it."""


class LoggingGateway:
    """The stand-in: logs a masked line; `sent` keeps (masked number, text)."""

    def __init__(self):
        self.sent: list[tuple[str, str]] = []

    def send(self, phone: str, text: str) -> bool:
        self.sent.append((mask(phone), text))
        log.info("rating link sent to %s", mask(phone))
        return True


class HttpGateway:
    def __init__(self, url: str, key: str, timeout: float = 5.0):
        self.url, self.key, self.timeout = url, key, timeout

    def send(self, phone: str, text: str) -> bool:
        req = urllib.request.Request(self.url, data=json.dumps({"to": str(phone), "text": text}).encode(),
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {self.key}"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 - configured URL
                ok = 200 <= resp.status < 300
        except OSError as exc:
            log.warning("SMS gateway refused a message to %s: %s", mask(phone), type(exc).__name__)
            return False
        return ok


class _Off:
    def send(self, phone: str, text: str) -> bool:
        return False


def gateway() -> Gateway:
    """The configured gateway (one per app)."""
    ext = current_app.extensions
    gw = ext.get("sipas_gateway")
    if gw is None:
        kind = current_app.config["SMS_GATEWAY"]
        if kind == "http" and current_app.config.get("SMS_GATEWAY_URL"):
            gw = HttpGateway(current_app.config["SMS_GATEWAY_URL"], current_app.config.get("SMS_GATEWAY_KEY") or "")
        elif kind == "off":
            gw = _Off()
        else:
            gw = LoggingGateway()
        ext["sipas_gateway"] = gw
    return gw
