"""Agent pages of the workspace: bulk actions, tags, followers, merge, split, spam, saved views,
canned replies, presence; and the admin's list of blocked senders.

Every route needs staff (blocked senders: an admin) and every POST the form's CSRF token. Pages
work without JavaScript; /static/workspace.js adds selection ranges, live queue, shortcuts,
presence and the canned-reply picker.
"""
from __future__ import annotations

import logging
from urllib.parse import urlencode

from fastapi import APIRouter, Body, Depends, Form, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import followers as follower_admin, i18n, workflow
from core.config import Settings
from core.errors import SenderError
from core.merge import MergeRefused, merge_tickets
from core.models import Contact, Follower, Message, Ticket
from core.workspace import availability, bulk, canned, presence, saved, spam, tags
from core.workspace.split import split_ticket
from portal.deps import csrf_protect, db, require_role, settings
from portal.render import page

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
staff_only = require_role("agent", "admin")
admin_only = require_role("admin")


def _back(url: str, done: str = "", error: str = "") -> RedirectResponse:
    """Back to a page of ours (never elsewhere) with a one-line outcome."""
    target = (url if url.startswith("/agent/") else "/agent/queue").rstrip("?")
    params = urlencode([(k, v) for k, v in (("done", done), ("error", error)) if v])
    if params:
        target += ("&" if "?" in target else "?") + params
    return RedirectResponse(target, status_code=303)


def _ticket(session: Session, ticket_id: int) -> Ticket:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise HTTPException(404, f"There is no ticket #{ticket_id}.")
    return ticket


def _ticket_url(ticket_id: int) -> str:
    return f"/agent/tickets/{ticket_id}"


# ---- the queue ---------------------------------------------------------------------------------------

def queue_context(session: Session, user: Contact, tickets: list[Ticket]) -> dict:
    """What the queue shows beyond the tickets: their tags, unread marks, views, tags in use."""
    ids = [t.id for t in tickets]
    return {"ticket_tags": tags.tags_of(session, ids), "unread": presence.unread_replies(session, ids, user),
            "built_in_views": saved.BUILT_IN, "saved_views": saved.saved_views(session, user),
            "known_tags": tags.known_tags(session), "away": availability.is_away(session, user)}


@router.post("/agent/away")
def away(away_value: str = Form("", alias="away"), user: Contact = Depends(staff_only),
         _csrf: None = Depends(csrf_protect), session: Session = Depends(db)):
    """The agent says they are away (no new tickets assigned to them) or back."""
    availability.set_away(session, user, away_value == "yes")
    session.commit()
    return _back("/agent/queue", done=i18n.translate(user.language, "You are away: no new tickets are assigned to you.")
                 if away_value == "yes" else i18n.translate(user.language, "Welcome back: new tickets may be assigned to you."))


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.replace(",", " ").split())


@router.post("/agent/bulk")
def bulk_action(ids_raw: list[str] = Form([], alias="ids"), status: str = Form(""), priority: str = Form(""),
                category: str = Form(""), assignee: str = Form(""), add_tag: str = Form(""),
                remove_tag: str = Form(""), spam_flag: str = Form("", alias="spam"),
                back: str = Form("/agent/queue", alias="next"), user: Contact = Depends(staff_only),
                _csrf: None = Depends(csrf_protect), session: Session = Depends(db),
                cfg: Settings = Depends(settings)):
    """The queue's bulk form: one change on the chosen tickets."""
    ids = [int(v) for v in ids_raw if v.isdigit()]
    changes = bulk.BulkChanges(
        status=status or None, priority=priority or None, category=category or None,
        assignee=False if assignee == "" else (None if assignee == "none" else assignee),
        add_tags=_words(add_tag), remove_tags=_words(remove_tag), spam=spam_flag == "yes")
    if not ids:
        return _back(back, error=i18n.translate(user.language, "Choose at least one ticket."))
    try:
        results = bulk.apply_bulk(session, cfg, user, ids, changes)
    except SenderError as exc:
        session.rollback()
        return _back(back, error=str(exc).capitalize() + ".")
    session.commit()
    failed = [f"#{r.id}: {r.detail}" for r in results if not r.ok]
    done = i18n.translate(user.language, "%(count)s ticket(s) changed.", count=sum(r.ok for r in results))
    return _back(back, done=done, error="; ".join(failed))


