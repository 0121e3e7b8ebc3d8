"""Warnings that repeat while one problem lasts (a provider down, a job still running) are logged
once per period, with how many were left out, instead of flooding the log."""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable


class OncePer(logging.Filter):
    """A logger filter: each message template (optionally only those containing `contains`) passes at
    most once per `seconds`; the next one that passes says how many were dropped meanwhile."""

    def __init__(self, seconds: float, contains: str = "", clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.seconds, self.contains, self.clock = seconds, contains, clock
        self._last: dict[str, float] = {}
        self._dropped: dict[str, int] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        template = str(record.msg)
        if record.levelno < logging.WARNING or (self.contains and self.contains not in record.getMessage()):
            return True
        now = self.clock()
        with self._lock:
            if now - self._last.get(template, float("-inf")) < self.seconds:
                self._dropped[template] = self._dropped.get(template, 0) + 1
                return False
            self._last[template] = now
            dropped = self._dropped.pop(template, 0)
        if dropped:
            record.msg = f"{record.msg} ({dropped} more like this in the last {self.seconds:g}s not logged)"
        return True
