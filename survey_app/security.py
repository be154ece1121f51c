"""HTTP hardening: security headers on every response, cookie flags, and the
checks that stop a production start with an unsafe configuration.

Production mode is `PRODUCTION = True` (env `SIPAS_PRODUCTION=true`): then
debug must be off, SECRET_KEY must be given (environment or instance config,
not generated on the fly), and session cookies are `Secure`.
"""
from __future__ import annotations

import os
import re

from flask import Flask, current_app, request

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
# An SVG chart served as its own document keeps its embedded <style> (matplotlib
# writes one); scripts stay forbidden.
CSP_SVG = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"


class UnsafeConfiguration(RuntimeError):
    pass


def check_production(app: Flask, secret_from_file: bool) -> None:
    if not app.config["PRODUCTION"]:
        return
    problems = []
    if app.debug or os.environ.get("FLASK_DEBUG", "").lower() in ("1", "true", "yes"):
        problems.append("debug mode is on")
    if secret_from_file or not app.config["SECRET_KEY"] or len(str(app.config["SECRET_KEY"])) < 32:
        problems.append("SECRET_KEY must be set (32+ characters) in the environment or instance/config.py")
    if problems:
        raise UnsafeConfiguration("refusing to start in production: " + "; ".join(problems))
    app.config["SESSION_COOKIE_SECURE"] = True
    app.config["REMEMBER_COOKIE_SECURE"] = True


#: Methods that may carry a request body.  Only POST ever writes (the views
#: branch on ``request.method == "POST"``); PUT and PATCH are refused by the
#: routing (405) since no route declares them.
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def has_body() -> bool:
    """True when the request announces a body (a length above 0 or a chunked transfer)."""
    return bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "").lower()


def refuse_body_on_read_methods():
    """400 for a GET, HEAD, OPTIONS or DELETE that carries a body.  Flask
    answers HEAD with the GET view, so a form body on a HEAD must never reach
    a view that could read it as a submission (issue 11, HEAD stuffing)."""
    if request.method in BODY_METHODS or not has_body():
        return None
    from flask_babel import gettext as _

    from .errors import error_page

    return error_page(400, _("Request not accepted"),
                      _("This address does not accept data sent this way. Please use the form on the page."))


#: Form bodies up to this size are read whole and checked against their
#: Content-Length before any view sees them (larger ones are refused by the
#: views' own limits or by werkzeug's MAX_FORM_MEMORY_SIZE).
CHECKED_FORM_BYTES = 512 * 1024


def refuse_truncated_form():
    """400 for a url-encoded POST whose body is shorter than its Content-Length
    (an upload cut off mid-way): a partial form must never be stored as a
    shorter response.  The body is cached, so the form parser reads the same
    bytes afterwards."""
    if request.method not in BODY_METHODS or request.mimetype != "application/x-www-form-urlencoded":
        return None
    expected = request.content_length
    if not expected or expected > CHECKED_FORM_BYTES:
        return None
    from werkzeug.exceptions import ClientDisconnected

    try:
        got = len(request.get_data(cache=True))
    except ClientDisconnected:
        got = -1
    if got == expected:
        return None
    from flask_babel import gettext as _

    from .errors import error_page

    return error_page(400, _("The form did not arrive complete"),
                      _("Part of what was sent was lost on the way, so nothing was saved. "
                        "Please go back and press “Send” again."))


#: Control characters (C0 and DEL).  Tab, CR and LF may appear in a staff
#: form's free-text values (a reason, an address), never in a query string,
#: a field name or a `next` address.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: Fields that name a place to go to (a line break there would split a header).
_SINGLE_LINE = frozenset({"next"})
#: The paths this layer cleans (staff pages and paper entry).
STAFF_PREFIX = "/staff"


def _dirty_input() -> bool:
    for key, value in request.args.items(multi=True):
        if _CONTROL.search(key) or _CONTROL.search(value):
            return True
    if request.mimetype == "multipart/form-data" and (request.content_length or 0) > CHECKED_FORM_BYTES:
        return False  # a large upload: its fields are checked by the importer, never read before login
    if request.method in BODY_METHODS and request.mimetype in ("application/x-www-form-urlencoded",
                                                                "multipart/form-data"):
        for key, value in request.form.items(multi=True):
            bad = _CONTROL if key in _SINGLE_LINE else _CONTROL_IN_TEXT
            if _CONTROL.search(key) or bad.search(value):
                return True
    return False


def refuse_control_characters():
    """400 for a staff request whose query string or form carries a NUL or
    another control character (they reached the database and the redirect
    headers as 500s).  One cleaning layer for every staff request, before
    the sign-in check."""
    if not request.path.startswith(STAFF_PREFIX) or not _dirty_input():
        return None
    from flask_babel import gettext as _

    from .errors import error_page

    return error_page(400, _("The request contains invalid characters"),
                      _("Please remove the invisible or control characters from what you typed, then try again."))


