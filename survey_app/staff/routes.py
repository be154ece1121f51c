from flask import redirect, url_for

from . import bp


@bp.get("/")
def index():
    return redirect(url_for("public.healthz"))
