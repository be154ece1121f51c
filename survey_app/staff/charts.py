"""Server-rendered SVG charts (matplotlib, Agg, no pyplot state) for the staff pages.

Each function takes plain numbers already computed by `analysis` (via
`services.stats`) and returns SVG bytes; numbers on a chart are formatted by
`ui.format` in the page's language.  Text stays text (svg.fonttype
none), so charts are small, sharp in print and searchable; every chart is shown
beside a data table on the page.  Colours are colour-blind safe (Okabe–Ito)
and never the only carrier of meaning.

Every chart has two layouts (`phone=`): the wide one (7 in, shown up to 720 px)
and a phone one (4 in, larger type, long labels wrapped) that the unit page
serves below 600 px (`<picture>`), so that no label is smaller than about 11 CSS
px on a 390 px screen.  Both are SVG with a viewBox, drawn at 100% of their
frame's width.
"""
from __future__ import annotations

import functools
import io
import math
import textwrap
import threading
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.patches  # noqa: E402,F401
import matplotlib.ticker  # noqa: E402,F401
from matplotlib.figure import Figure  # noqa: E402

from ..ui.format import num  # noqa: E402

BLUE, ORANGE, GREEN, RED, GREY, SKY = "#0072B2", "#E69F00", "#009E73", "#D55E00", "#6b7280", "#56B4E9"
LIKERT_COLOURS = ["#b2182b", "#ef8a62", "#d9d9d9", "#67a9cf", "#2166ac"]
RC = {"svg.fonttype": "none", "font.family": "DejaVu Sans", "font.size": 10, "axes.spines.top": False,
      "axes.spines.right": False, "svg.hashsalt": "sipas"}


#: matplotlib's rcParams are process-global: `rc_context` of one thread would
#: leak into (or be undone under) another's drawing, e.g. text written as paths
#: instead of text.  Charts are drawn one at a time.
_DRAWING = threading.Lock()


def _one_at_a_time(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with _DRAWING:
            return fn(*args, **kwargs)
    return wrapper


def _ok(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and not math.isnan(float(x))


def _svg(fig: Figure, title: str) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Title": title, "Date": None})
    return buf.getvalue()


def _figure(width: float, height: float) -> Figure:
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(width, height), dpi=96)
    return fig


#: (width in inches, base font, small font, title font, label wrap) of each layout.
WIDE = dict(width=7.0, font=10, small=8, title=11, wrap=40, title_wrap=120, row=0.45)
PHONE = dict(width=3.5, font=11, small=10, title=11.5, wrap=14, title_wrap=30, row=0.7)


def layout(phone: bool = False) -> dict:
    return PHONE if phone else WIDE


def _rc(lay: dict) -> dict:
    return dict(RC, **{"font.size": lay["font"], "xtick.labelsize": lay["small"] + (0.5 if lay is PHONE else 0),
                       "ytick.labelsize": lay["font"] if lay is PHONE else lay["font"],
                       "axes.labelsize": lay["small"] + 1, "legend.fontsize": lay["small"]})


def _wrap(label: str, lay: dict) -> str:
    return "\n".join(textwrap.wrap(str(label), lay["wrap"])) or str(label)


@_one_at_a_time
def interval_chart(labels: Sequence[str], rates: Sequence, lows: Sequence, highs: Sequence,
                   target: Optional[float] = None, title: str = "", target_label: str = "",
                   xlabel: str = "", phone: bool = False) -> bytes:
    """Horizontal point-and-interval chart of rates (0–1) with an optional target line."""
    lay = layout(phone)
    with matplotlib.rc_context(_rc(lay)):
        n = max(len(labels), 1)
        fig = _figure(lay["width"], lay["row"] * n + 1.1)
        ax = fig.add_subplot()
        ys = list(range(n))[::-1]
        for y, r, lo, hi in zip(ys, rates, lows, highs):
            if _ok(lo) and _ok(hi):
                ax.plot([lo * 100, hi * 100], [y, y], color=SKY, linewidth=6, solid_capstyle="butt")
            if _ok(r):
                ax.plot([r * 100], [y], marker="o", color=BLUE, markersize=7)
                ax.annotate(num(r * 100, 1), (r * 100, y), xytext=(0, 7),
                            textcoords="offset points", ha="center", fontsize=lay["small"], color="#111")
        if _ok(target):
            ax.axvline(target * 100, color=RED, linestyle="--", linewidth=1.2)
            ax.annotate(target_label, (target * 100, n - 0.4), xytext=(-3 if phone else 3, 0),
                        textcoords="offset points", ha="right" if phone else "left", color=RED,
                        fontsize=lay["small"])
        ax.set_yticks(ys)
        ax.set_yticklabels([_wrap(lab, lay) for lab in labels])
        finite = [v * 100 for v in list(lows) + list(rates) if _ok(v)]
        lo_x = min(finite + ([target * 100] if _ok(target) else []), default=0)
        ax.set_xlim(max(0, math.floor(lo_x / 10) * 10 - 5), 100.5)
        ax.set_ylim(-0.7, n - 0.3)
        ax.set_xlabel(xlabel)
        ax.grid(axis="x", color="#e5e7eb")
        ax.set_axisbelow(True)
        if phone:
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5))
        if title:
            ax.set_title(_wrap(title, dict(lay, wrap=lay["title_wrap"])), loc="left", fontsize=lay["title"])
        return _svg(fig, title)


