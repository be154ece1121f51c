import copy

import pytest
from sqlalchemy import func, select

from analysis.schema import ELEMENTS as SCHEMA_ELEMENTS
from survey_app.extensions import db
from survey_app.models import Instrument
from survey_app.services.instruments import InstrumentVersionError, load_definitions, sync_instruments

ELEMENTS = set(SCHEMA_ELEMENTS)


def test_shipped_instruments_cover_the_methodology():
    defs = {d["key"]: d for d in load_definitions()}
    quick = defs["counter-quick"]
    likert = [it["key"] for it in quick["items"] if it["kind"] == "likert5"]
    assert likert == ["overall", "access", "procedure", "staff", "result", "feedback"]
    for it in quick["items"]:
        assert it["text"]["vi"] and it["text"]["en"]
    full = defs["sipas-services"]
    criteria = [it for it in full["items"] if it["kind"] == "yesno"]
    assert len(criteria) == 22  # the 2017 scheme's 22 criteria
    assert {it["element"] for it in criteria} == ELEMENTS
    multi = [it for it in full["items"] if it["kind"] == "multi"]
    assert len(multi) == 1 and len(multi[0]["options"]) == 8


def test_loading_twice_changes_nothing(ctx):
    # the app fixture already loaded them once
    n_inst = db.session.scalar(select(func.count()).select_from(Instrument))
    assert n_inst == len(load_definitions())
    result = sync_instruments(db.session)
    db.session.commit()
    assert {status for _, _, status in result} == {"unchanged"}
    assert db.session.scalar(select(func.count()).select_from(Instrument)) == n_inst


def test_changed_definition_needs_new_version(ctx):
    shipped = sorted(x["version"] for x in load_definitions() if x["key"] == "counter-quick")
    d = copy.deepcopy(max((x for x in load_definitions() if x["key"] == "counter-quick"), key=lambda x: x["version"]))
    d["items"][0]["text"]["vi"] = "Câu hỏi đã sửa"
    with pytest.raises(InstrumentVersionError, match="new version"):
        sync_instruments(db.session, [d])
    db.session.rollback()
    d["version"] = shipped[-1] + 1
    assert sync_instruments(db.session, [d]) == [("counter-quick", d["version"], "created")]
    db.session.commit()
    versions = db.session.scalars(select(Instrument.version).where(Instrument.key == "counter-quick")).all()
    assert sorted(versions) == shipped + [d["version"]]


def test_counter_quick_v2_keeps_v1_items_and_splits_the_steps():
    """Version 2 (issue 13): same item keys as version 1 (old responses keep theirs),
    the six ratings on the rating step, the rest optional details; procedure
    fields without one inside another (no "Tư pháp" beside "Hộ tịch")."""
    quick = {x["version"]: x for x in load_definitions() if x["key"] == "counter-quick"}
    assert set(quick) == {1, 2}
    keys = [[it["key"] for it in quick[v]["items"]] for v in (1, 2)]
    assert keys[0] == keys[1]
    v2 = quick[2]["items"]
    assert [it["key"] for it in v2 if it.get("step", "rating") == "rating"] == list(keys[1][:6])
    assert all(not it.get("required") for it in v2)
    fields = next(it for it in v2 if it["key"] == "stratum")["options"]
    labels = [o["vi"] for o in fields]
    assert "Tư pháp" not in labels and not any(o["value"] == "tu_phap" for o in fields)
    assert any("hộ tịch" in label for label in labels)
    for it in v2[:6]:
        assert len(it["text"]["vi"]) <= 45 and not it["text"]["vi"].startswith("Ông/Bà hài lòng thế nào")


def test_instruments_load_command(runner):
    out = runner.invoke(args=["instruments", "load"])
    assert out.exit_code == 0
    assert "counter-quick@1" in out.output and "không đổi" in out.output
