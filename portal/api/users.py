"""JSON routes on people (OpenAPI at /docs): admins list contacts and change roles, names, activity, skills."""
from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from core import staff as people
from core.accounts import InvalidInput
from core.models import Contact
from portal.api.schemas import Problem, Role, Text, UserOut, UserPage, UserPatch
from portal.deps import csrf_protect, db, require_role

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["users"])

UserId = Annotated[int, Path(ge=1, le=2**31 - 1, description="the person's id")]


def _errors(*codes: int) -> dict:
    return {code: {"model": Problem} for code in codes}


@router.get("/users", response_model=UserPage, responses=_errors(401, 403, 422))
def list_users(_: Contact = Depends(require_role("admin")), session: Session = Depends(db),
               role: Annotated[list[Role], Query(description="repeat to combine")] = [],
               active: bool | None = None,
               search: Annotated[Text, Query(max_length=200, description="part of the email or name")] = "",
               page: Annotated[int, Query(ge=1, le=100_000)] = 1,
               per_page: Annotated[int, Query(ge=1, le=100)] = 50) -> UserPage:
    """Everyone Postdesk knows (accounts and people who only wrote in), staff first."""
    stmt = select(Contact)
    if role:
        stmt = stmt.where(Contact.role.in_(role))
    if active is not None:
        stmt = stmt.where(Contact.active.is_(active))
    if search.strip():
        text = search.strip().lower()
        stmt = stmt.where(or_(Contact.email.contains(text, autoescape=True),
                              func.lower(Contact.name).contains(text, autoescape=True)))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    staff_first = func.coalesce(func.nullif(Contact.role, "customer"), "zz")
    found = list(session.scalars(stmt.order_by(staff_first, Contact.email).offset((page - 1) * per_page)
                                 .limit(per_page)))
    skills = people.skills_of(session, [p.id for p in found])
    return UserPage(items=[UserOut.of(p, skills[p.id]) for p in found], total=total, page=page, per_page=per_page)


@router.patch("/users/{user_id}", response_model=UserOut, responses=_errors(400, 401, 403, 404, 409, 422))
def change_user(user_id: UserId, body: UserPatch, admin: Contact = Depends(require_role("admin")),
                _csrf: None = Depends(csrf_protect), session: Session = Depends(db)) -> UserOut:
    """Change a person's role, activity, name or skills (skills replace the current list).

    The admin pages' rule holds here too: an admin cannot demote or deactivate themselves (409),
    so there is always an active admin left."""
    person = session.get(Contact, user_id)
    if person is None:
        raise HTTPException(404, f"No user #{user_id}.")
    skills = list(dict.fromkeys(body.skills)) if body.skills is not None else \
        people.skills_of(session, [person.id])[person.id]
    try:
        people.update_person(session, admin, person, role=body.role or person.role,
                             active=person.active if body.active is None else body.active, skills=skills)
    except InvalidInput as exc:  # the only one left once the body is valid: the admin's own role
        raise HTTPException(409, str(exc)) from None
    if body.name is not None and body.name.strip() != person.name:
        log.info("contact %s: name changed (by %s)", person.id, admin.id)
        person.name = body.name.strip()
    session.commit()
    return UserOut.of(person, people.skills_of(session, [person.id])[person.id])
