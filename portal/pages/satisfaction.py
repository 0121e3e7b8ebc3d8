"""The rating links of a resolution mail: one click records good or bad, no sign-in (the signed
link is the credential); the page that answers offers an optional comment."""
from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from sqlalchemy.orm import Session

from core import satisfaction
from core.config import Settings
from core.models import Ticket
from portal.deps import csrf_protect, db, settings
from portal.render import page

log = logging.getLogger(__name__)
router = APIRouter(prefix="/rate", include_in_schema=False)
UNUSABLE = "This rating link is not valid (it may be cut short by your mail program)."


def _rated(cfg: Settings, token: str) -> satisfaction.Rated:
    rated = satisfaction.read_token(cfg.web.secret_key, token)
    if rated is None:
        raise HTTPException(404, UNUSABLE)
    return rated


@router.get("/{token}/{score}")
def rate(token: str, score: str, request: Request, session: Session = Depends(db), cfg: Settings = Depends(settings)):
    """One click: the answer is stored (a second click changes it, never adds one)."""
    rated = _rated(cfg, token)
    if score not in satisfaction.SCORES:
        raise HTTPException(404, "A rating is good or bad.")
    answer = satisfaction.record(session, rated, score)
    if answer is None:
        raise HTTPException(404, "This ticket no longer exists.")
    session.commit()
    return page(request, "public/rate.html", token=token, answer=answer, ticket=session.get(Ticket, rated.ticket_id))


@router.post("/{token}/comment", dependencies=[Depends(csrf_protect)])
def comment(token: str, request: Request, text: str = Form("", max_length=satisfaction.MAX_COMMENT),
            session: Session = Depends(db), cfg: Settings = Depends(settings)):
    rated = _rated(cfg, token)
    answer = satisfaction.add_comment(session, rated, text)
    if answer is None:
        raise HTTPException(404, "Choose good or bad first, with a link from the mail.")
    session.commit()
    return page(request, "public/rate.html", token=token, answer=answer, ticket=session.get(Ticket, rated.ticket_id),
                commented=True)
