"""Skill names that mean the same: 'network' ≈ 'networking', 'printer' ≈ 'printers' ≈ 'printing'.

Triage suggests free words and admins type skills by hand, so the two rarely agree on a word form;
both sides are reduced to a stem before they are compared.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import AgentSkill

# Longest first; a stem keeps at least MIN_STEM characters ("ring" is not "r").
_SUFFIXES = ("ations", "ation", "ings", "ing", "ers", "er", "ies", "es", "s", "ed")
MIN_STEM = 3


def skill_stem(skill: str) -> str:
    """The word's stem for comparison: lower case, separators dropped, one common suffix removed."""
    word = "".join(c for c in skill.lower() if c.isalnum())
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= MIN_STEM:
            if suffix == "s" and word.endswith("ss"):
                continue          # 'access', 'business': not plurals
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def related_skills(session: Session, wanted: list[str]) -> list[str]:
    """The agents' skill names that match any wanted skill by stem (the wanted names included)."""
    stems = {skill_stem(s) for s in wanted}
    known = session.scalars(select(AgentSkill.skill).distinct())
    return sorted({*wanted, *(k for k in known if skill_stem(k) in stems)})
