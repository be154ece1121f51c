"""Privacy helpers: PII masking of free text and keyed hashing.

Comments are masked *before* storage: e-mail addresses, Vietnamese phone
numbers (0xxxxxxxxx, +84 / 84 prefixes, with spaces, dots or dashes) and
9- or 12-digit ID numbers (CMND / CCCD).  Any other run of 9 or more digits is
masked too: a comment never needs one, and a missed ID number is worse than a
masked reference number.
"""
import hashlib
import hmac
import re

MASK_EMAIL = "[email]"
MASK_PHONE = "[số điện thoại]"
MASK_ID = "[số giấy tờ]"

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
# Phone: optional +84/84/0 prefix, then 9–10 digits possibly separated by
# spaces, dots or dashes.
_PHONE = re.compile(r"(?<![\w])(?:\+?84|0)(?:[\s.\-]?\d){8,10}(?![\w])")
# ID numbers: 9 or 12 digits (CMND / CCCD); generic long digit runs.
_LONG_DIGITS = re.compile(r"(?<!\d)\d(?:[\s.\-]?\d){8,}(?!\d)")


def mask_pii(text):
    """Return `text` with e-mails, phone numbers and ID numbers masked."""
    if not text:
        return text
    text = _EMAIL.sub(MASK_EMAIL, text)
    text = _PHONE.sub(MASK_PHONE, text)
    text = _LONG_DIGITS.sub(MASK_ID, text)
    return text


def keyed_hash(secret: str, value: str, purpose: str) -> str:
    """HMAC-SHA256 of `value`, domain-separated by `purpose` (e.g. a dossier
    reference or a device cookie).  Not reversible without the secret."""
    key = hashlib.sha256(f"{purpose}:{secret}".encode()).digest()
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()
