"""Pages anyone may open: the home page, a ticket by its signed link, health."""
from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from sqlalchemy.orm import Session

from core import views
from core.config import Settings
from portal.deps import db, settings

router = APIRouter()


@router.get("/", include_in_schema=False)
def home(request: Request, cfg: Settings = Depends(settings)):
    return request.app.state.templates.TemplateResponse(
        request, "home.html", {"addresses": cfg.smtp.addresses})


@router.get("/t/{token}", include_in_schema=False)
def ticket_by_link(token: str, request: Request, session: Session = Depends(db)):
    access = views.ticket_by_link(session, token)
    if access is None:
        raise HTTPException(404, "This link is unknown, expired or revoked.")
    ticket = access.ticket
    messages = [m for m in ticket.messages if m.direction != "note"]
    return request.app.state.templates.TemplateResponse(request, "ticket.html", {
        "ticket": ticket, "messages": messages, "events": views.history(session, ticket.id)})


@router.get("/healthz")
def healthz(session: Session = Depends(db)) -> dict:
    return {"status": "ok", "quarantined": views.quarantine_count(session)}
