"""Language selection and message catalogues (Flask-Babel).

Vietnamese is the default.  `?lang=en` (or `vi`) switches and is remembered
in a `lang` cookie.  Message ids are English; the Vietnamese catalogue lives in
`translations/vi/LC_MESSAGES/*.po` (one file per area) and is merged and
compiled to `messages.mo` on start-up when a `.po` is newer (so a fresh clone needs no extra build step).
"""
import os
from pathlib import Path

from flask import request

TRANSLATIONS = Path(__file__).parent / "translations"


def compile_catalogues() -> None:
    """Merge every `*.po` of a language (messages.po, public.po, staff.po, ...)
    into its `messages.mo`, when any of them is newer than the `.mo`."""
    from babel.messages.catalog import Catalog
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for lc_dir in TRANSLATIONS.glob("*/LC_MESSAGES"):
        sources = sorted(lc_dir.glob("*.po"))
        mo = lc_dir / "messages.mo"
        if not sources or (mo.exists() and mo.stat().st_mtime >= max(p.stat().st_mtime for p in sources)):
            continue
        locale = lc_dir.parent.name
        merged = Catalog(locale=locale)
        for po in sources:
            with po.open("rb") as fh:
                for message in read_po(fh, locale=locale):
                    if message.id and message.string:
                        merged.add(message.id, message.string, context=message.context)
        tmp = lc_dir / f"messages.mo.{os.getpid()}.tmp"
        with tmp.open("wb") as fh:
            write_mo(fh, merged)
        tmp.replace(mo)


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
    compile_catalogues()
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
