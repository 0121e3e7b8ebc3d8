"""Use-cases on tickets. Each takes a session, changes what it must and writes the mail it
causes into the outbox; the caller commits, so change and mail land together or not at all."""
from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from core import automatic, followers, jobs, notify
from core.config import Settings
from core.db import insert_or_ignore, insert_row
from core.mail.classify import AUTO_REPLY, DELIVERY_REPORT, OUR_OWN_MAIL, Verdict
from core.mail.parse import ParsedMail
from core.mail.reply_text import visible_reply_text
from core.errors import ParentStillSpooled
from core.models import Attachment, Blob, Contact, Event, Message, RawMail, Ticket, aware, utcnow
from core.routing import Route, route_mail

log = logging.getLogger(__name__)
UNKNOWN_SENDER = "unknown-sender@invalid"


@dataclass(frozen=True)
class Received:
    ticket_id: int | None  # None: a bounce of mail that belongs to no ticket
    message_id: int | None
    matched_by: str
    created: bool
    acknowledged: bool
    automatic: str


class SpooledMail(Protocol):
    """What intake needs of a spooled mail (a RawMail row, or the worker's plain copy of one)."""
    id: int
    door: str
    envelope_from: str
    envelope_to: str
    raw: bytes


@dataclass(frozen=True)
class Sender:
    """The person a mail is from, as intake needs them (read on the session's connection: no ORM
    object, so nothing for autoflush to look at)."""
    id: int
    email: str
    name: str
    role: str
    undeliverable: bool


@dataclass(frozen=True)
class OpenedTicket:
    """The fields of a ticket intake just inserted (a plain value: no ORM object to load or flush)."""
    id: int
    reference: str
    subject: str
    requester_id: int


@dataclass(frozen=True)
class StoredMessage:
    """The fields of a stored inbound mail an answer to it needs."""
    id: int
    subject: str
    message_id: str | None
    references: str


def new_reference() -> str:
    return "PD-" + secrets.token_hex(4).upper()


_CONTACT_BY_EMAIL = select(Contact).where(Contact.email == bindparam("email"))


def contact_for(session: Session, email: str, name: str = "") -> Contact:
    """The contact with this address, created if new (safe against a concurrent insert)."""
    email = email.strip().lower()
    contact = session.execute(_CONTACT_BY_EMAIL, {"email": email}).scalar()
    if contact is not None:
        return contact
    _insert_contact(session, email, name)
    return session.execute(_CONTACT_BY_EMAIL, {"email": email}).scalar_one()


def _insert_contact(session: Session, email: str, name: str) -> None:
    """A new customer contact, unless a concurrent transaction inserted the address first."""
    insert_or_ignore(session, Contact, ("email",), {"email": email, "name": name, "role": "customer",
                                                    "active": True, "undeliverable": False})


_SENDER = select(Contact.id, Contact.email, Contact.name, Contact.role, Contact.undeliverable).where(
    Contact.email == bindparam("email"))


def sender_for(session: Session, email: str, name: str = "") -> Sender:
    """contact_for as a plain value: the contact with this address, created if new."""
    email = email.strip().lower()
    conn = session.connection()
    row = conn.execute(_SENDER, {"email": email}).first()
    if row is None:
        _insert_contact(session, email, name)
        row = conn.execute(_SENDER, {"email": email}).one()
    return Sender(*row)


def sender_address(raw: SpooledMail, mail: ParsedMail) -> str:
    """Whom a mail is from: its From, else the envelope sender (every mail gets a contact for it)."""
    return (mail.from_address or raw.envelope_from or UNKNOWN_SENDER).strip().lower()


def add_senders(session: Session, mails: list[tuple[SpooledMail, ParsedMail]]) -> None:
    """Create the contacts of a batch's new senders up front, in address order (named as the batch's
    first mail from each names them, as mail by mail would): workers doing this concurrently take
    the addresses' locks in one order and cannot deadlock on them."""
    names: dict[str, str] = {}
    for raw, mail in mails:
        names.setdefault(sender_address(raw, mail), mail.from_name)
    if not names:
        return
    known = set(session.connection().execute(_KNOWN_ADDRESSES, {"addresses": list(names)}).scalars())
    for address in sorted(names.keys() - known):
        _insert_contact(session, address, names[address])


_KNOWN_ADDRESSES = select(Contact.email).where(Contact.email.in_(bindparam("addresses", expanding=True)))


def _store_blob(session: Session, data: bytes) -> str:
    sha = hashlib.sha256(data).hexdigest()
    insert_or_ignore(session, Blob, ("sha256",), {"sha256": sha, "size": len(data), "data": data})
    return sha


