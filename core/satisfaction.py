"""Satisfaction: the resolution mail carries two signed one-click links (good, bad) for the requester;
a click records the answer without signing in (the link's page posts it: a scanner's fetch records
nothing), a later click or comment changes the same answer (one per ticket and person, however
often a link is used)."""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import i18n
from core.config import Settings
from core.db import insert_or_ignore
from core.models import Contact, Event, Satisfaction, Ticket, utcnow

log = logging.getLogger(__name__)
SCORES = ("good", "bad")
MAX_COMMENT = 5000
_TOKEN = re.compile(r"(\d{1,10})\.(\d{1,10})\.([0-9a-f]{32})")


@dataclass(frozen=True)
class Rated:
    ticket_id: int
    contact_id: int


def _sig(secret: str, ticket_id: int, contact_id: int) -> str:
    return hmac.new(secret.encode(), f"rate:{ticket_id}:{contact_id}".encode(), hashlib.sha256).hexdigest()[:32]


def rating_token(secret: str, ticket_id: int, contact_id: int) -> str:
    """The signed part of a rating link: names the ticket and the person, cannot be guessed."""
    return f"{ticket_id}.{contact_id}.{_sig(secret, ticket_id, contact_id)}"


def read_token(secret: str, token: str) -> Rated | None:
    """Whose answer on which ticket a token carries; None when it is malformed or forged."""
    found = _TOKEN.fullmatch(token)
    if not found:
        return None
    ticket_id, contact_id = int(found[1]), int(found[2])
    return Rated(ticket_id, contact_id) if hmac.compare_digest(found[3], _sig(secret, ticket_id, contact_id)) else None


def rating_links(settings: Settings, ticket: Ticket, person: Contact) -> dict[str, str]:
    token = rating_token(settings.web.secret_key, ticket.id, person.id)
    return {score: f"{settings.base_url}/rate/{token}/{score}" for score in SCORES}


def resolution_mail(settings: Settings, ticket: Ticket, person: Contact, text: str, html: str) -> tuple[str, str]:
    """The status mail's text and HTML, with the rating links when it tells the requester of a resolution."""
    if ticket.status != "resolved" or person.id != ticket.requester_id:
        return text, html
    links = rating_links(settings, ticket, person)
    lang = i18n.language_of(person)  # the lines join a mail already written in the requester's language
    ask = i18n.translate(lang, "How did we do? One click answers (no sign-in):")
    good, bad = i18n.translate(lang, "Good"), i18n.translate(lang, "Bad")
    width = max(len(good), len(bad)) + 1  # the links line up: 'Good: …' / 'Bad:  …'
    text += f"\n{ask}\n  {good + ':':<{width}} {links['good']}\n  {bad + ':':<{width}} {links['bad']}\n"
    html += f'<p>{ask} <a href="{links["good"]}">{good}</a> · <a href="{links["bad"]}">{bad}</a></p>'
    return text, html


def record(session: Session, rated: Rated, score: str, now: datetime | None = None) -> Satisfaction | None:
    """Store or change the person's answer on the ticket; None when the ticket is gone."""
    if score not in SCORES:
        raise ValueError(f"score must be one of {', '.join(SCORES)}")
    if session.get(Ticket, rated.ticket_id) is None:
        return None
    now = now or utcnow()
    insert_or_ignore(session, Satisfaction, ("ticket_id", "contact_id"), {
        "ticket_id": rated.ticket_id, "contact_id": rated.contact_id, "score": score, "comment": "",
        "created_at": now, "updated_at": now})
    answer = answer_of(session, rated)
    if answer.score != score:
        answer.score, answer.updated_at = score, now
    session.add(Event(ticket_id=rated.ticket_id, kind="satisfaction", field="score", new_value=score,
                      source="customer", actor_id=rated.contact_id))
    log.info("ticket %s: satisfaction %s", rated.ticket_id, score, extra={"ticket_id": rated.ticket_id})
    return answer


def answer_of(session: Session, rated: Rated) -> Satisfaction | None:
    """The person's answer on the ticket, if they gave one."""
    return session.scalar(select(Satisfaction).where(Satisfaction.ticket_id == rated.ticket_id,
                                                     Satisfaction.contact_id == rated.contact_id))


def add_comment(session: Session, rated: Rated, comment: str) -> Satisfaction | None:
    """The optional comment after a click; None when there is no answer to comment on."""
    answer = answer_of(session, rated)
    if answer is not None:
        answer.comment, answer.updated_at = comment.strip()[:MAX_COMMENT], utcnow()
    return answer


def of_ticket(session: Session, ticket_id: int) -> list[tuple[Satisfaction, str]]:
    """The answers on a ticket, with who gave them (the agent's ticket page)."""
    return [(a, email) for a, email in session.execute(
        select(Satisfaction, Contact.email).join(Contact, Contact.id == Satisfaction.contact_id)
        .where(Satisfaction.ticket_id == ticket_id).order_by(Satisfaction.id))]


def latest_of_tickets(session: Session, ticket_ids: list[int], contact_id: int | None = None) -> dict[int, Satisfaction]:
    """Each ticket's most recent answer (only this person's, given `contact_id`); tickets without one are left out."""
    if not ticket_ids:
        return {}
    stmt = select(Satisfaction).where(Satisfaction.ticket_id.in_(ticket_ids))
    if contact_id is not None:
        stmt = stmt.where(Satisfaction.contact_id == contact_id)
    return {a.ticket_id: a for a in session.scalars(stmt.order_by(Satisfaction.updated_at, Satisfaction.id))}


def counts(session: Session, since: datetime, until: datetime) -> dict[str, int]:
    """Answers per score given (or last changed) in [since, until)."""
    return dict(session.execute(select(Satisfaction.score, func.count(Satisfaction.id))
                                .where(Satisfaction.updated_at >= since, Satisfaction.updated_at < until)
                                .group_by(Satisfaction.score)).all())
