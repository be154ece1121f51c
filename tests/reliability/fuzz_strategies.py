"""Hypothesis strategies for the fuzz tests (tests/reliability/test_fuzz_inputs.py)
and the long runs (bench/fuzz.py).

The budget: SIPAS_FUZZ_EXAMPLES (default small, for the test suite) scales
every property's max_examples; bench/fuzz.py sets it high.
"""
from __future__ import annotations

import os
import random
from urllib.parse import quote_from_bytes

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from analysis.schema import ITEM_KEYS, RESPONSE_COLUMNS, RESPONSE_OPTIONAL, UNIT_COLUMNS, VOLUME_COLUMNS

SCALE = float(os.environ.get("SIPAS_FUZZ_SCALE", "1"))


def budget(n: int):
    """settings for a property with `n` examples in the test suite (scaled in bench)."""
    return settings(max_examples=max(1, int(n * SCALE)), deadline=None, derandomize=SCALE == 1,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large, HealthCheck.large_base_example],
                    database=None)


# ------------------------------------------------------------------ text and bytes

# Any Unicode but lone surrogates (which no encoder can send), with the
# characters that break parsers over-represented.
NASTY = ["\x00", "\r", "\n", "\r\n", "\t", '"', "'", ",", ";", "=", "&", "%", "+", "\ufeff", "\u202e", "\u200b",
         "\ufffd", "é", "ệ", "Đ", "\U0001f44d", "<script>", "{{7*7}}", "' OR 1=1 --", "../", "=cmd|' /C calc'!A0",
         "NaN", "inf", "-0", "1e309", "9" * 30, "０", "５"]
any_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)
nasty_text = st.lists(st.one_of(st.sampled_from(NASTY), any_text), max_size=6).map("".join)


