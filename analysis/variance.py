"""Taylor-linearised variance of ratio estimators over many domains at once.

The design is R's ``svydesign(ids=~1, strata=~cell, weights=~w, fpc=~N_cell)``
with ``options(survey.lonely.psu="adjust")``: one-stage stratified, every
response its own PSU. For a domain d and an estimator with per-response
influence value ``z_i = w_i·u_i`` (zero outside the domain), survey's
``svyrecvar``/``onestrat`` compute::

    Var_d = Σ_h  f_h · n_h/(n_h - 1) · Σ_{i in h} (z_i - z̄_h)²     (n_h > 1)
          + Σ_h  f_h · z_h²                                        (n_h = 1, "adjust":
                                                                     no centring)
    f_h   = (N_h - n_h)/N_h  (1 when N_h is unknown; a stratum with f_h < 1e-7
            contributes 0: a census)

where h runs over *all* cells of the design and n_h counts all eligible
responses of cell h, also those outside the domain (survey keeps the full
design's ``fpc$sampsize`` when a design is subset). Because every cell lies
in exactly one domain of a given level (cells are unit × stratum and a unit
has one ancestor per level), the whole computation is a few ``np.bincount``
calls per estimator: no loop over units.

Influence values (``svyratio``/``svymean``): for a ratio ``R = Σw·y / Σw·x``
over domain d, ``u_i = (y_i - R·x_i) / Σw·x``; for a linear combination
``Σ_j β_j R_j`` (element index of criteria, satisfaction index) ``u_i =
Σ_j β_j (y_ij - R_j x_ij)/X_j`` (``svycontrast``).

Rows may stand for several identical responses (``count``): every sum is
weighted by the count, which gives exactly the uncompressed result.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Design", "ratio_totals", "domain_variance", "lincomb_influence", "cell_moments", "moment_variance"]


@dataclass
class Design:
    """Row-level design: cell id, weight and multiplicity of each row, and per-cell sizes.

    ``cell_n``: eligible responses per cell (Σ count); ``cell_N``: design
    population per cell (NaN = unknown, no FPC); ``fpc`` False drops the FPC.
    """

    cell: np.ndarray
    w: np.ndarray
    count: np.ndarray
    cell_n: np.ndarray
    cell_N: np.ndarray
    fpc: bool = True

    @property
    def ncell(self) -> int:
        return len(self.cell_n)

    @property
    def cw(self) -> np.ndarray:
        """count × weight per row (cached)."""
        if not hasattr(self, "_cw"):
            self._cw = self.count * self.w
        return self._cw

    def scale(self) -> np.ndarray:
        """Per-cell factor ``f_h·n_h/(n_h-1)`` (``f_h`` when n_h = 1), 0 for a census."""
        n = self.cell_n
        N = self.cell_N if self.fpc else np.full_like(n, np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            f = np.where(np.isnan(N), 1.0, (N - n) / N)
            s = np.where(n > 1, f * n / np.maximum(n - 1, 1), f)
        return np.where(f < 1e-7, 0.0, s)

    def sampling_fraction(self) -> np.ndarray:
        """Per-cell ``n_h/N_h`` (NaN when N is unknown or the FPC is off)."""
        if not self.fpc:
            return np.full(self.ncell, np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.cell_n / self.cell_N


def ratio_totals(design: Design, dom: np.ndarray, ndom: int, y: np.ndarray, x: np.ndarray):
    """(Y_d, X_d) = (Σ c·w·y, Σ c·w·x) per domain; rows with dom < 0 are ignored."""
    ok = dom >= 0
    cw = design.cw[ok]
    d = dom[ok]
    Y = np.bincount(d, weights=cw * y[ok], minlength=ndom)
    X = np.bincount(d, weights=cw * x[ok], minlength=ndom)
    return Y, X


def lincomb_influence(dom: np.ndarray, ys, xs, R, X, B) -> np.ndarray:
    """Per-row ``u_i = Σ_j B_j[d]·(y_ij - R_j[d]·x_ij)/X_j[d]`` (0 where dom < 0 or B = 0).

    ``ys``/``xs``: lists of row arrays; ``R``, ``X``, ``B``: arrays (J, ndom).
    """
    ok = dom >= 0
    d = np.where(ok, dom, 0)
    u = np.zeros(len(dom))
    for j in range(len(ys)):
        with np.errstate(divide="ignore", invalid="ignore"):
            coef = np.where(X[j] > 0, B[j] / X[j], 0.0)
            r = np.where(X[j] > 0, R[j], 0.0)
        cj = coef[d]
        if not cj.any():
            continue
        u += cj * (ys[j] - r[d] * xs[j])
    u[~ok] = 0.0
    return u


def domain_variance(design: Design, u: np.ndarray, cell_dom: np.ndarray, ndom: int) -> np.ndarray:
    """Linearised variance per domain of the estimator with influence ``u`` (per unit weight).

    ``cell_dom``: domain of each cell at this level (-1: in no domain).
    Implements survey's one-stage stratified formula with lonely.psu="adjust"
    (see the module docstring), centring each cell on its own mean.
    """
    z = design.w * u
    c = design.count
    cell = design.cell
    n = design.cell_n
    T = np.bincount(cell, weights=c * z, minlength=design.ncell)
    mean = np.where(n > 1, T / np.maximum(n, 1), 0.0)  # lonely cells are not centred
    dev = z - mean[cell]
    Q = np.bincount(cell, weights=c * dev * dev, minlength=design.ncell)
    # rows absent from the domain are zeros that still deviate from the cell mean,
    # but all rows of a cell are present in ``u`` (0 outside the domain), so Q is complete.
    contrib = design.scale() * Q
    ok = cell_dom >= 0
    return np.bincount(cell_dom[ok], weights=contrib[ok], minlength=ndom)


def cell_moments(design: Design, ys, xs) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell moments of a = (y_1..y_J, x_1..x_J): ``g[h,k] = Σ c·w·a_k``, ``G[h,k,l] = Σ c·w²·a_k·a_l``.

    Level-independent sufficient statistics: with them the variance of any
    linear combination of ratios, for any domain level, needs no pass over rows.
    Every ratio variable has three states per row (0 not answered, 1 answered
    and not satisfied, 2 satisfied; y = 1 implies x = 1), so one bincount over
    (cell, state_j, state_k) gives the four products of a pair of variables.
    """
    J = len(ys)
    nc = design.ncell
    cw = design.cw
    cww = cw * design.w
    states = [(np.asarray(x) + np.asarray(y)).astype(np.int64) for y, x in zip(ys, xs)]
    g = np.empty((nc, 2 * J))
    G = np.empty((nc, 2 * J, 2 * J))
    base3 = design.cell * 3
    base9 = design.cell * 9
    for j in range(J):
        t = np.bincount(base3 + states[j], weights=cw, minlength=nc * 3).reshape(nc, 3)
        g[:, j] = t[:, 2]
        g[:, J + j] = t[:, 1] + t[:, 2]
        for k in range(j, J):
            m = np.bincount(base9 + states[j] * 3 + states[k], weights=cww, minlength=nc * 9).reshape(nc, 3, 3)
            yy = m[:, 2, 2]
            yx = m[:, 2, 1] + m[:, 2, 2]
            xy = m[:, 1, 2] + m[:, 2, 2]
            xx = m[:, 1:, 1:].sum(axis=(1, 2))
            for a, b, v in ((j, k, yy), (j, J + k, yx), (J + j, k, xy), (J + j, J + k, xx)):
                G[:, a, b] = v
                G[:, b, a] = v
    return g, G


