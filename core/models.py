"""The helpdesk's tables, as SQLAlchemy 2 typed ORM classes.

Enumerations are strings guarded by CHECK constraints, so every database (SQLite or
PostgreSQL) refuses a value the domain does not know.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

from sqlalchemy import (
    BigInteger, Boolean, CheckConstraint, DateTime, ForeignKey, Index, Integer, LargeBinary,
    MetaData, String, Text, false, true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

STATUSES = ("new", "in_progress", "waiting", "resolved", "closed")
OPEN_STATUSES = ("new", "in_progress", "waiting")
PRIORITIES = ("low", "medium", "high", "critical")
CATEGORIES = ("billing", "technical", "account", "general")
ROLES = ("customer", "agent", "admin")
MESSAGE_KINDS = ("mail", "web", "note")
DIRECTIONS = ("in", "out", "note")
SPOOL_STATES = ("pending", "done", "quarantined")
OUTBOX_STATES = ("pending", "sent", "failed")
JOB_STATES = ("pending", "running", "done", "dead")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes for UTC columns: make them comparable with utcnow()."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _one_of(column: str, values: tuple[str, ...], name: str) -> CheckConstraint:
    quoted = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({quoted})", name=name)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


Stamp = DateTime(timezone=True)


class Contact(Base):
    """A person who writes to us or works here; an account when it has a password or a role above customer."""
    __tablename__ = "contact"
    __table_args__ = (_one_of("role", ROLES, "role"), Index("ix_contact_role_email", "role", "email"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16), default="customer")
    password_hash: Mapped[Optional[str]] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    undeliverable: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)
    email_verified_at: Mapped[Optional[datetime]] = mapped_column(Stamp)
    oidc_subject: Mapped[Optional[str]] = mapped_column(String(255), unique=True)
    notify_replies: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    notify_status: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    away: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # staff: no new assignments
    language: Mapped[Optional[str]] = mapped_column(String(8))  # None: English, until they tell us otherwise
    time_zone: Mapped[Optional[str]] = mapped_column(String(64))  # IANA name; None: the site's [sla] timezone


class Ticket(Base):
    """A request and its thread. On PostgreSQL, triggers keep one full-text document per ticket in the
    table ticket_search (migration 0005; not mapped here: core/queries.py reads it, nothing writes it)."""
    __tablename__ = "ticket"
    __table_args__ = (
        _one_of("status", STATUSES, "status"),
        _one_of("priority", PRIORITIES, "priority"),
        _one_of("category", CATEGORIES, "category"),
        Index("ix_ticket_status_updated", "status", "updated_at"),
        Index("ix_ticket_updated_id", "updated_at", "id"),
        Index("ix_ticket_created_id", "created_at", "id"),
        Index("ix_ticket_assignee_updated", "assignee_id", "updated_at", "id"),
        Index("ix_ticket_category_priority_status", "category", "priority", "status"),
        Index("ix_ticket_priority_status", "priority", "status"),
        Index("ix_ticket_id_status", "id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    subject: Mapped[str] = mapped_column(String(998), default="")
    status: Mapped[str] = mapped_column(String(16), default="new")
    priority: Mapped[str] = mapped_column(String(16), default="medium")
    category: Mapped[str] = mapped_column(String(16), default="general")
    requester_id: Mapped[int] = mapped_column(ForeignKey("contact.id"), index=True)
    assignee_id: Mapped[Optional[int]] = mapped_column(ForeignKey("contact.id"))  # ix_ticket_assignee_updated
    summary: Mapped[str] = mapped_column(Text, default="")
    resolution: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)
    merged_into_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ticket.id", ondelete="SET NULL"))
    # Service levels (core/sla): due times in business hours, kept by core.sla.tracking from the
    # ticket's history; sla_due_at/sla_warn_at are the nearest pending due time and its warning
    # instant (the queue sorts and highlights by them), sla_next_check_at the scheduler's next look.
    first_response_due_at: Mapped[Optional[datetime]] = mapped_column(Stamp)
    resolution_due_at: Mapped[Optional[datetime]] = mapped_column(Stamp)
    first_responded_at: Mapped[Optional[datetime]] = mapped_column(Stamp)
    resolved_at: Mapped[Optional[datetime]] = mapped_column(Stamp)
    sla_breached: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    sla_due_at: Mapped[Optional[datetime]] = mapped_column(Stamp, index=True)
    sla_warn_at: Mapped[Optional[datetime]] = mapped_column(Stamp)
    sla_next_check_at: Mapped[Optional[datetime]] = mapped_column(Stamp, index=True)
    sla_checked_at: Mapped[Optional[datetime]] = mapped_column(Stamp, index=True)
    waiting_until: Mapped[Optional[datetime]] = mapped_column(Stamp, index=True)  # a pending reminder

    requester: Mapped[Contact] = relationship(foreign_keys=[requester_id], lazy="joined")
    assignee: Mapped[Optional[Contact]] = relationship(foreign_keys=[assignee_id])
    messages: Mapped[list["Message"]] = relationship(
        back_populates="ticket", order_by="Message.id", cascade="all, delete-orphan")
    followers: Mapped[list["Follower"]] = relationship(cascade="all, delete-orphan")


class Follower(Base):
    """Someone in Cc of a ticket's mail: receives its updates and may reply by tag."""
    __tablename__ = "follower"
    __table_args__ = (Index("ix_follower_contact_id", "contact_id"),)

    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"), primary_key=True)
    contact: Mapped[Contact] = relationship(lazy="joined")


