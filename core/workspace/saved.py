"""Queue views: the built-in ones every agent has, and each agent's own saved filters."""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.accounts import InvalidInput
from core.models import OPEN_STATUSES, Contact, SavedView

_OPEN = [("status", s) for s in OPEN_STATUSES]
MAX_VIEWS = 50


@dataclass(frozen=True)
class View:
    key: str
    name: str
    query: str      # the queue's query string


BUILT_IN = (
    View("mine", "My open", urlencode([("assignee", "me"), *_OPEN])),
    View("unassigned", "Unassigned", urlencode([("assignee", "none"), *_OPEN])),
    View("replied", "Customer replied", urlencode([("replied", "1"), *_OPEN])),
    View("open", "All open", urlencode(_OPEN)),
)
# What a saved filter may hold: the queue's own parameters, nothing else.
QUEUE_KEYS = {"status", "priority", "category", "assignee", "skill", "requester", "q", "sort", "tag", "replied"}


def clean_query(query: str) -> str:
    """The queue's parameters of a query string (page and unknown keys dropped), in a stable order."""
    return urlencode([(k, v) for k, v in parse_qsl(query.lstrip("?")) if k in QUEUE_KEYS and v])


def saved_views(session: Session, agent: Contact) -> list[SavedView]:
    return list(session.scalars(select(SavedView).where(SavedView.owner_id == agent.id)
                                .order_by(SavedView.name, SavedView.id)))


def save_view(session: Session, agent: Contact, name: str, query: str) -> SavedView:
    """Save the current filter under a name (same name again replaces it)."""
    name = name.strip()[:100]
    if not name:
        raise InvalidInput("give the view a name")
    found = session.scalar(select(SavedView).where(SavedView.owner_id == agent.id, SavedView.name == name))
    if found is None:
        if len(saved_views(session, agent)) >= MAX_VIEWS:
            raise InvalidInput(f"at most {MAX_VIEWS} saved views")
        found = SavedView(owner_id=agent.id, name=name)
        session.add(found)
    found.query = clean_query(query)
    session.flush()
    return found


def delete_view(session: Session, agent: Contact, view_id: int) -> bool:
    """Remove one of the agent's own views; False when it is not theirs."""
    return bool(session.execute(delete(SavedView).where(SavedView.id == view_id,
                                                        SavedView.owner_id == agent.id)).rowcount)
