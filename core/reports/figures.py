"""The reports page's figures over a period [since, until): each one an aggregation in the
database (medians by window functions, on SQLite as on PostgreSQL)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import Select, case, func, or_, select
from sqlalchemy.orm import Session, aliased

from core import satisfaction
from core.models import OPEN_STATUSES, Contact, Ticket, utcnow

BACKLOG_AGES = ((timedelta(days=1), "under 1 day"), (timedelta(days=3), "1–3 days"), (timedelta(days=7), "3–7 days"),
                (timedelta(days=28), "1–4 weeks"), (None, "over 4 weeks"))
DEFAULT_DAYS = 30


@dataclass(frozen=True)
class Period:
    """Whole UTC days, `first` to `last` inclusive."""
    first: date
    last: date

    @property
    def since(self) -> datetime:
        return datetime.combine(self.first, time(0), tzinfo=timezone.utc)

    @property
    def until(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(0), tzinfo=timezone.utc)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


def period(first: date | None, last: date | None, today: date | None = None) -> Period:
    """The chosen days; by default the last 30 days up to today. ValueError when reversed or over 10 years."""
    today = today or utcnow().date()
    last = last or today
    first = first or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise ValueError("the period's first day is after its last day")
    if (last - first).days > 3660:
        raise ValueError("a period spans at most ten years")
    return Period(first, last)


@dataclass(frozen=True)
class AgentFigures:
    email: str
    assigned: int                     # opened in the period, assigned to the agent now
    solved: int                       # resolved in the period, by the agent's tickets
    median_first_response_minutes: float | None
    median_resolution_minutes: float | None


@dataclass(frozen=True)
class Report:
    period: Period
    opened: int
    per_day_average: float            # opened / period.days
    resolved: int
    sla_tickets: int                  # opened in the period, with a service level
    sla_met: int
    agents: list[AgentFigures]
    by_category: dict[str, int]
    backlog: list[tuple[str, int]]    # open tickets now, by age
    satisfaction: dict[str, int]      # good / bad answers in the period (empty until any)
    per_day: list[tuple[str, int]]    # opened per day of the period (at most the last 92 days of it)

    @property
    def sla_compliance_percent(self) -> float | None:
        return round(100 * self.sla_met / self.sla_tickets, 1) if self.sla_tickets else None


def report(session: Session, p: Period, now: datetime | None = None) -> Report:
    """Every figure of the reports page over the period."""
    now = now or utcnow()
    opened_in = Ticket.created_at.between(p.since, p.until - timedelta(microseconds=1))
    opened = session.scalar(select(func.count(Ticket.id)).where(opened_in)) or 0
    resolved = session.scalar(select(func.count(Ticket.id)).where(_resolved_in(p))) or 0
    sla_total, sla_met = session.execute(select(
        func.count(Ticket.id), func.coalesce(func.sum(case((_met(now), 1), else_=0)), 0))
        .where(opened_in, Ticket.first_response_due_at.is_not(None))).one()
    by_category = dict(session.execute(select(Ticket.category, func.count(Ticket.id)).where(opened_in)
                                       .group_by(Ticket.category)).all())
    return Report(period=p, opened=opened, per_day_average=round(opened / p.days, 2), resolved=resolved,
                  sla_tickets=sla_total, sla_met=int(sla_met), agents=_agents(session, p),
                  by_category=by_category, backlog=_backlog(session, now), satisfaction=_satisfaction(session, p),
                  per_day=_per_day(session, p))


def _resolved_in(p: Period):
    return Ticket.resolved_at.between(p.since, p.until - timedelta(microseconds=1))


def _met(now: datetime):
    """Not breached, and no pending due time already passed."""
    return (Ticket.sla_breached.is_(False)) & or_(Ticket.sla_due_at.is_(None), Ticket.sla_due_at > now)


def minutes_between(session: Session, later, earlier):
    """SQL for the minutes from `earlier` to `later` (two timestamp columns)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", later - earlier) / 60
    return (func.julianday(later) - func.julianday(earlier)) * 1440