class RawMail(Base):
    """The inbound spool: every mail's bytes, stored before any door acknowledges it."""
    __tablename__ = "raw_mail"
    __table_args__ = (
        _one_of("state", SPOOL_STATES, "state"),
        Index("ix_raw_mail_state_id", "state", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(1000), unique=True)
    door: Mapped[str] = mapped_column(String(16))
    envelope_from: Mapped[str] = mapped_column(String(998), default="")
    envelope_to: Mapped[str] = mapped_column(Text, default="")
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)
    processed_at: Mapped[Optional[datetime]] = mapped_column(Stamp)
    message_id: Mapped[Optional[str]] = mapped_column(String(998), index=True)  # as the door read it
    peer_ip: Mapped[str] = mapped_column(String(64), default="", server_default="")  # SMTP client (SPF)
    helo: Mapped[str] = mapped_column(String(255), default="", server_default="")
    # A reply held until the mail it answers (waiting_for) is stored, or held_until at the latest.
    held_until: Mapped[Optional[datetime]] = mapped_column(Stamp)
    waiting_for: Mapped[Optional[str]] = mapped_column(String(998), index=True)
    approved_by: Mapped[Optional[int]] = mapped_column(ForeignKey("contact.id", ondelete="SET NULL"))  # held, then approved
    # A different mail under a Message-ID an earlier raw_mail has: kept as its own mail, the reuse noted.
    reuses_message_id_of: Mapped[Optional[int]] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))


class Message(Base):
    """One entry of a ticket's thread: an inbound or outbound mail, a web post or an internal note."""
    __tablename__ = "message"
    __table_args__ = (
        _one_of("kind", MESSAGE_KINDS, "kind"),
        _one_of("direction", DIRECTIONS, "direction"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    direction: Mapped[str] = mapped_column(String(8))
    author_id: Mapped[Optional[int]] = mapped_column(ForeignKey("contact.id"))
    from_address: Mapped[str] = mapped_column(String(998), default="")
    subject: Mapped[str] = mapped_column(String(998), default="")
    message_id: Mapped[Optional[str]] = mapped_column(String(998), index=True)
    in_reply_to: Mapped[str] = mapped_column(Text, default="")
    references: Mapped[str] = mapped_column(Text, default="")
    body_text: Mapped[str] = mapped_column(Text, default="")
    visible_text: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str] = mapped_column(Text, default="")
    raw_mail_id: Mapped[Optional[int]] = mapped_column(ForeignKey("raw_mail.id"))
    matched_by: Mapped[str] = mapped_column(String(32), default="")
    automatic: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)
    # Sender authentication of an inbound mail: pass | fail | none | temperror ('' = not a mail).
    auth_dkim: Mapped[str] = mapped_column(String(16), default="", server_default="")
    auth_spf: Mapped[str] = mapped_column(String(16), default="", server_default="")
    auth_dmarc: Mapped[str] = mapped_column(String(16), default="", server_default="")

    ticket: Mapped[Ticket] = relationship(back_populates="messages")
    author: Mapped[Optional[Contact]] = relationship(lazy="joined")
    attachments: Mapped[list["Attachment"]] = relationship(
        back_populates="message", order_by="Attachment.id", cascade="all, delete-orphan")


