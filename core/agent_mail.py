"""Mail on a ticket's thread from the other side of the desk: staff answering from their mail client,
and customers' mail replies, which staff must hear about.

A trusted mail from an agent's address (to the ticket's reply address signed for that agent, or
in reply to a mail we sent that agent) becomes the agent's reply and is sent to the customer, or,
with `#note` as its first line, an internal note. Quoted history is stripped as for customer mail.
"""
from __future__ import annotations

import logging
from typing import Protocol, Sequence

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from core import staff_notify
from core.config import Settings
from core.mail import tokens
from core.mail.parse import ParsedMail
from core.mail.reply_text import visible_reply_text
from core.models import Contact, Outbox, Ticket

log = logging.getLogger(__name__)
STAFF = ("agent", "admin")
NOTE_MARK = "#note"


class Sender(Protocol):
    id: int
    email: str
    name: str
    role: str


class SpooledMail(Protocol):
    id: int


_SENT_TO = select(Outbox.id).where(Outbox.message_id == bindparam("msgid"), Outbox.rcpt_to == bindparam("rcpt"))


def trusted_staff_mail(session: Session, settings: Settings, ticket_id: int, mail: ParsedMail, sender: Sender,
                       recipients: Sequence[str], authenticated: bool = False) -> bool:
    """Whether a mail from a staff address may act for that person on the ticket: it went to the
    ticket's reply address signed for that address, or answers a mail we sent that address (our
    signed Message-ID), or its sender is `authenticated` (DKIM pass, once intake checks it)."""
    if sender.role not in STAFF:
        return False
    if authenticated:
        return True
    secret = settings.web.secret_key
    if any(tokens.verify_reply_address(secret, address, sender.email) == ticket_id for address in recipients):
        return True
    conn = session.connection()
    return any(tokens.ticket_of_message_id(secret, msgid) == ticket_id
               and conn.execute(_SENT_TO, {"msgid": msgid, "rcpt": sender.email}).first() is not None
               for msgid in mail.in_reply_to)


def take_staff_reply(session: Session, settings: Settings, raw: SpooledMail, mail: ParsedMail, sender: Sender,
                     ticket: Ticket | None, recipients: Sequence[str],
                     authenticated: bool = False) -> tuple[int, int, str] | None:
    """An agent's trusted mail on a ticket, stored and sent as their reply (or kept as a note):
    (ticket id, message id, matched_by); None when this is not such a mail (intake goes on as usual)."""
    if ticket is None or not trusted_staff_mail(session, settings, ticket.id, mail, sender, recipients,
                                                authenticated):
        return None
    agent = session.get(Contact, sender.id)
    if agent is None or not agent.active:
        return None
    from core import workflow  # workflow builds on core.tickets, which calls this module

    text = visible_reply_text(mail.text).strip()
    first, _, rest = text.partition("\n")
    if first.strip().lower() == NOTE_MARK:
        message = workflow.add_note(session, ticket, agent, rest.strip() or "(empty note)")
        matched_by = "agent-mail-note"
    else:
        uploads = _uploads(workflow, mail)
        if not text and not uploads:
            return None
        message = workflow.reply_as_agent(session, settings, ticket, agent, text or "(files attached)", uploads)
        matched_by = "agent-mail"
    message.raw_mail_id = raw.id
    session.flush()
    log.info("mail %s from %s taken as their %s on ticket %s", mail.message_id or "-", agent.email,
             "note" if matched_by.endswith("note") else "reply", ticket.id,
             extra={"ticket_id": ticket.id, "message_id": mail.message_id, "raw_mail_id": raw.id})
    return ticket.id, message.id, matched_by


def _uploads(workflow, mail: ParsedMail) -> list:
    """The mail's files as reply uploads (inline images of the agent's signature left out)."""
    files = [workflow.Upload(a.filename or "attachment.bin", a.content_type, a.data) for a in mail.attachments
             if not a.inline and len(a.data) <= workflow.MAX_ATTACHMENT_BYTES]
    return files[:workflow.MAX_ATTACHMENTS]


def notify_watchers(session: Session, settings: Settings, ticket: Ticket | object, sender: Sender,
                    visible_text: str, automatic: bool) -> None:
    """A customer's human mail reply on an existing ticket (its text without quoted history): a
    notice to whoever watches it."""
    if automatic or sender.role != "customer" or not isinstance(ticket, Ticket):
        return
    staff_notify.customer_replied(session, settings, ticket, sender, visible_text)

