"""Notices to staff without floods: at most one mail per person per minute.

`queue_staff_notice` is the one way to tell an agent or admin something about a ticket. The first
notice goes out at once; notices due within a minute of the last mail to the same person wait and
join one digest mail, rewritten in place while it waits in the outbox (as long as no deliverer has
claimed it). A digest about one ticket is a mail on that ticket's thread, so the agent can answer
it by mail (core/agent_mail.py).
"""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Protocol

from sqlalchemy import bindparam, event, func, select, update
from sqlalchemy.orm import Session

from core import i18n, notify
from core.config import Settings
from core.db import execute_prebuilt, fetch_first, fetch_scalar, in_transaction_memo, insert_row
from core.mail import tokens
from core.mail.compose import OutgoingMail, build_mail, mailable
from core.mail.text_html import text_to_html
from core.models import AgentSkill, Contact, Outbox, StaffNotice, Ticket, TicketSkill, aware, utcnow

log = logging.getLogger(__name__)
WINDOW = timedelta(minutes=1)
IN_FULL = 20  # notices a digest shows whole; later ones get a line each, up to LISTED in all
LISTED = 100


class StaffMember(Protocol):
    id: int
    email: str
    name: str
    undeliverable: bool


_NOTICES_OF = (select(StaffNotice.ticket_id, StaffNotice.kind, StaffNotice.text).where(
    StaffNotice.outbox_id == bindparam("outbox_id")).order_by(StaffNotice.id).limit(LISTED))
_COUNT_OF = select(func.count(StaffNotice.id)).where(StaffNotice.outbox_id == bindparam("outbox_id"))
_WAITING = (select(Outbox.id, Outbox.message_id).join(StaffNotice, StaffNotice.outbox_id == Outbox.id)
            .where(StaffNotice.contact_id == bindparam("contact_id"), Outbox.state == "pending",
                   Outbox.attempts == 0).order_by(Outbox.id.desc()).limit(1)
            .with_for_update(of=Outbox, skip_locked=True))  # ours until commit: see _rewrite_at_commit
_LAST_DUE = (select(func.max(func.coalesce(Outbox.sent_at, Outbox.next_attempt_at)))
             .where(Outbox.id.in_(select(StaffNotice.outbox_id).where(
                 StaffNotice.contact_id == bindparam("contact_id")).scalar_subquery())))
_REWRITE = (update(Outbox).where(Outbox.id == bindparam("outbox_id"), Outbox.state == "pending",
                                 Outbox.attempts == 0)
            .values(raw=bindparam("raw"), message_id=bindparam("new_message_id"), purpose=bindparam("purpose"),
                    ticket_id=bindparam("ticket_id")))
_DETACH = (update(StaffNotice).where(StaffNotice.id.in_(bindparam("ids", expanding=True)),
                                     StaffNotice.outbox_id == bindparam("from_id")).values(outbox_id=None))
_NOTICES_BY_ID = (select(StaffNotice.id, StaffNotice.ticket_id, StaffNotice.kind, StaffNotice.text)
                  .where(StaffNotice.id.in_(bindparam("ids", expanding=True)), StaffNotice.outbox_id.is_(None))
                  .order_by(StaffNotice.id))
_ATTACH = update(StaffNotice).where(StaffNotice.id == bindparam("notice_id")).values(outbox_id=bindparam("to"))


def queue_staff_notice(session: Session, settings: Settings, staff: StaffMember, ticket: Ticket, kind: str,
                       text: str) -> None:
    """Tell one staff member `text` about the ticket (in the caller's transaction): mailed at once,
    or, within a minute of their last such mail, joined to one waiting digest."""
    if staff.undeliverable or not mailable(staff.email):
        return
    now = utcnow()
    conn = session.connection()
    notice_id = insert_row(session, StaffNotice, {"contact_id": staff.id, "ticket_id": ticket.id, "kind": kind,
                                                  "text": text, "created_at": now})
    waiting = fetch_first(conn, _WAITING, {"contact_id": staff.id})
    if waiting is not None:
        execute_prebuilt(conn, _ATTACH, {"notice_id": notice_id, "to": waiting.id})
        _rewrite_at_commit(session, settings, staff, waiting.id, notice_id)
        log.info("staff notice for %s on ticket %s joins waiting mail %s", staff.email, ticket.id, waiting.id,
                 extra={"ticket_id": ticket.id})
        return
    _new_mail(session, settings, staff, [(ticket.id, kind, text)], [notice_id], now)


