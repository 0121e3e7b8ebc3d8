"""What admins decide about people: role, active or not, and the skills tickets are assigned by."""
from __future__ import annotations

import logging
import re

from sqlalchemy import case, delete, func, or_, select
from sqlalchemy.orm import Session

from core.accounts import InvalidInput
from core.models import ROLES, AgentSkill, Contact

log = logging.getLogger(__name__)
SKILL_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")


def people(session: Session, role: str = "", limit: int = 500) -> list[Contact]:
    """Contacts, staff first then by address; only one role when given."""
    staff_first = case((Contact.role == "admin", 0), (Contact.role == "agent", 1), else_=2)
    stmt = select(Contact).order_by(staff_first, Contact.email).limit(limit)
    return list(session.scalars(stmt.where(Contact.role == role) if role else stmt))


def staff(session: Session) -> list[Contact]:
    """The active agents and admins: who a ticket can be assigned to."""
    return list(session.scalars(select(Contact).where(Contact.role.in_(("agent", "admin")),
                                                      Contact.active.is_(True)).order_by(Contact.email)))


def skills_of(session: Session, contact_ids: list[int]) -> dict[int, list[str]]:
    """Each person's skills, sorted (one query for a page of people)."""
    found: dict[int, list[str]] = {cid: [] for cid in contact_ids}
    if contact_ids:
        for cid, skill in session.execute(select(AgentSkill.contact_id, AgentSkill.skill)
                                          .where(AgentSkill.contact_id.in_(contact_ids))
                                          .order_by(AgentSkill.skill)):
            found[cid].append(skill)
    return found


def parse_skills(text: str) -> list[str]:
    """'Printers, VPN,printers' → ['printers', 'vpn']; a malformed skill is InvalidInput."""
    skills = list(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    bad = [s for s in skills if not SKILL_RE.match(s)]
    if bad:
        raise InvalidInput(f"skills are short words (letters, digits, - _ .): {', '.join(bad)}")
    return skills


def update_person(session: Session, admin: Contact, person: Contact, *, role: str, active: bool,
                  skills: list[str]) -> None:
    """Set role, active flag and skills; an admin cannot demote or deactivate themselves."""
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
    if person.id == admin.id and (role != "admin" or not active):
        raise InvalidInput("you cannot remove your own admin role or deactivate yourself")
    if (person.role, person.active) != (role, active):
        log.info("contact %s: role %s → %s, active %s → %s (by %s)", person.id, person.role, role,
                 person.active, active, admin.id)
    person.role, person.active = role, active
    session.execute(delete(AgentSkill).where(AgentSkill.contact_id == person.id))
    session.add_all(AgentSkill(contact_id=person.id, skill=s) for s in skills)


def find_people(session: Session, role: str = "", search: str = "", page: int = 1,
                per_page: int = 50) -> tuple[list[Contact], int]:
    """One page of people (staff first, then by address) matching a role and a search in address or
    name, and how many match in all."""
    stmt = select(Contact)
    if role:
        stmt = stmt.where(Contact.role == role)
    text = search.replace("\x00", "").strip().lower()[:200]
    if text:
        stmt = stmt.where(or_(Contact.email.contains(text, autoescape=True),
                              func.lower(Contact.name).contains(text, autoescape=True)))
    total = session.scalar(stmt.with_only_columns(func.count(), maintain_column_froms=True)) or 0
    # admin < agent < customer: by role, then address, staff come first and ix_contact_role_email
    # hands the page over in order (a CASE ranking sorted all 25,000 contacts on every page).
    found = session.scalars(stmt.order_by(Contact.role, Contact.email).offset((max(1, page) - 1) * per_page)
                            .limit(per_page))
    return list(found), total
