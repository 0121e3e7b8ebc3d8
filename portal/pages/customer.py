"""The signed-in customer's area: their tickets as a filterable, sortable list; one ticket with
its thread, a reply form, editing subject and description, closing it; attachments.

Everything works without JavaScript: filters, sorting and pages are query parameters.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from core import queries, workflow
from core.i18n import N_
from core.config import Settings
from core.models import OPEN_STATUSES, STATUSES, Contact, Message, Ticket
from core.workflow import InvalidChange, NotAllowed
from portal.deps import csrf_protect, db, require_user, settings
from portal.pages.public import (MAX_SUBJECT, MAX_TEXT, FormProblem, add_reply, attachment_on, body_within_limit,
                                 download, form_data, messages_json, text_field, ticket_context)
from portal.render import page

log = logging.getLogger(__name__)
router = APIRouter(prefix="/my")

PER_PAGE = 25
DEFAULT_SORT = "-updated"
COLUMNS = (("id", N_("Number")), ("subject", N_("Subject")), ("status", N_("Status")), ("created", N_("Created")),
           ("updated", N_("Last update")))
NEWEST_FIRST = {"id", "created", "updated"}  # the first click on these sorts descending
STATUS_CHOICES = (("", N_("All")), ("open", N_("Open")), ("new", N_("New")), ("in_progress", N_("In progress")),
                  ("waiting", N_("Waiting")), ("resolved", N_("Resolved")), ("closed", N_("Closed")))
assert {s for s, _ in STATUS_CHOICES[2:]} == set(STATUSES)
DONE_NOTICES = {"closed": N_("The ticket is closed. Reply at any time to open it again."),
                "edited": N_("Your changes are saved; the earlier text stays in the history."),
                "replied": N_("Your reply is on the ticket.")}


@dataclass(frozen=True)
class ListQuery:
    """The list's state, read from and written back to the query string."""
    status: str = ""
    q: str = ""
    sort: str = DEFAULT_SORT
    page: int = 1

    def url(self, **changes) -> str:
        values = {"status": self.status, "q": self.q, "sort": self.sort, "page": self.page, **changes}
        defaults = {"status": "", "q": "", "sort": DEFAULT_SORT, "page": 1}
        wanted = {k: v for k, v in values.items() if v != defaults[k]}
        return "/my/tickets" + (f"?{urlencode(wanted)}" if wanted else "")

    def sort_url(self, column: str) -> str:
        if self.sort == column:
            following = f"-{column}"
        elif self.sort == f"-{column}":
            following = column
        else:
            following = f"-{column}" if column in NEWEST_FIRST else column
        return self.url(sort=following, page=1)

    def aria_sort(self, column: str) -> str:
        if self.sort.lstrip("-") != column:
            return "none"
        return "descending" if self.sort.startswith("-") else "ascending"


def _list_query(status: str, q: str, sort: str, page_number: str) -> ListQuery:
    status = status if status in dict(STATUS_CHOICES) else ""
    sort = sort if sort.lstrip("-") in dict(COLUMNS) else DEFAULT_SORT
    number = int(page_number) if page_number.isdigit() and 0 < int(page_number) < 100_000 else 1
    return ListQuery(status=status, q=q.strip()[:200], sort=sort, page=number)


def _filter(user: Contact, lq: ListQuery) -> queries.TicketFilter:
    statuses = OPEN_STATUSES if lq.status == "open" else ((lq.status,) if lq.status else ())
    return queries.TicketFilter(owner_id=user.id, status=statuses, search=lq.q, sort=lq.sort, page=lq.page,
                                per_page=PER_PAGE)


@router.get("/tickets", include_in_schema=False)
def my_tickets(request: Request, status: str = "", q: str = "", sort: str = DEFAULT_SORT,
               page_number: str = Query("1", alias="page"), user: Contact = Depends(require_user),
               session: Session = Depends(db)):
    lq = _list_query(status, q, sort, page_number)
    rows, total = queries.list_tickets(session, _filter(user, lq))
    pages = max(1, math.ceil(total / PER_PAGE))
    if lq.page > pages:  # a page beyond the end (the list shrank): show the last one
        lq = ListQuery(lq.status, lq.q, lq.sort, pages)
        rows, total = queries.list_tickets(session, _filter(user, lq))
    return page(request, "customer/list.html", tickets=rows, total=total, pages=pages, lq=lq,
                last_support=queries.last_support_message(session, [t.id for t in rows]),
                columns=COLUMNS, status_choices=STATUS_CHOICES)


def _own_ticket(session: Session, user: Contact, ticket_id: int) -> Ticket:
    ticket = queries.visible_ticket(session, user, ticket_id)
    if ticket is None:  # another's ticket looks exactly like one that does not exist
        raise HTTPException(404, "There is no such ticket among yours.")
    return ticket


def _first_message(ticket: Ticket) -> Message | None:
    return ticket.messages[0] if ticket.messages else None


