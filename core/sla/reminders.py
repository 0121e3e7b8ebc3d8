"""Pending reminders: a ticket set to waiting may carry a date; on that date it returns to in
progress by itself and its assignee is told (status change, event and mail in one transaction);
unassigned, the agents whose skills it needs, else the admins (as for a customer's reply)."""
from __future__ import annotations

import logging
from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core import i18n, notify
from core.staff_notify import who_watches
from core.config import Settings, SlaSettings
from core.models import Contact, Event, Ticket, aware, utcnow
from core.sla.policy import current_policy
from core.sla.tracking import refresh
from core.workflow import InvalidChange

log = logging.getLogger(__name__)
BATCH = 100


class InvalidReminder(InvalidChange):
    """A reminder date in the past, or on a ticket that is not waiting."""


def reminder_instant(policy: SlaSettings, when: date | datetime) -> datetime:
    """A date means the start of that business day in the team's time zone; a datetime is taken as is."""
    if isinstance(when, datetime):
        return aware(when).astimezone(timezone.utc)
    opens = time.fromisoformat(policy.business_hours.split("-")[0].strip())
    return datetime.combine(when, opens, tzinfo=ZoneInfo(policy.timezone)).astimezone(timezone.utc)


def set_reminder(session: Session, ticket: Ticket, actor: Contact, until: datetime | None,
                 now: datetime | None = None) -> bool:
    """Store (or clear, with None) the date a waiting ticket wakes up; True when it changed."""
    now = now or utcnow()
    if until is not None and ticket.status != "waiting":
        raise InvalidReminder("a reminder date goes with the status waiting")
    if until is not None and until <= now:
        raise InvalidReminder("the reminder date must be in the future")
    old = aware(ticket.waiting_until) if ticket.waiting_until else None
    if old == until:
        return False
    ticket.waiting_until = until
    session.add(Event(ticket_id=ticket.id, kind="reminder", field="waiting_until",
                      old_value=old.isoformat() if old else "", new_value=until.isoformat() if until else "",
                      source=actor.role, actor_id=actor.id))
    return True


def wake_due(sessions: sessionmaker[Session], settings: Settings, now: datetime | None = None) -> int:
    """Return the waiting tickets whose date has come to in progress and tell whoever watches each."""
    now = now or utcnow()
    with sessions() as session, session.begin():
        due = session.scalars(select(Ticket).where(Ticket.status == "waiting", Ticket.waiting_until <= now)
                              .order_by(Ticket.waiting_until, Ticket.id).limit(BATCH)).all()
        for ticket in due:
            _wake(session, settings, ticket, now)
        return len(due)


def _wake(session: Session, settings: Settings, ticket: Ticket, now: datetime) -> None:
    until = aware(ticket.waiting_until)
    ticket.status, ticket.waiting_until, ticket.updated_at = "in_progress", None, now
    session.add(Event(ticket_id=ticket.id, kind="status", field="status", old_value="waiting",
                      new_value="in_progress", source="reminder", created_at=now))
    refresh(session, settings, ticket)
    told = [person for person in who_watches(session, ticket) if not person.undeliverable]
    if not told:
        log.info("ticket %s: reminder of %s woke it; nobody to tell", ticket.id, until.isoformat(),
                 extra={"ticket_id": ticket.id})
        return
    for person in told:
        lang = i18n.language_of(person)
        notify.queue_mail(session, settings, ticket, person, purpose="reminder",
                          subject=notify.tagged_subject(ticket, i18n.translate(lang, "Reminder: %(subject)s",
                                                                               subject=ticket.subject)),
                          text=notify.render("reminder.txt", ticket=ticket, name=person.name, lang=lang,
                                             until=i18n.local_time(until, i18n.time_zone_of(
                                                 person, settings.sla.timezone)),
                                             link=f"{settings.base_url}/agent/tickets/{ticket.id}"),
                          answering=None, automatic="auto-generated")
    log.info("ticket %s: reminder woke it, %s told", ticket.id, ", ".join(str(p.id) for p in told),
             extra={"ticket_id": ticket.id})


def form_reminder(session: Session, settings: Settings, ticket: Ticket, actor: Contact, text: str) -> bool:
    """The ticket page's date field: a date sets the reminder of a waiting ticket, empty clears it."""
    if not text.strip():
        return set_reminder(session, ticket, actor, None) if ticket.waiting_until else False
    if ticket.waiting_until and aware(ticket.waiting_until).strftime("%Y-%m-%d") == text.strip():
        return False  # the date the page showed (in UTC), sent back unchanged
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidReminder(f"{text.strip()!r} is not a date (YYYY-MM-DD)") from None
    return set_reminder(session, ticket, actor, reminder_instant(current_policy(session, settings), day))
