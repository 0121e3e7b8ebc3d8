"""A ticket's followers, as agents manage them: who else receives its mail and may read it."""
from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from core.accounts import InvalidInput, normalise_email
from core.db import insert_or_ignore, insert_row
from core.models import Contact, Event, Follower, Ticket, utcnow
from core.tickets import contact_for


class FollowerLimit(InvalidInput):
    """The ticket has [intake] max_followers already."""


def followers_of(session: Session, ticket_id: int) -> list[Contact]:
    return list(session.scalars(select(Contact).join(Follower, Follower.contact_id == Contact.id)
                                .where(Follower.ticket_id == ticket_id).order_by(Contact.email)))


def add_follower(session: Session, ticket: Ticket, address: str, agent: Contact, limit: int, name: str = "") -> Contact:
    """Add a person (created as a customer contact if new); the requester and staff are never followers."""
    contact = contact_for(session, normalise_email(address), name)
    if contact.id == ticket.requester_id:
        raise InvalidInput(f"{contact.email} is the requester of ticket #{ticket.id}.")
    if contact.role != "customer":
        raise InvalidInput(f"{contact.email} is staff and sees every ticket already.")
    if session.get(Follower, (ticket.id, contact.id)) is not None:
        return contact
    count = session.scalar(select(func.count()).select_from(Follower).where(Follower.ticket_id == ticket.id))
    if count >= limit:
        raise FollowerLimit(f"Ticket #{ticket.id} has {limit} followers already (the limit).")
    insert_or_ignore(session, Follower, ("ticket_id", "contact_id"), {"ticket_id": ticket.id, "contact_id": contact.id})
    _history(session, ticket.id, agent.id, "follower-added", contact.email)
    return contact


def remove_follower(session: Session, ticket: Ticket, address: str, agent: Contact) -> bool:
    """Remove a follower; False when that address does not follow the ticket."""
    contact = session.scalar(select(Contact).where(Contact.email == address.strip().lower()))
    if contact is None:
        return False
    gone = session.execute(delete(Follower).where(Follower.ticket_id == ticket.id,
                                                  Follower.contact_id == contact.id)).rowcount
    if gone:
        _history(session, ticket.id, agent.id, "follower-removed", contact.email)
    return bool(gone)


def _history(session: Session, ticket_id: int, actor_id: int, kind: str, address: str) -> None:
    insert_row(session, Event, {"ticket_id": ticket_id, "kind": kind, "field": "followers", "new_value": address,
                                "source": "agent", "actor_id": actor_id, "created_at": utcnow()})
