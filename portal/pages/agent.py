"""Agent pages: the queue, one ticket (thread, reply, note, field changes, attachments) and stats.

Every route needs an agent or admin; every POST needs the form's CSRF token. Pages work without
JavaScript; /static/agent.js only adds polling for new messages and a stats refresh.
"""
from __future__ import annotations

import logging
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import QueryParams

from core import customer_mail, queries, satisfaction, staff as people, views, workflow
from core.assist.similar import similar_resolved
from core.assist.suggest import record_drafted
from core.config import Settings
from core.errors import SenderError
from core.i18n import N_
from core.models import CATEGORIES, PRIORITIES, STATUSES, Contact, Message, Ticket, utcnow
from core.sla.reminders import form_reminder
from core.sla.tracking import sla_view
from core.svg_chart import bar_chart
from portal.deps import csrf_protect, db, require_role, settings
from portal.render import page
from portal.pages import workspace
from core.workspace import mail_view
from core.workspace.presence import mark_read, newer_messages

log = logging.getLogger(__name__)
router = APIRouter(prefix="/agent", include_in_schema=False)
staff_only = require_role("agent", "admin")
SORTABLE = ("id", "subject", "status", "priority", "created", "updated", "due")
# Types a browser may show inline (images referenced by cid: in mail); everything else is octet-stream.
INLINE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}


# ---- the queue -----------------------------------------------------------------------------------

def queue_filter(params: QueryParams, me: Contact) -> queries.TicketFilter:
    """The queue's query string as a TicketFilter; unknown values are ignored, never an error."""
    def chosen(name: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v for v in params.getlist(name) if v in allowed)

    assignee = params.get("assignee", "").strip()
    sort = params.get("sort", "-updated")
    try:
        page_no = max(1, int(params.get("page", "1")))
    except ValueError:
        page_no = 1
    return queries.TicketFilter(
        status=chosen("status", STATUSES), priority=chosen("priority", PRIORITIES),
        category=chosen("category", CATEGORIES),
        assignee={"me": me.email, "unassigned": "none", "none": "none"}.get(assignee, assignee.lower()),
        skill=params.get("skill", "").strip(), requester=params.get("requester", "").strip(),
        search=params.get("q", "").strip(), sort=sort if sort.lstrip("-") in SORTABLE else "-updated",
        page=page_no, tag=params.get("tag", "").strip().lower(), replied=params.get("replied") == "1")


def _url_with(params: QueryParams, **changes: str | int | None) -> str:
    """/agent/queue with the current query string, some keys replaced (None removes one)."""
    items = [(k, v) for k, v in params.multi_items() if k not in changes]
    items += [(k, str(v)) for k, v in changes.items() if v is not None]
    return "/agent/queue" + ("?" + urlencode(items) if items else "")


