"""Canned replies: a title and a Markdown body with placeholders, shared with the team or personal.

Placeholders are filled by plain substitution of four known names; the body is never run as a
template, so what an agent types cannot reach anything but those four values.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from core.accounts import InvalidInput
from core.models import CannedReply, Contact, Ticket, utcnow
from core.workflow import NotAllowed

PLACEHOLDER = re.compile(r"\{\{\s*(customer\.name|ticket\.id|ticket\.subject|agent\.name)\s*\}\}")
MAX_TITLE = 200
MAX_BODY = 20_000


class CannedReplyNotFound(InvalidInput):
    """No canned reply with this id that the agent may see."""


@dataclass(frozen=True)
class Draft:
    title: str
    body: str
    shared: bool


def visible_replies(session: Session, agent: Contact) -> list[CannedReply]:
    """The team's shared replies and the agent's own, by title."""
    return list(session.scalars(select(CannedReply).where(or_(CannedReply.shared.is_(True),
                                                              CannedReply.owner_id == agent.id))
                                .order_by(CannedReply.title, CannedReply.id)))


def reply_for(session: Session, agent: Contact, reply_id: int) -> CannedReply:
    """A reply the agent may see (shared or own); another agent's personal one is as unknown as none."""
    reply = session.get(CannedReply, reply_id)
    if reply is None or not (reply.shared or reply.owner_id == agent.id):
        raise CannedReplyNotFound(f"No canned reply #{reply_id}.")
    return reply


def _checked(title: str, body: str) -> tuple[str, str]:
    title, body = title.strip(), body.replace("\r\n", "\n")
    if not title or not body.strip():
        raise InvalidInput("a canned reply needs a title and a body")
    if len(title) > MAX_TITLE or len(body) > MAX_BODY:
        raise InvalidInput(f"title at most {MAX_TITLE} characters, body at most {MAX_BODY}")
    return title, body


def create_reply(session: Session, agent: Contact, draft: Draft) -> CannedReply:
    """A new canned reply owned by the agent."""
    title, body = _checked(draft.title, draft.body)
    reply = CannedReply(owner_id=agent.id, title=title, body=body, shared=draft.shared)
    session.add(reply)
    session.flush()
    return reply


def _may_change(agent: Contact, reply: CannedReply) -> None:
    if reply.owner_id != agent.id and agent.role != "admin":
        raise NotAllowed("only its author or an admin changes a shared canned reply")


def update_reply(session: Session, agent: Contact, reply_id: int, title: str | None = None,
                 body: str | None = None, shared: bool | None = None) -> CannedReply:
    """Change some fields of a reply (its author, or an admin for a shared one)."""
    reply = reply_for(session, agent, reply_id)
    _may_change(agent, reply)
    reply.title, reply.body = _checked(reply.title if title is None else title, reply.body if body is None else body)
    if shared is not None:
        reply.shared = shared
    reply.updated_at = utcnow()
    session.flush()
    return reply


def delete_reply(session: Session, agent: Contact, reply_id: int) -> None:
    """Remove a reply (its author, or an admin for a shared one)."""
    reply = reply_for(session, agent, reply_id)
    _may_change(agent, reply)
    session.delete(reply)
    session.flush()


def fill_placeholders(body: str, ticket: Ticket, agent: Contact) -> str:
    """The body with {{ customer.name }}, {{ ticket.id }}, {{ ticket.subject }}, {{ agent.name }} filled in;
    anything else between braces is left as written."""
    requester = ticket.requester
    values = {"customer.name": (requester.name or requester.email) if requester else "",
              "ticket.id": str(ticket.id), "ticket.subject": ticket.subject,
              "agent.name": agent.name or agent.email}
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], body)
