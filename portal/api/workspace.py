"""JSON routes of the agent's workspace: canned replies, bulk changes, merge, split, blocked senders.

Staff only (customers get 403); a ticket that does not exist answers 404, a refused change 4xx
with the domain's sentence in `detail`.
"""
from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, HTTPException, Path, Response
from sqlalchemy.orm import Session

from core.config import Settings
from core.merge import MergeRefused, merge_tickets
from core.models import CannedReply, Contact, Ticket, aware
from core.workspace import bulk, canned, spam
from core.workspace.split import split_ticket
from portal.api.schemas import (BlockedSenderOut, BulkItem, BulkOut, BulkRequest, CannedReplyCreate,
                                CannedReplyOut, CannedReplyPatch, CannedReplyRender, MergeRequest, RenderedReply,
                                SplitRequest, TicketOut)
from portal.api.tickets import MAX_ID, STAFF, SizeLimitedRoute, TicketId, _errors, _fresh, answering_domain_errors, \
    tickets_out
from portal.deps import csrf_protect, db, require_role, settings

log = logging.getLogger(__name__)
router = APIRouter(route_class=SizeLimitedRoute)
staff_only = require_role(*STAFF)
ReplyId = Path(ge=1, le=MAX_ID, description="the canned reply's number")


# ---- canned replies ----------------------------------------------------------------------------------

def _reply_out(session: Session, reply: CannedReply) -> CannedReplyOut:
    owner = session.get(Contact, reply.owner_id)
    return CannedReplyOut(id=reply.id, title=reply.title, body=reply.body, shared=reply.shared,
                          owner=owner.email if owner else "")


def _found(reply_id: int, session: Session, user: Contact) -> CannedReply:
    try:
        return canned.reply_for(session, user, reply_id)
    except canned.CannedReplyNotFound as exc:
        raise HTTPException(404, str(exc)) from None


@router.get("/api/canned-replies", response_model=list[CannedReplyOut], tags=["canned replies"],
            responses=_errors(401, 403))
def list_canned(user: Contact = Depends(staff_only), session: Session = Depends(db)) -> list[CannedReplyOut]:
    """The team's shared canned replies and the caller's own, by title."""
    return [_reply_out(session, r) for r in canned.visible_replies(session, user)]


@router.post("/api/canned-replies", status_code=201, response_model=CannedReplyOut, tags=["canned replies"],
             responses=_errors(400, 401, 403, 413, 422))
def create_canned(body: CannedReplyCreate, user: Contact = Depends(staff_only), _csrf: None = Depends(csrf_protect),
                  session: Session = Depends(db)) -> CannedReplyOut:
    """A new canned reply owned by the caller (shared: the whole team sees it)."""
    with answering_domain_errors():
        reply = canned.create_reply(session, user, canned.Draft(body.title, body.body, body.shared))
    session.commit()
    return _reply_out(session, reply)


@router.patch("/api/canned-replies/{reply_id}", response_model=CannedReplyOut, tags=["canned replies"],
              responses=_errors(400, 401, 403, 404, 413, 422))
def change_canned(body: CannedReplyPatch, reply_id: int = ReplyId, user: Contact = Depends(staff_only),
                  _csrf: None = Depends(csrf_protect), session: Session = Depends(db)) -> CannedReplyOut:
    """Change a canned reply: its author, or an admin for a shared one."""
    _found(reply_id, session, user)
    with answering_domain_errors():
        reply = canned.update_reply(session, user, reply_id, body.title, body.body, body.shared)
    session.commit()
    return _reply_out(session, reply)


@router.delete("/api/canned-replies/{reply_id}", status_code=204, response_class=Response,
               tags=["canned replies"], responses=_errors(401, 403, 404, 422))
def delete_canned(reply_id: int = ReplyId, user: Contact = Depends(staff_only), _csrf: None = Depends(csrf_protect),
                  session: Session = Depends(db)) -> Response:
    """Delete a canned reply: its author, or an admin for a shared one."""
    _found(reply_id, session, user)
    with answering_domain_errors():
        canned.delete_reply(session, user, reply_id)
    session.commit()
    return Response(status_code=204)


@router.post("/api/canned-replies/{reply_id}/render", response_model=RenderedReply, tags=["canned replies"],
             responses=_errors(400, 401, 403, 404, 422))
