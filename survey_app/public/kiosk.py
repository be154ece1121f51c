"""The kiosk's offline outbox: its service worker, served at the kiosk scope.

`/k/sw.js` is `static/kiosk-sw.js` (see that file for what it does) under
the `/k/` scope, so it controls the kiosk pages only: the phone form
(`/c/...`) never runs it and works without JavaScript as before.  The
worker script is revalidated on every load (`no-cache`), so a new version
reaches the tablets on their next page.
"""
from __future__ import annotations

from flask import current_app, send_from_directory

from ..extensions import limiter
from . import bp

KIOSK_SCOPE = "/k/"
SW_FILE = "kiosk-sw.js"


@bp.get("/k/sw.js")
@limiter.exempt
def kiosk_sw():
    resp = send_from_directory(current_app.static_folder, SW_FILE, mimetype="text/javascript", max_age=0,
                               conditional=True)
    resp.headers["Cache-Control"] = "no-cache"
    resp.headers["Service-Worker-Allowed"] = KIOSK_SCOPE
    return resp
