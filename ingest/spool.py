"""The durable inbox: every door writes a mail's raw bytes here and commits before it acknowledges.

One row per distinct mail: the same Message-ID (or, without one, the same bytes) arriving
again through any door is recognised and not stored twice.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.db import dialect_insert, skip_locked
from core.mail.parse import content_hash, quick_message_id
from core.metrics import MAILS
from core.models import RawMail, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Spooled:
    id: int
    duplicate: bool


def dedupe_key(raw: bytes) -> str:
    """'mid:<Message-ID>' when the mail names itself, else 'sha256:<hash of the bytes>'."""
    try:
        msgid = quick_message_id(raw)
    except Exception:  # a header block too broken to read still gets a key
        msgid = ""
    return f"mid:{msgid}" if msgid else f"sha256:{content_hash(raw)}"


def put(sessions: sessionmaker[Session], raw: bytes, door: str, envelope_from: str = "",
        envelope_to: tuple[str, ...] = ()) -> Spooled:
    """Store the bytes durably (committed) and say whether this mail was already here."""
    key = dedupe_key(raw)
    with sessions() as session, session.begin():
        stmt = dialect_insert(session)(RawMail).values(
            dedupe_key=key, door=door, envelope_from=envelope_from[:998],
            envelope_to=",".join(envelope_to), raw=raw, state="pending", attempts=0, last_error="",
            received_at=utcnow(),
        ).on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(RawMail.id)
        new_id = session.scalar(stmt)
        if new_id is not None:
            MAILS.labels(door, "stored").inc()
            return Spooled(new_id, duplicate=False)
        existing = session.scalar(select(RawMail.id).where(RawMail.dedupe_key == key))
    log.info("duplicate mail %s from %s ignored (raw_mail %s)", key, door, existing)
    MAILS.labels(door, "duplicate").inc()
    return Spooled(existing, duplicate=True)


def claim(session: Session, limit: int) -> list[RawMail]:
    """Pending mails, oldest first, locked for this transaction (skipped by other workers on PostgreSQL)."""
    stmt = select(RawMail).where(RawMail.state == "pending").order_by(RawMail.id).limit(limit)
    return list(session.scalars(skip_locked(session, stmt)))


def pending_count(session: Session) -> int:
    from sqlalchemy import func

    return session.scalar(select(func.count()).select_from(RawMail).where(RawMail.state == "pending")) or 0


def put_quarantined(sessions: sessionmaker[Session], raw: bytes, door: str, error: str,
                    envelope_from: str = "") -> int:
    """Keep a mail we refuse to process (too big, empty) with its bytes and the reason, for replay."""
    with sessions() as session, session.begin():
        row = RawMail(dedupe_key=f"sha256:{content_hash(raw)}:{door}:{utcnow().timestamp()}", door=door,
                      envelope_from=envelope_from[:998], envelope_to="", raw=raw, state="quarantined",
                      attempts=0, last_error=error[:2000], received_at=utcnow(), processed_at=utcnow())
        session.add(row)
        session.flush()
        MAILS.labels(door, "quarantined").inc()
        return row.id
