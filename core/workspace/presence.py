"""Who else has a ticket open, who is typing a reply, and what each agent has read.

Kept in the database (not in a web process's memory): with several web processes behind one
address, two agents' pages may poll different processes.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from core.db import insert_or_ignore
from core.models import Contact, Message, Presence, TicketRead, aware, utcnow

FRESH = timedelta(seconds=20)     # a page polls every few seconds: older marks are closed pages


@dataclass(frozen=True)
class Present:
    name: str
    email: str
    typing: bool


def beat(session: Session, ticket_id: int, agent: Contact, typing: bool) -> list[Present]:
    """Record that the agent has the ticket open (and whether typing); return the others present."""
    now = utcnow()
    if not insert_or_ignore(session, Presence, ("ticket_id", "contact_id"), {
            "ticket_id": ticket_id, "contact_id": agent.id, "typing": typing, "seen_at": now}):
        session.execute(update(Presence).where(Presence.ticket_id == ticket_id, Presence.contact_id == agent.id)
                        .values(typing=typing, seen_at=now))
    return others_present(session, ticket_id, agent.id)


def others_present(session: Session, ticket_id: int, agent_id: int) -> list[Present]:
    """Everyone but this agent whose page on the ticket is still polling."""
    rows = session.execute(select(Contact.name, Contact.email, Presence.typing, Presence.seen_at)
                           .join(Contact, Contact.id == Presence.contact_id)
                           .where(Presence.ticket_id == ticket_id, Presence.contact_id != agent_id)
                           .order_by(Contact.email)).all()
    cutoff = utcnow() - FRESH
    return [Present(name or email, email, typing) for name, email, typing, seen in rows if aware(seen) >= cutoff]


def leave(session: Session, ticket_id: int, agent: Contact) -> None:
    """The agent closed the page."""
    session.execute(delete(Presence).where(Presence.ticket_id == ticket_id, Presence.contact_id == agent.id))


def mark_read(session: Session, ticket_id: int, agent: Contact, up_to: int | None = None) -> None:
    """The agent has seen everything on the ticket so far, or up to message `up_to` (what the open
    page just showed): clears its unread / customer-replied mark. Never moves the mark back."""
    last = up_to if up_to is not None else \
        session.scalar(select(func.max(Message.id)).where(Message.ticket_id == ticket_id)) or 0
    now = utcnow()
    if not insert_or_ignore(session, TicketRead, ("ticket_id", "contact_id"), {
            "ticket_id": ticket_id, "contact_id": agent.id, "last_message_id": last, "read_at": now}):
        session.execute(update(TicketRead).where(TicketRead.ticket_id == ticket_id, TicketRead.contact_id == agent.id,
                                                 TicketRead.last_message_id < last)
                        .values(last_message_id=last, read_at=now))


def unread_replies(session: Session, ticket_ids: list[int], agent: Contact) -> set[int]:
    """Of these tickets, those with a message from outside the agent has not seen on the ticket page."""
    if not ticket_ids:
        return set()
    newest_in = (select(Message.ticket_id, func.max(Message.id).label("mid"))
                 .where(Message.ticket_id.in_(ticket_ids), Message.direction == "in")
                 .group_by(Message.ticket_id).subquery())
    seen = dict(session.execute(select(TicketRead.ticket_id, TicketRead.last_message_id)
                                .where(TicketRead.contact_id == agent.id,
                                       TicketRead.ticket_id.in_(ticket_ids))).all())
    return {ticket_id for ticket_id, mid in session.execute(select(newest_in.c.ticket_id, newest_in.c.mid))
            if mid > seen.get(ticket_id, 0)}


def newer_messages(session: Session, ticket_id: int, after_id: int, agent_id: int) -> int:
    """How many messages by others arrived after `after_id` (a reply written before them may be stale)."""
    return session.scalar(select(func.count(Message.id)).where(
        Message.ticket_id == ticket_id, Message.id > after_id,
        (Message.author_id.is_(None)) | (Message.author_id != agent_id))) or 0
