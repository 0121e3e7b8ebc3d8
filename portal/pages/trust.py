"""Agent pages for sender trust: mails held because their sender could not be verified
([intake] hold_unverified), and a ticket's followers. Staff only; every POST needs CSRF."""
from __future__ import annotations

import logging
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from core import followers, quarantine
from core.config import Settings
from core.errors import SenderError
from core.models import Contact, Ticket
from portal.deps import csrf_protect, db, require_role, settings
from portal.render import page

log = logging.getLogger(__name__)
router = APIRouter(prefix="/agent", include_in_schema=False)
staff_only = require_role("agent", "admin")


@router.get("/held")
def held_page(request: Request, user: Contact = Depends(staff_only), session: Session = Depends(db)):
    return page(request, "agent/held.html", held=quarantine.held_for_approval(session),
                notice=request.query_params.get("done", ""))


@router.post("/held/{raw_id}/approve")
def approve_held(raw_id: int, user: Contact = Depends(staff_only), _csrf: None = Depends(csrf_protect),
                 session: Session = Depends(db)):
    if not quarantine.approve(session, raw_id, user.id):
        raise HTTPException(404, f"No mail #{raw_id} is waiting for approval.")
    session.commit()
    log.info("agent %s approved held raw_mail %s", user.id, raw_id)
    return RedirectResponse("/agent/held?done=approved", status_code=303)


@router.post("/held/{raw_id}/reject")
def reject_held(raw_id: int, user: Contact = Depends(staff_only), _csrf: None = Depends(csrf_protect),
                session: Session = Depends(db)):
    if not quarantine.reject(session, raw_id):
        raise HTTPException(404, f"No mail #{raw_id} is waiting for approval.")
    session.commit()
    log.info("agent %s declined held raw_mail %s", user.id, raw_id)
    return RedirectResponse("/agent/held?done=declined", status_code=303)


def _ticket(session: Session, ticket_id: int) -> Ticket:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise HTTPException(404, f"There is no ticket #{ticket_id}.")
    return ticket


def _back(ticket_id: int, what: str, error: str = "") -> RedirectResponse:
    extra = f"&follower_error={quote(error)}" if error else ""
    return RedirectResponse(f"/agent/tickets/{ticket_id}?done={what}{extra}#followers", status_code=303)


@router.post("/tickets/{ticket_id}/followers")
def add_follower(ticket_id: int, email: str = Form(""), user: Contact = Depends(staff_only),
                 _csrf: None = Depends(csrf_protect), session: Session = Depends(db),
                 cfg: Settings = Depends(settings)):
    ticket = _ticket(session, ticket_id)
    try:
        followers.add_follower(session, ticket, email, user, cfg.intake.max_followers)
    except SenderError as exc:
        session.rollback()
        return _back(ticket_id, "follower-refused", str(exc))
    session.commit()
    return _back(ticket_id, "follower-added")


@router.post("/tickets/{ticket_id}/followers/remove")
def remove_follower(ticket_id: int, email: str = Form(""), user: Contact = Depends(staff_only),
                    _csrf: None = Depends(csrf_protect), session: Session = Depends(db)):
    ticket = _ticket(session, ticket_id)
    followers.remove_follower(session, ticket, email, user)
    session.commit()
    return _back(ticket_id, "follower-removed")
