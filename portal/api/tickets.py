"""JSON routes on tickets (OpenAPI at /docs): open, list, read, change, delete, statistics, classify.

Customers see their own tickets (and those they follow); staff see all. A ticket the caller may
not see answers 404, exactly like one that does not exist, so ids cannot be probed.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Callable, Coroutine, Iterator, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import and_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from core import followers, i18n, satisfaction, throttle, workflow
from core.sla import reminders
from core.sla.policy import current_policy
from core.accounts import InvalidInput, normalise_email
from core.ai.provider import ProviderError
from core.assist.similar import similar_resolved
from core.assist.suggest import make_drafter, record_drafted, suggest_reply
from core.config import Settings
from core.errors import SenderError
from core.models import (CATEGORIES, PRIORITIES, STATUSES, Attachment, Contact, Follower, Message, Ticket,
                         TicketSkill, aware)
from core.workspace import tags as workspace_tags
from core.queries import SHOWN_TEXT, TicketFilter, list_tickets, stats, visible_ticket
from core.security.links import inert_links
from portal.api.schemas import (AttachmentOut, MessageAuth, MessageOut, Person, Problem, SatisfactionOut, SimilarOut,
                                Sort, StatsOut, SuggestedReplyOut, Text, TicketCreate, TicketOut, TicketPage, TicketPatch)
from portal.deps import csrf_protect, current_user, db, require_role, require_user, settings

log = logging.getLogger(__name__)

STAFF = ("agent", "admin")
MAX_ID = 2**31 - 1                 # the id columns are 32-bit: a larger id cannot exist
MAX_JSON_BYTES = 1024 * 1024
CREATE_WINDOW = timedelta(hours=1)
CREATE_LIMIT_PER_IP = 20           # tickets opened through the API per client address and window
CREATE_LIMIT_PER_EMAIL = 5         # … and per requester address


def _errors(*codes: int) -> dict:
    """Declared error answers; 400 is an unreadable body, 422 replaces FastAPI's default model with ours."""
    return {code: {"model": Problem} for code in codes}


class SizeLimitedRoute(APIRoute):
    """Refuse an oversized body by its declared length, before FastAPI reads and parses it.

    A dependency would come too late: the body is parsed (and a parse error answered) first."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def limited(request: Request) -> Response:
            length = request.headers.get("content-length", "")
            if length.isdigit() and int(length) > MAX_JSON_BYTES:
                raise HTTPException(413, f"The request body is larger than {MAX_JSON_BYTES // 1024} KiB.")
            return await handler(request)

        return limited


router = APIRouter(prefix="/api/tickets", tags=["tickets"], route_class=SizeLimitedRoute)
TicketId = Annotated[int, Path(ge=1, le=MAX_ID, description="the ticket's number")]


@contextmanager
def answering_domain_errors() -> Iterator[None]:
    """Translate the domain's refusals (the caller's fault) into HTTP answers with the domain's sentence."""
    try:
        yield
    except workflow.NotAllowed as exc:
        log.info("refused: %s", exc)
        raise HTTPException(403, str(exc)) from None
    except (workflow.InvalidChange, InvalidInput) as exc:
        log.info("invalid: %s", exc)
        raise HTTPException(422, str(exc)) from None
    except SenderError as exc:
        log.info("bad request: %s", exc)
        raise HTTPException(400, str(exc)) from None


# ---- reading ---------------------------------------------------------------------------------

def _skills_of(session: Session, ticket_ids: list[int]) -> dict[int, list[str]]:
    rows = session.execute(select(TicketSkill.ticket_id, TicketSkill.skill)
                           .where(TicketSkill.ticket_id.in_(ticket_ids)).order_by(TicketSkill.skill)).all()
    found: dict[int, list[str]] = {}
    for ticket_id, skill in rows:
        found.setdefault(ticket_id, []).append(skill)
    return found


