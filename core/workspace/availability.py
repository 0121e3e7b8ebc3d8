"""Who can take a new ticket: active agents who are not away, least loaded first, and among
equally loaded ones the one who got a ticket longest ago (round-robin)."""
from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from core.db import insert_or_ignore
from core.models import AgentAway, Contact, Event, utcnow


def not_away():
    """SQL condition on Contact: not marked away."""
    return Contact.id.not_in(select(AgentAway.contact_id))


def next_agent(session: Session, load) -> Contact | None:
    """The active agent (not away) with the fewest open tickets (`load`, a scalar subquery on Contact);
    ties go to whoever was assigned a ticket longest ago, so equal agents take turns."""
    last = (select(func.max(Event.created_at)).where(Event.kind == "assigned", Event.new_value == Contact.email)
            .correlate(Contact).scalar_subquery())
    return session.scalar(select(Contact).where(Contact.role == "agent", Contact.active.is_(True), not_away())
                          .order_by(load, last.asc().nulls_first(), Contact.id).limit(1))


def is_away(session: Session, agent: Contact) -> bool:
    return session.get(AgentAway, agent.id) is not None


def set_away(session: Session, agent: Contact, away: bool) -> None:
    """The agent says they are away (no new assignments) or back."""
    if away:
        insert_or_ignore(session, AgentAway, ("contact_id",), {"contact_id": agent.id, "since": utcnow()})
    else:
        session.execute(delete(AgentAway).where(AgentAway.contact_id == agent.id))
