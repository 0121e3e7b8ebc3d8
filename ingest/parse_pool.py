"""Parsing in a process of its own, so the worker stores one batch while the next is parsed.

Parsing a mail (the email package, sender authentication, the automatic-mail verdict) is about
a third of intake's CPU and needs no database. In the worker's own thread it came before every
batch's store; in a helper process it runs beside it, on the other core. What crosses over is
the claimed rows and plain values back (ParsedMail, AuthVerdict, Verdict). Should the helper die
(a mail that crashes the parser), the batch is parsed in the worker's own process instead and a
new helper is started for the next one.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Callable

from core.config import Settings
from core.errors import SenderError
from core.process_lifetime import die_with_parent

log = logging.getLogger(__name__)

_settings: Settings | None = None  # in the helper process


def _start_helper(settings: Settings, parent_pid: int) -> None:
    global _settings
    die_with_parent(parent_pid)  # a SIGKILLed worker leaves no helper behind
    _settings = settings


def _parse_in_helper(rows: list) -> list[tuple]:
    from ingest.worker import _parse

    out = []
    for row in rows:
        parsed = _parse(row, _settings)
        out.append((parsed.mail, _portable(parsed.error), parsed.auth, parsed.verdict))
    return out


def _portable(error: Exception | None) -> Exception | None:
    """The error as it can cross to the worker (an exception that cannot be pickled keeps its
    text and whether the mail is at fault)."""
    if error is None:
        return None
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        kind = SenderError if isinstance(error, SenderError) else RuntimeError
        return kind(f"{type(error).__name__}: {error}")


class ParsePool:
    """One helper process that parses claimed rows for the worker."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool: ProcessPoolExecutor | None = None

    def _helper(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: the worker has threads (scheduler, delivery) whose locks a fork would copy
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_start_helper, initargs=(self.settings, os.getpid()))
        return self._pool

    def start(self) -> None:
        """Start the helper now, not with the first batch: it takes a second or two to import what
        parsing needs, and the first mails would wait for that."""
        self.submit([])

    def submit(self, rows: list) -> Future:
        try:
            return self._helper().submit(_parse_in_helper, rows)
        except (BrokenProcessPool, RuntimeError):
            self._restart()
            future: Future = Future()
            future.set_exception(BrokenProcessPool("the parse helper is gone"))
            return future

    def results(self, future: Future, rows: list, parse_here: Callable) -> list:
        """The rows parsed (ingest.worker._Parsed), in order; parsed here with `parse_here` if the helper failed."""
        from ingest.worker import _Parsed

        try:
            return [_Parsed(row, *values) for row, values in zip(rows, future.result(), strict=True)]
        except Exception:
            log.warning("the parse helper failed on a batch of %s mails; parsing them in the worker", len(rows),
                        exc_info=True)
            self._restart()
            return [parse_here(row) for row in rows]

    def _restart(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
