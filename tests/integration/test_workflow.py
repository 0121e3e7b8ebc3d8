"""Portal and API use-cases (core.workflow) and the read side (core.queries) on both databases."""
from __future__ import annotations

import email
import email.policy
from datetime import timedelta

import pytest
from sqlalchemy import select

from core import queries, workflow
from core.accounts import add_user
from core.models import Event, Message, Outbox, Ticket, utcnow
from tests.integration.test_receive_mail import mail, receive


@pytest.fixture
def people(desk):
    with desk.sessions() as s, s.begin():
        agent = add_user(s, "agent@example.test", "agent", "Agnes")
        customer = add_user(s, "ann@example.org", "customer", "Ann")
        other = add_user(s, "bob@example.org", "customer", "Bob")
    return agent, customer, other


def outbox(desk, purpose=None):
    with desk.sessions() as s:
        stmt = select(Outbox).order_by(Outbox.id)
        return list(s.scalars(stmt.where(Outbox.purpose == purpose) if purpose else stmt))


def test_web_form_opens_ticket_like_a_mail(desk):
    with desk.sessions() as s, s.begin():
        t = workflow.open_from_web(s, desk.settings, email="Carl@Example.org", name="Carl", subject="Cannot print",
                                   description="The printer says PC LOAD LETTER.", priority="high",
                                   uploads=[workflow.Upload("shot.png", "image/png", b"\x89PNG...")])
        ticket_id = t.id
    with desk.sessions() as s:
        t = s.get(Ticket, ticket_id)
        assert (t.status, t.priority, t.requester.email) == ("new", "high", "carl@example.org")
        assert t.messages[0].attachments[0].filename == "shot.png"
    ack, = outbox(desk, "acknowledgement")
    assert ack.rcpt_to == "carl@example.org" and b"[#%d] Cannot print" % ticket_id in ack.raw


def test_agent_reply_is_threaded_markdown_mail_and_note_is_not_mailed(desk, people):
    agent, *_ = people
    got = receive(desk, mail("Printer", "It smokes.", msgid="<first@example.org>"))
    with desk.sessions() as s, s.begin():
        t = s.get(Ticket, got.ticket_id)
        workflow.reply_as_agent(s, desk.settings, t, s.merge(agent), "Please **unplug** it.\n\n<script>x</script>")
        workflow.add_note(s, t, s.merge(agent), "Customer sounds worried.")
    reply, = outbox(desk, "reply")
    msg = email.message_from_bytes(reply.raw, policy=email.policy.default)
    assert msg["In-Reply-To"] == "<first@example.org>"
    assert msg["Reply-To"].addresses[0].username.startswith(f"support+{got.ticket_id}.")
    html = msg.get_body(("html",)).get_content()
    assert "<strong>unplug</strong>" in html and "<script>" not in html
    assert "**unplug**" in msg.get_body(("plain",)).get_content()
    assert len(outbox(desk)) == 2  # acknowledgement + reply; the note is not mailed
    with desk.sessions() as s:
        t = s.get(Ticket, got.ticket_id)
        assert t.status == "in_progress" and [m.direction for m in t.messages] == ["in", "out", "note"]


def test_status_and_resolution_changes_are_recorded_and_mailed(desk, people):
    agent, *_ = people
    got = receive(desk, mail())
    with desk.sessions() as s, s.begin():
        t = s.get(Ticket, got.ticket_id)
        changed = workflow.change_fields(s, desk.settings, t, s.merge(agent), status="resolved",
                                         resolution="Replaced the fuser.", assignee=s.merge(agent), priority="low")
    assert set(changed) == {"status", "resolution", "assignee", "priority"}
    status_mail, = outbox(desk, "status")
    assert b"resolved" in status_mail.raw and b"Replaced the fuser." in status_mail.raw
    with desk.sessions() as s:
        kinds = {e.field for e in s.scalars(select(Event).where(Event.ticket_id == got.ticket_id))}
    assert {"status", "resolution", "assignee", "priority"} <= kinds
    with desk.sessions() as s, s.begin(), pytest.raises(workflow.InvalidChange):
        workflow.change_fields(s, desk.settings, s.get(Ticket, got.ticket_id), s.merge(agent), status="bogus")


