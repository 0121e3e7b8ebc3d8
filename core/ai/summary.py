"""Offline extractive summaries: a mail's key sentences, or a thread's current state, within 300 chars.

Never the same sentence twice (near-duplicates neither: a customer who repeats the error code in
every mail gets it said once), and identifiers (error codes, invoice and order numbers, product
names, versions) are kept: sentences carrying them rank higher, and one the chosen sentences miss
is added in parentheses while there is room.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from core.ai.offline import NO_TEXT, SUBJECT_TERM_WEIGHT, _one_line, _terms, split_sentences
from core.ai.provider import SUMMARY_MAX_CHARS
from core.ai.thread import ThreadEntry

MIN_SENTENCE_WORDS = 3
IDENTIFIER_WEIGHT = 4.0        # an identifier counts as much as four mentions of a key term
ASK_WEIGHT = 1.5               # the customer's last mail: a question or request is what is open
SAME_SENTENCE_OVERLAP = 0.6    # share of terms two sentences share to count as one said twice
MAX_IDENTIFIERS_ADDED = 3
MAX_IDENTIFIER_CHARS = 40      # longer "identifiers" are encoded data (PGP, base64), not names
SUPPORT_LABEL = "Support: "
NOW_LABEL = "Now: "

_IDENTIFIER = re.compile(
    r"0x[0-9A-Fa-f]{4,}"                                  # Windows error codes
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"                      # addresses and logins
    r"|(?<![\w/])/[a-z][\w-]*(?:/[\w.-]+)+"                # URL paths (/v2/orders)
    r"|\b[A-Z]{1,6}[-#/]?\d[\w/-]*\d\b|\b[A-Z]{1,6}-\d\b"  # E-4711, INV-2024-0042, RG-77310, SN-88120-XZ
    r"|#\d{3,}\b"                                         # order #778812
    r"|\b\d{2,}[-/]\d{3,}\b"                              # 45-99021, 2023/4471
    r"|\b[A-Z][a-z]+[A-Z][A-Za-z]*\b(?: \d+(?:\.\d+)*\b)?"    # SecureLink 5.2, PlanProSync, ThinkBook 14
    r"|\b[A-Z][A-Za-z]+ \d+(?:\.\d+)*\b"                   # Outlook 2021, Article 17
    r"|\bv?\d+\.\d+(?:\.\d+)+\b"                           # versions 2.4.1
    r"|(?i:\b(?:error|code|fehler|erreur)\s+)\d{3,}\b"     # Error 1603
)
# A greeting that opens the line of the first sentence ("Hi, I just placed…") says nothing.
_GREETING = re.compile(r"^(?:hi|hello|hey|dear|good (?:morning|afternoon|evening)|bonjour|hallo|hola|guten tag)"
                       r"\b[^,.!?\n]{0,30}[,!]\s+(?=\w)", re.I)
_ASK = re.compile(r"\?|\b(?:please|can you|could you|would you|bitte|merci de|pouvez|por favor)\b", re.I)
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class _Sentence:
    text: str
    terms: frozenset[str]
    identifiers: tuple[str, ...]


def identifiers_in(text: str) -> list[str]:
    """The identifiers a text names, in order, each once (not the cid: names of inline images)."""
    found = (m.group(0).strip() for m in _IDENTIFIER.finditer(text)
             if not text[max(0, m.start() - 4):m.start()].lower().endswith("cid:"))
    return list(dict.fromkeys(i for i in found if len(i) <= MAX_IDENTIFIER_CHARS
                              and (any(c.isdigit() for c in i) or _is_camel(i))))


def _is_camel(word: str) -> bool:
    """A product-like name: capitals inside a word of 6+ letters (PlanProSync; not GmbH)."""
    return len(word) >= 6 and word[:1].isupper() and any(c.isupper() for c in word[2:])


def _sentences(text: str) -> list[_Sentence]:
    found = (_GREETING.sub("", s, count=1) for s in split_sentences(text))
    return [_Sentence(s, frozenset(_terms(s)), tuple(identifiers_in(s))) for s in found
            if len(_WORD.findall(s)) >= MIN_SENTENCE_WORDS]


def _said_already(candidate: _Sentence, chosen: list[_Sentence]) -> bool:
    """True when the candidate repeats a chosen sentence (same terms for the most part)."""
    for other in chosen:
        if candidate.text.casefold() == other.text.casefold():
            return True
        smaller = min(len(candidate.terms), len(other.terms))
        if smaller and len(candidate.terms & other.terms) / smaller >= SAME_SENTENCE_OVERLAP:
            return True
    return False


class _Scorer:
    """Scores sentences by the thread's key terms (the subject's count more) and identifiers."""

    def __init__(self, subject: str, sentences: list[_Sentence]) -> None:
        self.weights = Counter(t for s in sentences for t in s.terms)
        for term in set(_terms(subject)):
            self.weights[term] += SUBJECT_TERM_WEIGHT

    def __call__(self, s: _Sentence, ask: bool = False) -> float:
        value = sum(self.weights[t] for t in s.terms) + IDENTIFIER_WEIGHT * len(s.identifiers)
        if ask and _ASK.search(s.text):
            value *= ASK_WEIGHT
        return value / math.sqrt(len(_WORD.findall(s.text)))


def _best(candidates: list[_Sentence], chosen: list[_Sentence], score: _Scorer, n: int = 1,
          ask: bool = False) -> list[_Sentence]:
    """The n best-scored candidates that repeat nothing chosen, in their order in the text."""
    picked: list[_Sentence] = []
    for s in sorted(candidates, key=lambda s: -score(s, ask)):
        if len(picked) == n:
            break
        if not _said_already(s, chosen + picked):
            picked.append(s)
    return sorted(picked, key=candidates.index)


def _with_identifiers(text: str, identifiers: list[str]) -> str:
    """Add identifiers the text misses, in parentheses, while they fit in the limit."""
    # Codes and numbers only: a name with a number ("Lyon 12", "Windows 11") is as often an address
    # or a platform as a product, and the sentences chosen for it carry it when it matters.
    missing = [i for i in identifiers if " " not in i and i.casefold() not in text.casefold()]
    missing = missing[:MAX_IDENTIFIERS_ADDED]
    while missing:
        longer = f"{text} ({', '.join(missing)})"
        if len(longer) <= SUMMARY_MAX_CHARS:
            return longer
        missing.pop()
    return text


def summarize_mail(subject: str, body: str) -> str:
    """One mail: its 1-2 richest sentences (never one repeated), identifiers kept, within 300 chars."""
    sentences = _sentences(body)
    if not sentences:
        return _fallback(subject, body)
    score = _Scorer(subject, sentences)
    keep = 1 if len(sentences) <= 2 else 2  # always leave something out of a multi-sentence body
    chosen = _best(sentences, [], score, keep)
    text = " ".join(s.text for s in chosen)
    if len(text) > SUMMARY_MAX_CHARS:
        text = max(chosen, key=score).text
    text = _one_line(text, SUMMARY_MAX_CHARS)
    return _with_identifiers(text, identifiers_in(" ".join(s.text for s in sentences)))


def _fallback(subject: str, body: str) -> str:
    """No sentence of three words: the whole short text, the subject, or the placeholder."""
    lines = split_sentences(body)
    if not lines and subject.strip():  # only quotes or a signature: the subject says more
        return _one_line(subject, SUMMARY_MAX_CHARS) or NO_TEXT
    lines = lines or split_sentences(body, own_text_only=False)
    return _one_line(" ".join(lines), SUMMARY_MAX_CHARS) or _one_line(subject, SUMMARY_MAX_CHARS) or NO_TEXT


def summarize_thread(subject: str, entries: list[ThreadEntry]) -> str:
    """A thread's current state: the problem as first told, what support suggested last, and what
    the customer said and asked last; each said once, identifiers kept, within 300 chars."""
    entries = [e for e in entries if e.text.strip()]
    if len(entries) <= 1 or not any(e.author == "customer" for e in entries):
        return summarize_mail(subject, "\n\n".join(e.text for e in entries))
    per_entry = [_sentences(e.text) for e in entries]
    score = _Scorer(subject, [s for sentences in per_entry for s in sentences])
    customer = [i for i, e in enumerate(entries) if e.author == "customer"]
    first, last = customer[0], customer[-1]
    problem = _best(per_entry[first], [], score)
    now = _best(per_entry[last], problem, score, 2, ask=True) if last != first else []
    support = [i for i, e in enumerate(entries) if e.author == "support" and i < last]
    tried = _best(per_entry[support[-1]], problem + now, score) if support else []
    text = _compose(problem, tried, now)
    thread_ids = identifiers_in(" ".join(s.text for i in customer for s in per_entry[i]))
    return _with_identifiers(text, thread_ids) if text else summarize_mail(subject, entries[0].text)


def _compose(problem: list[_Sentence], tried: list[_Sentence], now: list[_Sentence]) -> str:
    """Join the parts, dropping what does not fit: first support's part, then the older of the
    customer's last sentences, then cutting the problem; the customer's last word stays."""
    def joined(p: list[_Sentence], t: list[_Sentence], n: list[_Sentence]) -> str:
        parts = [" ".join(s.text for s in p)]
        if t:
            parts.append(SUPPORT_LABEL + " ".join(s.text for s in t))
        if n:
            parts.append(NOW_LABEL + " ".join(s.text for s in n))
        return " ".join(x for x in parts if x.strip())

    for t, n in ((tried, now), ([], now), ([], now[-1:])):
        text = joined(problem, t, n)
        if len(text) <= SUMMARY_MAX_CHARS:
            return _one_line(text, SUMMARY_MAX_CHARS)
    tail = joined([], [], now[-1:])
    room = SUMMARY_MAX_CHARS - len(tail) - 1
    head = _one_line(" ".join(s.text for s in problem), room) if room > 40 else ""
    return _one_line(f"{head} {tail}".strip(), SUMMARY_MAX_CHARS)
