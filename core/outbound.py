"""Delivers the outbox: through the smarthost when one is configured, else as .eml files in a folder.

A temporary failure (4xx, connection trouble) is retried with backoff; a permanent one (5xx)
or too many attempts marks the row failed, visible to admins, and the recipient undeliverable.
"""
from __future__ import annotations

import logging
import os
import smtplib
import socket
import ssl
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from core.config import OutboundSettings, Settings
from core.db import skip_locked
from core.metrics import OUTBOUND
from core.models import Contact, Outbox, utcnow

log = logging.getLogger(__name__)


class PermanentFailure(Exception):
    """5xx from the smarthost: retrying cannot help."""


class RecipientRefused(PermanentFailure):
    """The smarthost refused the address itself: stop mailing it until an admin clears it."""


def write_to_folder(folder: Path, row: Outbox) -> None:
    """Write the mail as <id>.eml, fsynced, atomically (a reader never sees half a file)."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{row.created_at:%Y%m%dT%H%M%S}-{row.id:08d}.eml"
    tmp = folder / f".{final.name}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(row.raw)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, final)


def send_via_smarthost(cfg: OutboundSettings, row: Outbox) -> None:
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


def deliver_due(sessions: sessionmaker[Session], settings: Settings, limit: int = 100) -> int:
    """Send every due outbox row; returns how many were sent."""
    sent = 0
    with sessions() as session, session.begin():
        stmt = (select(Outbox).where(Outbox.state == "pending", Outbox.next_attempt_at <= utcnow())
                .order_by(Outbox.id).limit(limit))
        for row in session.scalars(skip_locked(session, stmt)):
            sent += _deliver_row(session, settings, row)
    return sent


def _deliver_row(session: Session, settings: Settings, row: Outbox) -> int:
    cfg = settings.outbound
    row.attempts += 1
    try:
        if cfg.host:
            send_via_smarthost(cfg, row)
        else:
            write_to_folder(Path(cfg.outbox_dir), row)
    except PermanentFailure as exc:
        _fail(session, row, str(exc), refused=isinstance(exc, RecipientRefused))
        OUTBOUND.labels(row.purpose, "failed").inc()
        return 0
    except (smtplib.SMTPException, OSError, socket.timeout) as exc:
        row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        OUTBOUND.labels(row.purpose, "retry").inc()
        if row.attempts >= cfg.max_attempts:
            _fail(session, row, row.last_error)
        else:
            row.next_attempt_at = utcnow() + _backoff(row.attempts)
            log.warning("outbox %s to %s: %s; retry at %s", row.id, row.rcpt_to, row.last_error,
                        row.next_attempt_at)
        return 0
    row.state = "sent"
    row.sent_at = utcnow()
    OUTBOUND.labels(row.purpose, "sent").inc()
    row.last_error = ""
    log.info("outbox %s (%s, ticket %s) sent to %s", row.id, row.purpose, row.ticket_id, row.rcpt_to,
             extra={"ticket_id": row.ticket_id, "message_id": row.message_id, "outbox_id": row.id})
    return 1


def _fail(session: Session, row: Outbox, error: str, refused: bool = False) -> None:
    row.state = "failed"
    row.last_error = error[:2000]
    if refused:
        session.execute(update(Contact).where(Contact.email == row.rcpt_to).values(undeliverable=True))
    log.error("outbox %s to %s failed for good: %s", row.id, row.rcpt_to, error)