def receive_mail(session: Session, settings: Settings, raw: SpooledMail, mail: ParsedMail) -> Received:
    """Store an inbound mail on the ticket it answers, or open a ticket and acknowledge it."""
    own = frozenset(a.lower() for a in settings.smtp.addresses)
    verdict = automatic.mail_verdict(settings, raw, mail)  # what the mail is: decided once, here
    reason = verdict.reason
    sender = sender_for(session, sender_address(raw, mail), mail.from_name)
    if not verdict.opens_ticket:  # reports, auto-replies, our own mail: join a ticket or none
        return _receive_automatic(session, settings, raw, mail, sender, verdict)
    recipients = tuple(dict.fromkeys([*filter(None, raw.envelope_to.split(",")), *mail.to, *mail.cc]))
    route = route_mail(session, settings.web.secret_key, mail, sender, recipients)
    if route.ticket is None:
        _unless_parent_spooled(session, raw, mail)
    if route.ticket is not None and not reason and _closed_too_long(route.ticket, settings.intake.reopen_days):
        route = Route(None, "new", mentions=route.ticket.id)  # a follow-up long after closing: a new ticket
    created = route.ticket is None
    ticket = route.ticket or _open_ticket(session, mail, sender, route.mentions)
    message = _store_message(session, ticket, raw, mail, sender, route.matched_by, automatic=bool(reason),
                             visible=mail.text if created else visible_reply_text(mail.text))
    _add_followers(session, ticket, mail, own, sender)
    if isinstance(ticket, Ticket):
        _reopen_on_reply(session, ticket, sender, automatic=bool(reason))
        _touch(session, ticket)
    if created or not reason:
        jobs.enqueue(session, "triage", ticket.id)  # a thread summary follows every human reply
    acknowledged = False
    if created and not reason and sender.email != UNKNOWN_SENDER:
        acknowledged = notify.queue_acknowledgement(session, settings, ticket, message, sender)
    log.info("mail %s stored on ticket %s (%s)%s", mail.message_id or "-", ticket.id, route.matched_by,
             f", automatic: {reason}" if reason else "",
             extra={"ticket_id": ticket.id, "message_id": mail.message_id, "raw_mail_id": raw.id, "door": raw.door})
    return Received(ticket.id, message.id, route.matched_by, created, acknowledged, reason)


_SPOOLED_PARENT = (select(RawMail.message_id).where(RawMail.message_id.in_(bindparam("keys", expanding=True)),
                                                   RawMail.state == "pending", RawMail.id != bindparam("self_id"))
                   .limit(1))


def _unless_parent_spooled(session: Session, raw: SpooledMail, mail: ParsedMail) -> None:
    """Raise ParentStillSpooled when a mail this one answers is in the spool, not yet stored:
    threading must not depend on the order in which mails arrive or workers finish."""
    ids = (*mail.in_reply_to, *mail.references)
    if not ids:
        return
    waiting = session.connection().execute(
        _SPOOLED_PARENT, {"keys": list(dict.fromkeys(ids)), "self_id": raw.id}).scalar()
    if waiting is not None:
        raise ParentStillSpooled(waiting)


_TOUCH = update(Ticket).where(Ticket.id == bindparam("ticket_id")).values(updated_at=bindparam("at"))


def _touch(session: Session, ticket: Ticket) -> None:
    """updated_at = now, written at once and set on the loaded ticket without making it dirty
    (a dirty ticket is flushed by the next query's autoflush: the unit of work's dearest path)."""
    now = utcnow()
    session.connection().execute(_TOUCH, {"ticket_id": ticket.id, "at": now})
    set_committed_value(ticket, "updated_at", now)


def _store_message(session: Session, ticket: Ticket | OpenedTicket, raw: SpooledMail, mail: ParsedMail,
                   sender: Sender, matched_by: str, automatic: bool, visible: str) -> StoredMessage:
    message_id = insert_row(session, Message, {
        "ticket_id": ticket.id, "kind": "mail", "direction": "in", "author_id": sender.id,
        "from_address": mail.from_address or raw.envelope_from, "subject": mail.subject,
        "message_id": mail.message_id or None, "in_reply_to": " ".join(mail.in_reply_to),
        "references": " ".join(mail.references), "body_text": mail.text, "visible_text": visible,
        "body_html": mail.html, "raw_mail_id": raw.id, "matched_by": matched_by, "automatic": automatic})
    for att in mail.attachments:
        insert_row(session, Attachment, {
            "message_id": message_id, "filename": att.filename[:500], "content_type": att.content_type[:200],
            "content_id": att.content_id, "inline": att.inline, "size": len(att.data),
            "blob_sha256": _store_blob(session, att.data)})
    if isinstance(ticket, Ticket):
        session.expire(ticket, ["messages"])  # written past the unit of work: reload the thread when asked
    return StoredMessage(message_id, mail.subject, mail.message_id or None, " ".join(mail.references))