class MessageReference(Base):
    """The reference graph: every Message-ID a stored mail names (itself, In-Reply-To, References),
    so a mail can find its ticket whichever of a conversation's mails arrived first."""
    __tablename__ = "message_reference"
    __table_args__ = (Index("ix_message_reference_ref", "ref", "ticket_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("message.id", ondelete="CASCADE"), index=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    ref: Mapped[str] = mapped_column(String(998))
    kind: Mapped[str] = mapped_column(String(8))  # self | parent | ancestor


class Blob(Base):
    """Attachment bytes under a generated name (their SHA-256), stored once however often sent."""
    __tablename__ = "blob"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Attachment(Base):
    __tablename__ = "attachment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("message.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(500), default="")
    content_type: Mapped[str] = mapped_column(String(200), default="application/octet-stream")
    content_id: Mapped[str] = mapped_column(String(500), default="")
    inline: Mapped[bool] = mapped_column(Boolean, default=False)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    blob_sha256: Mapped[str] = mapped_column(ForeignKey("blob.sha256"))

    message: Mapped[Message] = relationship(back_populates="attachments")


class Event(Base):
    """The ticket's history: who or what changed which field, and why."""
    __tablename__ = "event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    field: Mapped[str] = mapped_column(String(32), default="")
    old_value: Mapped[str] = mapped_column(Text, default="")
    new_value: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(32), default="")
    actor_id: Mapped[Optional[int]] = mapped_column(ForeignKey("contact.id"))
    created_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)


class AccessLink(Base):
    """A no-login link to one ticket for one person; only the token's hash is stored."""
    __tablename__ = "access_link"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"))
    created_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(Stamp)
    revoked_at: Mapped[Optional[datetime]] = mapped_column(Stamp)


class WebSession(Base):
    """A signed-in browser or API client; only the token's hash is stored, so a stolen database opens nothing."""
    __tablename__ = "web_session"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8), default="cookie")  # cookie | bearer
    csrf_secret: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(Stamp)


class AccountToken(Base):
    """A one-time link sent by mail: verify an address, reset a password."""
    __tablename__ = "account_token"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime] = mapped_column(Stamp)
    used_at: Mapped[Optional[datetime]] = mapped_column(Stamp)


class Throttle(Base):
    """Failed attempts per key (account, IP, form) in a sliding window: slows guessing, never locks out for good."""
    __tablename__ = "throttle"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(Stamp)
    count: Mapped[int] = mapped_column(Integer, default=0)


class AgentSkill(Base):
    """A skill an agent has (admin-managed); tickets are assigned by skill."""
    __tablename__ = "agent_skill"

    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True)
    skill: Mapped[str] = mapped_column(String(32), primary_key=True)


class TicketSkill(Base):
    """A skill a ticket needs, as triage suggested it."""
    __tablename__ = "ticket_skill"
    __table_args__ = (Index("ix_ticket_skill_skill", "skill", "ticket_id"),)

    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), primary_key=True)
    skill: Mapped[str] = mapped_column(String(32), primary_key=True)


class TicketSummary(Base):
    """Every summary a ticket had (the newest is copied to ticket.summary), with its source and notes."""
    __tablename__ = "ticket_summary"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    summary: Mapped[str] = mapped_column(Text)
    notes: Mapped[str] = mapped_column(Text, default="")  # one note per line
    source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)


class Job(Base):
    """Background work (AI triage…) claimed by one worker at a time, retried with backoff, dead after N."""
    __tablename__ = "job"
    __table_args__ = (
        _one_of("state", JOB_STATES, "state"),
        Index("ix_job_state_run_at", "state", "run_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    ticket_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    run_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)
    locked_until: Mapped[Optional[datetime]] = mapped_column(Stamp)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)
    finished_at: Mapped[Optional[datetime]] = mapped_column(Stamp)


class Outbox(Base):
    """A mail to send, written in the same transaction as the change that causes it."""
    __tablename__ = "outbox"
    __table_args__ = (
        _one_of("state", OUTBOX_STATES, "state"),
        Index("ix_outbox_state_next", "state", "next_attempt_at"),
        Index("ix_outbox_rcpt_created", "rcpt_to", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ticket.id", ondelete="SET NULL"), index=True)
    purpose: Mapped[str] = mapped_column(String(32))
    message_id: Mapped[str] = mapped_column(String(998), unique=True)
    mail_from: Mapped[str] = mapped_column(String(998))
    rcpt_to: Mapped[str] = mapped_column(String(320))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    next_attempt_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)
    sent_at: Mapped[Optional[datetime]] = mapped_column(Stamp)


class ImapState(Base):
    """How far the IMAP door has read one mailbox folder: UIDs are only valid with their UIDVALIDITY.

    last_uid: the highest UID whose mail is committed to the spool. acted_uid: the highest UID up
    to which the after-action (flag, move, delete) is known done; the gap is redone on the next poll.
    """
    __tablename__ = "imap_state"

    mailbox: Mapped[str] = mapped_column(String(1000), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    acted_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)


class StaffNotice(Base):
    """Something a staff member should know about a ticket (a customer replied…), and the outbox
    mail that tells them: notices due while a mail to the same person waits join it (a digest)."""
    __tablename__ = "staff_notice"
    __table_args__ = (Index("ix_staff_notice_contact_outbox", "contact_id", "outbox_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id", ondelete="CASCADE"))
    ticket_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text, default="")
    outbox_id: Mapped[Optional[int]] = mapped_column(ForeignKey("outbox.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)

class SlaPolicy(Base):
    """The service levels an admin set in the browser: [sla] keys as JSON, overriding config.toml."""
    __tablename__ = "sla_policy"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # one row: 1
    data: Mapped[str] = mapped_column(Text, default="{}")
    updated_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)
    updated_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("contact.id", ondelete="SET NULL"))


class SlaEscalation(Base):
    """An escalation mail sent (or decided) for a ticket: one per target, stage and clock cycle, so a
    restarted scheduler never sends it twice (the row and its mails commit together)."""
    __tablename__ = "sla_escalation"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), primary_key=True)
    target: Mapped[str] = mapped_column(String(16), primary_key=True)   # first_response | resolution
    stage: Mapped[str] = mapped_column(String(8), primary_key=True)     # warning | breach
    cycle: Mapped[int] = mapped_column(Integer, primary_key=True)       # resolution clock restarts on reopen
    created_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)


