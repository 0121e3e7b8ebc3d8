"""Keeps a ticket's service-level columns in step with its history: after each change the use-case
calls refresh(); the scheduler's sweep catches tickets changed by any other path."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from core.config import Settings, SlaSettings
from core.models import OPEN_STATUSES, Event, Message, Ticket, aware, utcnow
from core.sla.clock import SlaState, sla_state
from core.sla.policy import calendar, current_policy, targets

log = logging.getLogger(__name__)
SWEEP_BATCH = 200
SWEEP_RECENT = timedelta(days=2)   # a change made by another path is caught within the sweep's period


def refresh(session: Session, settings: Settings, ticket: Ticket, now: datetime | None = None,
            policy: SlaSettings | None = None) -> SlaState | None:
    """Recompute the ticket's due times, breach flag and next check from its history (None: SLAs off)."""
    session.flush()  # the change being made is part of the history read below, stamped before `now`
    now = now or utcnow()
    policy = policy or current_policy(session, settings)
    ticket.sla_checked_at = utcnow()  # bookkeeping in real time, whatever clock `now` is
    if ticket.status != "waiting":
        ticket.waiting_until = None    # a reminder belongs to one stay in waiting
    if not policy.enabled:
        _clear(ticket)
        return None
    transitions = [(aware(at), new) for at, new in session.execute(
        select(Event.created_at, Event.new_value).where(Event.ticket_id == ticket.id, Event.kind == "status",
                                                        Event.field == "status").order_by(Event.id))]
    first_out = session.scalar(select(func.min(Message.created_at)).where(Message.ticket_id == ticket.id,
                                                                          Message.direction == "out"))
    state = sla_state(calendar(policy), targets(policy, ticket.priority), aware(ticket.created_at), transitions,
                      aware(first_out) if first_out else None, now)
    for column, value in _columns(state).items():
        setattr(ticket, column, value)
    return state


def _columns(state: SlaState) -> dict:
    """The ticket columns a computed state is kept in (next check: the earliest checkpoint, past ones
    too: the escalation job skips what it sent already and moves it forward)."""
    return {"first_response_due_at": state.first_response_due_at, "resolution_due_at": state.resolution_due_at,
            "first_responded_at": state.first_responded_at, "resolved_at": state.resolved_at,
            "sla_breached": state.breached, "sla_due_at": state.due_at, "sla_warn_at": state.warn_at,
            "sla_checked_at": utcnow(), "sla_next_check_at": min((p.at for p in state.checkpoints), default=None)}


def opening_columns(session: Session, settings: Settings, created_at: datetime, priority: str) -> dict:
    """The service-level columns of a ticket intake is about to open (status new, nothing answered
    yet), to be written by its INSERT: on the path of every new mail, without another statement."""
    policy = current_policy(session, settings)
    if not policy.enabled:
        return {}
    state = sla_state(calendar(policy), targets(policy, priority), aware(created_at), [], None, utcnow())
    return _columns(state)


def _clear(ticket: Ticket) -> None:
    for column in ("first_response_due_at", "resolution_due_at", "sla_due_at", "sla_warn_at", "sla_next_check_at"):
        setattr(ticket, column, None)
    ticket.sla_breached = False


def sweep(session: Session, settings: Settings, now: datetime | None = None) -> int:
    """Refresh a batch of tickets never computed, or changed since (recently); returns how many."""
    now = now or utcnow()
    policy = current_policy(session, settings)
    stale = select(Ticket).where(or_(
        Ticket.sla_checked_at.is_(None),
        (Ticket.updated_at >= now - SWEEP_RECENT) & (Ticket.sla_checked_at < Ticket.updated_at)))
    tickets = list(session.scalars(stale.order_by(Ticket.id).limit(SWEEP_BATCH)))
    for ticket in tickets:
        refresh(session, settings, ticket, now, policy)
    return len(tickets)


def recompute_open(session: Session) -> None:
    """Mark every open ticket for the sweep (the policy changed): its due times follow the new one."""
    session.execute(Ticket.__table__.update().where(Ticket.status.in_(OPEN_STATUSES)).values(sla_checked_at=None))


def live_breach(ticket: Ticket, now: datetime | None = None) -> bool:
    """Missed already, or the nearest due time passed since the last refresh."""
    return bool(ticket.sla_breached or (ticket.sla_due_at is not None and aware(ticket.sla_due_at) <= (now or utcnow())))


def urgency(ticket: Ticket, now: datetime | None = None) -> str:
    """'past' (due time passed), 'near' (past the warning share of its target), or '' — the queue's highlight."""
    now = now or utcnow()
    if ticket.sla_due_at is None or ticket.status not in OPEN_STATUSES:
        return ""
    if aware(ticket.sla_due_at) <= now:
        return "past"
    return "near" if ticket.sla_warn_at is not None and aware(ticket.sla_warn_at) <= now else ""


def due_label(ticket: Ticket, now: datetime | None = None) -> str:
    """The queue's words for the nearest due time: 'overdue by 3 h', 'in 45 min', 'paused' or ''."""
    now = now or utcnow()
    if ticket.status == "waiting" and ticket.first_response_due_at is not None and ticket.sla_due_at is None:
        return "paused"
    if ticket.sla_due_at is None or ticket.status not in OPEN_STATUSES:
        return ""
    left = aware(ticket.sla_due_at) - now
    return f"overdue by {_span(-left)}" if left <= timedelta(0) else f"in {_span(left)}"


def _span(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    if minutes < 90:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // 1440} days"


@dataclass(frozen=True)
class SlaView:
    """What a page needs to show tickets' due times as of one instant."""
    now: datetime

    def urgency(self, ticket: Ticket) -> str:
        return urgency(ticket, self.now)

    def label(self, ticket: Ticket) -> str:
        return due_label(ticket, self.now)

    def due(self, ticket: Ticket) -> str:
        return aware(ticket.sla_due_at).strftime("%Y-%m-%d %H:%M UTC") if ticket.sla_due_at else ""


def sla_view(now: datetime) -> SlaView:
    return SlaView(now)
