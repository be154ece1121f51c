"""Staff blueprint: login, dashboards, exports, posters, imports, admin."""
from flask import Blueprint

bp = Blueprint("staff", __name__, template_folder="../templates")

from . import routes  # noqa: E402,F401
