"""Drains the spool: claim → parse → core.tickets.receive_mail → done, one savepoint per mail.

A mail whose processing raises is retried on later passes; after `max_attempts` it is
quarantined with its error, never deleted, and the others keep flowing.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from core.config import Settings
from core.errors import SenderError
from core.mail.parse import parse_mail
from core.metrics import MAILS
from core.models import RawMail, utcnow
from core.tickets import Received, receive_mail
from ingest import spool

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    raw_id: int
    received: Received | None
    error: str = ""
    quarantined: bool = False


def process_row(session: Session, settings: Settings, row: RawMail) -> Outcome:
    """Process one claimed mail inside a savepoint; record failures on the row."""
    row.attempts += 1
    try:
        with session.begin_nested():
            received = receive_mail(session, settings, row, parse_mail(row.raw))
    except SenderError as exc:
        # The mail itself is at fault: no retry will help.
        log.info("raw_mail %s quarantined: %s", row.id, exc)
        return _quarantine(row, str(exc))
    except Exception as exc:  # ours: log, retry later, quarantine after max_attempts
        log.exception("raw_mail %s failed (attempt %s)", row.id, row.attempts)
        if row.attempts >= settings.intake.max_attempts:
            return _quarantine(row, f"{type(exc).__name__}: {exc}")
        row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        return Outcome(row.id, None, row.last_error)
    row.state = "done"
    row.processed_at = utcnow()
    row.last_error = ""
    return Outcome(row.id, received)


def _quarantine(row: RawMail, error: str) -> Outcome:
    MAILS.labels(row.door, "quarantined").inc()
    row.state = "quarantined"
    row.last_error = error[:2000]
    row.processed_at = utcnow()
    return Outcome(row.id, None, error, quarantined=True)


def drain(sessions: sessionmaker[Session], settings: Settings, batch: int = 50,
          max_batches: int | None = None) -> list[Outcome]:
    """Process pending mails in batches (one commit each) until none is left."""
    outcomes: list[Outcome] = []
    done_batches = 0
    while max_batches is None or done_batches < max_batches:
        with sessions() as session, session.begin():
            rows = spool.claim(session, batch)
            if not rows:
                break
            results = [process_row(session, settings, row) for row in rows]
        outcomes.extend(results)
        done_batches += 1
        if all(r.error and not r.quarantined for r in results):
            break  # every mail failed for a reason of ours: let the scheduler try later
    return outcomes


def process_one(sessions: sessionmaker[Session], settings: Settings, raw_id: int) -> Outcome:
    """Process one spooled mail now (the `ingest` pipe and replay use this)."""
    with sessions() as session, session.begin():
        row = session.get(RawMail, raw_id, with_for_update=session.get_bind().dialect.name == "postgresql")
        if row is None or row.state == "done":
            return Outcome(raw_id, None)
        return process_row(session, settings, row)
