"""Read models for the portal: what a ticket page shows, loaded in a few queries."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from core.mail.tokens import hash_link_token
from core.models import AccessLink, Event, Message, RawMail, Ticket, aware, utcnow


@dataclass(frozen=True)
class LinkAccess:
    ticket: Ticket
    contact_id: int


def ticket_by_link(session: Session, token: str) -> LinkAccess | None:
    """The ticket a portal link opens, or None when unknown, expired or revoked."""
    link = session.scalar(select(AccessLink).where(AccessLink.token_hash == hash_link_token(token)))
    if link is None or link.revoked_at is not None:
        return None
    if aware(link.expires_at) < utcnow():
        return None
    ticket = session.scalar(select(Ticket).where(Ticket.id == link.ticket_id).options(
        selectinload(Ticket.messages).selectinload(Message.attachments)))
    return LinkAccess(ticket, link.contact_id) if ticket else None


def history(session: Session, ticket_id: int) -> list[Event]:
    return list(session.scalars(select(Event).where(Event.ticket_id == ticket_id).order_by(Event.id)))


def quarantine_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(RawMail).where(RawMail.state == "quarantined")) or 0
