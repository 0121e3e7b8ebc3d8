"""The JSON contract of the API: what clients send and what they get back.

Field names here are a public contract: add fields, never rename or remove them. Datetimes
are ISO 8601 with a timezone (UTC).
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from core.ai.provider import SKILL_MAX_CHARS
from core.models import Contact, Ticket, aware
from core.staff import SKILL_RE
from core.queries import Stats
from core.sla.tracking import live_breach

Status = Literal["new", "in_progress", "waiting", "resolved", "closed"]
Priority = Literal["low", "medium", "high", "critical"]
Category = Literal["billing", "technical", "account", "general"]
Role = Literal["customer", "agent", "admin"]
Direction = Literal["in", "out", "note"]
Sort = Literal["updated", "-updated", "created", "-created", "id", "-id", "priority", "-priority",
               "status", "-status", "subject", "-subject", "due", "-due"]


def _storable(value: str) -> str:
    """Both databases refuse NUL characters and unpaired surrogates: refuse them here, as the sender's fault."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


Text = Annotated[str, AfterValidator(_storable)]
def _skill_word(value: str) -> str:
    """Checked after lower-casing, so 'Printers' is accepted as 'printers'."""
    if not SKILL_RE.match(value):
        raise ValueError("a skill is a short word: letters, digits, - _ .")
    return value


Skill = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1,
                                         max_length=SKILL_MAX_CHARS), AfterValidator(_storable),
                  AfterValidator(_skill_word)]


class Problem(BaseModel):
    """Every error answer: a sentence saying what went wrong (and, for invalid input, which fields)."""
    detail: str
    errors: list[dict] | None = None


# ---- tickets -------------------------------------------------------------------------------

class TicketCreate(BaseModel):
    """The public form as JSON: opens a ticket exactly like a mail would."""
    model_config = ConfigDict(extra="forbid")

    name: Annotated[Text, Field(min_length=1, max_length=200)]
    email: Annotated[Text, Field(min_length=3, max_length=320)]
    subject: Annotated[Text, Field(min_length=1, max_length=998)]
    description: Annotated[Text, Field(min_length=1, max_length=100_000)]
    category: Category | None = None
    priority: Priority | None = None


class TicketPatch(BaseModel):
    """Staff change any of these; a customer may only close their own ticket or add a comment."""
    model_config = ConfigDict(extra="forbid")

    status: Status | None = None
    category: Category | None = None
    priority: Priority | None = None
    assignee: Annotated[Text, Field(max_length=320)] | None = Field(
        None, description="an agent's or admin's email; null to unassign")
    resolution: Annotated[Text, Field(max_length=20_000)] | None = None
    comment: Annotated[Text, Field(max_length=100_000)] | None = Field(
        None, description="staff: an internal note; customers: a reply on the thread")
    reply: Annotated[Text, Field(max_length=100_000)] | None = Field(
        None, description="staff only: an answer mailed to the requester and followers")
    drafted: Annotated[Text, Field(max_length=200)] | None = Field(
        None, description="staff, with reply: the suggestion the reply began as (from suggest-reply: its source, "
                          "then ':' and the based_on ids, e.g. 'mistral:12,40'), noted in the ticket's history; "
                          "a value not of that form is ignored")
    waiting_until: date | datetime | None = Field(
        None, description="staff, with status waiting: the date (start of that business day) or instant the "
                          "ticket returns to in_progress and its assignee is reminded; null clears it")
    tags: list[Annotated[Text, Field(max_length=48)]] | None = Field(
        None, max_length=20, description="staff only: the ticket's whole set of tags (replaces the current one)")


class Person(BaseModel):
    email: str
    name: str

    @classmethod
    def of(cls, contact: Contact | None) -> Person | None:
        return cls(email=contact.email, name=contact.name) if contact is not None else None


class AttachmentOut(BaseModel):
    id: int
    filename: str
    content_type: str
    size: int


AuthResult = Literal["pass", "fail", "none", "temperror"]


