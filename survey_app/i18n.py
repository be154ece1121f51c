"""Language selection and the message catalogue (Flask-Babel).

Vietnamese is the default.  `?lang=en` (or `vi`) switches and is remembered
in a `lang` cookie.  Message ids are English; the Vietnamese catalogue is
`translations/vi/LC_MESSAGES/messages.po`, extracted and updated with
`make messages` (babel.cfg) and compiled to `messages.mo` at set-up
(`make setup`: `pybabel compile`), never by the app.
"""
import logging
from pathlib import Path

from flask import request

TRANSLATIONS = Path(__file__).parent / "translations"
log = logging.getLogger(__name__)


def stale_catalogues() -> list[Path]:
    """The `.po` files whose compiled `.mo` is missing or older (run `make setup`)."""
    out = []
    for po in sorted(TRANSLATIONS.glob("*/LC_MESSAGES/*.po")):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            out.append(po)
    return out


def select_locale() -> str:
    from flask import current_app

    langs = current_app.config["LANGUAGES"]
    lang = request.args.get("lang")
    if lang in langs:
        return lang
    lang = request.cookies.get("lang")
    if lang in langs:
        return lang
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def init_i18n(app, babel) -> None:
    stale = stale_catalogues()
    if stale:
        log.warning("translations not compiled or out of date (%s): run `make setup`; pages fall back to English",
                    ", ".join(str(p.relative_to(TRANSLATIONS)) for p in stale))
    babel.init_app(app, locale_selector=select_locale,
                   default_translation_directories=str(TRANSLATIONS))

    @app.after_request
    def _remember_lang(resp):
        lang = request.args.get("lang")
        if lang in app.config["LANGUAGES"] and request.cookies.get("lang") != lang:
            resp.set_cookie("lang", lang, max_age=365 * 24 * 3600, samesite="Lax",
                            httponly=True, secure=app.config["SESSION_COOKIE_SECURE"])
        return resp

    @app.context_processor
    def _inject_locale():
        from flask_babel import get_locale

        loc = str(get_locale() or app.config["BABEL_DEFAULT_LOCALE"])
        return {"current_locale": loc}
