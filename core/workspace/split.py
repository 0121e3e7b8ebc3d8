"""Splitting a ticket: some of its messages become a new ticket for the same requester, for a
second question asked in the same thread. Later mail answering those messages follows them."""
from __future__ import annotations

import logging

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import jobs
from core.accounts import InvalidInput
from core.db import insert_row
from core.models import Contact, Event, Message, MessageReference, Ticket, utcnow
from core.tickets import new_reference

log = logging.getLogger(__name__)


def split_ticket(session: Session, ticket: Ticket, message_ids: list[int], actor: Contact) -> int:
    """Move the chosen messages to a new ticket (same requester, category and priority); returns its id.
    At least one message stays behind; every id must be a message of this ticket."""
    chosen = sorted(set(message_ids))
    if not chosen:
        raise InvalidInput("choose at least one message to split off")
    if ticket.merged_into_id is not None:
        raise InvalidInput(f"ticket #{ticket.id} is merged into #{ticket.merged_into_id}; split that one")
    thread = dict(session.execute(select(Message.id, Message.subject).where(Message.ticket_id == ticket.id)).all())
    foreign = [str(i) for i in chosen if i not in thread]
    if foreign:
        raise InvalidInput(f"not messages of ticket #{ticket.id}: {', '.join(foreign)}")
    if len(chosen) == len(thread):
        raise InvalidInput("at least one message must stay on the ticket")
    now = utcnow()
    subject = (thread[chosen[0]] or "").strip() or ticket.subject
    new_id = insert_row(session, Ticket, {
        "reference": new_reference(), "subject": subject[:998], "requester_id": ticket.requester_id,
        "status": "new", "priority": ticket.priority, "category": ticket.category, "created_at": now,
        "updated_at": now})
    conn = session.connection()
    conn.execute(update(Message).where(Message.id.in_(chosen)).values(ticket_id=new_id)
                 .execution_options(synchronize_session=False))
    conn.execute(update(MessageReference).where(MessageReference.message_id.in_(chosen))
                 .values(ticket_id=new_id).execution_options(synchronize_session=False))
    for ticket_id, kind, said in ((new_id, "split_from", f"from #{ticket.id}"),
                                  (ticket.id, "split_to", f"#{new_id}")):
        insert_row(session, Event, {"ticket_id": ticket_id, "kind": kind, "new_value": f"{said}: {len(chosen)} "
                                    "message(s)", "source": actor.role, "actor_id": actor.id, "created_at": now})
    conn.execute(update(Ticket).where(Ticket.id == ticket.id).values(updated_at=now)
                 .execution_options(synchronize_session=False))
    for ticket_id in (new_id, ticket.id):   # both threads changed: their summaries are written anew
        jobs.enqueue(session, "triage", ticket_id)
    session.expire_all()  # rows changed past the unit of work
    log.info("ticket %s split: %s messages to new ticket %s by %s", ticket.id, len(chosen), new_id, actor.id,
             extra={"ticket_id": new_id})
    return new_id
