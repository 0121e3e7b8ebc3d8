"""The triage job: summarise a ticket's thread, suggest category/priority/skills, assign by skill.

Runs after intake has committed; a provider failure never touches intake. When Mistral fails,
the offline provider fills in at once (every ticket gets a summary) and Mistral is retried
with backoff; after the last attempt the job is dead (visible to admins) and the offline
result stays.
"""
from __future__ import annotations

import logging
from typing import Callable

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from core import i18n, notify
from core.ai.breaker import guarded
from core.ai.provider import (ProviderError, TriageOutcome, TriageProvider, make_offline, make_provider,
                              triage_thread)
from core.ai.thread import ThreadEntry, entry
from core.config import Settings
from core.security.links import inert_triage
from core.jobs import ClaimedJob, RetryLater
from core.metrics import AI_CALLS
from core.models import (OPEN_STATUSES, AgentSkill, Contact, Event, Message, Ticket, TicketSkill,
                         TicketSummary)
from core.sla import tracking as sla_tracking
from core.workspace.availability import next_agent, not_away
from core.workspace.skills import related_skills

log = logging.getLogger(__name__)


def ticket_thread(session: Session, ticket_id: int) -> tuple[str, list[ThreadEntry]] | None:
    """(subject, thread oldest first) for triage: customer and support words without quotes or
    signatures, no internal notes, no automatic mail (unless an automatic mail is all there is)."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        return None
    shown = func.coalesce(func.nullif(Message.visible_text, ""), Message.body_text)
    rows = session.execute(select(Message.direction, shown).where(
        Message.ticket_id == ticket_id, Message.direction != "note", Message.automatic.is_(False))
        .order_by(Message.id)).all()
    if not rows:
        rows = session.execute(select(Message.direction, shown).where(Message.ticket_id == ticket_id)
                               .order_by(Message.id)).all()
    return ticket.subject, [entry(direction, text or "") for direction, text in rows]


def choose_assignee(session: Session, skills: list[str],
                    synonyms: tuple[str, ...] = ()) -> tuple[Contact | None, str]:
    """The least-loaded active agent covering most of the skills; else the least-loaded agent (in
    turns); the least-loaded admin only when no agent is active. Agents who are away get none."""
    load = (select(func.count(Ticket.id)).where(Ticket.assignee_id == Contact.id,
                                                Ticket.status.in_(OPEN_STATUSES)).scalar_subquery())
    if skills:
        coverage = func.count(AgentSkill.skill)
        best = session.execute(
            select(Contact, coverage.label("coverage"), load.label("load"))
            .join(AgentSkill, AgentSkill.contact_id == Contact.id)
            .where(Contact.role == "agent", Contact.active.is_(True), not_away(),
                   AgentSkill.skill.in_(related_skills(session, skills, synonyms)))  # word forms match
            .group_by(Contact.id).order_by(coverage.desc(), load, Contact.id).limit(1)).first()
        if best is not None:
            return best[0], f"skills {best[1]}/{len(skills)}"
    agent = next_agent(session, load)
    if agent is not None:
        return agent, "no agent with the skills: the least-loaded agent" if skills else "the least-loaded agent"
    admin = session.scalar(select(Contact).where(Contact.role == "admin", Contact.active.is_(True), not_away())
                           .order_by(load, Contact.id).limit(1))
    return admin, "no agent with the skills: an admin"


def _changed_by_people(session: Session, ticket_id: int, field: str) -> bool:
    return session.scalar(select(func.count(Event.id)).where(
        Event.ticket_id == ticket_id, Event.field == field, Event.source.in_(("agent", "customer", "admin")))) > 0


def apply_triage(session: Session, settings: Settings, ticket_id: int, outcome: TriageOutcome) -> None:
    """Store the summary (kept in history), category/priority unless a person set them, skills, assignee."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        return
    outcome = TriageOutcome(inert_triage(outcome.triage), outcome.source)  # no live link leaves the model
    t, source = outcome.triage, outcome.source
    session.add(TicketSummary(ticket_id=ticket.id, summary=t.summary, notes="\n".join(t.notes), source=source))
    ticket.summary = t.summary
    for field, value in (("category", t.category), ("priority", t.priority)):
        old = getattr(ticket, field)
        if old != value and not _changed_by_people(session, ticket.id, field):
            setattr(ticket, field, value)
            session.add(Event(ticket_id=ticket.id, kind=field, field=field, old_value=old, new_value=value,
                              source=source))
    session.execute(delete(TicketSkill).where(TicketSkill.ticket_id == ticket.id))
    session.add_all(TicketSkill(ticket_id=ticket.id, skill=s) for s in dict.fromkeys(t.skills))
    if ticket.assignee_id is None and ticket.status in OPEN_STATUSES:
        _assign(session, settings, ticket, list(t.skills), outcome)
    sla_tracking.refresh(session, settings, ticket)  # a priority triage chose has targets of its own


