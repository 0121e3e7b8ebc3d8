"""The queue's workspace filters (tag, customer replied), added to core.queries' ticket filter."""
from __future__ import annotations

from typing import Protocol

from sqlalchemy import Select, select

from core.models import Message, Ticket, TicketTag


class WorkspaceFilter(Protocol):
    tag: str
    replied: bool


def workspace_filters(stmt: Select, f: WorkspaceFilter) -> Select:
    """Narrow a ticket query to a tag and/or to tickets whose last message (notes aside) is inbound."""
    if f.tag:
        stmt = stmt.where(Ticket.id.in_(select(TicketTag.ticket_id).where(TicketTag.tag == f.tag.strip().lower())))
    if f.replied:
        last = (select(Message.direction).where(Message.ticket_id == Ticket.id, Message.direction != "note")
                .order_by(Message.id.desc()).limit(1).correlate(Ticket).scalar_subquery())
        stmt = stmt.where(last == "in")
    return stmt
