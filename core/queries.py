"""Read side for the portal and the API: who may see a ticket, filtered lists, statistics.
Every figure is computed by the database (aggregation), never by looping over rows in Python."""
from __future__ import annotations

import dataclasses
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Iterator

from sqlalchemy import (Integer, Select, String, any_, case, cast, exists, func, literal, literal_column, or_, select,
                        table, union)
from sqlalchemy import text as sql_text
from sqlalchemy.engine import Engine
from sqlalchemy import column as table_column
from sqlalchemy.dialects.postgresql import TSQUERY, TSVECTOR
from sqlalchemy.orm import Session, aliased, lazyload, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from core.mail.tokens import hash_link_token
from core.models import (OPEN_STATUSES, AccessLink, Contact, Follower, Message, Ticket, TicketSkill, utcnow)
from core.workspace.filters import workspace_filters

SORTS = {"created": Ticket.created_at, "updated": Ticket.updated_at, "id": Ticket.id, "priority": Ticket.priority,
         "status": Ticket.status, "subject": Ticket.subject, "due": Ticket.sla_due_at}
PRIORITY_RANK = case({"low": 0, "medium": 1, "high": 2, "critical": 3}, value=Ticket.priority)


def visible_ticket(session: Session, user: Contact, ticket_id: int, thread: bool = True) -> Ticket | None:
    """The ticket when this person may see it (staff: any; customers: their own or followed), else None;
    `thread`: with its messages and their attachments loaded (the pages show them; the JSON reads columns)."""
    stmt = select(Ticket).where(Ticket.id == ticket_id)
    if thread:
        stmt = stmt.options(selectinload(Ticket.messages).selectinload(Message.attachments))
    ticket = session.scalar(stmt)
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
    tag: str = ""               # staff only: tickets with this tag
    replied: bool = False       # the last word on the ticket (notes aside) is the customer's


def _filtered(f: TicketFilter, dialect: str, counting: bool = False, walk: bool = False) -> Select:
    """The tickets matching the filter; `counting`: for a count, where no page bounds the rows read;
    `walk`: a search matching many tickets, tested ticket by ticket as a page walks them in order."""
    stmt = select(Ticket)
    if f.owner_id is not None:
        stmt = stmt.where(_owned_by(f.owner_id, dialect))
    for column, values in ((Ticket.status, f.status), (Ticket.priority, f.priority), (Ticket.category, f.category)):
        if values:
            stmt = stmt.where(column.in_(values))
    if f.assignee == "none":
        stmt = stmt.where(Ticket.assignee_id.is_(None))
    elif f.assignee:
        # The agent's id as a value read first, not a join: the planner can then read that agent's
        # tickets newest first from ticket(assignee_id, updated_at, id) and stop after a page.
        agent = select(Contact.id).where(Contact.email == f.assignee.lower()).scalar_subquery()
        stmt = stmt.where(Ticket.assignee_id == agent)
    if f.skill:
        stmt = stmt.where(Ticket.id.in_(select(TicketSkill.ticket_id).where(TicketSkill.skill == f.skill.lower())))
    if f.requester:
        part = _no_nul(f.requester).lower()
        if counting and dialect == "postgresql":
            # The matching people's ids first, then their tickets by ix_ticket_requester_id: joined,
            # PostgreSQL hashed all 100,000 tickets against them (13.5 ms for "example7.test", 5 ms so).
            # A page keeps the join: walking the newest tickets stops after 25 matches however many match.
            people = select(Contact.id).where(Contact.email.contains(part, autoescape=True))
            stmt = stmt.where(Ticket.requester_id == any_(func.array(people.scalar_subquery())))
        else:
            requester = aliased(Contact)
            stmt = stmt.join(requester, Ticket.requester_id == requester.id).where(
                requester.email.contains(part, autoescape=True))
    text = _no_nul(f.search).strip()[:MAX_SEARCH]
    if text:
        stmt = stmt.where(_text_match(text, dialect, walk))
    return workspace_filters(stmt, f)


def _owned_by(owner_id: int, dialect: str):
    """A customer's tickets: requested or followed."""
    followed = select(Follower.ticket_id).where(Follower.contact_id == owner_id)
    if dialect == "postgresql":
        # `id IN (subquery)` inside an OR cannot use an index: PostgreSQL would read all 100,000
        # tickets for each customer's list. The followed ids as an array, read once, can.
        return or_(Ticket.requester_id == owner_id, Ticket.id == any_(func.array(followed.scalar_subquery())))
    return or_(Ticket.requester_id == owner_id, Ticket.id.in_(followed))


