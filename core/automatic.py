"""Automatic mail at intake: the verdict, taken once per mail, and what intake does with a
mail that is not a person's — record it, stop mailing the addresses it reports dead or
complaining, and find the ticket it concerns. It never opens a ticket and is never answered.

A recognised automatic mail that concerns none of our tickets keeps its bytes in the spool
(raw_mail, state done) and its verdict in automatic_mail, which admins read at /admin/automatic.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session

from core.config import Settings
from core.db import insert_or_ignore
from core.mail.classify import FEEDBACK_REPORT, PERSON, Verdict, classify
from core.mail.parse import ParsedMail
from core.mail.tokens import loop_token
from core.models import AutomaticMail, Contact, RawMail, Ticket
from core.routing import ticket_of_msgid

log = logging.getLogger(__name__)


class SpooledMail(Protocol):
    id: int
    door: str
    envelope_from: str
    raw: bytes


# last_error of a spooled mail an admin put back in line as a person's mail (see treat_as_person).
AS_PERSON = "as a person's mail: "


def mail_verdict(settings: Settings, raw: SpooledMail, mail: ParsedMail) -> Verdict:
    """classify() with what intake knows: our loop token, our addresses, the SMTP envelope sender;
    a person's mail without asking when an admin said so."""
    if getattr(raw, "last_error", "").startswith(AS_PERSON):
        return Verdict(PERSON, (raw.last_error,))
    own = frozenset(a.lower() for a in settings.smtp.addresses)
    domain = settings.from_address.rpartition("@")[2]
    return classify(mail, raw.raw, envelope_from=raw.envelope_from if raw.door == "smtp" else None,
                    loop_value=loop_token(settings.web.secret_key, domain), own_addresses=own)


def ticket_it_concerns(session: Session, settings: Settings, verdict: Verdict) -> Ticket | None:
    """The ticket of the first of our mails the verdict names (signed ids only by signature)."""
    for msgid in verdict.original_message_ids:
        ticket = ticket_of_msgid(session, settings.web.secret_key, msgid)
        if ticket is not None:
            return ticket
    return None


_DO_NOT_MAIL = update(Contact).where(Contact.email == bindparam("address")).values(undeliverable=True)


def stop_mailing(session: Session, settings: Settings, verdict: Verdict) -> tuple[str, ...]:
    """Mark the hard-bounced and complaining recipients do-not-mail (Contact.undeliverable, which an
    admin clears); a contact is created for an address we did not know, so the flag waits for them."""
    own = {a.lower() for a in settings.smtp.addresses}
    marked = tuple(a for a in verdict.do_not_mail if a not in own)
    for address in marked:
        insert_or_ignore(session, Contact, ("email",), {"email": address, "name": "", "role": "customer",
                                                        "active": True, "undeliverable": False})
        session.connection().execute(_DO_NOT_MAIL, {"address": address})
    if marked and verdict.kind == FEEDBACK_REPORT:
        log.info("complaint (%s): no more mail to %s", verdict.reason, ", ".join(marked))
    return marked


def record_automatic(session: Session, raw: SpooledMail, mail: ParsedMail, verdict: Verdict,
                     ticket_id: int | None, message_id: int | None, addresses: tuple[str, ...]) -> None:
    """Keep the verdict beside the spooled bytes (once per spooled mail, a replay changes nothing)."""
    insert_or_ignore(session, AutomaticMail, ("raw_mail_id",), {
        "raw_mail_id": raw.id, "kind": verdict.kind, "evidence": "; ".join(verdict.evidence)[:2000],
        "from_address": (mail.from_address or raw.envelope_from)[:998], "subject": mail.subject[:998],
        "original_message_id": (verdict.original_message_ids or ("",))[0][:998] or None,
        "addresses": ", ".join(addresses or (*verdict.failed_recipients, *verdict.delayed_recipients,
                                             *verdict.complainants)),
        "ticket_id": ticket_id, "message_id": message_id})


@dataclass(frozen=True)
class RecognisedMail:
    """One recorded automatic mail, as the admin list shows it (without its bytes)."""
    raw_mail_id: int
    kind: str
    evidence: str
    from_address: str
    subject: str
    addresses: str
    ticket_id: int | None
    received_at: datetime


def recognised(session: Session, kind: str = "", unmatched_only: bool = False, limit: int = 200) -> list[RecognisedMail]:
    """Recognised automatic mail, newest first; `unmatched_only`: those that concern no ticket."""
    stmt = (select(AutomaticMail.raw_mail_id, AutomaticMail.kind, AutomaticMail.evidence, AutomaticMail.from_address,
                   AutomaticMail.subject, AutomaticMail.addresses, AutomaticMail.ticket_id, AutomaticMail.created_at)
            .order_by(AutomaticMail.id.desc()).limit(limit))
    if kind:
        stmt = stmt.where(AutomaticMail.kind == kind)
    if unmatched_only:
        stmt = stmt.where(AutomaticMail.ticket_id.is_(None))
    return [RecognisedMail(*row) for row in session.execute(stmt)]


def raw_bytes(session: Session, raw_mail_id: int) -> bytes | None:
    """A spooled mail's bytes exactly as they came in (None when there is no such mail)."""
    return session.execute(select(RawMail.raw).where(RawMail.id == raw_mail_id)).scalar()


def treat_as_person(session: Session, raw_mail_id: int, admin_email: str) -> bool:
    """An admin's "this was a person after all" for a recognised automatic mail that joined no
    ticket: its record goes and the mail goes back in line, to be received as a person's mail
    (a ticket, an acknowledgement) by the intake worker. False when there is no such mail."""
    gone = session.execute(delete(AutomaticMail).where(AutomaticMail.raw_mail_id == raw_mail_id,
                                                       AutomaticMail.ticket_id.is_(None))).rowcount
    if not gone:
        return False
    session.execute(update(RawMail).where(RawMail.id == raw_mail_id).values(
        state="pending", attempts=0, processed_at=None, last_error=f"{AS_PERSON}{admin_email}"[:2000]))
    return True
