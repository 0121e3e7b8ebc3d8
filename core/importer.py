"""Import tickets from another helpdesk's JSON export (`postdesk import-json FILE`).

A record looks like {id, name, email, description, summary, imageUrl, status, resolution,
createdAt, updatedAt}. Importing is idempotent: each ticket's reference is derived from the
record's id ("IMP-…"), so a second run finds it and creates nothing. Imported tickets keep
their dates, send no mail and start no triage: they are history, not news.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from core.accounts import InvalidInput, normalise_email
from core.config import Settings
from core.errors import SenderError
from core.models import CATEGORIES, PRIORITIES, STATUSES, Event, Message, Ticket, TicketSummary
from core.tickets import contact_for

log = logging.getLogger(__name__)

REFERENCE_PREFIX = "IMP-"
_REFERENCE_ROOM = 32 - len(REFERENCE_PREFIX)   # ticket.reference is VARCHAR(32)
_PLAIN_ID = re.compile(r"^[A-Za-z0-9._-]+$")
SUBJECT_CHARS = 120


class InvalidImport(SenderError):
    """The import file or one of its records cannot be imported as it is; the message says why."""


@dataclass(frozen=True)
class RecordError:
    index: int          # position in the file, from 0
    external_id: str    # the record's id, or "" when it has none
    message: str


@dataclass
class ImportResult:
    created: list[tuple[str, int]] = field(default_factory=list)   # (external id, ticket id)
    skipped: list[str] = field(default_factory=list)               # external ids imported before
    errors: list[RecordError] = field(default_factory=list)


@dataclass(frozen=True)
class ImportRecord:
    """One record, checked and converted to the domain's values."""
    external_id: str
    name: str
    email: str
    subject: str
    description: str
    summary: str
    image_url: str
    status: str
    priority: str
    category: str
    resolution: str
    created_at: datetime
    updated_at: datetime


def read_records(text: str | bytes) -> list[dict]:
    """The records of an import file (a JSON list), or InvalidImport."""
    try:
        records = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidImport(f"not JSON: {exc}") from None
    if not isinstance(records, list):
        raise InvalidImport("the file must hold a JSON list of tickets")
    return records


def reference_for(external_id: str) -> str:
    """The ticket reference an external id maps to: the id itself when it fits, else a hash of it."""
    if len(external_id) <= _REFERENCE_ROOM and _PLAIN_ID.match(external_id):
        return REFERENCE_PREFIX + external_id
    return REFERENCE_PREFIX + hashlib.sha256(external_id.encode()).hexdigest()[:_REFERENCE_ROOM].upper()


def import_tickets(session: Session, settings: Settings, records: list[dict]) -> ImportResult:
    """Import each record in its own savepoint: a bad record is reported and the rest still land.

    The caller commits. `settings` is taken for symmetry with the other use-cases; nothing is mailed."""
    result = ImportResult()
    for index, raw in enumerate(records):
        external_id = str(raw.get("id", "")).strip() if isinstance(raw, dict) else ""
        try:
            record = parse_record(raw)
        except InvalidImport as exc:
            result.errors.append(RecordError(index, external_id, str(exc)))
            continue
        reference = reference_for(record.external_id)
        if _imported(session, reference):
            result.skipped.append(record.external_id)
            continue
        try:
            with session.begin_nested():
                ticket = _store(session, record, reference)
        except DBAPIError as exc:  # a value the database refuses, or a concurrent run was first
            if isinstance(exc, IntegrityError) and _imported(session, reference):
                result.skipped.append(record.external_id)
            else:
                result.errors.append(RecordError(index, external_id, f"refused by the database: {exc.orig}"))
            continue
        result.created.append((record.external_id, ticket.id))
        log.info("imported %s as ticket %s", record.external_id, ticket.id)
    return result


def _imported(session: Session, reference: str) -> bool:
    return session.scalar(select(Ticket.id).where(Ticket.reference == reference)) is not None


def parse_record(raw: object) -> ImportRecord:
    """Check one record and convert it; InvalidImport names the first problem."""
    if not isinstance(raw, dict):
        raise InvalidImport("a record must be a JSON object")
    external_id = _text(raw, "id", required=True)
    try:
        email = normalise_email(_text(raw, "email", required=True))
    except InvalidInput as exc:
        raise InvalidImport(str(exc)) from None
    description = _text(raw, "description", required=True)
    summary = _text(raw, "summary")
    created_at = _moment(raw, "createdAt")
    updated_at = _moment(raw, "updatedAt") if raw.get("updatedAt") else created_at
    return ImportRecord(
        external_id=external_id, name=_text(raw, "name")[:200], email=email,
        subject=_subject(_text(raw, "subject") or summary or description), description=description,
        summary=summary, image_url=_text(raw, "imageUrl"), status=_status(raw.get("status")),
        priority=_choice(raw, "priority", PRIORITIES, "medium"),
        category=_choice(raw, "category", CATEGORIES, "general"),
        resolution=_text(raw, "resolution"), created_at=created_at, updated_at=max(updated_at, created_at))


def _text(raw: dict, key: str, required: bool = False) -> str:
    value = raw.get(key)
    if value is None:
        value = ""
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise InvalidImport(f"{key} must be a string")
    value = str(value)
    if "\x00" in value:
        raise InvalidImport(f"{key} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidImport(f"{key} is not valid Unicode text") from None
    if required and not value.strip():
        raise InvalidImport(f"{key} is required")
    return value.strip()


def _subject(text: str) -> str:
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "(no subject)")
    return line if len(line) <= SUBJECT_CHARS else line[:SUBJECT_CHARS - 1].rstrip() + "…"


def _status(value: object) -> str:
    """'New', 'In Progress', 'Resolved', 'Closed' (and our own names) → new, in_progress, resolved, closed."""
    if value is None or value == "":
        return "new"
    key = str(value).strip().lower().replace(" ", "_").replace("-", "_")
    if key not in STATUSES:
        raise InvalidImport(f"unknown status {value!r}")
    return key


def _choice(raw: dict, key: str, allowed: tuple[str, ...], default: str) -> str:
    value = _text(raw, key).lower() or default
    if value not in allowed:
        raise InvalidImport(f"{key} must be one of {', '.join(allowed)}")
    return value


def _moment(raw: dict, key: str) -> datetime:
    text = _text(raw, key, required=True)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidImport(f"{key} is not an ISO 8601 date: {text!r}") from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _store(session: Session, record: ImportRecord, reference: str) -> Ticket:
    requester = contact_for(session, record.email, record.name)
    if record.name and not requester.name:
        requester.name = record.name
    ticket = Ticket(reference=reference, subject=record.subject, requester_id=requester.id, status=record.status,
                    priority=record.priority, category=record.category, summary=record.summary,
                    resolution=record.resolution, created_at=record.created_at, updated_at=record.updated_at)
    session.add(ticket)
    session.flush()
    text = record.description
    if record.image_url:  # a link only: the file lives with the old system and is not fetched
        text += f"\n\nImage: {record.image_url}"
    session.add(Message(ticket_id=ticket.id, kind="web", direction="in", author_id=requester.id,
                        from_address=requester.email, subject=ticket.subject, body_text=text, visible_text=text,
                        matched_by="import", created_at=record.created_at))
    if record.summary:
        session.add(TicketSummary(ticket_id=ticket.id, summary=record.summary, source="import",
                                  created_at=record.updated_at))
    session.add(Event(ticket_id=ticket.id, kind="imported", source="import", new_value=record.external_id,
                      created_at=record.created_at))
    session.flush()
    return ticket
