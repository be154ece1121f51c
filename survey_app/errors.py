"""App-wide friendly error pages (Vietnamese first, English on the toggle).

`register_error_handlers(app)` renders `templates/error.html` for every HTTP
error (400, 401, 403, 404, 405, 410, 413, 429, 500, 503, ...) and answers 503
when the database is unreachable.  A traceback is never shown: unexpected
exceptions are logged and the citizen sees a short apology.  JSON clients
(`/api/...` or `Accept: application/json`) get `{"error": code, "message": ...}`.

Also provides the template globals every page of `base.html` uses:
`inline_css()` (the public stylesheet, inlined: one round trip on a weak
network, allowed by its hash in the page's Content-Security-Policy),
`static_version()` and `lang_url(lang)` (the current page in another language).
"""
from __future__ import annotations

import base64
import functools
import hashlib
import logging
from pathlib import Path

from flask import g, jsonify, make_response, render_template, request
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from .security import CSP

log = logging.getLogger(__name__)

CSS_PATH = Path(__file__).parent / "static" / "public.css"
JS_PATH = Path(__file__).parent / "static" / "public.js"


def _read_static(path: Path) -> tuple[str, str]:
    """(text, base64 sha256) of a static file, re-read when it changes."""
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        return "", ""
    return _static_file(path, mtime)


@functools.lru_cache(maxsize=8)
def _static_file(path: Path, mtime_ns: int) -> tuple[str, str]:
    text = path.read_text(encoding="utf-8")
    return text, base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()


def inline_css() -> Markup:
    """The public stylesheet, inlined (one round trip on a weak network).  The
    response then carries a Content-Security-Policy that allows exactly this
    stylesheet by its hash (no 'unsafe-inline')."""
    text, digest = _read_static(CSS_PATH)
    g.inline_css_hash = digest
    return Markup(text)


def static_version() -> str:
    """Cache-busting version of public.js (assets.static_hash: every static URL carries one)."""
    from .assets import static_hash

    return static_hash(JS_PATH.name)


def _csp_for_inline_css(resp):
    digest = g.get("inline_css_hash")
    if digest and resp.mimetype == "text/html":
        resp.headers["Content-Security-Policy"] = CSP.replace(
            "style-src 'self'", f"style-src 'self' 'sha256-{digest}'")
    return resp


def lang_url(lang: str) -> str:
    """This page's URL with `?lang=<lang>` (other query arguments kept; the
    path made safe by `security.current_path`)."""
    from urllib.parse import urlencode

    from .security import current_path

    args = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"]
    args.append(("lang", lang))
    return f"{current_path()}?{urlencode(args)}"


def _messages(code: int) -> tuple[str, str]:
    table = {
        400: (_("Something was not right"),
              _("The page could not be understood. Please go back, reload the page and try again.")),
        401: (_("Please sign in"), _("This page is for staff. Please sign in first.")),
        403: (_("Not allowed"), _("Your account cannot open this page.")),
        404: (_("Page not found"),
              _("This address does not exist. Please check the link, or scan the QR code at the counter again.")),
        405: (_("Not possible here"), _("This page cannot be used this way. Please go back and try again.")),
        409: (_("Already done"), _("This has already been done.")),
        410: (_("This link is no longer in use"),
              _("It has been replaced. Please scan the new QR code at the counter.")),
        413: (_("Too much was sent"),
              _("What was sent is too large. Please shorten your comment and try again.")),
        429: (_("Too many attempts"), _("Please wait a minute, then try again.")),
        500: (_("Something went wrong"),
              _("We are sorry: an error occurred on our side. Please try again in a few minutes.")),
        503: (_("Temporarily unavailable"),
              _("The service is busy or under maintenance. Please try again in a few minutes.")),
    }
    if code in table:
        return table[code]
    if 500 <= code:
        return table[500]
    return table[400]


