"""API v1 (`/api/v1/...`, JSON) for one-stop systems and counter devices
(issue 12; DESIGN.md "Integration").  Every figure and write goes through
`services.integration` (and `services.stats` for results).

Requests carry `Authorization: Bearer <key>` (no cookies, so the blueprint
is exempt from CSRF); a client sees only its unit's subtree (404 outside
it), is rate-limited on its own key (`API_RATE_LIMIT`), and every write is
audited.  Errors are `{"error": {"code", "message", "field"?}}` with the
message in Vietnamese (English with `?lang=en`).
"""
from __future__ import annotations

import logging
import re

from flask import Blueprint, g, jsonify
from flask_babel import gettext as _

bp = Blueprint("api", __name__, url_prefix="/api/v1")
PREFIX = "/api/v1/"


def json_error(status: int, code: str, message: str, field: str | None = None, headers: dict | None = None,
               **extra):
    body = {"code": code, "message": message}
    if field:
        body["field"] = field
    resp = jsonify(error=body, **extra)
    resp.status_code = status
    resp.headers["Cache-Control"] = "no-store"
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


#: HTTP status -> (error code, message) for the errors the framework raises.
def _status_error(status: int) -> tuple[str, str]:
    table = {
        400: ("bad_request", _("The request could not be understood.")),
        401: ("unauthorized", _("A valid API key is required: Authorization: Bearer <key>.")),
        403: ("forbidden", _("This API key does not have the right for this call.")),
        404: ("not_found", _("Not found, or outside the scope of this API key.")),
        405: ("method_not_allowed", _("This address does not accept this method.")),
        413: ("too_large", _("The request body is too large.")),
        415: ("unsupported_media_type", _("Send the body as application/json.")),
        429: ("rate_limited", _("Too many requests for this API key. Please wait a minute, then try again.")),
        503: ("unavailable", _("The service is temporarily unavailable. Please try again in a few minutes.")),
    }
    if status in table:
        return table[status]
    if status >= 500:
        return "server_error", _("An error occurred on our side. Please try again in a few minutes.")
    return table[400]


def status_error(status: int, headers: dict | None = None):
    code, message = _status_error(status)
    return json_error(status, code, message, headers=headers)


# ------------------------------------------------------------------ log redaction

_DOSSIER_PATH = re.compile(r"(/api/v1/dossiers/)[^/\s?\"']+")
REDACTED = r"\1<MaHoSo>"


def redact(text):
    """`text` with the dossier code of any /api/v1/dossiers/<MaHoSo>/... path replaced."""
    return _DOSSIER_PATH.sub(REDACTED, text) if isinstance(text, str) and "/api/v1/dossiers/" in text else text


class RedactDossierCodes(logging.Filter):
    """Removes dossier codes from log records (the werkzeug and gunicorn
    access lines and our own messages): a MaHoSo must never reach a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.msg)
        if isinstance(record.args, dict):  # in place: gunicorn's atoms are a dict subclass with lookups
            for k, v in list(dict.items(record.args)):
                if isinstance(v, str) and "/api/v1/dossiers/" in v:
                    dict.__setitem__(record.args, k, redact(v))
        elif isinstance(record.args, tuple):
            record.args = tuple(redact(a) for a in record.args)
        return True


_installed = False


def install_log_redaction() -> None:
    """Wrap the log record factory once per process, so every logger (werkzeug,
    gunicorn.access, ours, the root) gets redacted records, whatever handlers
    are configured later."""
    global _installed
    if _installed:
        return
    old = logging.getLogRecordFactory()
    flt = RedactDossierCodes()

    def factory(*args, **kwargs):
        rec = old(*args, **kwargs)
        flt.filter(rec)
        return rec

    logging.setLogRecordFactory(factory)
    _installed = True


def init_api(app) -> None:
    from ..extensions import csrf

    install_log_redaction()
    csrf.exempt(bp)
    app.register_blueprint(bp)


def current_client():
    return g.get("api_client")


from . import routes  # noqa: E402,F401
