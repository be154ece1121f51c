"""`flask exclusions list|decide`: the four-eyes exclusion requests from a
terminal, with the same rules as the staff pages (`services.exclusions`):
the command acts as a named staff account (`--as`), which must be an active
analyst or administrator outside the rated unit and not the requester."""
from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from ..extensions import db
from ..models import User
from .common import fail

exclusions_cli = AppGroup("exclusions", help="Exclusion requests waiting for a decision (four eyes).")


def _user_or_fail(username: str) -> User:
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        fail(f"Không tìm thấy tài khoản đang hoạt động {username!r}.")
    return user


@exclusions_cli.command("list")
@click.option("--as", "username", required=True, help="The analyst or administrator account acting.")
def exclusions_list(username):
    """List the pending requests in the account's scope (tab-separated)."""
    from ..services import exclusions

    user = _user_or_fail(username)
    if not exclusions.may_decide(user):
        fail("Chỉ chuyên viên phân tích hoặc quản trị viên mới xem được danh sách này.")
    for req in exclusions.pending_for(user):
        why = exclusions.why_not_decide(user, req)
        click.echo("\t".join([str(req.id), req.action, req.response.unit.code, str(req.response_id),
                              req.response.flags or "-", req.requested_by.username, req.reason,
                              "có thể quyết định" if why is None else str(exclusions.Refused(403, why))]))


@exclusions_cli.command("decide")
@click.argument("request_id", type=int)
@click.option("--as", "username", required=True, help="The analyst or administrator account deciding.")
@click.option("--approve/--reject", "approve", required=True, help="Approve or reject the request.")
@click.option("--note", default="", help="A note kept with the decision.")
def exclusions_decide(request_id, username, approve, note):
    """Approve or reject one pending request (audited)."""
    from ..services import exclusions

    user = _user_or_fail(username)
    try:
        req = exclusions.decide(user, exclusions.get_request(request_id), approve, note)
    except exclusions.Refused as refused:
        db.session.rollback()
        fail(str(refused))
    click.echo(f"Đề nghị {req.id}: {'đã duyệt' if req.status == 'approved' else 'đã từ chối'}.")
