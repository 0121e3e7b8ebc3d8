"""Resolved tickets like this one, with their resolution text, to start an answer from.

A ticket is compared by its subject, summary and first message. PostgreSQL ranks resolved
tickets by full-text rank over the same three texts (subject weighted most), stored once per
resolved ticket by the triggers of migration 0012 and found through its GIN index; SQLite, the
small default, scores the overlap of this ticket's key terms with the same three texts.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import String, and_, bindparam, case, func, literal, select
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from core.ai import rules
from core.models import Message, Ticket

MAX_SIMILAR = 3
COMPARED_CHARS = 5000        # of a first message: enough to tell what it is about
QUERY_TERMS = 16             # this ticket's key terms a match may share (the most frequent ones)
SUBJECT_WEIGHT = 3           # a subject word counts as three mentions
MIN_SHARED_TERMS = 2         # on SQLite: one shared word ("printer") is not similarity yet
FILTER_TERMS = 8             # PostgreSQL: the rarest key terms that find the candidates…
MIN_FILTER_TERMS = 2         # …at least this many, however common
COMMON_SHARE = 0.01          # a term in more than 1% of resolved tickets does not find candidates
CANDIDATES = 2000            # at most this many candidates are ranked (the newest)
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
    """Lowercase words of 2+ characters that are no stop words nor numbers under 3 digits, subject
    words weighted."""
    counts = Counter(_TERM.findall(text.lower()))  # counted in C first, then the few distinct words checked
    for word, n in Counter(_TERM.findall(subject.lower())).items():
        counts[word] += SUBJECT_WEIGHT * n
    # Numbers of 3+ digits stay: an error code (E-4711 gives 4711) tells tickets apart like no word does.
    for word in [w for w in counts if len(w) < 2 or (w.isdigit() and len(w) < 3) or w in rules.STOP_WORDS]:
        del counts[word]
    return counts


def _first_message(ticket_id):
    """SQL: the visible text of a ticket's first message that is not an internal note."""
    return (select(func.coalesce(func.nullif(Message.visible_text, ""), Message.body_text))
            .where(Message.ticket_id == ticket_id, Message.direction != _NOTE)
            .order_by(Message.id).limit(1).scalar_subquery())


def ticket_text(session: Session, ticket: Ticket) -> tuple[str, str]:
    """(subject, summary + first message) of a ticket: what it is compared by."""
    first = session.scalar(select(_first_message(ticket.id))) or ""
    return ticket.subject or "", f"{ticket.summary or ''}\n{first[:COMPARED_CHARS]}"


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
    """Rank the stored documents of resolved tickets (table ticket_similar, migration 0012) by this
    ticket's key terms. Candidates are found through the GIN index by the less common of those terms
    only: a word in most tickets ("error") would make every ticket a candidate to rank."""
    shares = _term_shares(session, terms)
    by_rarity = sorted(terms, key=lambda t: shares.get(t, 0.0))
    rare = [t for t in by_rarity if shares.get(t, 0.0) <= COMMON_SHARE][:FILTER_TERMS]
    chosen = rare if len(rare) >= MIN_FILTER_TERMS else by_rarity[:MIN_FILTER_TERMS]
    # The terms are letters and digits only, so joined with | they always parse as a tsquery.
    rows = session.execute(_RANKED, {"filter": " | ".join(chosen), "rank": " | ".join(terms), "me": ticket_id,
                                     "candidates": CANDIDATES, "limit": limit}).all()
    return [SimilarTicket(r.id, r.subject, r.resolution, round(float(r.rank), 4)) for r in rows if r.rank > 0]


def _term_shares(session: Session, terms: list[str]) -> dict[str, float]:
    """The share of resolved tickets holding each term, for the terms among the most common ones
    (PostgreSQL's statistics of the documents; a term not listed there is rare)."""
    return {term: float(share) for term, share in session.execute(_COMMON_TERMS, {"terms": terms})}