@router.post("/agent/views")
def save_view(name: str = Form(""), query: str = Form(""), user: Contact = Depends(staff_only),
              _csrf: None = Depends(csrf_protect), session: Session = Depends(db)):
    try:
        view = saved.save_view(session, user, name, query)
    except SenderError as exc:
        return _back("/agent/queue?" + saved.clean_query(query), error=str(exc).capitalize() + ".")
    session.commit()
    return _back("/agent/queue?" + view.query, done=i18n.translate(user.language, "View “%(name)s” saved.", name=view.name))


@router.post("/agent/views/{view_id}/delete")
def delete_view(view_id: int, user: Contact = Depends(staff_only), _csrf: None = Depends(csrf_protect),
                session: Session = Depends(db)):
    if not saved.delete_view(session, user, view_id):
        raise HTTPException(404, "No such view among yours.")
    session.commit()
    return _back("/agent/queue", done=i18n.translate(user.language, "View removed."))


# ---- one ticket ------------------------------------------------------------------------------------

def ticket_context(session: Session, user: Contact, ticket: Ticket, canned_id: str = "") -> dict:
    """What the ticket page's sidebar and reply box show beyond the ticket itself."""
    others = list(session.scalars(select(Ticket).where(Ticket.requester_id == ticket.requester_id,
                                                       Ticket.id != ticket.id)
                                  .order_by(Ticket.updated_at.desc()).limit(10)))
    followers = list(session.scalars(select(Contact).join(Follower, Follower.contact_id == Contact.id)
                                     .where(Follower.ticket_id == ticket.id).order_by(Contact.email)))
    draft = ""
    if canned_id.isdigit():
        try:
            draft = canned.fill_placeholders(canned.reply_for(session, user, int(canned_id)).body, ticket, user)
        except SenderError:
            draft = ""
    return {"ticket_tags": tags.tags_of(session, [ticket.id]).get(ticket.id, []), "known_tags": tags.known_tags(session),
            "requester_tickets": others, "followers": followers, "canned_replies": canned.visible_replies(session, user),
            "canned_draft": draft, "present": presence.others_present(session, ticket.id, user.id)}


@router.post("/agent/tickets/{ticket_id}/tags")
def set_tags(ticket_id: int, tags_text: str = Form("", alias="tags"), user: Contact = Depends(staff_only),
             _csrf: None = Depends(csrf_protect), session: Session = Depends(db)):
    _ticket(session, ticket_id)
    try:
        tags.set_tags(session, ticket_id, tags_text.replace(",", " ").split(), user)
    except SenderError as exc:
        session.rollback()
        return _back(_ticket_url(ticket_id), error=str(exc).capitalize() + ".")
    session.commit()
    return _back(_ticket_url(ticket_id), done="tags")


@router.post("/agent/tickets/{ticket_id}/followers")
def followers(ticket_id: int, email: str = Form(""), action: str = Form("add"), user: Contact = Depends(staff_only),
              _csrf: None = Depends(csrf_protect), session: Session = Depends(db), cfg: Settings = Depends(settings)):
    """Add a follower by address (a customer contact, created if new; at most [intake] max_followers) or remove one."""
    ticket = _ticket(session, ticket_id)
    try:
        if action == "remove":
            follower_admin.remove_follower(session, ticket, email, user)
        else:
            follower_admin.add_follower(session, ticket, email, user, cfg.intake.max_followers)
    except SenderError as exc:
        session.rollback()
        return _back(_ticket_url(ticket_id), error=str(exc))
    session.commit()
    return _back(_ticket_url(ticket_id), done="followers")


@router.post("/agent/tickets/{ticket_id}/merge")
def merge(ticket_id: int, into: str = Form(""), user: Contact = Depends(staff_only),
          _csrf: None = Depends(csrf_protect), session: Session = Depends(db)):
    _ticket(session, ticket_id)
    target = into.strip().lstrip("#")
    if not target.isdigit() or session.get(Ticket, int(target)) is None:
        return _back(_ticket_url(ticket_id), error=i18n.translate(
            user.language, "There is no ticket #%(id)s to merge into.", id=target or "?"))
    try:
        merge_tickets(session, ticket_id, int(target), f"merged by {user.email}", source=user.role, actor_id=user.id)
    except MergeRefused as exc:
        session.rollback()
        return _back(_ticket_url(ticket_id), error=str(exc))
    session.commit()
    return _back(_ticket_url(int(target)), done="merged")