class MessageAuth(BaseModel):
    """DKIM, SPF and DMARC as verified at our SMTP door or read from a trusted Authentication-Results."""
    dkim: AuthResult
    spf: AuthResult
    dmarc: AuthResult

    @classmethod
    def of(cls, dkim: str, spf: str, dmarc: str) -> MessageAuth | None:
        """None for what is not an inbound mail (no verdict stored)."""
        if not (dkim or spf or dmarc):
            return None
        known = ("pass", "fail", "none", "temperror")
        return cls(**{k: (v if v in known else "none") for k, v in (("dkim", dkim), ("spf", spf), ("dmarc", dmarc))})


class MessageOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: int
    direction: Direction
    from_: str = Field(serialization_alias="from", validation_alias="from",
                       description="the sender's address")
    created_at: datetime
    text: str = Field(description="what the person wrote: quoted history and signature removed")
    matched_by: str
    attachments: list[AttachmentOut]
    message_id: str | None = Field(None, description="the mail's Message-ID; null for web posts and notes")
    auth: MessageAuth | None = Field(None, description="sender authentication of an inbound mail; null otherwise")


class SatisfactionOut(BaseModel):
    """The requester's answer to the resolution mail's "how did we do?" links."""
    rating: Literal["good", "bad"]
    comment: str
    rated_at: datetime = Field(description="when the answer (or its comment) was last given")


class TicketOut(BaseModel):
    id: int
    reference: str
    subject: str
    status: Status
    priority: Priority
    category: Category
    requester: Person
    assignee: Person | None
    created_at: datetime
    updated_at: datetime
    summary: str
    resolution: str
    skills: list[str]
    messages: list[MessageOut] = Field(description="oldest first; internal notes only for staff")
    followers: list[Person] = Field(default_factory=list, description="who else receives this ticket's mail")
    merged_into: int | None = Field(None, description="the ticket this one continues on, once merged")
    first_response_due_at: datetime | None = Field(
        None, description="when support's first answer is due (business hours of the SLA policy); null: no SLA")
    resolution_due_at: datetime | None = Field(
        None, description="when the resolution is due; null while the clock is paused (waiting) or no SLA")
    sla_breached: bool = Field(False, description="a service-level target of this ticket was missed")
    tags: list[str] = Field(default_factory=list, description="staff only: free tags (always empty for customers)")
    satisfaction: SatisfactionOut | None = Field(
        None, description="the latest rating of the resolution; a customer sees only their own; null: none given")

    @classmethod
    def of(cls, ticket: Ticket, messages: list[MessageOut], skills: list[str],
           followers: list[Person] | None = None) -> TicketOut:
        """`messages`: the thread as this viewer may see it (internal notes only for staff), oldest first."""
        return cls(id=ticket.id, reference=ticket.reference, subject=ticket.subject, status=ticket.status,
                   priority=ticket.priority, category=ticket.category, requester=Person.of(ticket.requester),
                   assignee=Person.of(ticket.assignee), created_at=aware(ticket.created_at),
                   updated_at=aware(ticket.updated_at), summary=ticket.summary or "",
                   resolution=ticket.resolution or "", skills=skills, messages=messages,
                   followers=followers or [], merged_into=ticket.merged_into_id,
                   first_response_due_at=_utc(ticket.first_response_due_at),
                   resolution_due_at=_utc(ticket.resolution_due_at), sla_breached=live_breach(ticket))


class TicketPage(BaseModel):
    items: list[TicketOut]
    total: int
    page: int
    per_page: int


class DayCount(BaseModel):
    day: str
    count: int


class StatsOut(BaseModel):
    total: int
    open: int
    per_day_average: float
    by_status: dict[str, int]
    by_priority: dict[str, int]
    by_category: dict[str, int]
    by_assignee: dict[str, int]
    last_30_days: list[DayCount]
    median_first_response_minutes: float | None

    @classmethod
    def of(cls, s: Stats) -> StatsOut:
        return cls(total=s.total, open=s.open, per_day_average=s.per_day_average, by_status=s.by_status,
                   by_priority=s.by_priority, by_category=s.by_category, by_assignee=s.by_assignee,
                   last_30_days=[DayCount(day=d, count=c) for d, c in s.last_30_days],
                   median_first_response_minutes=s.median_first_response_minutes)


# ---- users ---------------------------------------------------------------------------------

