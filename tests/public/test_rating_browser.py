"""The twenty-second rating (issue 13) in a real browser (Debian's headless
Chromium): the rating step on small phones with JavaScript on and off in both
languages (height, no sideways scrolling, seven taps), the optional details
attached to the same stored row, overall-only / all-"No opinion" / comment-only
responses, Enter on a choice, contrast of the choices and the language link,
the kiosk on a tablet, and axe-core on every citizen page.

Screenshots of every citizen page (360x640) and of the kiosk (800x1280) go to
test-artifacts/screenshots/ (git-ignored)."""
from __future__ import annotations

import re

import pytest

from tests.helpers import axe_report, responses

PHONE = {"width": 360, "height": 640}
SMALL = {"width": 320, "height": 568}
TABLET = {"width": 800, "height": 1280}
#: The height goal of the rating step: about half a screen of scrolling at 360x640.
HEIGHT_GOAL = 1.5 * 640
ITEMS = ("overall", "access", "procedure", "staff", "result", "feedback")


@pytest.fixture
def shots(screenshot_dir):
    d = screenshot_dir / "screenshots"
    d.mkdir(exist_ok=True)
    return d


@pytest.fixture
def page_factory(browser):
    contexts = []

    def make(js: bool = True, viewport=PHONE, mobile: bool = True):
        ctx = browser.new_context(viewport=viewport, java_script_enabled=js, is_mobile=mobile, has_touch=mobile,
                                  locale="vi-VN")
        contexts.append(ctx)
        return ctx.new_page()

    yield make
    for c in contexts:
        c.close()


def choice(name: str, value: str) -> str:
    """The visible choice (its label) a finger taps."""
    return f'label:has(> input[name="{name}"][value="{value}"])'


