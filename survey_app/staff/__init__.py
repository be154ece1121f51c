"""Staff blueprint: sign-in, the overview, the unit page, the annual report,
paper and phone entry, data import, QR posters and administration.

One module per page (`overview`, `unit`, `report`, `entry`, `data`,
`posters`, `admin`, `login`), the forms beside them in `forms.py`, the cached
figures in `figures.py`, the session and permission checks in `auth.py`, the
SVG charts in `charts.py`.

Every route but the login page needs a signed-in user whose session has not
timed out (`auth.session_expired`) nor been revoked (`session_version`, checked
by the user loader).  Scope and role checks are in each view via
`auth.require` and `auth.unit_in_scope_or_404`.
"""
from flask import Blueprint, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

bp = Blueprint("staff", __name__, template_folder="../templates")

PUBLIC_ENDPOINTS = {"staff.login"}


@bp.record_once
def _setup(state):
    from .. import ui
    from ..extensions import login_manager

    login_manager.login_view = "staff.login"
    login_manager.login_message = None
    ui.init_app(state.app)  # settings (STAFF_*): survey_app/config.py


@bp.before_request
def _require_login():
    from .auth import end_session, session_expired

    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if not current_user.is_authenticated:
        return redirect(url_for("staff.login", next=_safe_next(request.full_path)))
    why = session_expired()
    if why:
        end_session(None)
        flash(_("Your session timed out after a period of inactivity. Please sign in again.") if why == "idle"
              else _("Your session has ended (maximum length reached). Please sign in again."), "info")
        return redirect(url_for("staff.login", next=_safe_next(request.full_path)))
    return None


@bp.after_request
def _no_store(resp):
    # Staff pages hold unpublished figures: never cache them in shared caches.
    resp.headers.setdefault("Cache-Control", "no-store")
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    return resp


def _safe_next(path: str) -> str:
    from ..security import safe_local_url

    return safe_local_url((path or "").rstrip("?"), "/staff/")


@bp.app_template_global()
def staff_can(action: str) -> bool:
    from .auth import can

    return can(action)


@bp.context_processor
def _staff_user():
    from .auth import db_user

    return {"staff_user": db_user()}


from . import admin, api_clients, cases, data, entry, exclusions, login, overview, posters, publishing, report, unit  # noqa: E402,F401,E501
from .admin_merge import admin_merge  # noqa: E402,F401  (issue 14.4: the merge page)
from .restructuring import trend_base  # noqa: E402,F401  (issue 14.4: unit history, trend base)
