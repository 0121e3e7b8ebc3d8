"""merge_tickets: the source's thread continues on the target, on both databases."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from core.merge import MergeRefused, final_ticket_id, merge_tickets
from core.models import Event, Follower, Message, Ticket
from ingest import spool, worker


def _mail(sender: str, subject: str, msgid: str, body: str = "Hello") -> bytes:
    return (f"From: {sender}\r\nTo: support@example.test\r\nSubject: {subject}\r\n"
            f"Message-ID: <{msgid}>\r\n\r\n{body}\r\n").encode()


def _ticket_of(desk, msgid: str) -> int:
    with desk.sessions() as s:
        return s.execute(select(Message.ticket_id).where(Message.message_id == msgid)).scalar_one()


def test_merge_moves_thread_closes_source_and_keeps_people(desk):
    spool.put(desk.sessions, _mail("ann@example.org", "Printer", "a1@x"), "smtp")
    spool.put(desk.sessions, _mail("bob@example.org", "Printer too", "b1@x"), "smtp")
    worker.drain(desk.sessions, desk.settings)
    first, second = _ticket_of(desk, "a1@x"), _ticket_of(desk, "b1@x")
    with desk.sessions() as s, s.begin():
        merged = merge_tickets(s, second, first, "same printer", source="agent")
    assert merged.moved_messages == 1
    with desk.sessions() as s:
        src, dst = s.get(Ticket, second), s.get(Ticket, first)
        assert (src.status, src.merged_into_id) == ("closed", first)
        assert [m.message_id for m in dst.messages] == ["a1@x", "b1@x"]
        followers = s.execute(select(Follower.contact_id).where(Follower.ticket_id == first)).scalars().all()
        assert followers == [src.requester_id]
        kinds = {(e.ticket_id, e.kind) for e in s.execute(select(Event)).scalars()}
        assert {(second, "merged_into"), (first, "merged_from")} <= kinds
        assert final_ticket_id(s, second) == first


def test_merge_refuses_itself_and_chains(desk):
    for i in range(3):
        spool.put(desk.sessions, _mail(f"p{i}@example.org", f"S{i}", f"m{i}@x"), "smtp")
    worker.drain(desk.sessions, desk.settings)
    a, b, c = (_ticket_of(desk, f"m{i}@x") for i in range(3))
    with desk.sessions() as s, s.begin():
        with pytest.raises(MergeRefused):
            merge_tickets(s, a, a, "self")
        merge_tickets(s, b, a, "dup")
    with desk.sessions() as s, s.begin():
        with pytest.raises(MergeRefused):
            merge_tickets(s, b, c, "already merged")
        with pytest.raises(MergeRefused):
            merge_tickets(s, c, b, "target merged away")
