"""Who can take a new ticket: active agents who are not away, least loaded first, and among
equally loaded ones the one who got a ticket longest ago (round-robin)."""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import Contact, Event


def not_away():
    """SQL condition on Contact: not marked away (contact.away, set by the agent or an admin)."""
    return Contact.away.is_(False)


def next_agent(session: Session, load) -> Contact | None:
    """The active agent (not away) with the fewest open tickets (`load`, a scalar subquery on Contact);
    ties go to whoever was assigned a ticket longest ago, so equal agents take turns."""
    last = (select(func.max(Event.created_at)).where(Event.kind == "assigned", Event.new_value == Contact.email)
            .correlate(Contact).scalar_subquery())
    return session.scalar(select(Contact).where(Contact.role == "agent", Contact.active.is_(True), not_away())
                          .order_by(load, last.asc().nulls_first(), Contact.id).limit(1))


def is_away(session: Session, agent: Contact) -> bool:
    return bool(agent.away)


def set_away(session: Session, agent: Contact, away: bool) -> None:
    """The agent says they are away (no new assignments) or back."""
    agent.away = away
