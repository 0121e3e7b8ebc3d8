"""Readiness figures for /readyz and /metrics: database reachable, schema current, backlogs."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from core.db import at_head, staged_count
from core.models import Job, Outbox, RawMail


@dataclass(frozen=True)
class Readiness:
    database: bool
    migrations_at_head: bool
    quarantined: int
    dead_jobs: int
    outbox_backlog: int
    spool_backlog: int
    error: str = ""

    @property
    def ready(self) -> bool:
        return self.database and self.migrations_at_head

    def as_dict(self) -> dict:
        return {"ready": self.ready, **asdict(self)}


def _count(session: Session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def readiness(sessions: sessionmaker[Session]) -> Readiness:
    """Probe the database; never raises (a down database is an answer, not an error)."""
    try:
        with sessions() as session:
            session.execute(text("SELECT 1"))
            head = at_head(session.connection())
            return Readiness(
                database=True, migrations_at_head=head,
                quarantined=_count(session, RawMail, RawMail.state == "quarantined"),
                dead_jobs=_count(session, Job, Job.state == "dead"),
                outbox_backlog=_count(session, Outbox, Outbox.state == "pending"),
                spool_backlog=_count(session, RawMail, RawMail.state == "pending")
                + staged_count(session.get_bind().url.render_as_string(hide_password=False)))
    except Exception as exc:  # reported to the orchestrator, not raised
        return Readiness(False, False, 0, 0, 0, 0, error=f"{type(exc).__name__}: {exc}"[:300])
