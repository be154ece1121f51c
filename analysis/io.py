"""Reading and validating the CSV interfaces (responses, volumes, units).

Every reader collects all problems of a file and raises one
:class:`analysis.errors.InputError`. Line numbers count the header as line 1,
so record ``i`` (0-based) is line ``i + 2``; this is exact unless a quoted field
contains a line break. The ``prepare_*`` functions accept an already loaded
DataFrame (strings or typed values, as the web app has them) and apply the same
rules; for a frame the "line" is the row position + 2, as if it were a CSV.
Every problem carries a stable ``code`` and its ``params`` (see
:class:`analysis.errors.Problem`) so the web app can word it in Vietnamese.

Rules (METHODOLOGY §5b):

- item columns (``overall``, ``access``, ``procedure``, ``staff``, ``result``,
  ``feedback``): integers 1-5, empty = not answered / not applicable;
- criteria columns ``<element>_c<k>`` (``access_c1``, ...): 1 = yes, 0 = no,
  empty = don't know / not answered;
- ``excluded``: blank, 0 or 1; ``age_group``: exactly ``under_18`` excludes;
- ``submitted_at``: ISO 8601 with an offset (``Z``, ``+HH:MM``, ``+HHMM``,
  ``+HH``), ``T`` or a space between date and time, fractional seconds allowed;
- ``weight`` (optional): a positive number; ``count`` (optional): an integer
  >= 0, the number of identical responses the row stands for;
- ``transactions`` (volumes): an integer >= 0 (a number of dossiers);
- codes and strata are trimmed; an empty stratum is ``_all``;
- header names are normalised once (:func:`normalise_header`: surrounding
  spaces, a byte-order mark and zero-width characters removed, lower case), so
  `` Unit_Code`` is ``unit_code`` for every check that follows.

:class:`CsvChunks` reads a CSV byte stream row by row (bounded memory: one
chunk of rows at a time) with the same header rules, reports the rows whose
cell count does not match the header, and computes a digest of the *content*
(normalised header and cells) so that a re-saved copy of a file (CRLF line
ends, a BOM, quoting, a trailing newline) is recognised as the same data.
"""
from __future__ import annotations

import csv
import hashlib
import io as _io
import os
import re
import unicodedata
from typing import BinaryIO, Iterable, Iterator

import numpy as np
import pandas as pd

from .errors import InputError, Problem
from .schema import (
    ALL_STRATUM,
    ELEMENTS,
    ITEM_KEYS,
    RESPONSE_COLUMNS,
    TIMESTAMP_MAX_YEAR,
    TIMESTAMP_MIN_YEAR,
    UNDER_18,
    UNIT_COLUMNS,
    VOLUME_COLUMNS,
)

__all__ = [
    "ITEM_KEYS",
    "ELEMENTS",
    "RESPONSE_COLUMNS",
    "VOLUME_COLUMNS",
    "UNIT_COLUMNS",
    "criteria_columns",
    "read_responses",
    "read_volumes",
    "read_units",
    "prepare_responses",
    "prepare_volumes",
    "prepare_units",
    "check_known_units",
    "normalise_header",
    "CsvChunks",
]

MAX_PROBLEMS = 1000

_CRIT_RE = re.compile(r"^(%s)_c(\d+)$" % "|".join(ELEMENTS))
_TS_RE = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$"
_DATE_RE = r"^\d{4}-\d{2}-\d{2}$"
_TS_PATTERN = re.compile(_TS_RE)


def criteria_columns(columns: Iterable[str]) -> dict[str, list[str]]:
    """Criteria columns per element, in criterion-number order (``access_c1``, ...)."""
    found: dict[str, list[tuple[int, str]]] = {}
    for c in columns:
        m = _CRIT_RE.match(str(c))
        if m:
            found.setdefault(m.group(1), []).append((int(m.group(2)), str(c)))
    return {e: [c for _, c in sorted(v)] for e, v in found.items()}


