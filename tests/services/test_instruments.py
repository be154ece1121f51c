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
    assert n_inst == 2
    result = sync_instruments(db.session)
    db.session.commit()
    assert {status for _, _, status in result} == {"unchanged"}
    assert db.session.scalar(select(func.count()).select_from(Instrument)) == n_inst


def test_changed_definition_needs_new_version(ctx):
    d = copy.deepcopy({x["key"]: x for x in load_definitions()}["counter-quick"])
    d["items"][0]["text"]["vi"] = "Câu hỏi đã sửa"
    with pytest.raises(InstrumentVersionError, match="new version"):
        sync_instruments(db.session, [d])
    db.session.rollback()
    d["version"] = 2
    assert sync_instruments(db.session, [d]) == [("counter-quick", 2, "created")]
    db.session.commit()
    versions = db.session.scalars(select(Instrument.version).where(Instrument.key == "counter-quick")).all()
    assert sorted(versions) == [1, 2]


def test_instruments_load_command(runner):
    out = runner.invoke(args=["instruments", "load"])
    assert out.exit_code == 0
    assert "counter-quick@1" in out.output and "không đổi" in out.output
