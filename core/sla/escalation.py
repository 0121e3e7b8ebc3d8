"""Escalations: when a ticket's target comes near (the warning share) or passes (breach), its
assignee and the admins get one mail per ticket, target, stage and clock cycle. The escalation
row and its mails commit in one transaction, and the row's key refuses a second one: a restarted
or a second scheduler never mails twice."""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core import i18n, notify
from core.config import Settings
from core.db import insert_or_ignore
from core.models import OPEN_STATUSES, Contact, SlaEscalation, Ticket, aware, utcnow
from core.sla.clock import Checkpoint
from core.sla.policy import current_policy
from core.sla.tracking import refresh

log = logging.getLogger(__name__)
BATCH = 100
TARGET_NAMES = {"first_response": i18n.N_("first response"), "resolution": i18n.N_("resolution")}
VERBS = {"warning": i18n.N_("is due soon"), "breach": i18n.N_("is overdue")}
# Each recipient reads the subject in their language; the [#N] tag stays as notify.tagged_subject puts it.
SUBJECTS = {"warning": i18n.N_("SLA warning: %(what)s %(verb)s – %(subject)s"),
            "breach": i18n.N_("SLA breach: %(what)s %(verb)s – %(subject)s")}


def escalate_due(sessions: sessionmaker[Session], settings: Settings, now: datetime | None = None) -> int:
    """Send the escalations that are due (one transaction per batch); returns how many were mailed."""
    now = now or utcnow()
    sent = 0
    with sessions() as session, session.begin():
        policy = current_policy(session, settings)
        if not policy.enabled:
            return 0
        due = select(Ticket).where(Ticket.status.in_(OPEN_STATUSES), Ticket.sla_next_check_at <= now)
        for ticket in session.scalars(due.order_by(Ticket.sla_next_check_at, Ticket.id).limit(BATCH)).all():
            state = refresh(session, settings, ticket, now, policy)
            passed = [p for p in state.checkpoints if p.at <= now] if state else []
            for point in passed:
                if _record(session, ticket, point) and _worth_mailing(point, passed):
                    due_at = next(p.at for p in passed + list(state.checkpoints)
                                  if p.target == point.target and p.stage == "breach")
                    sent += _mail(session, settings, ticket, point, due_at)
            ticket.sla_next_check_at = min((p.at for p in state.checkpoints if p.at > now), default=None) \
                if state else None
    return sent


def _record(session: Session, ticket: Ticket, point: Checkpoint) -> bool:
    """True when this escalation is new (the row went in now)."""
    return insert_or_ignore(session, SlaEscalation, ("ticket_id", "target", "stage", "cycle"), {
        "ticket_id": ticket.id, "target": point.target, "stage": point.stage, "cycle": point.cycle,
        "created_at": utcnow()})


def _worth_mailing(point: Checkpoint, passed: list[Checkpoint]) -> bool:
    """A warning whose breach has passed too (the scheduler was down) is recorded, not mailed."""
    return point.stage == "breach" or not any(p.target == point.target and p.stage == "breach" for p in passed)


def _recipients(session: Session, ticket: Ticket) -> list[Contact]:
    admins = session.scalars(select(Contact).where(Contact.role == "admin", Contact.active.is_(True))
                             .order_by(Contact.id)).all()
    people = ([ticket.assignee] if ticket.assignee is not None and ticket.assignee.active else []) + list(admins)
    return [p for p in {p.id: p for p in people}.values() if not p.undeliverable]


def _mail(session: Session, settings: Settings, ticket: Ticket, point: Checkpoint, due_at: datetime) -> int:
    mailed = 0
    for person in _recipients(session, ticket):
        lang = i18n.language_of(person)
        what = i18n.translate(lang, TARGET_NAMES[point.target])
        verb = i18n.translate(lang, VERBS.get(point.stage, VERBS["breach"]))
        subject = notify.tagged_subject(ticket, i18n.translate(
            lang, SUBJECTS.get(point.stage, SUBJECTS["breach"]), what=what, verb=verb, subject=ticket.subject))
        text = notify.render("sla_escalation.txt", ticket=ticket, name=person.name, what=what, verb=verb,
                             stage=point.stage, lang=lang,
                             due=i18n.local_time(due_at, i18n.time_zone_of(person, settings.sla.timezone)),
                             link=f"{settings.base_url}/agent/tickets/{ticket.id}")
        if notify.queue_mail(session, settings, ticket, person, purpose=f"sla-{point.stage}", subject=subject,
                             text=text, answering=None, automatic="auto-generated") is not None:
            mailed += 1
    log.info("ticket %s: SLA %s of %s (cycle %s) mailed to %s people", ticket.id, point.stage, point.target,
             point.cycle, mailed, extra={"ticket_id": ticket.id})
    return mailed