def _receive_automatic(session: Session, settings: Settings, raw: SpooledMail, mail: ParsedMail, sender: Sender,
                       verdict: Verdict) -> Received:
    """Automatic mail (see core.automatic): stop mailing the addresses it reports dead or complaining,
    attach it to the ticket it concerns as an automatic event, never open a ticket, never answer."""
    marked = automatic.stop_mailing(session, settings, verdict)
    ticket = automatic.ticket_it_concerns(session, settings, verdict)
    if ticket is None and verdict.kind in (AUTO_REPLY, OUR_OWN_MAIL):  # they answer like people: route them so
        recipients = tuple(dict.fromkeys([*filter(None, raw.envelope_to.split(",")), *mail.to, *mail.cc]))
        ticket = route_mail(session, settings.web.secret_key, mail, sender, recipients).ticket
        if ticket is None:
            _unless_parent_spooled(session, raw, mail)
    matched_by = "bounce" if verdict.kind == DELIVERY_REPORT else verdict.kind
    if ticket is None:
        automatic.record_automatic(session, raw, mail, verdict, None, None, marked)
        log.info("%s %s (%s) matches no ticket; kept with its bytes for admins", verdict.kind,
                 mail.message_id or "-", verdict.reason, extra={"raw_mail_id": raw.id, "door": raw.door})
        return Received(None, None, matched_by, False, False, verdict.reason)
    message = _store_message(session, ticket, raw, mail, sender, matched_by, automatic=True, visible=mail.text)
    automatic.record_automatic(session, raw, mail, verdict, ticket.id, message.id, marked)
    if verdict.kind == DELIVERY_REPORT:
        session.add(Event(ticket_id=ticket.id, kind="bounce", field="recipient",
                          new_value=", ".join(verdict.failed_recipients or verdict.delayed_recipients), source="rule"))
    else:
        session.add(Event(ticket_id=ticket.id, kind="automatic", field=verdict.kind,
                          new_value="; ".join((verdict.reason, *marked)), source="rule"))
    session.flush()
    log.info("%s %s linked to ticket %s (%s); do-not-mail: %s", verdict.kind, mail.message_id or "-", ticket.id,
             verdict.reason, ", ".join(marked) or "-", extra={"ticket_id": ticket.id, "raw_mail_id": raw.id})
    return Received(ticket.id, message.id, matched_by, False, False, verdict.reason)


def _closed_too_long(ticket: Ticket, reopen_days: int) -> bool:
    """[intake] reopen_days: 0 = a reply always reopens; N = a ticket closed over N days ago stays closed."""
    return (reopen_days > 0 and ticket.status == "closed"
            and aware(ticket.updated_at) < utcnow() - timedelta(days=reopen_days))


def is_support_address(address: str, own: frozenset[str]) -> bool:
    """One of ours, plain or plus-addressed (support+anything@domain)."""
    local, _, domain = address.lower().rpartition("@")
    return address.lower() in own or f"{local.split('+', 1)[0]}@{domain}" in own


def _open_ticket(session: Session, mail: ParsedMail, requester: Sender, mentions: int | None) -> OpenedTicket:
    now = utcnow()
    reference, subject = new_reference(), mail.subject or "(no subject)"
    ticket_id = insert_row(session, Ticket, {
        "reference": reference, "subject": subject, "requester_id": requester.id, "status": "new",
        "priority": "medium", "category": "general", "created_at": now, "updated_at": now})
    insert_row(session, Event, {"ticket_id": ticket_id, "kind": "created", "source": "mail",
                                "actor_id": requester.id, "created_at": now})
    if mentions is not None:
        insert_row(session, Event, {"ticket_id": ticket_id, "kind": "mentions", "new_value": str(mentions),
                                    "source": "rule", "created_at": now})
    return OpenedTicket(ticket_id, reference, subject, requester.id)


def _add_followers(session: Session, ticket: Ticket | OpenedTicket, mail: ParsedMail, own: frozenset[str],
                   sender: Sender) -> None:
    addresses = [a for a in dict.fromkeys((*mail.to, *mail.cc)) if not is_support_address(a, own)]
    if followers.add_followers(session, ticket.id, addresses, {ticket.requester_id, sender.id}) and \
            isinstance(ticket, Ticket):
        session.expire(ticket, ["followers"])  # written past the unit of work (a few statements, any size)


def _reopen_on_reply(session: Session, ticket: Ticket, sender: Sender, automatic: bool) -> None:
    """A human reply wakes the ticket: waiting → in progress, resolved/closed → reopened."""
    if automatic or sender.role != "customer" or ticket.status not in ("waiting", "resolved", "closed"):
        return
    old = ticket.status
    ticket.status = "in_progress"
    session.add(Event(ticket_id=ticket.id, kind="status", field="status", old_value=old,
                      new_value="in_progress", source="rule", actor_id=sender.id))
