"""Words the staff pages, charts and downloads show for codes: element, unit
kind, role, quality flag, left-out reason, driver quadrant, adequacy and
target status; and the plain-language sentences built from them.

Labels are lazy (`_l`) so `pybabel extract` sees every message and each is
translated when shown, in the reader's language.  Keys come from
`analysis.schema` / `models` (never re-spelled as lists here); `check_labels`
(run by the tests) proves every code has its label.
"""
from __future__ import annotations

import math

from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from analysis.schema import CHANNELS, ELEMENTS, ITEM_KEYS, OVERALL, ROOT_LEVEL, UNDER_18, UNIT_KINDS, UNIT_LEVEL

from .format import isnum, local_date, num, pct

ELEMENT_LABELS = {
    OVERALL: _l("Overall satisfaction"),
    "access": _l("Access to the service"),
    "procedure": _l("Administrative procedure"),
    "staff": _l("Civil servant"),
    "result": _l("Result"),
    "feedback": _l("Handling of feedback"),
}
KIND_LABELS = {
    "province": _l("Province"), "service_center": _l("Public service centre"), "department": _l("Department"),
    "district": _l("District"), "commune": _l("Commune"), "ward": _l("Ward"), "other": _l("Other"),
    ROOT_LEVEL: _l("Whole scope"),
}
ROLE_LABELS = {"counter_staff": _l("Counter staff"), "unit_leader": _l("Unit leader"),
               "analyst": _l("Analyst"), "admin": _l("Administrator")}
FLAG_LABELS = {
    "low_n": _l("few responses (under 30 effective)"),
    "wide_ci": _l("wide interval (over 30 points)"),
    "over_population": _l("more responses than transactions"),
    "strata_without_responses": _l("some procedure fields have no responses"),
    "prorated_volume": _l("volume prorated to the period"),
}
CHANNEL_LABELS = {"qr": _l("QR code"), "kiosk": _l("kiosk"), "paper": _l("paper questionnaire"),
                  "online": _l("online"), "phone": _l("phone interview"), "import": _l("imported file")}
LEFT_OUT_LABELS = {"excluded": _l("excluded"), UNDER_18: _l("under 18"), "outside_period": _l("outside the period")}
QUADRANT_LABELS = {"improve_first": _l("improve first"), "keep_up": _l("keep up"),
                   "lower_priority": _l("lower priority"), "possible_overkill": _l("already strong")}
#: Answers 1–5, as the distribution chart's legend shows them.
SCALE_LABELS = (_l("1 Very dissatisfied"), _l("2 Dissatisfied"), _l("3 Neutral"), _l("4 Satisfied"),
                _l("5 Very satisfied"))
ADEQUACY_WORDS = {"adequate": _l("adequate"), "inadequate": _l("too small"), "no_population": _l("no volume"),
                  "not_eligible": _l("too few transactions")}
TARGET_STATUS_WORDS = {"met": _l("met"), "not_met": _l("not met"), "inconclusive": _l("inconclusive")}
VS_PARENT_WORDS = {"above": _l("above parent"), "below": _l("below parent"), "not_different": _l("not different")}

