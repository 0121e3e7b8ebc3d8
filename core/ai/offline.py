"""Offline triage: an extractive summary and keyword rules. Deterministic, no network, no model."""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import cast

from core.ai import rules
from core.ai.provider import NOTE_MAX_CHARS, Category, Priority, Triage
from core.ai.thread import ThreadEntry, joined_thread

MAX_ANALYSED_CHARS = 20_000  # rules and summary look at the start of a very long mail only
SUBJECT_TERM_WEIGHT = 3
SUBJECT_CATEGORY_WEIGHT = 2
SHORT_LINE_CHARS = 40  # in wrapped text, a line this short ends a sentence (greeting, bullet)
MAX_NOTES = 3
NO_TEXT = "(no text)"

_SUFFIX = r"(?:s|es|ed|d|ing|en|n)?"
_WORD = re.compile(r"\w+(?:'\w+)*")
_SPACE = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")
_QUOTE_HEADER = re.compile(r"^(?:on .{0,200} wrote:|-{2,}\s*original message\s*-{2,})$", re.I)
_SIGNATURE = re.compile(r"^--\s*$")
_DECORATION = re.compile(r"([^\w\s])\1{3,}")  # "=====", "-----", "*****" rules and frames
_INVOICE_NUMBER = re.compile(
    r"\b(?:INV|RE|RG|FA|FAC)[-#/]?\d{3,}\b"
    r"|(?i:\b(?:invoice|rechnung|facture|factura)\s*(?:no\.?|nr\.?|number|num[ée]ro|n°|#)?\s*[:#]?\s*)"
    r"([A-Z0-9][A-Z0-9-]*\d[A-Z0-9-]*)"
)
_ORDER_NUMBER = re.compile(
    r"(?i:\b(?:order|bestellung|commande|pedido)\s*(?:no\.?|nr\.?|number|num[ée]ro|n°|#)?\s*[:#]?\s*)"
    r"(#?[A-Z0-9-]*\d[A-Z0-9-]{2,})"
)
_ERROR_LINE = re.compile(
    r"^.*\b(?:error|exception|fehler|erreur|failed)\b(?:\s*code)?\s*(?:[:#]|0x[0-9a-f]+|\d{3,}).*$",
    re.I | re.M,
)
_ATTACHMENT = re.compile(r"\b(?:attached|attachment|screenshot|anbei|anhang|ci-joint|adjunto)\b", re.I)


@dataclass(frozen=True)
class _Matcher:
    """Finds which keywords of which labels occur in a text, whole words only."""

    pattern: re.Pattern[str]
    labels_of: Mapping[str, tuple[str, ...]]

    def hits(self, text: str) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for match in self.pattern.finditer(text):
            keyword = match.group(1)
            for label in self.labels_of[keyword]:
                found.setdefault(label, set()).add(keyword)
        return found


def _compile(table: Mapping[str, Iterable[str]]) -> _Matcher:
    labels_of: dict[str, tuple[str, ...]] = {}
    for label, keywords in table.items():
        for keyword in keywords:
            labels_of[keyword] = labels_of.get(keyword, ()) + (label,)
    alternatives = "|".join(re.escape(k) for k in sorted(labels_of, key=lambda k: (-len(k), k)))
    return _Matcher(re.compile(rf"(?<!\w)({alternatives}){_SUFFIX}(?!\w)"), labels_of)


@dataclass(frozen=True)
class RuleExtras:
    """Keywords a deployment adds to the built-in tables ([ai] rules_file), hashable so matchers cache."""

    category: tuple[tuple[str, tuple[str, ...]], ...] = ()
    skills: tuple[tuple[str, tuple[str, ...]], ...] = ()
    critical: tuple[str, ...] = ()
    high: tuple[str, ...] = ()
    low: tuple[str, ...] = ()


NO_EXTRAS = RuleExtras()


def _merged(base: Mapping[str, tuple[str, ...]], extra: tuple[tuple[str, tuple[str, ...]], ...]
            ) -> dict[str, tuple[str, ...]]:
    table = dict(base)
    for label, keywords in extra:
        table[label] = table.get(label, ()) + keywords
    return table