def overflow(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


def height(page) -> float:
    return page.evaluate("document.documentElement.scrollHeight")


def _luminance(rgb):
    def ch(c):
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = rgb
    return 0.2126 * ch(r) + 0.7152 * ch(g) + 0.0722 * ch(b)


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two CSS rgb() colours."""
    la, lb = (_luminance([int(x) for x in re.findall(r"\d+", c)[:3]]) for c in (a, b))
    hi, lo = max(la, lb), min(la, lb)
    return (hi + 0.05) / (lo + 0.05)


# ------------------------------------------------------------------ the rating step, then the details

@pytest.mark.parametrize("lang", ["vi", "en"])
@pytest.mark.parametrize("js", [True, False], ids=["js", "no-js"])
@pytest.mark.parametrize("viewport", [PHONE, SMALL], ids=["360x640", "320x568"])
def test_seven_taps_then_details_on_the_same_row(app, live_server, page_factory, place, shots, viewport, js, lang):
    page = page_factory(js, viewport)
    page.goto(f"{live_server}{place.url}?lang={lang}")
    assert page.locator("html").get_attribute("lang") == lang
    assert height(page) <= HEIGHT_GOAL, f"rating step {height(page)} px tall at {viewport}"
    assert overflow(page) <= 0
    # every choice is a large target with a face and a text label
    boxes = page.evaluate("[...document.querySelectorAll('label.c')].map(e => e.getBoundingClientRect().height)")
    assert len(boxes) == 30 and min(boxes) >= 44
    assert page.locator("label.c .t").all_inner_texts()[:5] == (
        ["Rất không hài lòng", "Không hài lòng", "Bình thường", "Hài lòng", "Rất hài lòng"] if lang == "vi" else
        ["Very dissatisfied", "Dissatisfied", "Neutral", "Satisfied", "Very satisfied"])
    taps = 0
    for name, value in zip(ITEMS, "545423"):
        page.click(choice(name, value))
        taps += 1
    if viewport is PHONE and lang == "vi":
        page.screenshot(path=str(shots / f"rating-{'js' if js else 'nojs'}.png"), full_page=True)
    page.click("button.btn[type=submit]")
    taps += 1
    page.wait_for_url(re.compile(r".*/thanks\?k=\w+$"))
    assert taps == 7
    rows = responses(app)
    assert len(rows) == 1 and rows[0].answer_map == dict(zip(ITEMS, (5, 4, 5, 4, 2, 3)))
    assert overflow(page) <= 0
    # the optional details: attached to the same stored row
    page.click("a.btn.alt")
    page.wait_for_url(re.compile(r".*/details\?k=\w+$"))
    assert overflow(page) <= 0
    page.fill("#f-comment", "Cán bộ tận tình, gọi 0987654321 nếu cần.")
    page.click(choice("stratum", "dat_dai"))
    page.click(choice("age_group", "60_plus"))
    page.click(choice("gender", "female"))
    page.click("button.btn[type=submit]")
    page.wait_for_url(re.compile(r".*/thanks\?done=1$"))
    rows = responses(app)
    assert len(rows) == 1
    row = rows[0]
    assert (row.stratum, row.age_group, row.gender) == ("dat_dai", "60_plus", "female")
    assert "0987654321" not in row.comment and "[số điện thoại]" in row.comment
    assert row.answer_map == dict(zip(ITEMS, (5, 4, 5, 4, 2, 3)))


@pytest.mark.parametrize("js", [True, False], ids=["js", "no-js"])
def test_overall_only_all_no_opinion_and_comment_only(app, live_server, page_factory, place, js):
    page = page_factory(js)
    # overall only
    page.goto(live_server + place.url)
    page.click(choice("overall", "4"))
    page.click("button.btn[type=submit]")
    page.wait_for_url(re.compile(r".*/thanks\?k=\w+$"))
    # all "No opinion": accepted, a response that counts in no rate
    page.goto(live_server + place.url)
    for name in ITEMS:
        page.click(choice(name, "na"))
    page.click("button.btn[type=submit]")
    page.wait_for_url(re.compile(r".*/thanks\?k=\w+$"))
    # a comment alone
    page.goto(live_server + place.url)
    page.click("text=Chỉ muốn góp ý, không chấm điểm?")
    page.fill("#f-comment", "Nên có thêm ghế chờ.")
    page.click("button.btn[type=submit]")
    page.wait_for_url(re.compile(r".*/thanks\?done=1$"))
    rows = sorted(responses(app), key=lambda r: r.submitted_at)
    assert [r.answer_map for r in rows] == [{"overall": 4}, {}, {}]
    assert [r.comment for r in rows] == [None, None, "Nên có thêm ghế chờ."]
    # nothing chosen at all: sent back with a message saying what to do, nothing stored
    page.goto(live_server + place.url)
    page.click("button.btn[type=submit]")
    assert "Ông/Bà chưa chọn gì" in page.inner_text(".errs")
    assert len(responses(app)) == 3


@pytest.mark.parametrize("js", [True, False], ids=["js", "no-js"])
def test_enter_on_a_choice_does_not_send(app, live_server, page_factory, place, js):
    page = page_factory(js, mobile=False)
    page.goto(live_server + place.url)
    page.click(choice("overall", "5"))
    page.focus('input[name="overall"][value="5"]')
    # the focus is visible on the choice
    assert page.evaluate("getComputedStyle(document.querySelector('label.c5')).outlineStyle") == "solid"
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    page.wait_for_timeout(300)
    assert "/thanks" not in page.url and responses(app) == []
    # the answer is still chosen (without JavaScript the server showed the form again, saying so)
    assert page.locator('input[name="overall"][value="5"]').is_checked()
    if not js:
        assert "Chưa gửi gì" in page.inner_text(".alert")
    page.click("button.btn[type=submit]")
    page.wait_for_url(re.compile(r".*/thanks\?k=\w+$"))
    assert [r.answer_map for r in responses(app)] == [{"overall": 5}]


def test_contrast_of_choices_and_language_link(live_server, page_factory, place):
    page = page_factory(True, mobile=False)
    page.goto(live_server + place.url)
    style = page.evaluate("""() => { const c = getComputedStyle(document.querySelector('label.c3'));
        const na = getComputedStyle(document.querySelector('label.na'));
        return [c.borderLeftColor, c.backgroundColor, na.borderLeftColor, na.backgroundColor,
                getComputedStyle(document.body).backgroundColor]; }""")
    border, fill, na_border, na_fill, page_bg = style
    for b in (border, na_border):
        assert contrast(b, fill) >= 3 and contrast(b, page_bg) >= 3
    page.keyboard.press("Tab")  # the language link comes first
    assert page.evaluate("document.activeElement.textContent") == "English"
    ring, bar = page.evaluate("""() => [getComputedStyle(document.activeElement).outlineColor,
        getComputedStyle(document.querySelector('.bar')).backgroundColor]""")
    assert contrast(ring, bar) >= 3


# ------------------------------------------------------------------ the kiosk

def test_kiosk_tablet_one_row_countdown_more_time_and_vietnamese_again(app, live_server, page_factory, place,
                                                                        shots):
    app.config["KIOSK_RESET_SECONDS"] = 3
    page = page_factory(True, TABLET, mobile=True)
    page.goto(f"{live_server}{place.kiosk_url}?lang=en")
    tops = page.evaluate("""[...document.querySelectorAll('fieldset.r')].map(f =>
        new Set([...f.querySelectorAll('label.c')].map(l => Math.round(l.getBoundingClientRect().top))).size)""")
    assert tops == [1] * 6  # each scale is one row
    assert overflow(page) <= 0
    page.screenshot(path=str(shots / "kiosk-form.png"), full_page=True)
    page.click(choice("overall", "2"))
    page.click(choice("staff", "1"))
    page.click("button.btn[type=submit]")
    page.wait_for_url(re.compile(r".*/k/[^/]+/thanks.*"))
    assert page.locator("meta[http-equiv]").count() == 0
    page.wait_for_selector("#more-time", state="visible")
    first = int(re.search(r"\d+", page.inner_text("#countdown")).group())
    page.screenshot(path=str(shots / "kiosk-thanks.png"))
    page.click("#more-time")
    later = int(re.search(r"\d+", page.inner_text("#countdown")).group())
    assert later > first  # "I need more time" adds time, visibly
    page.wait_for_url(re.compile(r".*/k/[^/]+\?lang=vi$"), timeout=90_000)
    page.wait_for_selector("form.survey")
    assert page.locator("html").get_attribute("lang") == "vi"
    assert page.locator("input:checked").count() == 0
    rows = responses(app)
    assert [r.channel for r in rows] == ["kiosk"] and rows[0].answer_map == {"overall": 2, "staff": 1}


def test_kiosk_half_filled_form_resets_when_left_alone(app, live_server, page_factory, place):
    app.config["KIOSK_IDLE_SECONDS"] = 1
    page = page_factory(True, TABLET)
    page.goto(f"{live_server}{place.kiosk_url}?lang=en")
    page.click(choice("overall", "5"))
    page.wait_for_url(re.compile(r".*/k/[^/]+\?lang=vi$"), timeout=10_000)
    page.wait_for_selector("form.survey")
    assert page.locator("input:checked").count() == 0
    assert page.locator("html").get_attribute("lang") == "vi"
    assert responses(app) == []


# ------------------------------------------------------------------ every citizen page: axe, width, screenshots

def _citizen_pages(app, live_server, page, place, monkeypatch):
    """Yield (name, page) for every citizen page, reached as a citizen would."""
    from sqlalchemy.exc import OperationalError

    from survey_app.extensions import db
    from survey_app.models import Counter
    from survey_app.public import routes
    from survey_app.services import tokens

    base = live_server
    page.goto(base + place.url)
    yield "form", page
    page.click("button.btn[type=submit]")  # nothing chosen
    yield "errors", page
    page.click(choice("overall", "5"))
    page.click("button.btn[type=submit]")
    page.wait_for_url(re.compile(r".*/thanks\?k=\w+$"))
    yield "thanks", page
    page.click("a.btn.alt")
    page.wait_for_url(re.compile(r".*/details\?k=\w+$"))
    details_url = page.url
    yield "details", page
    page.click("button.btn[type=submit]")  # nothing filled in
    yield "details-errors", page
    page.fill("#f-comment", "Tốt.")
    page.click("button.btn[type=submit]")
    page.wait_for_url(re.compile(r".*/thanks\?done=1$"))
    yield "details-thanks", page
    page.goto(details_url)  # a second time: refused, clearly
    yield "details-already", page
    page.goto(base + "/c/not-a-code")
    yield "invalid-code", page
    with app.app_context():
        sig = tokens.dossier_signature(place.counter_id, "HS-2025-0001")
    page.goto(f"{base}{place.url}?d={sig}")
    page.click(choice("overall", "4"))
    page.click("button.btn[type=submit]")
    page.wait_for_url(re.compile(r".*/thanks.*"))
    page.goto(f"{base}{place.url}?d={sig}")
    yield "already-rated", page
    page.goto(base + place.url)
    page.click(choice("overall", "3"))
    with monkeypatch.context() as m:
        def down(**kw):
            raise OperationalError("INSERT", {}, Exception("database is down"))
        m.setattr(routes.responses, "create_response", down)
        page.click("button.btn[type=submit]")
        yield "503-answers-kept", page
        m.setattr(routes.instruments, "latest_instrument", lambda key: None)
        page.goto(base + place.url)
        yield "503", page
    app.config["PUBLIC_LIMIT_DEVICE"] = "1/minute"
    page.goto(base + place.url)
    page.click(choice("overall", "2"))
    page.click("button.btn[type=submit]")
    page.goto(base + place.url)
    page.click(choice("overall", "2"))
    page.click("button.btn[type=submit]")
    yield "429", page
    app.config["PUBLIC_LIMIT_DEVICE"] = "1000/minute"
    page.goto(base + place.kiosk_url)
    yield "kiosk-form", page
    page.click(choice("overall", "5"))
    page.click("button.btn[type=submit]")
    page.wait_for_url(re.compile(r".*/k/[^/]+/thanks.*"))
    yield "kiosk-thanks", page
    with app.app_context():
        c = db.session.get(Counter, place.counter_id)
        c.token_version += 1
        db.session.commit()
    page.goto(base + place.url + "?lang=vi")  # (the kiosk's offline warm-up may have left lang=en)
    yield "replaced-code", page


EXPECTED_STATUS = {"invalid-code": "Mã này không hợp lệ", "replaced-code": "Mã này đã được thay",
                   "already-rated": "Hồ sơ đã được đánh giá", "details-already": "Góp ý đã được gửi rồi",
                   "429": "Ông/Bà đã gửi nhiều lần", "503-answers-kept": "chưa lưu được",
                   "errors": "Ông/Bà chưa chọn gì", "details-errors": "Ông/Bà chưa điền gì"}


@pytest.mark.parametrize("js", [True, False], ids=["js", "no-js"])
def test_every_citizen_page_is_accessible_and_fits(app, live_server, page_factory, place, shots, axe_violations,
                                                    monkeypatch, js):
    app.config["KIOSK_RESET_SECONDS"] = 600  # the kiosk thank-you page stays for the checks
    page = page_factory(js)
    seen = []
    for name, p in _citizen_pages(app, live_server, page, place, monkeypatch):
        seen.append(name)
        text = p.inner_text("main")
        if name in EXPECTED_STATUS:
            assert EXPECTED_STATUS[name].lower() in text.lower(), (name, text[:300])
        found = axe_violations(p)
        assert found == [], f"{name}:\n{axe_report(found)}"
        assert overflow(p) <= 0, name
        if js:
            p.screenshot(path=str(shots / f"{name}-360.png"), full_page=True)
    assert seen == ["form", "errors", "thanks", "details", "details-errors", "details-thanks", "details-already",
                    "invalid-code", "already-rated", "503-answers-kept", "503", "429", "kiosk-form", "kiosk-thanks",
                    "replaced-code"]


@pytest.mark.parametrize("path", ["", "/details", "/thanks", "/thanks?done=1", "k", "k/thanks", "bad"])
@pytest.mark.parametrize("lang", ["vi", "en"])
def test_no_sideways_scrolling_at_320(live_server, page_factory, place, path, lang):
    page = page_factory(False, {"width": 320, "height": 568})
    url = {"k": place.kiosk_url, "k/thanks": place.kiosk_url + "/thanks", "bad": "/c/bad-code"}.get(
        path, place.url + path)
    page.goto(f"{live_server}{url}{'&' if '?' in url else '?'}lang={lang}")
    assert page.locator("html").get_attribute("lang") == lang
    assert overflow(page) <= 0
    # no text cut off either: every element's content fits its box
    cut = page.evaluate("""[...document.querySelectorAll('body *')].filter(e => e.scrollWidth > e.clientWidth + 1
        && getComputedStyle(e).overflowX !== 'visible' && !e.closest('.hp')).map(e => e.outerHTML.slice(0, 80))""")
    assert cut == []
