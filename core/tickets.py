"""Use-cases on tickets. Each takes a session, changes what it must and writes the mail it
causes into the outbox; the caller commits, so change and mail land together or not at all."""
from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Protocol

from sqlalchemy import bindparam, case, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from core import agent_mail, automatic, followers_from_mail, i18n, jobs, notify
from core.config import Settings
from core.db import execute_prebuilt, fetch_first, insert_or_ignore, insert_or_ignore_id, insert_row
from core.mail.classify import AUTO_REPLY, DELIVERY_REPORT, OUR_OWN_MAIL, Verdict
from core.mail.parse import ParsedMail
from core.mail.reply_text import visible_reply_text
from core.merge import merge_tickets
from core.models import Attachment, Blob, Contact, Event, Message, Ticket, aware, utcnow
from core.reference_graph import index_references, parent_in_spool, release_replies_waiting_for
from core.routing import Route, is_member, load_ticket, route_mail
from core.sender_auth import NO_VERDICT, AuthVerdict
from core.trust import Trust, sender_trust
from core.sla import tracking as sla_tracking
from core.workspace.spam import refuse_blocked_sender

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
    held_for: str = ""  # not stored yet: waits for the mail with this Message-ID, still in the spool
    unverified: str = ""  # not stored: held for an agent's approval ([intake] hold_unverified), and why


class SpooledMail(Protocol):
    """What intake needs of a spooled mail (a RawMail row, or the worker's plain copy of one)."""
    id: int
    door: str
    envelope_from: str
    envelope_to: str
    raw: bytes
    held: bool  # it waited for its original once already: it does not wait again
    approved: bool  # held as unverified, then approved by an agent


@dataclass(frozen=True)
class Sender:
    """The person a mail is from, as intake needs them (read on the session's connection: no ORM
    object, so nothing for autoflush to look at)."""
    id: int
    email: str
    name: str
    role: str
    undeliverable: bool
    language: str | None = None
    time_zone: str | None = None


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
    insert_or_ignore(session, Contact, ("email",), _new_customer(email, name))


def _new_customer(email: str, name: str) -> dict:
    return {"email": email, "name": name, "role": "customer", "active": True, "undeliverable": False}


_SENDER = select(Contact.id, Contact.email, Contact.name, Contact.role, Contact.undeliverable, Contact.language,
                 Contact.time_zone).where(
    Contact.email == bindparam("email"))


def sender_for(session: Session, email: str, name: str = "") -> Sender:
    """contact_for as a plain value: the contact with this address, created if new."""
    email = email.strip().lower()
    row = fetch_first(session, _SENDER, {"email": email})
    if row is not None:
        return Sender(*row)
    new_id = insert_or_ignore_id(session, Contact, ("email",), _new_customer(email, name))
    if new_id is not None:  # as inserted: no need to read it back
        return Sender(new_id, email, name, "customer", False, None, None)
    return Sender(*session.connection().execute(_SENDER, {"email": email}).one())  # a concurrent transaction was first


def remember_language(session: Session, sender: Sender, language: str) -> Sender:
    """A person who never chose a language keeps the one their first mail was written in."""
    session.connection().execute(_SET_LANGUAGE, {"contact_id": sender.id, "chosen": language})
    return replace(sender, language=language)


_SET_LANGUAGE = update(Contact).where(Contact.id == bindparam("contact_id"), Contact.language.is_(None)).values(
    language=bindparam("chosen"))


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


