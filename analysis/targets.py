"""Targets (METHODOLOGY §6): ``met`` when ci_low >= target, ``not_met`` when
ci_high < target, ``inconclusive`` otherwise; the point estimate never decides.

A target specification is a number (one target for everything), or a dict
whose keys are ``(year, ("unit", code))`` and ``("unit", code)`` (one unit's
own target, when ``codes`` are given), ``(year, kind)`` tuples, ``kind``
strings, ``year`` integers or ``"*"`` (default), looked up in that order. Targets are fractions in (0, 1]
(``90`` is read as 90%). Rows without an index get an empty status.
"""
from __future__ import annotations

import numpy as np

__all__ = ["resolve_targets", "target_status", "parse_target_arg"]


def _frac(v):
    v = float(v)
    return v / 100.0 if v > 1.0 else v


def resolve_targets(spec, year: int | None, kinds, codes=None) -> np.ndarray:
    """Target per row (NaN when none applies); ``codes`` (the rows' unit codes)
    lets a unit's own target win over its kind's."""
    kinds = list(kinds)
    if spec is None:
        return np.full(len(kinds), np.nan)
    if not isinstance(spec, dict):
        return np.full(len(kinds), _frac(spec))
    codes = [None] * len(kinds) if codes is None else list(codes)
    out = []
    for k, code in zip(kinds, codes):
        own = () if code is None else ((year, ("unit", code)), ("unit", code))
        for key in own + ((year, k), (str(year), k), k, year, str(year), "*"):
            if key in spec:
                out.append(_frac(spec[key]))
                break
        else:
            out.append(np.nan)
    return np.asarray(out, dtype=float)


def target_status(lo, hi, target) -> np.ndarray:
    """met / not_met / inconclusive, '' where the target or the interval is missing."""
    lo, hi, t = (np.asarray(a, dtype=float) for a in (lo, hi, target))
    ok = np.isfinite(lo) & np.isfinite(hi) & np.isfinite(t)
    return np.where(~ok, "", np.where(lo >= t, "met", np.where(hi < t, "not_met", "inconclusive"))).astype(object)


def parse_target_arg(text: str):
    """CLI form: ``0.9`` or ``commune=0.9,district=0.95,2025:ward=0.9,*=0.9``."""
    text = text.strip()
    if "=" not in text:
        return _frac(text)
    spec = {}
    for part in text.split(","):
        key, _, val = part.partition("=")
        key = key.strip()
        if ":" in key:
            y, _, k = key.partition(":")
            spec[(int(y), k.strip())] = _frac(val)
        elif key.isdigit():
            spec[int(key)] = _frac(val)
        else:
            spec[key] = _frac(val)
    return spec
