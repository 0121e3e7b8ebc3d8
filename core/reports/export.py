"""The ticket list as CSV, streamed: rows are read through a server-side cursor in batches and
written out as they come, so 100,000 tickets never sit in memory together."""
from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Iterator

from sqlalchemy.orm import Session, aliased, sessionmaker

from core.db import read_only
from core.models import Contact, Ticket, aware
from core.queries import TicketFilter, matching_tickets

BATCH = 1000
COLUMNS = ("id", "reference", "subject", "status", "priority", "category", "requester", "assignee", "created_at",
           "updated_at", "first_response_due_at", "resolution_due_at", "first_responded_at", "resolved_at",
           "sla_breached")
# A cell starting with one of these is a formula to a spreadsheet: a subject "=HYPERLINK(…)" must stay text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def export_rows(session: Session, f: TicketFilter) -> Iterator[tuple]:
    """The matching tickets as rows of COLUMNS, read BATCH at a time."""
    requester, assignee = aliased(Contact), aliased(Contact)
    stmt = (matching_tickets(f, session.get_bind().dialect.name)
            .join(requester, requester.id == Ticket.requester_id)
            .outerjoin(assignee, assignee.id == Ticket.assignee_id)
            .with_only_columns(Ticket.id, Ticket.reference, Ticket.subject, Ticket.status, Ticket.priority,
                               Ticket.category, requester.email, assignee.email, Ticket.created_at,
                               Ticket.updated_at, Ticket.first_response_due_at, Ticket.resolution_due_at,
                               Ticket.first_responded_at, Ticket.resolved_at, Ticket.sla_breached)
            .execution_options(yield_per=BATCH))
    yield from session.execute(stmt)


def csv_chunks(sessions: sessionmaker[Session], f: TicketFilter) -> Iterator[str]:
    """The CSV text (header first) in chunks of about BATCH rows, in a session of its own that lives
    as long as the response streams: a read-only one, which on SQLite leaves the write lock to intake."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    with sessions() as session:
        for n, row in enumerate(export_rows(read_only(session), f), 1):
            writer.writerow([_cell(v) for v in row])
            if n % BATCH == 0:
                yield _drain(buffer)
    yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return aware(value).isoformat()
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text
