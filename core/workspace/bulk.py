"""One change on many tickets: each ticket in a savepoint of its own, so one refusal costs only
that ticket, and the answer says what became of each."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import workflow
from core.accounts import InvalidInput
from core.config import Settings
from core.errors import SenderError
from core.models import Contact, Ticket
from core.workspace import spam, tags

log = logging.getLogger(__name__)
MAX_BULK = 500


@dataclass(frozen=True)
class BulkChanges:
    status: str | None = None
    priority: str | None = None
    category: str | None = None
    assignee: str | None | bool = False   # False: unchanged; None or "": unassign; else an email
    add_tags: tuple[str, ...] = ()
    remove_tags: tuple[str, ...] = ()
    spam: bool = False

    def empty(self) -> bool:
        return (self.status is None and self.priority is None and self.category is None
                and self.assignee is False and not self.add_tags and not self.remove_tags and not self.spam)


@dataclass(frozen=True)
class BulkResult:
    id: int
    ok: bool
    status: int                 # the HTTP status this ticket alone would have had
    detail: str = ""
    changed: list[str] = field(default_factory=list)


def _assignee(session: Session, email: str | None) -> Contact | None:
    if not email or not email.strip():
        return None
    person = session.scalar(select(Contact).where(Contact.email == email.strip().lower()))
    if person is None or not person.active or person.role not in ("agent", "admin"):
        raise InvalidInput(f"no active agent or admin with the address {email.strip()}")
    return person


def apply_bulk(session: Session, settings: Settings, actor: Contact, ids: list[int],
               changes: BulkChanges) -> list[BulkResult]:
    """Apply the changes to each ticket (in the order given, duplicates once); the caller commits."""
    if changes.empty():
        raise InvalidInput("changes is empty: give at least one of status, priority, category, assignee, "
                           "add_tags, remove_tags, spam")
    if not ids or len(ids) > MAX_BULK:
        raise InvalidInput(f"ids: between 1 and {MAX_BULK} ticket numbers")
    tags.normalise_tags(list(changes.add_tags))       # a bad tag refuses the whole request, before any change
    tags.normalise_tags(list(changes.remove_tags))
    assignee = changes.assignee if changes.assignee is False else _assignee(session, changes.assignee)
    return [_one(session, settings, actor, ticket_id, changes, assignee) for ticket_id in dict.fromkeys(ids)]


def _one(session: Session, settings: Settings, actor: Contact, ticket_id: int, changes: BulkChanges,
         assignee: Contact | None | bool) -> BulkResult:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        return BulkResult(ticket_id, False, 404, f"No ticket #{ticket_id}.")
    try:
        with session.begin_nested():
            changed = workflow.change_fields(session, settings, ticket, actor, status=changes.status,
                                             priority=changes.priority, category=changes.category,
                                             assignee=assignee)
            if (changes.add_tags or changes.remove_tags) and tags.change_tags(
                    session, ticket_id, actor, list(changes.add_tags), list(changes.remove_tags)):
                changed.append("tags")
            if changes.spam:
                spam.mark_spam(session, ticket, actor)
                changed.append("spam")
            session.flush()
    except workflow.NotAllowed as exc:
        return BulkResult(ticket_id, False, 403, str(exc))
    except SenderError as exc:
        return BulkResult(ticket_id, False, 422, str(exc))
    log.info("bulk: ticket %s changed by %s: %s", ticket_id, actor.id, ", ".join(changed) or "nothing")
    return BulkResult(ticket_id, True, 200, "", changed)