# pg_stats pairs each common lexeme with its share of documents (most_common_elem_freqs holds three
# more numbers at its end, which unnest pairs with NULL lexemes: never equal to a term).
_COMMON_TERMS = sql_text("""
    SELECT u.term, u.share FROM pg_stats s,
           unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs) AS u(term, share)
     WHERE s.schemaname = current_schema() AND s.tablename = 'ticket_similar' AND s.attname = 'document'
       AND u.term = ANY(:terms)""").bindparams(bindparam("terms", type_=ARRAY(String)))
# The newest matches first when there are very many: ranking is bounded, recent resolutions preferred.
# Ranked before the join, so the few best are read from ticket by primary key (joined first, the
# planner hashed every resolved ticket: 80 ms of a 135 ms page at 100,000 tickets).
_RANKED = sql_text("""
    WITH candidate AS (
        SELECT ticket_id, document FROM ticket_similar
         WHERE document @@ to_tsquery('simple'::regconfig, :filter) AND ticket_id <> :me
         ORDER BY ticket_id DESC LIMIT :candidates),
    ranked AS (
        SELECT ticket_id, ts_rank(document, to_tsquery('simple'::regconfig, :rank)) AS rank FROM candidate
         ORDER BY rank DESC, ticket_id DESC LIMIT :limit * 4)
    SELECT t.id, t.subject, t.resolution, r.rank
      FROM ranked r JOIN ticket t ON t.id = r.ticket_id
     WHERE t.merged_into_id IS NULL AND t.status IN ('resolved', 'closed')
     ORDER BY r.rank DESC, t.id DESC LIMIT :limit""")


def _ranked_by_overlap(session: Session, ticket_id: int, mine: Counter[str], limit: int) -> list[SimilarTicket]:
    """The share of this ticket's key-term weight that a resolved ticket's subject, summary and first
    message hold (as word starts), at least two terms; computed by SQLite, most recent first on a tie."""
    terms = mine.most_common(QUERY_TERMS)
    total = sum(weight for _, weight in terms)
    texts = (select(Ticket.id, Ticket.subject, Ticket.resolution, Ticket.updated_at,
                    _padded_words(Ticket.subject + " " + Ticket.summary + " "
                                  + func.coalesce(func.substr(_first_message(Ticket.id), 1, COMPARED_CHARS), ""))
                    .label("words"))
             .where(_candidates(ticket_id)).cte("similar_texts").prefix_with("MATERIALIZED"))
    # Both steps materialized: flattened, SQLite rebuilt each ticket's words for every term, and
    # looked each term up twice (counted, then weighed); 2.4 s for 5,000 tickets against 0.1 s.
    hits = (select(texts.c.id, texts.c.subject, texts.c.resolution, texts.c.updated_at,
                   *(case((func.instr(texts.c.words, f" {term}") > 0, 1), else_=0).label(f"h{i}")
                     for i, (term, _) in enumerate(terms)))
            .cte("similar_hits").prefix_with("MATERIALIZED"))
    columns = [hits.c[f"h{i}"] for i in range(len(terms))]
    matched = sum(columns, literal(0))
    weight = sum((column * w for column, (_, w) in zip(columns, terms)), literal(0))
    scored = select(hits.c.id, hits.c.subject, hits.c.resolution, hits.c.updated_at,
                    matched.label("matched"), weight.label("weight")).subquery()
    rows = session.execute(
        select(scored.c.id, scored.c.subject, scored.c.resolution, scored.c.weight)
        .where(scored.c.matched >= min(MIN_SHARED_TERMS, len(terms)))
        .order_by(scored.c.weight.desc(), scored.c.updated_at.desc(), scored.c.id.desc()).limit(limit)).all()
    return [SimilarTicket(r.id, r.subject, r.resolution, round(r.weight / total, 4)) for r in rows]


def _padded_words(text):
    """SQL: the text lowercased (SQLite lowers ASCII letters only), lines joined, a space first, so
    ' word' finds a word's start (and its plural or other endings). Punctuation is left alone: a nested
    replace() per mark cost 110 ms of a 5,000-ticket scan, where this costs 20 ms."""
    return " " + func.lower(func.replace(text, "\n", " "))
