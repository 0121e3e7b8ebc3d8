"""On PostgreSQL a batch's new senders are created up front, in address order and in a short
transaction of their own: concurrent workers then never hold a new address's lock while they
wait on a ticket another batch touched (with 3 workers such batches deadlocked and were redone)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from core.models import Contact, Message
from ingest import spool, worker
from tests.integration.test_receive_mail import mail


def test_a_batch_creates_its_new_senders_in_address_order_named_by_their_first_mail(desk):
    if not desk.settings.database.url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time: its batches cannot deadlock, senders come mail by mail")
    with desk.sessions() as s, s.begin():
        s.add(Contact(email="known@example.org", name="Known Person", role="customer"))
    arriving = [("Zed <zed@example.org>", "zed@example.org"), ("Amy <AMY@example.org>", "amy@example.org"),
                ("Amy Again <amy@example.org>", "amy@example.org"), ("Known <known@example.org>", "known@example.org"),
                ("Max <max@example.org>", "max@example.org")]
    for sender, envelope in arriving:
        spool.put(desk.sessions, mail(sender=sender), "smtp", envelope, ("support@example.test",))
    outcomes = worker.drain(desk.sessions, desk.settings)
    assert [o.error for o in outcomes] == [""] * 5
    with desk.sessions() as s:
        # Inserted in address order (the ids a sequence hands out say in which order), not in mail order.
        inserted = s.scalars(select(Contact.email).where(Contact.email != "known@example.org")
                             .order_by(Contact.id)).all()
        assert inserted == ["amy@example.org", "max@example.org", "zed@example.org"]
        names = dict(s.execute(select(Contact.email, Contact.name)).all())
        assert names == {"amy@example.org": "Amy", "max@example.org": "Max", "zed@example.org": "Zed",
                         "known@example.org": "Known Person"}
        assert len(s.scalars(select(Message.id)).all()) == 5


def test_a_sender_that_cannot_be_stored_fails_only_its_own_mail(desk):
    """No From and an envelope sender longer than an address may be: creating the batch's senders
    first fails, and the batch goes on mail by mail; only that mail waits for a retry."""
    if not desk.settings.database.url.startswith("postgresql"):
        pytest.skip("senders are created first on PostgreSQL only")
    fine = spool.put(desk.sessions, mail(sender="Fine <fine@example.org>"), "smtp", "fine@example.org",
                     ("support@example.test",))
    nameless = b"To: support@example.test\nSubject: no From\nMessage-ID: <nofrom@example.org>\n\nHello.\n"
    odd = spool.put(desk.sessions, nameless, "smtp", "x" * 400 + "@example.org", ("support@example.test",))
    outcomes = {o.raw_id: o for o in worker.drain(desk.sessions, desk.settings)}
    assert outcomes[fine.id].received is not None and outcomes[fine.id].error == ""
    assert outcomes[odd.id].received is None and outcomes[odd.id].error and not outcomes[odd.id].quarantined
    with desk.sessions() as s:
        assert s.scalars(select(Contact.email)).all() == ["fine@example.org"]
