"""The service-level work of the worker's scheduler, one call per period."""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from core.config import Settings
from core.sla import escalation, reminders, tracking

log = logging.getLogger(__name__)
MAX_SWEEP_BATCHES = 50


def run_service_levels(sessions: sessionmaker[Session], settings: Settings, now: datetime | None = None) -> int:
    """Wake reminded tickets, bring stale due times up to date, send due escalations; returns the
    number of mails queued or tickets woken (the caller delivers the outbox soon after)."""
    woken = reminders.wake_due(sessions, settings, now)
    for _ in range(MAX_SWEEP_BATCHES):  # after an upgrade every ticket needs computing once: in batches
        with sessions() as session, session.begin():
            if tracking.sweep(session, settings, now) < tracking.SWEEP_BATCH:
                break
    return woken + escalation.escalate_due(sessions, settings, now)