def medians(session: Session, key, value, stmt: Select) -> dict:
    """The median of `value` per `key` over the rows of `stmt` (row_number/count windows: both databases)."""
    ranked = stmt.with_only_columns(
        key.label("k"), value.label("v"),
        func.row_number().over(partition_by=key, order_by=value).label("rn"),
        func.count().over(partition_by=key).label("n"), maintain_column_froms=True).where(value.is_not(None)).subquery()
    middle = ranked.c.rn.between((ranked.c.n + 1) // 2, (ranked.c.n + 2) // 2)
    return {k: round(float(v), 1) for k, v in session.execute(
        select(ranked.c.k, func.avg(ranked.c.v)).where(middle).group_by(ranked.c.k))}


def _agents(session: Session, p: Period) -> list[AgentFigures]:
    agent = aliased(Contact)
    staff = select(agent.id, agent.email).where(agent.role.in_(("agent", "admin")))
    people = dict(session.execute(staff).all())
    opened_in = Ticket.created_at.between(p.since, p.until - timedelta(microseconds=1))
    assigned = dict(session.execute(select(Ticket.assignee_id, func.count(Ticket.id)).where(
        opened_in, Ticket.assignee_id.is_not(None)).group_by(Ticket.assignee_id)).all())
    solved = dict(session.execute(select(Ticket.assignee_id, func.count(Ticket.id)).where(
        _resolved_in(p), Ticket.assignee_id.is_not(None)).group_by(Ticket.assignee_id)).all())
    base = select(Ticket.id).where(Ticket.assignee_id.is_not(None))
    first = medians(session, Ticket.assignee_id, minutes_between(session, Ticket.first_responded_at, Ticket.created_at),
                    base.where(opened_in))
    resolution = medians(session, Ticket.assignee_id, minutes_between(session, Ticket.resolved_at, Ticket.created_at),
                         base.where(_resolved_in(p)))
    ids = sorted(set(assigned) | set(solved) | set(first) | set(resolution), key=lambda i: people.get(i, ""))
    return [AgentFigures(people.get(i, f"#{i}"), assigned.get(i, 0), solved.get(i, 0), first.get(i), resolution.get(i))
            for i in ids]


def _backlog(session: Session, now: datetime) -> list[tuple[str, int]]:
    """Open tickets by age, youngest first (as of now, whatever the period)."""
    bucket = case(*[(Ticket.created_at > now - age, i) for i, (age, _) in enumerate(BACKLOG_AGES) if age],
                  else_=len(BACKLOG_AGES) - 1)
    counts = dict(session.execute(select(bucket, func.count(Ticket.id)).where(Ticket.status.in_(OPEN_STATUSES))
                                  .group_by(bucket)).all())
    return [(label, counts.get(i, 0)) for i, (_, label) in enumerate(BACKLOG_AGES)]


def _satisfaction(session: Session, p: Period) -> dict[str, int]:
    return satisfaction.counts(session, p.since, p.until)


MAX_CHART_DAYS = 92


def _per_day(session: Session, p: Period) -> list[tuple[str, int]]:
    """Tickets opened on each UTC day of the period (its last 92 days: a bar per day stays readable)."""
    first = max(p.first, p.last - timedelta(days=MAX_CHART_DAYS - 1))
    since = datetime.combine(first, time(0), tzinfo=timezone.utc)
    if session.get_bind().dialect.name == "postgresql":
        day = func.to_char(func.timezone("UTC", Ticket.created_at), "YYYY-MM-DD")
    else:
        day = func.strftime("%Y-%m-%d", Ticket.created_at)
    counts = dict(session.execute(select(day, func.count(Ticket.id))
                                  .where(Ticket.created_at >= since, Ticket.created_at < p.until).group_by(day)).all())
    days = [(first + timedelta(days=i)).isoformat() for i in range((p.last - first).days + 1)]
    return [(d, counts.get(d, 0)) for d in days]