class _Collector:
    """Accumulates problems for one source, capped at MAX_PROBLEMS."""

    def __init__(self, source: str):
        self.source = source
        self.problems: list[Problem] = []

    def add(self, line, column, message, code="", **params):
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(self.source, line, column, message, code, params))

    def add_mask(self, mask, column, message_fn, values=None, code="", **params):
        """Add one problem per True in ``mask`` (line = position + 2); the row's
        value, when given, is the ``value`` parameter of the problem."""
        idx = np.flatnonzero(np.asarray(mask))
        if len(idx) and callable(values):
            values = values()
        for i in idx[: max(0, MAX_PROBLEMS - len(self.problems))]:
            v = None if values is None else values[i]
            extra = {} if values is None else {"value": v}
            self.add(int(i) + 2, column, message_fn(v), code, **params, **extra)

    def raise_if_any(self):
        if self.problems:
            raise InputError(self.problems)


def _source_name(path_or_buf, source):
    if source:
        return source
    if isinstance(path_or_buf, (str, os.PathLike)):
        return os.fspath(path_or_buf)
    return getattr(path_or_buf, "name", "<input>")


def _read_csv(path_or_buf, source: str) -> pd.DataFrame:
    try:
        df = pd.read_csv(path_or_buf, dtype=str, keep_default_na=False, na_filter=False,
                         skipinitialspace=False, encoding="utf-8-sig" if not hasattr(path_or_buf, "read") else None)
    except FileNotFoundError:
        raise InputError([Problem(source, None, None, "file not found", "file_not_found")]) from None
    except pd.errors.EmptyDataError:
        raise InputError([Problem(source, 1, None, "file is empty (no header line)", "file_empty")]) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError([Problem(source, None, None, f"cannot parse CSV: {exc}", "csv_parse", {"reason": str(exc)})]) from None
    df.columns = normalise_header(df.columns)
    return df


_INVISIBLE = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060\u00ad"))


def normalise_header(names: Iterable) -> list[str]:
    """Header names as every check compares them: NFKC, without a byte-order
    mark or zero-width characters, trimmed, lower case (`` Unit_Code\ufeff`` ->
    ``unit_code``).  THE one place header names are cleaned."""
    return [unicodedata.normalize("NFKC", str(n)).translate(_INVISIBLE).strip().lower() for n in names]


