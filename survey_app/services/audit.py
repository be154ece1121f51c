"""The audit log: who changed what, when.  One place writes it."""
from typing import Any, Optional

from ..extensions import db
from ..models import AuditLog


def record(*, actor: str, action: str, target_type: Optional[str] = None,
           target_id: Optional[Any] = None, details: Optional[dict] = None,
           user_id: Optional[int] = None) -> AuditLog:
    """Add an audit entry to the current transaction (committed with the change)."""
    entry = AuditLog(actor=actor, action=action, target_type=target_type,
                     target_id=None if target_id is None else str(target_id),
                     details=details, user_id=user_id)
    db.session.add(entry)
    return entry