def _new_mail(session: Session, settings: Settings, staff: StaffMember, notices: list, notice_ids: list[int],
              now) -> None:
    """A mail of its own for these notices: at once, or a minute after the person's last one."""
    conn = session.connection()
    last = fetch_scalar(conn, _LAST_DUE, {"contact_id": staff.id})
    send_at = max(now, aware(last) + WINDOW) if last is not None else now
    purpose, ticket_id, message_id, raw = _compose(session, settings, staff, notices, len(notices))
    outbox_id = insert_row(session, Outbox, {"ticket_id": ticket_id, "purpose": purpose, "message_id": message_id,
                                             "mail_from": settings.from_address, "rcpt_to": staff.email, "raw": raw,
                                             "next_attempt_at": send_at, "created_at": now})
    for notice_id in notice_ids:
        execute_prebuilt(conn, _ATTACH, {"notice_id": notice_id, "to": outbox_id})


_DIGESTS = "postdesk.staff_digests"  # session.info: waiting mails this transaction added notices to


def _rewrite_at_commit(session: Session, settings: Settings, staff: StaffMember, outbox_id: int,
                       notice_id: int) -> None:
    """Rewrite the waiting mail once, just before the transaction commits, however many notices
    of it joined it (intake stores a batch of mails in one transaction). Until then the row is
    ours: locked on PostgreSQL, and SQLite's write lock keeps every deliverer waiting. (Another
    intake worker skips a row we locked and queues its notices a minute after it: no lock waits.)"""
    if not session.info.get(_DIGESTS + ".hooked"):
        event.listen(session, "before_commit", _rewrite_digests)
        event.listen(session, "after_rollback", lambda s: s.info.pop(_DIGESTS, None))
        session.info[_DIGESTS + ".hooked"] = True
    digests = session.info.setdefault(_DIGESTS, {})
    digests.setdefault(outbox_id, (settings, staff, []))[2].append(notice_id)


def _rewrite_digests(session: Session) -> None:
    for outbox_id, (settings, staff, notice_ids) in session.info.pop(_DIGESTS, {}).items():
        conn = session.connection()
        notices = conn.execute(_NOTICES_OF, {"outbox_id": outbox_id}).all()
        if not notices:
            continue
        total = conn.execute(_COUNT_OF, {"outbox_id": outbox_id}).scalar() or len(notices)
        purpose, ticket_id, message_id, raw = _compose(session, settings, staff, notices, total)
        if conn.execute(_REWRITE, {"outbox_id": outbox_id, "raw": raw, "new_message_id": message_id,
                                   "purpose": purpose, "ticket_id": ticket_id}).rowcount:
            continue
        # A deliverer claimed the mail (a savepoint rolled back released our lock): this
        # transaction's notices, which that mail lacks, get a mail of their own.
        conn.execute(_DETACH, {"ids": notice_ids, "from_id": outbox_id})
        mine = conn.execute(_NOTICES_BY_ID, {"ids": notice_ids}).all()
        if mine:
            _new_mail(session, settings, staff, [tuple(n)[1:] for n in mine], [n.id for n in mine], utcnow())