def receive_mail(session: Session, settings: Settings, raw: SpooledMail, mail: ParsedMail,
                 auth: AuthVerdict = NO_VERDICT, verdict: Verdict | None = None) -> Received:
    """Store an inbound mail on the ticket it answers, or open a ticket and acknowledge it. `verdict`
    is what automatic.mail_verdict says of it, when the caller knows already (the worker decides it
    before its write transaction)."""
    own = frozenset(a.lower() for a in settings.smtp.addresses)
    verdict = verdict or automatic.mail_verdict(settings, raw, mail)  # what the mail is: decided once
    reason = verdict.reason
    refuse_blocked_sender(session, sender_address(raw, mail))  # spam: held in quarantine, never answered
    sender = sender_for(session, sender_address(raw, mail), mail.from_name)
    if sender.language is None and not reason and (language := i18n.best_language(mail.header("Content-Language"))):
        sender = remember_language(session, sender, language)
    if not verdict.opens_ticket:  # reports, auto-replies, our own mail: join a ticket or none
        return _receive_automatic(session, settings, raw, mail, sender, verdict, auth)
    trust = Trust(True) if raw.approved else sender_trust(auth, sender.email, raw.envelope_from)
    recipients = tuple(dict.fromkeys([*filter(None, raw.envelope_to.split(",")), *mail.to, *mail.cc]))
    route = route_mail(session, settings.web.secret_key, mail, sender, recipients, trust.trusted, trust.why_not)
    if route.ticket is None and route.mentions is None and not raw.held:
        parent = parent_in_spool(session, raw.id, mail)
        if parent is not None:  # its original is still in the spool: store that first
            return Received(None, None, "held", False, False, "", held_for=parent)
    if route.refused and not trust.trusted and settings.intake.hold_unverified \
            and is_member(session, load_ticket(session, route.mentions), sender):
        return Received(None, None, "unverified", False, False, "", unverified=route.refused)
    if route.ticket is not None and not reason and _closed_too_long(route.ticket, settings.intake.reopen_days):
        route = Route(None, "new", mentions=route.ticket.id)  # a follow-up long after closing: a new ticket
    if not reason and (taken := agent_mail.take_staff_reply(
            session, settings, raw, mail, sender, route.ticket, recipients,
            authenticated=auth.dkim == "pass" and auth.from_aligned)):
        return Received(*taken, created=False, acknowledged=False, automatic="")
    created = route.ticket is None
    ticket = route.ticket or _open_ticket(session, settings, mail, sender, route.mentions)
    visible = mail.text if created else visible_reply_text(mail.text)
    message = _store_message(session, ticket, raw, mail, sender, route.matched_by, automatic=bool(reason),
                             visible=visible, auth=auth)
    index_references(session, message.id, ticket.id, mail)
    release_replies_waiting_for(session, mail.message_id)
    if route.refused:
        _note_refusal(session, ticket.id, route.mentions, route.refused)
    _unify_conversation(session, ticket, route.also, sender)
    if route.matched_by == "referenced-by" and isinstance(ticket, Ticket):
        _adopt_original_subject(session, ticket, mail.subject)
    if trust.trusted and sender.id == ticket.requester_id:
        _add_followers(session, settings, ticket, mail, own, sender)
    if isinstance(ticket, Ticket):
        if _reopen_on_reply(session, ticket, sender, automatic=bool(reason)):
            sla_tracking.refresh(session, settings, ticket)  # a reopen restarts the resolution clock
        _touch(session, ticket)
        agent_mail.notify_watchers(session, settings, ticket, sender, visible, automatic=bool(reason))
    if created or not reason:
        jobs.enqueue(session, "triage", ticket.id, fresh=created)  # a thread summary follows every human reply
    acknowledged = False
    if created and not reason and sender.email != UNKNOWN_SENDER and not auth.failed:
        acknowledged = notify.queue_acknowledgement(session, settings, ticket, message, sender, request=visible)
    log.info("mail %s stored on ticket %s (%s)%s", mail.message_id or "-", ticket.id, route.matched_by,
             f", automatic: {reason}" if reason else "",
             extra={"ticket_id": ticket.id, "message_id": mail.message_id, "raw_mail_id": raw.id, "door": raw.door})
    return Received(ticket.id, message.id, route.matched_by, created, acknowledged, reason)


_REPLY_PREFIX = re.compile(r"^\s*(re|aw|sv|vs|antw|odp|ref|fw|fwd|wg|tr)\s*(\[\d+\])?\s*:", re.IGNORECASE)