@router.get("/queue")
def queue(request: Request, user: Contact = Depends(staff_only), session: Session = Depends(db)):
    f = queue_filter(request.query_params, user)
    found = queries.queue_page(session, f)
    pages = max(1, -(-found.total // f.per_page))
    return page(request, "agent/queue.html", tickets=found.tickets, total=found.total, f=f,
                params=request.query_params, per_status=found.per_status, pages=pages, statuses=STATUSES,
                priorities=PRIORITIES, categories=CATEGORIES, staff=people.staff(session),
                url_with=lambda **c: _url_with(request.query_params, **c), sla=sla_view(utcnow()),
                **workspace.queue_context(session, user, found.tickets))


# ---- one ticket ----------------------------------------------------------------------------------

def _ticket_or_404(session: Session, user: Contact, ticket_id: int) -> Ticket:
    ticket = queries.visible_ticket(session, user, ticket_id)
    if ticket is None:
        raise HTTPException(404, f"There is no ticket #{ticket_id}.")
    return ticket


def _attachment_url(ticket_id: int, attachment_id: int) -> str:
    return f"/agent/tickets/{ticket_id}/attachments/{attachment_id}"


def _cid_resolver(ticket: Ticket):
    """Maps a mail's cid: image references to our own attachment URLs."""
    by_cid = {a.content_id.strip("<>"): a.id for m in ticket.messages for a in m.attachments if a.content_id}

    def resolve(cid: str) -> str | None:
        found = by_cid.get(cid.strip("<>"))
        return _attachment_url(ticket.id, found) if found else None
    return resolve


def _author(message: Message) -> str:
    who = message.author.email if message.author else message.from_address
    if message.direction == "note":
        return f"Internal note by {who}"
    return f"{who} (support)" if message.direction == "out" else who


def _ticket_page(request: Request, session: Session, ticket: Ticket, status_code: int = 200, **extra):
    resolve = _cid_resolver(ticket)
    extra.setdefault("similar", similar_resolved(session, ticket))  # templates/web/agent/_similar.html
    images = request.query_params.get("images", "")
    thread = [{"m": m, "author": _author(m), "html": views.message_html(m, resolve),
               "remote_images": mail_view.has_remote_images(m)} for m in ticket.messages]
    for item in thread:
        if str(item["m"].id) == images and item["remote_images"]:  # the agent asked for this mail's images
            item["html"], item["images_loaded"] = mail_view.html_with_images(item["m"], resolve), True
    context = workspace.ticket_context(session, request.state.user, ticket, request.query_params.get("canned", ""))
    response = page(request, "agent/ticket.html", status_code=status_code, ticket=ticket, thread=thread,
                last_id=max((m.id for m in ticket.messages), default=0),
                summary=views.latest_summary(session, ticket.id), skills=views.ticket_skills(session, ticket.id),
                history=views.history_with_actors(session, ticket.id), staff=people.staff(session),
                statuses=STATUSES, priorities=PRIORITIES, categories=CATEGORIES,
                notice=request.query_params.get("done", ""), error=request.query_params.get("error", ""),
                now_naive=utcnow().replace(tzinfo=None), ratings=satisfaction.of_ticket(session, ticket.id),
                reply_plan=customer_mail.mail_plan(ticket, [f.contact for f in ticket.followers]),
                status_plan=customer_mail.mail_plan(ticket, [f.contact for f in ticket.followers], status_mail=True),
                **{**context, **extra})
    if any(item.get("images_loaded") for item in thread):
        response.headers["Content-Security-Policy"] = mail_view.IMAGES_CSP
    return response


@router.get("/tickets/{ticket_id}")
def ticket_page(ticket_id: int, request: Request, user: Contact = Depends(staff_only),
                session: Session = Depends(db)):
    _ticket_or_404(session, user, ticket_id)
    mark_read(session, ticket_id, user)  # clears the queue's "customer replied" mark for this agent
    session.commit()
    return _ticket_page(request, session, _ticket_or_404(session, user, ticket_id))


def _done(ticket_id: int, what: str) -> RedirectResponse:
    return RedirectResponse(f"/agent/tickets/{ticket_id}?done={what}", status_code=303)


def _lf(text: str) -> str:
    """Browsers send a textarea's line breaks as CRLF; we store LF so an unchanged text compares equal."""
    return text.replace("\r\n", "\n")


def _uploads(files: list[UploadFile] | None) -> list[workflow.Upload]:
    """The files of a form; an empty file input (no name, no bytes) is not an upload."""
    uploads = []
    for f in files or []:
        data = f.file.read()
        if f.filename or data:
            uploads.append(workflow.Upload(f.filename or "", f.content_type or "", data))
    return uploads


@router.post("/tickets/{ticket_id}/reply")
def reply(ticket_id: int, request: Request, text: str = Form(""), files: list[UploadFile] | None = File(None),
          drafted: str = Form(""), seen_last: int = Form(0), user: Contact = Depends(staff_only),
          _csrf: None = Depends(csrf_protect),
          session: Session = Depends(db), cfg: Settings = Depends(settings)):
    ticket = _ticket_or_404(session, user, ticket_id)
    if seen_last and newer_messages(session, ticket_id, seen_last, user.id):  # collision: review first
        return _ticket_page(request, session, ticket, 409, reply_draft=text, stale_reply=True)
    try:
        workflow.reply_as_agent(session, cfg, ticket, user, _lf(text), _uploads(files))
        if drafted:  # set by static/assist.js when the reply began as a suggestion
            record_drafted(session, ticket, user, drafted)
    except SenderError as exc:
        session.rollback()
        return _ticket_page(request, session, _ticket_or_404(session, user, ticket_id), 400,
                            reply_error=str(exc), reply_draft=text)
    session.commit()
    log.info("ticket %s: reply by %s", ticket_id, user.id)
    return _done(ticket_id, "reply")


@router.post("/tickets/{ticket_id}/note")
def note(ticket_id: int, request: Request, text: str = Form(""), user: Contact = Depends(staff_only),
         _csrf: None = Depends(csrf_protect), session: Session = Depends(db)):
    ticket = _ticket_or_404(session, user, ticket_id)
    try:
        workflow.add_note(session, ticket, user, _lf(text))
    except SenderError as exc:
        session.rollback()
        return _ticket_page(request, session, _ticket_or_404(session, user, ticket_id), 400,
                            note_error=str(exc), note_draft=text)
    session.commit()
    return _done(ticket_id, "note")


@router.post("/tickets/{ticket_id}/revoke-links")
def revoke_links(ticket_id: int, user: Contact = Depends(staff_only), _csrf: None = Depends(csrf_protect),
                 session: Session = Depends(db)):
    workflow.revoke_links(session, _ticket_or_404(session, user, ticket_id), user)
    session.commit()
    return _done(ticket_id, "links")


@router.post("/tickets/{ticket_id}/update")
def update(ticket_id: int, request: Request, status: str = Form(...), priority: str = Form(...),
           category: str = Form(...), assignee: str = Form(""), resolution: str = Form(""),
           waiting_until: str = Form(""),
           user: Contact = Depends(staff_only), _csrf: None = Depends(csrf_protect),
           session: Session = Depends(db), cfg: Settings = Depends(settings)):
    ticket = _ticket_or_404(session, user, ticket_id)
    new_assignee = None
    if assignee:
        new_assignee = next((c for c in people.staff(session) if str(c.id) == assignee), None)
        if new_assignee is None:
            return _ticket_page(request, session, ticket, 400, update_error=N_("Choose an active agent or admin."))
    try:
        changed = workflow.change_fields(session, cfg, ticket, user, status=status, priority=priority,
                                         category=category, assignee=new_assignee, resolution=_lf(resolution))
        changed += ["reminder"] if form_reminder(session, cfg, ticket, user, waiting_until) else []
    except SenderError as exc:
        session.rollback()
        return _ticket_page(request, session, _ticket_or_404(session, user, ticket_id), 400,
                            update_error=str(exc))
    session.commit()
    return _done(ticket_id, "update" if changed else "nothing")


@router.post("/tickets/{ticket_id}/delete")
def delete(ticket_id: int, confirm: str = Form(""), user: Contact = Depends(require_role("admin")),
           _csrf: None = Depends(csrf_protect), session: Session = Depends(db)):
    if confirm != "yes":
        raise HTTPException(400, "Tick the box to confirm the deletion.")
    workflow.delete_ticket(session, _ticket_or_404(session, user, ticket_id), user)
    session.commit()
    return RedirectResponse("/agent/queue", status_code=303)


@router.get("/tickets/{ticket_id}/messages.json")
def messages_json(ticket_id: int, after: int = 0, user: Contact = Depends(staff_only),
                  session: Session = Depends(db)) -> dict:
    """Messages newer than `after`, as text (the page's script appends them with textContent)."""
    _ticket_or_404(session, user, ticket_id)
    shown = views.messages_after(session, ticket_id, after, include_notes=True)
    if shown:  # the open page shows them now: no longer unread in this agent's queue
        mark_read(session, ticket_id, user, up_to=max(m.id for m in shown))
        session.commit()
    return {"messages": [{
        "id": m.id, "direction": m.direction, "kind": m.kind, "author": _author(m),
        "created_at": m.created_at.strftime("%Y-%m-%d %H:%M"), "text": m.visible_text or m.body_text,
        "attachments": [{"name": a.filename, "size": a.size, "url": _attachment_url(ticket_id, a.id)}
                        for a in m.attachments],
    } for m in shown]}


@router.get("/tickets/{ticket_id}/attachments/{attachment_id}")
def attachment(ticket_id: int, attachment_id: int, user: Contact = Depends(staff_only),
               session: Session = Depends(db)):
    found = views.ticket_attachment(session, ticket_id, attachment_id)
    if found is None:
        raise HTTPException(404, "No such attachment on this ticket.")
    att, data = found
    kind = att.content_type.lower() if att.content_type.lower() in INLINE_TYPES else "application/octet-stream"
    return Response(data, media_type=kind, headers={
        "Content-Disposition": _attachment_disposition(att.filename),
        "X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store",
        "Content-Security-Policy": "default-src 'none'; sandbox"})


def _attachment_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name and the real one in RFC 5987 form."""
    name = filename or "attachment.bin"
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


# ---- statistics ----------------------------------------------------------------------------------

@router.get("/stats")
def stats_page(request: Request, user: Contact = Depends(staff_only), session: Session = Depends(db)):
    figures = queries.stats(session)
    chart = bar_chart(figures.last_30_days, "Tickets opened per day, last 30 days")
    return page(request, "agent/stats.html", s=figures, chart=chart, now=utcnow(),
                first_response=_duration(figures.median_first_response_minutes))


def _duration(minutes: float | None) -> str:
    if minutes is None:
        return "no answered tickets yet"
    if minutes < 90:
        return f"{minutes:.0f} min"
    if minutes < 48 * 60:
        return f"{minutes / 60:.1f} h"
    return f"{minutes / 1440:.1f} days"
