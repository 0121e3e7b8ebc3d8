"""A real SMTP server that keeps what it receives: the smarthost in tests."""
from __future__ import annotations

import email
import email.policy
import threading
import time
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from tests.support.net import free_port


class _Collect:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.lock = threading.Lock()
        self.refuse_with: str | None = None
        self.connections = 0  # EHLOs seen: smtplib greets once per connection
        self.close_after: int | None = None  # answer the next DATA after this many mails with 421
        self.resets = 0  # RSET commands seen

    async def handle_RSET(self, server, session, envelope):
        with self.lock:
            self.resets += 1
        return "250 OK"

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        with self.lock:
            self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server, session, envelope):
        if self.refuse_with:
            return self.refuse_with
        if self.close_after is not None and len(self.messages) >= self.close_after:
            self.close_after = None
            server.transport.close()  # the smarthost goes away mid-transaction, as after a restart
            return "421 4.3.2 closing connection"
        with self.lock:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"


class SmtpSink:
    """Listens on 127.0.0.1 on a free port; `.wait_for(n)` returns the parsed mails."""

    def __init__(self) -> None:
        self.handler = _Collect()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> "SmtpSink":
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()

    def refuse(self, reply: str | None) -> None:
        """Answer every DATA with this reply (e.g. '451 try later'), or accept again with None."""
        self.handler.refuse_with = reply

    @property
    def connections(self) -> int:
        """How many SMTP connections have greeted this sink (EHLO) so far."""
        with self.handler.lock:
            return self.handler.connections

    @property
    def resets(self) -> int:
        """How many RSET commands clients sent so far."""
        with self.handler.lock:
            return self.handler.resets

    def drop_after(self, count: int) -> None:
        """Drop the connection (421) at the first DATA once `count` mails were received; once."""
        self.handler.close_after = count

    def mails(self) -> list[EmailMessage]:
        with self.handler.lock:
            return [email.message_from_bytes(raw, policy=email.policy.default)
                    for _, _, raw in self.handler.messages]

    def envelopes(self) -> list[tuple[str, list[str], bytes]]:
        with self.handler.lock:
            return list(self.handler.messages)

    def wait_for(self, count: int, timeout: float = 15.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            mails = self.mails()
            if len(mails) >= count:
                return mails
            time.sleep(0.05)
        raise AssertionError(f"expected {count} mail(s) at the sink, got {len(self.mails())}")
