"""The tickets JSON API on both databases: open, list (filters, pages, sort), read (the contract,
notes for staff only, 404 for others' tickets), change (rules per role), delete (admins),
statistics; and once over a real socket with `postdesk serve --only web`."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from core import workflow
from core.accounts import add_user
from core.models import Event, Follower, Job, Message, Outbox, Ticket, TicketSkill, utcnow
from core.sessions import start_session
from portal.api import tickets as tickets_api
from portal.app import create_app
from tests.support.server import PostdeskProcess

ROLES = ("anonymous", "customer_a", "customer_b", "agent", "admin")


# ---- a small world: four people with bearer tokens, two tickets, one attachment ------------------

@dataclass
class World:
    client: TestClient
    desk: object
    tokens: dict[str, str] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)
    user_ids: dict[str, int] = field(default_factory=dict)
    ticket_a: int = 0
    ticket_b: int = 0
    attachment_a: int = 0
    extra: dict = field(default_factory=dict)     # more fixtures, by name (see test_authz_matrix)

    def auth(self, role: str) -> dict[str, str]:
        """Headers for this role (no header for anonymous)."""
        return {"authorization": f"Bearer {self.tokens[role]}"} if role in self.tokens else {}

    def call(self, role: str, method: str, path: str, **kw) -> httpx.Response:
        return self.client.request(method, path, headers={**self.auth(role), **kw.pop("headers", {})}, **kw)

    def open_ticket(self, role: str = "customer_a", subject: str = "Printer", text: str = "It jams.", **fields) -> int:
        """A ticket requested by this person, opened through the domain (no API throttle involved)."""
        with self.desk.sessions() as s, s.begin():
            ticket = workflow.open_from_web(s, self.desk.settings, email=self.emails[role], name=role,
                                            subject=subject, description=text, **fields)
            s.flush()
            return ticket.id


PEOPLE = {"customer_a": ("ann@example.org", "customer"), "customer_b": ("bob@example.org", "customer"),
          "agent": ("agent@example.test", "agent"), "admin": ("admin@example.test", "admin")}


def make_world(desk) -> World:
    """People with bearer tokens; A's ticket has an attachment, an agent reply and an internal note."""
    world = World(client=TestClient(create_app(desk.settings, desk.sessions)), desk=desk)
    with desk.sessions() as s, s.begin():
        for role, (address, kind) in PEOPLE.items():
            person = add_user(s, address, kind, name=role.replace("_", " ").title())
            s.flush()
            world.tokens[role] = start_session(s, person, kind="bearer")
            world.emails[role], world.user_ids[role] = person.email, person.id
    with desk.sessions() as s, s.begin():
        a = workflow.open_from_web(s, desk.settings, email=world.emails["customer_a"], name="Ann",
                                   subject="Invoice twice", description="I was charged twice.",
                                   category="billing", uploads=[workflow.Upload("invoice.pdf", "application/pdf",
                                                                                b"%PDF-1.4 test")])
        b = workflow.open_from_web(s, desk.settings, email=world.emails["customer_b"], name="Bob",
                                   subject="Cannot log in", description="Password reset never arrives.",
                                   category="account", priority="high")
        s.flush()
        agent = s.get(type(a.requester), world.user_ids["agent"])
        workflow.reply_as_agent(s, desk.settings, a, agent, "We refund the second charge.")
        workflow.add_note(s, a, agent, "Internal: refund approved by finance.")
        s.flush()
        world.ticket_a, world.ticket_b = a.id, b.id
        world.attachment_a = a.messages[0].attachments[0].id
    return world


@pytest.fixture
def world(desk) -> World:
    w = make_world(desk)
    with w.client:
        yield w


def rows(desk, model, **where) -> list:
    with desk.sessions() as s:
        return list(s.scalars(select(model).filter_by(**where).order_by(model.id)))


