"""The agent's workspace over the JSON API, on both databases: canned replies, tags, bulk changes,
merge, split, spam (blocked senders held in quarantine) and who may do each."""
from __future__ import annotations

from sqlalchemy import select

from core.mail import tokens
from core.models import Event, Job, Message, Outbox, RawMail, Ticket
from ingest import spool, worker
from tests.integration.test_api_tickets import World, rows, world  # noqa: F401  (the world fixture)


def _mail(sender: str, subject: str, msgid: str, body: str = "Hello") -> bytes:
    return (f"From: {sender}\r\nTo: support@example.test\r\nSubject: {subject}\r\n"
            f"Message-ID: <{msgid}>\r\n\r\n{body}\r\n").encode()


def _deliver(world: World, raw: bytes) -> None:
    spool.put(world.desk.sessions, raw, "smtp")
    worker.drain(world.desk.sessions, world.desk.settings)


# ---- canned replies ----------------------------------------------------------------------------

def test_an_agent_keeps_canned_replies_and_fills_their_placeholders(world):
    made = world.call("agent", "POST", "/api/canned-replies", json={
        "title": "Refund", "body": "Hello {{ customer.name }},\n\nabout #{{ticket.id}} ({{ ticket.subject }}): "
                                   "refunded. {{ agent.name }} {{ ticket.secret }}", "shared": True})
    assert made.status_code == 201, made.text
    reply = made.json()
    assert {k: reply[k] for k in ("title", "shared")} == {"title": "Refund", "shared": True}
    assert [r["id"] for r in world.call("agent", "GET", "/api/canned-replies").json()] == [reply["id"]]
    rendered = world.call("agent", "POST", f"/api/canned-replies/{reply['id']}/render",
                          json={"ticket_id": world.ticket_b})
    assert rendered.status_code == 200, rendered.text
    assert rendered.json()["text"] == ("Hello Customer B,\n\nabout #%d (Cannot log in): refunded. Agent "
                                       "{{ ticket.secret }}" % world.ticket_b)
    changed = world.call("agent", "PATCH", f"/api/canned-replies/{reply['id']}", json={"title": "Refund done"})
    assert changed.json()["title"] == "Refund done" and changed.json()["body"] == reply["body"]
    assert world.call("agent", "DELETE", f"/api/canned-replies/{reply['id']}").status_code == 204
    assert world.call("agent", "GET", "/api/canned-replies").json() == []


def test_a_personal_canned_reply_is_the_authors_alone_and_a_shared_one_is_changed_by_author_or_admin(world):
    mine = world.call("agent", "POST", "/api/canned-replies", json={"title": "Mine", "body": "x"}).json()
    shared = world.call("agent", "POST", "/api/canned-replies",
                        json={"title": "Team", "body": "y", "shared": True}).json()
    assert [r["title"] for r in world.call("admin", "GET", "/api/canned-replies").json()] == ["Team"]
    assert world.call("admin", "PATCH", f"/api/canned-replies/{mine['id']}", json={"title": "z"}).status_code == 404
    assert world.call("admin", "PATCH", f"/api/canned-replies/{shared['id']}", json={"body": "z"}).status_code == 200
    with_admin = world.call("admin", "POST", "/api/canned-replies", json={"title": "A", "body": "a", "shared": True})
    answer = world.call("agent", "DELETE", f"/api/canned-replies/{with_admin.json()['id']}")
    assert answer.status_code == 403 and "author" in answer.json()["detail"]


def test_canned_replies_refuse_bad_input_and_customers(world):
    for body in ({"title": "", "body": "x"}, {"title": "t"}, {"title": "t", "body": "x", "owner": 1},
                 {"title": "t", "body": "   "}):
        answer = world.call("agent", "POST", "/api/canned-replies", json=body)
        assert answer.status_code == 422 and answer.json()["detail"], body
    assert world.call("agent", "PATCH", "/api/canned-replies/999999", json={"title": "x"}).status_code == 404
    assert world.call("agent", "POST", "/api/canned-replies/999999/render", json={"ticket_id": 1}).status_code == 404
    for method, path in (("GET", "/api/canned-replies"), ("POST", "/api/canned-replies")):
        answer = world.call("customer_a", method, path, json={"title": "t", "body": "b"})
        assert answer.status_code == 403