def _threads_of(session: Session, ticket_ids: list[int], staff: bool) -> dict[int, list[MessageOut]]:
    """The threads of a page of tickets as column rows, not ORM objects: a page of 25 tickets holds
    hundreds of messages, and building entities (with a selectin load of their attachments) was most
    of the request's time at 100,000 tickets. Only the columns the JSON shows are read."""
    shown = Message.ticket_id.in_(ticket_ids) if staff else \
        and_(Message.ticket_id.in_(ticket_ids), Message.direction != "note")
    rows = session.execute(select(Message.id, Message.ticket_id, Message.direction, Message.from_address,
                                  Message.created_at, SHOWN_TEXT, Message.matched_by, Message.kind,
                                  Message.message_id, Message.auth_dkim, Message.auth_spf, Message.auth_dmarc)
                           .where(shown).order_by(Message.id)).all()
    attachments: dict[int, list[AttachmentOut]] = {}
    if rows:
        for a in session.execute(select(Attachment.message_id, Attachment.id, Attachment.filename,
                                        Attachment.content_type, Attachment.size)
                                 .join(Message, Message.id == Attachment.message_id).where(shown)
                                 .order_by(Attachment.id)):
            attachments.setdefault(a.message_id, []).append(
                AttachmentOut(id=a.id, filename=a.filename, content_type=a.content_type, size=a.size))
    found: dict[int, list[MessageOut]] = {}
    for mid, ticket_id, direction, sender, created_at, body, matched_by, kind, msgid, dkim, spf, dmarc in rows:
        found.setdefault(ticket_id, []).append(MessageOut(
            id=mid, direction=direction, from_=sender, created_at=aware(created_at), text=body or "",
            matched_by=matched_by, attachments=attachments.get(mid, []),
            message_id=msgid if kind == "mail" else None, auth=MessageAuth.of(dkim, spf, dmarc)))
    return found


def _followers_of(session: Session, ticket_ids: list[int]) -> dict[int, list[Person]]:
    rows = session.execute(select(Follower.ticket_id, Contact.email, Contact.name)
                           .join(Contact, Contact.id == Follower.contact_id)
                           .where(Follower.ticket_id.in_(ticket_ids)).order_by(Contact.email)).all()
    found: dict[int, list[Person]] = {}
    for ticket_id, email, name in rows:
        found.setdefault(ticket_id, []).append(Person(email=email, name=name))
    return found


def tickets_out(session: Session, tickets: list[Ticket], viewer: Contact | None) -> list[TicketOut]:
    """The JSON of a page of tickets in a few queries (tickets, threads, attachments, skills, followers, tags,
    ratings), notes and others' ratings only for staff."""
    ids = [t.id for t in tickets]
    staff = viewer is not None and viewer.role in STAFF
    threads, skills = (_threads_of(session, ids, staff), _skills_of(session, ids)) if ids else ({}, {})
    followers = _followers_of(session, ids) if ids else {}
    out = [TicketOut.of(t, threads.get(t.id, []), skills.get(t.id, []), followers.get(t.id, [])) for t in tickets]
    tags = workspace_tags.tags_of(session, ids) if staff else {}   # customers never see tags
    rated = {} if viewer is None else satisfaction.latest_of_tickets(session, ids, None if staff else viewer.id)
    for item in out:
        item.tags = tags.get(item.id, [])
        answer = rated.get(item.id)
        if answer is not None:
            item.satisfaction = SatisfactionOut(rating=answer.score, comment=answer.comment,
                                                rated_at=aware(answer.updated_at))
    return out


def _visible_or_404(session: Session, user: Contact, ticket_id: int) -> Ticket:
    ticket = visible_ticket(session, user, ticket_id, thread=False)
    if ticket is None:
        raise HTTPException(404, f"No ticket #{ticket_id}.")
    return ticket


def _fresh(session: Session, ticket_id: int) -> Ticket:
    return session.scalar(select(Ticket).where(Ticket.id == ticket_id).options(selectinload(Ticket.assignee))
                          .execution_options(populate_existing=True))


def _values(raw: list[str], allowed: tuple[str, ...], name: str) -> tuple[str, ...]:
    """Repeated (?status=a&status=b) or comma-separated (?status=a,b) values, each one the domain knows."""
    values = tuple(dict.fromkeys(v.strip() for item in raw for v in item.split(",") if v.strip()))
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise HTTPException(422, f"{name} must be among {', '.join(allowed)} (not {', '.join(unknown)})")
    return values


def ticket_filter(
    user: Annotated[Contact, Depends(require_user)],
    status: Annotated[list[Text], Query(description="repeat or comma-separate: " + ", ".join(STATUSES))] = [],
    priority: Annotated[list[Text], Query(description="repeat or comma-separate: " + ", ".join(PRIORITIES))] = [],
    category: Annotated[list[Text], Query(description="repeat or comma-separate: " + ", ".join(CATEGORIES))] = [],
    search: Annotated[Text, Query(max_length=200, description="words in subject, summary or thread; #N")] = "",
    assignee: Annotated[Text, Query(max_length=320, description="an email, 'me' or 'none'")] = "",
    requester: Annotated[Text, Query(max_length=320, description="part of the requester's email")] = "",
    skill: Annotated[Text, Query(max_length=32, description="a skill the ticket needs")] = "",
    tag: Annotated[Text, Query(max_length=48, description="staff only: tickets with this tag")] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 25,
    sort: Annotated[Sort, Query(description="a field, '-' first for descending")] = "-updated",
) -> TicketFilter:
    """The list's query string as a TicketFilter; a customer's list is limited to their own tickets."""
    if tag.strip() and user.role not in STAFF:
        raise HTTPException(403, "Only staff filter by tag.")
    return TicketFilter(
        status=_values(status, STATUSES, "status"), priority=_values(priority, PRIORITIES, "priority"),
        category=_values(category, CATEGORIES, "category"), search=search,
        assignee=user.email if assignee.strip().lower() == "me" else assignee.strip().lower(),
        requester=requester.strip(), skill=skill.strip().lower(), page=page, per_page=per_page, sort=sort,
        owner_id=None if user.role in STAFF else user.id, tag=tag.strip().lower())


