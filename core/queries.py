"""Read side for the portal and the API: who may see a ticket, filtered lists, statistics.
Every figure is computed by the database (aggregation), never by looping over rows in Python."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Select, String, any_, case, cast, func, or_, select
from sqlalchemy.orm import Session, aliased, selectinload

from core.mail.tokens import hash_link_token
from core.models import (OPEN_STATUSES, AccessLink, Contact, Follower, Message, Ticket, TicketSkill, utcnow)

SORTS = {"created": Ticket.created_at, "updated": Ticket.updated_at, "id": Ticket.id, "priority": Ticket.priority,
         "status": Ticket.status, "subject": Ticket.subject}
PRIORITY_RANK = case({"low": 0, "medium": 1, "high": 2, "critical": 3}, value=Ticket.priority)


def visible_ticket(session: Session, user: Contact, ticket_id: int) -> Ticket | None:
    """The ticket when this person may see it (staff: any; customers: their own or followed), else None."""
    ticket = session.scalar(select(Ticket).where(Ticket.id == ticket_id).options(
        selectinload(Ticket.messages).selectinload(Message.attachments)))
    if ticket is None or user.role in ("agent", "admin") or ticket.requester_id == user.id:
        return ticket
    return ticket if session.get(Follower, (ticket.id, user.id)) is not None else None


def access_link(session: Session, token: str) -> AccessLink | None:
    """The portal link a token names, whatever its state: an expired or revoked one too (to offer a fresh one)."""
    return session.scalar(select(AccessLink).where(AccessLink.token_hash == hash_link_token(token)))


@dataclass(frozen=True)
class TicketFilter:
    status: tuple[str, ...] = ()
    priority: tuple[str, ...] = ()
    category: tuple[str, ...] = ()
    assignee: str = ""          # an email, "me" (resolved by the caller), or "none"
    skill: str = ""
    requester: str = ""         # email (substring)
    search: str = ""
    owner_id: int | None = None  # customers: only tickets they requested or follow
    sort: str = "-updated"
    page: int = 1
    per_page: int = 25
    extra: dict = field(default_factory=dict)


def _filtered(f: TicketFilter, dialect: str) -> Select:
    stmt = select(Ticket)
    if f.owner_id is not None:
        stmt = stmt.where(_owned_by(f.owner_id, dialect))
    for column, values in ((Ticket.status, f.status), (Ticket.priority, f.priority), (Ticket.category, f.category)):
        if values:
            stmt = stmt.where(column.in_(values))
    if f.assignee == "none":
        stmt = stmt.where(Ticket.assignee_id.is_(None))
    elif f.assignee:
        assignee = aliased(Contact)
        stmt = stmt.join(assignee, Ticket.assignee_id == assignee.id).where(assignee.email == f.assignee.lower())
    if f.skill:
        stmt = stmt.where(Ticket.id.in_(select(TicketSkill.ticket_id).where(TicketSkill.skill == f.skill.lower())))
    if f.requester:
        requester = aliased(Contact)
        stmt = stmt.join(requester, Ticket.requester_id == requester.id).where(
            requester.email.contains(f.requester.lower(), autoescape=True))
    if f.search.strip():
        stmt = stmt.where(_text_match(f.search.strip()))
    return stmt


def _owned_by(owner_id: int, dialect: str):
    """A customer's tickets: requested or followed."""
    followed = select(Follower.ticket_id).where(Follower.contact_id == owner_id)
    if dialect == "postgresql":
        # `id IN (subquery)` inside an OR cannot use an index: PostgreSQL would read all 100,000
        # tickets for each customer's list. The followed ids as an array, read once, can.
        return or_(Ticket.requester_id == owner_id, Ticket.id == any_(func.array(followed.scalar_subquery())))
    return or_(Ticket.requester_id == owner_id, Ticket.id.in_(followed))


def _text_match(text: str):
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    like = f"%{escaped}%"
    in_body = select(Message.ticket_id).where(func.lower(Message.visible_text).like(like, escape="\\"),
                                              Message.direction != "note")
    return or_(func.lower(Ticket.subject).like(like, escape="\\"), func.lower(Ticket.summary).like(like, escape="\\"),
               Ticket.id.in_(in_body), cast(Ticket.id, String) == text.lstrip("#"))


def list_tickets(session: Session, f: TicketFilter) -> tuple[list[Ticket], int]:
    """One page of tickets matching the filter, and how many match in all."""
    return _page(session, f), _count(session, f)


@dataclass(frozen=True)
class QueuePage:
    tickets: list[Ticket]
    total: int
    per_status: dict[str, int]  # matches per status with every filter but the status


def queue_page(session: Session, f: TicketFilter) -> QueuePage:
    """The agent queue: a page, and the matches per status; the total is their sum over the chosen
    statuses, so the matches are counted once (at 100,000 tickets, each count is the slow part)."""
    per_status = counts_by(session, Ticket.status, dataclasses.replace(f, status=()))
    total = sum(n for status, n in per_status.items() if not f.status or status in f.status)
    return QueuePage(_page(session, f), total, per_status)


