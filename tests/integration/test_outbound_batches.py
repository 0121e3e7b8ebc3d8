"""Outbox delivery at intake speed: a backlog leaves over a handful of reused smarthost connections,
a dropped connection is reopened, and a deliverer killed in the middle of a batch strands only that
batch's rest, and only until its short lease ends."""
from __future__ import annotations

import dataclasses
import time
from collections import Counter

from sqlalchemy import func, select

from core.models import Outbox
from core.outbound import deliver_due
from ingest import spool, worker
from tests.integration.test_outbound import _queue, _rows, _with_smarthost
from tests.support.server import PostdeskProcess
from tests.support.stalling_sink import StallingSink


def _customers_write(desk, count: int) -> None:
    """`count` new mails from `count` people, stored by the real intake worker: `count` acknowledgements."""
    for i in range(count):
        raw = (f"From: person{i}@example.org\r\nTo: support@example.test\r\nSubject: Question {i}\r\n"
               f"Message-ID: <ask-{i}@example.org>\r\n\r\nPlease help with thing {i}.\r\n").encode()
        spool.put(desk.sessions, raw, "smtp", f"person{i}@example.org", ("support@example.test",))
    while worker.drain(desk.sessions, desk.settings):
        pass


def test_500_acknowledgements_leave_over_a_handful_of_connections(desk, sink):
    _customers_write(desk, 500)
    with desk.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Outbox).where(Outbox.purpose == "acknowledgement")) == 500
    _with_smarthost(desk, sink.port)  # [outbound] connections = 2, the default

    assert deliver_due(desk.sessions, desk.settings) == 500

    mails = sink.wait_for(500)
    assert sorted(m["To"] for m in mails) == sorted(f"person{i}@example.org" for i in range(500))
    assert sink.connections <= 4, f"{sink.connections} connections for 500 mails"
    assert {r.state for r in _rows(desk)} == {"sent"}


def test_a_dropped_connection_is_reopened_and_the_batch_goes_on(desk, sink):
    ids = _queue(desk, 30)
    _with_smarthost(desk, sink.port)
    desk.settings = dataclasses.replace(desk.settings, outbound=dataclasses.replace(
        desk.settings.outbound, connections=1))
    sink.drop_after(10)  # the 11th mail's DATA is answered 421 and the connection closed

    assert deliver_due(desk.sessions, desk.settings) == 30

    assert sorted(m["Message-ID"] for m in sink.wait_for(30)) == sorted(ids)  # each once
    assert sink.connections == 2
    assert {(r.state, r.attempts) for r in _rows(desk)} == {("sent", 1)}


def test_a_backlog_takes_one_write_transaction_per_batch(desk, sink, monkeypatch):
    """Each batch's outcomes are recorded in the transaction that claims the next batch: on SQLite
    every write transaction waits for intake's batch to commit, so a deliverer waits once per batch."""
    from sqlalchemy import event

    from core import outbound

    monkeypatch.setattr(outbound, "RECORD_EVERY", 60.0)  # no interim record while a batch is sent
    ids = _queue(desk, 3 * outbound.BATCH)
    _with_smarthost(desk, sink.port)
    desk.settings = dataclasses.replace(desk.settings, outbound=dataclasses.replace(
        desk.settings.outbound, connections=1))
    commits = []
    engine = desk.sessions.kw["bind"]
    listener = lambda conn: commits.append(1)  # noqa: E731
    event.listen(engine, "commit", listener)
    try:
        assert deliver_due(desk.sessions, desk.settings) == 3 * outbound.BATCH
    finally:
        event.remove(engine, "commit", listener)
    assert sorted(m["Message-ID"] for m in sink.wait_for(len(ids))) == sorted(ids)
    assert {(r.state, r.attempts) for r in _rows(desk)} == {("sent", 1)}
    # The first claim, then one transaction per batch (its record, and the next batch's claim).
    assert len(commits) == 3 + 1


def test_rset_comes_only_after_a_failed_mail_or_an_idle_pause(sink, monkeypatch):
    from core import smarthost as smarthost_module
    from core.config import OutboundSettings
    from core.smarthost import SmarthostSession

    @dataclasses.dataclass
    class Mail:
        mail_from: str
        rcpt_to: str
        raw: bytes

    def mail(i: int) -> Mail:
        return Mail("support@example.test", f"p{i}@example.org",
                    f"From: support@example.test\r\nTo: p{i}@example.org\r\nSubject: {i}\r\n\r\nHi\r\n".encode())

    with SmarthostSession(OutboundSettings(host="127.0.0.1", port=sink.port, timeout_seconds=5)) as session:
        assert [session.send(mail(i)).state for i in range(3)] == ["sent"] * 3
        assert sink.resets == 0  # one delivered mail after another: MAIL FROM starts each transaction
        sink.refuse("451 4.3.0 try later")
        assert session.send(mail(3)).state == "retry"
        sink.refuse(None)
        assert session.send(mail(4)).state == "sent"
        assert sink.resets == 2  # the failed transaction is reset (by smtplib at once, by us before the next mail)
        monkeypatch.setattr(smarthost_module, "IDLE_RSET_SECONDS", 0.0)  # as if the connection sat idle
        assert session.send(mail(5)).state == "sent"
        assert sink.resets == 3  # an idle connection is checked before a mail is handed to it
    assert len(sink.wait_for(5)) == 5 and sink.connections == 1


def test_a_deliverer_killed_mid_batch_strands_only_its_batch_until_the_lease_ends(desk, tmp_path):
    ids = _queue(desk, 60)
    lease = 4
    with StallingSink(stall=True, stall_after=5, max_stall=120) as sink:
        env = {"POSTDESK_DATABASE__URL": desk.settings.database.url,
               "POSTDESK_WEB__SECRET_KEY": desk.settings.web.secret_key,
               "POSTDESK_OUTBOUND__HOST": "127.0.0.1", "POSTDESK_OUTBOUND__PORT": str(sink.port),
               "POSTDESK_OUTBOUND__CONNECTIONS": "1", "POSTDESK_OUTBOUND__LEASE_SECONDS": str(lease)}
        with PostdeskProcess(tmp_path / "first", env, only="worker") as first:
            assert sink.in_data.wait(60), first.output()  # mail 6 of the first batch is held in DATA
            time.sleep(1.5)  # the batch's timer writes down the five mails already sent
            first.proc.kill()  # SIGKILL
            first.proc.wait(10)
        in_flight = _in_flight(desk)
        sent_before = [r.message_id for r in _rows(desk) if r.state == "sent"]
        assert len(sent_before) == 5 and in_flight is not None
        sink.release()  # the sink now also keeps the held mail (a smarthost that had queued it)

        restarted = time.monotonic()
        with PostdeskProcess(tmp_path / "second", env, only="worker") as second:
            while set(ids) - {m["Message-ID"] for m in sink.mails()} and time.monotonic() < restarted + lease + 20:
                time.sleep(0.1)
            took = time.monotonic() - restarted
            assert took < lease + 10, second.output()
            time.sleep(2.5)  # a deliverer's next run: nothing more may come

    counts = Counter(m["Message-ID"] for m in sink.mails())
    assert set(counts) == set(ids)  # nothing lost
    assert {msgid for msgid, n in counts.items() if n > 1} <= {in_flight}  # only the one in flight twice
    assert {r.state for r in _rows(desk)} == {"sent"}


def _in_flight(desk) -> str | None:
    """The Message-ID of the first claimed row not yet recorded as sent: the mail held in DATA."""
    pending = [r for r in _rows(desk) if r.state == "pending" and r.attempts == 1]
    return pending[0].message_id if pending else None
