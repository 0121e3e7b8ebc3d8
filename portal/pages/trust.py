"""Agent pages for sender trust: mails held because their sender could not be verified
([intake] hold_unverified). Staff only; every POST needs CSRF. (A ticket's followers are managed
on its page: portal/pages/workspace.py.)"""
from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from core import quarantine
from core.models import Contact
from portal.deps import csrf_protect, db, require_role
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
