"""Spam: tickets closed as spam and their sender's address blocked. Mail from a blocked address is
kept in quarantine (never answered, never a ticket) until an admin unblocks it."""
from __future__ import annotations

import logging

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from core.db import in_transaction_memo, insert_or_ignore
from core.errors import SenderError
from core.models import BlockedSender, Contact, Event, RawMail, Ticket, utcnow

log = logging.getLogger(__name__)
SPAM_ERROR = "spam: blocked sender "


class BlockedSenderMail(SenderError):
    """A mail from a blocked address: the worker quarantines it (SenderError) and never answers it."""


class SpamRefused(SenderError):
    """The ticket's requester cannot be blocked (one of the staff)."""


_BLOCKED = select(BlockedSender.email).where(BlockedSender.email == bindparam("email"))
_BLOCKED_AMONG = select(BlockedSender.email).where(BlockedSender.email.in_(bindparam("emails", expanding=True)))


def look_up_blocked(session: Session, addresses: list[str]) -> None:
    """Ask once which of these addresses are blocked, for the rest of the transaction (intake asks
    for a whole batch of mail before storing it; blocking happens in other transactions)."""
    wanted = sorted({a.strip().lower() for a in addresses if a.strip()})
    if not wanted:
        return
    blocked = set(session.connection().execute(_BLOCKED_AMONG, {"emails": wanted}).scalars())
    in_transaction_memo(session)["blocked_senders"] = (frozenset(wanted), blocked)


def refuse_blocked_sender(session: Session, address: str) -> None:
    """Raise BlockedSenderMail when the address is blocked (intake calls this before anything is stored)."""
    address = address.strip().lower()
    if not address:
        return
    asked, blocked = in_transaction_memo(session).get("blocked_senders", (frozenset(), set()))
    if address in blocked or address not in asked and \
            session.connection().execute(_BLOCKED, {"email": address}).first() is not None:
        raise BlockedSenderMail(f"{SPAM_ERROR}{address}")


def mark_spam(session: Session, ticket: Ticket, actor: Contact) -> str:
    """Close the ticket as spam and block its requester's address; returns the blocked address."""
    requester = session.get(Contact, ticket.requester_id)
    if requester is None or requester.role != "customer":
        raise SpamRefused("a ticket opened by staff cannot be marked as spam")
    insert_or_ignore(session, BlockedSender, ("email",), {
        "email": requester.email, "reason": f"ticket #{ticket.id} marked as spam", "blocked_by_id": actor.id,
        "created_at": utcnow()})
    old = ticket.status
    ticket.status, ticket.updated_at = "closed", utcnow()
    session.add(Event(ticket_id=ticket.id, kind="spam", field="requester", new_value=requester.email,
                      source=actor.role, actor_id=actor.id))
    if old != "closed":
        session.add(Event(ticket_id=ticket.id, kind="status", field="status", old_value=old, new_value="closed",
                          source=actor.role, actor_id=actor.id))
    session.flush()
    log.info("ticket %s marked as spam by %s; %s blocked", ticket.id, actor.id, requester.email,
             extra={"ticket_id": ticket.id})
    return requester.email


def blocked_senders(session: Session) -> list[BlockedSender]:
    """Every blocked address, newest first."""
    return list(session.scalars(select(BlockedSender).order_by(BlockedSender.created_at.desc(),
                                                               BlockedSender.email)))


def unblock(session: Session, address: str) -> int | None:
    """Unblock an address and put its held mail back in line; None when it was not blocked, else
    how many held mails go back to the spool."""
    blocked = session.get(BlockedSender, address.strip().lower())
    if blocked is None:
        return None
    session.delete(blocked)
    held = session.execute(update(RawMail).where(RawMail.state == "quarantined",
                                                 RawMail.last_error == f"{SPAM_ERROR}{blocked.email}")
                           .values(state="pending", attempts=0, processed_at=None)).rowcount or 0
    log.info("%s unblocked; %s held mails back in the spool", blocked.email, held)
    return held
