"""Privacy helpers: PII masking of free text and keyed hashing.

Comments are masked *before* storage.  The text is first normalised (Unicode
NFKC, so full-width digits and `＠` become ASCII; zero-width characters and
soft hyphens removed; every dash variant read as `-`), then these are masked:

- e-mail addresses, also with spaces around `@` (`a @ b.com`) or `(at)`;
- Vietnamese phone numbers: national (`0` + 9 or 10 digits, the area code
  possibly in brackets: `(024) 38251234`) and international (`+84`, `0084`,
  `84`, `(+84)`, an optional `(0)`), digits separated by spaces, dots, dashes
  or `/`, with or without spaces around them (`0912 - 345 - 678`);
- ID numbers: CCCD (12 digits), CMND (9 digits), written together or in groups
  separated by spaces or dashes, and passport-like numbers (`C1234567`);
- any other run of 9 or more digits written together (a comment never needs
  one, and a missed ID number is worse than a masked reference number).

Ordinary numbers stay: dates (`12/03/2025`), times, amounts written with
thousands dots (`150.000.000 đồng`), counter and queue numbers.  Names are NOT
masked (the form asks people not to write them).  The stored comment is the
normalised text.
"""
import hashlib
import hmac
import re
import unicodedata

MASK_EMAIL = "[email]"
MASK_PHONE = "[số điện thoại]"
MASK_ID = "[số giấy tờ]"

#: Invisible characters that could split a number or an address unseen.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e\u2061\u2062\u2063\u2064"), None)
#: Dash variants (after NFKC) read as "-".
_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"), "-")


def normalise(text: str) -> str:
    """NFKC, invisible characters removed, dashes unified."""
    return unicodedata.normalize("NFKC", text).translate(_INVISIBLE).translate(_DASHES)


_EMAIL = re.compile(r"[\w.+-]+[ \t]*(?:@|\(at\)|\[at\])[ \t]*[\w-]+(?:\.[\w-]+)+", re.UNICODE | re.IGNORECASE)

# One separator between two digits: a dot, dash or slash with up to 3 spaces
# around it, or 1 to 3 spaces / tabs.
_SEP = r"(?:[ \t]{0,3}[.\-/][ \t]{0,3}|[ \t]{1,3})?"
# Not glued to a preceding digit, nor to a digit and a one-character separator
# (the tail of a date such as 12/03/2025 must not start a phone number).
_START = r"(?<![\w+])(?<!\d[./\-])(?<!\d[./\-] )"
_END = r"(?!\d)(?![.\-/]?\d)"


def _digits(n: int, sep: str = _SEP) -> str:
    return r"\d" + f"(?:{sep}\\d)" * (n - 1) if n > 1 else r"\d"


_PHONE_INTL = re.compile(
    _START + r"(?:\(\s?\+?84\s?\)|\+[ \t]?84|0084|84)"   # +84, (+84), 0084, 84
    r"(?:[ \t]{0,3}\(0\))?"                               # an optional (0)
    r"[ \t]{0,3}[.\-/]?[ \t]{0,3}\(?[1-9]\d?\)?" + _SEP + r"\d(?:" + _SEP + r"\d){6,8}" + _END)
_PHONE_NATIONAL = re.compile(
    _START + r"(?:\(0\d{1,3}\)|0(?:" + _SEP + r"\d){1,3})"   # 0 + area / network code, maybe in brackets
    r"[ \t]{0,3}[.\-/]?[ \t]{0,3}\d(?:" + _SEP + r"\d){5,8}" + _END)
_PASSPORT = re.compile(r"(?<![\w-])[A-Z]{1,2}\d{7}(?![\w-])")
_ID_SEP = r"[ \t\-]?"
_ID_12 = re.compile(r"(?<![\w.,/])" + _digits(12, _ID_SEP) + r"(?![\d]|[.,/]\d)")
_ID_9 = re.compile(r"(?<![\w.,/])" + _digits(9, _ID_SEP) + r"(?![\d]|[.,/]\d)")
_LONG_DIGITS = re.compile(r"(?<!\d)\d{9,}(?!\d)")


def _phone(m: re.Match) -> str:
    """A phone candidate is masked when its digits have a phone's length."""
    digits = re.sub(r"\D", "", m.group(0))
    if digits.startswith("0084"):
        digits = "84" + digits[4:]
    if digits.startswith("84"):
        rest = digits[2:].removeprefix("0") if "(0)" in m.group(0) else digits[2:]
        ok = len(rest) in (9, 10) and not rest.startswith("0")
    else:
        ok = digits.startswith("0") and len(digits) in (10, 11)
    return MASK_PHONE if ok else m.group(0)


def mask_pii(text):
    """Return `text` (normalised) with e-mails, phone numbers and ID numbers masked."""
    if not text:
        return text
    text = normalise(text)
    text = _EMAIL.sub(MASK_EMAIL, text)
    text = _PHONE_INTL.sub(_phone, text)
    text = _PHONE_NATIONAL.sub(_phone, text)
    text = _PASSPORT.sub(MASK_ID, text)
    text = _ID_12.sub(MASK_ID, text)
    text = _ID_9.sub(MASK_ID, text)
    text = _LONG_DIGITS.sub(MASK_ID, text)
    return text


def keyed_hash(secret: str, value: str, purpose: str) -> str:
    """HMAC-SHA256 of `value`, domain-separated by `purpose` (e.g. a dossier
    reference or a device cookie).  Not reversible without the secret."""
    key = hashlib.sha256(f"{purpose}:{secret}".encode()).digest()
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()
