"""A realistic, deterministic demo province.

Tỉnh An Hòa (fictional): a provincial public-service centre with department
desks, three districts that end on 2025-07-01 (the 2025 restructuring) with
their communes merged two by two into new communes (successors recorded),
counters at every one-stop unit, quarterly transaction volumes per procedure
field, and two report years of synthetic responses (15/12/2024 – 15/11/2026)
whose satisfaction differs by unit and element (roughly 75–99 %).  Some units
are too small for an adequate sample; a few exact duplicates and one burst
from a single device are planted for the quality checks to flag.

Everything is drawn from one numpy Generator: the same seed gives the same
province, the same responses, the same UUIDs.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select

from analysis.schema import ALL_STRATUM, ELEMENTS

from ..extensions import db
from ..models import (
    Counter,
    ReportingCalendar,
    Target,
    Unit,
    User,
    Volume,
)
from .instruments import latest, sync_instruments
from .responses import bulk_insert, insert_responses

LOCAL = dt.timezone(dt.timedelta(hours=7))
RESTRUCTURE = dt.date(2025, 7, 1)
START = dt.date(2024, 12, 15)
END = dt.date(2026, 11, 15)  # fixed, so the seed alone decides the data
STRATA = ("ho_tich", "dat_dai", "kinh_doanh", ALL_STRATUM)
COMMENTS = [
    "Cán bộ hướng dẫn tận tình, cảm ơn.",
    "Phải chờ lâu, nên bố trí thêm ghế ngồi.",
    "Thủ tục còn rườm rà, cần đơn giản hơn.",
    "Rất hài lòng.",
    "Máy lấy số thứ tự hay bị hỏng.",
    "Cần niêm yết phí rõ ràng hơn.",
    "Nhân viên nhiệt tình, trả kết quả đúng hẹn.",
    "Wifi yếu, khó nộp hồ sơ trực tuyến.",
]
DISTRICT_NAMES = ["Huyện Đông Sơn", "Huyện Tây Hòa", "Huyện Bắc Bình"]
OLD_COMMUNES = ["An", "Bình", "Cát", "Diên", "Đức", "Gia", "Hòa", "Khánh"]
NEW_COMMUNES = ["Xã Đông An", "Xã Đông Bình", "Xã Đông Hòa", "Xã Đông Phú",
                "Xã Tây An", "Xã Tây Bình", "Xã Tây Hòa", "Xã Tây Phú",
                "Xã Bắc An", "Xã Bắc Bình", "Xã Bắc Hòa", "Xã Bắc Phú"]
DEPARTMENTS = [("SOTP", "Sở Tư pháp", "Department of Justice"),
               ("SOXD", "Sở Xây dựng", "Department of Construction"),
               ("SONNMT", "Sở Nông nghiệp và Môi trường", "Department of Agriculture and Environment"),
               ("SOTC", "Sở Tài chính", "Department of Finance")]


@dataclass
class SeedResult:
    units: int
    counters: int
    responses: int
    seconds: float
    users: dict
    counter_code: str


def _q(year: int) -> list[tuple[dt.date, dt.date]]:
    """Report quarters of report year `year` (15/12–14/3, ...), inclusive days."""
    b = [dt.date(year - 1, 12, 15), dt.date(year, 3, 15), dt.date(year, 6, 15), dt.date(year, 9, 15),
         dt.date(year, 12, 15)]
    return [(b[i], b[i + 1] - dt.timedelta(days=1)) for i in range(4)]


def already_seeded() -> bool:
    return bool(db.session.scalar(select(func.count()).select_from(Unit)))


def seed(n_responses: int = 50_000, seed: int = 2025, password: str | None = None) -> SeedResult:
    """Create the demo province in the current database (which must be empty of units)."""
    t0 = time.perf_counter()
    if already_seeded():
        raise RuntimeError("cơ sở dữ liệu đã có đơn vị; demo chỉ nạp vào cơ sở dữ liệu trống")
    rng = np.random.default_rng(seed)
    sync_instruments(db.session)
    quick = latest(db.session, "counter-quick")
    db.session.add(ReportingCalendar(key="default"))

    # ---- unit tree
    def unit(code, vi, en, kind, parent=None, vf=None, vt=None):
        u = Unit(code=code, name_vi=vi, name_en=en, kind=kind, parent=parent, valid_from=vf, valid_to=vt)
        db.session.add(u)
        return u

    prov = unit("AH", "Tỉnh An Hòa", "An Hoa Province", "province")
    centre = unit("AH-TTPVHCC", "Trung tâm Phục vụ hành chính công tỉnh An Hòa",
                  "An Hoa Provincial Public Service Centre", "service_center", prov)
    depts = [unit(f"AH-{c}", vi, en, "department", centre) for c, vi, en in DEPARTMENTS]
    new_communes = [unit(f"AH-X{i + 1:02d}", name, name.replace("Xã", "Commune"), "commune", prov, vf=RESTRUCTURE)
                    for i, name in enumerate(NEW_COMMUNES)]
    districts, old_communes = [], []
    for d, dname in enumerate(DISTRICT_NAMES):
        dist = unit(f"AH-H{d + 1}", dname, dname.replace("Huyện", "District"), "district", prov, vt=RESTRUCTURE)
        districts.append(dist)
        for k, stem in enumerate(OLD_COMMUNES):
            c = unit(f"AH-H{d + 1}-X{k + 1}", f"Xã {stem} ({dname})", f"{stem} Commune ({dname})", "commune",
                     dist, vt=RESTRUCTURE)
            c.successor = new_communes[d * 4 + k // 2]
            old_communes.append(c)
        dist.successor = new_communes[d * 4]
    db.session.flush()

    # ---- counters: 1–3 per current one-stop unit, 1 per old commune, 2 per district
    counters: list[tuple[Counter, Unit]] = []

    def add_counters(u: Unit, k: int):
        for j in range(k):
            c = Counter(code=f"{u.code}-Q{j + 1}", unit=u, name_vi=f"Quầy số {j + 1}", name_en=f"Desk {j + 1}",
                        token_version=1, active=u.valid_to is None)
            db.session.add(c)
            counters.append((c, u))

    for u in depts:
        add_counters(u, int(rng.integers(1, 3)))
    for u in new_communes:
        add_counters(u, int(rng.integers(1, 4)))
    for u in old_communes:
        add_counters(u, 1)
    for u in districts:
        add_counters(u, 2)
    db.session.flush()

    # ---- volumes per report quarter and stratum, clipped to the unit's life
    service_units = depts + new_communes + old_communes + districts
    size = {u.code: float(rng.lognormal(np.log(900), 0.8)) for u in service_units}
    # Some deliberately small units (hard to reach an adequate sample).
    small = list(rng.choice(np.array(new_communes, dtype=object), 3, replace=False))
    for u in small:
        size[u.code] = float(rng.uniform(60, 150))
    # A stand-in one-stop system sends dossier events for these units (issue 12): their N comes from the
    # returned dossiers instead of typed rows (one source per unit and period).
    event_units = {u.code for u in small}
    dossier_plan: list[tuple[Unit, dt.date, dt.date, str, int]] = []
    stratum_share = np.array([0.35, 0.25, 0.15, 0.25])
    vol_rows = []
    quarters = _q(2025) + _q(2026)
    for u in service_units:
        for qs, qe in quarters:
            s = max(qs, u.valid_from or qs)
            e = min(qe, (u.valid_to - dt.timedelta(days=1)) if u.valid_to else qe)
            if e < s:
                continue
            days = (e - s).days + 1
            total = size[u.code] * days / 91.0 * float(rng.uniform(0.8, 1.2))
            for stratum, share in zip(STRATA, stratum_share):
                n = int(round(total * share * rng.uniform(0.7, 1.3))) + 1
                if u.code in event_units:
                    dossier_plan.append((u, s, e, stratum, n))
                    continue
                vol_rows.append(dict(unit_id=u.id, period_start=s, period_end=e, stratum=stratum,
                                     transactions=n))
    bulk_insert(Volume.__table__, vol_rows)

    # ---- satisfaction model: unit level + element offsets on the logit scale
    base = {u.code: rng.normal(2.3, 0.55) for u in service_units}
    elem_off = dict(zip(ELEMENTS, (0.2, -0.35, 0.45, 0.1, -0.5)))
    na_rate = dict(zip(ELEMENTS, (0.03, 0.05, 0.02, 0.06, 0.22)))

    # Response counts per counter proportional to volume × a propensity.
    weights = np.array([size[u.code] * (0.6 if u.valid_to else 1.0) * rng.uniform(0.3, 1.7) for c, u in counters])
    n_dup, n_burst = 6, 25
    n_main = max(n_responses - n_dup - n_burst, 0)
    alloc = rng.multinomial(n_main, weights / weights.sum())

    resp_rows, ans_rows = [], []
    item_keys = ("overall",) + ELEMENTS

    def draw_ts(u: Unit, k: int) -> list[dt.datetime]:
        lo = max(START, u.valid_from or START)
        hi = min(END, u.valid_to or END)
        span = (hi - lo).days
        days = rng.integers(0, span, k)
        secs = rng.integers(0, int(9.5 * 3600), k)
        base_dt = dt.datetime.combine(lo, dt.time(7, 30), LOCAL)
        return [(base_dt + dt.timedelta(days=int(d), seconds=int(s))).astimezone(dt.timezone.utc)
                for d, s in zip(days, secs)]

    dossiers, linked_by_unit = _plan_dossiers(rng, dossier_plan)

    channels = np.array(["qr", "kiosk", "paper"])
    ages = np.array(["", "18_29", "30_44", "45_59", "60_plus", "under_18"])
    genders = np.array(["", "female", "male"])
    for (c, u), k in zip(counters, alloc):
        if k == 0:
            continue
        k = int(k)
        ts = draw_ts(u, k)
        ch = rng.choice(channels, k, p=[0.75, 0.15, 0.10])
        strata = rng.choice(np.array(STRATA + ("khac",)), k, p=[0.33, 0.22, 0.15, 0.2, 0.1])
        logit = base[u.code] + rng.normal(0, 0.9, k)  # respondent mood
        sat = {}
        for e in ELEMENTS:
            p = 1 / (1 + np.exp(-(logit + elem_off[e])))
            s = rng.random(k) < p
            val = np.where(s, rng.choice([4, 5], k, p=[0.6, 0.4]), rng.choice([1, 2, 3], k, p=[0.15, 0.35, 0.5]))
            val = np.where(rng.random(k) < na_rate[e], 0, val)
            sat[e] = val
        mean_s = np.mean([(sat[e] >= 4) for e in ELEMENTS], axis=0)
        po = 1 / (1 + np.exp(-(4 * mean_s - 1.2 + rng.normal(0, 0.5, k))))
        sat["overall"] = np.where(rng.random(k) < po, rng.choice([4, 5], k, p=[0.55, 0.45]),
                                  rng.choice([2, 3], k, p=[0.4, 0.6]))
        age = rng.choice(ages, k, p=[0.45, 0.15, 0.17, 0.13, 0.09, 0.01])
        gen = rng.choice(genders, k, p=[0.4, 0.3, 0.3])
        has_comment = rng.random(k) < 0.06
        for i in range(k):
            rid = uuid.UUID(bytes=rng.bytes(16), version=4)
            comment = COMMENTS[int(rng.integers(len(COMMENTS)))] if has_comment[i] else None
            link = _take_link(linked_by_unit.get(u.code), ts[i])
            resp_rows.append(dict(
                id=rid, unit_id=u.id, counter_id=c.id, instrument_id=quick.id, channel=str(ch[i]),
                submitted_at=ts[i], received_at=ts[i],
                stratum=link[1] if link else (str(strata[i]) if strata[i] != "khac" else ALL_STRATUM),
                age_group=str(age[i]) or None, gender=str(gen[i]) or None, comment=comment, flags="",
                excluded=False, device_hash=None, dossier_hash=link[0] if link else None,
            ))
            for key in item_keys:
                v = int(sat[key][i])
                if v:
                    ans_rows.append({"response_id": rid, "item_key": key, "value": v})

    # ---- planted quality problems: exact duplicates and a burst from one device
    if resp_rows:
        answers_of: dict = {}
        for a in ans_rows:
            answers_of.setdefault(a["response_id"], []).append(a)
        for j in range(n_dup):
            src = resp_rows[int(rng.integers(len(resp_rows)))]
            rid = uuid.UUID(bytes=rng.bytes(16), version=4)
            ts = src["submitted_at"] + dt.timedelta(seconds=int(rng.integers(2, 20)))
            resp_rows.append(dict(src, id=rid, submitted_at=ts, received_at=ts, dossier_hash=None))
            ans_rows.extend(dict(a, response_id=rid) for a in answers_of.get(src["id"], []))
        c, u = counters[len(depts)]  # a counter of the first new commune
        t = dt.datetime(2026, 3, 10, 9, 0, tzinfo=LOCAL).astimezone(dt.timezone.utc)
        device = hashlib.sha256(f"demo-burst-device-{seed}".encode()).hexdigest()
        for j in range(n_burst):
            rid = uuid.UUID(bytes=rng.bytes(16), version=4)
            ts = t + dt.timedelta(seconds=5 * j)
            resp_rows.append(dict(id=rid, unit_id=u.id, counter_id=c.id, instrument_id=quick.id, channel="qr",
                                  submitted_at=ts, received_at=ts, stratum=ALL_STRATUM, age_group=None, gender=None,
                                  comment=None, flags="", excluded=False, device_hash=device, dossier_hash=None))
            ans_rows.extend({"response_id": rid, "item_key": key, "value": 5} for key in item_keys)

    insert_responses(resp_rows, ans_rows)

    # ---- targets and users
    for year in (2025, 2026):
        db.session.add(Target(year=year, unit_kind="commune", target=0.90))
        db.session.add(Target(year=year, unit_kind="department", target=0.95))
        db.session.add(Target(year=year, unit_kind=None, target=0.90))
    from .accounts import hash_password

    password = password or secrets.token_urlsafe(9)
    users = {
        "admin": ("admin", None),
        "phantich": ("analyst", prov),
        "lanhdao.dongan": ("unit_leader", new_communes[0]),
        "canbo.dongan": ("counter_staff", new_communes[0]),
    }
    for name, (role, scope) in users.items():
        db.session.add(User(username=name, password_hash=hash_password(password), role=role,
                            unit_id=scope.id if scope else None))
    db.session.commit()
    _send_dossier_events(prov, dossiers)
    first = next(c for c, u in counters if u is new_communes[0])
    return SeedResult(units=len(service_units) + 2, counters=len(counters), responses=len(resp_rows),
                      seconds=time.perf_counter() - t0,
                      users={name: password for name in users}, counter_code=first.code)


# ------------------------------------------------------------------ the stand-in one-stop system (issue 12)

DEMO_API_CLIENT = "demo-motcua"


def _plan_dossiers(rng, plan) -> tuple[list[dict], dict]:
    """The dossiers of the event units: per (unit, quarter, stratum) as many as
    its volume, received in the quarter and returned 1–12 days later (about
    one in twelve after the due date).  Returns (dossiers, {unit code: [(returned
    at, dossier hash, stratum), ...] of the dossiers whose rating link a
    citizen may use})."""
    from .submissions import dossier_hash

    dossiers, linked = [], {}
    for u, start, end, stratum, n in plan:
        span = (end - start).days + 1
        days = rng.integers(0, span, n)
        secs = rng.integers(0, int(9 * 3600), n)
        took = rng.integers(1, 13, n)
        late = rng.random(n) < 0.08
        for j in range(n):
            received = dt.datetime.combine(start + dt.timedelta(days=int(days[j])), dt.time(7, 30), LOCAL) + \
                dt.timedelta(seconds=int(secs[j]))
            returned = received + dt.timedelta(days=int(took[j]), hours=1)
            if returned.date() > END:
                continue
            code = f"000.00.{u.code[-3:]}.H{len(dossiers) + 1:06d}"
            d = dict(code=code, unit=u.code, stratum=stratum, received=received, returned=returned,
                     due=received + dt.timedelta(days=int(took[j]) + (-1 if late[j] else 2)),
                     complaint=bool(rng.random() < 0.02),
                     offered=bool(rng.random() < 0.7))
            dossiers.append(d)
            if d["offered"]:
                linked.setdefault(u.code, []).append((returned, dossier_hash(code), stratum))
    for links in linked.values():
        links.sort(key=lambda x: x[0])
    return dossiers, linked


def _take_link(links, submitted_at):
    """(dossier hash, stratum) of a returned, offered dossier not yet rated,
    returned within the 14 days before `submitted_at`; None when there is none."""
    if not links:
        return None
    for i, (returned, digest, stratum) in enumerate(links):
        if returned > submitted_at:
            return None
        if submitted_at - returned <= dt.timedelta(days=14):
            links.pop(i)
            return digest, stratum
    return None


def _portal_time(t: dt.datetime) -> str:
    return t.astimezone(LOCAL).strftime("%Y%m%d%H%M%S")


def _send_dossier_events(prov, dossiers: list[dict]) -> None:
    """The demo's one-stop system: an API client of the province sends every
    dossier's events in batches through `services.integration` (as the API
    does), then prints the rating links of the offered ones (offered)."""
    from . import integration

    if not dossiers:
        return
    client, _key = integration.create_client(DEMO_API_CLIENT, prov, ["events", "links"], actor="demo")
    events = []
    for d in dossiers:
        common = {"MaHoSo": d["code"], "MaDonVi": d["unit"], "MaTTHC": "1.00" + d["stratum"][:3],
                  "HinhThuc": "1", "NgayTiepNhan": _portal_time(d["received"]), "NgayHenTra": _portal_time(d["due"])}
        if d["stratum"] != ALL_STRATUM:
            common["MaLinhVuc"] = d["stratum"]
        events.append(dict(common, SuKien="tiep_nhan", TrangThaiHoSo="2"))
        events.append(dict(common, SuKien="tra_ket_qua", TrangThaiHoSo="10", NgayTra=_portal_time(d["returned"])))
        if d["complaint"]:
            events.append(dict(common, SuKien="phan_anh",
                               ThoiDiemXuLy=_portal_time(d["returned"] + dt.timedelta(days=2))))
    scope = integration.client_scope(client)
    for i in range(0, len(events), integration.MAX_BATCH):
        out = integration.ingest_events(client, events[i:i + integration.MAX_BATCH], scope=scope)
        if out["errors"]:
            raise RuntimeError(f"demo dossier events refused: {out['results']}")
    integration.mark_offered(d["code"] for d in dossiers if d["offered"])
