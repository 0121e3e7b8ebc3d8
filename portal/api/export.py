"""GET /api/tickets/export.csv: the ticket list with the same filters, as CSV, streamed, no row limit.
Included before the tickets router, whose /api/tickets/{ticket_id} would otherwise take the path."""
from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from core.models import Contact, utcnow
from core.queries import TicketFilter
from core.reports.export import csv_chunks
from portal.api.tickets import _errors, ticket_filter
from portal.deps import db, require_user

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/tickets", tags=["tickets"])


@router.get("/export.csv", response_class=StreamingResponse, responses={
    200: {"content": {"text/csv": {}}, "description": "one row per ticket, header first"}, **_errors(401, 403, 422)})
def export_csv(f: Annotated[TicketFilter, Depends(ticket_filter)], request: Request,
               user: Contact = Depends(require_user), session: Session = Depends(db)) -> StreamingResponse:
    """Every ticket the list's filters match (page and per_page are ignored), as CSV in the list's sort order;
    customers get their own tickets, as in the list."""
    log.info("CSV export by %s", user.id)
    session.close()  # the sign-in check's transaction ends here: on SQLite it holds the write lock
    name = f"tickets-{utcnow():%Y%m%d-%H%M}.csv"
    return StreamingResponse(csv_chunks(request.app.state.sessions, f), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"',
                                      "Cache-Control": "private, no-store"})
