"""Free tags on tickets: lower-case words an agent chooses; the whole set is replaced at once."""
from __future__ import annotations

import re

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from core.accounts import InvalidInput
from core.models import Contact, Event, TicketTag, utcnow

TAG_RE = re.compile(r"^[\w][\w.:/+-]{0,47}$")
MAX_TAGS = 20


def normalise_tags(tags: list[str]) -> list[str]:
    """['VIP ', 'vip', 'needs-refund'] → ['needs-refund', 'vip']; a malformed tag is InvalidInput."""
    clean = sorted(dict.fromkeys(t.strip().lower() for t in tags if t.strip()))
    bad = [t for t in clean if not TAG_RE.match(t)]
    if bad:
        raise InvalidInput(f"a tag is one word of up to 48 letters, digits or . : / + - _ (not {', '.join(bad)})")
    if len(clean) > MAX_TAGS:
        raise InvalidInput(f"at most {MAX_TAGS} tags on a ticket")
    return clean


def tags_of(session: Session, ticket_ids: list[int]) -> dict[int, list[str]]:
    """Each ticket's tags, sorted (one query for a page of tickets)."""
    found: dict[int, list[str]] = {}
    if ticket_ids:
        for ticket_id, tag in session.execute(select(TicketTag.ticket_id, TicketTag.tag)
                                              .where(TicketTag.ticket_id.in_(ticket_ids)).order_by(TicketTag.tag)):
            found.setdefault(ticket_id, []).append(tag)
    return found


def set_tags(session: Session, ticket_id: int, tags: list[str], actor: Contact) -> bool:
    """Replace the ticket's tags with `tags` (normalised); the change is in its history. True if changed."""
    new = normalise_tags(tags)
    old = tags_of(session, [ticket_id]).get(ticket_id, [])
    if new == old:
        return False
    session.execute(delete(TicketTag).where(TicketTag.ticket_id == ticket_id))
    session.add_all(TicketTag(ticket_id=ticket_id, tag=t) for t in new)
    session.add(Event(ticket_id=ticket_id, kind="tags", field="tags", old_value=", ".join(old),
                      new_value=", ".join(new), source=actor.role, actor_id=actor.id, created_at=utcnow()))
    session.flush()
    return True


def change_tags(session: Session, ticket_id: int, actor: Contact, add: list[str], remove: list[str]) -> bool:
    """Add some tags and remove others, keeping the rest (bulk actions)."""
    current = tags_of(session, [ticket_id]).get(ticket_id, [])
    gone = set(normalise_tags(remove))
    return set_tags(session, ticket_id, [t for t in current if t not in gone] + normalise_tags(add), actor)


def known_tags(session: Session, prefix: str = "", limit: int = 50) -> list[str]:
    """Tags in use, most used first (autocomplete)."""
    stmt = select(TicketTag.tag).group_by(TicketTag.tag).order_by(func.count().desc(), TicketTag.tag).limit(limit)
    if prefix.strip():
        stmt = stmt.where(TicketTag.tag.startswith(prefix.strip().lower(), autoescape=True))
    return list(session.scalars(stmt))
