"""The SMTP door (aiosmtpd): RCPT policy, DATA → spool.put → 250. Nothing is decided here.

On SQLite the door commits to a spool file of its own instead (ingest.staging), moved into the
database's spool in batches, so a 250 never waits for the worker's hold on the database's lock.

Only a committed mail is answered 250; any failure of ours answers 451 4.3.0 so the sender
retries, and never aiosmtpd's default "500 Error: (...)" which would make it give up.
"""
from __future__ import annotations

import asyncio
import logging
import re
from typing import Callable

from aiosmtpd.smtp import SMTP, Envelope, Session as SmtpSession
from sqlalchemy.orm import Session, sessionmaker

from core.config import Settings
from core.metrics import MAILS
from core.tickets import is_support_address
from ingest import spool
from ingest.staging import Staged, staging_for
from ingest.smtp_guard import GuardedSMTP, InflightBudget, has_control_characters

log = logging.getLogger(__name__)
TEMPFAIL = "451 4.3.0 Temporary failure storing the message, please try again later"
TIMEOUT = "451 4.3.0 Storing the message took too long, please try again later"
BAD_SENDER = "553 5.1.7 The sender address contains control characters"
BAD_RECIPIENT = "553 5.1.3 The recipient address contains control characters"


class SupportInbox:
    """aiosmtpd handler: accepts mail for our support addresses and spools it durably."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session],
                 on_stored: Callable[[], None] = lambda: None) -> None:
        self.settings = settings
        self.sessions = sessions
        self.on_stored = on_stored
        self.own = frozenset(a.lower() for a in settings.smtp.addresses)
        self.budget = InflightBudget(settings.smtp.max_inflight_bytes)  # shared by every connection
        self.staging = staging_for(settings.database.url, sessions, on_stored)
        self._started = False

    def start(self) -> None:
        """Begin moving staged mail (and what an earlier run left staged) into the spool."""
        if self.staging is not None and not self._started:
            self._started = True
            self.staging.start()

    def close(self) -> None:
        """After the server stopped accepting: move the last staged mails and stop the mover."""
        if self.staging is not None and self._started:
            self._started = False
            self.staging.close()

    def _store(self, raw: bytes, envelope: Envelope, session: SmtpSession, timeout: float):
        rcpts = tuple(a.lower() for a in envelope.rcpt_tos)
        if self.staging is not None:
            return self.staging.put(raw, "smtp", envelope.mail_from or "", rcpts, _peer_ip(session),
                                    session.host_name or "")
        return spool.put(self.sessions, raw, "smtp", envelope.mail_from or "", rcpts, timeout, _peer_ip(session),
                         session.host_name or "")

    async def handle_MAIL(self, server: SMTP, session: SmtpSession, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        # A permanent refusal: the database would refuse the address on every retry (NUL) anyway.
        if has_control_characters(address):
            log.info("refused MAIL FROM with control characters from %s", session.peer)
            MAILS.labels("smtp", "refused").inc()
            return BAD_SENDER
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: SmtpSession, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if has_control_characters(address):
            log.info("refused RCPT with control characters from %s", session.peer)
            MAILS.labels("smtp", "refused").inc()
            return BAD_RECIPIENT
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
        timeout = self.settings.smtp.data_timeout_seconds
        try:
            # The database bounds its own waits (lock_timeout, statement_timeout); wait_for bounds the rest
            # (a frozen server, a full pool). A mail committed after a 451 is a duplicate on the retry.
            stored = await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(
                None, self._store, raw, envelope, session, timeout), timeout)
        except asyncio.TimeoutError:
            log.error("storing a mail from %s took over %ss: answered 451", envelope.mail_from, timeout)
            return TIMEOUT
        except Exception:
            log.exception("could not spool a mail from %s", envelope.mail_from)
            return TEMPFAIL
        if isinstance(stored, Staged):
            return f"250 2.0.0 OK queued as S{stored.id}"  # the mover wakes the worker
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


class _LongLines(SMTP):
    """aiosmtpd refuses any DATA line over RFC 5321's 1,000 octets with "500 Line too long"; Postfix
    and the big providers accept such mail (SES notifications, HTML from common clients), so we do
    too, up to what this DATA may hold, and keep the bytes exactly as they came. Command lines keep
    the short limit: only DATA, whose bytes the in-flight budget reserved, reads long lines."""

    async def smtp_DATA(self, arg: str) -> None:
        limit = (self.data_size_limit or 0) + 3  # the line's CRLF and a transparency dot on top
        if limit <= SMTP.line_length_limit:
            await super().smtp_DATA(arg)
            return
        # aiosmtpd reads lines with its StreamReader's limit (set once, at construction) and checks
        # line_length_limit after: both are raised for this DATA only.
        reader, saved = self._reader, self._reader._limit
        self.line_length_limit, reader._limit = limit, limit
        try:
            await super().smtp_DATA(arg)
        finally:
            del self.line_length_limit
            reader._limit = saved


_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_PATH = re.compile(rf"<({_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>(.*)", re.DOTALL)


class _PlainAddresses(SMTP):
    """MAIL FROM and RCPT TO paths of the everyday kind (<dot-atom@domain>, then parameters) read with
    one regular expression. aiosmtpd reads every path with the email package's header parser (and
    defines a class on each call): a third of the door's CPU. Anything else (quoting, a source route,
    an address literal, comments, non-ASCII) is left to aiosmtpd, which reads those as before."""

    def _getaddr(self, arg: str):
        plain = _PLAIN_PATH.fullmatch(arg)
        if plain is None:
            return super()._getaddr(arg)
        address, rest = plain.groups()
        if rest[:1] in (" ", "\t"):  # the email parser's folding white space: str.lstrip's white space
            rest = rest.lstrip()
        if rest[:1] == "(":  # a comment
            return super()._getaddr(arg)
        if self.local_part_limit and len(address.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return address, rest


class PostdeskSMTP(GuardedSMTP, _LongLines, _PlainAddresses):
    """The door's protocol: the in-flight budget reserves a DATA's bytes (GuardedSMTP), then its
    lines may be as long as that reservation (_LongLines); plain addresses are read quickly
    (_PlainAddresses)."""


def make_protocol(settings: Settings, handler: SupportInbox) -> SMTP:
    return PostdeskSMTP(handler, data_size_limit=settings.smtp.max_message_bytes, enable_SMTPUTF8=True,
                        decode_data=False, hostname=settings.from_address.rpartition("@")[2] or None,
                        ident="Postdesk ESMTP", budget=handler.budget)


async def start_smtp_server(settings: Settings, handler: SupportInbox,
                            host: str | None = None, port: int | None = None) -> asyncio.AbstractServer:
    """Listen on [smtp] host:port (or the given ones; port 0 = any free port) in the running loop."""
    loop = asyncio.get_running_loop()
    handler.start()
    return await loop.create_server(lambda: make_protocol(settings, handler),
                                    host or settings.smtp.host,
                                    settings.smtp.port if port is None else port)