@cache
def _matchers(extra: RuleExtras = NO_EXTRAS) -> dict[str, _Matcher]:
    return {
        "category": _compile(_merged(rules.CATEGORY_KEYWORDS, extra.category)),
        "skill": _compile(_merged(rules.SKILL_KEYWORDS, extra.skills)),
        "critical": _compile({"critical": rules.CRITICAL_PRIORITY_TERMS + extra.critical}),
        "high": _compile({"high": rules.HIGH_PRIORITY_TERMS + extra.high}),
        "low": _compile({"low": rules.LOW_PRIORITY_PHRASES + extra.low}),
    }


def _normalise(text: str) -> str:
    return text[:MAX_ANALYSED_CHARS].replace("\u2019", "'").lower()


def _one_line(text: str, limit: int) -> str:
    """Collapse whitespace and cut at a word boundary so the result is at most `limit` chars."""
    text = _SPACE.sub(" ", "".join(c if c.isprintable() else " " for c in text)).strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + "…"


def choose_category(subject: str, body: str, extra: RuleExtras = NO_EXTRAS) -> Category:
    """Pick the category whose keywords occur most (subject counts double); 'general' if none."""
    matcher = _matchers(extra)["category"]
    in_subject = matcher.hits(_normalise(subject))
    in_body = matcher.hits(_normalise(body))
    scores = {
        name: SUBJECT_CATEGORY_WEIGHT * len(in_subject.get(name, ())) + len(in_body.get(name, ()))
        for name in rules.CATEGORY_ORDER
    }
    best = max(rules.CATEGORY_ORDER, key=lambda name: (scores[name], -rules.CATEGORY_ORDER.index(name)))
    return cast(Category, best if scores[best] > 0 else rules.DEFAULT_CATEGORY)


def choose_priority(subject: str, body: str, extra: RuleExtras = NO_EXTRAS) -> Priority:
    """Critical on incident words or many urgency words, high on one, low on 'no rush' phrases."""
    matchers = _matchers(extra)
    text = _normalise(f"{subject}\n{body}")
    calm = bool(matchers["low"].hits(text))
    text = matchers["low"].pattern.sub(" ", text)  # "not urgent" must not count as "urgent"
    urgent = matchers["high"].hits(text).get("high", set())
    if matchers["critical"].hits(text) or len(urgent) >= rules.HIGH_TERMS_FOR_CRITICAL:
        return "critical"
    if urgent:
        return "high"
    return "low" if calm else rules.DEFAULT_PRIORITY


def choose_skills(subject: str, body: str, extra: RuleExtras = NO_EXTRAS) -> list[str]:
    """Skill tags whose keywords occur, the most mentioned first, at most MAX_SKILLS."""
    hits = _matchers(extra)["skill"].hits(_normalise(f"{subject}\n{body}"))
    ranked = sorted(hits, key=lambda skill: (-len(hits[skill]), skill))
    return ranked[: rules.MAX_SKILLS]


def _visible_lines(body: str, *, own_text_only: bool = True) -> list[str]:
    """The author's own lines: quoted lines dropped, stop at a signature or quoted original."""
    lines: list[str] = []
    for line in body[:MAX_ANALYSED_CHARS].replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        stripped = line.strip()
        if own_text_only and (_SIGNATURE.match(line) or _QUOTE_HEADER.match(stripped)):
            break
        if not (own_text_only and stripped.startswith(">")):
            lines.append(_DECORATION.sub(" ", stripped).strip())
    return lines


def split_sentences(body: str, *, own_text_only: bool = True) -> list[str]:
    """Split a mail body into sentences; short lines (greetings, bullets) stand alone."""
    sentences: list[str] = []
    pending: list[str] = []
    for line in _visible_lines(body, own_text_only=own_text_only) + [""]:
        if line:
            pending.append(line)
        if pending and (not line or len(line) < SHORT_LINE_CHARS or line[-1] in ".!?:。！？"):
            joined = _SPACE.sub(" ", " ".join(pending))
            sentences.extend(s.strip() for s in _SENTENCE_END.split(joined) if s.strip())
            pending = []
    return [s for s in sentences if any(c.isalnum() for c in s)]


def _terms(text: str) -> list[str]:
    return [
        w for w in _WORD.findall(_normalise(text))
        if len(w) > 1 and not w.isdigit() and w not in rules.STOP_WORDS
    ]


