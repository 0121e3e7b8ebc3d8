"""Quarantined mail, for admins: what is held and why, and putting it back in line.

Replay only marks a mail pending again; the intake worker (which drains pending mail every
second) processes it, so the portal never parses mail itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.models import RawMail


@dataclass(frozen=True)
class HeldMail:
    id: int
    door: str
    envelope_from: str
    received_at: datetime
    attempts: int
    error: str
    size: int


def quarantined(session: Session, limit: int = 200) -> list[HeldMail]:
    """The quarantined mails, newest first, without their bytes (only their size)."""
    rows = session.execute(
        select(RawMail.id, RawMail.door, RawMail.envelope_from, RawMail.received_at, RawMail.attempts,
               RawMail.last_error, func.length(RawMail.raw))
        .where(RawMail.state == "quarantined").order_by(RawMail.id.desc()).limit(limit)).all()
    return [HeldMail(*row) for row in rows]


def requeue(session: Session, ids: list[int] | None = None) -> int:
    """Put quarantined mails (all when ids is None) back in the spool as pending, attempts from zero."""
    stmt = update(RawMail).where(RawMail.state == "quarantined")
    if ids is not None:
        stmt = stmt.where(RawMail.id.in_(ids))
    return session.execute(stmt.values(state="pending", attempts=0, processed_at=None)).rowcount or 0