class CsvChunks:
    """A CSV byte stream read row by row, in chunks of at most ``chunk_rows``
    rows (None: one chunk), each a DataFrame of trimmed strings with the CSV
    line number of each row.

    Opening checks the structure and raises :class:`InputError` (codes
    ``file_empty``, ``missing_columns``, ``repeated_columns``) with the header
    normalised by :func:`normalise_header`; while iterating, a file that is not
    UTF-8, contains NUL or is not valid CSV raises (``file_not_utf8``,
    ``file_nul``, ``csv_parse``, with the line).  Rows whose cell count does not
    match the header are left out of the chunks and listed in ``problems``
    (code ``cells``); blank rows are skipped.  After the last chunk,
    :meth:`digest` is the SHA-256 of the content: the normalised header and
    every kept row's trimmed, NFC-normalised cells in sorted column order, so
    line ends, a BOM, quoting and blank lines do not change it.
    """

    def __init__(self, stream: BinaryIO, *, source: str = "<input>", required: Iterable[str] = (),
                 chunk_rows: int | None = 20000):
        self.source = source
        self.chunk_rows = chunk_rows
        self.problems: list[Problem] = []
        self.rows = 0
        self._hash = hashlib.sha256()
        self._text = _io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        self._line = 0
        self._reader = csv.reader(self._checked_lines())
        try:
            header = next(self._reader)
        except StopIteration:
            raise InputError([Problem(source, 1, None, "file is empty (no header line)", "file_empty")]) from None
        self.header = normalise_header(header)
        missing = [c for c in required if c not in self.header]
        if missing:
            raise InputError([Problem(source, 1, None, "missing columns: " + ", ".join(missing), "missing_columns",
                                      {"names": ", ".join(missing)})])
        dupes = sorted({h for h in self.header if self.header.count(h) > 1})
        if dupes:
            raise InputError([Problem(source, 1, None, "repeated columns: " + ", ".join(dupes), "repeated_columns",
                                      {"names": ", ".join(dupes)})])
        self._order = sorted(range(len(self.header)), key=lambda i: self.header[i])
        self._hash.update("\x1f".join(self.header[i] for i in self._order).encode() + b"\x1e")

    def _checked_lines(self) -> Iterator[str]:
        decode_at = 1
        try:
            for line in self._text:
                decode_at += 1
                if "\x00" in line:
                    raise InputError([Problem(self.source, decode_at - 1, None, "the file contains NUL characters",
                                              "file_nul", {"line": decode_at - 1})])
                yield line
        except UnicodeDecodeError as exc:
            raise InputError([Problem(self.source, decode_at, None, f"not UTF-8 ({exc.reason})", "file_not_utf8",
                                      {"reason": exc.reason, "line": decode_at})]) from None

    def _add_problem(self, line, code, message, **params):
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(self.source, line, None, message, code, params))

    def __iter__(self) -> Iterator[tuple[pd.DataFrame, list[int]]]:
        width, order, update, nfc = len(self.header), self._order, self._hash.update, unicodedata.normalize
        rows: list[list[str]] = []
        lines: list[int] = []
        reader = self._reader
        while True:
            try:
                values = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                raise InputError([Problem(self.source, reader.line_num, None, f"cannot parse CSV: {exc}",
                                          "csv_parse", {"reason": str(exc), "line": reader.line_num})]) from None
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != width:
                self._add_problem(reader.line_num, "cells", f"{len(values)} cells, the header has {width} columns",
                                  n=len(values), m=width)
                continue
            cells = [v.strip() for v in values]
            update(nfc("NFC", "".join(f"{len(cells[i])}:{cells[i]}\x1f" for i in order)).encode() + b"\x1e")
            rows.append(cells)
            lines.append(reader.line_num)
            if self.chunk_rows and len(rows) >= self.chunk_rows:
                yield self._frame(rows, lines)
                rows, lines = [], []
        if rows:
            yield self._frame(rows, lines)

    def _frame(self, rows, lines):
        self.rows += len(rows)
        return pd.DataFrame(rows, columns=self.header, dtype=object), lines

    def digest(self) -> str:
        """SHA-256 (hex) of the content read so far (all of it once iterated)."""
        return self._hash.hexdigest()

    def detach(self) -> None:
        """Leave the underlying byte stream open (the text wrapper would close it)."""
        self._text.detach()


def _require_columns(df, required, col: _Collector):
    missing = [c for c in required if c not in df.columns]
    for c in missing:
        col.add(1, c, "required column is missing", "missing_column")
    col.raise_if_any()


def _text(s: pd.Series) -> pd.Series:
    """Column as trimmed strings (object dtype), missing values as ''.

    Works on the distinct values only (``pd.factorize``), so a column of a
    million rows with a few thousand codes costs one hash pass.
    """
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    clean = np.array([str(x).strip() for x in np.asarray(uniques, dtype=object)] + [""], dtype=object)
    return pd.Series(clean[codes], index=s.index, dtype=object)


