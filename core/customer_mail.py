"""The mails a ticket's customers get when staff act: an agent's reply (with its files, and the
ticket link) and status/resolution changes, coalesced so a burst of changes is one mail.

Each mail is written to the outbox in the caller's transaction, like every mail a change causes.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Sequence

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from core import i18n, notify, satisfaction
from core.config import Settings
from core.mail.compose import MailAttachment, mailable
from core.models import Attachment, Blob, Contact, Message, Outbox, Ticket, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinkedFile:
    """A file too large to go with the mail: named in it with a download link."""
    name: str
    size: int
    url: str
    signed_in_url: str


def split_attachments(attachments: Sequence[Attachment], limit: int) -> tuple[list[Attachment], list[Attachment]]:
    """(sent with the mail, linked): files in order while their total stays within `limit` bytes."""
    sent, linked, total = [], [], 0
    for att in attachments:
        if total + att.size <= limit:
            sent.append(att)
            total += att.size
        else:
            linked.append(att)
    return sent, linked


def _files(session: Session, attachments: list[Attachment]) -> tuple[MailAttachment, ...]:
    data = dict(session.execute(select(Blob.sha256, Blob.data).where(
        Blob.sha256.in_({a.blob_sha256 for a in attachments}))).all()) if attachments else {}
    return tuple(MailAttachment(a.filename, a.content_type, data[a.blob_sha256]) for a in attachments)


def mail_agent_reply(session: Session, settings: Settings, ticket: Ticket, message: Message, agent: Contact,
                     recipients: Sequence[Contact], answering: Message | None) -> None:
    """Mail an agent's stored reply to each recipient: text + HTML from agent_reply.txt, the ticket
    link, the files up to [outbound] max_attachment_bytes attached and the rest as download links."""
    attached, linked = split_attachments(message.attachments, settings.outbound.max_attachment_bytes)
    files = _files(session, attached)
    for person in recipients:
        if not mailable(person.email):
            continue
        link = notify.create_access_link(session, settings, ticket, person)
        links = [LinkedFile(a.filename, a.size, f"{link}/attachments/{a.id}",
                            f"{settings.base_url}/my/tickets/{ticket.id}/attachments/{a.id}") for a in linked]
        text, html = notify.render_parts("agent_reply.txt", markdown={"text": message.body_text}, ticket=ticket,
                                         agent=agent, link=link, linked=links, lang=i18n.language_of(person))
        row = notify.queue_mail(session, settings, ticket, person, purpose="reply", subject=message.subject,
                                text=text, html=html, answering=answering, attachments=files,
                                from_name=agent.name or "Support")
        if row is not None:
            message.message_id = message.message_id or row.message_id


_PENDING_STATUS = (select(Outbox.id, Outbox.message_id).where(
    Outbox.ticket_id == bindparam("ticket_id"), Outbox.purpose == "status", Outbox.rcpt_to == bindparam("rcpt"),
    Outbox.state == "pending", Outbox.attempts == 0).order_by(Outbox.id.desc()).limit(1))
_REPLACE = (update(Outbox).where(Outbox.id == bindparam("outbox_id"), Outbox.state == "pending",
                                 Outbox.attempts == 0).values(raw=bindparam("raw")))


def mail_status_change(session: Session, settings: Settings, ticket: Ticket, recipients: Sequence[Contact],
                       answering: Message | None) -> None:
    """Tell each recipient the ticket's status and resolution now. The mail waits [outbound]
    coalesce_seconds; a change meanwhile rewrites the waiting mail instead of adding another."""
    hold = timedelta(seconds=max(0.0, settings.outbound.coalesce_seconds))
    conn = session.connection()
    for person in recipients:
        if not mailable(person.email):
            continue
        link = notify.create_access_link(session, settings, ticket, person)
        text, html = notify.render_parts("status_changed.txt", ticket=ticket, link=link,
                                         lang=i18n.language_of(person))
        text, html = satisfaction.resolution_mail(settings, ticket, person, text, html)  # rating links
        subject = notify.tagged_subject(ticket, ticket.subject)
        waiting = conn.execute(_PENDING_STATUS, {"ticket_id": ticket.id, "rcpt": person.email}).first()
        if waiting is not None:
            raw = notify.compose_ticket_mail(settings, ticket, person, waiting.message_id, subject=subject,
                                             text=text, html=html, answering=answering, automatic="auto-generated")
            # Compare-and-set: a deliverer that claimed the mail meanwhile makes this a new mail.
            if conn.execute(_REPLACE, {"outbox_id": waiting.id, "raw": raw}).rowcount:
                log.info("ticket %s: status mail %s to %s rewritten (coalesced)", ticket.id, waiting.id,
                         person.email, extra={"ticket_id": ticket.id})
                continue
        notify.queue_mail(session, settings, ticket, person, purpose="status", subject=subject, text=text,
                          html=html, answering=answering, automatic="auto-generated", send_at=utcnow() + hold)



@dataclass(frozen=True)
class MailPlan:
    """Who a kind of mail about a ticket reaches, and who it does not and why (the agent's form says so)."""
    mailed: tuple[str, ...]
    opted_out: tuple[str, ...]  # chose not to get this kind of mail (account preferences)
    undeliverable: tuple[str, ...]  # their address bounced: nothing is sent until an admin clears it


def mail_plan(ticket: Ticket, followers: Sequence[Contact], status_mail: bool = False) -> MailPlan:
    """Whom an agent's reply (or, with `status_mail`, a status/resolution change) is mailed to:
    the requester and followers, less those who opted out of that kind or cannot be mailed."""
    people = list({p.id: p for p in (ticket.requester, *followers)}.values())
    wants = [p for p in people if (p.notify_status if status_mail else p.notify_replies)]
    return MailPlan(mailed=tuple(p.email for p in wants if not p.undeliverable),
                    opted_out=tuple(p.email for p in people if p not in wants),
                    undeliverable=tuple(p.email for p in wants if p.undeliverable))
