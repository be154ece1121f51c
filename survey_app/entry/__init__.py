"""Staff entry of paper and phone questionnaires (`/staff/entry`).

The same guard as every staff page: signed in, session not timed out or
revoked (the staff blueprint's `_require_login`), and never cached."""
from flask import Blueprint

from ..staff import _no_store, _require_login

bp = Blueprint("entry", __name__)
bp.before_request(_require_login)
bp.after_request(_no_store)

from . import routes  # noqa: E402,F401