def _text_cat(s: pd.Series, empty_as: str = "") -> pd.Categorical:
    """Trimmed strings as a Categorical (one hash pass; ``empty_as`` replaces '')."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        codes, uniques = s.cat.codes.to_numpy(), s.cat.categories
    else:
        codes, uniques = pd.factorize(s, use_na_sentinel=True)
    clean = np.array([str(x).strip() for x in np.asarray(uniques, dtype=object)] + [""], dtype=object)
    clean[clean == ""] = empty_as
    cu_codes, cu = pd.factorize(clean)
    return pd.Categorical.from_codes(cu_codes[codes], categories=pd.Index(cu, dtype=object))


def _numeric(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(values as float with NaN for empty, mask of non-empty values that did not parse).

    Text columns are parsed on their distinct values only (a 1-5 item column
    has a handful), then mapped back to the rows.
    """
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        v = s.to_numpy(dtype=float, na_value=np.nan)
        return v, np.zeros(len(v), dtype=bool)
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    text = np.array([str(x).strip() for x in np.asarray(uniques, dtype=object)] + [""], dtype=object)
    empty = text == ""
    vals = pd.to_numeric(pd.Series(np.where(empty, None, text), dtype=object), errors="coerce") \
        .to_numpy(dtype=float, na_value=np.nan)
    bad_u = ~empty & np.isnan(vals)
    return vals[codes], bad_u[codes]


def _parse_timestamps(s: pd.Series, col: _Collector, column="submitted_at") -> pd.Series:
    """Aware UTC timestamps; naive or unparseable values are problems."""
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(s.dtype):
        col.add(None, column, "timestamps have no UTC offset (local time would be ambiguous)", "timestamp_no_offset")
        return pd.Series(pd.NaT, index=s.index, dtype="datetime64[us, UTC]")
    t = _text(s)
    match = _TS_PATTERN.match
    ok = np.fromiter((match(x) is not None for x in t.to_numpy(object)), dtype=bool, count=len(t))
    empty = (t == "").to_numpy()
    col.add_mask(empty, column, lambda v: "empty timestamp", code="empty_timestamp")
    col.add_mask(~ok & ~empty, column,
                 lambda v: f"timestamp {v!r} is not ISO 8601 with an offset (Z, +HH:MM, +HHMM or +HH)",
                 t.to_numpy(), code="timestamp_format")
    good = t.where(ok, None)
    try:
        parsed = pd.to_datetime(good, utc=True, format="ISO8601", errors="coerce")
    except (ValueError, TypeError):  # pragma: no cover - defensive
        parsed = pd.to_datetime(good, utc=True, errors="coerce")
    bad = ok & parsed.isna().to_numpy()
    col.add_mask(bad, column, lambda v: f"timestamp {v!r} is not a valid date/time", t.to_numpy(),
                 code="timestamp_invalid")
    years = parsed.dt.year.to_numpy(dtype=float, na_value=np.nan)
    far = ~np.isnan(years) & ((years < TIMESTAMP_MIN_YEAR) | (years >= TIMESTAMP_MAX_YEAR))
    col.add_mask(far, column, lambda v: f"timestamp {v!r} is outside the years {TIMESTAMP_MIN_YEAR}-"
                 f"{TIMESTAMP_MAX_YEAR - 1}", t.to_numpy(), code="timestamp_range", low=TIMESTAMP_MIN_YEAR,
                 high=TIMESTAMP_MAX_YEAR - 1)
    return parsed.where(~far, pd.NaT) if far.any() else parsed


def _parse_dates(s: pd.Series, col: _Collector, column: str, allow_empty: bool) -> pd.Series:
    """Local calendar dates (YYYY-MM-DD) as datetime64 at midnight; NaT for empty."""
    t = _text(s.astype(str) if pd.api.types.is_datetime64_any_dtype(s.dtype) else s).str.slice(0, 10) \
        if pd.api.types.is_datetime64_any_dtype(s.dtype) else _text(s)
    empty = (t == "").to_numpy()
    ok = t.str.match(_DATE_RE).to_numpy()
    if not allow_empty:
        col.add_mask(empty, column, lambda v: "empty date", code="empty_date")
    col.add_mask(~ok & ~empty, column, lambda v: f"date {v!r} is not YYYY-MM-DD", t.to_numpy(),
                 code="date_format")
    parsed = pd.to_datetime(t.where(ok, None), format="%Y-%m-%d", errors="coerce")
    col.add_mask(ok & parsed.isna().to_numpy(), column, lambda v: f"date {v!r} does not exist", t.to_numpy(),
                 code="date_invalid")
    return parsed