def render_canned(body: CannedReplyRender, reply_id: int = ReplyId, user: Contact = Depends(staff_only),
                  session: Session = Depends(db)) -> RenderedReply:
    """The reply's text with its placeholders filled in for one ticket and the caller."""
    reply = _found(reply_id, session, user)
    ticket = session.get(Ticket, body.ticket_id)
    if ticket is None:
        raise HTTPException(404, f"No ticket #{body.ticket_id}.")
    return RenderedReply(title=reply.title, text=canned.fill_placeholders(reply.body, ticket, user))


# ---- many tickets at once, merge, split ------------------------------------------------------------

@router.post("/api/tickets/bulk", response_model=BulkOut, tags=["tickets"], responses=_errors(400, 401, 403, 413, 422))
def bulk_change(body: BulkRequest, user: Contact = Depends(staff_only), _csrf: None = Depends(csrf_protect),
                session: Session = Depends(db), cfg: Settings = Depends(settings)) -> BulkOut:
    """Apply one change to many tickets; each ticket's result on its own (a refusal costs only that ticket)."""
    c = body.changes
    changes = bulk.BulkChanges(status=c.status, priority=c.priority, category=c.category,
                               assignee=c.assignee if "assignee" in c.model_fields_set else False,
                               add_tags=tuple(c.add_tags), remove_tags=tuple(c.remove_tags), spam=c.spam)
    with answering_domain_errors():
        results = bulk.apply_bulk(session, cfg, user, body.ids, changes)
    session.commit()
    items = [BulkItem(id=r.id, ok=r.ok, status=r.status, detail=r.detail, changed=r.changed) for r in results]
    return BulkOut(results=items, ok=sum(i.ok for i in items), failed=sum(not i.ok for i in items))


def _ticket_or_404(session: Session, ticket_id: int) -> Ticket:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise HTTPException(404, f"No ticket #{ticket_id}.")
    return ticket


@router.post("/api/tickets/{ticket_id}/merge", response_model=TicketOut, tags=["tickets"],
             responses=_errors(400, 401, 403, 404, 409, 422))
def merge(ticket_id: TicketId, body: MergeRequest, user: Contact = Depends(staff_only),
          _csrf: None = Depends(csrf_protect), session: Session = Depends(db)) -> TicketOut:
    """Move this ticket's thread to ticket `into` and close this one with `merged_into`; later mail to
    this ticket (tag, reply address, Message-ID) lands on `into`. Answers this ticket as it now is."""
    _ticket_or_404(session, ticket_id)
    if session.get(Ticket, body.into) is None:
        raise HTTPException(422, f"into: no ticket #{body.into}.")
    try:
        merge_tickets(session, ticket_id, body.into, f"merged by {user.email}", source=user.role, actor_id=user.id)
    except MergeRefused as exc:
        raise HTTPException(409, str(exc)) from None
    session.commit()
    return tickets_out(session, [_fresh(session, ticket_id)], user)[0]


@router.post("/api/tickets/{ticket_id}/split", status_code=201, response_model=TicketOut, tags=["tickets"],
             responses=_errors(400, 401, 403, 404, 413, 422))
def split(ticket_id: TicketId, body: SplitRequest, user: Contact = Depends(staff_only),
          _csrf: None = Depends(csrf_protect), session: Session = Depends(db)) -> TicketOut:
    """Open a new ticket for the same requester with the chosen messages of this one; answers the new ticket."""
    ticket = _ticket_or_404(session, ticket_id)
    with answering_domain_errors():
        new_id = split_ticket(session, ticket, body.message_ids, user)
    session.commit()
    return tickets_out(session, [_fresh(session, new_id)], user)[0]


# ---- blocked senders (admins) ----------------------------------------------------------------------

@router.get("/api/blocked-senders", response_model=list[BlockedSenderOut], tags=["spam"], responses=_errors(401, 403))
def list_blocked(_: Contact = Depends(require_role("admin")), session: Session = Depends(db)) -> list[BlockedSenderOut]:
    """Addresses whose mail is held in quarantine as spam."""
    return [BlockedSenderOut(email=b.email, reason=b.reason, created_at=aware(b.created_at))
            for b in spam.blocked_senders(session)]


@router.delete("/api/blocked-senders/{email}", status_code=204, response_class=Response, tags=["spam"],
               responses=_errors(401, 403, 404))
def unblock_sender(email: str = Path(max_length=320), admin: Contact = Depends(require_role("admin")),
                   _csrf: None = Depends(csrf_protect), session: Session = Depends(db)) -> Response:
    """Unblock an address; its mail held as spam goes back to the spool and is processed as usual."""
    if spam.unblock(session, email) is None:
        raise HTTPException(404, f"{email} is not blocked.")
    log.info("%s unblocked by %s", email, admin.email)
    session.commit()
    return Response(status_code=204)