@_one_at_a_time
def trend_chart(labels: Sequence[str], values: Sequence, lows: Sequence, highs: Sequence,
                target: Optional[float] = None, title: str = "", ylabel: str = "",
                target_label: str = "", phone: bool = False) -> bytes:
    """Index over periods with its 95% interval as a shaded band."""
    lay = layout(phone)
    with matplotlib.rc_context(_rc(lay)):
        fig = _figure(lay["width"], 3.0 if not phone else 3.2)
        ax = fig.add_subplot()
        xs = list(range(len(labels)))
        pts = [(x, v * 100, lo * 100, hi * 100) for x, v, lo, hi in zip(xs, values, lows, highs)
               if _ok(v) and _ok(lo) and _ok(hi)]
        if pts:
            px, pv, pl, ph = zip(*pts)
            ax.fill_between(px, pl, ph, color=SKY, alpha=0.35, linewidth=0, label="95%")
            ax.plot(px, pv, color=BLUE, marker="o", linewidth=2)
        if _ok(target):
            ax.axhline(target * 100, color=RED, linestyle="--", linewidth=1.2)
            ax.annotate(target_label, (0, target * 100), xytext=(2, 3), textcoords="offset points",
                        color=RED, fontsize=lay["small"])
        ax.set_xticks(xs)
        crowded = phone and len(labels) > 4
        ax.set_xticklabels(labels, rotation=45 if crowded else 0, ha="right" if crowded else "center",
                           fontsize=lay["small"] if phone else 8)
        vals = [p[2] for p in pts] + ([target * 100] if _ok(target) else [])
        ax.set_ylim(max(0, math.floor(min(vals, default=50) / 10) * 10 - 5), 100.5)
        ax.set_xlim(-0.5, max(len(labels) - 0.5, 0.5))
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", color="#e5e7eb")
        ax.set_axisbelow(True)
        if title:
            ax.set_title(_wrap(title, dict(lay, wrap=lay["title_wrap"])), loc="left", fontsize=lay["title"])
        return _svg(fig, title)


@_one_at_a_time
def distribution_chart(labels: Sequence[str], counts: Sequence[Sequence[int]], scale_labels: Sequence[str],
                       title: str = "", xlabel: str = "", phone: bool = False) -> bytes:
    """100% stacked bars of answers 1–5 per element."""
    lay = layout(phone)
    with matplotlib.rc_context(_rc(lay)):
        n = max(len(labels), 1)
        fig = _figure(lay["width"], lay["row"] * n + (1.5 if not phone else 2.4))
        ax = fig.add_subplot()
        ys = list(range(n))[::-1]
        for y, row in zip(ys, counts):
            total = sum(row) or 1
            left = 0.0
            for k, c in enumerate(row):
                w = 100.0 * c / total
                ax.barh(y, w, left=left, color=LIKERT_COLOURS[k], edgecolor="white", height=0.7)
                if w >= (7 if not phone else 12):
                    ax.text(left + w / 2, y, num(w), ha="center", va="center", fontsize=lay["small"],
                            color="white" if k in (0, 4) else "#111")
                left += w
        ax.set_yticks(ys)
        ax.set_yticklabels([_wrap(lab, lay) for lab in labels])
        ax.set_xlim(0, 100)
        ax.set_xlabel(xlabel)
        handles = [matplotlib.patches.Patch(color=c, label=lab) for c, lab in zip(LIKERT_COLOURS, scale_labels)]
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.28 if n < 4 else -0.18),
                  ncol=5 if not phone else 2, fontsize=lay["small"], frameon=False)
        if title:
            ax.set_title(_wrap(title, dict(lay, wrap=lay["title_wrap"])), loc="left", fontsize=lay["title"])
        return _svg(fig, title)


@_one_at_a_time
def drivers_chart(labels: Sequence[str], importance: Sequence, performance: Sequence,
                  imp_cut: Optional[float], perf_cut: Optional[float], title: str = "",
                  xlabel: str = "", ylabel: str = "", quadrant_labels: Sequence[str] = (),
                  phone: bool = False) -> bytes:
    """Importance × performance scatter with the quadrant cut lines."""
    lay = layout(phone)
    with matplotlib.rc_context(_rc(lay)):
        fig = _figure(6.0 if not phone else lay["width"], 4.2)
        ax = fig.add_subplot()
        for lab, i, p in zip(labels, importance, performance):
            if _ok(i) and _ok(p):
                ax.scatter([p * 100], [i * 100], color=BLUE, s=45, zorder=3)
                ax.annotate(_wrap(lab, lay), (p * 100, i * 100), xytext=(5, 4), textcoords="offset points",
                            fontsize=8.5 if not phone else lay["small"])
        if _ok(imp_cut):
            ax.axhline(imp_cut * 100, color=GREY, linestyle=":", linewidth=1)
        if _ok(perf_cut):
            ax.axvline(perf_cut * 100, color=GREY, linestyle=":", linewidth=1)
        if len(quadrant_labels) == 2:
            ax.text(0.01, 0.98, quadrant_labels[0], transform=ax.transAxes, va="top", fontsize=lay["small"],
                    color=RED)
            ax.text(0.99, 0.98, quadrant_labels[1], transform=ax.transAxes, va="top", ha="right",
                    fontsize=lay["small"], color=GREEN)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.margins(0.15)
        ax.grid(color="#f0f0f0")
        if title:
            ax.set_title(_wrap(title, dict(lay, wrap=lay["title_wrap"])), loc="left", fontsize=lay["title"])
        return _svg(fig, title)