def _compose(session: Session, settings: Settings, staff: StaffMember, notices: list,
             total: int) -> tuple[str, int | None, str, bytes]:
    """(purpose, ticket id, Message-ID, bytes) of the mail carrying these notices (the first LISTED
    of `total`). The digest is rewritten for each notice that joins it, so its size is bounded."""
    tickets = list(dict.fromkeys(n[0] for n in notices))
    kinds = {n[1] for n in notices}
    purpose = kinds.pop() if len(kinds) == 1 else "staff-digest"
    lang = i18n.language_of(staff)  # the wrapper and subject; each notice was written in this language already
    text = notices[0][2] if total == 1 else notify.render(
        "staff_digest.txt", notices=[_cut(n[2]) for n in notices[:IN_FULL]],
        briefly=[n[2].strip().split("\n", 1)[0] for n in notices[IN_FULL:]], more=total - len(notices),
        count=total, lang=lang)
    domain = settings.from_address.rpartition("@")[2]
    if len(tickets) == 1 and tickets[0] is not None and total <= LISTED:
        ticket = session.get(Ticket, tickets[0])
        message_id = tokens.make_message_id(settings.web.secret_key, ticket.id, domain)
        subject = notify.tagged_subject(ticket, ticket.subject if total == 1 else i18n.translate(
            lang, "%(count)s updates: %(subject)s", count=total, subject=ticket.subject))
        raw = notify.compose_ticket_mail(settings, ticket, staff, message_id, subject=subject, text=text,
                                         answering=None, automatic="auto-generated")
        return purpose, ticket.id, message_id, raw
    message_id = tokens.make_message_id(settings.web.secret_key, 0, domain)
    subject = i18n.translate(lang, "%(count)s updates on tickets %(tickets)s", count=total,
                             tickets=", ".join(f"#{t}" for t in tickets[:8]))
    raw = build_mail(OutgoingMail(
        from_address=settings.from_address, to=staff.email, to_name=staff.name, subject=subject, text=text,
        html=text_to_html(text), message_id=message_id,
        extra_headers=(("X-Postdesk-Loop", tokens.loop_token(settings.web.secret_key, domain)),
                       ("Auto-Submitted", "auto-generated"), ("X-Auto-Response-Suppress", "All"))))
    return purpose, None, message_id, raw


def _cut(text: str, limit: int = 2000) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit].rsplit(None, 1)[0] + " […]"


_SKILLED = (select(Contact).join(AgentSkill, AgentSkill.contact_id == Contact.id)
            .join(TicketSkill, TicketSkill.skill == AgentSkill.skill)
            .where(TicketSkill.ticket_id == bindparam("ticket_id"), Contact.active.is_(True),
                   Contact.role.in_(("agent", "admin"))).distinct().order_by(Contact.id))
_ANY_SKILL = select(AgentSkill.contact_id).limit(1)
_ADMINS = select(Contact).where(Contact.role == "admin", Contact.active.is_(True)).order_by(Contact.id)


def who_watches(session: Session, ticket: Ticket) -> list[Contact]:
    """Whom news about the ticket concerns: its assignee; unassigned, the agents whose skills
    the ticket needs; else the admins."""
    if ticket.assignee_id is not None:
        assignee = session.get(Contact, ticket.assignee_id)
        return [assignee] if assignee is not None and assignee.active else []
    memo = in_transaction_memo(session)  # a batch of replies to unassigned tickets asks these once
    if "skills_given" not in memo:  # without any agent's skill the look-up per ticket can be skipped
        memo["skills_given"] = fetch_first(session, _ANY_SKILL) is not None
    skilled = list(session.scalars(_SKILLED, {"ticket_id": ticket.id}).unique()) if memo["skills_given"] else []
    if skilled:
        return skilled
    if "admins" not in memo:
        memo["admins"] = list(session.scalars(_ADMINS))
    return list(memo["admins"])


def customer_replied(session: Session, settings: Settings, ticket: Ticket, customer: StaffMember | Contact,
                     text: str) -> None:
    """A customer's reply (by mail or in the portal): a notice to whoever watches the ticket."""
    link = f"{settings.base_url}/agent/tickets/{ticket.id}"
    for staff in who_watches(session, ticket):
        if staff.id != customer.id:
            body = notify.render("customer_reply.txt", ticket=ticket, text=text.strip(), customer=customer,
                                 link=link, lang=i18n.language_of(staff))
            queue_staff_notice(session, settings, staff, ticket, "customer-reply", body)
