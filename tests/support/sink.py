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

    async def handle_DATA(self, server, session, envelope):
        if self.refuse_with:
            return self.refuse_with
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
