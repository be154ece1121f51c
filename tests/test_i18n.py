"""The message catalogue: `pybabel extract` (babel.cfg) sees every message the app shows, each has its
Vietnamese translation, the catalogue compiles without errors, and the app never compiles it itself
(that is `make setup`'s job)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po

from survey_app import create_app

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "survey_app" / "translations"
CATALOGUE = TRANSLATIONS / "vi" / "LC_MESSAGES" / "messages.po"


def _ids(catalog) -> dict:
    return {(m.id if isinstance(m.id, str) else m.id[0]): m for m in catalog if m.id}


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    pot = tmp_path_factory.mktemp("i18n") / "messages.pot"
    rc = CommandLineInterface().run(["pybabel", "-q", "extract", "-F", str(ROOT / "babel.cfg"), "-k", "_l",
                                     "-k", "translate", "--no-location", "-o", str(pot), str(ROOT)])
    assert rc in (0, None)
    with pot.open("rb") as fh:
        return _ids(read_po(fh))


@pytest.fixture(scope="module")
def catalogue():
    with CATALOGUE.open("rb") as fh:
        return _ids(read_po(fh, locale="vi"))


def test_one_catalogue():
    assert sorted(p.name for p in TRANSLATIONS.glob("*/LC_MESSAGES/*.po")) == ["messages.po"]


def test_extraction_sees_templates_labels_and_marked_strings(extracted):
    assert "Overall satisfaction" in extracted            # a lazy label (_l) of the staff pages
    assert "Only want to leave a comment?" in extracted   # a template of the citizen form
    assert "Rank interval: best" in extracted            # a report header marked with N_


def test_every_message_shown_has_a_vietnamese_translation(extracted, catalogue):
    missing = sorted(k for k in extracted if not (k in catalogue and catalogue[k].string
                                                  and not catalogue[k].fuzzy))
    assert missing == [], "translate these in messages.po (make messages, then make setup)"


def test_the_catalogue_holds_no_message_the_code_no_longer_shows(extracted, catalogue):
    unused = sorted(k for k in catalogue if k not in extracted)
    assert unused == [], "remove these from messages.po, or mark them where they are defined (_l / N_)"


def test_the_catalogue_compiles_without_errors(tmp_path):
    out = tmp_path / "messages.mo"
    assert CommandLineInterface().run(["pybabel", "-q", "compile", "-i", str(CATALOGUE), "-o", str(out),
                                       "-l", "vi"]) in (0, None)
    assert out.stat().st_size > 1000


def test_the_app_never_compiles_the_catalogue(tmp_path, monkeypatch):
    from survey_app import i18n

    lc = tmp_path / "translations" / "vi" / "LC_MESSAGES"
    lc.mkdir(parents=True)
    mo, po = lc / "messages.mo", lc / "messages.po"
    mo.write_bytes(b"old")
    po.write_text('msgid ""\nmsgstr ""\n', encoding="utf-8")
    os.utime(mo, (1_000_000, 1_000_000))
    monkeypatch.setattr(i18n, "TRANSLATIONS", tmp_path / "translations")
    warnings = []
    monkeypatch.setattr(i18n.log, "warning", lambda msg, *args: warnings.append(msg % args))
    create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "i18n"},
               instance_path=str(tmp_path / "instance"))
    assert mo.read_bytes() == b"old" and mo.stat().st_mtime == 1_000_000
    assert i18n.stale_catalogues() == [po]
    assert len(warnings) == 1 and "make setup" in warnings[0]