MAX_SEARCH = 200          # characters of a search box that are searched for
TICKET_NUMBER = re.compile(r"#?(\d{1,9})", re.ASCII)


def _no_nul(text: str) -> str:
    """PostgreSQL text cannot hold NUL: a pasted one would end the request with an error."""
    return text.replace("\x00", "")


def _text_match(text: str, dialect: str, walk: bool = False):
    """Tickets whose subject, summary or thread (not internal notes) hold the text; `#N` is ticket N only,
    a bare number is that ticket or the number in the text."""
    number = TICKET_NUMBER.fullmatch(text)
    if number and text.startswith("#"):
        return Ticket.id == int(number.group(1))
    by_id = [select(literal(int(number.group(1)), Integer))] if number else []
    if dialect == "postgresql" and walk and not number:
        # Many matches: each ticket the page walks (newest first, by its index) is tested on its own
        # document, and the walk stops after a page (0.2 ms for "the", against 280 ms for the ids
        # of all 99,995 matching tickets sorted by date).
        return exists().where(TICKET_SEARCH.c.ticket_id == Ticket.id,
                              TICKET_SEARCH.c.document.bool_op("@@")(search_query(text)))
    if dialect == "postgresql":
        matches = [select(TICKET_SEARCH.c.ticket_id).where(TICKET_SEARCH.c.document.bool_op("@@")(search_query(text)))]
    else:  # SQLite, the small default: a scan is fast enough there
        escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        like = f"%{escaped}%"
        matches = [select(Ticket.id).where(or_(func.lower(Ticket.subject).like(like, escape="\\"),
                                               func.lower(Ticket.summary).like(like, escape="\\"))),
                   select(Message.ticket_id).where(func.lower(Message.visible_text).like(like, escape="\\"),
                                                   Message.direction != "note")]
    found = union(*matches, *by_id)
    if dialect == "postgresql":
        # The matching ids first, as an array, then the tickets by primary key: with `IN (subquery)`
        # the planner may walk every ticket newest first and test each one's document (117 ms for a
        # rare word at 100,000 tickets, against 1 ms), as it cannot know how few tickets hold a prefix.
        return Ticket.id == any_(func.array(found.scalar_subquery()))
    return Ticket.id.in_(found)


# PostgreSQL full-text search: one document per ticket (subject, summary, every message but internal
# notes), kept up to date by the triggers of migration 0005. The 'simple' configuration lowercases
# and does not stem: mail arrives in many languages, an English stemmer would mangle the others and
# drop English stop words (a search for "will" or "the" would find nothing).
TICKET_SEARCH = table("ticket_search", table_column("ticket_id", Integer), table_column("document", TSVECTOR))
SEARCH_CONFIG = literal_column("'simple'::regconfig")


def search_query(text: str):
    """The tsquery for a search box: web-search syntax ("a phrase", -word, or), never a syntax error;
    the last word also matches as a prefix while it is still being typed ("print" finds "printer")."""
    query = func.websearch_to_tsquery(SEARCH_CONFIG, text)
    if not text[-1].isalnum():
        return query
    # The tsquery's text ends with its last lexeme's closing quote: the prefix mark goes after it.
    return cast(func.regexp_replace(cast(query, String), "'$", "':*"), TSQUERY)


def list_tickets(session: Session, f: TicketFilter) -> tuple[list[Ticket], int]:
    """One page of tickets matching the filter, and how many match in all."""
    tally = _status_tally(session) if _uses_tally(f) else None
    with _search_by_index(session, f):
        if tally is not None and _status_only(f):
            total = sum(n for status, n in tally.items() if not f.status or status in f.status)
        else:
            total = _count(session, f)
        return _page(session, f, _walk_search(f, total, tally)), total


@dataclass(frozen=True)
class QueuePage:
    tickets: list[Ticket]
    total: int
    per_status: dict[str, int]  # matches per status with every filter but the status


def queue_page(session: Session, f: TicketFilter) -> QueuePage:
    """The agent queue: a page, and the matches per status; the total is their sum over the chosen
    statuses, so the matches are counted once (at 100,000 tickets, each count is the slow part)."""
    everything = dataclasses.replace(f, status=())
    tally = _status_tally(session) if _uses_tally(everything) else None
    with _search_by_index(session, f):
        per_status = tally if tally is not None and _status_only(everything) else \
            counts_by(session, Ticket.status, everything)
        total = sum(n for status, n in per_status.items() if not f.status or status in f.status)
        return QueuePage(_page(session, f, _walk_search(f, total, tally)), total, per_status)


