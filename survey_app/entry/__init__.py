"""Staff entry of paper and phone questionnaires (`/staff/entry`)."""
from flask import Blueprint

bp = Blueprint("entry", __name__)

from . import routes  # noqa: E402,F401
