"""survey_app.ui: figures and dates in the reader's language through
Flask-Babel, a label for every code, template globals registered once."""
import datetime as dt

import pytest


@pytest.fixture
def uapp(make_app):
    return make_app()


@pytest.mark.parametrize("lang, percent, number, points", [
    ("vi", "91,3%", "12.345,7", "+3,2 điểm"),
    ("en", "91.3%", "12,345.7", "+3.2 points"),
])
def test_numbers_follow_the_language(uapp, lang, percent, number, points):
    from survey_app.ui.format import num, pct
    from survey_app.ui.format import points as pts

    with uapp.test_request_context(f"/?lang={lang}"):
        assert pct(0.91275) == percent
        assert num(12345.678, 1) == number
        assert pts(0.0321) == points
        assert pct(float("nan")) == num(None) == "–"
        assert pct(0.9, 0) == "90%"


def test_dates_are_local_time(uapp):
    from survey_app.ui.format import local_date, local_datetime

    with uapp.test_request_context("/"):
        utc = dt.datetime(2025, 12, 14, 20, 30, tzinfo=dt.timezone.utc)  # 15/12 03:30 in Hà Nội
        assert local_datetime(utc) == "15/12/2025 03:30"
        assert local_datetime(utc.replace(tzinfo=None)) == "15/12/2025 03:30"  # naive = UTC (SQLite)
        assert local_datetime(utc.isoformat()) == "15/12/2025 03:30"
        assert local_datetime("not a date") == "–" and local_datetime(None) == ""
        assert local_date(dt.date(2026, 1, 5)) == "05/01/2026"


def test_every_code_has_a_label_in_both_languages(uapp):
    from analysis.schema import ITEM_KEYS
    from survey_app.ui.labels import ELEMENT_LABELS, check_labels, flag_words, left_out_words

    assert check_labels() == []
    with uapp.test_request_context("/?lang=vi"):
        vi = {k: str(ELEMENT_LABELS[k]) for k in ITEM_KEYS}
        words = flag_words("low_n;missing:staff")
        assert len(words) == 2 and vi["staff"] in words[1] and words[1].startswith("không có câu trả lời")
        assert "dưới 18" in left_out_words({"under_18": 2})
    with uapp.test_request_context("/?lang=en"):
        en = {k: str(ELEMENT_LABELS[k]) for k in ITEM_KEYS}
    assert all(vi[k] != en[k] for k in ITEM_KEYS), "an element label is not translated"


def test_template_globals_are_registered_once(uapp):
    from survey_app import ui

    before = dict(uapp.jinja_env.globals)
    ui.init_app(uapp)
    assert uapp.jinja_env.globals == before
    for name in ("pct", "num", "local_datetime", "ELEMENT_LABELS", "url_with"):
        assert name in uapp.jinja_env.globals, name
    assert "local_datetime" in uapp.jinja_env.filters