def host_prefixed_session_cookie(app: Flask) -> None:
    """With Secure cookies (production), the staff session cookie is named
    `__Host-session`: browsers accept such a cookie only when it is Secure, for
    path `/` and without a Domain, so no sibling subdomain or plain-HTTP page
    can set or shadow it.  Left alone when a Domain or another name is set."""
    cfg = app.config
    if (cfg["SESSION_COOKIE_SECURE"] and not cfg.get("SESSION_COOKIE_DOMAIN")
            and cfg["SESSION_COOKIE_NAME"] == "session"):
        cfg["SESSION_COOKIE_NAME"] = "__Host-session"
        cfg["SESSION_COOKIE_PATH"] = "/"


#: Room for the form fields and multipart framing around an uploaded file.
UPLOAD_OVERHEAD_BYTES = 64 * 1024


def _signed_in() -> bool:
    """Whether the session cookie names a staff user (reads no body)."""
    from flask_login import current_user

    return bool(current_user and current_user.is_authenticated)


def cap_request_size():
    """413 before any byte of an oversized body is read (issue 11, hole 6).

    Runs first, before the CSRF check and the form parsers: any body above
    MAX_CONTENT_LENGTH is refused; on a staff URL, a sender who has not signed
    in may send at most STAFF_ANONYMOUS_MAX_BYTES (a body without a length, i.e.
    chunked, is refused), and a signed-in user's body above IMPORT_MAX_BYTES
    (plus the form around the file) gets the import page's "file too large"."""
    if request.method not in BODY_METHODS:
        return None
    length = request.content_length or 0
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    cfg = current_app.config
    staff = request.path.startswith(STAFF_PREFIX)
    from flask_babel import gettext as _

    from .errors import error_page

    if staff and (chunked or length > int(cfg["STAFF_ANONYMOUS_MAX_BYTES"])) and not _signed_in():
        return error_page(413, _("Too much was sent"),
                          _("Please sign in first: before signing in, this address accepts only the sign-in form."))
    limit = cfg.get("MAX_CONTENT_LENGTH")
    if staff and length > int(cfg["IMPORT_MAX_BYTES"]) + UPLOAD_OVERHEAD_BYTES:
        mb = int(cfg["IMPORT_MAX_BYTES"]) // (1024 * 1024)
        return error_page(413, _("The file is too large"),
                          _("A file sent for import may be at most %(mb)s MB. Please split it into smaller files "
                            "(for example one per quarter or per unit) and import them one by one.", mb=mb))
    if limit and length > int(limit):
        return error_page(413)
    return None


def init_security(app: Flask) -> None:
    host_prefixed_session_cookie(app)
    app.before_request(cap_request_size)
    app.before_request(refuse_body_on_read_methods)
    app.before_request(refuse_truncated_form)
    app.before_request(refuse_control_characters)

    @app.after_request
    def _headers(resp):
        h = resp.headers
        if resp.mimetype == "image/svg+xml":
            h.setdefault("Content-Security-Policy", CSP_SVG)
        else:
            h.setdefault("Content-Security-Policy", CSP)
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Referrer-Policy", "same-origin")
        h.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
        h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if request.is_secure:
            h.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return resp


#: Characters never allowed in a place to go to: control characters (a line
#: break would split a header; browsers drop tabs and line breaks, so `/\t/x`
#: is `//x`) and backslashes (browsers read `/\evil.example` as `//evil.example`).
_UNSAFE_IN_URL = re.compile(r"[\x00-\x1f\x7f\\]")


def safe_local_url(target, prefix: str = "/", default: str | None = None) -> str:
    """THE check of every `next=` address and redirect target built from a request:
    `target` when it is a path of this site under `prefix`, else `default`
    (`prefix` when not given).  Refused: anything not a string, absolute or
    scheme-relative URLs (`https://x`, `//x`, `javascript:`), backslashes,
    control characters, spaces around it, and paths outside `prefix`."""
    from urllib.parse import urlsplit

    default = prefix if default is None else default
    if not isinstance(target, str) or not target or target != target.strip() or _UNSAFE_IN_URL.search(target):
        return default
    if not target.startswith(prefix) or target.startswith("//"):
        return default
    try:
        parts = urlsplit(target)
    except ValueError:
        return default
    return default if parts.scheme or parts.netloc else target


def current_path() -> str:
    """This request's path as a link target: re-encoded as it came
    (`/%5Cevil.example/` stays that, never the `/\\evil.example/` a browser
    reads as another site) and checked by `safe_local_url` (else `/`)."""
    from urllib.parse import quote

    return safe_local_url(quote(request.path, safe="/:@!$&'()*+,;="), "/")