#: The audit log's action codes (every `audit.record` call's `action`; `tests/staff/test_audit_log.py`
#: finds them in the code and proves each has a label here, in both languages).
AUDIT_ACTION_LABELS = {
    "login": _l("signed in"), "logout": _l("signed out"), "login_locked": _l("sign-in locked after failed attempts"),
    "user_create": _l("user created"), "user_update": _l("user changed"), "user_unlock": _l("user unlocked"),
    "user_revoke_sessions": _l("user's sessions ended"),
    "unit_create": _l("unit created"), "unit_update": _l("unit changed"), "counter_create": _l("counter created"),
    "token_rotate": _l("counter QR code replaced"),
    "target_set": _l("target set"), "target_delete": _l("target removed"),
    "calendar_update": _l("reporting calendar changed"),
    "exclusion_request": _l("exclusion asked for"), "exclusion_withdraw": _l("exclusion request withdrawn"),
    "exclusion_reject": _l("exclusion request refused"), "response_exclude": _l("response excluded (approved)"),
    "response_include": _l("response counted again (approved)"),
    "paper_entry": _l("paper or phone questionnaire typed"), "quality_scan": _l("quality check of responses"),
    "export_report": _l("report downloaded"), "export_responses": _l("responses downloaded"),
    "export_responses_queued": _l("responses export started in the background"),
    "download_export": _l("prepared export file downloaded"), "export_bieu06": _l("Biểu 06 table downloaded"),
    "import_units": _l("units imported"), "import_volumes": _l("transaction volumes imported"),
    "replace_volumes": _l("transaction volumes replaced"), "import_responses": _l("responses imported"),
    "period_close": _l("period closed"), "period_reopen": _l("period reopened"),
    "period_verify": _l("closed period checked"),
    "approval_submit": _l("unit figures sent for approval"), "approval_accept": _l("unit figures approved"),
    "approval_request_changes": _l("changes asked for on unit figures"),
    "approval_publish": _l("unit figures published"),
    "api.client_create": _l("API client created"), "api.client_revoke": _l("API client revoked"),
    "api.dossier_events": _l("dossier events received (API)"), "api.dossier_offered": _l("rating link offered (API)"),
    "api.volumes": _l("transaction volumes received (API)"),
    # Codes of the restructuring, case and webhook work of issue 14 (labelled here before they land).
    "unit_merge": _l("units merged"), "user_email": _l("user's e-mail address changed"),
    "case_opened": _l("case opened"), "case_taken": _l("case taken on"), "case_answered": _l("case answered"),
    "case_closed": _l("case closed"),
    "api.webhook_set": _l("API webhook set"), "api.webhook_off": _l("API webhook turned off"),
    "api.webhook_resend": _l("API webhook delivery sent again"),
}
#: Words for the most common keys of an audit entry's details (others are shown as they are).
AUDIT_DETAIL_LABELS = {
    "unit": _l("unit"), "reason": _l("reason"), "role": _l("role"), "rows": _l("rows"), "file": _l("file"),
    "version": _l("version"), "period": _l("period"), "before": _l("before"), "after": _l("after"),
    "name": _l("name"), "created": _l("created"), "updated": _l("updated"), "flags": _l("flags"),
    "batch": _l("paper batch"), "counter": _l("counter"), "channel": _l("channel"), "year": _l("year"),
    "kind": _l("kind"), "target": _l("target"), "note": _l("note"), "format": _l("format"),
    "requested_by": _l("asked by"), "status": _l("status"), "active": _l("active"),
    "accepted": _l("accepted"), "duplicates": _l("duplicates"), "errors": _l("errors"), "rights": _l("rights"),
    "flagged": _l("flagged"),
}
#: What an audit entry is about (its `target_type`), in words.
AUDIT_TARGET_LABELS = {
    "user": _l("user"), "unit": _l("unit"), "counter": _l("counter"), "target": _l("target"),
    "calendar": _l("reporting calendar"), "response": _l("response"), "responses": _l("responses"),
    "api_client": _l("API client"), "dossier": _l("dossier"), "paper_batch": _l("paper batch"),
    "period": _l("period"), "unit_approval": _l("unit figures"), "import": _l("file import"),
    "report": _l("report"), "case": _l("case"), "webhook_delivery": _l("webhook delivery"),
}


def audit_action(code: str) -> str:
    """An audit action code in words (the code itself when it has no label yet)."""
    label = AUDIT_ACTION_LABELS.get(code or "")
    return str(label) if label is not None else str(code or "")


def audit_target(target_type) -> str:
    """An audit entry's target type in words (as it is when it has no label)."""
    label = AUDIT_TARGET_LABELS.get(target_type or "")
    return str(label) if label is not None else str(target_type or "")


def _detail_value(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_detail_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_detail_value(v) for v in value) or "–"
    return str(value)


def audit_details(details) -> list[tuple[str, str]]:
    """An audit entry's details as readable (key, value) pairs: Vietnamese as letters (never `\\u00e3`
    escapes), common keys in words, nested values flattened."""
    if not details:
        return []
    if not isinstance(details, dict):
        return [("", _detail_value(details))]
    return [(str(AUDIT_DETAIL_LABELS.get(k, k)), _detail_value(v)) for k, v in details.items()]


def check_labels() -> list[str]:
    """Codes without a label (empty when every element, kind and role has one)."""
    from ..models import ROLES

    missing = [k for k in ITEM_KEYS if k not in ELEMENT_LABELS]
    missing += [k for k in UNIT_KINDS if k not in KIND_LABELS]
    missing += [r for r in ROLES if r not in ROLE_LABELS]
    missing += [c for c in CHANNELS if c not in CHANNEL_LABELS]
    return missing


def element_keys(with_overall: bool = True) -> tuple[str, ...]:
    """The elements in report order, then the overall question."""
    return ELEMENTS + ((OVERALL,) if with_overall else ())


def value_words() -> dict[str, dict[str, str]]:
    """Code → words per column, for the report downloads (in the current language)."""
    kinds = {k: str(v) for k, v in KIND_LABELS.items()}
    return {
        "kind": kinds,
        "level": kinds | {UNIT_LEVEL: _("unit")},
        "adequacy": {k: str(v) for k, v in ADEQUACY_WORDS.items()},
        "target_status": {k: str(v) for k, v in TARGET_STATUS_WORDS.items()},
        "vs_parent": {k: str(v) for k, v in VS_PARENT_WORDS.items()} | {"unknown": "", "no_parent": ""},
    }


def plain_interval(low, high, level: float = 0.95) -> str:
    """An element's rate in words: “from 91% to 98% of those who answered are satisfied (95% confidence)”.

    An element rate is a share of the answers to that item (METHODOLOGY 2); the satisfaction
    index is not a share of people: say it with `index_sentence`."""
    if not (isnum(low) and isnum(high)):
        return _("Not enough answers to say how many of those who answered are satisfied.")
    lo = math.floor(float(low) * 100 + 1e-9)
    hi = math.ceil(float(high) * 100 - 1e-9)
    return _("from %(low)s%% to %(high)s%% of those who answered are satisfied (%(level)s%% confidence)",
             low=lo, high=hi, level=int(round(level * 100)))


