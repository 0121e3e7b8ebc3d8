"""The triage contract: what any AI provider returns, how one is chosen, and the offline fallback."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from core.ai.thread import ThreadEntry, joined_thread
from core.config import AiSettings
from core.errors import ConfigError, PostdeskError
from core.log_limits import OncePer

log = logging.getLogger(__name__)
log.addFilter(OncePer(60))  # triage_with_fallback warns on every failed call: once a minute is enough

SUMMARY_MAX_CHARS = 300
SKILL_MAX_CHARS = 32
MAX_SKILLS = 8
NOTE_MAX_CHARS = 200
MAX_NOTES = 5
JOINED_THREAD_CHARS = 12_000

Category = Literal["billing", "technical", "account", "general"]
Priority = Literal["low", "medium", "high", "critical"]
Skill = Annotated[
    str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=SKILL_MAX_CHARS)
]
Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NOTE_MAX_CHARS)]


class ProviderError(PostdeskError):
    """A triage provider failed (network, HTTP error after retries, invalid answer); fall back."""


class Triage(BaseModel):
    """One mail's triage. Unknown keys are rejected: a model's answer carries these fields only."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    summary: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=SUMMARY_MAX_CHARS)
    ] = Field(description="One or two sentences saying what the customer needs.")
    category: Category = Field(description="The kind of request.")
    priority: Priority = Field(description="How urgent the request is for the customer.")
    skills: list[Skill] = Field(
        max_length=MAX_SKILLS,
        description="Short lowercase skill tags an agent needs, e.g. printers, billing, networking.",
    )
    notes: list[Note] = Field(
        max_length=MAX_NOTES, description="Short hints for the agent, e.g. an invoice number."
    )


@dataclass(frozen=True)
class TriageOutcome:
    """A triage and the name of the provider that produced it ("mistral" or "offline")."""

    triage: Triage
    source: str


class TriageProvider(Protocol):
    """Anything that triages a mail; raises ProviderError on any failure."""

    name: str

    def triage(self, subject: str, body: str) -> Triage:
        """Return the triage of one mail, or raise ProviderError."""
        ...


def make_provider(ai: AiSettings) -> TriageProvider:
    """Choose the provider from [ai] settings: 'auto' is Mistral when an API key is set."""
    choice = ai.provider
    if choice == "auto":
        choice = "mistral" if ai.api_key else "offline"
    if choice == "offline":
        return make_offline(ai)
    if choice == "mistral":
        from core.ai.mistral import MistralProvider  # imported here: the SDK is slow to load

        return MistralProvider(ai)
    raise ConfigError(f"[ai] provider must be auto, mistral or offline, not {ai.provider!r}")


def make_offline(ai: AiSettings) -> TriageProvider:
    """The offline provider with the deployment's extra keywords ([ai] rules_file)."""
    from core.ai.offline import OfflineProvider, load_rule_extras

    return OfflineProvider(load_rule_extras(ai.rules_file))


def triage_thread(provider: TriageProvider, subject: str, entries: list[ThreadEntry]) -> Triage:
    """A thread's triage: the provider's own thread triage when it has one (offline, Mistral), else
    its triage of the thread joined into one text (the newest part, when very long)."""
    by_thread = getattr(provider, "triage_thread", None)
    if by_thread is not None:
        return by_thread(subject, entries)
    return provider.triage(subject, joined_thread(entries)[-JOINED_THREAD_CHARS:])


def triage_with_fallback(
    primary: TriageProvider, fallback: TriageProvider, subject: str, body: str
) -> TriageOutcome:
    """Triage with `primary`; when it raises ProviderError, use `fallback` (the offline rules)."""
    try:
        return TriageOutcome(primary.triage(subject, body), primary.name)
    except ProviderError as exc:
        log.warning("triage provider %s failed, using %s: %s", primary.name, fallback.name, exc)
    return TriageOutcome(fallback.triage(subject, body), fallback.name)