@st.composite
def big_text(draw):
    """Text of any size up to ~60 kB, cheaply (a repeated chunk)."""
    chunk = draw(st.one_of(st.sampled_from(NASTY), any_text.filter(bool)))
    return chunk * draw(st.integers(1, 60_000 // max(1, len(chunk.encode("utf-8")))))


text_value = st.one_of(nasty_text, any_text, big_text())

ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32", "latin-1", "cp1258", "cp1252", "gb18030",
             "shift_jis", "ascii"]


def encode(text: str, encoding: str) -> bytes:
    return text.encode(encoding, errors="replace")


# ------------------------------------------------------------------ the public form

LIKERT = ["1", "2", "3", "4", "5", "na", "", "0", "6", "-1", "1.0", " 5 ", "５", "5\x00", "05", "+3"]


def form_strategies(definition: dict):
    """(pairs strategy) over the instrument's fields: any field, any value,
    repeated and missing fields, unknown names."""
    keys = [it["key"] for it in definition["items"]]
    options = [o["value"] for it in definition["items"] for o in it.get("options", [])]
    names = st.one_of(st.sampled_from(keys + ["csrf_token", "k", "website", "d"]), nasty_text, any_text)
    values = st.one_of(st.sampled_from(LIKERT + options), text_value)
    valid = st.fixed_dictionaries({k: st.sampled_from(["1", "2", "3", "4", "5", "na"]) for k in keys[:6]})
    pairs = st.lists(st.tuples(names, values), max_size=25)
    return valid, pairs


CONTENT_TYPES = [
    "application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8",
    "application/x-www-form-urlencoded; charset=latin-1", "application/x-www-form-urlencoded; charset=utf-16",
    "application/x-www-form-urlencoded; charset=bogus-9", "multipart/form-data", "multipart/form-data; boundary=",
    "multipart/form-data; boundary=xyz", "text/plain", "application/json", "application/octet-stream", "",
    "text/html; charset=utf-8",
]


def urlencode_bytes(pairs, encoding: str) -> bytes:
    return "&".join(
        quote_from_bytes(encode(k, encoding)) + "=" + quote_from_bytes(encode(v, encoding)) for k, v in pairs
    ).encode("ascii")


def multipart_bytes(pairs, encoding: str, boundary: str = "sipasfuzz") -> bytes:
    out = []
    for k, v in pairs:
        out.append(f"--{boundary}\r\n".encode())
        out.append(b'Content-Disposition: form-data; name="' + encode(k, encoding) + b'"\r\n\r\n')
        out.append(encode(v, encoding) + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out)


# ------------------------------------------------------------------ CSV files

UNIT_HEADER = list(UNIT_COLUMNS)
VOLUME_HEADER = list(VOLUME_COLUMNS)
RESPONSE_HEADER = [*RESPONSE_COLUMNS, *ITEM_KEYS, *RESPONSE_OPTIONAL]

CELL_POOL = {
    "code": ["FZ-1", "FZ-2", "FZ-Q1", "P-ROOT", "", "x" * 41, "FZ 1", "ĐƠN-VỊ"],
    "unit_code": ["FZ-1", "FZ-2", "P-ROOT", "NOPE", ""],
    "parent_code": ["P-ROOT", "FZ-1", "FZ-2", "", "NOPE"],
    "successor_code": ["", "FZ-1", "FZ-2", "NOPE"],
    "counter_code": ["", "P-ROOT-Q1", "NOPE"],
    "name_vi": ["Xã Phú An", "", "Đ" * 201],
    "name_en": ["Phu An", "", "e" * 201],
    "kind": ["commune", "ward", "counter", "district", "", "bad kind", "k" * 31],
    "valid_from": ["", "2024-01-01", "2025-07-01", "2025-02-30", "01/07/2025", "2025-7-1"],
    "valid_to": ["", "2025-07-01", "2024-01-01", "9999-12-31", "0000-00-00"],
    "period_start": ["2025-01-01", "2025-04-01", "", "2025-13-01", "2025-02-29"],
    "period_end": ["2025-03-31", "2024-12-31", "", "31/03/2025"],
    "stratum": ["", "_all", "ho_tich", "s" * 61],
    "transactions": ["0", "120", "-1", "1.5", "", "2000000001", "9" * 30, " 7", "1e3", "NaN"],
    "response_id": ["", "6f1c1a52-2f0b-4b59-9b4e-6f7c1a2b3c4d", "not-a-uuid", "00000000-0000-0000-0000-000000000000"],
    "submitted_at": ["2025-03-01T08:00:00+07:00", "2025-03-01T01:00:00Z", "2025-03-01 08:00:00", "2025-03-01",
                     "", "2025-02-30T00:00:00Z", "2025-03-01T08:00:00+25:00", "yesterday"],
    "channel": ["", "paper", "qr", "kiosk", "import", "fax"],
    "instrument": ["", "counter-quick", "counter-quick@1", "sipas-services", "nope@9"],
    "excluded": ["", "0", "1", "yes", "2"],
    "weight": ["", "1", "2.5", "-1", "0", "abc", "inf", "nan"],
    "age_group": ["", "18_29", "60_plus", "old"],
    "gender": ["", "female", "male", "x"],
    "comment": ["", "Rất tốt", "=HYPERLINK(\"x\")", "c" * 1001, "gọi 0912345678"],
}
for _k in ITEM_KEYS:
    CELL_POOL[_k] = ["", "1", "2", "3", "4", "5", "0", "6", "na", "4.0", "x"]


def valid_cell(col: str, i: int) -> str:
    """A cell that passes validation in row `i` (unique where it must be)."""
    month = 1 + i % 12
    table = {
        "code": f"FZ-N{i}", "name_vi": f"Xã Số {i}", "name_en": f"Commune {i}", "kind": "commune",
        "parent_code": "P-ROOT", "valid_from": "2024-01-01", "valid_to": "", "successor_code": "",
        "unit_code": "FZ-1", "period_start": f"{2025 + i // 12}-{month:02d}-01",
        "period_end": f"{2025 + i // 12}-{month:02d}-28", "stratum": "_all", "transactions": str(50 + i),
        "response_id": f"00000000-0000-4000-8000-{i:012d}", "submitted_at": f"2025-03-{1 + i % 28:02d}T08:00:00+07:00",
        "channel": "paper", "instrument": "", "excluded": "0", "weight": "", "age_group": "30_44",
        "gender": "female", "comment": "Rất tốt", "counter_code": "",
    }
    if col in ITEM_KEYS:
        return str(1 + (i * 7 + len(col)) % 5)
    return table.get(col, "")


@st.composite
def csv_file(draw, header_cols: list[str], required: list[str]):
    """Bytes of a CSV file: a header built from the real columns (some dropped,
    repeated, renamed or reordered, unknown ones added), rows of pooled and
    arbitrary cells (some short or long), in any encoding; or plain garbage."""
    shape = draw(st.sampled_from(["csv"] * 8 + ["garbage", "empty"]))
    if shape == "garbage":
        return draw(st.binary(max_size=2000))
    if shape == "empty":
        return draw(st.sampled_from([b"", b"\n", b"\xef\xbb\xbf", b",,,\n", "\n".join(header_cols).encode()]))
    if draw(st.integers(0, 2)) == 0:
        # A clean file, perhaps with one bad cell: reaches the write path.
        n_rows = draw(st.integers(1, 8))
        rows = [[valid_cell(c, i) for c in header_cols] for i in range(n_rows)]
        if draw(st.booleans()):
            r, c = draw(st.integers(0, n_rows - 1)), draw(st.integers(0, len(header_cols) - 1))
            rows[r][c] = draw(st.one_of(st.sampled_from(CELL_POOL.get(header_cols[c], [""])), nasty_text))
        text = "\n".join(",".join('"' + v.replace('"', '""') + '"' for v in r) for r in [header_cols] + rows)
        return encode(text + "\n", draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1258"])))
    cols = [c for c in header_cols if c in required or draw(st.booleans())]
    if draw(st.integers(0, 9)) == 0:
        cols.append(draw(st.sampled_from(header_cols + ["unknown_col", ""])))
    if draw(st.integers(0, 9)) == 0 and cols:
        cols.remove(draw(st.sampled_from(cols)))
    rnd = random.Random(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        rnd.shuffle(cols)
    n_rows = draw(st.integers(0, 12))
    rows = []
    for _ in range(n_rows):
        row = []
        for c in cols:
            if draw(st.integers(0, 7)) == 0:
                row.append(draw(nasty_text))
            else:
                row.append(rnd.choice(CELL_POOL.get(c, ["", "x"])))
        if draw(st.integers(0, 9)) == 0:
            row = row[: draw(st.integers(0, len(row)))] if draw(st.booleans()) else row + ["extra"]
        rows.append(row)

    def cell(v: str) -> str:
        if any(ch in v for ch in ',"\r\n') or draw(st.integers(0, 19)) == 0:
            return '"' + v.replace('"', '""') + '"'
        return v

    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = newline.join(",".join(cell(v) for v in r) for r in [cols] + rows) + newline
    if draw(st.integers(0, 19)) == 0:
        text = text.replace('"', "", 1)  # an unbalanced quote
    data = encode(text, draw(st.sampled_from(["utf-8"] * 6 + ENCODINGS)))
    if draw(st.integers(0, 19)) == 0 and data:
        i = draw(st.integers(0, len(data) - 1))
        data = data[:i] + bytes([draw(st.integers(0, 255))]) + data[i + 1:]  # one corrupt byte
    return data
