"""The staff pages' forms (Flask-WTF), beside the views that use them.

Every POST of the staff blueprint is validated by one of these with
`validate_on_submit` (CSRF included); a form that does not validate is shown
again with its messages and status 400, never an error page.  Messages are
lazy (`_l`): WTForms has no Vietnamese catalogue, so every validator carries
its own translated message.  Checks that need the database (a code that must
exist, a username that must be free) are `validate_<field>` methods here.
"""
from __future__ import annotations

import datetime as dt

from flask import flash, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy import select
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
)
from wtforms.validators import AnyOf, DataRequired, InputRequired, Length, Optional, ValidationError

from analysis.schema import TYPED_CHANNELS, UNIT_KINDS

from ..extensions import db
from ..models import ROLES, Unit, User
from ..services.accounts import password_problem


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _empty_none(value):
    value = _strip(value)
    return value or None


def unit_by_code(code):
    """The unit with this code, or None (also for an empty code)."""
    code = (code or "").strip()
    return db.session.scalar(select(Unit).where(Unit.code == code)) if code else None


class LocalDecimalField(StringField):
    """A number typed with a decimal comma or point (“92,5” or “92.5”)."""

    def process_formdata(self, valuelist):
        super().process_formdata(valuelist)
        text = (self.data or "").strip().replace(",", ".")
        try:
            self.number = float(text) if text else None
        except ValueError:
            self.number = None


class LocalDateField(DateField):
    """A date typed as YYYY-MM-DD (the browser's date input), with a translated message."""

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError:
            self.data = None
            raise ValueError(_l("Dates are written YYYY-MM-DD.")) from None


class LocalIntegerField(IntegerField):
    """A whole number; text that is not one fails with this field's own message."""

    def __init__(self, label=None, validators=None, message=None, **kwargs):
        super().__init__(label, validators, **kwargs)
        self.message = message

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError(self.message or _l("Enter a whole number.")) from None


class ActionForm(FlaskForm):
    """A button that does one thing (sign out, unlock, rotate a QR code...): CSRF only."""


# ---------------------------------------------------------------- sign-in

class LoginForm(FlaskForm):
    username = StringField(_l("Username"), filters=[_strip],
                           validators=[DataRequired(_l("Enter your username and password.")), Length(max=80)])
    password = PasswordField(_l("Password"), validators=[DataRequired(_l("Enter your username and password."))])
    next = HiddenField()


# ---------------------------------------------------------------- data import

IMPORT_KINDS = ("volumes", "bieu06", "responses", "units")


