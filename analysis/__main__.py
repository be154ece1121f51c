"""Command line: ``python -m analysis <command> ...`` over CSV files.

Commands::

    index     --responses R.csv [--volumes V.csv] [--units U.csv] [--period 2025]
              [--level unit|parent|root] [--ci wilson|beta|logit]
              [--weights-from auto|volumes|none|column] [--adequacy yamane|cochran|quota]
              [--quota commune=150,ward=200] [--target 0.9 | --target commune=0.9,district=0.95]
              [--as-of YYYY-MM-DD] [--rollup pooled|mean_of_units] [--map-successors]
              [--criteria] [--calendar] [--no-cap-n-eff] [--shrink] [--rank [--rank-among adequate|all]]
              [--out out.csv|out.xlsx|out.json|-]
    adequacy  --volumes V.csv [--units U.csv] --period P [--adequacy ...] [--out ...]
              required sample sizes from volumes alone (fieldwork planning), with a
              proportional allocation over strata
    drivers   --responses R.csv [--volumes V.csv] [--units U.csv] [--period P] [--out ...]
    trend     --responses R.csv [--volumes V.csv] [--units U.csv] --period P
              [--previous P0] [--out ...]

Outputs (see :mod:`analysis.output`): ``.csv`` + ``<out>.meta.json``,
``.xlsx`` with a ``method`` sheet, ``.json`` with a ``meta`` key, ``-`` = CSV
on stdout (default). Every output names the method version (``method``
column, ``meta.method_version``): ``sipas-index/2.0``, or
``sipas-index/2.0-uncapped`` with ``--no-cap-n-eff``. Input problems print ``error: <file>, line L, column 'C':
message`` lines on stderr and exit with code 2, never a traceback; ``drivers``,
``trend``, ``--shrink`` and ``--rank`` need modules of their own and print
"not available yet" (exit 2) when those are absent. Progress goes to stderr
only when stderr is a terminal.
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import sys
import time

from .errors import MAX_SHOWN, InputError
from .schema import ADEQUACY_RULES, CI_METHODS, ROLLUPS, ROOT_LEVEL, UNIT_LEVEL, WEIGHT_SOURCES

__all__ = ["main", "build_parser", "EXIT_INPUT"]

EXIT_INPUT = 2


class _Progress:
    """Progress lines on stderr, only when stderr is a TTY."""

    def __init__(self):
        self.on = sys.stderr.isatty()
        self.t0 = time.perf_counter()

    def __call__(self, msg: str):
        if self.on:
            print(f"[{time.perf_counter() - self.t0:6.1f}s] {msg}", file=sys.stderr, flush=True)


class _NotAvailable(Exception):
    pass


def _optional(module: str):
    try:
        return importlib.import_module(f"analysis.{module}")
    except ImportError:
        raise _NotAvailable(f"analysis.{module}") from None


def _load(args, progress, need_responses=True):
    from . import io

    units = known = None
    if getattr(args, "units", None):
        progress(f"reading {args.units}")
        units = io.read_units(args.units)
        known = set(units["code"])
    vols = None
    if getattr(args, "volumes", None):
        progress(f"reading {args.volumes}")
        vols = io.read_volumes(args.volumes, known_units=known)
    resp = None
    if need_responses:
        progress(f"reading {args.responses}")
        resp = io.read_responses(args.responses, known_units=known)
    return resp, vols, units


def _period(text, calendar=False):
    from .periods import parse_period

    if text is None:
        return None
    try:
        return parse_period(text, calendar=calendar)
    except ValueError as exc:
        raise InputError(f"--period: {exc}") from None


def _options(args):
    from .index import IndexOptions
    from .targets import parse_target_arg

    quotas = None
    if getattr(args, "quota", None):
        quotas = {k.strip(): float(v) for k, v in (p.split("=") for p in args.quota.split(","))}
    as_of = dt.date.fromisoformat(args.as_of) if getattr(args, "as_of", None) else None
    return IndexOptions(
        ci=args.ci, weights_from=args.weights_from, adequacy=args.adequacy, quotas=quotas,
        min_transactions=args.min_transactions, margin=args.margin,
        target=parse_target_arg(args.target) if args.target else None,
        as_of=as_of, rollup=args.rollup, map_successors=args.map_successors,
        element_mode="criteria" if args.criteria else "direct",
        level_filter=getattr(args, "level", None), calendar=args.calendar, cap_n_eff=args.cap_n_eff,
    )


def _write(table, meta, out, progress):
    from .output import write_table

    files = write_table(table, meta, out)
    for f in files:
        progress(f"wrote {f}")


def cmd_index(args, progress) -> int:
    from .index import compute_index

    opts = _options(args)
    period = _period(args.period, args.calendar)
    resp, vols, units = _load(args, progress)
    progress("computing index")
    res = compute_index(resp, vols, units, period=period, options=opts)
    table, meta = res.table, res.meta
    if args.shrink:
        shrinkage = _optional("shrinkage")
        progress("shrinking (Fay-Herriot)")
        table = shrinkage.shrink_index(table, group="level")
        meta["shrink"] = "Fay-Herriot, logit scale, per level; working SE; limited to each unit's interval; " \
                         "for ranking only"
    if args.rank:
        ranking = _optional("ranking")
        progress("ranking")
        table = ranking.rank_units(table, group="level", seed=args.seed, n_sim=args.n_sim,
                                   rank_among=args.rank_among)
        meta["ranking"] = {"seed": args.seed, "n_sim": args.n_sim, "group": "level", "rank_among": args.rank_among,
                           "rule_vi": ranking.ranking_note(args.rank_among, "vi"),
                           "rule_en": ranking.ranking_note(args.rank_among, "en")}
    _write(table, meta, args.out, progress)
    return 0


def cmd_adequacy(args, progress) -> int:
    import numpy as np
    import pandas as pd

    from . import adequacy as adq
    from .hierarchy import tree_as_of
    from .schema import METHOD_VERSION
    from .weights import volumes_in_period

    period = _period(args.period, args.calendar)
    _, vols, units = _load(args, progress, need_responses=False)
    vol = volumes_in_period(vols, period)
    per_unit = vol.groupby("unit_code", sort=True).agg(N=("N", "sum"), prorated=("prorated", "any"))
    tree = tree_as_of(units, period.last if period else None,
                      extra_codes=per_unit.index if units is None else ())
    ids = tree.ids(per_unit.index.to_numpy(object))
    kinds = tree.nodes["kind"].to_numpy(object)[ids]
    N = per_unit["N"].to_numpy(float)
    req = adq.required_n(N, kinds, args.adequacy, e=args.margin, quotas=_options(args).quotas)
    status = np.where(N < args.min_transactions, "not_eligible", "")
    vol = vol.merge(per_unit["N"].rename("N_unit"), left_on="unit_code", right_index=True)
    vol = vol.merge(pd.Series(req, index=per_unit.index, name="req"), left_on="unit_code", right_index=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        vol["alloc"] = np.ceil(vol["req"] * np.where(vol["N_unit"] > 0, vol["N"] / vol["N_unit"], 0) - 1e-9)
    alloc = (vol["stratum"] + ":" + vol["alloc"].astype(int).astype(str)).groupby(vol["unit_code"]).agg(";".join)
    table = pd.DataFrame({
        "unit_code": per_unit.index, "kind": kinds, "period": period.label if period else "", "N": N,
        "required_n": req, "rule": args.adequacy,
        "sampling_fraction": np.where(N > 0, req / np.where(N > 0, N, 1), np.nan),
        "allocation": alloc.reindex(per_unit.index).to_numpy(), "status": status,
        "prorated_volume": per_unit["prorated"].to_numpy(), "method": METHOD_VERSION,
    })
    meta = {"method_version": METHOD_VERSION, "command": "adequacy",
            "parameters": {"rule": args.adequacy, "margin": args.margin, "min_transactions": args.min_transactions,
                           "quotas": _options(args).quotas, "period": period.label if period else None},
            "note": "allocation = ceil(required_n x N_stratum / N_unit), proportional to volume"}
    _write(table, meta, args.out, progress)
    return 0


def cmd_drivers(args, progress) -> int:
    drv = _optional("drivers")
    from .index import weighted_responses

    opts = _options(args)
    resp, vols, units = _load(args, progress)
    frame, meta = weighted_responses(resp, vols, units, period=_period(args.period, args.calendar), options=opts)
    progress("fitting drivers")
    table = drv.drivers(frame, weight="weight", count="count", group=args.group, strata="cell", fpc="cell_N")
    meta["command"] = "drivers"
    _write(table, meta, args.out, progress)
    return 0


def cmd_trend(args, progress) -> int:
    tr = _optional("trend")
    from .index import compute_pair
    from .periods import previous_period

    opts = _options(args)
    period = _period(args.period, args.calendar)
    if period is None:
        raise InputError("trend needs --period")
    resp, vols, units = _load(args, progress)
    prev = _period(args.previous, args.calendar) if args.previous else previous_period(period)
    cur, old = compute_pair(resp, vols, units, period=period, previous=prev, options=opts)
    table = tr.trend(cur.table, old.table, key=["unit_code", "level"])
    meta = {"method_version": cur.meta["method_version"], "command": "trend",
            "current": cur.meta, "previous": old.meta}
    _write(table, meta, args.out, progress)
    return 0


def _common(p, responses=True):
    if responses:
        p.add_argument("--responses", required=True, help="response CSV (DESIGN format)")
    p.add_argument("--volumes", help="volume CSV")
    p.add_argument("--units", help="unit CSV (effective-dated tree)")
    p.add_argument("--period", help="2025, 2025-Q1, 2025-H1, cal:2025, 2025-03, 2025-01-01..2025-03-31")
    p.add_argument("--calendar", action="store_true", help="read YYYY / YYYY-Qn / YYYY-Hn as calendar periods")
    p.add_argument("--ci", choices=CI_METHODS, default=CI_METHODS[0])
    p.add_argument("--weights-from", choices=WEIGHT_SOURCES, default=WEIGHT_SOURCES[0])
    p.add_argument("--adequacy", choices=ADEQUACY_RULES, default=ADEQUACY_RULES[0])
    p.add_argument("--quota", help="quota per unit kind, e.g. commune=150,ward=200,district=500")
    p.add_argument("--margin", type=float, default=0.05, help="margin e of Yamane/Cochran (default 0.05)")
    p.add_argument("--min-transactions", type=float, default=30)
    p.add_argument("--target", help="0.9, or per kind/year: commune=0.9,2025:district=0.95,*=0.9")
    p.add_argument("--as-of", help="date of the unit tree (default: the period's last day)")
    p.add_argument("--rollup", choices=ROLLUPS, default=ROLLUPS[0])
    p.add_argument("--map-successors", action="store_true", help="map retired units to their successors")
    p.add_argument("--criteria", action="store_true", help="element index from criteria items (<element>_cK)")
    p.add_argument("--cap-n-eff", action=argparse.BooleanOptionalAction, default=True,
                   help="cap the design effective size of wilson/beta at n_kish/(1-f) (method version 2, the "
                        "default); --no-cap-n-eff gives the R-exact svyciprop intervals (logit is never capped)")
    p.add_argument("--out", default="-", help="out.csv | out.xlsx | out.json | - (CSV on stdout)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m analysis", description="SIPAS satisfaction analysis")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("index", help="indices, intervals, adequacy, targets, roll-up")
    _common(p)
    p.add_argument("--level", choices=[UNIT_LEVEL, "parent", ROOT_LEVEL])
    p.add_argument("--shrink", action="store_true", help="add the Fay-Herriot shrunk index (ranking only)")
    p.add_argument("--rank", action="store_true", help="add ranks with 95%% rank intervals")
    p.add_argument("--seed", type=int, default=20251215)
    p.add_argument("--n-sim", type=int, default=2000)
    p.add_argument("--rank-among", choices=["adequate", "all"], default="adequate",
                   help="with --rank: rank only units with an adequate sample (default) or all units")
    p.set_defaults(func=cmd_index)
    p = sub.add_parser("adequacy", help="required sample sizes from volumes (fieldwork planning)")
    _common(p, responses=False)
    p.set_defaults(func=cmd_adequacy)
    p.set_defaults(volumes_required=True)
    p = sub.add_parser("drivers", help="key-driver analysis (logistic regression)")
    _common(p)
    p.add_argument("--group", default=None, help="column to fit per group, e.g. parent_code")
    p.set_defaults(func=cmd_drivers)
    p = sub.add_parser("trend", help="change against the previous period")
    _common(p)
    p.add_argument("--previous", help="previous period (default: the one before --period)")
    p.set_defaults(func=cmd_trend)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "adequacy" and (not args.volumes or not args.period):
        parser.error("adequacy needs --volumes and --period")
    progress = _Progress()
    try:
        return args.func(args, progress)
    except InputError as exc:
        for p in exc.problems[:MAX_SHOWN]:
            print(f"error: {p}", file=sys.stderr)
        if len(exc.problems) > MAX_SHOWN:
            print(f"error: ... and {len(exc.problems) - MAX_SHOWN} more problem(s)", file=sys.stderr)
        return EXIT_INPUT
    except _NotAvailable as exc:
        print(f"{exc}: not available yet", file=sys.stderr)
        return EXIT_INPUT
    except (ValueError, OSError) as exc:
        if os.environ.get("ANALYSIS_DEBUG"):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
