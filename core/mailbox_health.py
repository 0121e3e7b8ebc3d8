"""The health of the mail doors as the admin sees it: each IMAP mailbox's last poll, last success
and last error (written by the poller, whichever process runs it), and the SMTP door's last mail."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.config import ImapMailbox, Settings
from core.db import insert_or_ignore
from core.models import MailboxHealth, RawMail, aware, utcnow

log = logging.getLogger(__name__)
MAX_ERROR = 2000


def record_poll(sessions: sessionmaker[Session], mailbox: str, error: str | None) -> None:
    """Note one poll's outcome (never raises: a health note must not break polling)."""
    now = utcnow()
    try:
        with sessions() as session, session.begin():
            insert_or_ignore(session, MailboxHealth, ("mailbox",), {"mailbox": mailbox, "last_error": "", "failures": 0})
            row = session.get(MailboxHealth, mailbox)
            row.last_poll_at = now
            if error is None:
                row.last_ok_at, row.failures = now, 0
            else:
                row.last_error_at, row.last_error, row.failures = now, error[:MAX_ERROR], row.failures + 1
    except Exception:  # the database is down: the poll's own error says so already
        log.warning("could not record the health of %s", mailbox, exc_info=True)


@dataclass(frozen=True)
class MailboxStatus:
    section: str
    key: str
    poll_seconds: int
    state: str                          # ok | failing | late | not polled yet
    last_poll_at: datetime | None
    last_ok_at: datetime | None
    last_error_at: datetime | None
    last_error: str
    failures: int


def mailbox_statuses(session: Session, settings: Settings, now: datetime | None = None) -> list[MailboxStatus]:
    """Every configured mailbox with its health; 'late' when no poll came for three intervals."""
    now = now or utcnow()
    rows = {r.mailbox: r for r in session.scalars(select(MailboxHealth))}
    return [_status(box, rows.get(box.key), now) for box in settings.imap.enabled_mailboxes]


def _status(box: ImapMailbox, row: MailboxHealth | None, now: datetime) -> MailboxStatus:
    if row is None or row.last_poll_at is None:
        return MailboxStatus(box.section, box.key, box.poll_seconds, "not polled yet", None, None, None, "", 0)
    polled = aware(row.last_poll_at)
    if row.failures:
        state = "failing"
    elif now - polled > timedelta(seconds=3 * box.poll_seconds + 30):
        state = "late"
    else:
        state = "ok"
    return MailboxStatus(box.section, box.key, box.poll_seconds, state, polled,
                         aware(row.last_ok_at) if row.last_ok_at else None,
                         aware(row.last_error_at) if row.last_error_at else None, row.last_error, row.failures)


def last_mail_at(session: Session, door: str) -> datetime | None:
    """When the newest mail came in through this door (the spool's newest row of it)."""
    found = session.scalar(select(RawMail.received_at).where(RawMail.door == door).order_by(RawMail.id.desc()).limit(1))
    return aware(found) if found else None