def moment_variance(design: Design, moments, js, R, X, B, cell_dom: np.ndarray, ndom: int,
                    zero_cells: np.ndarray | None = None) -> np.ndarray:
    """Variance per domain of ``Σ_j B_j R_j`` (j in ``js``) from per-cell moments.

    With ``θ = (B_j/X_j, -B_j R_j/X_j)`` of the cell's domain, the influence of
    a row is ``z = w·θ·a``, so per cell ``T = θ·g`` and ``Σ c z² = θᵀ G θ``; the
    centred sum is ``Σ c z² - T²/n_h`` (n_h > 1; lonely cells are not centred),
    exactly :func:`domain_variance` without touching the rows. ``zero_cells``
    marks cells whose rows are identical for this estimator (their centred sum
    is exactly 0, which the subtraction would only approximate).
    """
    g, G = moments
    J = len(R)
    js = list(js)
    with np.errstate(divide="ignore", invalid="ignore"):
        gamma = np.where(X[js] > 0, B[js] / X[js], 0.0)
        theta = np.vstack([gamma, -gamma * np.where(X[js] > 0, R[js], 0.0)])
    idx = js + [J + j for j in js]
    ok = cell_dom >= 0
    th = theta[:, np.where(ok, cell_dom, 0)] * ok          # (2m, ncell)
    g_sub = g[:, idx]
    G_sub = G[:, idx][:, :, idx]
    T = np.einsum("hk,kh->h", g_sub, th)
    S = np.einsum("kh,hkl,lh->h", th, G_sub, th)
    n = design.cell_n
    Q = np.where(n > 1, S - T * T / np.maximum(n, 1), S)
    Q = np.maximum(Q, 0.0)
    if zero_cells is not None:
        Q = np.where(zero_cells & (n > 1), 0.0, Q)  # identical rows: the centred sum is exactly 0
    contrib = design.scale() * Q
    return np.bincount(cell_dom[ok], weights=contrib[ok], minlength=ndom)