def index_elements(row) -> int:
    """How many elements the index averages (an element nobody answered is left out, METHODOLOGY 2)."""
    missing = [f for f in str((row or {}).get("flags") or "").split(";") if f.strip().startswith("missing:")]
    return max(len(ELEMENTS) - len(missing), 0)


def index_sentence(row, first, last, level: float = 0.95) -> str:
    """The index said for what it is: “Satisfaction index (average of the 5 elements) from 15/12/2025
    to 14/12/2026: 87.7% (95% confidence interval: from 86.8% to 88.5%).”  Never a share of people."""
    row = row or {}
    k = index_elements(row)
    head = _("Satisfaction index (average of the %(k)s elements) from %(first)s to %(last)s",
             k=k, first=local_date(first), last=local_date(last))
    if not isnum(row.get("index")):
        return _("%(head)s: no eligible responses.", head=head)
    if isnum(row.get("index_ci_low")) and isnum(row.get("index_ci_high")):
        return _("%(head)s: %(index)s (%(level)s%% confidence interval: from %(low)s to %(high)s).", head=head,
                 index=pct(row["index"]), level=int(round(level * 100)), low=pct(row["index_ci_low"]),
                 high=pct(row["index_ci_high"]))
    return _("%(head)s: %(index)s.", head=head, index=pct(row["index"]))


def small_sample_min() -> int:
    """Below this many responses a figure is not published (PUBLIC_MIN_N) and staff pages mute it."""
    from flask import current_app

    return int(current_app.config["PUBLIC_MIN_N"])


def small_sample(row) -> str:
    """The reason a unit's headline is muted (“small sample: n = 1, not enough to draw conclusions”),
    or "" when its sample is large enough to show the figure in full."""
    n = (row or {}).get("n")
    if not isnum(n) or int(n) >= small_sample_min():
        return ""
    return _("small sample: n = %(n)s, not enough to draw conclusions", n=num(n))


def adequacy_text(row, short: bool = False) -> tuple[str, str]:
    """(css class, words) for the adequacy badge: “Sample large enough” or “12 more responses needed
    (373 required)”, never both.  `short` is kept for the callers; the words are the same."""
    a = str(row.get("adequacy") or "")
    n, req = row.get("n"), row.get("required_n")
    if a == "adequate":
        return "ok", _("Sample large enough")
    if a == "inadequate":
        if isnum(req) and isnum(n):
            more = int(max(0, req - n))
            return "warn", _("%(more)s more responses needed (%(req)s required)", more=num(more), req=num(req))
        return "warn", _("Sample too small")
    if a == "no_population":
        return "info", _("No transaction volume recorded")
    if a == "not_eligible":
        return "info", _("Too few transactions to sample")
    return "info", "–"


def target_text(row, short: bool = False) -> tuple[str, str]:
    """(css class, words) for the target badge."""
    s = str(row.get("target_status") or "")
    t = row.get("target")
    tt = pct(t, 0) if isnum(t) else ""
    if short:
        words = {"met": ("ok", _("Target %(t)s met", t=tt)), "not_met": ("bad", _("Target %(t)s not met", t=tt)),
                 "inconclusive": ("warn", _("Not yet known (target %(t)s)", t=tt))}
        return words.get(s, ("info", _("No target set")))
    if s == "met":
        return "ok", _("Target %(t)s met (even the lowest plausible value reaches it)", t=tt)
    if s == "not_met":
        return "bad", _("Target %(t)s not met (even the highest plausible value is below it)", t=tt)
    if s == "inconclusive":
        return "warn", _("Not yet known whether target %(t)s is met: more responses needed", t=tt)
    return "info", _("No target set")


def flag_words(flags) -> list[str]:
    """The index table's `flags` (“low_n;missing:staff”) in words."""
    out = []
    for f in str(flags or "").split(";"):
        f = f.strip()
        if not f:
            continue
        if f.startswith("missing:"):
            el = f.split(":", 1)[1]
            out.append(_("no answers for %(el)s", el=str(ELEMENT_LABELS.get(el, el))))
        else:
            out.append(str(FLAG_LABELS.get(f, f)))
    return out


def left_out_words(counts) -> str:
    """{“excluded”: 3, “under_18”: 1} → “excluded: 3, under 18: 1”."""
    return ", ".join(f"{LEFT_OUT_LABELS.get(k, k)}: {num(v)}" for k, v in sorted((counts or {}).items()))


def unit_name(row_or_unit) -> str:
    """A unit's name in the page's language (Vietnamese when there is no English name)."""
    loc = str(get_locale() or "vi")
    if hasattr(row_or_unit, "name") and callable(row_or_unit.name):
        return row_or_unit.name(loc)
    vi, en = row_or_unit.get("name_vi") or "", row_or_unit.get("name_en") or ""
    return (en or vi) if loc == "en" else vi
