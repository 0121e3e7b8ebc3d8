"""The SMTP door (aiosmtpd): RCPT policy, DATA → spool.put → 250. Nothing is decided here.

Only a committed mail is answered 250; any failure of ours answers 451 4.3.0 so the sender
retries, and never aiosmtpd's default "500 Error: (...)" which would make it give up.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Callable

from aiosmtpd.smtp import SMTP, Envelope, Session as SmtpSession
from sqlalchemy.orm import Session, sessionmaker

from core.config import Settings
from core.metrics import MAILS
from core.tickets import is_support_address
from ingest import spool

log = logging.getLogger(__name__)
TEMPFAIL = "451 4.3.0 Temporary failure storing the message, please try again later"


class SupportInbox:
    """aiosmtpd handler: accepts mail for our support addresses and spools it durably."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session],
                 on_stored: Callable[[], None] = lambda: None) -> None:
        self.settings = settings
        self.sessions = sessions
        self.on_stored = on_stored
        self.own = frozenset(a.lower() for a in settings.smtp.addresses)

    async def handle_RCPT(self, server: SMTP, session: SmtpSession, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if not is_support_address(address, self.own):
            log.info("refused RCPT %s from %s", address, session.peer)
            MAILS.labels("smtp", "refused").inc()
            return "550 5.1.1 No such mailbox here (this server does not relay)"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        MAILS.labels("smtp", "received").inc()
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        try:
            stored = await asyncio.get_running_loop().run_in_executor(
                None, spool.put, self.sessions, raw, "smtp", envelope.mail_from or "",
                tuple(a.lower() for a in envelope.rcpt_tos), _peer_ip(session), session.host_name or "")
        except Exception:
            log.exception("could not spool a mail from %s", envelope.mail_from)
            return TEMPFAIL
        if not stored.duplicate:
            self.on_stored()
        return f"250 2.0.0 OK queued as {stored.id}"

    async def handle_exception(self, error: Exception) -> str:
        log.error("SMTP session error: %s: %s", type(error).__name__, error)
        return TEMPFAIL


def _peer_ip(session: SmtpSession) -> str:
    """The client's IP address (for SPF), '' when the transport has none."""
    peer = session.peer
    return str(peer[0]) if isinstance(peer, tuple) and peer else ""


class _LongLineSMTP(SMTP):
    """aiosmtpd refuses any line over RFC 5321's 1,000 octets with "500 Line too long"; Postfix
    and the big providers accept such mail (SES notifications, HTML from common clients), so we
    do too, up to the whole message size limit, and keep the bytes exactly as they came."""

    def __init__(self, handler: SupportInbox, *, line_length_limit: int, **kwargs) -> None:
        self.line_length_limit = line_length_limit  # read by SMTP.__init__ for its stream's limit
        super().__init__(handler, **kwargs)


def make_protocol(settings: Settings, handler: SupportInbox) -> SMTP:
    # +3: the line's CRLF and a transparency dot come on top of a message-sized line.
    return _LongLineSMTP(handler, line_length_limit=max(settings.smtp.max_message_bytes + 3, SMTP.line_length_limit),
                         data_size_limit=settings.smtp.max_message_bytes, enable_SMTPUTF8=True,
                         decode_data=False, hostname=settings.from_address.rpartition("@")[2] or None,
                         ident="Postdesk ESMTP")


async def start_smtp_server(settings: Settings, handler: SupportInbox,
                            host: str | None = None, port: int | None = None) -> asyncio.AbstractServer:
    """Listen on [smtp] host:port (or the given ones; port 0 = any free port) in the running loop."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: make_protocol(settings, handler),
                                    host or settings.smtp.host,
                                    settings.smtp.port if port is None else port)
