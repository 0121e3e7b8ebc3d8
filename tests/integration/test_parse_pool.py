"""The worker parses the next batch in a helper process while it stores the one before
(ingest.parse_pool, SQLite): every mail is stored once, replies on their thread's ticket, and a
helper that dies costs nothing but its batch's parsing, done in the worker instead."""
from __future__ import annotations

import os
import signal

from sqlalchemy import func, select

from core.models import Message, RawMail, Ticket
from ingest import spool, worker
from ingest.parse_pool import ParsePool


def _mail(n: int, reply_to: int | None = None) -> bytes:
    subject = f"Re: question {reply_to}" if reply_to is not None else f"question {n}"
    threading = f"In-Reply-To: <q-{reply_to}@example.org>\r\n" if reply_to is not None else ""
    return (f"From: Ann {n} <ann{reply_to if reply_to is not None else n}@example.org>\r\n"
            f"To: support@example.test\r\nSubject: {subject}\r\nMessage-ID: <q-{n}@example.org>\r\n{threading}"
            f"\r\nThis is mail number {n}.\r\n").encode()


def _spool(desk, raws: list[bytes]) -> None:
    for raw in raws:
        spool.put(desk.sessions, raw, "smtp", "", ("support@example.test",))


def _count(desk, model, *where) -> int:
    with desk.sessions() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def test_batches_parsed_ahead_are_all_stored_once_and_replies_find_their_tickets(desk):
    _spool(desk, [_mail(n) for n in range(60)] + [_mail(100 + n, reply_to=n) for n in range(60)])
    parser = ParsePool(desk.settings)
    try:
        outcomes = worker.drain(desk.sessions, desk.settings, batch=25, parser=parser)
    finally:
        parser.close()
    assert len(outcomes) == 120 and not any(o.error for o in outcomes)
    assert _count(desk, Ticket) == 60 and _count(desk, Message, Message.direction == "in") == 120
    assert _count(desk, RawMail, RawMail.state == "done") == 120
    assert sorted(o.received.matched_by for o in outcomes).count("in-reply-to") == 60


def test_a_helper_that_dies_costs_only_its_batch_parsing(desk):
    _spool(desk, [_mail(n) for n in range(30)])
    parser = ParsePool(desk.settings)
    try:
        parser.submit([]).result(timeout=60)  # the helper is up
        for pid in list(parser._pool._processes):
            os.kill(pid, signal.SIGKILL)
        outcomes = worker.drain(desk.sessions, desk.settings, batch=10, parser=parser)
        assert len(outcomes) == 30 and not any(o.error for o in outcomes)
        _spool(desk, [_mail(n) for n in range(30, 40)])  # and a new helper takes the next batches
        assert len(worker.drain(desk.sessions, desk.settings, batch=10, parser=parser)) == 10
    finally:
        parser.close()
    assert _count(desk, Ticket) == 40 and _count(desk, RawMail, RawMail.state == "done") == 40
