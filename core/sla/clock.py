"""The service-level clock of one ticket, computed from its history: pure, so it is tested with a
fixed clock. The first-response clock runs from creation until support first answers. The
resolution clock runs while the ticket is new or in progress, pauses while it is waiting, stops
when it is resolved or closed; a reopen starts a new cycle with the whole target again."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from core.sla.calendar import BusinessCalendar, add_business_time, business_time
from core.sla.policy import Targets

RUNNING = ("new", "in_progress")
PAUSED = ("waiting",)
STOPPED = ("resolved", "closed")


@dataclass(frozen=True)
class Checkpoint:
    """An instant the scheduler acts on: a target's warning (near) or breach (past due)."""
    target: str     # first_response | resolution
    stage: str      # warning | breach
    cycle: int      # the resolution clock's cycle (0 until the first reopen)
    at: datetime


@dataclass(frozen=True)
class SlaState:
    first_response_due_at: datetime
    resolution_due_at: datetime | None      # None while the clock is paused (waiting)
    first_responded_at: datetime | None
    resolved_at: datetime | None            # when the current cycle stopped; None while open
    breached: bool                           # a target was missed, in this cycle or an earlier one
    due_at: datetime | None                 # the nearest due time still to be met
    warn_at: datetime | None                # … and when it becomes near
    checkpoints: tuple[Checkpoint, ...]     # the warnings and breaches of the targets still running
    cycle: int


@dataclass
class _Cycle:
    start: datetime
    paused: timedelta = timedelta(0)
    pause_from: datetime | None = None
    stopped_at: datetime | None = None


def sla_state(cal: BusinessCalendar, t: Targets, created_at: datetime, transitions: list[tuple[datetime, str]],
              first_response_at: datetime | None, now: datetime) -> SlaState:
    """The clock of a ticket created at `created_at` whose status changed as `transitions` says
    ((when, new status), oldest first; every ticket starts as new), as seen at `now`."""
    cycle, number, late, status = _Cycle(created_at), 0, False, "new"
    for at, new in transitions:
        if new == status:
            continue
        if status in PAUSED:
            cycle.paused += business_time(cal, cycle.pause_from, at)
            cycle.pause_from = None
        if status in STOPPED:       # a reopen: the whole target again, from now
            cycle, number = _Cycle(at), number + 1
        if new in PAUSED:
            cycle.pause_from = at
        if new in STOPPED:
            cycle.stopped_at = at
            late |= _used(cal, cycle, at) > t.resolution
        status = new
    due = add_business_time(cal, cycle.start, t.resolution + cycle.paused)
    if status in RUNNING:
        late |= now > due
    elif status in PAUSED:
        late |= _used(cal, cycle, cycle.pause_from) > t.resolution
    first_due = add_business_time(cal, created_at, t.first_response)
    first_pending = first_response_at is None and status not in STOPPED
    late |= (first_response_at or cycle.stopped_at or now) > first_due
    points = []
    if first_pending:
        points += [Checkpoint("first_response", "warning", 0,
                              add_business_time(cal, created_at, t.first_response * t.warn_share)),
                   Checkpoint("first_response", "breach", 0, first_due)]
    if status in RUNNING:
        points += [Checkpoint("resolution", "warning", number,
                              add_business_time(cal, cycle.start, t.resolution * t.warn_share + cycle.paused)),
                   Checkpoint("resolution", "breach", number, due)]
    nearest = min((p for p in points if p.stage == "breach"), key=lambda p: p.at, default=None)
    warn = next((p.at for p in points if nearest and p.target == nearest.target and p.stage == "warning"), None)
    return SlaState(first_response_due_at=first_due, resolution_due_at=None if status in PAUSED else due,
                    first_responded_at=first_response_at,
                    resolved_at=cycle.stopped_at if status in STOPPED else None, breached=late,
                    due_at=nearest.at if nearest else None, warn_at=warn, checkpoints=tuple(points), cycle=number)


def _used(cal: BusinessCalendar, cycle: _Cycle, until: datetime) -> timedelta:
    """Business time the resolution clock ran in this cycle until `until` (pauses left out)."""
    return business_time(cal, cycle.start, until) - cycle.paused