# ---- routes (fixed paths before /{ticket_id}) ----------------------------------------------------

@router.post("", status_code=201, response_model=TicketOut, responses=_errors(400, 413, 422, 429))
def open_ticket(body: TicketCreate, request: Request, session: Session = Depends(db),
                cfg: Settings = Depends(settings), user: Contact | None = Depends(current_user)) -> TicketOut:
    """Open a ticket as the public form does (acknowledgement mail with a link, triage job). No sign-in needed."""
    # No CSRF token: this acts for nobody signed in, and a browser sends JSON cross-site only after
    # a CORS preflight, which the app does not grant.
    with answering_domain_errors():
        email = normalise_email(body.email)
    if user is None or user.role not in STAFF:
        _count_open(session, request, email)
    with answering_domain_errors():
        ticket = workflow.open_from_web(session, cfg, email=email, name=body.name.strip(), subject=body.subject,
                                        description=body.description, category=body.category,
                                        priority=body.priority,
                                        language=i18n.best_language(request.headers.get("accept-language")))
    try:
        session.commit()
    except IntegrityError:  # two first attempts from one address at the same instant
        raise HTTPException(429, "Too many tickets at once; try again.", headers={"Retry-After": "1"}) from None
    log.info("ticket %s opened through the API for %s", ticket.id, email)
    return tickets_out(session, [_fresh(session, ticket.id)], user)[0]


def _count_open(session: Session, request: Request, email: str) -> None:
    """Slow down floods: per client address and per requester address, within CREATE_WINDOW."""
    client = request.client.host if request.client else "unknown"
    limits = {f"api-open:ip:{client}": CREATE_LIMIT_PER_IP, f"api-open:email:{email}": CREATE_LIMIT_PER_EMAIL}
    if any(throttle.too_many(session, key, limit, CREATE_WINDOW) for key, limit in limits.items()):
        log.info("ticket creation throttled for %s / %s", client, email)
        raise HTTPException(429, "Too many tickets opened from here; try again later.",
                            headers={"Retry-After": str(int(CREATE_WINDOW.total_seconds()))})
    for key in limits:
        throttle.hit(session, key, CREATE_WINDOW)


@router.get("", response_model=TicketPage, responses=_errors(401, 403, 422))
def list_visible_tickets(f: Annotated[TicketFilter, Depends(ticket_filter)],
                         user: Contact = Depends(require_user), session: Session = Depends(db)) -> TicketPage:
    """One page of the tickets the caller may see, filtered and sorted."""
    tickets, total = list_tickets(session, f)
    return TicketPage(items=tickets_out(session, tickets, user), total=total, page=f.page, per_page=f.per_page)


@router.get("/stats", response_model=StatsOut, responses=_errors(401, 403))
def ticket_stats(_: Contact = Depends(require_role(*STAFF)), session: Session = Depends(db)) -> StatsOut:
    """The dashboard's figures (staff only)."""
    return StatsOut.of(stats(session))


class ClassifyRequest(BaseModel):
    subject: Text = Field("", max_length=998)
    description: Text = Field(..., min_length=1, max_length=20_000)


class Suggestion(BaseModel):
    category: Literal["billing", "technical", "account", "general"]
    priority: Literal["low", "medium", "high", "critical"]
    skills: list[str]
    summary: str
    source: str = Field(description="mistral, offline, or default when the provider failed")
    fallback: bool = Field(description="true when the provider failed and these are the defaults")


CLASSIFY_WINDOW = timedelta(minutes=1)


def _classify_allowed(request: Request, session: Session, cfg: Settings) -> bool:
    """One classify call counted per client address (every web process shares the throttle table)."""
    client = request.client.host if request.client else "unknown"
    allowed = throttle.take(session, f"classify:{client}", cfg.ai.classify_per_minute, CLASSIFY_WINDOW)
    session.commit()  # before the provider is asked: the write lock is not held while it thinks
    return allowed


