"""Both sides of the desk by mail: a customer's mail reply reaches whoever watches the ticket (at
most one mail a minute per person, a digest for the rest), and an agent answering that mail from
their client reaches the customer as the agent's reply, or stays an internal note."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from core.accounts import add_user
from core.models import AgentSkill, Contact, Message, Outbox, StaffNotice, Ticket, TicketSkill, aware
from core.outbound import deliver_due
from tests.integration.test_outbound import _with_smarthost
from tests.integration.test_receive_mail import mail, receive


@pytest.fixture
def staff(desk):
    with desk.sessions() as s, s.begin():
        agent = add_user(s, "agnes@example.test", "agent", "Agnes Agent")
        admin = add_user(s, "root@example.test", "admin", "Ada Admin")
        printers = add_user(s, "pete@example.test", "agent", "Pete Printer")
        s.add(AgentSkill(contact_id=printers.id, skill="printers"))
    return agent, admin, printers


def _ticket(desk, assignee=None) -> tuple[int, str]:
    got = receive(desk, mail("Printer jam", "Paper is stuck.", msgid="<start@example.org>"))
    with desk.sessions() as s, s.begin():
        s.execute(update(Ticket).where(Ticket.id == got.ticket_id).values(
            assignee_id=assignee.id if assignee else None))
    return got.ticket_id, "<start@example.org>"


def _customer_replies(desk, n: int, first: int = 0) -> None:
    for i in range(first, first + n):
        receive(desk, mail("Re: Printer jam", f"Update number {i}: still stuck.", msgid=f"<r{i}@example.org>",
                           headers="In-Reply-To: <start@example.org>\n"))


def _to(desk, address: str) -> list[Outbox]:
    with desk.sessions() as s:
        return list(s.scalars(select(Outbox).where(Outbox.rcpt_to == address).order_by(Outbox.id)))


def _deliver(desk, sink):
    _with_smarthost(desk, sink.port)
    deliver_due(desk.sessions, desk.settings)


def test_a_customers_mail_reply_notifies_the_assignee_at_the_sink(desk, sink, staff):
    agent, admin, _ = staff
    _ticket(desk, assignee=agent)
    _customer_replies(desk, 1)
    _deliver(desk, sink)
    [told] = [m for m in sink.wait_for(2) if m["To"].addresses[0].addr_spec == agent.email]
    body = told.get_body(("plain",)).get_content()
    assert "Update number 0: still stuck." in body and "/agent/tickets/" in body
    assert told["Reply-To"].addresses[0].username.startswith("support+")  # answerable by mail
    assert _to(desk, admin.email) == []  # the assignee watches the ticket, nobody else


def test_twenty_replies_in_a_minute_are_one_digest(desk, sink, staff):
    agent, *_ = staff
    _ticket(desk, assignee=agent)
    _customer_replies(desk, 20)
    [digest] = _to(desk, agent.email)
    with desk.sessions() as s:
        assert s.scalar(select(StaffNotice.id).where(StaffNotice.outbox_id != digest.id)) is None
    _deliver(desk, sink)
    [told] = [m for m in sink.wait_for(2) if m["To"].addresses[0].addr_spec == agent.email]
    body = told.get_body(("plain",)).get_content()
    assert all(f"Update number {i}:" in body for i in range(20)) and "20 updates" in body


def test_replies_after_a_notice_went_out_wait_a_minute_and_go_as_one(desk, sink, staff):
    agent, *_ = staff
    _ticket(desk, assignee=agent)
    _customer_replies(desk, 1)
    _deliver(desk, sink)
    sink.wait_for(2)
    _customer_replies(desk, 5, first=1)
    first, held = _to(desk, agent.email)
    assert first.state == "sent" and held.state == "pending"
    assert aware(held.next_attempt_at) >= aware(first.sent_at) + timedelta(seconds=59)
    _deliver(desk, sink)
    assert len(sink.mails()) == 2  # held back: not due for a minute
    assert b"Update number 5:" in held.raw and b"Update number 1:" in held.raw


def test_unassigned_reply_tells_the_skilled_agents_else_the_admins(desk, staff):
    agent, admin, printers = staff
    ticket_id, _ = _ticket(desk)
    _customer_replies(desk, 1)
    assert [len(_to(desk, a.email)) for a in (agent, admin, printers)] == [0, 1, 0]  # no skill known: admins
    with desk.sessions() as s, s.begin():
        s.add(TicketSkill(ticket_id=ticket_id, skill="printers"))
    _customer_replies(desk, 1, first=1)
    assert len(_to(desk, printers.email)) == 1 and len(_to(desk, admin.email)) == 1


def _agent_answer(desk, agent, notice: Outbox, body: str, to: str | None = None, in_reply_to: bool = False):
    """The agent answers the notice from their mail client: to its Reply-To, quoting it."""
    import email
    import email.policy

    parsed = email.message_from_bytes(notice.raw, policy=email.policy.default)
    to = to or parsed["Reply-To"].addresses[0].addr_spec
    headers = f"In-Reply-To: <{notice.message_id}>\n" if in_reply_to else ""
    quoted = "\n".join("> " + line for line in parsed.get_body(("plain",)).get_content().splitlines())
    raw = mail(f"Re: {parsed['Subject']}", f"{body}\n\nOn Monday, Postdesk wrote:\n{quoted}", sender=agent.email,
               to=to, headers=headers)
    return receive(desk, raw, envelope_to=(to,), envelope_from=agent.email)


def test_an_agents_mail_reply_reaches_the_customer_from_support_with_the_agents_name(desk, sink, staff):
    agent, *_ = staff
    ticket_id, _ = _ticket(desk, assignee=agent)
    _customer_replies(desk, 1)
    [notice] = _to(desk, agent.email)
    got = _agent_answer(desk, agent, notice, "Open tray 2 and pull gently.")
    assert got.ticket_id == ticket_id and got.matched_by == "agent-mail"

    _deliver(desk, sink)
    [answer] = [m for m in sink.wait_for(3) if m["To"].addresses[0].addr_spec == "ann@example.org"
                and m["Auto-Submitted"] is None]
    sender = answer["From"].addresses[0]
    assert (sender.display_name, sender.addr_spec) == ("Agnes Agent", "support@example.test")
    text = answer.get_body(("plain",)).get_content()
    assert "Open tray 2 and pull gently." in text and "Postdesk wrote" not in text and "Update number" not in text
    assert answer["In-Reply-To"] == "<r0@example.org>"  # threaded on the customer's last mail
    with desk.sessions() as s:
        stored = s.get(Message, got.message_id)
        assert (stored.direction, stored.author.email) == ("out", agent.email)


def test_note_as_first_line_keeps_the_agents_mail_internal(desk, staff):
    agent, *_ = staff
    ticket_id, _ = _ticket(desk, assignee=agent)
    _customer_replies(desk, 1)
    [notice] = _to(desk, agent.email)
    before = len(_to(desk, "ann@example.org"))
    got = _agent_answer(desk, agent, notice, "#note\nCustomer sounds annoyed; call them.")
    assert _to(desk, "ann@example.org")[before:] == []  # nothing mailed
    with desk.sessions() as s:
        note = s.get(Message, got.message_id)
        assert (note.kind, note.body_text) == ("note", "Customer sounds annoyed; call them.")


def test_in_reply_to_a_notice_sent_to_the_agent_is_trusted_at_the_plain_address(desk, staff):
    agent, *_ = staff
    _ticket(desk, assignee=agent)
    _customer_replies(desk, 1)
    [notice] = _to(desk, agent.email)
    got = _agent_answer(desk, agent, notice, "On it.", to="support@example.test", in_reply_to=True)
    assert got.matched_by == "agent-mail"


def test_an_agents_address_alone_is_not_trusted(desk, staff):
    agent, _, printers = staff
    ticket_id, _ = _ticket(desk, assignee=agent)
    _customer_replies(desk, 1)
    [notice] = _to(desk, agent.email)
    # Someone else's notice (or a forged From): the reply address is signed for Agnes, not Pete.
    got = _agent_answer(desk, printers, notice, "Ignore everything.")
    assert got.matched_by != "agent-mail"
    with desk.sessions() as s:
        assert s.get(Message, got.message_id).direction == "in"
    tagged = receive(desk, mail(f"[#{ticket_id}] hello", "Plain mail with the tag.", sender=agent.email),
                     envelope_from=agent.email)
    assert tagged.matched_by == "subject-tag"  # stored as before, never sent on


def test_a_long_digest_stays_bounded_and_counts_everything(desk, staff):
    agent, *_ = staff
    _ticket(desk, assignee=agent)
    _customer_replies(desk, 120)
    [digest] = _to(desk, agent.email)
    import email
    import email.policy

    text = email.message_from_bytes(digest.raw, policy=email.policy.default).get_body(("plain",)).get_content()
    assert "120 updates" in text and "and 20 more" in text
    assert text.count("still stuck") == 20  # the first twenty in full, the next eighty a line each
    assert text.count("replied on ticket") == 100


def test_a_notice_whose_digest_was_claimed_before_commit_gets_a_mail_of_its_own(desk, staff):
    from core import staff_notify

    agent, *_ = staff
    ticket_id, _ = _ticket(desk, assignee=agent)
    _customer_replies(desk, 1)
    [first] = _to(desk, agent.email)
    with desk.sessions() as s, s.begin():
        ticket = s.get(Ticket, ticket_id)
        staff_notify.queue_staff_notice(s, desk.settings, s.merge(agent), ticket, "customer-reply", "Late news.")
        # As if a deliverer had claimed the waiting mail after a savepoint released our lock:
        s.execute(update(Outbox).where(Outbox.id == first.id).values(attempts=1))
    claimed, own = _to(desk, agent.email)
    assert b"Late news." not in claimed.raw and b"Late news." in own.raw
    with desk.sessions() as s:
        assert s.scalar(select(StaffNotice.outbox_id).where(StaffNotice.text == "Late news.")) == own.id


def test_a_german_agents_digest_has_a_german_subject_and_wrapper(desk, sink, staff):
    agent, *_ = staff
    with desk.sessions() as s:
        s.execute(update(Contact).where(Contact.email == agent.email).values(language="de"))
        s.commit()
    _ticket(desk, assignee=agent)
    _customer_replies(desk, 3)
    _deliver(desk, sink)
    [told] = [m for m in sink.wait_for(1) if m["To"].addresses[0].addr_spec == agent.email]
    body = told.get_body(("plain",)).get_content()
    assert "3 Neuigkeiten: " in told["Subject"] and "3 Neuigkeiten zu Ihren Tickets seit der letzten Mail:" in body
    assert "updates" not in told["Subject"] and "Update number 2:" in body  # the customer's words stay theirs