# ----------------------------------------------------------------------------- responses

def read_responses(path_or_buf, *, source: str | None = None, known_units=None) -> pd.DataFrame:
    """Read and validate a response CSV; see :func:`prepare_responses` for the result."""
    src = _source_name(path_or_buf, source)
    df = _read_csv(path_or_buf, src)
    return prepare_responses(df, source=src, known_units=known_units, require_all=True)


def prepare_responses(df: pd.DataFrame, *, source: str = "responses", known_units=None,
                      require_all: bool = False) -> pd.DataFrame:
    """Validate a response frame and return a normalised copy.

    Result columns: ``unit_code``, ``stratum`` (trimmed, empty -> ``_all``),
    item columns as float 1-5 / NaN, criteria columns as float 0/1 / NaN,
    ``excluded`` (bool), ``under_18`` (bool), ``count`` (int64, default 1),
    ``weight`` (float, if given), ``submitted_at`` (UTC, if given) and the other
    columns untouched. With ``require_all`` the DESIGN columns must all be there
    (CSV files); otherwise only ``unit_code`` is required (the app's aggregated
    rows may omit timestamps, ids and flags).
    """
    col = _Collector(source)
    required = RESPONSE_COLUMNS if require_all else ("unit_code",)
    _require_columns(df, required, col)
    out = pd.DataFrame(index=pd.RangeIndex(len(df)))
    df = df.reset_index(drop=True)
    unit = _text_cat(df["unit_code"])
    col.add_mask(np.asarray(unit == ""), "unit_code", lambda v: "empty unit code", code="empty_unit_code")
    out["unit_code"] = unit
    out["stratum"] = _text_cat(df["stratum"], ALL_STRATUM) if "stratum" in df.columns else \
        pd.Categorical.from_codes(np.zeros(len(df), dtype=np.int8), categories=pd.Index([ALL_STRATUM], dtype=object))
    for key in ITEM_KEYS:
        if key in df.columns:
            v, bad = _numeric(df[key])
            bad |= ~np.isnan(v) & ((v < 1) | (v > 5) | (v != np.round(v)))
            col.add_mask(bad, key, lambda x: f"value {x!r} is not 1-5 or empty", lambda: _text(df[key]).to_numpy(),
                         code="value_range", low=1, high=5)
            out[key] = np.where(bad, np.nan, v)
    for element, cols in criteria_columns(df.columns).items():
        for c in cols:
            v, bad = _numeric(df[c])
            bad |= ~np.isnan(v) & (v != 0) & (v != 1)
            col.add_mask(bad, c, lambda x: f"value {x!r} is not 1 (yes), 0 (no) or empty",
                         lambda: _text(df[c]).to_numpy(), code="value_range", low=0, high=1)
            out[c] = np.where(bad, np.nan, v)
    if "excluded" in df.columns:
        t = _text(df["excluded"])
        tv = t.to_numpy()
        ok = pd.Series(tv).isin(["", "0", "1", "0.0", "1.0", "True", "False", "true", "false"]).to_numpy()
        col.add_mask(~ok, "excluded", lambda x: f"value {x!r} is not blank, 0 or 1", tv, code="excluded_value")
        out["excluded"] = pd.Series(tv).isin(["1", "1.0", "True", "true"]).to_numpy()
    else:
        out["excluded"] = False
    if "age_group" in df.columns:
        age = _text_cat(df["age_group"])
        out["age_group"] = age
        out["under_18"] = np.asarray(age == UNDER_18)
    else:
        out["under_18"] = False
    if "count" in df.columns:
        v, bad = _numeric(df["count"])
        bad |= np.isnan(v) | (v < 0) | (np.nan_to_num(v) != np.round(np.nan_to_num(v)))
        col.add_mask(bad, "count", lambda x: f"count {x!r} is not an integer >= 0",
                     lambda: _text(df["count"]).to_numpy(), code="not_count")
        out["count"] = np.where(bad, 0, np.nan_to_num(v)).astype(np.int64)
    else:
        out["count"] = np.ones(len(df), dtype=np.int64)
    if "weight" in df.columns:
        v, bad = _numeric(df["weight"])
        bad |= ~np.isnan(v) & ~(v > 0)
        col.add_mask(bad, "weight", lambda x: f"weight {x!r} is not a positive number",
                     lambda: _text(df["weight"]).to_numpy(), code="not_positive")
        out["weight"] = np.where(bad, np.nan, v)
    if "submitted_at" in df.columns:
        out["submitted_at"] = _parse_timestamps(df["submitted_at"], col).reset_index(drop=True)
    for c in df.columns:
        if c not in out.columns and c not in ("age_group",):
            out[c] = df[c].to_numpy()
    if known_units is not None:
        check_known_units(out["unit_code"], known_units, source, "unit_code", col)
    col.raise_if_any()
    out.attrs["analysis_prepared"] = True
    return out