@router.post("/classify", response_model=Suggestion, responses=_errors(400, 413, 422, 429))
async def classify(body: ClassifyRequest, request: Request, user: Contact | None = Depends(current_user),
                   session: Session = Depends(db), cfg: Settings = Depends(settings)) -> Suggestion:
    """Suggest category and priority for a description before it is submitted; never fails on the provider.

    Anonymous callers get the offline rules unless `[ai] classify_anonymous = "provider"`: with a
    Mistral key each call would be a paid request anyone could make."""
    if not await run_in_threadpool(_classify_allowed, request, session, cfg):
        raise HTTPException(429, "Too many suggestions asked from here; try again in a minute.",
                            headers={"Retry-After": str(int(CLASSIFY_WINDOW.total_seconds()))})
    provider = request.app.state.triage_provider
    if user is None and cfg.ai.classify_anonymous == "offline":
        provider = request.app.state.offline_provider
    try:
        t = await run_in_threadpool(provider.triage, body.subject, body.description)
    except (ProviderError, ValueError) as exc:  # ValueError: a provider's answer failed its own validation
        log.info("classify fell back to defaults: %s", str(exc).splitlines()[0])
        return Suggestion(category="general", priority="medium", skills=[], summary="", source="default",
                          fallback=True)
    return Suggestion(category=t.category, priority=t.priority, skills=list(t.skills),
                      summary=inert_links(t.summary)[0], source=provider.name, fallback=False)


@router.get("/{ticket_id}", response_model=TicketOut, responses=_errors(401, 404, 422))
def read_ticket(ticket_id: TicketId, user: Contact = Depends(require_user),
                session: Session = Depends(db)) -> TicketOut:
    """One ticket with its thread (internal notes for staff only)."""
    return tickets_out(session, [_visible_or_404(session, user, ticket_id)], user)[0]


@router.patch("/{ticket_id}", response_model=TicketOut,
              responses=_errors(400, 401, 403, 404, 413, 422))
def change_ticket(ticket_id: TicketId, body: TicketPatch, user: Contact = Depends(require_user),
                  _csrf: None = Depends(csrf_protect), session: Session = Depends(db),
                  cfg: Settings = Depends(settings)) -> TicketOut:
    """Staff change fields, reply or add a note; a customer may only close their ticket or add a comment."""
    ticket = _visible_or_404(session, user, ticket_id)
    with answering_domain_errors():
        if user.role in STAFF:
            _staff_change(session, cfg, ticket, user, body)
        else:
            _customer_change(session, cfg, ticket, user, body)
    session.commit()
    return tickets_out(session, [_fresh(session, ticket_id)], user)[0]


def _staff_change(session: Session, cfg: Settings, ticket: Ticket, user: Contact, body: TicketPatch) -> None:
    # The reply first: answering a new ticket moves it to in_progress, and a status sent along wins.
    if body.drafted is not None and body.reply is None:
        raise workflow.InvalidChange("drafted goes with a reply")
    if body.reply is not None:
        workflow.reply_as_agent(session, cfg, ticket, user, body.reply)
        if body.drafted:
            record_drafted(session, ticket, user, body.drafted)
    assignee: Contact | None | bool = False
    if "assignee" in body.model_fields_set:
        assignee = _assignee(session, body.assignee)
    changed = workflow.change_fields(session, cfg, ticket, user, status=body.status, priority=body.priority,
                                     category=body.category, assignee=assignee, resolution=body.resolution,
                                     comment=body.comment)
    if "waiting_until" in body.model_fields_set:
        _remind(session, cfg, ticket, user, body.waiting_until)
    if body.tags is not None and workspace_tags.set_tags(session, ticket.id, body.tags, user):
        changed.append("tags")
    log.info("ticket %s changed by %s: %s", ticket.id, user.email, ", ".join(changed) or "nothing")


def _remind(session: Session, cfg: Settings, ticket: Ticket, user: Contact, when: date | datetime | None) -> None:
    until = reminders.reminder_instant(current_policy(session, cfg), when) if when is not None else None
    reminders.set_reminder(session, ticket, user, until)


def _assignee(session: Session, email: str | None) -> Contact | None:
    if email is None or not email.strip():
        return None
    person = session.scalar(select(Contact).where(Contact.email == email.strip().lower()))
    if person is None or not person.active:
        raise workflow.InvalidChange(f"no active account with the address {email.strip()}")
    return person


