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


UNVERIFIED = "held for approval: "  # last_error of a mail kept for an agent ([intake] hold_unverified)


def held_for_approval(session: Session, limit: int = 200) -> list[HeldMail]:
    """Mails that claim a ticket but whose sender could not be verified, newest first."""
    return [m for m in quarantined(session, limit) if m.error.startswith(UNVERIFIED)]


def approve(session: Session, raw_id: int, agent_id: int) -> bool:
    """An agent vouches for a held mail's sender: it is processed again as trusted."""
    stmt = (update(RawMail).where(RawMail.id == raw_id, RawMail.state == "quarantined",
                                  RawMail.last_error.startswith(UNVERIFIED))
            .values(state="pending", attempts=0, processed_at=None, approved_by=agent_id))
    return bool(session.execute(stmt).rowcount)


def reject(session: Session, raw_id: int) -> bool:
    """An agent declines a held mail: it stays quarantined (bytes kept) and leaves the approval list."""
    stmt = (update(RawMail).where(RawMail.id == raw_id, RawMail.state == "quarantined",
                                  RawMail.last_error.startswith(UNVERIFIED))
            .values(last_error=func.replace(RawMail.last_error, UNVERIFIED, "declined by an agent: ")))
    return bool(session.execute(stmt).rowcount)


@dataclass(frozen=True)
class ReplayReport:
    """What became of replayed mails, read from the spool after the worker had its turn."""
    processed: list[int]
    failed: list[int]      # failed again: back in quarantine
    waiting: list[int]     # still pending (waiting for the mail they answer, or not reached yet)

    @property
    def summary(self) -> str:
        return (f"replayed {len(self.processed) + len(self.failed) + len(self.waiting)}: "
                f"{len(self.processed)} processed, {len(self.failed)} failed again (back in quarantine)"
                + (f", {len(self.waiting)} still pending" if self.waiting else ""))


def quarantined_ids(session: Session, ids: list[int] | None = None) -> list[int]:
    """Ids of quarantined mails (all, or those of `ids` that are quarantined)."""
    stmt = select(RawMail.id).where(RawMail.state == "quarantined")
    if ids is not None:
        stmt = stmt.where(RawMail.id.in_(ids))
    return list(session.scalars(stmt.order_by(RawMail.id)))


def settle_replay(session: Session, ids: list[int]) -> ReplayReport:
    """After a replay's drain: a mail that failed again goes back to quarantine with its new error
    (an admin's replay is one more try, not three); report what happened to each."""
    rows = session.execute(select(RawMail.id, RawMail.state, RawMail.attempts, RawMail.last_error)
                           .where(RawMail.id.in_(ids))).all() if ids else []
    processed = [r.id for r in rows if r.state == "done"]
    failed = [r.id for r in rows if r.state == "quarantined"
              or (r.state == "pending" and r.attempts > 0 and not r.last_error.startswith("waiting"))]
    again = [r.id for r in rows if r.state == "pending" and r.id in failed]
    if again:
        session.execute(update(RawMail).where(RawMail.id.in_(again), RawMail.state == "pending")
                        .values(state="quarantined").execution_options(synchronize_session=False))
    waiting = [r.id for r in rows if r.id not in processed and r.id not in failed]
    return ReplayReport(processed, failed, waiting)
