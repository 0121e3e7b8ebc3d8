"""Limits of the SMTP door that aiosmtpd does not know: bytes of DATA held across all connections
at once, and envelope addresses with control characters (which no database stores)."""
from __future__ import annotations

import logging
import re

from aiosmtpd.smtp import SMTP

log = logging.getLogger(__name__)
OVER_BUDGET = "452 4.3.1 Insufficient system storage: too much mail in transit, please try again later"
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
SIZE_OPTION = re.compile(r"SIZE=(\d{1,12})$", re.IGNORECASE)


def has_control_characters(address: str | None) -> bool:
    """True when an envelope address carries a control character (NUL, CR, LF, …)."""
    return bool(address) and CONTROL.search(address) is not None


class InflightBudget:
    """Bytes of DATA all connections of this process may hold at once. Every caller runs on the one
    event loop of the SMTP server, so check and reserve happen without an await between them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.reserved = 0

    def reserve(self, size: int) -> bool:
        if self.reserved + size > self.limit:
            return False
        self.reserved += size
        return True

    def release(self, size: int) -> None:
        self.reserved -= size


def reservation(mail_options: list[str], max_message_bytes: int) -> int:
    """What one DATA may hold: the SIZE the sender declared (RFC 1870; a little more for dot-stuffing
    and line ends), else the largest mail we accept."""
    for option in mail_options:
        match = SIZE_OPTION.match(option.strip())
        if match:
            declared = int(match.group(1))
            return min(max_message_bytes, declared + declared // 50 + 64 * 1024)
    return max_message_bytes


class GuardedSMTP(SMTP):
    """aiosmtpd's SMTP, which reserves a DATA's bytes from a shared budget before reading it (452 4.3.1
    when the budget is spent) and reads no more than it reserved (552 beyond)."""

    def __init__(self, *args, budget: InflightBudget, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.budget = budget

    async def smtp_DATA(self, arg: str) -> None:
        configured = self.data_size_limit
        size = reservation(self.envelope.mail_options if self.envelope else [], configured or self.budget.limit)
        if self.envelope is None or not self.envelope.rcpt_tos or arg or not self.session.host_name:
            await super().smtp_DATA(arg)  # aiosmtpd answers these protocol errors itself
            return
        if not self.budget.reserve(size):
            log.warning("DATA from %s refused: %s bytes in transit already", self.session.peer, self.budget.reserved)
            await self.push(OVER_BUDGET)
            return
        self.data_size_limit = size
        try:
            await super().smtp_DATA(arg)
        finally:
            self.data_size_limit = configured
            self.budget.release(size)
