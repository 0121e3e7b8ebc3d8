"""The admin's managed list of skills: add, rename, merge (a rename or merge carries over to every
agent and ticket). Every route needs an admin."""
from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from core import skills
from core.i18n import N_
from core.errors import SenderError
from core.models import Contact
from portal.deps import csrf_protect, db, require_role
from portal.render import page

log = logging.getLogger(__name__)
router = APIRouter(prefix="/admin/skills", include_in_schema=False)
admin_only = require_role("admin")
NOTICES = {"added": N_("Skill added."), "renamed": N_("Skill renamed everywhere."), "merged": N_("Skills merged.")}


def _skills_page(request: Request, session: Session, status_code: int = 200, **extra):
    return page(request, "admin/skills.html", status_code=status_code, skills=skills.skills_in_use(session),
                notice=NOTICES.get(request.query_params.get("done", ""), ""), **extra)


@router.get("")
def skills_page(request: Request, user: Contact = Depends(admin_only), session: Session = Depends(db)):
    return _skills_page(request, session)


def _apply(request: Request, session: Session, done: str, change) -> object:
    try:
        change()
    except SenderError as exc:
        session.rollback()
        return _skills_page(request, session, 400, error=str(exc))
    session.commit()
    return RedirectResponse(f"/admin/skills?done={done}", status_code=303)


@router.post("")
def add_skill(request: Request, name: str = Form(""), user: Contact = Depends(admin_only),
              _csrf: None = Depends(csrf_protect), session: Session = Depends(db)):
    return _apply(request, session, "added", lambda: skills.add_skills(session, [name]))


@router.post("/rename")
def rename_skill(request: Request, old: str = Form(""), new: str = Form(""), user: Contact = Depends(admin_only),
                 _csrf: None = Depends(csrf_protect), session: Session = Depends(db)):
    return _apply(request, session, "renamed", lambda: skills.rename_skill(session, old, new))


@router.post("/merge")
def merge_skills(request: Request, source: str = Form(""), target: str = Form(""),
                 user: Contact = Depends(admin_only), _csrf: None = Depends(csrf_protect),
                 session: Session = Depends(db)):
    return _apply(request, session, "merged", lambda: skills.merge_skills(session, source, target))
