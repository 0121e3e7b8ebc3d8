"""Read models for the portal: what a ticket page shows, loaded in a few queries."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from core.mail.html import sanitize_html
from core.mail.tokens import hash_link_token
from core.models import (AccessLink, Attachment, Blob, Contact, Event, Message, RawMail, Ticket, TicketSkill,
                         TicketSummary, aware, utcnow)


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


def message_html(message: Message, cid_url: Callable[[str], str | None] | None = None) -> Markup:
    """A message's HTML, safe to show: mail from outside through the sanitiser; ours (Markdown
    replies and notes) as core.markdown produced it. Empty when the message has no HTML."""
    if not message.body_html:
        return Markup("")
    if message.direction == "in":
        return Markup(sanitize_html(message.body_html, cid_url=cid_url))
    return Markup(message.body_html)


def ticket_attachment(session: Session, ticket_id: int, attachment_id: int) -> tuple[Attachment, bytes] | None:
    """An attachment and its bytes, only when it belongs to a message of this ticket."""
    row = session.execute(select(Attachment, Blob.data).join(Message, Attachment.message_id == Message.id)
                          .join(Blob, Blob.sha256 == Attachment.blob_sha256)
                          .where(Attachment.id == attachment_id, Message.ticket_id == ticket_id)).first()
    return (row[0], row[1]) if row else None


def history_with_actors(session: Session, ticket_id: int) -> list[tuple[Event, str]]:
    """The ticket's events, oldest first, each with its actor's address ('' for rules and jobs)."""
    return [(event, email or "") for event, email in session.execute(
        select(Event, Contact.email).outerjoin(Contact, Event.actor_id == Contact.id)
        .where(Event.ticket_id == ticket_id).order_by(Event.id))]


def latest_summary(session: Session, ticket_id: int) -> TicketSummary | None:
    return session.scalar(select(TicketSummary).where(TicketSummary.ticket_id == ticket_id)
                          .order_by(TicketSummary.id.desc()).limit(1))


def ticket_skills(session: Session, ticket_id: int) -> list[str]:
    return list(session.scalars(select(TicketSkill.skill).where(TicketSkill.ticket_id == ticket_id)
                                .order_by(TicketSkill.skill)))


def messages_after(session: Session, ticket_id: int, after_id: int, include_notes: bool) -> list[Message]:
    """The thread's messages newer than after_id (what a polling page has not shown yet)."""
    stmt = select(Message).where(Message.ticket_id == ticket_id, Message.id > after_id).order_by(Message.id)
    return list(session.scalars(stmt if include_notes else stmt.where(Message.direction != "note")))
