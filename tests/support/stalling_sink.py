"""An SMTP sink that is slow to answer DATA: a smarthost on a bad day, for tests of outbox delivery."""
from __future__ import annotations

import asyncio
import threading
import time

from aiosmtpd.controller import Controller

from tests.support.sink import SmtpSink, _Collect


class _Slow(_Collect):
    def __init__(self, delay: float, stall: bool, max_stall: float, stall_after: int = 0) -> None:
        super().__init__()
        self.stall_after = stall_after
        self.delay = delay
        self.stall = stall
        self.max_stall = max_stall
        self.in_data = threading.Event()
        self.released = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        if len(self.messages) < self.stall_after:
            return await super().handle_DATA(server, session, envelope)
        self.in_data.set()
        deadline = time.monotonic() + self.max_stall
        while self.stall and not self.released.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)  # other connections go on meanwhile
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


class StallingSink(SmtpSink):
    """`StallingSink(delay=0.01)` answers each DATA after `delay` seconds; `StallingSink(stall=True)`
    holds every DATA until `release()` (at most `max_stall` seconds); with `stall_after=n` the first n
    mails pass at once. `in_data` is set once a held (or delayed) mail has reached DATA."""

    def __init__(self, delay: float = 0.0, stall: bool = False, max_stall: float = 30.0,
                 stall_after: int = 0) -> None:
        super().__init__()
        self.handler = _Slow(delay, stall, max_stall, stall_after)
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def in_data(self) -> threading.Event:
        return self.handler.in_data

    def release(self) -> None:
        self.handler.released.set()

    def __exit__(self, *exc) -> None:
        self.release()
        super().__exit__(*exc)