def _adopt_original_subject(session: Session, ticket: Ticket, subject: str) -> None:
    """A ticket opened by a reply ("Re: …") takes the subject of the original once that arrives."""
    if not subject or not _REPLY_PREFIX.match(ticket.subject) or _REPLY_PREFIX.match(subject):
        return
    insert_row(session, Event, {"ticket_id": ticket.id, "kind": "subject", "field": "subject",
                                "old_value": ticket.subject, "new_value": subject[:998],
                                "source": "rule", "created_at": utcnow()})
    ticket.subject = subject[:998]


def _note_refusal(session: Session, ticket_id: int, named: int | None, why: str) -> None:
    """History on both tickets: why a mail that named a ticket opened another one."""
    insert_row(session, Event, {"ticket_id": ticket_id, "kind": "not-joined", "new_value":
                                f"named ticket #{named}; {why}", "source": "rule", "created_at": utcnow()})
    if named is not None and named != ticket_id:
        insert_row(session, Event, {"ticket_id": named, "kind": "not-joined", "new_value":
                                    f"a mail naming this ticket went to #{ticket_id}: {why}", "source": "rule",
                                    "created_at": utcnow()})


def _unify_conversation(session: Session, ticket: Ticket | OpenedTicket, others: tuple[int, ...],
                        sender: Sender) -> None:
    """A mail linking tickets opened for one conversation merges the later ones into the earliest,
    but never across two requesters, and only when the sender belongs on each of them."""
    for other_id in others:
        other = load_ticket(session, other_id)
        if other is None or other.id == ticket.id or other.merged_into_id is not None:
            continue
        if other.requester_id != ticket.requester_id or not is_member(session, other, sender):
            continue
        first, later = sorted((ticket.id, other.id))
        merge_tickets(session, later, first, "one conversation (reference graph)", source="rule")


# A reply that leaves the status alone changes none of the ticket's service levels: a ticket whose
# levels were current stays current (else the SLA sweep recomputed every ticket a mail touched);
# one changed since its last check by another path stays due for the sweep.
_TOUCH = update(Ticket).where(Ticket.id == bindparam("ticket_id")).values(
    updated_at=bindparam("at"), sla_checked_at=case(
        (Ticket.sla_checked_at >= Ticket.updated_at, bindparam("at")), else_=Ticket.sla_checked_at))


def _touch(session: Session, ticket: Ticket) -> None:
    """updated_at = now, written at once and set on the loaded ticket without making it dirty
    (a dirty ticket is flushed by the next query's autoflush: the unit of work's dearest path)."""
    now = utcnow()
    execute_prebuilt(session, _TOUCH, {"ticket_id": ticket.id, "at": now})
    set_committed_value(ticket, "updated_at", now)


def _store_message(session: Session, ticket: Ticket | OpenedTicket, raw: SpooledMail, mail: ParsedMail,
                   sender: Sender, matched_by: str, automatic: bool, visible: str,
                   auth: AuthVerdict = NO_VERDICT) -> StoredMessage:
    message_id = insert_row(session, Message, {
        "ticket_id": ticket.id, "kind": "mail", "direction": "in", "author_id": sender.id,
        "from_address": mail.from_address or raw.envelope_from, "subject": mail.subject,
        "message_id": mail.message_id or None, "in_reply_to": " ".join(mail.in_reply_to),
        "references": " ".join(mail.references), "body_text": mail.text, "visible_text": visible,
        "body_html": mail.html, "raw_mail_id": raw.id, "matched_by": matched_by, "automatic": automatic,
        "auth_dkim": auth.dkim, "auth_spf": auth.spf, "auth_dmarc": auth.dmarc})
    for att in mail.attachments:
        insert_row(session, Attachment, {
            "message_id": message_id, "filename": att.filename[:500], "content_type": att.content_type[:200],
            "content_id": att.content_id, "inline": att.inline, "size": len(att.data),
            "blob_sha256": _store_blob(session, att.data)})
    if isinstance(ticket, Ticket):
        session.expire(ticket, ["messages"])  # written past the unit of work: reload the thread when asked
    return StoredMessage(message_id, mail.subject, mail.message_id or None, " ".join(mail.references))


