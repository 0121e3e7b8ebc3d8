"""Resolved tickets like this one, with their resolution text, to start an answer from.

A ticket is compared by its subject, summary and first message. PostgreSQL ranks resolved
tickets by full-text rank over the same three texts (subject weighted most), after the GIN index
of ticket_search (migration 0005) has found the tickets sharing any of this one's key terms;
SQLite, the small default, scores the term overlap of the most recently resolved tickets.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import Float, and_, cast, func, literal_column, select
from sqlalchemy.orm import Session

from core.ai import rules
from core.models import Message, Ticket
from core.queries import SEARCH_CONFIG, TICKET_SEARCH

MAX_SIMILAR = 3
QUERY_TERMS = 16             # this ticket's key terms a match may share (the most frequent ones)
SUBJECT_WEIGHT = 3           # a subject word counts as three mentions
SQLITE_CANDIDATES = 2000     # the most recently updated resolved tickets compared on SQLite
MIN_SHARED_TERMS = 2         # on SQLite: one shared word ("printer") is not similarity yet
RESOLVED = ("resolved", "closed")
_TERM = re.compile(r"[^\W_]+")
_NOTE = "note"


@dataclass(frozen=True)
class SimilarTicket:
    """A resolved ticket like the one in hand; score: higher is more alike (comparable within one list)."""

    id: int
    subject: str
    resolution: str
    score: float


def key_terms(text: str, subject: str = "") -> Counter[str]:
    """Lowercase words of 2+ letters that are no stop words nor bare numbers, subject words weighted."""
    counts: Counter[str] = Counter()
    for source, weight in ((text, 1), (subject, SUBJECT_WEIGHT)):
        for word in _TERM.findall(source.lower()):
            if len(word) > 1 and not word.isdigit() and word not in rules.STOP_WORDS:
                counts[word] += weight
    return counts


def _first_message(ticket_id):
    """SQL: the visible text of a ticket's first message that is not an internal note."""
    return (select(func.coalesce(func.nullif(Message.visible_text, ""), Message.body_text))
            .where(Message.ticket_id == ticket_id, Message.direction != _NOTE)
            .order_by(Message.id).limit(1).scalar_subquery())


def ticket_text(session: Session, ticket: Ticket) -> tuple[str, str]:
    """(subject, summary + first message) of a ticket: what it is compared by."""
    first = session.scalar(select(_first_message(ticket.id))) or ""
    return ticket.subject or "", f"{ticket.summary or ''}\n{first[:20_000]}"


def similar_resolved(session: Session, ticket: Ticket, limit: int = MAX_SIMILAR) -> list[SimilarTicket]:
    """Up to `limit` resolved (or closed) tickets with a resolution, most similar first; never itself."""
    subject, text = ticket_text(session, ticket)
    terms = [t for t, _ in key_terms(text, subject).most_common(QUERY_TERMS)]
    if not terms:
        return []
    if session.get_bind().dialect.name == "postgresql":
        return _ranked_by_postgresql(session, ticket.id, terms, limit)
    return _ranked_by_overlap(session, ticket.id, key_terms(text, subject), limit)


def _candidates(ticket_id: int):
    return and_(Ticket.id != ticket_id, Ticket.status.in_(RESOLVED), func.length(func.trim(Ticket.resolution)) > 0,
                Ticket.merged_into_id.is_(None))


def _ranked_by_postgresql(session: Session, ticket_id: int, terms: list[str], limit: int) -> list[SimilarTicket]:
    # The terms are letters and digits only, so joined with | they always parse as a tsquery.
    query = func.to_tsquery(SEARCH_CONFIG, " | ".join(terms))
    document = (func.setweight(func.to_tsvector(SEARCH_CONFIG, Ticket.subject), literal_column("'A'"))
                .op("||")(func.setweight(func.to_tsvector(SEARCH_CONFIG, Ticket.summary), literal_column("'B'")))
                .op("||")(func.to_tsvector(SEARCH_CONFIG, func.left(func.coalesce(_first_message(Ticket.id), ""),
                                                                    100_000))))
    rank = cast(func.ts_rank(document, query), Float).label("rank")
    sharing = select(TICKET_SEARCH.c.ticket_id).where(TICKET_SEARCH.c.document.bool_op("@@")(query))
    ranked = (select(Ticket.id, Ticket.subject, Ticket.resolution, rank)
              .where(_candidates(ticket_id), Ticket.id.in_(sharing)).subquery())
    rows = session.execute(select(ranked).where(ranked.c.rank > 0)
                           .order_by(ranked.c.rank.desc(), ranked.c.id.desc()).limit(limit)).all()
    return [SimilarTicket(r.id, r.subject, r.resolution, round(float(r.rank), 4)) for r in rows]


def _ranked_by_overlap(session: Session, ticket_id: int, mine: Counter[str], limit: int) -> list[SimilarTicket]:
    """Cosine of the two tickets' term sets, the shared terms weighted by this ticket's counts."""
    rows = session.execute(
        select(Ticket.id, Ticket.subject, Ticket.summary, Ticket.resolution, _first_message(Ticket.id))
        .where(_candidates(ticket_id)).order_by(Ticket.updated_at.desc(), Ticket.id.desc())
        .limit(SQLITE_CANDIDATES)).all()
    norm = math.sqrt(sum(c * c for c in mine.values()))
    found = []
    for tid, subject, summary, resolution, first in rows:
        theirs = key_terms(f"{summary}\n{(first or '')[:20_000]}", subject)
        shared = mine.keys() & theirs.keys()
        if len(shared) < min(MIN_SHARED_TERMS, len(mine)):
            continue
        score = sum(mine[t] * theirs[t] for t in shared) / (norm * math.sqrt(sum(c * c for c in theirs.values())))
        found.append(SimilarTicket(tid, subject, resolution, round(score, 4)))
    found.sort(key=lambda s: (-s.score, -s.id))
    return found[:limit]