def _customer_change(session: Session, cfg: Settings, ticket: Ticket, user: Contact, body: TicketPatch) -> None:
    others = body.model_fields_set - {"comment"} - ({"status"} if body.status == "closed" else set())
    if others:
        raise workflow.NotAllowed("customers may only close their ticket or add a comment "
                                  f"(not change {', '.join(sorted(others))})")
    if body.comment is not None:  # before closing: a reply would reopen a closed ticket
        workflow.reply_as_customer(session, cfg, ticket, user, body.comment)
    if body.status == "closed":
        workflow.close_by_customer(session, ticket, user)


@router.delete("/{ticket_id}", status_code=204, response_class=Response, responses=_errors(401, 403, 404, 422))
def delete_ticket(ticket_id: TicketId, admin: Contact = Depends(require_role("admin")),
                  _csrf: None = Depends(csrf_protect), session: Session = Depends(db)) -> Response:
    """Delete a ticket with its thread and history (admins only)."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise HTTPException(404, f"No ticket #{ticket_id}.")
    with answering_domain_errors():
        workflow.delete_ticket(session, ticket, admin)
    session.commit()
    return Response(status_code=204)


# ---- followers ------------------------------------------------------------------------------------

class FollowerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Annotated[Text, Field(min_length=3, max_length=320)]
    name: Annotated[Text, Field(max_length=200)] = ""


@router.post("/{ticket_id}/followers", status_code=201, response_model=list[Person],
             responses=_errors(400, 401, 403, 404, 413, 422))
def add_ticket_follower(ticket_id: TicketId, body: FollowerIn, user: Contact = Depends(require_role(*STAFF)),
                        _csrf: None = Depends(csrf_protect), session: Session = Depends(db),
                        cfg: Settings = Depends(settings)) -> list[Person]:
    """Staff add a follower: they receive the ticket's mail and may read it (at most [intake] max_followers)."""
    ticket = _visible_or_404(session, user, ticket_id)
    with answering_domain_errors():
        followers.add_follower(session, ticket, body.email, user, cfg.intake.max_followers, body.name.strip())
    session.commit()
    return [Person(email=c.email, name=c.name) for c in followers.followers_of(session, ticket_id)]


@router.delete("/{ticket_id}/followers/{email}", status_code=204, response_class=Response,
               responses=_errors(401, 403, 404, 422))
def remove_ticket_follower(ticket_id: TicketId, email: Annotated[str, Path(max_length=320)],
                           user: Contact = Depends(require_role(*STAFF)), _csrf: None = Depends(csrf_protect),
                           session: Session = Depends(db)) -> Response:
    """Staff remove a follower; 404 when that address does not follow the ticket."""
    ticket = _visible_or_404(session, user, ticket_id)
    if not followers.remove_follower(session, ticket, email, user):
        raise HTTPException(404, f"{email} does not follow ticket #{ticket_id}.")
    session.commit()
    return Response(status_code=204)


# ---- help for answering: similar resolved tickets, a suggested reply (staff only) ---------------

@router.get("/{ticket_id}/similar", response_model=list[SimilarOut], responses=_errors(401, 403, 404, 422))
def similar_tickets(ticket_id: TicketId, user: Contact = Depends(require_role(*STAFF)),
                    session: Session = Depends(db)) -> list[SimilarOut]:
    """Up to 3 resolved tickets most like this one, with their resolution text (staff only)."""
    ticket = _visible_or_404(session, user, ticket_id)
    return [SimilarOut(id=s.id, subject=s.subject, resolution=s.resolution, score=s.score)
            for s in similar_resolved(session, ticket)]


@router.post("/{ticket_id}/suggest-reply", response_model=SuggestedReplyOut,
             responses=_errors(401, 403, 404, 422))
def suggest_reply_route(ticket_id: TicketId, user: Contact = Depends(require_role(*STAFF)),
                        _csrf: None = Depends(csrf_protect), session: Session = Depends(db),
                        cfg: Settings = Depends(settings)) -> SuggestedReplyOut:
    """A draft for the reply box: Mistral's from the thread and the similar tickets' resolutions, or
    (offline, or when Mistral fails) those resolutions. Nothing is sent or stored (staff only)."""
    ticket = _visible_or_404(session, user, ticket_id)
    drafter = make_drafter(cfg.ai)
    try:
        found = suggest_reply(session, ticket, cfg.ai, drafter)
    finally:
        if hasattr(drafter, "close"):
            drafter.close()
    log.info("ticket %s: reply suggested (%s) for %s", ticket_id, found.source, user.id)
    return SuggestedReplyOut(text=found.text, source=found.source, based_on=found.based_on,
                             flagged_links=found.flagged_links)
