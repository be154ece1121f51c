"""The 2025 restructuring on the staff pages (issue 14.4): template helpers
for the unit history block (`_unit_history.html`) and the sentence that says
what a trend compares with (`_trend_base.html`)."""
from __future__ import annotations

from flask_babel import gettext as _

from . import bp


@bp.app_template_global()
def staff_sees(unit) -> bool:
    """Whether the signed-in user may open `unit`'s page (links to other units)."""
    from .auth import db_user, in_scope

    user = db_user()
    return user is not None and unit is not None and in_scope(user, unit.id)


def period_words(period) -> str:
    """A period in words, lower case, for the middle of a sentence ("năm 2024", "quý 4/2024")."""
    from ..ui.format import local_date

    if period.kind == "year" and not period.calendar:
        return _("report year %(y)s", y=period.year)
    if period.kind == "year":
        return _("calendar year %(y)s", y=period.year)
    if period.kind == "quarter":
        return _("quarter %(q)s/%(y)s", q=period.index, y=period.year)
    if period.kind == "half":
        return _("half %(h)s/%(y)s", h=period.index, y=period.year)
    return _("%(a)s – %(b)s", a=local_date(period.first), b=local_date(period.last))


@bp.app_template_global()
def trend_base(period, mapped: bool = False) -> str:
    """What a trend of `period` compares with, and on which units: the previous
    period, with the units mapped to today's (`mapped`) or as they were then."""
    from analysis.periods import previous_period

    if not hasattr(period, "kind"):  # a label or a report year (the public results pages)
        from ..services.periods import resolve_period

        period = resolve_period(str(period))
    base = period_words(previous_period(period))
    if mapped:
        return _("Trend: compared with %(base)s, on today's units (the responses of merged units count in "
                 "their successor in both periods).", base=base)
    return _("Trend: compared with %(base)s, with the units as they were then.", base=base)
