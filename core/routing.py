"""Which ticket does a parsed mail belong to? Returns a Route; rules in order of trust.

1. the signed reply address (bound to the sender's address),
2. the reference graph: a stored message it names (In-Reply-To, then References), a stored
   message that names *it* (its reply came first: `referenced-by`), or a stored message naming
   the same ancestor (a sibling reply whose parent we have not seen: `shared-reference`),
3. a subject tag [#N].
Rules 2 and 3 grant a place on a ticket only to its requester, a follower or staff, and only
for a mail whose sender is not in doubt (see core/trust.py); anyone else opens a new ticket
linked to the one the mail names.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, lazyload

from core.db import fetch_all
from core.mail import tokens
from core.mail.parse import ParsedMail
from core.merge import final_ticket_id
from core.models import Follower, Message, MessageReference, Ticket

TAG_RE = re.compile(r"\[#(\d{1,12})\]")
STAFF = ("agent", "admin")


class Person(Protocol):
    """Who a mail is from, as routing needs them (a Contact, or intake's Sender)."""
    id: int
    email: str
    role: str


@dataclass(frozen=True)
class Route:
    ticket: Ticket | None
    matched_by: str  # reply-address | in-reply-to | references | referenced-by | shared-reference | subject-tag | new
    mentions: int | None = None  # the ticket a mail named but may not join: the new ticket is linked to it
    also: tuple[int, ...] = ()  # other tickets the reference graph links this mail to (split conversations)
    refused: str = ""  # why a named ticket was not joined ('' when it was, or none was named)
    candidates: tuple[int, ...] = field(default=(), repr=False)


_TICKET = select(Ticket).where(Ticket.id == bindparam("ticket_id")).options(lazyload(Ticket.requester))
_TICKET_OF_MSGID = (select(Message.ticket_id).where(Message.message_id == bindparam("msgid"))
                    .order_by(Message.id).limit(1))
_TICKETS_OF_MSGIDS = (select(Message.message_id, Message.ticket_id)
                      .where(Message.message_id.in_(bindparam("msgids", expanding=True))).order_by(Message.id))
_REFERENCED_BY = (select(MessageReference.ticket_id).where(MessageReference.ref == bindparam("msgid"),
                                                           MessageReference.kind != "self")
                  .order_by(MessageReference.ticket_id).limit(5))
_SHARING = (select(MessageReference.ticket_id).where(MessageReference.ref.in_(bindparam("refs", expanding=True)),
                                                     MessageReference.kind != "self")
            .order_by(MessageReference.ticket_id).limit(5))


def route_mail(session: Session, secret: str, mail: ParsedMail, sender: Person,
               recipients: tuple[str, ...], trusted: bool = True, why_not: str = "") -> Route:
    """Decide the ticket. `trusted`: the sender's address is not in doubt (`why_not` says why it is)."""
    for address in recipients:
        ticket_id = tokens.verify_reply_address(secret, address, sender.email)
        ticket = load_ticket(session, ticket_id) if ticket_id else None
        if ticket is not None:
            return Route(ticket, "reply-address")
    found = graph_tickets(session, secret, mail)
    if found:
        (target_id, matched_by), others = found[0], tuple(t for t, _ in found[1:])
        return _admit(session, load_ticket(session, target_id), matched_by, sender, trusted, why_not, others)
    tag = TAG_RE.search(mail.subject)
    if tag:
        ticket = load_ticket(session, int(tag.group(1)))
        if ticket is not None:
            return _admit(session, ticket, "subject-tag", sender, trusted, why_not, ())
    return Route(None, "new")


def _admit(session: Session, ticket: Ticket, matched_by: str, sender: Person, trusted: bool, why_not: str,
           others: tuple[int, ...]) -> Route:
    """The ticket a mail named, if its sender may write there; else a new ticket linked to it."""
    if not is_member(session, ticket, sender):
        return Route(None, "new", mentions=ticket.id, refused=f"{sender.email} is not on ticket #{ticket.id}")
    if not trusted:
        return Route(None, "new", mentions=ticket.id, refused=f"unverified sender {sender.email}: {why_not}")
    return Route(ticket, matched_by, also=others)


def graph_tickets(session: Session, secret: str, mail: ParsedMail) -> list[tuple[int, str]]:
    """Every ticket the reference graph links this mail to, earliest ticket first, each with the
    rule that found it (merged tickets resolved to the ticket they continue on)."""
    found: dict[int, str] = {}
    looked_up: set[int] = set()

    def add(ticket_id: int | None, rule: str) -> None:
        if ticket_id and ticket_id not in looked_up:  # the same ticket named again: asked once
            looked_up.add(ticket_id)
            found.setdefault(final_ticket_id(session, ticket_id), rule)

    conn = session.connection()
    theirs = [m for m in dict.fromkeys((*mail.in_reply_to, *reversed(mail.references))) if not _looks_ours(m)]
    stored: dict[str, int] = {}
    if theirs:  # every named Message-ID in one look-up, not one each (a long thread names dozens)
        for msgid, ticket_id in fetch_all(conn, _TICKETS_OF_MSGIDS, {"msgids": theirs[:500]}):
            stored.setdefault(msgid, ticket_id)
    for rule, ids in (("in-reply-to", mail.in_reply_to), ("references", tuple(reversed(mail.references)))):
        for msgid in ids:
            add(tokens.ticket_of_message_id(secret, msgid) if _looks_ours(msgid) else stored.get(msgid), rule)
    if mail.message_id:
        for (ticket_id,) in fetch_all(conn, _REFERENCED_BY, {"msgid": mail.message_id}):
            add(ticket_id, "referenced-by")
    named = [m for m in dict.fromkeys((*mail.in_reply_to, *mail.references)) if not _looks_ours(m)]
    if named:
        for (ticket_id,) in fetch_all(conn, _SHARING, {"refs": named[:100]}):
            add(ticket_id, "shared-reference")
    return sorted(found.items())


def load_ticket(session: Session, ticket_id: int) -> Ticket | None:
    """The ticket (from the session when it is there already), its requester loaded only if used;
    a merged ticket's mail lands on the ticket it was merged into."""
    ticket = session.execute(_TICKET, {"ticket_id": ticket_id}).scalar()
    if ticket is not None and ticket.merged_into_id is not None:
        ticket = session.execute(_TICKET, {"ticket_id": final_ticket_id(session, ticket_id)}).scalar()
    return ticket


def _looks_ours(msgid: str) -> bool:
    return msgid.lower().startswith("pd.")


def ticket_id_of_msgid(session: Session, secret: str, msgid: str) -> int | None:
    """The ticket a Message-ID belongs to: ours only by a valid signature, others by what we stored."""
    if _looks_ours(msgid):
        # Looks like ours: trust only a valid signature, never a database look-up.
        return tokens.ticket_of_message_id(secret, msgid)
    return session.connection().execute(_TICKET_OF_MSGID, {"msgid": msgid}).scalar()


def ticket_of_msgid(session: Session, secret: str, msgid: str) -> Ticket | None:
    """The ticket of ticket_id_of_msgid, loaded (the one it continues on when it was merged)."""
    ticket_id = ticket_id_of_msgid(session, secret, msgid)
    return load_ticket(session, ticket_id) if ticket_id else None


def is_member(session: Session, ticket: Ticket, sender: Person) -> bool:
    """The requester, a follower or staff: who may add to a ticket by naming it."""
    if sender.id == ticket.requester_id or sender.role in STAFF:
        return True
    return session.get(Follower, (ticket.id, sender.id)) is not None


def may_use_tag(session: Session, ticket: Ticket, sender: Person) -> bool:
    """A subject tag is trusted only from the requester, a follower or staff."""
    return is_member(session, ticket, sender)
