"""The managed list of skills: admins add, rename and merge them; agents are given skills from it
(picked as chips), and a rename or merge carries over to every agent and ticket that had the skill."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.orm import Session, aliased

from core.accounts import InvalidInput
from core.db import insert_or_ignore
from core.models import AgentSkill, Skill, TicketSkill, utcnow
from core.staff import SKILL_RE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SkillUse:
    name: str
    agents: int
    tickets: int


def _valid(name: str) -> str:
    name = name.strip().lower()
    if not SKILL_RE.match(name):
        raise InvalidInput("a skill is a short word: letters, digits, - _ . (at most 32)")
    return name


def skill_names(session: Session) -> list[str]:
    return list(session.scalars(select(Skill.name).order_by(Skill.name)))


def skills_in_use(session: Session) -> list[SkillUse]:
    """Every managed skill with how many agents have it and how many tickets need it."""
    agents = dict(session.execute(select(AgentSkill.skill, func.count()).group_by(AgentSkill.skill)).all())
    tickets = dict(session.execute(select(TicketSkill.skill, func.count()).group_by(TicketSkill.skill)).all())
    return [SkillUse(n, agents.get(n, 0), tickets.get(n, 0)) for n in skill_names(session)]


def add_skills(session: Session, names: list[str]) -> None:
    """Put skills on the list (those already there stay as they are)."""
    for name in names:
        insert_or_ignore(session, Skill, ("name",), {"name": _valid(name), "created_at": utcnow()})


def rename_skill(session: Session, old: str, new: str) -> None:
    """Rename a skill everywhere; InvalidInput when it is unknown or the new name exists (merge instead)."""
    old, new = _valid(old), _valid(new)
    if session.get(Skill, old) is None:
        raise InvalidInput(f"there is no skill {old!r}")
    if old == new:
        return
    if session.get(Skill, new) is not None:
        raise InvalidInput(f"{new!r} exists already: merge {old!r} into it instead")
    session.add(Skill(name=new))
    session.flush()
    for model in (AgentSkill, TicketSkill):
        session.execute(update(model).where(model.skill == old).values(skill=new)
                        .execution_options(synchronize_session=False))
    session.execute(delete(Skill).where(Skill.name == old))
    log.info("skill %s renamed to %s", old, new)


def merge_skills(session: Session, source: str, target: str) -> None:
    """Fold `source` into `target`: whoever had source has target (once), and source is gone."""
    source, target = _valid(source), _valid(target)
    if source == target:
        raise InvalidInput("choose two different skills to merge")
    for name in (source, target):
        if session.get(Skill, name) is None:
            raise InvalidInput(f"there is no skill {name!r}")
    for model, owner in ((AgentSkill, AgentSkill.contact_id), (TicketSkill, TicketSkill.ticket_id)):
        other = aliased(model)
        owner_col = getattr(other, owner.key)
        has_target = exists().where(owner_col == owner, other.skill == target)
        session.execute(delete(model).where(model.skill == source, has_target)
                        .execution_options(synchronize_session=False))
        session.execute(update(model).where(model.skill == source).values(skill=target)
                        .execution_options(synchronize_session=False))
    session.execute(delete(Skill).where(Skill.name == source))
    log.info("skill %s merged into %s", source, target)
