"""Delivers the outbox: through the smarthost when one is configured, else as .eml files in a folder.

A temporary failure (4xx, connection trouble) is retried with backoff; a permanent one (5xx)
or too many attempts marks the row failed, visible to admins, and the recipient undeliverable.

No transaction is open while a mail travels (a slow smarthost would otherwise hold SQLite's
write lock, and with it all intake): a batch is claimed in one short transaction, each mail
sent outside any, and each outcome recorded in a short transaction of its own.
"""
from __future__ import annotations

import logging
import os
import smtplib
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.config import OutboundSettings, Settings
from core.db import skip_locked
from core.metrics import OUTBOUND
from core.models import Contact, Outbox, utcnow

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=5)  # the least a claim lasts; see lease_for()


class PermanentFailure(Exception):
    """5xx from the smarthost: retrying cannot help."""


class RecipientRefused(PermanentFailure):
    """The smarthost refused the address itself: stop mailing it until an admin clears it."""


@dataclass(frozen=True)
class OutgoingMail:
    """An outbox row claimed for one delivery attempt, read out of the claiming transaction."""
    id: int
    purpose: str
    ticket_id: int | None
    message_id: str
    mail_from: str
    rcpt_to: str
    raw: bytes
    created_at: datetime
    attempts: int  # including this one