def aware_iso(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert moment.tzinfo is not None, value
    return moment


# ---- open ---------------------------------------------------------------------------------------

def test_anyone_opens_a_ticket_and_gets_the_contract_back(world):
    answer = world.call("anonymous", "POST", "/api/tickets", json={
        "name": "Carla", "email": "Carla@Example.ORG", "subject": "Screen flickers",
        "description": "My screen flickers since the update.", "category": "technical"})
    assert answer.status_code == 201, answer.text
    t = answer.json()
    assert {"id", "reference", "subject", "status", "priority", "category", "requester", "assignee", "created_at",
            "updated_at", "summary", "resolution", "skills", "messages"} <= set(t)
    assert t["status"] == "new" and t["priority"] == "medium" and t["category"] == "technical"
    assert t["requester"] == {"email": "carla@example.org", "name": "Carla"} and t["assignee"] is None
    assert aware_iso(t["created_at"]) <= aware_iso(t["updated_at"]) + timedelta(seconds=1)
    [first] = t["messages"]
    assert first["direction"] == "in" and first["from"] == "carla@example.org"
    assert first["text"] == "My screen flickers since the update." and first["matched_by"] == "web-form"
    assert first["attachments"] == [] and aware_iso(first["created_at"])
    acks = rows(world.desk, Outbox, ticket_id=t["id"], purpose="acknowledgement")
    assert [a.rcpt_to for a in acks] == ["carla@example.org"]
    assert [j.kind for j in rows(world.desk, Job, ticket_id=t["id"])] == ["triage"]


@pytest.mark.parametrize("body, field", [
    ({"email": "x@example.org", "subject": "s", "description": "d"}, "name"),
    ({"name": "X", "email": "not-an-address", "subject": "s", "description": "d"}, "email"),
    ({"name": "X", "email": "x@example.org", "subject": "s", "description": ""}, "description"),
    ({"name": "X", "email": "x@example.org", "subject": "s", "description": "d", "category": "food"}, "category"),
    ({"name": "X", "email": "x@example.org", "subject": "s", "description": "d", "colour": "red"}, "colour"),
    ({"name": "X", "email": "x@example.org", "subject": "s", "description": "nul \x00 inside"}, "description"),
    ({"name": "X", "email": "x@example.org", "subject": "   ", "description": "d"}, "subject"),
])
def test_opening_with_bad_input_is_422_with_the_reason(world, body, field):
    answer = world.call("anonymous", "POST", "/api/tickets", json=body)
    assert answer.status_code == 422, answer.text
    assert field in answer.text and answer.json()["detail"]


def test_malformed_json_and_oversized_bodies_are_refused(world):
    broken = world.call("anonymous", "POST", "/api/tickets", content=b"{not json",
                        headers={"content-type": "application/json"})
    assert broken.status_code == 422
    huge = world.call("anonymous", "POST", "/api/tickets", content=b" " * (tickets_api.MAX_JSON_BYTES + 1),
                      headers={"content-type": "application/json"})
    assert huge.status_code == 413 and "larger than" in huge.json()["detail"]


def test_opening_is_throttled_per_requester_and_per_address(world, monkeypatch):
    monkeypatch.setattr(tickets_api, "CREATE_LIMIT_PER_EMAIL", 2)
    monkeypatch.setattr(tickets_api, "CREATE_LIMIT_PER_IP", 3)

    def open_as(address: str) -> httpx.Response:
        return world.call("anonymous", "POST", "/api/tickets", json={
            "name": "Spam", "email": address, "subject": "Hi", "description": "Buy now"})

    assert [open_as("spam@example.org").status_code for _ in range(3)] == [201, 201, 429]
    refused = open_as("spam@example.org")
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    assert open_as("other@example.org").status_code == 201          # third from this address
    assert open_as("third@example.org").status_code == 429          # the address's limit
    staff = world.call("agent", "POST", "/api/tickets", json={        # staff are not throttled
        "name": "Phone", "email": "caller@example.org", "subject": "Phoned in", "description": "Noted."})
    assert staff.status_code == 201


# ---- list ---------------------------------------------------------------------------------------

def test_the_list_needs_sign_in_and_shows_customers_only_their_tickets(world):
    assert world.call("anonymous", "GET", "/api/tickets").status_code == 401
    mine = world.call("customer_a", "GET", "/api/tickets").json()
    assert [t["id"] for t in mine["items"]] == [world.ticket_a] and mine["total"] == 1
    assert all(m["direction"] != "note" for m in mine["items"][0]["messages"])
    everything = world.call("agent", "GET", "/api/tickets").json()
    assert {t["id"] for t in everything["items"]} == {world.ticket_a, world.ticket_b}
    assert everything | {"items": None} == {"items": None, "total": 2, "page": 1, "per_page": 25}
    assert any(m["direction"] == "note" for t in everything["items"] for m in t["messages"])


def test_a_follower_sees_the_followed_ticket_in_the_list(world):
    with world.desk.sessions() as s, s.begin():
        s.add(Follower(ticket_id=world.ticket_a, contact_id=world.user_ids["customer_b"]))
    ids = {t["id"] for t in world.call("customer_b", "GET", "/api/tickets").json()["items"]}
    assert ids == {world.ticket_a, world.ticket_b}


def test_list_filters_combine(world):
    c = world.open_ticket("customer_a", "VPN drops", "The VPN drops every hour.", category="technical",
                          priority="critical")
    with world.desk.sessions() as s, s.begin():
        s.add(TicketSkill(ticket_id=c, skill="networking"))
        s.get(Ticket, world.ticket_b).status = "waiting"
        s.get(Ticket, c).assignee_id = world.user_ids["agent"]

    def ids(query: str, role: str = "admin") -> set[int]:
        answer = world.call(role, "GET", f"/api/tickets?{query}")
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert page["total"] == len(page["items"]), query  # one page holds them all: the count agrees
        return {t["id"] for t in page["items"]}

    a, b = world.ticket_a, world.ticket_b
    assert ids("status=new") == {c} and ids("status=in_progress") == {a}     # a was answered
    assert ids("status=new&status=waiting") == ids("status=new,waiting") == ids("status=new,,waiting") == {b, c}
    assert ids("category=billing,account") == {a, b}
    assert ids("priority=critical") == {c}
    assert ids("search=charged") == {a} and ids("search=vpn") == {c} and ids(f"search=%23{b}") == {b}
    assert ids("search=refund+approved") == set()            # words of internal notes are not searched
    assert ids("assignee=agent@example.test") == ids("assignee=me", "agent") == {c}
    assert ids("assignee=none") == {a, b}
    assert ids("requester=bob@") == {b} and ids("requester=ann", "customer_b") == set()
    assert ids("skill=networking") == {c} and ids("skill=NETWORKING") == {c}
    assert ids("status=new", "customer_b") == set() and ids("status=waiting", "customer_b") == {b}
    for bad in ("status=open", "priority=urgent", "category=x,billing", "sort=colour", "per_page=101",
                "page=0", "search=%00"):
        answer = world.call("admin", "GET", f"/api/tickets?{bad}")
        assert answer.status_code == 422, bad
        assert answer.json()["detail"]


def test_pages_and_sorting(world):
    opened = [world.open_ticket("customer_b", f"Question {i}") for i in range(5)]
    every = [world.ticket_a, world.ticket_b, *opened]
    first = world.call("agent", "GET", "/api/tickets?sort=id&per_page=3").json()
    assert [t["id"] for t in first["items"]] == every[:3] and first["total"] == 7 and first["per_page"] == 3
    last = world.call("agent", "GET", "/api/tickets?sort=id&per_page=3&page=3").json()
    assert [t["id"] for t in last["items"]] == every[6:] and last["page"] == 3
    beyond = world.call("agent", "GET", "/api/tickets?per_page=3&page=9").json()
    assert beyond["items"] == [] and beyond["total"] == 7
    newest_first = world.call("agent", "GET", "/api/tickets?sort=-id&per_page=100").json()
    assert [t["id"] for t in newest_first["items"]] == every[::-1]
    by_priority = world.call("agent", "GET", "/api/tickets?sort=-priority&per_page=1").json()["items"]
    assert by_priority[0]["id"] == world.ticket_b    # the only "high" one


# ---- read ---------------------------------------------------------------------------------------

def test_a_message_with_no_visible_text_shows_its_whole_body_in_the_list_and_the_ticket(world):
    """A reply that was all quoted history keeps an empty visible text: the JSON shows the body instead
    of an empty message, in the list (read as columns) as in the single ticket."""
    with world.desk.sessions() as s, s.begin():
        s.execute(Message.__table__.update().where(Message.ticket_id == world.ticket_b)
                  .values(visible_text="", body_text="> quoted only"))
    listed = world.call("agent", "GET", "/api/tickets", params={"search": "#" + str(world.ticket_b)}).json()
    one = world.call("agent", "GET", f"/api/tickets/{world.ticket_b}").json()
    assert [m["text"] for m in listed["items"][0]["messages"]] == ["> quoted only"]
    assert listed["items"][0] == one


def test_one_ticket_with_thread_oldest_first_and_notes_for_staff_only(world):
    as_agent = world.call("agent", "GET", f"/api/tickets/{world.ticket_a}").json()
    assert [m["direction"] for m in as_agent["messages"]] == ["in", "out", "note"]
    assert as_agent["messages"][0]["attachments"] == [
        {"id": world.attachment_a, "filename": "invoice.pdf", "content_type": "application/pdf", "size": 13}]
    assert as_agent["messages"][1]["from"] == world.desk.settings.from_address
    assert as_agent["messages"][1]["text"] == "We refund the second charge."
    assert [m["id"] for m in as_agent["messages"]] == sorted(m["id"] for m in as_agent["messages"])
    as_owner = world.call("customer_a", "GET", f"/api/tickets/{world.ticket_a}").json()
    assert [m["direction"] for m in as_owner["messages"]] == ["in", "out"]
    assert "refund approved" not in str(as_owner)
    assert as_owner | {"messages": None} == as_agent | {"messages": None}


def test_a_ticket_of_someone_else_or_a_guessed_id_is_404(world):
    assert world.call("customer_b", "GET", f"/api/tickets/{world.ticket_a}").status_code == 404
    assert world.call("customer_a", "GET", f"/api/tickets/{world.ticket_b}").status_code == 404
    assert world.call("admin", "GET", "/api/tickets/999999").status_code == 404
    assert world.call("anonymous", "GET", f"/api/tickets/{world.ticket_a}").status_code == 401
    assert world.call("admin", "GET", "/api/tickets/abc").status_code == 422
    assert world.call("admin", "GET", f"/api/tickets/{2**63}").status_code == 422
    missing = world.call("customer_b", "GET", f"/api/tickets/{world.ticket_a}").json()
    assert missing == {"detail": f"No ticket #{world.ticket_a}."}


# ---- change -------------------------------------------------------------------------------------

def test_staff_change_fields_assign_resolve_and_note(world):
    path = f"/api/tickets/{world.ticket_b}"
    changed = world.call("agent", "PATCH", path, json={
        "status": "resolved", "priority": "critical", "category": "technical", "assignee": "Agent@Example.test",
        "resolution": "Sent a new reset link.", "comment": "Customer was on the wrong address."})
    assert changed.status_code == 200, changed.text
    t = changed.json()
    assert (t["status"], t["priority"], t["category"]) == ("resolved", "critical", "technical")
    assert t["assignee"] == {"email": "agent@example.test", "name": "Agent"}
    assert t["resolution"] == "Sent a new reset link."
    assert t["messages"][-1]["direction"] == "note" and "wrong address" in t["messages"][-1]["text"]
    status_mails = rows(world.desk, Outbox, ticket_id=world.ticket_b, purpose="status")
    assert [m.rcpt_to for m in status_mails] == ["bob@example.org"]
    fields = {e.field for e in rows(world.desk, Event, ticket_id=world.ticket_b) if e.source == "agent"}
    assert {"status", "priority", "category", "assignee", "resolution"} <= fields
    unassigned = world.call("admin", "PATCH", path, json={"assignee": None}).json()
    assert unassigned["assignee"] is None and unassigned["status"] == "resolved"


def test_staff_reply_is_mailed_and_moves_a_new_ticket_on(world):
    answer = world.call("agent", "PATCH", f"/api/tickets/{world.ticket_b}", json={"reply": "Try this link."})
    assert answer.status_code == 200 and answer.json()["status"] == "in_progress"
    sent = answer.json()["messages"][-1]
    assert sent.pop("message_id")  # the Message-ID the reply went out with
    assert sent | {"id": 0, "created_at": ""} == {
        "id": 0, "created_at": "", "direction": "out", "from": world.desk.settings.from_address,
        "text": "Try this link.", "matched_by": "agent", "attachments": [], "auth": None}
    assert [m.rcpt_to for m in rows(world.desk, Outbox, ticket_id=world.ticket_b, purpose="reply")] == [
        "bob@example.org"]


@pytest.mark.parametrize("body, status", [
    ({"assignee": "ann@example.org"}, 422),         # a customer is not an assignee
    ({"assignee": "nobody@example.org"}, 422),
    ({"status": "open"}, 422),
    ({"priority": None, "colour": "red"}, 422),
    ({"comment": "x" * 100_001}, 422),
])
def test_staff_changes_with_bad_values_are_refused(world, body, status):
    answer = world.call("agent", "PATCH", f"/api/tickets/{world.ticket_a}", json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["detail"]


def test_a_customer_may_close_their_ticket_or_comment_and_nothing_else(world):
    path = f"/api/tickets/{world.ticket_a}"
    commented = world.call("customer_a", "PATCH", path, json={"comment": "Thanks, still waiting for it."})
    assert commented.status_code == 200
    last = commented.json()["messages"][-1]
    assert (last["direction"], last["from"], last["matched_by"]) == ("in", "ann@example.org", "portal")
    closed = world.call("customer_a", "PATCH", path, json={"status": "closed"})
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    for body in ({"priority": "critical"}, {"status": "resolved"}, {"status": "closed", "category": "general"},
                 {"assignee": None}, {"resolution": "done"}, {"reply": "hello"}):
        refused = world.call("customer_a", "PATCH", path, json=body)
        assert refused.status_code == 403, body
        assert "customers may only close" in refused.json()["detail"]
    assert world.call("customer_b", "PATCH", path, json={"status": "closed"}).status_code == 404
    assert world.call("anonymous", "PATCH", path, json={"status": "closed"}).status_code == 401
    empty = world.call("customer_a", "PATCH", path, json={"comment": "   "})
    assert empty.status_code == 422 and empty.json()["detail"] == "the reply is empty"


def test_a_follower_may_comment_but_not_close(world):
    with world.desk.sessions() as s, s.begin():
        s.add(Follower(ticket_id=world.ticket_a, contact_id=world.user_ids["customer_b"]))
    path = f"/api/tickets/{world.ticket_a}"
    assert world.call("customer_b", "PATCH", path, json={"comment": "Same for me."}).status_code == 200
    refused = world.call("customer_b", "PATCH", path, json={"status": "closed"})
    assert refused.status_code == 403 and refused.json()["detail"] == "only the requester closes a ticket"


# ---- delete -------------------------------------------------------------------------------------

def test_only_admins_delete_and_the_whole_ticket_goes(world):
    path = f"/api/tickets/{world.ticket_a}"
    assert world.call("anonymous", "DELETE", path).status_code == 401
    for role in ("customer_a", "customer_b", "agent"):
        assert world.call(role, "DELETE", path).status_code == 403, role
    gone = world.call("admin", "DELETE", path)
    assert gone.status_code == 204 and gone.content == b""
    assert world.call("admin", "GET", path).status_code == 404
    assert world.call("admin", "DELETE", path).status_code == 404
    assert rows(world.desk, Message, ticket_id=world.ticket_a) == []
    assert rows(world.desk, Event, ticket_id=world.ticket_a) == []
    assert world.call("admin", "GET", f"/api/tickets/{world.ticket_b}").status_code == 200


# ---- statistics ---------------------------------------------------------------------------------

def test_statistics_for_staff_only(world):
    assert world.call("anonymous", "GET", "/api/tickets/stats").status_code == 401
    assert world.call("customer_a", "GET", "/api/tickets/stats").status_code == 403
    figures = world.call("agent", "GET", "/api/tickets/stats")
    assert figures.status_code == 200, figures.text
    s = figures.json()
    assert s["total"] == 2 and s["open"] == 2
    assert s["by_category"] == {"billing": 1, "account": 1} and s["by_status"] == {"new": 1, "in_progress": 1}
    assert s["by_assignee"] == {"(unassigned)": 2}
    assert len(s["last_30_days"]) == 30 and s["last_30_days"][-1] == {"day": utcnow().strftime("%Y-%m-%d"),
                                                                       "count": 2}
    assert s["median_first_response_minutes"] is not None and s["median_first_response_minutes"] >= 0


# ---- over a real socket -------------------------------------------------------------------------

def test_the_api_over_http_with_postdesk_serve(desk, db_url, tmp_path):
    with desk.sessions() as s, s.begin():
        agent = add_user(s, "agent@example.test", "agent", name="Agent")
        s.flush()
        token = start_session(s, agent, kind="bearer")
    env = {"POSTDESK_DATABASE__URL": db_url, "POSTDESK_WEB__SECRET_KEY": desk.settings.web.secret_key}
    with PostdeskProcess(tmp_path / "run", env, only="web") as server, httpx.Client(base_url=server.base_url) as http:
        opened = http.post("/api/tickets", json={"name": "Dora", "email": "dora@example.org", "subject": "Hello",
                                                 "description": "Is anyone there?"})
        assert opened.status_code == 201, opened.text
        ticket_id = opened.json()["id"]
        assert http.get("/api/tickets").status_code == 401
        bearer = {"authorization": f"Bearer {token}"}
        listed = http.get("/api/tickets", params={"status": "new"}, headers=bearer)
        assert [t["id"] for t in listed.json()["items"]] == [ticket_id]
        changed = http.patch(f"/api/tickets/{ticket_id}", json={"status": "waiting", "assignee": "agent@example.test"},
                             headers=bearer)
        assert changed.status_code == 200 and changed.json()["assignee"]["email"] == "agent@example.test"
        assert http.get(f"/api/tickets/{ticket_id}").status_code == 401
    with desk.sessions() as s:
        assert s.scalar(select(func.count(Outbox.id)).where(Outbox.ticket_id == ticket_id)) == 2  # ack + status
