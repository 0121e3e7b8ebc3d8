"""Threading that holds in any arrival order (the reference graph, late parents unifying split
conversations, bounded waits for a parent in the spool), on both databases."""
from __future__ import annotations

import dataclasses
import random
import smtplib
import time
from datetime import datetime, timezone
from collections import Counter, defaultdict

import pytest
from sqlalchemy import func, select

from core.db import migrate
from core.models import Event, Message, Outbox, RawMail, Ticket
from ingest import spool, worker
from postdesk.bootstrap import bootstrap
from tests.conftest import make_settings
from tests.support.conversations import generate
from tests.support.server import SmtpDoor


@pytest.fixture
def quick_desk(db_url, tmp_path):
    """A desk whose held replies wait at most one second for their original."""
    settings = make_settings(db_url, tmp_path, intake={"parent_wait_seconds": 1.0})
    migrate(settings.database.url)
    desk = bootstrap(settings=settings)
    yield desk
    desk.engine.dispose()


def drain_all(desk, timeout: float = 120) -> None:
    """Drain until no mail is pending (held replies included: their wait is bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker.drain(desk.sessions, desk.settings)
        with desk.sessions() as s:
            if not s.scalar(select(func.count()).select_from(RawMail).where(RawMail.state == "pending")):
                return
        time.sleep(0.1)
    raise AssertionError("the spool did not drain")


def placement(desk, mails) -> tuple[int, int, int, int]:
    """(replies on their conversation's ticket, replies elsewhere, tickets opened, mails stored twice)."""
    conversation_of = {m.message_id: m.conversation for m in mails}
    with desk.sessions() as s:
        rows = s.execute(select(Message.message_id, Message.ticket_id).where(Message.direction == "in")).all()
        tickets = s.scalar(select(func.count()).select_from(Ticket).where(Ticket.merged_into_id.is_(None)))
    stored = Counter(msgid for msgid, _ in rows)
    ticket_of = {msgid: ticket for msgid, ticket in rows}
    root_ticket = {m.conversation: ticket_of.get(m.message_id) for m in mails if not m.is_reply}
    home = defaultdict(Counter)  # ticket → conversations on it
    for msgid, ticket in rows:
        home[ticket][conversation_of[msgid]] += 1
    on_own = sum(1 for m in mails if m.is_reply and ticket_of.get(m.message_id) == root_ticket[m.conversation])
    foreign = sum(1 for ticket, convs in home.items() if len(convs) > 1 for c, n in convs.items()
                  if c != convs.most_common(1)[0][0] for _ in range(n))
    return on_own, foreign, tickets, sum(1 for n in stored.values() if n > 1) + sum(
        1 for m in mails if m.message_id not in stored)


@pytest.mark.parametrize("seed", [11, 29])
def test_shuffled_replay_keeps_conversations_together(quick_desk, seed):
    mails = generate(conversations=1300, replies=750, seed=seed)
    shuffled = mails[:]
    random.Random(seed).shuffle(shuffled)
    rng = random.Random(seed + 1)
    position = 0
    while position < len(shuffled):  # mails arrive in bursts, the worker drains between them
        burst = rng.randint(1, 30)
        for m in shuffled[position:position + burst]:
            spool.put(quick_desk.sessions, m.raw, "smtp", m.raw.split(b"\r\n")[0][6:].decode(),
                      ("support@example.test",))
        position += burst
        worker.drain(quick_desk.sessions, quick_desk.settings)
    drain_all(quick_desk)
    replies = sum(m.is_reply for m in mails)
    on_own, foreign, tickets, not_once = placement(quick_desk, mails)
    assert not_once == 0  # every mail stored exactly once
    assert foreign == 0  # no mail on another conversation's ticket
    assert on_own >= 0.98 * replies, (on_own, replies)
    assert tickets <= 1300 + 0.02 * replies


def _put(desk, raw: bytes, sender="ann@example.org"):
    return spool.put(desk.sessions, raw, "smtp", sender, ("support@example.test",))


def _mail(msgid: str, subject: str, headers: str = "", sender="ann@example.org") -> bytes:
    return (f"From: {sender}\r\nTo: support@example.test\r\nSubject: {subject}\r\nMessage-ID: <{msgid}>\r\n"
            f"{headers}\r\nText of {msgid}.\r\n").encode()


def _acks(desk) -> int:
    with desk.sessions() as s:
        return s.scalar(select(func.count()).select_from(Outbox).where(Outbox.purpose == "acknowledgement"))


def test_reply_stored_before_its_parent_gets_one_ticket_and_one_ack(quick_desk):
    _put(quick_desk, _mail("r1@example.org", "Re: Printer", "In-Reply-To: <p1@example.org>\r\n"
                           "References: <p1@example.org>\r\n"))
    drain_all(quick_desk)
    assert _acks(quick_desk) == 1
    _put(quick_desk, _mail("p1@example.org", "Printer"))
    drain_all(quick_desk)
    with quick_desk.sessions() as s:
        rows = dict(s.execute(select(Message.message_id, Message.matched_by)).all())
        assert s.scalar(select(func.count()).select_from(Ticket)) == 1
    assert rows == {"r1@example.org": "new", "p1@example.org": "referenced-by"}
    assert _acks(quick_desk) == 1
    with quick_desk.sessions() as s:  # the ticket opened by "Re: Printer" is named after the original now
        assert s.scalar(select(Ticket.subject)) == "Printer"


def test_sibling_reply_joins_through_a_shared_reference(quick_desk):
    _put(quick_desk, _mail("s1@example.org", "Re: Printer", "In-Reply-To: <p2@example.org>\r\n"))
    drain_all(quick_desk)
    _put(quick_desk, _mail("s2@example.org", "Re: Printer", "References: <p2@example.org>\r\n"))
    drain_all(quick_desk)
    with quick_desk.sessions() as s:
        assert dict(s.execute(select(Message.message_id, Message.matched_by)).all())["s2@example.org"] == \
            "shared-reference"
        assert s.scalar(select(func.count()).select_from(Ticket)) == 1


def test_late_mail_unifies_a_split_conversation_without_another_ack(quick_desk):
    # r2 names only r1; r1 names p: r2 and p open two tickets; r1 links them.
    _put(quick_desk, _mail("r2@example.org", "Re: Re: Printer", "In-Reply-To: <r1x@example.org>\r\n"))
    drain_all(quick_desk)
    _put(quick_desk, _mail("px@example.org", "Printer"))
    drain_all(quick_desk)
    acks = _acks(quick_desk)
    _put(quick_desk, _mail("r1x@example.org", "Re: Printer", "In-Reply-To: <px@example.org>\r\n"))
    drain_all(quick_desk)
    with quick_desk.sessions() as s:
        first, second = s.scalars(select(Ticket).order_by(Ticket.id)).all()
        assert (second.status, second.merged_into_id) == ("closed", first.id)
        assert {m.ticket_id for m in s.scalars(select(Message))} == {first.id}
        kinds = {(e.ticket_id, e.kind) for e in s.scalars(select(Event))}
        assert {(second.id, "merged_into"), (first.id, "merged_from")} <= kinds
    assert _acks(quick_desk) == acks


def test_tickets_of_two_requesters_are_never_merged(quick_desk):
    _put(quick_desk, _mail("a@example.org", "Mine"))
    _put(quick_desk, _mail("b@example.com", "Re: Mine", "In-Reply-To: <a@example.org>\r\n", sender="bob@example.com"),
         sender="bob@example.com")
    drain_all(quick_desk)
    with quick_desk.sessions() as s:
        tickets = s.scalars(select(Ticket).order_by(Ticket.id)).all()
        assert len(tickets) == 2 and all(t.merged_into_id is None for t in tickets)
        assert s.scalar(select(Event).where(Event.ticket_id == tickets[1].id, Event.kind == "mentions")) is not None


def test_held_reply_waits_only_as_long_as_configured(quick_desk):
    """A reply whose original stays in the spool (say, failing) is threaded on its own after the wait."""
    _put(quick_desk, _mail("late-child@example.org", "Re: X", "In-Reply-To: <never@example.org>\r\n"))
    with quick_desk.sessions() as s, s.begin():  # a pending original the worker will not take for ages
        s.add(RawMail(dedupe_key="mid:never@example.org", message_id="never@example.org", door="smtp",
                      raw=_mail("never@example.org", "X"), state="pending",
                      held_until=datetime(2099, 1, 1, tzinfo=timezone.utc), waiting_for="something-else"))
    worker.drain(quick_desk.sessions, quick_desk.settings)
    with quick_desk.sessions() as s:
        held = s.scalar(select(RawMail).where(RawMail.message_id == "late-child@example.org"))
        assert held.state == "pending" and held.waiting_for == "never@example.org" and held.attempts == 0
    time.sleep(1.2)
    worker.drain(quick_desk.sessions, quick_desk.settings)
    with quick_desk.sessions() as s:
        assert s.scalar(select(RawMail.state).where(RawMail.message_id == "late-child@example.org")) == "done"


def test_spooled_backlog_of_shuffled_mails_drains_completely(db_url, tmp_path):
    settings = make_settings(db_url, tmp_path, intake={"parent_wait_seconds": 2.0})
    migrate(settings.database.url)
    desk = bootstrap(settings=settings)
    mails = generate(conversations=1250, replies=750, seed=7)
    random.Random(7).shuffle(mails)
    try:
        with SmtpDoor(desk, with_worker=False) as door:  # `serve --only smtp`: nothing is processed
            with smtplib.SMTP("127.0.0.1", door.port, timeout=30) as smtp:
                for m in mails:
                    smtp.sendmail(m.raw.split(b"\r\n")[0][6:].decode(), ["support@example.test"], m.raw)
        with desk.sessions() as s:
            assert s.scalar(select(func.count()).select_from(RawMail).where(RawMail.state == "pending")) == 2000
        with SmtpDoor(desk) as door:  # now the worker runs
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                with desk.sessions() as s:
                    left = s.scalar(select(func.count()).select_from(RawMail).where(RawMail.state != "done"))
                if not left:
                    break
                time.sleep(0.5)
        assert left == 0
        on_own, foreign, _, not_once = placement(desk, mails)
        assert not_once == 0 and foreign == 0
        assert on_own >= 0.98 * sum(m.is_reply for m in mails)
    finally:
        desk.engine.dispose()
