"""Public (citizen) blueprint: QR landing + form, kiosk, thanks, health."""
from flask import Blueprint

bp = Blueprint("public", __name__)

from . import kiosk, routes  # noqa: E402,F401