# A ticket tested on its document costs about as much as four matches read by their ids and sorted
# (at 100,000 tickets: "the", 99,995 matches, 280 ms by ids; "refund" tested on 69 tickets, 0.3 ms).
WALK_COST = 4


@contextmanager
def _search_by_index(session: Session, f: TicketFilter) -> Iterator[None]:
    """A PostgreSQL search counts its matches through the GIN index, never by a scan of every
    document: for a word in most tickets the planner expects a scan to cost the same, but each
    document must then be decompressed and tested (216-440 ms for "the", against 22-40 ms for the
    index to hand over the same 99,995 tickets). Scans stay possible where nothing else can answer,
    so JIT, which their inflated cost would set off (44 ms to compile a 5-row read), is off too."""
    if session.get_bind().dialect.name != "postgresql" or not _no_nul(f.search).strip():
        yield
        return
    session.execute(_INDEX_ONLY_SEARCH)
    yield
    # Not after an error: the transaction is then aborted, and its LOCAL settings end with it.
    session.execute(_SETTINGS_BACK)


_INDEX_ONLY_SEARCH = sql_text("SELECT set_config('enable_seqscan', 'off', true), set_config('jit', 'off', true)")
_SETTINGS_BACK = sql_text("SELECT set_config(name, reset_val, true) FROM pg_settings "
                          "WHERE name IN ('enable_seqscan', 'jit')")


def _page(session: Session, f: TicketFilter, walk: bool = False) -> list[Ticket]:
    key = f.sort.lstrip("-")
    column = PRIORITY_RANK if key == "priority" else SORTS.get(key, Ticket.updated_at)
    order = column.desc() if f.sort.startswith("-") else column.asc()
    if key == "due":  # tickets without a pending due time last, whichever way (SQLite puts NULL first)
        order = order.nulls_last()
    page = max(1, f.page)
    dialect = session.get_bind().dialect.name
    walk = walk and key in ("updated", "created", "id")  # a sort with an index to walk
    stmt = (_filtered(f, dialect, walk=walk).order_by(order, Ticket.id.desc())
            .offset((page - 1) * f.per_page).limit(f.per_page)
            .options(lazyload(Ticket.requester), lazyload(Ticket.assignee)))
    tickets = list(session.scalars(stmt).all())
    _attach_people(session, tickets)
    return tickets


def _walk_search(f: TicketFilter, matches: int, tally: dict[str, int] | None) -> bool:
    """Whether a search's page should test tickets one by one in the sort's index order rather than
    read every match's id and sort them: when the tickets it expects to test (the matches' share of
    all tickets says how many a page needs) cost less than the matches. PostgreSQL only (the tally)."""
    if tally is None or matches == 0 or not _no_nul(f.search).strip():
        return False
    tested = max(1, f.page) * f.per_page * sum(tally.values()) / matches
    return tested * WALK_COST <= matches


def _attach_people(session: Session, tickets: list[Ticket]) -> None:
    """Requesters and assignees of a page in one query after it: joined to every match, they were
    sorted along with it; two selectin loads cost a round trip and most of the page's Python time."""
    ids = {t.requester_id for t in tickets} | {t.assignee_id for t in tickets if t.assignee_id is not None}
    people = {c.id: c for c in session.scalars(select(Contact).where(Contact.id.in_(ids)))} if ids else {}
    for t in tickets:
        set_committed_value(t, "requester", people.get(t.requester_id))
        set_committed_value(t, "assignee", people.get(t.assignee_id) if t.assignee_id is not None else None)


def _count(session: Session, f: TicketFilter) -> int:
    stmt = _filtered(f, session.get_bind().dialect.name, counting=True).with_only_columns(
        func.count(), maintain_column_froms=True)
    return session.scalar(stmt) or 0


def _uses_tally(f: TicketFilter) -> bool:
    """The tally counts a status-only filter, and says how dense a search's matches are."""
    return _status_only(f) or bool(_no_nul(f.search).strip())


def _status_only(f: TicketFilter) -> bool:
    """True when the filter chooses by status alone (or not at all): its matches are read off the tally."""
    return not (f.priority or f.category or f.assignee or f.skill or f.requester or _no_nul(f.search).strip()
                or f.owner_id is not None or f.tag or f.replied)


