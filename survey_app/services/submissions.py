"""Submissions: a posted questionnaire form checked against its instrument.

Used by the citizen pages (`public/`: QR and kiosk) and by staff paper / phone
entry (`entry/`).  Three steps:

1. `questions(definition, locale)`: the instrument's items as form questions
   (texts vi/en come from the instrument definition).
2. `validate(definition, form)`: every posted field checked against the
   instrument (unknown fields or items, values out of range, repeated values,
   oversize text).  Returns the clean answers and field-level errors; nothing
   is written.
3. `responses.create_response(...)`: one transaction writes the Response and its
   Answers.  An idempotency key (unique) makes a double tap or a retry store
   one row; a dossier hash (unique) is redeemed in the same transaction.
   Suspicious patterns (a burst from one device, identical answer vectors at
   one counter in a short window) are flagged with a reason, never dropped.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from flask import current_app
from flask_babel import format_decimal
from flask_babel import gettext as _

from analysis.schema import ALL_STRATUM

from .privacy import keyed_hash

# Form fields that carry no answer: the CSRF token, the idempotency key, the
# honeypot, the dossier signature and the hidden default button (Enter).


CSRF_FIELD = "csrf_token"
KEY_FIELD = "k"
HONEYPOT_FIELD = "website"
DOSSIER_FIELD = "d"
# The hidden default button of the citizen forms: Enter on a choice "presses" it, and nothing is sent.
ENTER_FIELD = "_enter"
TRANSPORT_FIELDS = (CSRF_FIELD, KEY_FIELD, HONEYPOT_FIELD, DOSSIER_FIELD, ENTER_FIELD)

NA = "na"
OTHER_FIELD = "khac"           # the procedure field "other": offered at every unit
MAX_FIELD_CHARS = 200          # any non-text field
DEFAULT_TEXT_MAX = 1000
KEY_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
RESPONDENT_STORES = ("respondent",)


def new_key() -> str:
    """A fresh one-time idempotency key for a rendered form."""
    return uuid.uuid4().hex


def valid_key(key: Optional[str]) -> bool:
    return bool(key) and bool(KEY_RE.match(key))


def device_hash(cookie_value: Optional[str]) -> Optional[str]:
    if not cookie_value:
        return None
    return keyed_hash(current_app.config["SECRET_KEY"], cookie_value, "device")


def dossier_hash(dossier_ref: str) -> str:
    return keyed_hash(current_app.config["SECRET_KEY"], dossier_ref, "dossier")


# ------------------------------------------------------------------ questions

def _text(obj: Mapping[str, str], locale: str) -> str:
    return (obj.get("en") or obj.get("vi", "")) if locale == "en" else obj.get("vi", "")


@dataclass
class Option:
    value: str
    label: str
    na: bool = False


@dataclass
class Question:
    key: str
    kind: str
    legend: str
    short: str
    options: list[Option] = field(default_factory=list)
    max_length: Optional[int] = None
    element: Optional[str] = None


#: The two steps of a citizen form: the ratings (one short screen), then the
#: optional details after "Send" (items marked `"step": "details"`).
RATING_STEP = "rating"
DETAILS_STEP = "details"


def step_of(item: dict) -> str:
    return item.get("step", RATING_STEP)


def field_options(item: dict, unit_kind: Optional[str] = None, strata: Optional[set] = None) -> list[dict]:
    """The procedure-field (stratum) options offered at a unit: those whose
    `unit_kinds` include the unit's kind (no `unit_kinds`: every kind); when the
    unit has dossier volumes per field (`strata`, from its Volume rows), only
    those fields, plus "other"."""
    opts = [o for o in item.get("options", [])
            if unit_kind is None or not o.get("unit_kinds") or unit_kind in o["unit_kinds"]]
    if strata:
        known = [o for o in opts if o["value"] in strata or o["value"] == OTHER_FIELD]
        if any(o["value"] != OTHER_FIELD for o in known):
            opts = known
    return opts


def questions(definition: dict, locale: str = "vi", step: Optional[str] = None, *,
              unit_kind: Optional[str] = None, strata: Optional[set] = None) -> list[Question]:
    """The instrument's items as questions in `locale` (vi default); `step`:
    only the items of that step (RATING_STEP / DETAILS_STEP); `unit_kind` /
    `strata`: the procedure fields offered at that unit (`field_options`)."""
    elements = definition.get("elements", {})
    scale = definition.get("scale", {})
    yesno = definition.get("yesno", {
        "1": {"vi": "Có", "en": "Yes"}, "0": {"vi": "Không", "en": "No"},
        "na": {"vi": "Không biết", "en": "Don't know"}})
    out = []
    for it in definition["items"]:
        if step is not None and step_of(it) != step:
            continue
        kind = it["kind"]
        legend = _text(it["text"], locale)
        el = it.get("element")
        if kind == "likert5" and el and el in elements:
            short = _text(elements[el], locale)
        elif it["key"] == "overall" and kind == "likert5":
            short = _("Overall satisfaction")
        else:
            short = legend
        q = Question(key=it["key"], kind=kind, legend=legend, short=short, element=el)
        if kind == "likert5":
            q.options = [Option(v, _text(scale.get(v, {"vi": v, "en": v}), locale)) for v in "12345"]
            q.options.append(Option(NA, _text(scale.get(NA, {"vi": "Không ý kiến", "en": "No opinion"}),
                                                locale), na=True))
        elif kind == "yesno":
            q.options = [Option(v, _text(yesno[v], locale)) for v in ("1", "0")]
            q.options.append(Option(NA, _text(yesno[NA], locale), na=True))
        elif kind in ("choice", "multi"):
            opts = (field_options(it, unit_kind, strata) if it.get("store") == "stratum"
                    else it.get("options", []))
            q.options = [Option(o["value"], _text(o, locale)) for o in opts]
        elif kind == "text":
            q.max_length = int(it.get("max_length", DEFAULT_TEXT_MAX))
        out.append(q)
    return out


# ------------------------------------------------------------------ validation

@dataclass
class Clean:
    """Validated answers of one questionnaire."""

    answers: dict[str, int] = field(default_factory=dict)
    stratum: str = ALL_STRATUM
    age_group: Optional[str] = None
    gender: Optional[str] = None
    respondent: dict[str, str] = field(default_factory=dict)
    comment: Optional[str] = None
    # "Tôi muốn được phản hồi" on the details step (services/cases.py opens a case).
    reply_requested: bool = False

    def vector(self) -> tuple:
        return tuple(sorted(self.answers.items()))


@dataclass
class Validation:
    clean: Clean
    errors: dict[str, str]          # field key -> message ("" key: form-level)
    values: dict[str, Any]          # what was posted (to re-show the form)

    @property
    def ok(self) -> bool:
        return not self.errors


_CONTROL = dict.fromkeys(c for c in range(32) if c not in (9, 10))
_CONTROL[127] = None


def _normalise_text(value: str) -> str:
    """Newlines normalised; NUL and the other control characters (but tab and
    newline) removed: PostgreSQL refuses NUL in text, and none belongs in a comment."""
    return value.replace("\r\n", "\n").replace("\r", "\n").translate(_CONTROL).strip()


def posted_values(definition: dict, form) -> dict[str, Any]:
    """The posted answers (for re-showing a form with the citizen's answers kept)."""
    out: dict[str, Any] = {}
    for it in definition["items"]:
        if it["kind"] == "multi":
            out[it["key"]] = [v[:MAX_FIELD_CHARS] for v in form.getlist(it["key"])][:50]
        else:
            v = form.get(it["key"], "")
            limit = int(it.get("max_length", DEFAULT_TEXT_MAX)) * 2 if it["kind"] == "text" else MAX_FIELD_CHARS
            out[it["key"]] = v[:limit]
    return out


def chose_anything(definition: dict, form) -> bool:
    """Whether the citizen chose or wrote anything, "No opinion" included
    (an all-"No opinion" form is a response that counts in no rate)."""
    return any(form.get(it["key"], "").strip() for it in definition["items"])


def validate(definition: dict, form, *, extra_fields: tuple[str, ...] = TRANSPORT_FIELDS,
             require_answer: bool = True) -> Validation:
    """Check a posted form (a werkzeug MultiDict) against the instrument."""
    errors: dict[str, str] = {}
    clean = Clean()
    items = {it["key"]: it for it in definition["items"]}

    unknown = [k for k in form.keys() if k not in items and k not in extra_fields]
    if unknown:
        names = ", ".join(sorted(k[:40] for k in unknown)[:5])
        errors[""] = _("The form contained fields this questionnaire does not have: %(names)s.", names=names)

    for key in extra_fields:
        if key in form and len(form.getlist(key)) > 1:
            errors[""] = _("The form was sent in an unexpected shape. Please send it again.")
        if len(form.get(key, "")) > 2 * MAX_FIELD_CHARS:
            errors[""] = _("The form was sent in an unexpected shape. Please send it again.")

    for key, it in items.items():
        kind = it["kind"]
        values = form.getlist(key)
        if kind != "multi" and len(values) > 1:
            errors[key] = _("Only one answer can be chosen here.")
            continue
        if kind == "multi":
            allowed = {o["value"] for o in it.get("options", [])}
            bad = [v for v in values if v not in allowed]
            if bad or len(values) > len(allowed):
                errors[key] = _("This answer is not one of the choices.")
                continue
            if values:
                for opt in sorted(allowed):
                    clean.answers[f"{key}_{opt}"] = 1 if opt in values else 0
            continue
        value = values[0] if values else ""
        if kind == "text":
            text = _normalise_text(value)
            limit = int(it.get("max_length", DEFAULT_TEXT_MAX))
            if len(text) > limit:
                errors[key] = _("Too long: at most %(max)s characters (now %(n)s).", max=format_decimal(limit),
                                n=format_decimal(len(text)))
            elif text:
                clean.comment = text
            continue
        if len(value) > MAX_FIELD_CHARS:
            errors[key] = _("This answer is not one of the choices.")
            continue
        value = value.strip()
        if value in ("", NA) and kind in ("likert5", "yesno"):
            if it.get("required") and value == "":
                errors[key] = _("Please choose an answer.")
            continue
        if kind == "likert5":
            if value not in ("1", "2", "3", "4", "5"):
                errors[key] = _("This answer is not one of the choices.")
                continue
            clean.answers[key] = int(value)
        elif kind == "yesno":
            if value not in ("0", "1"):
                errors[key] = _("This answer is not one of the choices.")
                continue
            clean.answers[key] = int(value)
        elif kind == "choice":
            if value == "":
                if it.get("required"):
                    errors[key] = _("Please choose an answer.")
                continue
            if value not in {o["value"] for o in it.get("options", [])}:
                errors[key] = _("This answer is not one of the choices.")
                continue
            store = it.get("store", "respondent")
            if store == "stratum":
                clean.stratum = value
            elif store == "age_group":
                clean.age_group = value
            elif store == "gender":
                clean.gender = value
            else:
                clean.respondent[key] = value
        else:  # an item kind this service does not know: never store it silently
            errors[key] = _("This answer is not one of the choices.")

    if require_answer and not errors and not clean.answers:
        errors[""] = _("Please choose at least one rating before sending.")
    return Validation(clean=clean, errors=errors, values=posted_values(definition, form))