def _assign(session: Session, settings: Settings, ticket: Ticket, skills: list[str], outcome: TriageOutcome) -> None:
    agent, why = choose_assignee(session, skills, settings.assignment.skill_synonyms)
    if agent is None:
        return
    ticket.assignee_id = agent.id
    session.add(Event(ticket_id=ticket.id, kind="assigned", field="assignee", new_value=agent.email,
                      source="rule", old_value=why))
    if opened_by_automatic_mail(session, ticket.id):
        # A newsletter or a list's flood must not flood the agent's inbox: the ticket waits in their queue.
        log.info("ticket %s assigned to %s without a mail: it was opened by automatic mail", ticket.id, agent.id)
        return
    text = notify.render("assignment.txt", ticket=ticket, name=agent.name, summary=outcome.triage.summary,
                         notes=outcome.triage.notes, source=outcome.source,
                         link=f"{settings.base_url}/agent/tickets/{ticket.id}", lang=i18n.language_of(agent))
    notify.queue_mail(session, settings, ticket, agent, purpose="assignment",
                      subject=notify.tagged_subject(ticket, ticket.subject), text=text, answering=None,
                      automatic="auto-generated")


def opened_by_automatic_mail(session: Session, ticket_id: int) -> bool:
    """Whether the ticket's first message is automatic (list or bulk mail, a generated notification)."""
    first = session.execute(select(Message.automatic).where(Message.ticket_id == ticket_id)
                            .order_by(Message.id).limit(1)).scalar()
    return bool(first)


def make_triage_handler(sessions: sessionmaker[Session], settings: Settings,
                        primary: TriageProvider | None = None) -> Callable[[ClaimedJob], None]:
    """The handler for 'triage' jobs, holding one provider for the worker's lifetime."""
    primary = guarded(primary or make_provider(settings.ai), settings.ai)
    offline = make_offline(settings.ai)

    def handle(job: ClaimedJob) -> None:
        with sessions() as session:
            thread = ticket_thread(session, job.ticket_id)
            has_summary = bool(thread) and bool(session.get(Ticket, job.ticket_id).summary)
        if thread is None:
            return  # the ticket was deleted meanwhile
        subject, entries = thread
        try:
            outcome = TriageOutcome(triage_thread(primary, subject, entries), primary.name)
            AI_CALLS.labels(primary.name, "ok").inc()
        except ProviderError as exc:
            AI_CALLS.labels(primary.name, "failed").inc()
            if not has_summary or job.last_attempt:
                fallback = TriageOutcome(triage_thread(offline, subject, entries), offline.name)
                _store(sessions, settings, job.ticket_id, fallback)
            if job.last_attempt:
                raise
            raise RetryLater(f"{primary.name}: {exc}; offline triage used meanwhile") from exc
        _store(sessions, settings, job.ticket_id, outcome)

    return handle


def _store(sessions: sessionmaker[Session], settings: Settings, ticket_id: int, outcome: TriageOutcome) -> None:
    with sessions() as session, session.begin():
        apply_triage(session, settings, ticket_id, outcome)
    log.info("ticket %s triaged by %s: %s/%s", ticket_id, outcome.source, outcome.triage.category,
             outcome.triage.priority)
