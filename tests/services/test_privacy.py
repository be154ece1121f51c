"""PII masking of comments (issue 11, hole 4): every phone, ID and e-mail form
found by the outside probe, and more, is masked; ordinary numbers are not."""
from __future__ import annotations

import pytest

from survey_app.services.privacy import MASK_EMAIL, MASK_ID, MASK_PHONE, mask_pii, normalise

ZW = "\u200b"

#: (written form, the mask it must become).  Each is embedded in a sentence.
MASKED = [
    # mobile numbers, national
    ("0912345678", MASK_PHONE),
    ("0912 345 678", MASK_PHONE),
    ("0912.345.678", MASK_PHONE),
    ("0912-345-678", MASK_PHONE),
    ("0912 - 345 - 678", MASK_PHONE),
    ("0912/345/678", MASK_PHONE),
    ("0912–345–678", MASK_PHONE),            # en-dash
    ("0912—345—678", MASK_PHONE),            # em-dash
    ("0912  345  678", MASK_PHONE),          # double spaces
    ("09 12 34 56 78", MASK_PHONE),
    (f"0912{ZW}345{ZW}678", MASK_PHONE),     # zero-width spaces
    (f"0{ZW}9{ZW}1{ZW}2{ZW}3{ZW}4{ZW}5{ZW}6{ZW}7{ZW}8", MASK_PHONE),
    ("０９１２３４５６７８", MASK_PHONE),      # full-width digits
    ("0912\u00a0345\u00a0678", MASK_PHONE),  # no-break spaces
    # landlines
    ("(024) 38251234", MASK_PHONE),
    ("(024)38251234", MASK_PHONE),
    ("024 3825 1234", MASK_PHONE),
    ("024.3825.1234", MASK_PHONE),
    ("02438251234", MASK_PHONE),
    ("(0236) 3821 234", MASK_PHONE),
    ("0236-3821-234", MASK_PHONE),
    # international
    ("+84912345678", MASK_PHONE),
    ("+84 912 345 678", MASK_PHONE),
    ("+84-912-345-678", MASK_PHONE),
    ("+84 (0) 912 345 678", MASK_PHONE),
    ("(+84) 912345678", MASK_PHONE),
    ("(+84) 24 3825 1234", MASK_PHONE),
    ("0084 912 345 678", MASK_PHONE),
    ("84912345678", MASK_PHONE),
    ("＋８４９１２３４５６７８", MASK_PHONE),
    # e-mail
    ("an.nguyen@example.com", MASK_EMAIL),
    ("a @ b.com", MASK_EMAIL),
    ("an.nguyen @example.com.vn", MASK_EMAIL),
    ("an.nguyen＠example.com", MASK_EMAIL),   # full-width at sign
    (f"an{ZW}@{ZW}example.com", MASK_EMAIL),
    ("an(at)example.com", MASK_EMAIL),
    ("an [at] example.com", MASK_EMAIL),
    ("ＡＮ＠ＥＸＡＭＰＬＥ．ＣＯＭ", MASK_EMAIL),
    # ID numbers
    ("001203004567", MASK_ID),               # CCCD, 12 digits
    ("001 203 004 567", MASK_ID),
    ("001-203-004-567", MASK_ID),
    (f"001{ZW}203004567", MASK_ID),
    ("123456789", MASK_ID),                  # CMND, 9 digits
    ("123 456 789", MASK_ID),
    ("C1234567", MASK_ID),                   # passport
    ("B1234567", MASK_ID),
    ("1234567890123", MASK_ID),              # any long run of digits
]

#: Ordinary numbers that must stay as written.
KEPT = [
    "ngày 12/03/2025",
    "từ 12/03/2025 - 15/03/2025",
    "12/03/2025 đến 15/3/2025",
    "hẹn 2025-06-17 lúc 10:30",
    "lệ phí 1.500.000 đồng",
    "tốn 150.000.000đ",
    "giá 2.000.000.000 đồng",
    "quầy số 3, số thứ tự 0125",
    "chờ 45 phút, 2 lần",
    "hồ sơ nộp ngày 1/6, trả ngày 15/6",
    "năm 2025 và năm 2026",
    "tầng 2, phòng 204",
]


@pytest.mark.parametrize("form,mask", MASKED, ids=[f"{i:02d}" for i in range(len(MASKED))])
def test_form_is_masked(form, mask):
    out = mask_pii(f"Liên hệ {form} nhé.")
    assert out == f"Liên hệ {mask} nhé.", (form, out)


@pytest.mark.parametrize("text", KEPT)
def test_ordinary_numbers_are_kept(text):
    assert mask_pii(text) == text


def test_several_in_one_comment_and_vietnamese_text_kept():
    text = ("Cán bộ Lê Thị Hoa rất nhiệt tình. Gọi 0912 - 345 - 678 hoặc (024) 38251234, "
            "mail a @ b.com; CCCD 001203004567. Hồ sơ ngày 12/03/2025, lệ phí 50.000 đồng.")
    out = mask_pii(text)
    assert out == ("Cán bộ Lê Thị Hoa rất nhiệt tình. Gọi [số điện thoại] hoặc [số điện thoại], "
                   "mail [email]; CCCD [số giấy tờ]. Hồ sơ ngày 12/03/2025, lệ phí 50.000 đồng.")


def test_normalise():
    assert normalise(f"０９{ZW}１２–３") == "0912-3"
    assert normalise("Thủ tục") == "Thủ tục"
    assert mask_pii("") == "" and mask_pii(None) is None