def write_to_folder(folder: Path, row: OutgoingMail) -> None:
    """Write the mail as <id>.eml, fsynced, atomically (a reader never sees half a file)."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{row.created_at:%Y%m%dT%H%M%S}-{row.id:08d}.eml"
    tmp = folder / f".{final.name}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(row.raw)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, final)


def send_via_smarthost(cfg: OutboundSettings, row: OutgoingMail) -> None:
    try:
        with smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_seconds) as smtp:
            if cfg.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if cfg.username:
                smtp.login(cfg.username, cfg.password)
            smtp.sendmail(row.mail_from, [row.rcpt_to], row.raw)
    except smtplib.SMTPRecipientsRefused as exc:
        code = next(iter(exc.recipients.values()))[0]
        if 500 <= code < 600:
            raise RecipientRefused(f"recipient refused: {exc.recipients}") from exc
        raise
    except smtplib.SMTPResponseException as exc:
        if 500 <= exc.smtp_code < 600:
            detail = exc.smtp_error if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error).encode()
            # Each row has one recipient: an enhanced status 5.1.x names that address as bad.
            kind = RecipientRefused if detail.startswith(b"5.1.") else PermanentFailure
            raise kind(f"{exc.smtp_code} {detail.decode(errors='replace')}") from exc
        raise


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(3600, 30 * 2 ** max(0, attempts - 1)))


def lease_for(cfg: OutboundSettings) -> timedelta:
    """How long a claim keeps other deliverers off a row: well beyond a smarthost timeout."""
    return max(LEASE, timedelta(seconds=4 * cfg.timeout_seconds))


def deliver_due(sessions: sessionmaker[Session], settings: Settings, limit: int = 100) -> int:
    """Send the due outbox rows this deliverer can claim; returns how many were sent.

    Two deliverers never claim the same row. Delivery is at least once, not exactly once: a
    process killed after the smarthost took a mail but before the outcome was recorded leaves
    the row pending and leased; when the lease ends it is due again and sent again. SMTP has
    no way to ask whether a mail whose answer never arrived was taken.
    """
    cfg = settings.outbound
    lease = lease_for(cfg)
    # Start no send the lease may not outlast: the rest of the batch goes back, due at once.
    send_until = time.monotonic() + (lease - timedelta(seconds=2 * cfg.timeout_seconds)).total_seconds()
    batch = claim_due(sessions, lease, limit)
    sent = 0
    for n, mail in enumerate(batch):
        if time.monotonic() > send_until:
            hand_back(sessions, batch[n:])
            log.info("outbox: lease running short; %s claimed mail(s) handed back for the next run", len(batch) - n)
            break
        sent += _deliver(sessions, cfg, mail)
    return sent


_DUE = (select(Outbox.id, Outbox.purpose, Outbox.ticket_id, Outbox.message_id, Outbox.mail_from, Outbox.rcpt_to,
               Outbox.raw, Outbox.created_at, Outbox.attempts)
        .where(Outbox.state == "pending", Outbox.next_attempt_at <= bindparam("now"))
        .order_by(Outbox.id).limit(bindparam("limit")))
_LEASE = (update(Outbox).where(Outbox.id.in_(bindparam("ids", expanding=True)))
          .values(attempts=Outbox.attempts + 1, next_attempt_at=bindparam("until")))


def claim_due(sessions: sessionmaker[Session], lease: timedelta, limit: int) -> list[OutgoingMail]:
    """Take up to `limit` due rows (committed): each leased until now + lease, its attempt counted.
    The rows read are this transaction's alone (SKIP LOCKED on PostgreSQL, the write lock taken at
    BEGIN IMMEDIATE on SQLite), so one UPDATE leases them all."""
    now = utcnow()
    with sessions() as session, session.begin():
        conn = session.connection()
        rows = conn.execute(skip_locked(session, _DUE), {"now": now, "limit": limit}).all()
        if rows:
            conn.execute(_LEASE, {"ids": [row.id for row in rows], "until": now + lease})
        return [OutgoingMail(*row[:-1], attempts=row.attempts + 1) for row in rows]


def hand_back(sessions: sessionmaker[Session], mails: list[OutgoingMail]) -> None:
    """Release claimed mails that were not tried: due at once, their attempt not counted."""
    with sessions() as session, session.begin():
        for mail in mails:
            session.execute(_still_ours(mail).values(attempts=mail.attempts - 1, next_attempt_at=utcnow()))


def _still_ours(mail: OutgoingMail):
    """An UPDATE of the row only while our claim holds (nobody claimed it again after our lease)."""
    return (update(Outbox).where(Outbox.id == mail.id, Outbox.state == "pending", Outbox.attempts == mail.attempts)
            .execution_options(synchronize_session=False))


def _record_if_ours(session: Session, mail: OutgoingMail, **values) -> None:
    if not session.execute(_still_ours(mail).values(**values)).rowcount:
        log.warning("outbox %s: claimed again after this attempt's lease ran out; its outcome is left to that one",
                    mail.id)


def _deliver(sessions: sessionmaker[Session], cfg: OutboundSettings, mail: OutgoingMail) -> int:
    """Send one claimed mail, outside any transaction, then record how it went."""
    try:
        if cfg.host:
            send_via_smarthost(cfg, mail)
        else:
            write_to_folder(Path(cfg.outbox_dir), mail)
    except PermanentFailure as exc:
        OUTBOUND.labels(mail.purpose, "failed").inc()
        _record_failure(sessions, mail, str(exc), refused=isinstance(exc, RecipientRefused))
        return 0
    except (smtplib.SMTPException, OSError, socket.timeout) as exc:
        OUTBOUND.labels(mail.purpose, "retry").inc()
        _record_retry(sessions, cfg, mail, f"{type(exc).__name__}: {exc}"[:2000])
        return 0
    _record_sent(sessions, mail)
    OUTBOUND.labels(mail.purpose, "sent").inc()
    log.info("outbox %s (%s, ticket %s) sent to %s", mail.id, mail.purpose, mail.ticket_id, mail.rcpt_to,
             extra={"ticket_id": mail.ticket_id, "message_id": mail.message_id, "outbox_id": mail.id})
    return 1


_SENT = update(Outbox).where(Outbox.id == bindparam("outbox_id")).values(
    state="sent", sent_at=bindparam("at"), last_error="")


def _record_sent(sessions: sessionmaker[Session], mail: OutgoingMail) -> None:
    # Whoever holds the claim now, the smarthost has the mail: that is the row's truth.
    with sessions() as session, session.begin():
        session.connection().execute(_SENT, {"outbox_id": mail.id, "at": utcnow()})


def _record_retry(sessions: sessionmaker[Session], cfg: OutboundSettings, mail: OutgoingMail, error: str) -> None:
    if mail.attempts >= cfg.max_attempts:
        _record_failure(sessions, mail, error)
        return
    retry_at = utcnow() + _backoff(mail.attempts)
    with sessions() as session, session.begin():
        _record_if_ours(session, mail, last_error=error, next_attempt_at=retry_at)
    log.warning("outbox %s to %s: %s; retry at %s", mail.id, mail.rcpt_to, error, retry_at)


def _record_failure(sessions: sessionmaker[Session], mail: OutgoingMail, error: str, refused: bool = False) -> None:
    with sessions() as session, session.begin():
        _record_if_ours(session, mail, state="failed", last_error=error[:2000])
        if refused:
            session.execute(update(Contact).where(Contact.email == mail.rcpt_to).values(undeliverable=True))
    log.error("outbox %s to %s failed for good: %s", mail.id, mail.rcpt_to, error)