def test_customer_actions_respect_ownership(desk, people):
    agent, customer, other = people
    got = receive(desk, mail())
    with desk.sessions() as s, s.begin():
        t = s.get(Ticket, got.ticket_id)
        t.assignee_id = agent.id
        t.status = "waiting"
        workflow.reply_as_customer(s, desk.settings, t, s.merge(customer), "More details.")
        workflow.edit_description(s, t, s.merge(customer), "Printer (3rd floor)", "Corrected text.")
        with pytest.raises(workflow.NotAllowed):
            workflow.close_by_customer(s, t, s.merge(other))
        workflow.close_by_customer(s, t, s.merge(customer))
    assert [o.rcpt_to for o in outbox(desk, "customer-reply")] == ["agent@example.test"]
    with desk.sessions() as s:
        t = s.get(Ticket, got.ticket_id)
        assert t.status == "closed" and t.subject == "Printer (3rd floor)"
        assert t.messages[0].visible_text == "Corrected text."
        assert s.scalar(select(Event).where(Event.field == "description")).old_value.strip() == "Something broke."
        assert queries.visible_ticket(s, s.merge(other), t.id) is None
        assert queries.visible_ticket(s, s.merge(customer), t.id) is not None


def test_list_filters_search_and_pagination(desk, people):
    agent, *_ = people
    for i in range(7):
        receive(desk, mail(f"Printer {i}" if i % 2 else f"Invoice {i}", f"body {i} 50%_off"))
    with desk.sessions() as s:
        rows, total = queries.list_tickets(s, queries.TicketFilter(search="printer", per_page=2, page=2, sort="id"))
        assert total == 3 and [r.subject for r in rows] == ["Printer 5"]
        assert queries.list_tickets(s, queries.TicketFilter(search="50%_"))[1] == 7
        assert queries.list_tickets(s, queries.TicketFilter(search="5%x"))[1] == 0  # % is literal
        assert queries.list_tickets(s, queries.TicketFilter(assignee="none"))[1] == 7
        assert queries.counts_by(s, Ticket.status) == {"new": 7}


def test_stats_are_aggregated_in_the_database(desk, people):
    agent, *_ = people
    first = receive(desk, mail("a"))
    receive(desk, mail("b"))
    with desk.sessions() as s, s.begin():
        t = s.get(Ticket, first.ticket_id)
        t.created_at = utcnow() - timedelta(hours=2)
        workflow.reply_as_agent(s, desk.settings, t, s.merge(agent), "On it.")
    with desk.sessions() as s:
        st = queries.stats(s)
    assert (st.total, st.open) == (2, 2)
    assert st.by_status == {"new": 1, "in_progress": 1}
    assert sum(n for _, n in st.last_30_days) == 2 and len(st.last_30_days) == 30
    assert 110 <= st.median_first_response_minutes <= 130
    with desk.sessions() as s:
        assert s.scalar(select(Message).where(Message.direction == "out")).message_id


def test_notification_preferences_are_honoured(desk, people):
    agent, customer, _ = people
    got = receive(desk, mail())
    with desk.sessions() as s, s.begin():
        ann = s.merge(customer)
        ann.notify_replies = False
        ann.notify_status = False
        t = s.get(Ticket, got.ticket_id)
        workflow.reply_as_agent(s, desk.settings, t, s.merge(agent), "Answer only in the portal.")
        workflow.change_fields(s, desk.settings, t, s.merge(agent), status="resolved")
    assert outbox(desk, "reply") == [] and outbox(desk, "status") == []
    with desk.sessions() as s:  # still on the thread for the portal
        assert [m.direction for m in s.get(Ticket, got.ticket_id).messages] == ["in", "out"]
