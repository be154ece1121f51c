"""What people read on the pages, in one place: numbers and dates formatted
through Flask-Babel (`format`), the words for codes (`labels`), and the
template globals and filters, registered once per app by `init_app`."""
from __future__ import annotations

from urllib.parse import urlencode

from flask import request

from . import format as fmt
from . import labels


def url_with(**changes) -> str:
    """The current URL with query arguments changed (None removes one)."""
    args = request.args.to_dict(flat=True)
    for k, v in changes.items():
        if v is None:
            args.pop(k, None)
        else:
            args[k] = v
    from ..security import current_path

    return current_path() + ("?" + urlencode(args) if args else "")


TEMPLATE_GLOBALS = {
    "pct": fmt.pct, "num": fmt.num, "points": fmt.points, "isnum": fmt.isnum,
    "local_datetime": fmt.local_datetime, "local_date": fmt.local_date,
    "plain_interval": labels.plain_interval, "adequacy_text": labels.adequacy_text,
    "index_sentence": labels.index_sentence, "small_sample": labels.small_sample,
    "audit_action": labels.audit_action, "SCALE_LABELS": labels.SCALE_LABELS,
    "CHANNEL_LABELS": labels.CHANNEL_LABELS, "audit_details": labels.audit_details,
    "audit_target": labels.audit_target,
    "target_text": labels.target_text, "flag_words": labels.flag_words, "left_out_words": labels.left_out_words,
    "unit_name": labels.unit_name, "ELEMENTS": labels.ELEMENTS, "ELEMENT_KEYS": labels.element_keys(),
    "ELEMENT_LABELS": labels.ELEMENT_LABELS, "KIND_LABELS": labels.KIND_LABELS,
    "ROLE_LABELS": labels.ROLE_LABELS, "QUADRANT_LABELS": labels.QUADRANT_LABELS,
    "VS_PARENT_WORDS": labels.VS_PARENT_WORDS, "url_with": url_with,
}
TEMPLATE_FILTERS = {"local_datetime": fmt.local_datetime, "local_date": fmt.local_date}


def init_app(app) -> None:
    """Register the template globals and filters (idempotent)."""
    if app.extensions.get("sipas_ui"):
        return
    app.jinja_env.globals.update(TEMPLATE_GLOBALS)
    app.jinja_env.filters.update(TEMPLATE_FILTERS)
    app.extensions["sipas_ui"] = True
