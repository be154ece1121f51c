"""Citizen pages: `/c/<token>` (QR), `/k/<token>` (kiosk), thank-you pages, health.

The form is server-rendered and works without JavaScript.  Submissions go
through `collect` (validation + one-transaction insert + flags).  CSRF is
checked here, inside the view, after the rate limits: a request with a
missing or expired token is counted by the limiter and gets the form back
with the citizen's answers kept, never a bare 400 page.
"""
from __future__ import annotations

import functools
import logging
from typing import Optional

from flask import (
    abort,
    current_app,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_wtf.csrf import generate_csrf, validate_csrf
from sqlalchemy import text
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import joinedload
from wtforms.validators import ValidationError

from analysis.schema import ALL_STRATUM

from ..errors import error_page
from ..extensions import csrf, db, limiter
from ..models import Counter
from ..services import devices, instruments, quality, responses, submissions, units
from ..services.periods import local_today
from ..services.privacy import keyed_hash
from ..services.tokens import is_legacy_dossier_signature, parse_dossier_signature
from . import bp, hotpath, ratelimit

log = logging.getLogger(__name__)

DEVICE_COOKIE = devices.COOKIE
QR_INSTRUMENT = "counter-quick"
#: A dossier link may name the procedure field (`/c/<token>?d=<sig>&f=dat_dai`): then it is not asked.
FIELD_ARG = "f"


def _refuse_transport(form, key: str, again):
    """The checks of a citizen form POST before its answers: Enter on a choice
    (the hidden default button: the form again, answers kept, 200), the
    idempotency key (it comes last: without it the body was cut off in transit,
    said first), the CSRF token.  `again(errors=, alert=, status=)` re-shows the
    form; None when the POST may go on."""
    if form.get(submissions.ENTER_FIELD):
        return again(alert=_("Nothing has been sent yet. Your answers are kept: press “Send” when you have "
                             "finished."), status=200)
    if not submissions.valid_key(key):
        return again(errors={"": _("The form was sent in an unexpected shape. Please send it again.")})
    if current_app.config["WTF_CSRF_ENABLED"]:
        try:
            validate_csrf(form.get(submissions.CSRF_FIELD))
        except ValidationError:
            return again(alert=_("This page was open for a long time, so for your security it has to be "
                                 "sent once more. Your answers are kept: please check them and press "
                                 "“Send” again."))
    return None


# ------------------------------------------------------------------ health

@bp.get("/healthz")
@limiter.exempt
def healthz():
    """200 when the database answers, 503 otherwise."""
    try:
        db.session.execute(text("SELECT 1"))
        return jsonify(status="ok", database="ok")
    except SQLAlchemyError:
        db.session.rollback()
        return jsonify(status="error", database="unreachable"), 503


# ------------------------------------------------------------------ rate-limit keys
# Keys live only in the limiter's storage (memory or Redis); the IP is hashed
# even there and never written to the database.

def _token_counter_id() -> str:
    ref = hotpath.counter_ref((request.view_args or {}).get("token", ""))
    return str(ref.counter_id) if ref else "invalid"


def _ip_hash() -> str:
    addr = request.remote_addr or "unknown"
    return keyed_hash(current_app.config["SECRET_KEY"], addr, "ratelimit-ip")[:32]


def key_counter() -> str:
    return f"counter:{_token_counter_id()}"


def key_device() -> str:
    """A verified device token keys its own limit; no token, or an invented or
    altered one, falls back to the hashed IP at this counter."""
    dev = devices.current()
    who = f"dev:{devices.device_hash(dev)[:32]}" if dev else f"ip:{_ip_hash()}"
    return f"device:{_token_counter_id()}:{who}"


def key_ip() -> str:
    return f"ip:{_ip_hash()}"


def _counter_ceiling() -> Optional[str]:
    """The counter's hourly ceiling (`quality.counter_ceiling`, from the unit's volumes), for a POST;
    the unit comes from the counter's light row, which the view loads anyway (`hotpath`)."""
    try:
        ref = hotpath.counter_ref((request.view_args or {}).get("token", ""))
        light = hotpath.light_counter(ref.counter_id) if ref else None
        ceiling = quality.unit_ceiling(light.unit_id) if light else None
    except OperationalError:  # the database is down: the view answers 503 with the answers kept
        db.session.rollback()
        return None
    return f"{ceiling}/hour" if ceiling else None


def _form_windows() -> list[ratelimit.Window]:
    """The rate-limit windows of a citizen form request (config PUBLIC_LIMIT_*, Flask-Limiter syntax).
    POST: a loose per-IP ceiling (a whole centre may share one IP), per counter (a minute limit and
    the hourly ceiling sized from the counter's volume), per device (signed token, else hashed IP)
    at the counter.  GET: per IP."""
    cfg = current_app.config
    if request.method != "POST":
        return ratelimit.windows("public-ip-get", key_ip(), cfg["PUBLIC_LIMIT_IP_GET"])
    counter = key_counter()
    return (ratelimit.windows("public-ip", key_ip(), cfg["PUBLIC_LIMIT_IP"])
            + ratelimit.windows("public-counter", counter, cfg["PUBLIC_LIMIT_COUNTER"])
            + ratelimit.windows("public-counter", counter, _counter_ceiling())
            + ratelimit.windows("public-device", key_device(), cfg["PUBLIC_LIMIT_DEVICE"]))


def _on_breach(_limit_info):
    """A breached limit on a form POST re-shows the form with the answers kept (429)."""
    try:
        if request.endpoint == "public.details":  # the details form: the plain 429 page (h-rating)
            return None
        kiosk = request.path.startswith("/k/")
        counter, err = _resolve((request.view_args or {}).get("token", ""))
        if err is not None:
            return None
        inst = instruments.latest_instrument(QR_INSTRUMENT)
        if inst is None:
            return None
        values = submissions.posted_values(inst.definition, request.form)
        resp = _render_form(counter, inst, kiosk=kiosk, values=values,
                            key=request.form.get(submissions.KEY_FIELD) or submissions.new_key(),
                            dossier=request.form.get(submissions.DOSSIER_FIELD, ""),
                            alert=_("You have sent this form many times in a short while. "
                                    "Please wait a minute, then press “Send” again. Your answers are kept."),
                            status=429)
        resp.headers["Retry-After"] = "60"
        return resp
    except Exception:  # noqa: BLE001 - fall back to the plain 429 page
        log.exception("rate-limit page failed")
        return None


def _form_limits(view):
    """The rate limits of a form view (`_form_windows`), every window of the request counted in one
    storage round trip (`ratelimit.hit`).  A refused POST gets `_on_breach`'s page, else the plain
    429 page."""

    @functools.wraps(view)
    def limited(*args, **kwargs):
        breached = ratelimit.hit(_form_windows())
        if breached is not None:
            resp = _on_breach(breached) if request.method == "POST" else None
            if resp is None:
                abort(429)
            return resp
        return view(*args, **kwargs)

    _OWN_LIMITS.add(f"{bp.name}.{view.__name__}")
    return limited


#: Endpoints whose limits `_form_limits` counts: Flask-Limiter's own per-request check skips them
#: (it would find nothing to count, at some cost on every request).
_OWN_LIMITS: set[str] = set()


@limiter.request_filter
def _limits_counted_in_the_view() -> bool:
    return request.endpoint in _OWN_LIMITS


# ------------------------------------------------------------------ helpers

def _locale() -> str:
    return str(get_locale() or "vi")


def _resolve(token: str, light: bool = False):
    """(counter, None) for a valid current token, else (None, friendly 404/410 page).

    `light`: only the counter's id, unit_id, token_version, active and its
    unit's end date and names (`hotpath.light_counter`: one cheap query, kept a
    few seconds per process, for the form's GET and POST and the thank-you
    pages; the full counter loads on demand)."""
    ref = hotpath.counter_ref(token)
    if ref is None:
        counter = None
    elif light:
        counter = hotpath.light_counter(ref.counter_id)
    else:  # the counter with its unit, in one query (pages show the unit's name)
        counter = db.session.get(Counter, ref.counter_id, options=[joinedload(Counter.unit)])
    if counter is None or ref.version > counter.token_version:
        return None, error_page(
            404, _("This code is not valid"),
            _("Please scan the QR code at the counter again, or ask the staff at the counter for help."))
    if ref.version < counter.token_version or not counter.active:
        return None, error_page(
            410, _("This code has been replaced"),
            _("This QR code is no longer in use. Please scan the new QR code at the counter."))
    valid_to = counter.valid_to if light else counter.unit.valid_to
    if valid_to is not None and units.is_retired(valid_to, local_today()):
        return None, _retired_unit_page(db.session.get(Counter, counter.id).unit)
    return counter, None


def _retired_unit_page(unit):
    """410 for a counter of a unit that no longer exists (merged, dissolved):
    names the successor and links to its form when it has one active counter."""
    from ..services.tokens import counter_token
    from ..ui.format import local_date

    locale = _locale()
    successor = units.successor_on(unit, local_today())
    args = {"unit": unit.name(locale), "date": local_date(unit.valid_to)}
    if successor is None:
        return error_page(410, _("This code has been replaced"), _(
            "%(unit)s no longer exists from %(date)s, so this QR code is no longer used. Please scan the QR "
            "code at the counter where you were served.", **args))
    args["successor"] = successor.name(locale)
    counters = units.counters_under(successor.id)
    link = None
    if len(counters) == 1:
        kiosk = request.path.startswith("/k/")
        link = url_for("public.kiosk" if kiosk else "public.form",
                       token=counter_token(counters[0].id, counters[0].token_version))
    return error_page(410, _("This code has been replaced"), _(
        "%(unit)s has been merged into %(successor)s from %(date)s, so this QR code is no longer used. "
        "Please rate the service of %(successor)s instead.", **args),
        back_url=link, back_label=_("Rate %(successor)s", successor=args["successor"]) if link else None)


def _no_store(resp):
    resp.headers["Cache-Control"] = "no-store, max-age=0"
    resp.headers["Pragma"] = "no-cache"
    resp.headers["X-Robots-Tag"] = "noindex"
    return resp


def _device_cookie(resp):
    """A device without a valid signed token (none, invented, altered) gets a new one."""
    if devices.current() is None:
        resp.set_cookie(DEVICE_COOKIE, devices.issue(), max_age=400 * 24 * 3600,
                        httponly=True, samesite="Lax",
                        secure=current_app.config["SESSION_COOKIE_SECURE"])
    return resp


def _title(definition: dict, locale: str, key: str = "title") -> str:
    obj = definition.get(key) or {}
    return (obj.get("en") or obj.get("vi", "")) if locale == "en" else obj.get("vi", "")


def _render_form(counter, inst, *, kiosk: bool, values=None, errors=None, key=None, dossier="",
                 alert=None, status=200, field=""):
    """The rating step: the instrument's rating items on one short screen.
    `counter` may be a light row (`hotpath.LightCounter`): the full counter is
    loaded only when the page is rendered.  A fresh form (no answers, errors or
    alert) comes from `hotpath.cached_page`: its cache key must name every input
    of the template besides the CSRF token and the key (`field` comes from the
    query string, in `request.full_path`)."""
    locale = _locale()
    token = request.view_args["token"]

    def render(csrf_token: str, form_key: str) -> str:
        full = db.session.get(Counter, counter.id) if isinstance(counter, hotpath.LightCounter) else counter
        questions = submissions.questions(inst.definition, locale, submissions.RATING_STEP)
        # Details posted with the ratings (a crafted or older form) are kept on a re-shown form, unseen.
        shown = {q.key for q in questions} | ({"stratum"} if field else set())
        carried = [(k, v) for k, v in (values or {}).items() if k not in shown and v and isinstance(v, str)]
        other_errors = [(q.short, (errors or {})[q.key]) for q in submissions.questions(inst.definition, locale)
                        if q.key not in shown and (errors or {}).get(q.key)]
        return render_template(
            "public/form.html", counter=full, unit=full.unit, locale=locale, kiosk=kiosk,
            title=_title(inst.definition, locale), intro=_title(inst.definition, locale, "intro"),
            questions=questions, values=values or {}, errors=errors or {}, key=form_key,
            csrf_token=csrf_token, dossier=dossier or "", alert=alert, field=field, carried=carried,
            other_errors=other_errors, action=request.path, fields=submissions,
            idle_seconds=int(current_app.config["KIOSK_IDLE_SECONDS"]) if kiosk else None,
            fresh_url=url_for("public.kiosk", token=token,
                              lang=current_app.config["BABEL_DEFAULT_LOCALE"]) if kiosk else None,
            details_url=None if kiosk else url_for("public.details", token=token),
        )

    fresh = {"csrf": generate_csrf(), "key": key or submissions.new_key()}
    inst_id = getattr(inst, "id", None)
    if values or errors or alert or status != 200 or inst_id is None or getattr(counter, "id", None) is None:
        body = render(fresh["csrf"], fresh["key"])
    else:
        body = hotpath.cached_page(("public/form.html", inst_id, counter.id, kiosk, dossier or "", field, locale,
                                    request.full_path), render, fresh)
    resp = make_response(body, status)
    return _device_cookie(_no_store(resp))


def _dossier_field(inst, value: str) -> str:
    """The procedure field a dossier link names (`f`), when it is one of the instrument's fields."""
    item = next((it for it in inst.definition["items"] if it.get("store") == "stratum"), None)
    return value if item and value in {o["value"] for o in item.get("options", [])} else ""


def _dossier_hash_for(counter, sig: str):
    """(hash, None) for a valid dossier signature of this counter, else (None, error page)."""
    ref = parse_dossier_signature(sig)
    if ref is None and is_legacy_dossier_signature(sig):
        return None, error_page(
            410, _("This rating link is no longer in use"),
            _("Links of this older kind are no longer accepted. Please scan the QR code at the counter "
              "to rate the service."))
    if ref is None or ref.counter_id != counter.id:
        return None, error_page(
            404, _("This rating link is not valid"),
            _("Please check the link printed on your receipt, or scan the QR code at the counter."))
    return ref.dossier_hash, None


def _already_rated():
    return _no_store(error_page(
        409, _("Already rated"),
        _("This dossier has already been rated. Thank you: each dossier can be rated once."),
        template="public/already.html"))


def _thanks_url(kiosk: bool, token: str) -> str:
    return url_for("public.kiosk_thanks" if kiosk else "public.thanks", token=token)


# ------------------------------------------------------------------ the form

class _Offline:
    """Stand-in for the counter and its unit when the database cannot be
    reached: the form is re-shown from the shipped questionnaire file."""

    def __init__(self):
        self.unit = self

    def name(self, locale="vi"):
        return _("One-stop counter")


def _offline_form(kiosk: bool):
    """503: the citizen's answers and idempotency key kept on a form rendered
    without the database (a retry stores the response exactly once)."""
    from ..services.instruments import load_definitions

    db.session.rollback()
    log.exception("database unavailable during a submission")
    defs = [d for d in load_definitions() if d["key"] == QR_INSTRUMENT]
    if not defs or request.method != "POST":
        return error_page(503)
    inst = type("OfflineInstrument", (), {"definition": max(defs, key=lambda d: d["version"])})()
    form = request.form
    key = form.get(submissions.KEY_FIELD, "")
    resp = _render_form(_Offline(), inst, kiosk=kiosk, values=submissions.posted_values(inst.definition, form),
                        key=key if submissions.valid_key(key) else None,
                        dossier="" if kiosk else form.get(submissions.DOSSIER_FIELD, ""),
                        alert=_("Your answers could not be saved just now. They are kept on this page: "
                                "please press “Send” again in a moment."), status=503)
    resp.headers["Retry-After"] = "30"
    return resp


def _form_view(token: str, kiosk: bool):
    try:
        return _form_flow(token, kiosk)
    except OperationalError:
        return _offline_form(kiosk)


def _form_flow(token: str, kiosk: bool):
    counter, err = _resolve(token, light=True)
    if err is not None:
        return err
    inst = instruments.latest_instrument(QR_INSTRUMENT)
    if inst is None:
        return error_page(503)
    if request.method != "POST":  # GET and HEAD (Flask answers HEAD with this view): never a submission
        sig = request.args.get(submissions.DOSSIER_FIELD, "")
        if sig and not kiosk:
            dh, err = _dossier_hash_for(counter, sig)
            if err is not None:
                return err
            if responses.dossier_used(dh):
                return _already_rated()
        field = _dossier_field(inst, request.args.get(FIELD_ARG, "")) if sig and not kiosk else ""
        return _render_form(counter, inst, kiosk=kiosk, dossier=sig if not kiosk else "", field=field)
    return _submit(token, counter, inst, kiosk)


def _submit(token: str, counter, inst, kiosk: bool):
    limit = int(current_app.config["PUBLIC_MAX_FORM_BYTES"])
    if (request.content_length or 0) > limit:
        return error_page(413)
    request.max_content_length = limit
    form = request.form
    key = form.get(submissions.KEY_FIELD, "")
    sig = "" if kiosk else form.get(submissions.DOSSIER_FIELD, "")
    values = submissions.posted_values(inst.definition, form)

    field = _dossier_field(inst, form.get("stratum", "")) if sig else ""

    def again(*, errors=None, alert=None, status=400):
        return _render_form(db.session.get(Counter, counter.id), inst, kiosk=kiosk, values=values, errors=errors,
                            key=key if submissions.valid_key(key) else None, dossier=sig, alert=alert,
                            status=status, field=field)

    refused = _refuse_transport(form, key, again)
    if refused is not None:
        return refused
    fill = devices.age()
    if fill is not None and fill < float(current_app.config["PUBLIC_MIN_FILL_SECONDS"]):
        # Sent within seconds of the device's first page: a script, or a slip.  Nothing is
        # stored; the form comes back with the answers, and the next Send is accepted.
        resp = again(alert=_("Please check your answers, then press “Send” again."), status=429)
        resp.headers["Retry-After"] = str(int(current_app.config["PUBLIC_MIN_FILL_SECONDS"]))
        return resp
    if form.get(submissions.HONEYPOT_FIELD):
        # A field people cannot see was filled: a robot.  It gets the same
        # thank-you page and nothing is stored.
        log.info("honeypot filled at counter %s", counter.id)
        return redirect(_thanks_url(kiosk, token), 303)

    dh = None
    if sig:
        dh, err = _dossier_hash_for(counter, sig)
        if err is not None:
            return err
    # Any subset of answers is a response, "No opinion" everywhere included (it
    # counts in no rate); only a form with nothing chosen at all is sent back.
    result = submissions.validate(inst.definition, form, require_answer=False)
    if result.ok and not submissions.chose_anything(inst.definition, form):
        result.errors[""] = _("Nothing was chosen. Choose a face on at least one line (or “No opinion”), "
                              "then press “Send”.")
    if not result.ok:
        return again(errors=result.errors)
    try:
        outcome = responses.create_response(
            unit_id=counter.unit_id, counter_id=counter.id, instrument=inst, clean=result.clean,
            channel="kiosk" if kiosk else "qr", idempotency_key=key,
            dev_hash=devices.device_hash(devices.current()), dossier=dh)
    except OperationalError:
        return _offline_form(kiosk)
    if outcome.status == "dossier_used":
        return _already_rated()
    if kiosk:
        return redirect(_thanks_url(kiosk, token), 303)
    return redirect(url_for("public.thanks", token=token, k=key), 303)


@bp.route("/c/<token>", methods=["GET", "POST"])
@_form_limits
def form(token):
    return _form_view(token, kiosk=False)


@bp.route("/k/<token>", methods=["GET", "POST"])
@_form_limits
def kiosk(token):
    return _form_view(token, kiosk=True)


csrf.exempt(form)
csrf.exempt(kiosk)


@bp.get("/c/<token>/thanks")
def thanks(token):
    counter, err = _resolve(token, light=True)  # the page shows the unit's name only
    if err is not None:
        return err
    key = request.args.get(submissions.KEY_FIELD, "")
    done = request.args.get("done") == "1"
    details_url = None if done else url_for(
        "public.details", token=token, **({submissions.KEY_FIELD: key} if submissions.valid_key(key) else {}))
    return _no_store(make_response(render_template("public/thanks.html", counter=counter, kiosk=False,
                                                   done=done, details_url=details_url)))


# ------------------------------------------------------------------ the optional details after "Send"

def _details_window():
    import datetime as dt

    return dt.timedelta(minutes=float(current_app.config["DETAILS_WINDOW_MINUTES"]))


def _details_refused(status: str):
    if status == "already":
        return _no_store(error_page(
            409, _("Your comment has already been added"),
            _("Details can be added to a rating once, and this rating already has them. Thank you."),
            template="public/already.html"))
    if status == "expired":
        return _no_store(error_page(
            410, _("The time to add details has passed"),
            _("Details can be added within %(n)s minutes of sending the rating. Your rating itself is kept.",
              n=int(current_app.config["DETAILS_WINDOW_MINUTES"]))))
    return _no_store(error_page(
        404, _("This rating cannot be found"),
        _("Details can be added only from the phone that sent the rating, right after sending it. "
          "Your rating itself is kept.")))


def _render_details(counter, inst, *, key: str, ask_field: bool, values=None, errors=None, alert=None,
                    status=200, attach: bool):
    from sqlalchemy import select

    from ..models import Volume

    locale = _locale()
    strata = set(db.session.scalars(select(Volume.stratum).where(Volume.unit_id == counter.unit_id).distinct()))
    questions = [q for q in submissions.questions(inst.definition, locale, submissions.DETAILS_STEP,
                                                  unit_kind=counter.unit.kind, strata=strata)
                 if ask_field or q.key != "stratum"]
    body = render_template(
        "public/details.html", counter=counter, unit=counter.unit, locale=locale, questions=questions,
        values=values or {}, errors=errors or {}, key=key, csrf_token=generate_csrf(), alert=alert,
        attach=attach, action=url_for("public.details", token=request.view_args["token"]), fields=submissions)
    return _device_cookie(_no_store(make_response(body, status)))


@bp.route("/c/<token>/details", methods=["GET", "POST"])
@_form_limits
def details(token):
    """"Thêm góp ý": procedure field, comment, age group and gender, all optional.
    With `k` (from the thank-you page): added to the response sent with that
    key from this device within DETAILS_WINDOW_MINUTES, once.  Without: a
    comment on its own, stored as a response without ratings."""
    try:
        return _details_flow(token)
    except OperationalError:
        db.session.rollback()
        log.exception("database unavailable during details")
        return error_page(503)


def _details_flow(token: str):
    counter, err = _resolve(token)
    if err is not None:
        return err
    inst = instruments.latest_instrument(QR_INSTRUMENT)
    if inst is None:
        return error_page(503)
    dev_hash = devices.device_hash(devices.current())
    source = request.form if request.method == "POST" else request.args
    key = source.get(submissions.KEY_FIELD, "")
    attach = source.get("attach") == "1" if request.method == "POST" else bool(key)
    ask_field = True
    if attach:
        status, row = responses.details_target(key, dev_hash, _details_window()) if submissions.valid_key(key) \
            else ("missing", None)
        if status != "open":
            return _details_refused(status)
        ask_field = row.stratum == ALL_STRATUM
    elif request.method != "POST":
        key = submissions.new_key()
    if request.method != "POST":
        return _render_details(counter, inst, key=key, ask_field=ask_field, attach=attach)

    form = request.form
    allowed = {q.key for q in submissions.questions(inst.definition, "vi", submissions.DETAILS_STEP)}
    definition = dict(inst.definition, items=[it for it in inst.definition["items"] if it["key"] in allowed])
    values = submissions.posted_values(definition, form)
    values["reply"] = form.get("reply", "")[:1]

    def again(*, errors=None, alert=None, status=400):
        return _render_details(counter, inst, key=key if submissions.valid_key(key) else submissions.new_key(),
                               ask_field=ask_field, values=values, errors=errors, alert=alert, status=status,
                               attach=attach)

    refused = _refuse_transport(form, key, again)
    if refused is not None:
        return refused
    if form.get(submissions.HONEYPOT_FIELD):
        return redirect(url_for("public.thanks", token=token, done=1), 303)
    result = submissions.validate(definition, form, extra_fields=submissions.TRANSPORT_FIELDS + ("attach", "reply"),
                                  require_answer=False)
    if not result.ok:
        return again(errors=result.errors)
    result.clean.reply_requested = form.get("reply") == "1"  # "I would like a reply": a case (services/cases.py)
    if attach:
        status = responses.attach_details(idempotency_key=key, dev_hash=dev_hash, clean=result.clean,
                                          window=_details_window())
        if status == "empty":
            return again(errors={"": _("Nothing was filled in. Fill in at least one line, or simply close "
                                       "this page: your rating is already kept.")})
        if status != "attached":
            return _details_refused(status)
    else:
        if not result.clean.comment:
            return again(errors={"comment": _("Please write your comment.")})
        outcome = responses.create_response(
            unit_id=counter.unit_id, counter_id=counter.id, instrument=inst, clean=result.clean, channel="qr",
            idempotency_key=key, dev_hash=dev_hash)
        if outcome.status == "duplicate":
            return _details_refused("already")
    return redirect(url_for("public.thanks", token=token, done=1), 303)


csrf.exempt(details)


@bp.get("/k/<token>/thanks")
def kiosk_thanks(token):
    counter, err = _resolve(token, light=True)
    if err is not None:
        return err
    seconds = int(current_app.config["KIOSK_RESET_SECONDS"])
    next_url = url_for("public.kiosk", token=token, lang=current_app.config["BABEL_DEFAULT_LOCALE"])
    return _no_store(make_response(render_template("public/thanks.html", counter=counter, kiosk=True,
                                                   seconds=seconds, next_url=next_url)))
