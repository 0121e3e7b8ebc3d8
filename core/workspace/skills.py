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
            if suffix == "s" and word.endswith(("ss", "us")):
                continue          # 'access', 'business', 'status': not plurals
            if suffix == "es" and not word[:-2].endswith(("s", "x", "z", "ch", "sh")):
                continue          # 'invoices' is 'invoice' + s, 'boxes' is 'box' + es
            word = word[: -len(suffix)] + ("y" if suffix == "ies" else "")
            break
    # A silent final e: 'invoice' and 'invoices', 'cache' and 'caches' meet at 'invoic', 'cach'.
    return word[:-1] if word.endswith("e") and len(word) > MIN_STEM + 1 else word


def synonym_groups(synonyms: tuple[str, ...]) -> list[set[str]]:
    """'network = lan, wifi' → [{'network', 'lan', 'wifi'}] as stems ([assignment] skill_synonyms)."""
    groups = []
    for line in synonyms:
        words = {skill_stem(w) for w in line.replace("=", ",").split(",") if w.strip()}
        if len(words) > 1:
            groups.append(words)
    return groups


def related_stems(wanted: list[str], synonyms: tuple[str, ...] = ()) -> set[str]:
    """The stems of the wanted skills and of every configured synonym of one of them."""
    stems = {skill_stem(s) for s in wanted}
    for group in synonym_groups(synonyms):
        if stems & group:
            stems |= group
    return stems


def related_skills(session: Session, wanted: list[str], synonyms: tuple[str, ...] = ()) -> list[str]:
    """The agents' skill names that match any wanted skill by stem or configured synonym (the wanted
    names included)."""
    stems = related_stems(wanted, synonyms)
    known = session.scalars(select(AgentSkill.skill).distinct())
    return sorted({*wanted, *(k for k in known if skill_stem(k) in stems)})
