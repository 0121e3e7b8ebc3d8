"""The rating links of a resolution mail: one click records good or bad, no sign-in (the signed
link is the credential); the page that answers offers an optional comment.

A GET never records: mail security scanners fetch every link of a mail before the person reads it.
The link's page posts the answer itself (/static/rate.js, at once) or on its button without
JavaScript; a link whose answer is already given shows the thank-you page."""
from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse
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


def _score(score: str) -> str:
    if score not in satisfaction.SCORES:
        raise HTTPException(404, "A rating is good or bad.")
    return score


@router.get("/{token}/{score}")
def rate_page(token: str, score: str, request: Request, session: Session = Depends(db),
              cfg: Settings = Depends(settings)):
    """The link in the mail: the thank-you page once this answer is given, else the page that gives it."""
    rated, score = _rated(cfg, token), _score(score)
    ticket = session.get(Ticket, rated.ticket_id)
    if ticket is None:
        raise HTTPException(404, "This ticket no longer exists.")
    answer = satisfaction.answer_of(session, rated)
    if answer is not None and answer.score == score:
        return page(request, "public/rate.html", token=token, answer=answer, ticket=ticket)
    response = page(request, "public/rate_confirm.html", token=token, score=score, ticket=ticket)
    response.headers["Cache-Control"] = "no-store"  # the form's CSRF token is this visitor's
    return response


@router.post("/{token}/{score}", dependencies=[Depends(csrf_protect)])
def rate(token: str, score: str, session: Session = Depends(db), cfg: Settings = Depends(settings)):
    """The answer: stored (a second one changes it, never adds one), then the thank-you page."""
    rated, score = _rated(cfg, token), _score(score)
    if satisfaction.record(session, rated, score) is None:
        raise HTTPException(404, "This ticket no longer exists.")
    session.commit()
    return RedirectResponse(f"/rate/{token}/{score}", status_code=303)