class ImportForm(FlaskForm):
    kind = RadioField(choices=list(IMPORT_KINDS), validate_choice=False)
    file = FileField(_l("CSV file (UTF-8)"), validators=[FileRequired(_l("Choose a CSV file to import."))])
    replace = BooleanField(_l("Replace the stored volumes of the same unit and stratum whose periods the file's "
                              "rows overlap"))

    def __init__(self, kinds, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind.choices = list(kinds)
        self.kinds = tuple(kinds)

    def validate_kind(self, field):
        if field.data not in self.kinds:
            raise ValidationError(_l("Choose what the file contains."))


# ---------------------------------------------------------------- unit page

class ExclusionForm(FlaskForm):
    reason = StringField(_l("Reason"), filters=[_strip], validators=[Optional(), Length(max=500)])
    period = HiddenField()


class DecisionForm(FlaskForm):
    """Approve or reject an exclusion request (four eyes), with an optional note."""

    decision = RadioField(choices=["approve", "reject"], validate_choice=False,
                          validators=[InputRequired(_l("Choose approve or reject.")),
                                      AnyOf(("approve", "reject"), message=_l("Choose approve or reject."))])
    note = StringField(_l("Note"), filters=[_strip], validators=[Optional(), Length(max=500)])


class PeriodForm(FlaskForm):
    """The period chosen in the query string (a GET form: no CSRF)."""

    class Meta:
        csrf = False

    period = StringField(filters=[_strip], validators=[Optional(), Length(max=40)])


def int_arg(name: str, default: int, lo: int = 1, hi: int = 10**9) -> int:
    """A whole number from the query string, clipped to [lo, hi]; anything else is the default."""
    try:
        v = int(request.args.get(name, default))
    except (TypeError, ValueError):
        return default
    return min(max(v, lo), hi)


def period_choices(selected_year: int) -> list[tuple[str, str]]:
    """The periods the period menu offers."""
    from ..services.periods import current_report_year

    cur = current_report_year()
    out = [(str(y), _("Report year %(y)s", y=y)) for y in range(cur, cur - 4, -1)]
    out += [(f"{selected_year}-Q{q}", _("Quarter %(q)s of %(y)s", q=q, y=selected_year)) for q in range(1, 5)]
    out.append((f"{selected_year}-H1", _("First 6 months of %(y)s", y=selected_year)))
    out.append((f"cal:{selected_year}", _("Calendar year %(y)s", y=selected_year)))
    return out


def chosen_period():
    """The period in the query string (default: the current report year).
    An invalid label falls back to the default with a message, never an error."""
    from ..services.periods import current_report_year, resolve_period

    form = PeriodForm(request.args)
    text = form.period.data if form.validate() else (request.args.get("period") or "")[:40]
    if text:
        try:
            return resolve_period(text)
        except (ValueError, TypeError):
            pass
        flash(_("Unknown period “%(p)s”: showing the current report year.", p=text), "warning")
    return resolve_period(str(current_report_year()))



# ---------------------------------------------------------------- administration

class UnitForm(FlaskForm):
    code = StringField(_l("Code"), filters=[_strip],
                       validators=[DataRequired(_l("Enter a code of at most 40 characters.")),
                                   Length(max=40, message=_l("Enter a code of at most 40 characters."))])
    name_vi = StringField(_l("Name (Vietnamese)"), filters=[_strip],
                          validators=[DataRequired(_l("Enter the Vietnamese name.")), Length(max=200)])
    name_en = StringField(_l("Name (English)"), filters=[_strip], validators=[Optional(), Length(max=200)])
    kind = SelectField(_l("Kind"), choices=list(UNIT_KINDS),
                       validate_choice=False, validators=[InputRequired(_l("Choose a kind."))])
    parent_code = StringField(_l("Parent unit (code)"), filters=[_strip])
    valid_from = LocalDateField(_l("Valid from"), validators=[Optional()])
    valid_to = LocalDateField(_l("Ends on (first day it no longer exists)"), validators=[Optional()])
    successor_code = StringField(_l("Merged into (successor code)"), filters=[_strip])

    def __init__(self, unit=None, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.unit = unit
        self.parent = self.successor = None
        if unit is not None:  # the code of an existing unit never changes
            self.code.data = unit.code

    def validate_code(self, field):
        if self.unit is None and unit_by_code(field.data) is not None:
            raise ValidationError(_l("A unit with code %(c)s already exists.", c=field.data))

    def validate_kind(self, field):
        if field.data not in UNIT_KINDS:
            raise ValidationError(_l("Choose a kind."))

    def validate_valid_to(self, field):
        if field.data and self.valid_from.data and field.data <= self.valid_from.data:
            raise ValidationError(_l("The end date must be after the start date."))

    def validate_parent_code(self, field):
        if not field.data:
            return
        self.parent = unit_by_code(field.data)
        if self.parent is None:
            raise ValidationError(_l("Parent unit %(c)s not found.", c=field.data))
        if self.unit is not None:
            from ..services.units import subtree_ids

            if self.parent.id in subtree_ids(self.unit.id):
                raise ValidationError(_l("A unit cannot be placed under itself or one of its own units."))

    def validate_successor_code(self, field):
        if not field.data:
            return
        self.successor = unit_by_code(field.data)
        if self.successor is None:
            raise ValidationError(_l("Successor unit %(c)s not found.", c=field.data))
        if self.unit is not None and self.successor.id == self.unit.id:
            raise ValidationError(_l("A unit cannot be its own successor."))
        if self.valid_to.data is None and not self.valid_to.errors:
            raise ValidationError(_l("A merged unit needs the date it ends (valid to)."))


class CounterForm(FlaskForm):
    code = StringField(_l("Code"), filters=[_strip],
                       validators=[DataRequired(_l("Enter the counter's code and name.")), Length(max=40)])
    name_vi = StringField(_l("Name"), filters=[_strip],
                          validators=[DataRequired(_l("Enter the counter's code and name.")), Length(max=200)])
    name_en = StringField(filters=[_strip], validators=[Optional(), Length(max=200)])

    def validate_code(self, field):
        from ..models import Counter

        if db.session.scalar(select(Counter.id).where(Counter.code == field.data)):
            raise ValidationError(_l("A counter with code %(c)s already exists.", c=field.data))


def _password_policy(form, field):
    problem = password_problem(field.data or "")
    if field.data and problem:
        raise ValidationError(problem)


class UserForm(FlaskForm):
    """A user's role, scope, status and (new) password; `creating` adds the
    username and makes the password required."""

    username = StringField(_l("Username"), filters=[_strip], validators=[Optional(), Length(max=80)])
    role = SelectField(_l("Role"), choices=list(ROLES), validate_choice=False)
    unit_code = StringField(_l("Unit code (scope)"), filters=[_strip])
    active = BooleanField(_l("active"), false_values=("", "0", "false"))
    password = PasswordField(_l("Password"), validators=[Optional(), _password_policy])

    def __init__(self, creating: bool = False, user=None, me=None, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.creating, self.user, self.me, self.scope_unit = creating, user, me, None

    def validate_username(self, field):
        if not self.creating:
            return
        if not field.data:
            raise ValidationError(_l("Enter a username."))
        if db.session.scalar(select(User.id).where(User.username == field.data)):
            raise ValidationError(_l("Username %(u)s is taken.", u=field.data))

    def validate_role(self, field):
        if field.data not in ROLES:
            raise ValidationError(_l("Choose a role."))
        if self.user is not None and self.user.id == getattr(self.me, "id", None) and field.data != "admin":
            raise ValidationError(_l("You cannot remove your own administrator rights or deactivate yourself."))

    def validate_unit_code(self, field):
        self.scope_unit = unit_by_code(field.data)
        if field.data and self.scope_unit is None:
            raise ValidationError(_l("Unit %(c)s not found.", c=field.data))
        if self.role.data in ROLES and self.role.data != "admin" and self.scope_unit is None:
            raise ValidationError(_l("Every role but administrator needs a unit (its scope)."))

    def validate_active(self, field):
        if self.user is not None and self.user.id == getattr(self.me, "id", None) and not field.data:
            raise ValidationError(_l("You cannot remove your own administrator rights or deactivate yourself."))

    def validate_password(self, field):
        if self.creating and not field.data:
            raise ValidationError(password_problem(""))


TARGET_MESSAGE = _l("Enter a year and a target between 1 and 100%.")


class TargetForm(FlaskForm):
    # (no NumberRange: it would %-format the message, whose "100%" is text)
    year = LocalIntegerField(_l("Report year"), message=TARGET_MESSAGE, validators=[InputRequired(TARGET_MESSAGE)])
    unit_kind = SelectField(_l("Kind of unit"), choices=["", *UNIT_KINDS],
                            validate_choice=False, filters=[_empty_none])
    unit_code = StringField(_l("Or one unit (code)"), filters=[_strip])
    target = LocalDecimalField(_l("Target (%% satisfied)"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.unit = None

    def validate_year(self, field):
        if field.data is None or not (2000 <= field.data <= 2100):
            raise ValidationError(TARGET_MESSAGE)

    def validate_target(self, field):
        v = getattr(field, "number", None)
        if v is None or not (0 < v <= 100):
            raise ValidationError(TARGET_MESSAGE)

    def validate_unit_kind(self, field):
        if field.data not in UNIT_KINDS:
            field.data = None

    def validate_unit_code(self, field):
        self.unit = unit_by_code(field.data)
        if field.data and self.unit is None:
            raise ValidationError(_l("Unit %(c)s not found.", c=field.data))

    @property
    def fraction(self) -> float:
        return self.target.number / 100.0


class CalendarForm(FlaskForm):
    cutoff_day = LocalIntegerField(_l("Report year starts on day"), message=_l("Enter a valid cut-off day and month."),
                                   validators=[InputRequired(_l("Enter a valid cut-off day and month."))])
    cutoff_month = LocalIntegerField(_l("of month"), message=_l("Enter a valid cut-off day and month."),
                                     validators=[InputRequired(_l("Enter a valid cut-off day and month."))])

    def validate_cutoff_day(self, field):
        try:
            dt.date(2001, int(self.cutoff_month.data or 0), int(field.data or 0))
        except (TypeError, ValueError):
            raise ValidationError(_l("Enter a valid cut-off day and month.")) from None


# ---------------------------------------------------------------- paper and phone entry

ENTRY_INSTRUMENTS = ("counter-quick", "sipas-services")


class EntrySheetForm(FlaskForm):
    """What the entry sheet is for (counter, questionnaire, channel, date on the
    paper).  The answers themselves are checked against the instrument by
    `collect.validate`, like the citizens' own form."""

    counter = StringField(filters=[_strip], validators=[DataRequired(), Length(max=40)])
    instrument = SelectField(choices=list(ENTRY_INSTRUMENTS), default=ENTRY_INSTRUMENTS[0])
    channel = SelectField(choices=list(TYPED_CHANNELS), default=TYPED_CHANNELS[0])
    date = LocalDateField(validators=[Optional()])
    # The label written on the paper batch (or the phone round): stored on each
    # typed response and in the audit log with the staff user who typed it.
    batch = StringField(filters=[_strip], validators=[
        DataRequired(_l("Enter the label of the paper batch (for example the number on its cover).")),
        Length(max=80, message=_l("The batch label is at most %(max)d characters."))])


def first_errors(form) -> list[str]:
    """Every message of a form, once each, in field order."""
    out: list[str] = []
    for field in form:
        for e in field.errors:
            if str(e) not in out:
                out.append(str(e))
    return out
