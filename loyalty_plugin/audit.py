"""The audit log's one writer: who changed the program by hand, and with what."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from .models import AuditLog


def record(session: Session, *, actor: str, action: str, target: str, now: datetime, details: Any = None) -> None:
    session.add(
        AuditLog(
            actor=actor,
            action=action,
            target=target,
            details=None if details is None else json.dumps(details, default=str),
            created_at=now,
        )
    )
