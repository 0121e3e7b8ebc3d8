"""What people do to tickets in the portal or the API: open from the web form, reply, note,
change fields, close, edit, delete. One transaction each (the caller commits); the mail a
change causes is written to the outbox in the same transaction.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import customer_mail, jobs, notify, staff_notify
from core.config import Settings
from core.errors import SenderError
from core.markdown import markdown_to_html
from core.models import (CATEGORIES, PRIORITIES, STATUSES, AccessLink, Attachment, Contact, Event, Follower,
                         Message, Ticket, utcnow)
from core.sla import tracking as sla
from core.tickets import _store_blob, contact_for, new_reference

log = logging.getLogger(__name__)
MAX_ATTACHMENTS = 10
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024


class NotAllowed(SenderError):
    """The person may not do this to this ticket."""


class InvalidChange(SenderError):
    """A field value the domain does not know, or an empty text."""


@dataclass(frozen=True)
class Upload:
    filename: str
    content_type: str
    data: bytes


def _attach(session: Session, message: Message, uploads: list[Upload]) -> None:
    if len(uploads) > MAX_ATTACHMENTS:
        raise InvalidChange(f"at most {MAX_ATTACHMENTS} attachments")
    for up in uploads:
        if len(up.data) > MAX_ATTACHMENT_BYTES:
            raise InvalidChange(f"{up.filename}: larger than {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB")
        message.attachments.append(Attachment(
            filename=(up.filename or "attachment.bin")[:500], content_type=(up.content_type or
                                                                            "application/octet-stream")[:200],
            size=len(up.data), blob_sha256=_store_blob(session, up.data)))


def _event(session: Session, ticket: Ticket, actor: Contact | None, kind: str, field: str = "", old: str = "",
           new: str = "", source: str = "") -> None:
    session.add(Event(ticket_id=ticket.id, kind=kind, field=field, old_value=old, new_value=new,
                      source=source or (actor.role if actor else "rule"), actor_id=actor.id if actor else None))


def open_from_web(session: Session, settings: Settings, *, email: str, name: str, subject: str, description: str,
                  category: str | None = None, priority: str | None = None,
                  uploads: list[Upload] | None = None, language: str | None = None) -> Ticket:
    """The public form: the same path as a mail — ticket, acknowledgement with link, triage job.
    `language` (the browser's) becomes the requester's when they have none yet."""
    if not description.strip() or not subject.strip():
        raise InvalidChange("subject and description are required")
    requester = contact_for(session, email, name)
    if name and not requester.name:
        requester.name = name
    requester.language = requester.language or language
    ticket = Ticket(reference=new_reference(), subject=subject.strip()[:998], requester_id=requester.id,
                    status="new", priority=_valid(priority or "medium", PRIORITIES, "priority"),
                    category=_valid(category or "general", CATEGORIES, "category"))
    session.add(ticket)
    session.flush()
    message = Message(ticket=ticket, kind="web", direction="in", author_id=requester.id,
                      from_address=requester.email, subject=ticket.subject, body_text=description,
                      visible_text=description, matched_by="web-form")
    session.add(message)
    _attach(session, message, uploads or [])
    _event(session, ticket, requester, "created", source="web")
    for field in ("category", "priority"):
        if (category if field == "category" else priority):
            _event(session, ticket, requester, field, field, "", getattr(ticket, field), "customer")
    session.flush()
    jobs.enqueue(session, "triage", ticket.id)
    if not requester.undeliverable:
        notify.queue_acknowledgement(session, settings, ticket, message, requester)
    sla.refresh(session, settings, ticket)
    return ticket


def _valid(value: str, allowed: tuple[str, ...], field: str) -> str:
    if value not in allowed:
        raise InvalidChange(f"{field} must be one of {', '.join(allowed)}")
    return value


def _last_inbound(session: Session, ticket: Ticket) -> Message | None:
    return session.scalar(select(Message).where(Message.ticket_id == ticket.id, Message.direction == "in",
                                                Message.message_id.is_not(None)).order_by(Message.id.desc()).limit(1))


def _recipients(session: Session, ticket: Ticket, status_mail: bool = False) -> list[Contact]:
    """The requester and followers who can receive mail and want this kind (their preferences)."""
    people = [ticket.requester, *(f.contact for f in session.scalars(
        select(Follower).where(Follower.ticket_id == ticket.id)))]
    wanted = [p for p in people if not p.undeliverable and (p.notify_status if status_mail else p.notify_replies)]
    return list({p.id: p for p in wanted}.values())


def reply_as_agent(session: Session, settings: Settings, ticket: Ticket, agent: Contact, text: str,
                   uploads: list[Upload] | None = None) -> Message:
    """An agent's answer: stored on the thread and mailed (text + HTML) to the requester and followers."""
    if not text.strip():
        raise InvalidChange("the reply is empty")
    html = markdown_to_html(text)
    answering = _last_inbound(session, ticket)
    message = Message(ticket=ticket, kind="mail", direction="out", author_id=agent.id,
                      from_address=settings.from_address, subject=notify.tagged_subject(ticket, ticket.subject),
                      body_text=text, visible_text=text, body_html=html, matched_by="agent")
    session.add(message)
    _attach(session, message, uploads or [])
    if ticket.status == "new":
        _set(session, ticket, agent, "status", "in_progress")
    ticket.updated_at = utcnow()
    session.flush()
    customer_mail.mail_agent_reply(session, settings, ticket, message, agent, _recipients(session, ticket), answering)
    sla.refresh(session, settings, ticket)
    return message


def add_note(session: Session, ticket: Ticket, agent: Contact, text: str) -> Message:
    """An internal note: on the thread for staff only, never mailed to the customer."""
    if not text.strip():
        raise InvalidChange("the note is empty")
    message = Message(ticket=ticket, kind="note", direction="note", author_id=agent.id,
                      from_address=agent.email, body_text=text, visible_text=text,
                      body_html=markdown_to_html(text), matched_by="note")
    session.add(message)
    session.flush()
    return message


def _set(session: Session, ticket: Ticket, actor: Contact, field: str, value: str) -> bool:
    old = getattr(ticket, field)
    if old == value:
        return False
    setattr(ticket, field, value)
    _event(session, ticket, actor, field, field, old or "", value or "")
    return True


def change_fields(session: Session, settings: Settings, ticket: Ticket, actor: Contact, *,
                  status: str | None = None, priority: str | None = None, category: str | None = None,
                  assignee: Contact | None | bool = False, resolution: str | None = None,
                  comment: str | None = None) -> list[str]:
    """Staff change fields; each change is in history; status and resolution changes are mailed."""
    if actor.role not in ("agent", "admin"):
        raise NotAllowed("only staff change these fields")
    changed = []
    for field, value, allowed in (("status", status, STATUSES), ("priority", priority, PRIORITIES),
                                  ("category", category, CATEGORIES)):
        if value is not None and _set(session, ticket, actor, field, _valid(value, allowed, field)):
            changed.append(field)
    if assignee is not False:
        new_id = assignee.id if isinstance(assignee, Contact) else None
        if isinstance(assignee, Contact) and assignee.role not in ("agent", "admin"):
            raise InvalidChange("tickets are assigned to agents or admins")
        if ticket.assignee_id != new_id:
            old = ticket.assignee.email if ticket.assignee else ""
            ticket.assignee_id = new_id
            _event(session, ticket, actor, "assigned", "assignee", old, assignee.email if new_id else "")
            changed.append("assignee")
    if resolution is not None and _set(session, ticket, actor, "resolution", resolution.strip()):
        changed.append("resolution")
    if comment and comment.strip():
        add_note(session, ticket, actor, comment)
    if changed:
        ticket.updated_at = utcnow()
    if {"status", "resolution"} & set(changed):
        _mail_status(session, settings, ticket)
    if {"status", "priority"} & set(changed):
        sla.refresh(session, settings, ticket)
    return changed


def _mail_status(session: Session, settings: Settings, ticket: Ticket) -> None:
    session.flush()
    customer_mail.mail_status_change(session, settings, ticket, _recipients(session, ticket, status_mail=True),
                                     _last_inbound(session, ticket))


def reply_as_customer(session: Session, settings: Settings, ticket: Ticket, customer: Contact, text: str,
                      uploads: list[Upload] | None = None) -> Message:
    """The customer answers in the portal: same thread, ticket wakes up, the assignee is told."""
    if not text.strip():
        raise InvalidChange("the reply is empty")
    message = Message(ticket=ticket, kind="web", direction="in", author_id=customer.id,
                      from_address=customer.email, subject=ticket.subject, body_text=text, visible_text=text,
                      matched_by="portal")
    session.add(message)
    _attach(session, message, uploads or [])
    if ticket.status in ("waiting", "resolved", "closed"):
        _set(session, ticket, customer, "status", "in_progress")
    ticket.updated_at = utcnow()
    session.flush()
    jobs.enqueue(session, "triage", ticket.id)
    staff_notify.customer_replied(session, settings, ticket, customer, text)
    sla.refresh(session, settings, ticket)
    return message


def close_by_customer(session: Session, ticket: Ticket, customer: Contact) -> None:
    """The requester closes their own ticket."""
    if customer.id != ticket.requester_id:
        raise NotAllowed("only the requester closes a ticket")
    _set(session, ticket, customer, "status", "closed")
    ticket.updated_at = utcnow()


def edit_description(session: Session, ticket: Ticket, customer: Contact, subject: str, description: str) -> None:
    """The requester corrects subject and description; old values stay in history."""
    if customer.id != ticket.requester_id:
        raise NotAllowed("only the requester edits the description")
    first = session.scalar(select(Message).where(Message.ticket_id == ticket.id).order_by(Message.id).limit(1))
    if subject.strip():
        _set(session, ticket, customer, "subject", subject.strip()[:998])
    if first is not None and description.strip() and description != first.visible_text:
        _event(session, ticket, customer, "edited", "description", first.visible_text, description)
        first.visible_text = description
    ticket.updated_at = utcnow()


def revoke_links(session: Session, ticket: Ticket, actor: Contact) -> int:
    """Staff end every no-login link to the ticket (a forwarded mail leaked one); a fresh one can be requested."""
    if actor.role not in ("agent", "admin"):
        raise NotAllowed("only staff revoke links")
    now = utcnow()
    links = session.scalars(select(AccessLink).where(AccessLink.ticket_id == ticket.id,
                                                     AccessLink.revoked_at.is_(None))).all()
    for link in links:
        link.revoked_at = now
    if links:
        _event(session, ticket, actor, "links-revoked", new=str(len(links)))
    return len(links)


def delete_ticket(session: Session, ticket: Ticket, admin: Contact) -> None:
    if admin.role != "admin":
        raise NotAllowed("only admins delete tickets")
    log.info("ticket %s deleted by %s", ticket.id, admin.email)
    session.delete(ticket)