def _receive_automatic(session: Session, settings: Settings, raw: SpooledMail, mail: ParsedMail, sender: Sender,
                       verdict: Verdict, auth: AuthVerdict = NO_VERDICT) -> Received:
    """Automatic mail (see core.automatic): stop mailing the addresses it reports dead or complaining,
    attach it to the ticket it concerns as an automatic event, never open a ticket, never answer."""
    marked = automatic.stop_mailing(session, settings, verdict)
    ticket = automatic.ticket_it_concerns(session, settings, verdict)
    if ticket is None and verdict.kind in (AUTO_REPLY, OUR_OWN_MAIL):  # they answer like people: route them so
        trust = Trust(True) if raw.approved else sender_trust(auth, sender.email, raw.envelope_from)
        recipients = tuple(dict.fromkeys([*filter(None, raw.envelope_to.split(",")), *mail.to, *mail.cc]))
        ticket = route_mail(session, settings.web.secret_key, mail, sender, recipients, trust.trusted,
                            trust.why_not).ticket
        parent = None if ticket is not None or raw.held else parent_in_spool(session, raw.id, mail)
        if parent is not None:  # the mail it answers is still in the spool: store that first
            return Received(None, None, "held", False, False, "", held_for=parent)
    matched_by = "bounce" if verdict.kind == DELIVERY_REPORT else verdict.kind
    if ticket is None:
        automatic.record_automatic(session, raw, mail, verdict, None, None, marked)
        log.info("%s %s (%s) matches no ticket; kept with its bytes for admins", verdict.kind,
                 mail.message_id or "-", verdict.reason, extra={"raw_mail_id": raw.id, "door": raw.door})
        return Received(None, None, matched_by, False, False, verdict.reason)
    message = _store_message(session, ticket, raw, mail, sender, matched_by, automatic=True, visible=mail.text,
                             auth=auth)
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


def _open_ticket(session: Session, settings: Settings, mail: ParsedMail, requester: Sender,
                 mentions: int | None) -> OpenedTicket:
    now = utcnow()
    reference, subject = new_reference(), mail.subject or "(no subject)"
    ticket_id = insert_row(session, Ticket, {
        "reference": reference, "subject": subject, "requester_id": requester.id, "status": "new",
        "priority": "medium", "category": "general", "created_at": now, "updated_at": now,
        **sla_tracking.opening_columns(session, settings, now, "medium")})  # its due times, in the same row
    insert_row(session, Event, {"ticket_id": ticket_id, "kind": "created", "source": "mail",
                                "actor_id": requester.id, "created_at": now})
    if mentions is not None:
        insert_row(session, Event, {"ticket_id": ticket_id, "kind": "mentions", "new_value": str(mentions),
                                    "source": "rule", "created_at": now})
    return OpenedTicket(ticket_id, reference, subject, requester.id)


def _add_followers(session: Session, settings: Settings, ticket: Ticket | OpenedTicket, mail: ParsedMail,
                   own: frozenset[str], sender: Sender) -> None:
    """The requester's To/Cc become followers (the caller checked the mail is trusted), up to
    [intake] max_followers; the rest are noted in the history, not added (a few statements, any size)."""
    addresses = [a for a in dict.fromkeys((*mail.to, *mail.cc)) if not is_support_address(a, own)]
    if followers_from_mail.add_followers(session, ticket.id, addresses, {ticket.requester_id, sender.id},
                                         settings.intake.max_followers) and isinstance(ticket, Ticket):
        session.expire(ticket, ["followers"])  # written past the unit of work


def _reopen_on_reply(session: Session, ticket: Ticket, sender: Sender, automatic: bool) -> bool:
    """A human reply wakes the ticket: waiting → in progress, resolved/closed → reopened (True)."""
    if automatic or sender.role != "customer" or ticket.status not in ("waiting", "resolved", "closed"):
        return False
    old = ticket.status
    ticket.status = "in_progress"
    session.add(Event(ticket_id=ticket.id, kind="status", field="status", old_value=old,
                      new_value="in_progress", source="rule", actor_id=sender.id))
    return True