def check_known_units(codes: pd.Series, known, source: str, column: str, col: _Collector | None = None):
    """Problem per row whose code is not among ``known`` (raises unless ``col`` is given)."""
    own = col or _Collector(source)
    if isinstance(getattr(codes, "dtype", None), pd.CategoricalDtype):
        k, uniq = np.asarray(codes.cat.codes), codes.cat.categories
    else:
        k, uniq = pd.factorize(np.asarray(codes, dtype=object))
    uniq = np.asarray(uniq, dtype=object)
    bad_u = ~pd.Series(uniq).isin(list(known)).to_numpy() & (uniq != "")
    bad = bad_u[k] & (k >= 0)
    values = uniq[np.maximum(k, 0)]
    if bad.any():
        frame = pd.DataFrame({"code": values[bad], "line": np.flatnonzero(bad) + 2})
        for code, g in frame.groupby("code", sort=True):
            k = len(g)
            more = f"; {k} rows, first at line {g['line'].iloc[0]}" if k > 1 else ""
            own.add(int(g["line"].iloc[0]), column, f"unknown unit {code!r} (not in the unit file{more})",
                    "unknown_unit", value=code, rows=k)
    if col is None:
        own.raise_if_any()


# ----------------------------------------------------------------------------- volumes

def read_volumes(path_or_buf, *, source: str | None = None, known_units=None) -> pd.DataFrame:
    """Read and validate a volume CSV; see :func:`prepare_volumes`."""
    src = _source_name(path_or_buf, source)
    return prepare_volumes(_read_csv(path_or_buf, src), source=src, known_units=known_units)


def prepare_volumes(df: pd.DataFrame, *, source: str = "volumes", known_units=None) -> pd.DataFrame:
    """Validate volumes: ``unit_code, period_start, period_end, stratum, transactions``.

    Dates are local days, both inclusive; ``transactions`` a number >= 0.
    Returns the columns with ``period_start``/``period_end`` as datetime64 and a
    ``line`` column (the CSV line of each row).
    """
    col = _Collector(source)
    _require_columns(df, VOLUME_COLUMNS, col)
    df = df.reset_index(drop=True)
    out = pd.DataFrame(index=pd.RangeIndex(len(df)))
    unit = _text(df["unit_code"])
    col.add_mask((unit == "").to_numpy(), "unit_code", lambda v: "empty unit code", code="empty_unit_code")
    out["unit_code"] = unit.to_numpy()
    st = _text(df["stratum"])
    out["stratum"] = st.where(st != "", ALL_STRATUM).to_numpy()
    out["period_start"] = _parse_dates(df["period_start"], col, "period_start", False).to_numpy()
    out["period_end"] = _parse_dates(df["period_end"], col, "period_end", False).to_numpy()
    back = (out["period_end"] < out["period_start"]).to_numpy()
    col.add_mask(back, "period_end", lambda v: "period_end is before period_start", code="end_before_start")
    v, bad = _numeric(df["transactions"])
    # Transactions count dossiers: whole numbers (the app stores them as integers).
    bad |= np.isnan(v) | (np.nan_to_num(v) < 0) | (np.nan_to_num(v) != np.round(np.nan_to_num(v)))
    col.add_mask(bad, "transactions", lambda x: f"transactions {x!r} is not an integer >= 0",
                 lambda: _text(df["transactions"]).to_numpy(), code="not_count")
    out["transactions"] = np.where(bad, 0.0, np.nan_to_num(v))
    out["line"] = np.arange(len(df)) + 2
    if known_units is not None:
        check_known_units(out["unit_code"], known_units, source, "unit_code", col)
    col.raise_if_any()
    out.attrs["analysis_prepared"] = True
    return out