def summarize(subject: str, body: str) -> str:
    """Keep the 1-2 sentences richest in the mail's key terms and identifiers, in order, each said
    once, within 300 chars (core.ai.summary)."""
    from core.ai.summary import summarize_mail  # that module builds on this one's sentence splitter

    return summarize_mail(subject, body)


def derive_notes(subject: str, body: str, priority: Priority) -> list[str]:
    """Up to three short hints for the agent: references, an error line, urgency, attachments."""
    text = f"{subject}\n{body[:MAX_ANALYSED_CHARS]}"
    notes: list[str] = []
    if invoice := _INVOICE_NUMBER.search(text):
        notes.append(f"Customer mentions an invoice number: {invoice.group(1) or invoice.group(0)}")
    if order := _ORDER_NUMBER.search(text):
        notes.append(f"Customer mentions an order number: {order.group(1)}")
    if error := _ERROR_LINE.search("\n".join(_visible_lines(body))):
        notes.append(f"Mentions an error message: {_one_line(error.group(0), 150)}")
    if priority == "critical":
        notes.append("Possible incident: the mail uses incident or strong urgency words")
    elif priority == "high":
        notes.append("Customer seems urgent")
    if _ATTACHMENT.search(text):
        notes.append("Customer refers to an attachment or screenshot")
    return [_one_line(note, NOTE_MAX_CHARS) for note in notes[:MAX_NOTES]]


class OfflineProvider:
    """Triage by rules; never raises ProviderError, so it is always the fallback."""

    name = "offline"

    def __init__(self, extra: RuleExtras = NO_EXTRAS) -> None:
        self.extra = extra

    def triage(self, subject: str, body: str) -> Triage:
        """Return the rule-based triage of one mail."""
        subject = subject or ""
        body = body or ""
        priority = choose_priority(subject, body, self.extra)
        return Triage(
            summary=summarize(subject, body),
            category=choose_category(subject, body, self.extra),
            priority=priority,
            skills=choose_skills(subject, body, self.extra),
            notes=derive_notes(subject, body, priority),
        )

    def triage_thread(self, subject: str, entries: list[ThreadEntry]) -> Triage:
        """The triage of a whole thread: rules on all of it, the summary of its current state."""
        from core.ai.summary import summarize_thread

        triage = self.triage(subject, joined_thread(entries))
        return triage.model_copy(update={"summary": summarize_thread(subject or "", entries)})


def load_rule_extras(path: str) -> RuleExtras:
    """Read [ai] rules_file: TOML tables [category] (billing/account/technical = [...]), [skills]
    (skill = [...]) and [priority] (critical/high/low = [...]) adding keywords to the built-in rules."""
    import tomllib

    from core.errors import ConfigError

    if not path:
        return NO_EXTRAS
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"[ai] rules_file {path}: {exc}") from None

    def words(value: object, where: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise ConfigError(f"[ai] rules_file {path}: {where} must be a list of keywords")
        return tuple(v.strip().lower() for v in value)

    unknown = set(data) - {"category", "skills", "priority"}
    if unknown:
        raise ConfigError(f"[ai] rules_file {path}: unknown table(s) {', '.join(sorted(unknown))}")
    category = data.get("category", {})
    if set(category) - set(rules.CATEGORY_ORDER):
        raise ConfigError(f"[ai] rules_file {path}: categories are {', '.join(rules.CATEGORY_ORDER)}")
    priority = data.get("priority", {})
    if set(priority) - {"critical", "high", "low"}:
        raise ConfigError(f"[ai] rules_file {path}: priority keys are critical, high, low")
    skills = data.get("skills", {})
    for skill in skills:
        if not 0 < len(skill) <= 32:
            raise ConfigError(f"[ai] rules_file {path}: skill names are 1-32 characters")
    return RuleExtras(
        category=tuple((name, words(v, f"category.{name}")) for name, v in sorted(category.items())),
        skills=tuple((name.lower(), words(v, f"skills.{name}")) for name, v in sorted(skills.items())),
        critical=words(priority.get("critical", []), "priority.critical"),
        high=words(priority.get("high", []), "priority.high"),
        low=words(priority.get("low", []), "priority.low"))
