"""`flask exclusions list|decide`: the four-eyes rules from a terminal."""
from __future__ import annotations

import uuid

from sqlalchemy import select


def test_list_and_decide_follow_the_four_eyes_rules(sapp, world):
    from survey_app.extensions import db
    from survey_app.models import ExclusionRequest, Response, User
    from survey_app.services import exclusions

    runner = sapp.test_cli_runner()
    with sapp.app_context():
        leader = db.session.scalar(select(User).where(User.username == world["users"]["unit_leader"]))
        req = exclusions.request_change(leader, db.session.get(Response, uuid.UUID(world["flagged"])),
                                        "exclude", "phiếu trùng lặp")
        req_id = req.id
    res = runner.invoke(args=["exclusions", "list", "--as", world["users"]["analyst"]])
    assert res.exit_code == 0 and res.output.startswith(f"{req_id}\texclude\tP-A\t")
    assert "phiếu trùng lặp" in res.output and "có thể quyết định" in res.output
    res = runner.invoke(args=["exclusions", "list", "--as", world["users"]["unit_leader"]])
    assert res.exit_code == 1
    res = runner.invoke(args=["exclusions", "decide", str(req_id), "--as", world["users"]["unit_leader"], "--approve"])
    assert res.exit_code == 1 and "Chỉ chuyên viên phân tích" in res.output
    res = runner.invoke(args=["exclusions", "decide", "999999", "--as", world["users"]["analyst"], "--approve"])
    assert res.exit_code == 1 and "Không có đề nghị này" in res.output
    res = runner.invoke(args=["exclusions", "decide", str(req_id), "--as", world["users"]["analyst"], "--approve",
                              "--note", "đã kiểm tra"])
    assert res.exit_code == 0 and "đã duyệt" in res.output
    with sapp.app_context():
        assert db.session.get(ExclusionRequest, req_id).status == "approved"
        assert db.session.get(Response, uuid.UUID(world["flagged"])).excluded is True
    res = runner.invoke(args=["exclusions", "decide", str(req_id), "--as", world["users"]["admin"], "--reject"])
    assert res.exit_code == 1 and "đã được quyết định" in res.output