# ----------------------------------------------------------------------------- units

def read_units(path_or_buf, *, source: str | None = None) -> pd.DataFrame:
    """Read and validate a unit CSV; see :func:`prepare_units`."""
    src = _source_name(path_or_buf, source)
    return prepare_units(_read_csv(path_or_buf, src), source=src)


def prepare_units(df: pd.DataFrame, *, source: str = "units", known_codes=()) -> pd.DataFrame:
    """Validate the effective-dated unit tree.

    ``valid_from`` (inclusive) and ``valid_to`` (exclusive: the first day the
    row no longer applies) are local dates, blank = open. A code may have
    several rows (versions) whose validity must not overlap. ``parent_code`` and
    ``successor_code`` must name codes of the file (or of ``known_codes``: units
    stored elsewhere, e.g. in the app's database).
    """
    col = _Collector(source)
    _require_columns(df, UNIT_COLUMNS, col)
    df = df.reset_index(drop=True)
    out = pd.DataFrame(index=pd.RangeIndex(len(df)))
    for c in ("code", "name_vi", "name_en", "kind", "parent_code", "successor_code"):
        out[c] = _text(df[c]).to_numpy()
    col.add_mask((out["code"] == "").to_numpy(), "code", lambda v: "empty code", code="empty_code")
    col.add_mask((out["kind"] == "").to_numpy(), "kind", lambda v: "empty kind", code="empty_kind")
    out["valid_from"] = _parse_dates(df["valid_from"], col, "valid_from", True).to_numpy()
    out["valid_to"] = _parse_dates(df["valid_to"], col, "valid_to", True).to_numpy()
    back = (out["valid_to"] <= out["valid_from"]).to_numpy()
    col.add_mask(back, "valid_to", lambda v: "valid_to is not after valid_from", code="end_before_start")
    codes = set(out["code"]) | set(known_codes)
    for c in ("parent_code", "successor_code"):
        vals = out[c].to_numpy()
        bad = (vals != "") & ~np.isin(vals, list(codes))
        col.add_mask(bad, c, lambda v, c=c: f"{c} {v!r} is not a code of the unit file", vals, code="unknown_unit")
    col.add_mask((out["parent_code"] == out["code"]).to_numpy(), "parent_code", lambda v: "a unit is its own parent",
                 code="own_parent")
    out["line"] = np.arange(len(df)) + 2
    # overlapping versions of one code
    dup = out[out.duplicated("code", keep=False)].sort_values(["code", "valid_from"], na_position="first")
    for code, g in dup.groupby("code", sort=False):
        starts = g["valid_from"].fillna(pd.Timestamp("1900-01-01")).to_numpy()
        ends = g["valid_to"].fillna(pd.Timestamp("2262-01-01")).to_numpy()
        for k in range(1, len(g)):
            if starts[k] < ends[k - 1]:
                col.add(int(g["line"].iloc[k]), "valid_from", f"versions of unit {code!r} overlap in time",
                        "versions_overlap", value=code)
    col.raise_if_any()
    out.attrs["analysis_prepared"] = True
    return out