# ---- tags -------------------------------------------------------------------------------------

def test_tags_are_set_as_a_whole_filtered_on_and_hidden_from_customers(world):
    answer = world.call("agent", "PATCH", f"/api/tickets/{world.ticket_a}", json={"tags": ["VIP", "refund", "vip"]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["tags"] == ["refund", "vip"]
    world.call("agent", "PATCH", f"/api/tickets/{world.ticket_b}", json={"tags": ["vip"]})
    assert world.call("agent", "PATCH", f"/api/tickets/{world.ticket_a}", json={"tags": ["refund"]}).json()["tags"] \
        == ["refund"]
    listed = world.call("agent", "GET", "/api/tickets", params={"tag": "VIP"}).json()
    assert [t["id"] for t in listed["items"]] == [world.ticket_b] and listed["total"] == 1
    assert list(world.call("agent", "GET", f"/api/tickets/{world.ticket_a}").json())[-2:] == ["tags", "satisfaction"]
    assert world.call("customer_a", "GET", f"/api/tickets/{world.ticket_a}").json()["tags"] == []
    assert world.call("customer_a", "GET", "/api/tickets", params={"tag": "refund"}).status_code == 403
    refused = world.call("customer_a", "PATCH", f"/api/tickets/{world.ticket_a}", json={"tags": []})
    assert refused.status_code == 403 and "tags" in refused.json()["detail"]
    kinds = [e.new_value for e in rows(world.desk, Event, ticket_id=world.ticket_a, kind="tags")]
    assert kinds == ["refund, vip", "refund"]


def test_a_malformed_tag_is_422_and_changes_nothing(world):
    for tags in (["two words"], ["x" * 49], [f"t{i}" for i in range(21)], "vip"):
        answer = world.call("agent", "PATCH", f"/api/tickets/{world.ticket_a}", json={"tags": tags})
        assert answer.status_code == 422 and answer.json()["detail"], tags
    assert world.call("agent", "GET", f"/api/tickets/{world.ticket_a}").json()["tags"] == []


# ---- bulk ---------------------------------------------------------------------------------------

def test_bulk_changes_status_and_tags_of_several_tickets_and_reports_each(world):
    third = world.open_ticket("customer_b", "Third")
    ids = [world.ticket_a, world.ticket_b, third, 999_999]
    answer = world.call("agent", "POST", "/api/tickets/bulk", json={
        "ids": ids, "changes": {"status": "waiting", "add_tags": ["wave"], "assignee": "agent@example.test"}})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [(r["id"], r["ok"], r["status"]) for r in body["results"]] == [
        (world.ticket_a, True, 200), (world.ticket_b, True, 200), (third, True, 200), (999_999, False, 404)]
    assert (body["ok"], body["failed"]) == (3, 1)
    with world.desk.sessions() as s:
        for t in s.scalars(select(Ticket).where(Ticket.id.in_(ids[:3]))):
            assert (t.status, t.assignee.email) == ("waiting", "agent@example.test")
    listed = world.call("agent", "GET", "/api/tickets", params={"tag": "wave"}).json()
    assert sorted(t["id"] for t in listed["items"]) == sorted(ids[:3])
    removed = world.call("agent", "POST", "/api/tickets/bulk",
                         json={"ids": [third], "changes": {"remove_tags": ["wave"], "add_tags": ["later"]}})
    assert removed.json()["results"][0]["changed"] == ["tags"]
    assert world.call("agent", "GET", f"/api/tickets/{third}").json()["tags"] == ["later"]


def test_bulk_refuses_bad_input_and_customers(world):
    cases = [({"ids": [], "changes": {"status": "closed"}}, 422), ({"ids": [1], "changes": {}}, 422),
             ({"ids": [1], "changes": {"status": "gone"}}, 422), ({"ids": [1]}, 422),
             ({"ids": [1], "changes": {"assignee": "ann@example.org"}}, 422),
             ({"ids": [1], "changes": {"add_tags": ["no spaces"]}}, 422),
             ({"ids": ["x"], "changes": {"status": "closed"}}, 422)]
    for body, status in cases:
        answer = world.call("agent", "POST", "/api/tickets/bulk", json=body)
        assert answer.status_code == status and answer.json()["detail"], (body, answer.text)
    assert world.call("customer_a", "POST", "/api/tickets/bulk",
                      json={"ids": [world.ticket_a], "changes": {"status": "closed"}}).status_code == 403
    assert world.call("agent", "GET", f"/api/tickets/{world.ticket_a}").json()["status"] != "closed"


# ---- merge and split -----------------------------------------------------------------------------

def test_merge_moves_the_thread_and_later_mail_to_the_source_lands_on_the_target(world):
    source = world.ticket_b
    answer = world.call("agent", "POST", f"/api/tickets/{source}/merge", json={"into": world.ticket_a})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["merged_into"], answer.json()["status"]) == (world.ticket_a, "closed")
    assert answer.json()["messages"] == []
    target = world.call("agent", "GET", f"/api/tickets/{world.ticket_a}").json()
    assert "Password reset never arrives." in [m["text"] for m in target["messages"]]
    assert "bob@example.org" in [f["email"] for f in target["followers"]]
    _deliver(world, _mail("bob@example.org", f"Re: [#{source}] Cannot log in", "late@x", "Still broken."))
    with world.desk.sessions() as s:
        assert s.scalar(select(Message.ticket_id).where(Message.message_id == "late@x")) == world.ticket_a
    kinds = {(e.ticket_id, e.kind) for e in rows(world.desk, Event)}
    assert {(source, "merged_into"), (world.ticket_a, "merged_from")} <= kinds

    secret = world.desk.settings.web.secret_key
    address = tokens.sign_reply_address(secret, "support@example.test", source, "bob@example.org")
    _deliver(world, (f"From: bob@example.org\r\nTo: {address}\r\nSubject: Re: Cannot log in\r\n"
                     f"Message-ID: <by-address@x>\r\n\r\nVia the reply address.\r\n").encode())
    ours = tokens.make_message_id(secret, source, "example.test")
    _deliver(world, (f"From: bob@example.org\r\nTo: support@example.test\r\nSubject: Re: Cannot log in\r\n"
                     f"Message-ID: <by-msgid@x>\r\nIn-Reply-To: <{ours}>\r\n\r\nVia our Message-ID.\r\n").encode())
    with world.desk.sessions() as s:
        landed = dict(s.execute(select(Message.message_id, Message.ticket_id)
                                .where(Message.message_id.in_(["by-address@x", "by-msgid@x"]))).all())
    assert landed == {"by-address@x": world.ticket_a, "by-msgid@x": world.ticket_a}


def test_merge_refusals_are_clear(world):
    a, b = world.ticket_a, world.ticket_b
    for path, body, status in ((f"/api/tickets/{a}/merge", {"into": a}, 409),
                               (f"/api/tickets/{a}/merge", {"into": 999_999}, 422),
                               ("/api/tickets/999999/merge", {"into": a}, 404),
                               (f"/api/tickets/{a}/merge", {"into": "b"}, 422),
                               (f"/api/tickets/{a}/merge", {}, 422)):
        answer = world.call("agent", "POST", path, json=body)
        assert answer.status_code == status and answer.json()["detail"], (path, body, answer.text)
    assert world.call("customer_a", "POST", f"/api/tickets/{a}/merge", json={"into": b}).status_code == 403
    world.call("agent", "POST", f"/api/tickets/{b}/merge", json={"into": a})
    again = world.call("agent", "POST", f"/api/tickets/{b}/merge", json={"into": a})
    assert again.status_code == 409 and "already merged" in again.json()["detail"]


def test_split_opens_a_ticket_with_the_chosen_messages_for_the_same_requester(world):
    _deliver(world, _mail("ann@example.org", f"[#{world.ticket_a}] Second question", "q2@x",
                          "And my address changed."))
    with world.desk.sessions() as s:
        ticket_id, mid = s.execute(select(Message.ticket_id, Message.id).where(Message.message_id == "q2@x")).one()
    assert ticket_id == world.ticket_a
    answer = world.call("agent", "POST", f"/api/tickets/{ticket_id}/split", json={"message_ids": [mid]})
    assert answer.status_code == 201, answer.text
    new = answer.json()
    assert new["id"] != ticket_id and new["requester"]["email"] == "ann@example.org"
    assert [m["text"] for m in new["messages"]] == ["And my address changed."]
    old = world.call("agent", "GET", f"/api/tickets/{ticket_id}").json()
    assert mid not in [m["id"] for m in old["messages"]] and old["messages"]
    assert [j.kind for j in rows(world.desk, Job, ticket_id=new["id"], state="pending")] == ["triage"]
    _deliver(world, (f"From: ann@example.org\r\nTo: support@example.test\r\nSubject: Re: Second question\r\n"
                     f"Message-ID: <q3@x>\r\nIn-Reply-To: <q2@x>\r\n\r\nNew street.\r\n").encode())
    with world.desk.sessions() as s:
        assert s.scalar(select(Message.ticket_id).where(Message.message_id == "q3@x")) == new["id"]


def test_split_refusals_are_clear(world):
    with world.desk.sessions() as s:
        a_ids = list(s.scalars(select(Message.id).where(Message.ticket_id == world.ticket_a)))
        b_ids = list(s.scalars(select(Message.id).where(Message.ticket_id == world.ticket_b)))
    for body in ({"message_ids": []}, {"message_ids": b_ids}, {"message_ids": a_ids}, {}):
        answer = world.call("agent", "POST", f"/api/tickets/{world.ticket_a}/split", json=body)
        assert answer.status_code == 422 and answer.json()["detail"], (body, answer.text)
    assert world.call("customer_a", "POST", f"/api/tickets/{world.ticket_a}/split",
                      json={"message_ids": a_ids[:1]}).status_code == 403


# ---- spam -------------------------------------------------------------------------------------------

def test_spam_closes_blocks_the_sender_holds_their_mail_and_an_admin_unblocks(world):
    _deliver(world, _mail("spammer@example.net", "Cheap pills", "s1@x"))
    with world.desk.sessions() as s:
        spam_ticket = s.scalar(select(Message.ticket_id).where(Message.message_id == "s1@x"))
    answer = world.call("agent", "POST", "/api/tickets/bulk", json={"ids": [spam_ticket], "changes": {"spam": True}})
    assert answer.json()["results"][0]["ok"], answer.text
    assert world.call("agent", "GET", f"/api/tickets/{spam_ticket}").json()["status"] == "closed"
    assert [b["email"] for b in world.call("admin", "GET", "/api/blocked-senders").json()] == ["spammer@example.net"]
    acks_before = len(rows(world.desk, Outbox, purpose="acknowledgement"))
    _deliver(world, _mail("Spammer@Example.net", "More pills", "s2@x"))
    [held] = rows(world.desk, RawMail, state="quarantined")
    assert held.last_error == "spam: blocked sender spammer@example.net"
    assert rows(world.desk, Message, message_id="s2@x") == []
    assert len(rows(world.desk, Outbox, purpose="acknowledgement")) == acks_before
    assert world.call("agent", "GET", "/api/blocked-senders").status_code == 403
    assert world.call("agent", "DELETE", "/api/blocked-senders/spammer@example.net").status_code == 403
    assert world.call("admin", "DELETE", "/api/blocked-senders/spammer@example.net").status_code == 204
    worker.drain(world.desk.sessions, world.desk.settings)
    assert len(rows(world.desk, Message, message_id="s2@x")) == 1
    missing = world.call("admin", "DELETE", "/api/blocked-senders/spammer@example.net")
    assert missing.status_code == 404 and "not blocked" in missing.json()["detail"]


def test_a_staff_requester_is_never_blocked_as_spam(world):
    staff_ticket = world.open_ticket("agent", "Internal")
    answer = world.call("admin", "POST", "/api/tickets/bulk", json={"ids": [staff_ticket], "changes": {"spam": True}})
    [result] = answer.json()["results"]
    assert (result["ok"], result["status"]) == (False, 422) and "staff" in result["detail"]
    assert world.call("admin", "GET", "/api/blocked-senders").json() == []
