"""`flask periods close | reopen | status | verify | diff | publish`."""
from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from tests.factories import seed_publishing


@pytest.fixture
def cli(sapp):
    data = seed_publishing(sapp)
    return sapp.test_cli_runner(), sapp, data


def test_close_status_verify_reopen_diff_publish(cli, backend):
    runner, app, data = cli
    r = runner.invoke(args=["periods", "close", "--period", "2025", "--unit", "P"])
    assert r.exit_code == 0, r.output
    assert "phiên bản 1" in r.output and "sipas-index/" in r.output
    r = runner.invoke(args=["periods", "close", "--period", "2025", "--unit", "P"])
    assert r.exit_code == 1 and "2025" in r.output  # already closed: a message, no traceback
    assert "Traceback" not in r.output
    r = runner.invoke(args=["periods", "verify", "--period", "2025", "--unit", "P"])
    assert r.exit_code == 0 and "Khớp hoàn toàn" in r.output, r.output
    r = runner.invoke(args=["periods", "status"])
    assert r.exit_code == 0 and "2025\tP\tv1\tđã khoá" in r.output and "nháp 4" in r.output, r.output

    # The approval chain, then publish: only the accepted unit goes out.
    with app.app_context():
        from survey_app.extensions import db
        from survey_app.models import User
        from survey_app.services import publishing

        users = {u.username: u for u in db.session.scalars(sa.select(User))}
        a = publishing.approval_for(publishing.get_version("2025", "P"), "P-A")
        publishing.submit(a, users["leader_a"], "Đơn vị đã rút ngắn thời gian chờ.")
        publishing.accept(a, users["analyst_p"])
    r = runner.invoke(args=["periods", "publish", "--period", "2025", "--unit", "P"])
    assert r.exit_code == 0 and "Đã công bố 1 đơn vị" in r.output and "P-A" in r.output, r.output
    assert "P-B (nháp)" in r.output

    r = runner.invoke(args=["periods", "reopen", "--period", "2025", "--unit", "P"])
    assert r.exit_code == 2  # --reason is required
    r = runner.invoke(args=["periods", "reopen", "--period", "2025", "--unit", "P", "--reason", "Phiếu trùng"])
    assert r.exit_code == 0 and "phiên bản 2" in r.output, r.output
    with app.app_context():
        from survey_app.extensions import db
        from survey_app.models import Response

        db.session.execute(sa.update(Response).where(Response.id == uuid.UUID(data["response"]))
                           .values(excluded=True))
        db.session.commit()
    assert runner.invoke(args=["periods", "close", "--period", "2025", "--unit", "P"]).exit_code == 0
    r = runner.invoke(args=["periods", "diff", "--period", "2025", "--unit", "P", "--from", "1", "--to", "2"])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].startswith("unit_code,level,name_vi,change")
    pa = next(x for x in lines if x.startswith("P-A,unit"))
    assert ",changed," in pa and "n 120 → 119" in pa and "Phiếu trùng" in pa
    assert any(x.startswith("P-B,unit") and ",same," in x for x in lines)
    r = runner.invoke(args=["periods", "verify", "--period", "2025", "--unit", "P", "--version", "1"])
    assert r.exit_code == 1 and "KHÔNG khớp" in r.output  # version 1 was made from other data
    r = runner.invoke(args=["periods", "verify", "--period", "2025", "--unit", "P", "--version", "2"])
    assert r.exit_code == 0, r.output

    with app.app_context():
        from survey_app.extensions import db
        from survey_app.models import AuditLog

        actions = [a for a in db.session.scalars(sa.select(AuditLog.action).where(AuditLog.actor == "cli"))]
    assert {"period_close", "period_verify", "period_reopen", "approval_publish"} <= set(actions)


def test_clear_messages_for_bad_input(cli):
    runner, app, data = cli
    r = runner.invoke(args=["periods", "close", "--period", "2025-13"])
    assert r.exit_code == 2 and "2025-13" in r.output
    r = runner.invoke(args=["periods", "close", "--period", "2025", "--unit", "NOPE"])
    assert r.exit_code == 1 and "NOPE" in r.output
    r = runner.invoke(args=["periods", "verify", "--period", "2025", "--unit", "P"])
    assert r.exit_code == 1 and "2025" in r.output and "Traceback" not in r.output
    r = runner.invoke(args=["periods", "status"])
    assert r.exit_code == 0 and "Chưa có kỳ nào" in r.output