# PostgreSQL: tickets per status as +1/-1 rows appended by triggers (migration 0007), folded
# together by whichever reader finds more than TALLY_FOLD_AFTER of them.
STATUS_TALLY = table("ticket_status_tally", table_column("status", String), table_column("n", Integer))
TALLY_FOLD_AFTER = 500
_FOLD_TALLY = sql_text("""
    WITH gone AS (DELETE FROM ticket_status_tally RETURNING status, n)
    INSERT INTO ticket_status_tally (status, n) SELECT status, sum(n) FROM gone GROUP BY status""")


def _status_tally(session: Session) -> dict[str, int] | None:
    """Tickets per status from the tally (PostgreSQL), or None where there is none (SQLite)."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return None
    rows = session.execute(select(STATUS_TALLY.c.status, func.sum(STATUS_TALLY.c.n), func.count())
                           .group_by(STATUS_TALLY.c.status)).all()
    if sum(rows_of for _, _, rows_of in rows) > TALLY_FOLD_AFTER:
        fold_status_tally(bind)  # in a transaction of its own: this request's may be read-only or rolled back
    return {status: int(n) for status, n, _ in rows if n}


def fold_status_tally(engine: Engine) -> None:
    """Sum the tally's rows into one per status (PostgreSQL; readers do it past TALLY_FOLD_AFTER rows,
    the worker's scheduler every minute, so a quiet portal never meets a long tally). Two folds at
    once cannot double a row: the second's DELETE skips what the first deleted."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(_FOLD_TALLY)


def counts_by(session: Session, column, f: TicketFilter | None = None) -> dict[str, int]:
    stmt = _filtered(f or TicketFilter(), session.get_bind().dialect.name, counting=True)
    rows = session.execute(stmt.with_only_columns(column, func.count(), maintain_column_froms=True).group_by(column))
    return {k or "": v for k, v in rows.all()}


@dataclass(frozen=True)
class Snippet:
    text: str          # the start of what support wrote (quoted history removed where it was found)
    created_at: datetime


SNIPPET_CHARS = 200
# What a message shows, as SQL: its visible text, or the whole body when nothing was left visible
# (a reply that was all quoted history).
SHOWN_TEXT = func.coalesce(func.nullif(Message.visible_text, ""), Message.body_text)


def last_support_message(session: Session, ticket_ids: list[int]) -> dict[int, Snippet]:
    """For a page of tickets: the start of the newest message from support on each (one query, columns
    only: the list shows a line of it)."""
    if not ticket_ids:
        return {}
    newest = (select(Message.ticket_id, func.max(Message.id).label("mid"))
              .where(Message.ticket_id.in_(ticket_ids), Message.direction == "out")
              .group_by(Message.ticket_id).subquery())
    text = func.substr(SHOWN_TEXT, 1, SNIPPET_CHARS)
    rows = session.execute(select(Message.ticket_id, text, Message.created_at)
                           .join(newest, Message.id == newest.c.mid)).all()
    return {ticket_id: Snippet(body or "", created_at) for ticket_id, body, created_at in rows}


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
    total = session.scalar(select(func.count(Ticket.id))) or 0
    open_count = session.scalar(select(func.count(Ticket.id)).where(Ticket.status.in_(OPEN_STATUSES))) or 0
    assignee = aliased(Contact)
    by_assignee = dict(session.execute(
        select(func.coalesce(assignee.email, "(unassigned)"), func.count(Ticket.id))
        .select_from(Ticket).outerjoin(assignee, Ticket.assignee_id == assignee.id)
        .group_by(assignee.email)).all())
    per_day = _per_day(session)
    # Over the 30 days shown, not since the oldest ticket: an import of old tickets made the
    # all-time average read "0.11 per day" on a desk opening dozens a day.
    return Stats(total=total, open=open_count, per_day_average=round(sum(n for _, n in per_day) / len(per_day), 2),
                 by_status=counts_by(session, Ticket.status), by_priority=counts_by(session, Ticket.priority),
                 by_category=counts_by(session, Ticket.category), by_assignee=by_assignee,
                 last_30_days=per_day, median_first_response_minutes=_median_first_response(session))


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




def matching_tickets(f: TicketFilter, dialect: str) -> Select:
    """Every ticket the filter matches, in its sort order, no page (the CSV export walks them all)."""
    key = f.sort.lstrip("-")
    column = PRIORITY_RANK if key == "priority" else SORTS.get(key, Ticket.updated_at)
    order = column.desc() if f.sort.startswith("-") else column.asc()
    if key == "due":
        order = order.nulls_last()
    return _filtered(f, dialect, counting=True).order_by(order, Ticket.id.desc())