def _ticket_page(request: Request, session: Session, user: Contact, ticket: Ticket, status_code: int = 200,
                 notice: str = "", reply_text: str = "", reply_error: FormProblem | None = None,
                 edit_values: dict | None = None, edit_errors: dict | None = None):
    first = _first_message(ticket)
    context = ticket_context(session, ticket, user.id, f"/my/tickets/{ticket.id}")
    return page(request, "customer/ticket.html", status_code=status_code, notice=notice, reply_text=reply_text,
                reply_error=reply_error, is_requester=ticket.requester_id == user.id,
                edit_values=edit_values or {"subject": ticket.subject,
                                            "description": first.visible_text if first else ""},
                edit_errors=edit_errors or {}, edit_open=bool(edit_errors), **context)


@router.get("/tickets/{ticket_id:int}", include_in_schema=False)
def my_ticket(ticket_id: int, request: Request, done: str = "", user: Contact = Depends(require_user),
              session: Session = Depends(db)):
    ticket = _own_ticket(session, user, ticket_id)
    return _ticket_page(request, session, user, ticket, notice=DONE_NOTICES.get(done, ""))


@router.post("/tickets/{ticket_id:int}/reply", include_in_schema=False,
             dependencies=[Depends(body_within_limit), Depends(csrf_protect)])
def reply(ticket_id: int, request: Request, form: FormData = Depends(form_data),
          user: Contact = Depends(require_user), session: Session = Depends(db), cfg: Settings = Depends(settings)):
    ticket = _own_ticket(session, user, ticket_id)
    try:
        message = add_reply(session, cfg, ticket, user, form)
    except (FormProblem, InvalidChange) as exc:
        session.rollback()
        problem = exc if isinstance(exc, FormProblem) else FormProblem(str(exc), 400, "text")
        return _ticket_page(request, session, user, _own_ticket(session, user, ticket_id), problem.status,
                            reply_text=text_field(form, "text"), reply_error=problem)
    return RedirectResponse(f"/my/tickets/{ticket_id}?done=replied#m{message.id}", status_code=303)


@router.post("/tickets/{ticket_id:int}/edit", include_in_schema=False,
             dependencies=[Depends(body_within_limit), Depends(csrf_protect)])
def edit(ticket_id: int, request: Request, form: FormData = Depends(form_data),
         user: Contact = Depends(require_user), session: Session = Depends(db)):
    ticket = _own_ticket(session, user, ticket_id)
    values = {"subject": text_field(form, "subject").strip(), "description": text_field(form, "description")}
    errors = {}
    if not values["subject"] or len(values["subject"]) > MAX_SUBJECT:
        errors["subject"] = N_("Enter a subject of at most %(max)s characters.", max=MAX_SUBJECT)
    if not values["description"].strip() or len(values["description"]) > MAX_TEXT:
        errors["description"] = N_("Enter a description of at most %(max)s characters.", max="{:,}".format(MAX_TEXT))
    if errors:
        return _ticket_page(request, session, user, ticket, 400, edit_values=values, edit_errors=errors)
    try:
        workflow.edit_description(session, ticket, user, values["subject"], values["description"])
    except NotAllowed as exc:
        raise HTTPException(403, str(exc).capitalize() + ".") from None
    session.commit()
    log.info("ticket %s: subject/description edited by its requester", ticket.id)
    return RedirectResponse(f"/my/tickets/{ticket_id}?done=edited", status_code=303)


@router.post("/tickets/{ticket_id:int}/close", include_in_schema=False,
             dependencies=[Depends(body_within_limit), Depends(csrf_protect)])
def close(ticket_id: int, user: Contact = Depends(require_user), session: Session = Depends(db)):
    ticket = _own_ticket(session, user, ticket_id)
    try:
        workflow.close_by_customer(session, ticket, user)
    except NotAllowed as exc:
        raise HTTPException(403, str(exc).capitalize() + ".") from None
    session.commit()
    log.info("ticket %s: closed by its requester", ticket.id)
    return RedirectResponse(f"/my/tickets/{ticket_id}?done=closed", status_code=303)


@router.get("/tickets/{ticket_id:int}/attachments/{attachment_id:int}", include_in_schema=False)
def attachment(ticket_id: int, attachment_id: int, user: Contact = Depends(require_user),
               session: Session = Depends(db)):
    found = attachment_on(session, _own_ticket(session, user, ticket_id).id, attachment_id)
    if found is None:
        raise HTTPException(404, "No such attachment on this ticket.")
    return download(*found)


@router.get("/tickets/{ticket_id:int}/messages.json", include_in_schema=False)
def messages(ticket_id: int, after: int = 0, user: Contact = Depends(require_user), session: Session = Depends(db)):
    return messages_json(_own_ticket(session, user, ticket_id), user.id, after, f"/my/tickets/{ticket_id}")