def _page(session: Session, f: TicketFilter) -> list[Ticket]:
    key = f.sort.lstrip("-")
    column = PRIORITY_RANK if key == "priority" else SORTS.get(key, Ticket.updated_at)
    order = column.desc() if f.sort.startswith("-") else column.asc()
    page = max(1, f.page)
    # People by a second query for the page's rows: joined to every match, they were sorted along with it.
    stmt = (_filtered(f, session.get_bind().dialect.name).order_by(order, Ticket.id.desc())
            .offset((page - 1) * f.per_page).limit(f.per_page)
            .options(selectinload(Ticket.requester), selectinload(Ticket.assignee)))
    return list(session.scalars(stmt).all())


def _count(session: Session, f: TicketFilter) -> int:
    stmt = _filtered(f, session.get_bind().dialect.name).with_only_columns(func.count(), maintain_column_froms=True)
    return session.scalar(stmt) or 0


def counts_by(session: Session, column, f: TicketFilter | None = None) -> dict[str, int]:
    stmt = _filtered(f or TicketFilter(), session.get_bind().dialect.name)
    rows = session.execute(stmt.with_only_columns(column, func.count(), maintain_column_froms=True).group_by(column))
    return {k or "": v for k, v in rows.all()}


def last_support_message(session: Session, ticket_ids: list[int]) -> dict[int, Message]:
    """For a page of tickets: the newest message from support on each (one query)."""
    if not ticket_ids:
        return {}
    newest = (select(Message.ticket_id, func.max(Message.id).label("mid"))
              .where(Message.ticket_id.in_(ticket_ids), Message.direction == "out")
              .group_by(Message.ticket_id).subquery())
    rows = session.scalars(select(Message).join(newest, Message.id == newest.c.mid)).all()
    return {m.ticket_id: m for m in rows}


@dataclass(frozen=True)
class Stats:
    total: int
    open: int
    per_day_average: float
    by_status: dict[str, int]
    by_priority: dict[str, int]
    by_category: dict[str, int]
    by_assignee: dict[str, int]
    last_30_days: list[tuple[str, int]]
    median_first_response_minutes: float | None


def stats(session: Session) -> Stats:
    """The dashboard's figures, each one aggregation query."""
    total, first, last = session.execute(select(func.count(Ticket.id), func.min(Ticket.created_at),
                                                func.max(Ticket.created_at))).one()
    open_count = session.scalar(select(func.count(Ticket.id)).where(Ticket.status.in_(OPEN_STATUSES))) or 0
    days = max(1.0, (last - first).total_seconds() / 86400) if total else 1.0
    assignee = aliased(Contact)
    by_assignee = dict(session.execute(
        select(func.coalesce(assignee.email, "(unassigned)"), func.count(Ticket.id))
        .select_from(Ticket).outerjoin(assignee, Ticket.assignee_id == assignee.id)
        .group_by(assignee.email)).all())
    return Stats(total=total, open=open_count, per_day_average=round(total / days, 2),
                 by_status=counts_by(session, Ticket.status), by_priority=counts_by(session, Ticket.priority),
                 by_category=counts_by(session, Ticket.category), by_assignee=by_assignee,
                 last_30_days=_per_day(session), median_first_response_minutes=_median_first_response(session))


def _day(session: Session, column):
    if session.get_bind().dialect.name == "postgresql":  # the UTC day, whatever the server's TimeZone
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", column)


def _per_day(session: Session) -> list[tuple[str, int]]:
    since = (utcnow() - timedelta(days=29)).replace(hour=0, minute=0, second=0, microsecond=0)
    day = _day(session, Ticket.created_at)
    counts = dict(session.execute(select(day, func.count(Ticket.id)).where(Ticket.created_at >= since)
                                  .group_by(day)).all())
    return [((since + timedelta(days=i)).strftime("%Y-%m-%d"),
             counts.get((since + timedelta(days=i)).strftime("%Y-%m-%d"), 0)) for i in range(30)]


def _median_first_response(session: Session) -> float | None:
    """Median minutes from ticket creation to the first message from support."""
    first_out = (select(Message.ticket_id, func.min(Message.created_at).label("at"))
                 .where(Message.direction == "out").group_by(Message.ticket_id).subquery())
    if session.get_bind().dialect.name == "postgresql":
        minutes = func.extract("epoch", first_out.c.at - Ticket.created_at) / 60
        value = session.scalar(select(func.percentile_cont(0.5).within_group(minutes))
                               .select_from(Ticket).join(first_out, first_out.c.ticket_id == Ticket.id))
        return round(float(value), 1) if value is not None else None
    minutes = (func.julianday(first_out.c.at) - func.julianday(Ticket.created_at)) * 1440
    durations = select(minutes.label("m")).select_from(Ticket).join(
        first_out, first_out.c.ticket_id == Ticket.id).subquery()
    n = session.scalar(select(func.count()).select_from(durations)) or 0
    if not n:
        return None
    middle = select(durations.c.m).order_by(durations.c.m).offset((n - 1) // 2).limit(2 - n % 2).subquery()
    return round(float(session.scalar(select(func.avg(middle.c.m)))), 1)


