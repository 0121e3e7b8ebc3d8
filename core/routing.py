"""Which ticket does a parsed mail belong to? Returns (ticket, matched_by); rules in order of trust."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, lazyload

from core.mail import tokens
from core.merge import final_ticket_id
from core.mail.parse import ParsedMail
from core.models import Follower, Message, Ticket

TAG_RE = re.compile(r"\[#(\d{1,12})\]")


class Person(Protocol):
    """Who a mail is from, as routing needs them (a Contact, or intake's Sender)."""
    id: int
    email: str
    role: str


@dataclass(frozen=True)
class Route:
    ticket: Ticket | None
    matched_by: str  # reply-address | in-reply-to | references | subject-tag | new
    mentions: int | None = None  # a stranger's [#N]: the new ticket is linked to it


_TICKET = select(Ticket).where(Ticket.id == bindparam("ticket_id")).options(lazyload(Ticket.requester))
_TICKET_OF_MSGID = (select(Message.ticket_id).where(Message.message_id == bindparam("msgid"))
                    .order_by(Message.id).limit(1))


def route_mail(session: Session, secret: str, mail: ParsedMail, sender: Person,
               recipients: tuple[str, ...]) -> Route:
    """Decide the ticket: signed reply address, then In-Reply-To/References, then a trusted subject tag."""
    for address in recipients:
        ticket_id = tokens.verify_reply_address(secret, address, sender.email)
        ticket = load_ticket(session, ticket_id) if ticket_id else None
        if ticket is not None:
            return Route(ticket, "reply-address")
    for header, ids in (("in-reply-to", mail.in_reply_to), ("references", tuple(reversed(mail.references)))):
        for msgid in ids:
            ticket = ticket_of_msgid(session, secret, msgid)
            if ticket is not None:
                return Route(ticket, header)
    found = TAG_RE.search(mail.subject)
    if found:
        ticket = load_ticket(session, int(found.group(1)))
        if ticket is not None and may_use_tag(session, ticket, sender):
            return Route(ticket, "subject-tag")
        if ticket is not None:
            return Route(None, "new", mentions=ticket.id)
    return Route(None, "new")


def load_ticket(session: Session, ticket_id: int) -> Ticket | None:
    """The ticket (from the session when it is there already), its requester loaded only if used;
    a merged ticket's mail lands on the ticket it was merged into."""
    ticket = session.execute(_TICKET, {"ticket_id": ticket_id}).scalar()
    if ticket is not None and ticket.merged_into_id is not None:
        ticket = session.execute(_TICKET, {"ticket_id": final_ticket_id(session, ticket_id)}).scalar()
    return ticket


def ticket_of_msgid(session: Session, secret: str, msgid: str) -> Ticket | None:
    """The ticket a Message-ID belongs to: ours only by a valid signature, others by what we stored."""
    if msgid.lower().startswith("pd."):
        # Looks like ours: trust only a valid signature, never a database look-up.
        ticket_id = tokens.ticket_of_message_id(secret, msgid)
    else:
        ticket_id = session.connection().execute(_TICKET_OF_MSGID, {"msgid": msgid}).scalar()
    return load_ticket(session, ticket_id) if ticket_id else None


def may_use_tag(session: Session, ticket: Ticket, sender: Person) -> bool:
    """A subject tag is trusted only from the requester, a follower or staff."""
    if sender.id == ticket.requester_id or sender.role in ("agent", "admin"):
        return True
    return session.get(Follower, (ticket.id, sender.id)) is not None