@router.post("/agent/tickets/{ticket_id}/split")
def split(ticket_id: int, message_ids: list[str] = Form([]), user: Contact = Depends(staff_only),
          _csrf: None = Depends(csrf_protect), session: Session = Depends(db)):
    ticket = _ticket(session, ticket_id)
    ids = [int(v) for v in message_ids if v.isdigit()]
    try:
        new_id = split_ticket(session, ticket, ids, user)
    except SenderError as exc:
        session.rollback()
        return _back(_ticket_url(ticket_id), error=str(exc).capitalize() + ".")
    session.commit()
    return _back(_ticket_url(new_id), done="split")


@router.post("/agent/tickets/{ticket_id}/spam")
def mark_spam(ticket_id: int, user: Contact = Depends(staff_only), _csrf: None = Depends(csrf_protect),
              session: Session = Depends(db)):
    ticket = _ticket(session, ticket_id)
    try:
        address = spam.mark_spam(session, ticket, user)
    except SenderError as exc:
        session.rollback()
        return _back(_ticket_url(ticket_id), error=str(exc).capitalize() + ".")
    session.commit()
    return _back("/agent/queue", done=i18n.translate(
        user.language, "Ticket #%(id)s closed as spam; %(address)s is blocked.", id=ticket_id, address=address))


@router.post("/agent/tickets/{ticket_id}/presence")
def beat(ticket_id: int, typing: bool = Body(False, embed=True), user: Contact = Depends(staff_only),
         _csrf: None = Depends(csrf_protect), session: Session = Depends(db)) -> JSONResponse:
    """The ticket page says it is open (and whether its reply box is being typed in); answers who
    else is here and the newest message's id."""
    _ticket(session, ticket_id)
    others = presence.beat(session, ticket_id, user, typing)
    last = session.scalar(select(func.max(Message.id)).where(Message.ticket_id == ticket_id)) or 0
    session.commit()
    return JSONResponse({"others": [{"name": p.name, "email": p.email, "typing": p.typing} for p in others],
                         "last_message_id": last}, headers={"Cache-Control": "no-store"})


# ---- canned replies -----------------------------------------------------------------------------------

@router.get("/agent/canned-replies")
def canned_page(request: Request, user: Contact = Depends(staff_only), session: Session = Depends(db)):
    return page(request, "agent/canned.html", replies=canned.visible_replies(session, user),
                notice=request.query_params.get("done", ""), error=request.query_params.get("error", ""))


@router.post("/agent/canned-replies")
def canned_create(title: str = Form(""), body: str = Form(""), shared: str = Form(""),
                  user: Contact = Depends(staff_only), _csrf: None = Depends(csrf_protect),
                  session: Session = Depends(db)):
    try:
        canned.create_reply(session, user, canned.Draft(title, body, shared == "yes"))
    except SenderError as exc:
        return _back("/agent/canned-replies", error=str(exc).capitalize() + ".")
    session.commit()
    return _back("/agent/canned-replies", done=i18n.translate(user.language, "Canned reply saved."))


@router.post("/agent/canned-replies/{reply_id}/delete")
def canned_delete(reply_id: int, user: Contact = Depends(staff_only), _csrf: None = Depends(csrf_protect),
                  session: Session = Depends(db)):
    try:
        canned.delete_reply(session, user, reply_id)
    except canned.CannedReplyNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except workflow.NotAllowed as exc:
        raise HTTPException(403, str(exc).capitalize() + ".") from None
    session.commit()
    return _back("/agent/canned-replies", done=i18n.translate(user.language, "Canned reply removed."))


# ---- blocked senders (admins) ---------------------------------------------------------------------------

@router.get("/admin/blocked")
def blocked_page(request: Request, _: Contact = Depends(admin_only), session: Session = Depends(db)):
    return page(request, "admin/blocked.html", blocked=spam.blocked_senders(session),
                notice=request.query_params.get("done", ""))


@router.post("/admin/blocked/unblock")
def unblock(email: str = Form(""), admin: Contact = Depends(admin_only), _csrf: None = Depends(csrf_protect),
            session: Session = Depends(db)):
    held = spam.unblock(session, email)
    if held is None:
        raise HTTPException(404, f"{email} is not blocked.")
    session.commit()
    log.info("%s unblocked by %s", email, admin.id)
    done = i18n.translate(admin.language, "%(email)s unblocked; %(held)s held mail(s) back in line.", email=email, held=held)
    return RedirectResponse("/admin/blocked?" + urlencode({"done": done}), status_code=303)
