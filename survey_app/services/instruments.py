"""Questionnaire definitions as data: one JSON file per instrument version
(`survey_app/questionnaires/*.json`).

`load_definitions()` reads them; `sync_instruments(session)` stores each
(key, version) once.  Loading the same version twice changes nothing; a
definition whose content changed but kept its version number is refused
(it must get a new version, old responses keep theirs).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from flask import current_app

from analysis.schema import LIKERT_VALUES

from ..extensions import db

HERE = Path(__file__).resolve().parent.parent / "questionnaires"


class InstrumentVersionError(ValueError):
    pass


def checksum(definition: dict) -> str:
    canonical = json.dumps(definition, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def load_definitions(directory: Path = HERE) -> list[dict]:
    defs = []
    for path in sorted(directory.glob("*.json")):
        with path.open(encoding="utf-8") as fh:
            d = json.load(fh)
        for field in ("key", "version", "title", "items"):
            if field not in d:
                raise InstrumentVersionError(f"{path.name}: missing '{field}'")
        keys = [it["key"] for it in d["items"]]
        if len(keys) != len(set(keys)):
            raise InstrumentVersionError(f"{path.name}: duplicate item keys")
        defs.append(d)
    return defs


def item_specs(inst) -> dict[str, dict]:
    """Answer columns of an instrument: likert5 / yesno items and each option of
    a multi-select item as `<key>_<option>` (0/1)."""
    specs = {}
    for it in inst.definition["items"]:
        if it["kind"] == "likert5":
            specs[it["key"]] = {"values": LIKERT_VALUES}
        elif it["kind"] == "yesno":
            specs[it["key"]] = {"values": (0, 1)}
        elif it["kind"] == "multi":
            for opt in it.get("options", []):
                specs[f"{it['key']}_{opt['value']}"] = {"values": (0, 1)}
    return specs


def sync_instruments(session, definitions: list[dict] | None = None) -> list[tuple[str, int, str]]:
    """Store new instrument versions.  Returns [(key, version, status)] with
    status 'created' or 'unchanged'.  Raises InstrumentVersionError when a
    stored version's definition differs from the file."""
    from sqlalchemy import select

    from ..models import Instrument

    out = []
    for d in definitions if definitions is not None else load_definitions():
        digest = checksum(d)
        existing = session.scalar(
            select(Instrument).where(Instrument.key == d["key"], Instrument.version == d["version"])
        )
        if existing is not None:
            if existing.checksum != digest:
                raise InstrumentVersionError(
                    f"instrument {d['key']} version {d['version']} changed on disk but kept its "
                    f"version number; give the changed definition a new version"
                )
            out.append((d["key"], d["version"], "unchanged"))
            continue
        inst = Instrument(
            key=d["key"], version=d["version"], title_vi=d["title"]["vi"],
            title_en=d["title"].get("en", ""), element_index=d.get("element_index", "direct"),
            checksum=digest, definition=d,
        )
        session.add(inst)
        out.append((d["key"], d["version"], "created"))
    session.flush()
    return out


def latest(session, key: str):
    from sqlalchemy import select

    from ..models import Instrument

    return session.scalar(
        select(Instrument).where(Instrument.key == key).order_by(Instrument.version.desc()).limit(1)
    )


@dataclass(frozen=True)
class InstrumentRef:
    """What a form needs of an instrument version (immutable: a changed
    definition is a new version)."""

    id: int
    key: str
    version: int
    definition: dict


_instrument_cache: dict[tuple[str, str], tuple[float, InstrumentRef]] = {}


def latest_instrument(key: str) -> Optional[InstrumentRef]:
    """The latest version of instrument `key`, cached per process for
    COLLECT_INSTRUMENT_CACHE_SECONDS (default 60; 0 when testing): loading a
    new version is picked up within that time, and versions never change."""
    import time

    ttl = float(current_app.config["COLLECT_INSTRUMENT_CACHE_SECONDS"])
    cache_key = (current_app.config["SQLALCHEMY_DATABASE_URI"], key)
    hit = _instrument_cache.get(cache_key)
    now = time.monotonic()
    if ttl > 0 and hit is not None and hit[0] > now:
        return hit[1]
    inst = latest(db.session, key)
    if inst is None:
        return None
    ref = InstrumentRef(inst.id, inst.key, inst.version, inst.definition)
    if ttl > 0:
        _instrument_cache[cache_key] = (now + ttl, ref)
    return ref
