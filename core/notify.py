"""Domain events → outbox rows: the mails a change causes, rendered from templates/mail/."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from core import i18n
from core.config import Settings
from core.mail import tokens
from core.db import fetch_scalar, insert_row
from core.markdown import markdown_to_html
from core.mail.compose import MailAttachment, OutgoingMail, build_mail, header_safe, mailable
from core.mail.text_html import text_to_html
from core.models import AccessLink, Message, Outbox, utcnow
from core.routing import TAG_RE

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


class ThreadTicket(Protocol):
    """What a mail on a ticket's thread needs of the ticket (a Ticket, or intake's OpenedTicket)."""
    id: int
    reference: str
    subject: str


class AnsweredMessage(Protocol):
    """What an answer needs of the message it answers (a Message, or intake's StoredMessage)."""
    id: int
    subject: str
    message_id: str | None
    references: str


class Recipient(Protocol):
    """Whom a mail goes to (a Contact, or intake's Sender)."""
    id: int
    email: str
    name: str
    undeliverable: bool


@dataclass(frozen=True)
class Queued:
    """An outbox row just written."""
    id: int
    message_id: str


@lru_cache(maxsize=1)
def _mail_templates() -> Environment:
    # auto_reload off: the templates change with a deploy, not while running, and checking each
    # file's time on every mail (every acknowledgement) is a system call per mail.
    return i18n.install(Environment(loader=FileSystemLoader(TEMPLATES / "mail"), autoescape=False,
                                    undefined=StrictUndefined, keep_trailing_newline=True, auto_reload=False))


def render(template: str, **context) -> str:
    """Render a plain-text mail template from templates/mail/; `lang` and `tz` in the context choose
    the language and the zone times are shown in (English and UTC without them)."""
    return _mail_templates().get_template(template).render(**context)


def render_parts(template: str, markdown: dict[str, str] | None = None, **context) -> tuple[str, str]:
    """(text, html) of a mail from one template: the text as rendered, the HTML made from that text.
    `markdown` values (an agent's reply) appear as written in the text and rendered in the HTML."""
    markdown = markdown or {}
    text = render(template, **context, **markdown)
    if not markdown:
        return text, text_to_html(text)
    marks = {name: f"@@postdesk-{name}-{id(markdown)}@@" for name in markdown}
    skeleton = render(template, **context, **marks)
    fragments = {marks[name]: markdown_to_html(value) for name, value in markdown.items()}
    return text, text_to_html(skeleton, fragments)


def request_excerpt(text: str, limit: int = 600) -> str:
    """The start of a customer's request, quoted ('> ') for the acknowledgement; cut at a word."""
    text = text.strip()
    if len(text) > limit:
        text = text[:limit].rsplit(None, 1)[0] + " […]"
    return "\n".join(f"> {line}".rstrip() for line in text.splitlines()[:15])


def tagged_subject(ticket: ThreadTicket, subject: str) -> str:
    """'[#N] subject', without doubling a tag that is already there."""
    subject = header_safe(subject) or ticket.subject
    found = TAG_RE.search(subject)
    if found and int(found.group(1)) == ticket.id:
        return subject
    return f"[#{ticket.id}] {subject}"


def create_access_link(session: Session, settings: Settings, ticket: ThreadTicket, contact: Recipient) -> str:
    """A fresh no-login link to the ticket for this person; only its hash is stored."""
    token, token_hash = tokens.new_link_token()
    insert_row(session, AccessLink, {"token_hash": token_hash, "ticket_id": ticket.id, "contact_id": contact.id,
                                     "expires_at": utcnow() + timedelta(days=settings.web.link_days)})
    return f"{settings.base_url}/t/{token}"


_ACKS_SINCE = select(func.count(Outbox.id)).where(
    Outbox.rcpt_to == bindparam("rcpt"), Outbox.purpose == "acknowledgement", Outbox.created_at >= bindparam("since"))


def _automatic_replies_recently(session: Session, settings: Settings, recipient: str) -> int:
    since = utcnow() - timedelta(minutes=settings.intake.autoreply_window_minutes)
    return fetch_scalar(session, _ACKS_SINCE, {"rcpt": recipient, "since": since}) or 0


_REQUEST_TEXT = select(Message.visible_text).where(Message.id == bindparam("message_id"))


def queue_acknowledgement(session: Session, settings: Settings, ticket: ThreadTicket, inbound: AnsweredMessage,
                          requester: Recipient, request: str | None = None) -> bool:
    """Write the acknowledgement of a new ticket to the outbox; False when it must not be sent.
    `request`: the inbound message's visible text, when the caller has it (else it is read)."""
    if requester.undeliverable:
        return False
    if _automatic_replies_recently(session, settings, requester.email) >= settings.intake.autoreply_limit:
        log.info("ticket %s: no acknowledgement, %s reached the automatic-reply limit", ticket.id, requester.email)
        return False
    if not mailable(requester.email):
        log.warning("ticket %s: no acknowledgement to %r, an address we cannot write into a mail", ticket.id,
                    requester.email, extra={"ticket_id": ticket.id})
        return False
    link = create_access_link(session, settings, ticket, requester)
    if request is None:
        request = fetch_scalar(session, _REQUEST_TEXT, {"message_id": inbound.id}) or ""
    lang = i18n.language_of(requester)
    text, html = render_parts("acknowledgement.txt", ticket=ticket, name=requester.name, link=link, lang=lang,
                              site_name=i18n.translate(lang, "Postdesk support"), excerpt=request_excerpt(request))
    queue_mail(session, settings, ticket, requester, purpose="acknowledgement",
               subject=tagged_subject(ticket, inbound.subject), text=text, answering=inbound,
               automatic="auto-replied", html=html)
    return True


def queue_mail(session: Session, settings: Settings, ticket: ThreadTicket, to: Recipient, *, purpose: str,
               subject: str, text: str, answering: AnsweredMessage | None, automatic: str = "",
               html: str = "", attachments: tuple[MailAttachment, ...] = (), from_name: str = "Support",
               send_at: datetime | None = None) -> Queued | None:
    """Compose a mail on a ticket's thread (signed Message-ID and Reply-To) into the outbox;
    None when the address cannot be written into a mail (logged, nothing queued).
    Without `html` the HTML part is made from the text; `send_at` holds the mail back until then."""
    if not mailable(to.email):
        log.warning("ticket %s: no %s mail to %r, an address we cannot write into a mail", ticket.id,
                    purpose, to.email, extra={"ticket_id": ticket.id})
        return None
    sender = settings.from_address
    message_id = tokens.make_message_id(settings.web.secret_key, ticket.id, sender.rpartition("@")[2])
    raw = compose_ticket_mail(settings, ticket, to, message_id, subject=subject, text=text, answering=answering,
                              automatic=automatic, html=html, attachments=attachments, from_name=from_name)
    values = {"ticket_id": ticket.id, "purpose": purpose, "message_id": message_id, "mail_from": sender,
              "rcpt_to": to.email, "raw": raw}
    if send_at is not None:
        values["next_attempt_at"] = send_at
    return Queued(insert_row(session, Outbox, values), message_id)


def compose_ticket_mail(settings: Settings, ticket: ThreadTicket, to: Recipient, message_id: str, *, subject: str,
                        text: str, answering: AnsweredMessage | None, automatic: str = "", html: str = "",
                        attachments: tuple[MailAttachment, ...] = (), from_name: str = "Support") -> bytes:
    """The bytes of a mail on a ticket's thread: signed Reply-To, threaded on `answering`."""
    secret = settings.web.secret_key
    sender = settings.from_address
    domain = sender.rpartition("@")[2]
    refs: tuple[str, ...] = ()
    in_reply_to = ""
    if answering is not None and answering.message_id:
        in_reply_to = answering.message_id
        refs = (*answering.references.split(), answering.message_id)
    headers = [("X-Postdesk-Loop", tokens.loop_token(secret, domain)),
               ("X-Postdesk-Ticket", str(ticket.id))]
    if automatic:
        headers += [("Auto-Submitted", automatic), ("X-Auto-Response-Suppress", "All")]
    return build_mail(OutgoingMail(
        from_address=sender, to=to.email, to_name=to.name, subject=subject, text=text,
        html=html or text_to_html(text), message_id=message_id, in_reply_to=in_reply_to, references=refs,
        reply_to=tokens.sign_reply_address(secret, sender, ticket.id, to.email),
        extra_headers=tuple(headers), attachments=attachments, from_name=from_name))
