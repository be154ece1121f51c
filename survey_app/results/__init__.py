"""Public results blueprint: `/public/` (what is published) and
`/public/<unit code>/<year>` (+ `.csv`, `.json`): the published figures of a
unit's subtree, no login.  It reads the frozen versions only
(`services.publishing`), never the live statistics, and never loads pandas."""
from flask import Blueprint

bp = Blueprint("results", __name__, url_prefix="/public")

from . import routes  # noqa: E402,F401
