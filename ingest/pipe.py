"""`postdesk ingest [FILE|-]`: one raw mail from an MTA pipe or a file, answered with sysexits codes."""
from __future__ import annotations

import logging
from typing import BinaryIO

from sqlalchemy.orm import Session, sessionmaker

from core.config import Settings
from ingest import spool, worker

log = logging.getLogger(__name__)
EX_OK = 0
EX_DATAERR = 65
EX_TEMPFAIL = 75


def _put_migrating_once(sessions: sessionmaker[Session], settings: Settings, raw: bytes,
                        envelope_from: str) -> spool.Spooled:
    """An MTA may pipe mail before anyone ran `postdesk migrate`: bring the schema up once and retry."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    try:
        return spool.put(sessions, raw, "pipe", envelope_from)
    except (OperationalError, ProgrammingError):
        from core.db import migrate

        migrate(settings.database.url)
        return spool.put(sessions, raw, "pipe", envelope_from)


def ingest_stream(stream: BinaryIO, sessions: sessionmaker[Session], settings: Settings,
                  envelope_from: str = "") -> int:
    """Store the mail, process it now, and say how it went as a sysexits code."""
    raw = stream.read(settings.smtp.max_message_bytes + 1)
    try:
        if not raw.strip():
            spool.put_quarantined(sessions, raw, "pipe", "empty message", envelope_from)
            return EX_DATAERR
        if len(raw) > settings.smtp.max_message_bytes:
            raw += stream.read()  # keep it whole in quarantine: nothing is lost
            spool.put_quarantined(sessions, raw, "pipe",
                                  f"message larger than {settings.smtp.max_message_bytes} bytes", envelope_from)
            return EX_DATAERR
        stored = _put_migrating_once(sessions, settings, raw, envelope_from)
    except Exception:
        log.exception("could not store the piped mail")
        return EX_TEMPFAIL
    if stored.duplicate:
        return EX_OK
    try:
        outcome = worker.process_one(sessions, settings, stored.id)
    except Exception:
        # Stored durably: the server's worker will process it later, so the MTA must not resend.
        log.exception("raw_mail %s stored but not processed yet", stored.id)
        return EX_OK
    return EX_DATAERR if outcome.quarantined else EX_OK
