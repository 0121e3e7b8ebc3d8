"""One reused SMTP connection to the smarthost: a batch of mails goes out over it, RSET before a
mail that follows a failed one or an idle pause, a fresh connection when the server says 421 or
the connection drops.

Each mail is answered with what became of it (sent, retry later, failed for good); a connection
problem never fails a mail for good, it only makes it wait for the next attempt.
"""
from __future__ import annotations

import logging
import smtplib
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Protocol

from core.config import OutboundSettings

log = logging.getLogger(__name__)
CONNECTION_TROUBLE = (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError, socket.timeout)
# A mail right after a delivered one goes out without RSET: MAIL FROM starts a new transaction
# anyway (RFC 5321 3.3), and under load each round trip waits for a CPU (about a fifth of a mail's
# time). After a failure, or a pause this long, RSET first: it shows a connection the server dropped.
IDLE_RSET_SECONDS = 1.0


class PermanentFailure(Exception):
    """5xx from the smarthost: retrying cannot help."""


class RecipientRefused(PermanentFailure):
    """The smarthost refused the address itself: stop mailing it until an admin clears it."""


class Envelope(Protocol):
    """What a send needs of an outgoing mail."""
    mail_from: str
    rcpt_to: str
    raw: bytes


@dataclass(frozen=True)
class Outcome:
    """What became of one mail: 'sent', 'retry' (4xx or connection trouble) or 'failed' (5xx)."""
    state: str
    error: str = ""
    refused: bool = False  # the recipient's address itself was refused


SENT = Outcome("sent")


def _is_closing(exc: Exception) -> bool:
    """421: the server is closing this connection (RFC 5321 4.2.2); a new one may well work."""
    return isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code == 421


def _permanent(exc: smtplib.SMTPException) -> PermanentFailure | None:
    """The 5xx answer as our exception, or None when the answer was temporary."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code = next(iter(exc.recipients.values()))[0]
        return RecipientRefused(f"recipient refused: {exc.recipients}") if 500 <= code < 600 else None
    if isinstance(exc, smtplib.SMTPResponseException) and 500 <= exc.smtp_code < 600:
        detail = exc.smtp_error if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error).encode()
        # Each mail has one recipient: an enhanced status 5.1.x names that address as bad.
        kind = RecipientRefused if detail.startswith(b"5.1.") else PermanentFailure
        return kind(f"{exc.smtp_code} {detail.decode(errors='replace')}")
    return None


class SmarthostSession:
    """A lazily opened, reused connection; `send` never raises, it returns the mail's Outcome.
    Use as a context manager: the connection is closed (QUIT) at the end of the batch."""

    def __init__(self, cfg: OutboundSettings) -> None:
        self.cfg = cfg
        self._smtp: smtplib.SMTP | None = None
        self._used = False  # a mail went over the current connection: RSET before the next, unless …
        self._clean_at: float | None = None  # … it was delivered, this recently (time.monotonic)
        self.connections = 0  # opened so far (for logs and tests)
        self._down = ""  # why the smarthost could not be reached: the batch's other mails wait too

    def __enter__(self) -> "SmarthostSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def down(self) -> str:
        """Why the smarthost could not be reached ('' while it could)."""
        return self._down

    def close(self) -> None:
        if self._smtp is None:
            return
        try:
            self._smtp.quit()
        except (smtplib.SMTPException, OSError):
            self._smtp.close()
        self._smtp = None

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
        self._smtp = None

    def _connection(self) -> smtplib.SMTP:
        clean = self._clean_at is not None and time.monotonic() - self._clean_at < IDLE_RSET_SECONDS
        if self._smtp is not None and self._used and not clean:
            try:
                # A new transaction starts clean, and a connection the server dropped while idle
                # shows here, before a mail is handed to it.
                code, _ = self._smtp.rset()
                if code != 250:
                    self._drop()
            except CONNECTION_TROUBLE:
                self._drop()
        if self._smtp is None:
            self._smtp = self._open()
            self._used, self._clean_at = False, None
        return self._smtp

    def _open(self) -> smtplib.SMTP:
        """A new connection (TLS, login as configured). When it cannot be had, the reason is kept:
        the batch's other mails wait for the next attempt instead of each timing out again."""
        cfg = self.cfg
        smtp = None
        try:
            smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_seconds)
            if cfg.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if cfg.username:
                smtp.login(cfg.username, cfg.password)
        except (*CONNECTION_TROUBLE, smtplib.SMTPException) as exc:
            if smtp is not None:
                smtp.close()
            self._down = f"smarthost {cfg.host}:{cfg.port}: {type(exc).__name__}: {exc}"[:2000]
            raise
        self.connections += 1
        return smtp

    def send(self, mail: Envelope) -> Outcome:
        """Hand one mail to the smarthost. A dropped connection or a 421 is tried once more on a
        fresh connection: at least once, as the outbox promises (the mail may have been taken
        just before the drop; SMTP cannot tell)."""
        for attempt in (1, 2):
            if self._down:
                return Outcome("retry", self._down)
            try:
                smtp = self._connection()
                self._used, self._clean_at = True, None
                smtp.sendmail(mail.mail_from, [mail.rcpt_to], mail.raw)
                self._clean_at = time.monotonic()
                return SENT
            except smtplib.SMTPException as exc:
                if self._down:
                    return Outcome("retry", self._down)
                refusal = _permanent(exc)
                if refusal is not None:
                    return Outcome("failed", str(refusal), isinstance(refusal, RecipientRefused))
                # (Every SMTPException is an OSError: only a 421 or a lost connection means this one is gone.)
                if _is_closing(exc) or isinstance(exc, smtplib.SMTPServerDisconnected):
                    self._drop()
                    if attempt == 1:
                        log.info("smarthost closed the connection (%s); reconnecting", exc)
                        continue
                return Outcome("retry", f"{type(exc).__name__}: {exc}"[:2000])
            except CONNECTION_TROUBLE as exc:
                self._drop()
                if attempt == 1 and not self._down:
                    continue
                return Outcome("retry", f"{type(exc).__name__}: {exc}"[:2000])
        raise AssertionError("unreachable")