def _staff_messages(code: int) -> tuple[str, str] | None:
    """Staff wording for the codes whose citizens' wording speaks of QR codes and comments."""
    table = {
        401: (_("Please sign in"), _("Please sign in with your staff account to open this page.")),
        403: (_("Not allowed"), _("Your role cannot open this page. Ask an administrator if your work needs it.")),
        404: (_("Page not found"),
              _("This page does not exist, or it is outside the units of your account. Check the address, or "
                "go back to the overview.")),
        410: (_("No longer in use"),
              _("This item has been replaced or removed. Go back to the overview and open it again from there.")),
        413: (_("Too much was sent"), _("The file or form sent is too large. Send a smaller file.")),
    }
    return table.get(code)


def is_staff_request() -> bool:
    """A request for the staff pages (their blueprint, or any address under /staff/)."""
    return request.blueprint == "staff" or request.path == "/staff" or request.path.startswith("/staff/")


def _staff_user_for(code: int):
    """The signed-in staff user for the error page's menu (None on a server error: no database use then)."""
    if code >= 500:
        return None
    try:
        from .staff.auth import db_user

        return db_user()
    except Exception:  # noqa: BLE001 - the error page itself must never fail
        return None


def _wants_json() -> bool:
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def error_page(code: int, title: str | None = None, message: str | None = None,
               headers: dict | None = None, template: str = "error.html", **context):
    """A friendly page for `code` (title and message default to the code's own)."""
    staff = template == "error.html" and is_staff_request()
    default_title, default_message = (staff and _staff_messages(code)) or _messages(code)
    if staff:  # staff wording inside the staff layout (issue 14)
        template = "staff/error.html"
        context.setdefault("staff_user", _staff_user_for(code))
    title = title or default_title
    message = message or default_message
    if request.path.startswith("/api/v1/"):  # API v1's own error shape (survey_app/api)
        from .api import status_error

        resp = status_error(code)
    elif _wants_json():
        resp = jsonify(error=code, message=message)
        resp.status_code = code
    else:
        try:
            body = render_template(template, code=code, title=title, message=message, **context)
        except Exception:  # noqa: BLE001 - the error page itself must never fail
            log.exception("error page template failed")
            body = (f'<!doctype html><html lang="vi"><meta charset="utf-8">'
                    f'<meta name="viewport" content="width=device-width,initial-scale=1">'
                    f"<title>{code}</title><h1>{code}</h1><p>Xin Ông/Bà thử lại sau ít phút.</p></html>")
        resp = make_response(body, code)
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    if code >= 500 or code == 429:
        resp.headers.setdefault("Cache-Control", "no-store")
    return resp


def _http_error(exc: HTTPException):
    if getattr(exc, "response", None) is not None:
        return exc.response  # a page made for this case (e.g. the form kept on a rate limit)
    code = exc.code or 500
    if code >= 500:
        original = getattr(exc, "original_exception", None)
        if original is not None:
            log.error("unhandled exception on %s %s", request.method, request.path,
                      exc_info=(type(original), original, original.__traceback__))
    title = message = None
    from flask_wtf.csrf import CSRFError

    if isinstance(exc, CSRFError):
        title = _("This page has expired")
        message = _("For your security the page expired. Please go back, reload the page and send it again.")
    headers = {}
    for key, value in exc.get_headers():
        if key.lower() not in ("content-type", "content-length"):
            headers[key] = value
    return error_page(code, title, message, headers=headers)


def _database_unreachable(exc: OperationalError):
    from .extensions import db

    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001
        pass
    log.error("database unreachable on %s %s: %s", request.method, request.path, exc)
    return error_page(503, headers={"Retry-After": "30"})


def register_error_handlers(app) -> None:
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(OperationalError, _database_unreachable)
    app.add_template_global(inline_css, "inline_css")
    app.add_template_global(lang_url, "lang_url")
    app.add_template_global(static_version, "static_version")
    app.after_request(_csp_for_inline_css)