class Satisfaction(Base):
    """A requester's answer to "how did we do?": one per ticket and person, changed by a later click."""
    __tablename__ = "satisfaction"
    __table_args__ = (_one_of("score", ("good", "bad"), "score"),
                      Index("ix_satisfaction_ticket_id_contact_id", "ticket_id", "contact_id", unique=True),
                      Index("ix_satisfaction_updated_at", "updated_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id", ondelete="CASCADE"))
    score: Mapped[str] = mapped_column(String(8))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)


class Skill(Base):
    """The managed list of skills admins pick for agents (and triage suggests for tickets)."""
    __tablename__ = "skill"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)


class MailboxHealth(Base):
    """How the last polls of one IMAP mailbox went, written by whichever process polls it, read by
    the admin's page (the poller's memory is in another process)."""
    __tablename__ = "mailbox_health"

    mailbox: Mapped[str] = mapped_column(String(1000), primary_key=True)   # ImapMailbox.key
    last_poll_at: Mapped[Optional[datetime]] = mapped_column(Stamp)
    last_ok_at: Mapped[Optional[datetime]] = mapped_column(Stamp)
    last_error_at: Mapped[Optional[datetime]] = mapped_column(Stamp)
    last_error: Mapped[str] = mapped_column(Text, default="")
    failures: Mapped[int] = mapped_column(Integer, default=0)               # in a row


# ---- the agent's workspace (core/workspace/) ------------------------------------------------------

class TicketTag(Base):
    """A free tag an agent put on a ticket (lower case); customers never see them."""
    __tablename__ = "ticket_tag"
    __table_args__ = (Index("ix_ticket_tag_tag", "tag", "ticket_id"),)

    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(48), primary_key=True)


class CannedReply(Base):
    """A reply text agents insert with placeholders filled in; shared with the team or personal."""
    __tablename__ = "canned_reply"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("contact.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)


class BlockedSender(Base):
    """An address marked as spam: its mail is kept in quarantine, never answered, until an admin unblocks it."""
    __tablename__ = "blocked_sender"

    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    blocked_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("contact.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)


class SavedView(Base):
    """An agent's own named queue filter (the queue's query string)."""
    __tablename__ = "saved_view"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("contact.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    query: Mapped[str] = mapped_column(Text, default="")


class TicketRead(Base):
    """When an agent last looked at a ticket: what arrived later is unread for them."""
    __tablename__ = "ticket_read"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True)
    last_message_id: Mapped[int] = mapped_column(Integer, default=0)
    read_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)


class Presence(Base):
    """Who has a ticket open right now, and whether they are typing a reply (refreshed every few seconds)."""
    __tablename__ = "presence"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True)
    typing: Mapped[bool] = mapped_column(Boolean, default=False)
    seen_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)


class AutomaticMail(Base):
    """A recognised automatic mail (auto-reply, delivery or feedback report, provider notification,
    our own mail coming back): what it is, why, whom it concerns, and the ticket it was attached
    to; without a ticket it is kept in the spool with its bytes and listed for admins."""
    __tablename__ = "automatic_mail"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    raw_mail_id: Mapped[int] = mapped_column(ForeignKey("raw_mail.id", ondelete="CASCADE"), unique=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    evidence: Mapped[str] = mapped_column(Text, default="")
    from_address: Mapped[str] = mapped_column(String(998), default="")
    subject: Mapped[str] = mapped_column(String(998), default="")
    original_message_id: Mapped[Optional[str]] = mapped_column(String(998))
    addresses: Mapped[str] = mapped_column(Text, default="")  # recipients it reports failed or complaining
    ticket_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ticket.id", ondelete="SET NULL"), index=True)
    message_id: Mapped[Optional[int]] = mapped_column(ForeignKey("message.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)
