"""Suggest a reply: Mistral drafts one from the thread and the similar tickets' resolutions; offline
(or when Mistral fails) the similar tickets' resolutions are offered instead. A suggestion only
fills the agent's reply box: nothing here sends mail. When the agent sends a reply that started
from a suggestion, the ticket's history says so (record_drafted)."""
from __future__ import annotations

import dataclasses
import json
import logging
import re
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.ai.prompt import ChatMessage, neutralise_mail_text
from core.ai.provider import ProviderError
from core.ai.thread import ThreadEntry
from core.ai.triage import ticket_thread
from core.assist.draft_links import unexpected_links
from core.assist.reply_prompt import REPLY_MAX_CHARS, DraftReply, build_reply_messages
from core.assist.similar import SimilarTicket, similar_resolved
from core.config import AiSettings
from core.models import Contact, Event, Message, Ticket

log = logging.getLogger(__name__)
DRAFT_MAX_RETRIES = 1  # an agent waits for the button: one retry, then the offline suggestion
Source = Literal["mistral", "offline"]
_BLANK_LINES = re.compile(r"\n{3,}")
_MARKER = re.compile(r"^(mistral|offline|similar)(?::(\d{1,10}(?:,\d{1,10}){0,9}))?$")


class ReplyDrafter(Protocol):
    """What drafts with a model: the Mistral provider's JSON chat."""

    def complete_json(self, messages: list[ChatMessage], response_format: Any) -> str:
        ...


@dataclass(frozen=True)
class SuggestedReply:
    """A draft for the reply box, where it came from, the tickets it used, and links to check."""

    text: str
    source: Source
    based_on: list[int]
    flagged_links: list[str]


def make_drafter(ai: AiSettings) -> ReplyDrafter | None:
    """The Mistral drafter when [ai] chooses Mistral (as for triage), else None (offline)."""
    choice = ai.provider if ai.provider != "auto" else ("mistral" if ai.api_key else "offline")
    if choice != "mistral":
        return None
    from core.ai.mistral import MistralProvider  # imported here: the SDK is slow to load

    return MistralProvider(dataclasses.replace(ai, max_retries=min(ai.max_retries, DRAFT_MAX_RETRIES)))


def sanitise_draft(text: str) -> str:
    """A draft as plain text for the reply box: no control characters, no marker-like bracket runs,
    at most two blank lines in a row, at most 5000 characters."""
    text = _BLANK_LINES.sub("\n\n", neutralise_mail_text(text or "")).strip()
    return text[:REPLY_MAX_CHARS]


def suggest_reply(session: Session, ticket: Ticket, ai: AiSettings, drafter: ReplyDrafter | None) -> SuggestedReply:
    """A Mistral draft when a drafter is given and answers; otherwise the similar tickets' resolutions."""
    similar = similar_resolved(session, ticket)
    if drafter is not None:
        subject, entries = ticket_thread(session, ticket.id) or (ticket.subject, [])
        try:
            text = _draft(drafter, subject, entries, similar, ai.thread_token_budget)
            return _checked(session, ticket, text, "mistral", similar)
        except ProviderError as exc:
            log.warning("ticket %s: suggested reply by Mistral failed, offering resolutions: %s", ticket.id, exc)
    return _checked(session, ticket, offline_text(similar), "offline", similar)


def offline_text(similar: list[SimilarTicket]) -> str:
    """The similar tickets' resolutions, most similar first, one paragraph each, to edit down."""
    return "\n\n".join(s.resolution.strip() for s in similar if s.resolution.strip())


def _draft(drafter: ReplyDrafter, subject: str, entries: list[ThreadEntry], similar: list[SimilarTicket],
           token_budget: int) -> str:
    messages = build_reply_messages(subject, entries, [(s.id, s.subject, s.resolution) for s in similar],
                                    token_budget)
    answer = drafter.complete_json(messages, _reply_format())
    if answer.startswith("```"):  # some models fence JSON even in JSON mode
        answer = answer.strip("`").removeprefix("json").strip()
    try:
        return DraftReply.model_validate(json.loads(answer)).reply
    except (json.JSONDecodeError, ValidationError):
        # Not the answer's text: it may quote the mail.
        raise ProviderError("Mistral's drafted reply is not the JSON object asked for") from None


def _reply_format() -> Any:
    from mistralai.extra import response_format_from_pydantic_model

    return response_format_from_pydantic_model(DraftReply)


def _checked(session: Session, ticket: Ticket, text: str, source: Source,
             similar: list[SimilarTicket]) -> SuggestedReply:
    text = sanitise_draft(text)
    ours = session.scalars(select(Message.body_text).where(Message.ticket_id == ticket.id,
                                                           Message.direction != "in")).all()
    flagged = unexpected_links(text, [*ours, *(s.resolution for s in similar)])
    if flagged:
        log.info("ticket %s: suggested reply names %d link(s) found nowhere in the ticket", ticket.id, len(flagged))
    return SuggestedReply(text, source, [s.id for s in similar] if text else [], flagged)


def record_drafted(session: Session, ticket: Ticket, agent: Contact, marker: str) -> bool:
    """Note in the history that the reply just sent began as a suggestion. The marker is what the page
    set when it filled the reply box: 'mistral', 'offline' or 'similar', then ':' and ticket ids.
    An unreadable marker is ignored (False): it must never cost the reply."""
    found = _MARKER.match(marker.strip())
    if not found:
        return False
    source, ids = found.group(1), found.group(2)
    what = {"mistral": "suggested by Mistral", "offline": "suggested from similar tickets' resolutions",
            "similar": "started from a similar ticket's resolution"}[source]
    based = f" (ticket {', '.join('#' + i for i in ids.split(','))})" if ids else ""
    session.add(Event(ticket_id=ticket.id, kind="reply_drafted", new_value=f"Reply {what}{based}, sent by the agent",
                      source=source, actor_id=agent.id))
    return True