class UserOut(BaseModel):
    id: int
    email: str
    name: str
    role: Role
    active: bool
    skills: list[str]
    created_at: datetime

    @classmethod
    def of(cls, contact: Contact, skills: list[str]) -> UserOut:
        return cls(id=contact.id, email=contact.email, name=contact.name, role=contact.role,
                   active=contact.active, skills=skills, created_at=aware(contact.created_at))


class UserPage(BaseModel):
    items: list[UserOut]
    total: int
    page: int
    per_page: int


class UserPatch(BaseModel):
    """What an admin changes on an account; skills replace the current list."""
    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    active: bool | None = None
    name: Annotated[Text, Field(max_length=200)] | None = None
    skills: list[Skill] | None = Field(None, max_length=50)


# ---- help for answering (similar tickets, suggested reply) ---------------------------------------

class SimilarOut(BaseModel):
    """A resolved ticket like this one; score: higher is more alike, comparable within one answer."""
    id: int
    subject: str
    resolution: str
    score: float


class SuggestedReplyOut(BaseModel):
    """A draft for the agent's reply box; never sent by itself."""
    text: str = Field(description="the draft; empty when there is nothing to suggest")
    source: Literal["mistral", "offline"] = Field(
        description="mistral: drafted by the model; offline: the similar tickets' resolutions")
    based_on: list[int] = Field(description="ids of the resolved tickets the draft draws on")
    flagged_links: list[str] = Field(
        default_factory=list, description="links in the draft that support wrote neither on the ticket nor in the resolutions "
                                            "(a link only the customer's mail names is flagged too)")


def _utc(moment: datetime | None) -> datetime | None:
    return aware(moment) if moment is not None else None


# ---- the agent's workspace ---------------------------------------------------------------------

class CannedReplyOut(BaseModel):
    id: int
    title: str
    body: str = Field(description="Markdown with placeholders: {{ customer.name }}, {{ ticket.id }}, "
                                  "{{ ticket.subject }}, {{ agent.name }}")
    shared: bool = Field(description="true: the whole team sees it; false: only its author")
    owner: str = Field("", description="its author's address")


class CannedReplyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Annotated[Text, Field(min_length=1, max_length=200)]
    body: Annotated[Text, Field(min_length=1, max_length=20_000)]
    shared: bool = False


class CannedReplyPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Annotated[Text, Field(min_length=1, max_length=200)] | None = None
    body: Annotated[Text, Field(min_length=1, max_length=20_000)] | None = None
    shared: bool | None = None


class CannedReplyRender(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ticket_id: int = Field(ge=1, le=2**31 - 1)


class RenderedReply(BaseModel):
    title: str
    text: str = Field(description="the body with its placeholders filled in for this ticket and agent")


Tag = Annotated[Text, Field(min_length=1, max_length=48)]


class BulkChangesIn(BaseModel):
    """What to change on every ticket; leave out what stays. assignee: an email, or null to unassign."""
    model_config = ConfigDict(extra="forbid")

    status: Status | None = None
    priority: Priority | None = None
    category: Category | None = None
    assignee: Annotated[Text, Field(max_length=320)] | None = None
    add_tags: list[Tag] = Field(default_factory=list, max_length=20)
    remove_tags: list[Tag] = Field(default_factory=list, max_length=20)
    spam: bool = Field(False, description="close as spam and block each requester's address")


class BulkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] = Field(min_length=1, max_length=500)
    changes: BulkChangesIn


class BulkItem(BaseModel):
    id: int
    ok: bool
    status: int = Field(description="the HTTP status this ticket alone would have had (200, 403, 404, 422)")
    detail: str = ""
    changed: list[str] = Field(default_factory=list)


class BulkOut(BaseModel):
    results: list[BulkItem]
    ok: int = Field(description="how many tickets were changed (or had nothing to change)")
    failed: int


class MergeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    into: int = Field(ge=1, le=2**31 - 1, description="the ticket the conversation continues on")


class SplitRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message_ids: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] = Field(min_length=1, max_length=1000)


class BlockedSenderOut(BaseModel):
    email: str
    reason: str
    created_at: datetime
