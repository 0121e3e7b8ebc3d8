"""Merging two tickets of one conversation: the source's thread continues on the target.

Used by intake when a late mail shows that two tickets were opened for one conversation, and
by agents merging by hand. The caller commits: the move and its history land together.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from core.db import fetch_scalar, insert_or_ignore, insert_row
from core.errors import SenderError
from core.models import Event, Follower, Message, MessageReference, Ticket, utcnow

log = logging.getLogger(__name__)


class MergeRefused(SenderError):
    """A merge that cannot be done: the same ticket, a ticket merged already, or a loop."""


@dataclass(frozen=True)
class Merged:
    source_id: int
    into_id: int
    moved_messages: int


_MERGED_INTO = select(Ticket.merged_into_id).where(Ticket.id == bindparam("ticket_id"))


def final_ticket_id(session: Session, ticket_id: int, limit: int = 20) -> int:
    """Follow merged_into links to the ticket a conversation continues on (bounded: never loops)."""
    seen = {ticket_id}
    for _ in range(limit):
        into = fetch_scalar(session, _MERGED_INTO, {"ticket_id": ticket_id})  # merges write it with Core: no flush
        if into is None or into in seen:
            return ticket_id
        seen.add(into)
        ticket_id = into
    return ticket_id


def merge_tickets(session: Session, source_id: int, into_id: int, reason: str, source: str = "agent",
                  actor_id: int | None = None) -> Merged:
    """Move every message of `source_id` to `into_id`, close the source as merged into the target,
    keep its requester and followers as the target's followers, and record why on both tickets."""
    if source_id == into_id:
        raise MergeRefused("A ticket cannot be merged into itself.")
    src, dst = session.get(Ticket, source_id), session.get(Ticket, into_id)
    if src is None or dst is None:
        raise MergeRefused(f"No ticket #{source_id if src is None else into_id}.")
    if src.merged_into_id is not None:
        raise MergeRefused(f"Ticket #{source_id} is already merged into #{src.merged_into_id}.")
    if final_ticket_id(session, into_id) == source_id or dst.merged_into_id is not None:
        raise MergeRefused(f"Ticket #{into_id} is merged into another ticket; merge into that one.")
    conn = session.connection()
    moved = conn.execute(update(Message).where(Message.ticket_id == source_id)
                         .values(ticket_id=into_id).execution_options(synchronize_session=False)).rowcount
    conn.execute(update(MessageReference).where(MessageReference.ticket_id == source_id)
                 .values(ticket_id=into_id).execution_options(synchronize_session=False))
    people = {src.requester_id} | set(session.execute(
        select(Follower.contact_id).where(Follower.ticket_id == source_id)).scalars())
    for contact_id in sorted(people - {dst.requester_id}):
        insert_or_ignore(session, Follower, ("ticket_id", "contact_id"),
                         {"ticket_id": into_id, "contact_id": contact_id})
    now = utcnow()
    old_status = src.status
    conn.execute(update(Ticket).where(Ticket.id == source_id).values(
        status="closed", merged_into_id=into_id, updated_at=now).execution_options(synchronize_session=False))
    conn.execute(update(Ticket).where(Ticket.id == into_id).values(updated_at=now)
                 .execution_options(synchronize_session=False))
    for ticket_id, kind, said in ((source_id, "merged_into", f"into #{into_id}"),
                                  (into_id, "merged_from", f"#{source_id} merged in")):
        insert_row(session, Event, {"ticket_id": ticket_id, "kind": kind, "new_value": f"{said}: {reason}",
                                    "source": source, "actor_id": actor_id, "created_at": now})
    if old_status != "closed":
        insert_row(session, Event, {"ticket_id": source_id, "kind": "status", "field": "status",
                                    "old_value": old_status, "new_value": "closed", "source": source,
                                    "actor_id": actor_id, "created_at": now})
    session.expire_all()  # rows changed past the unit of work: reload on next access
    log.info("ticket %s merged into %s (%s messages): %s", source_id, into_id, moved, reason,
             extra={"ticket_id": into_id})
    return Merged(source_id, into_id, moved)
