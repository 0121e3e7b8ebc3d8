"""The agent's pages on both databases: role guards, the queue's filters and counts, the ticket
page (reply mailed on the thread, notes never mailed, field changes, attachments, polling) and
the statistics, checked against a dataset whose figures are known."""
from __future__ import annotations

import email
import email.policy
import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from core.accounts import add_user
from core.mail import tokens
from core.models import Attachment, Event, Message, Outbox, Ticket, TicketSkill, TicketSummary, utcnow
from core.sessions import start_session
from core.tickets import contact_for
from portal.app import create_app
from portal.deps import session_cookie_name
from tests.integration.test_receive_mail import mail, receive

HTML = {"accept": "text/html"}
AGENT_PAGES = ["/agent/queue", "/agent/stats", "/agent/tickets/1", "/agent/tickets/1/messages.json",
               "/agent/tickets/1/attachments/1"]
ADMIN_PAGES = ["/admin/users", "/admin/config", "/admin/quarantine", "/admin/jobs"]


# ---- helpers shared with test_admin_pages ---------------------------------------------------------

@pytest.fixture
def app(desk):
    return create_app(desk.settings, desk.sessions)


def signed_in(app, desk, address: str, role: str) -> TestClient:
    """A browser signed in as a new person with this role (a session cookie, no login page)."""
    with desk.sessions() as s, s.begin():
        person = add_user(s, address, role, name=address.split("@")[0].title())
        s.flush()
        token = start_session(s, person)
    client = TestClient(app)
    client.cookies.set(session_cookie_name(desk.settings), token)
    return client


def csrf_of(client: TestClient, path: str) -> str:
    page = client.get(path, headers=HTML)
    assert page.status_code == 200, page.text
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def post_form(client: TestClient, page_path: str, action: str, data: dict, files=None):
    """Submit a form as a browser does: read the page's CSRF token, then POST (redirects not followed)."""
    return client.post(action, data={**data, "csrf_token": csrf_of(client, page_path)}, files=files,
                       headers=HTML, follow_redirects=False)


def outbox(desk, ticket_id: int | None = None) -> list[Outbox]:
    with desk.sessions() as s:
        stmt = select(Outbox).order_by(Outbox.id)
        return list(s.scalars(stmt.where(Outbox.ticket_id == ticket_id) if ticket_id else stmt))


def parsed(row: Outbox) -> email.message.EmailMessage:
    return email.message_from_bytes(row.raw, policy=email.policy.default)


@pytest.fixture
def agent(app, desk):
    return signed_in(app, desk, "agent@example.test", "agent")


# ---- role guards ----------------------------------------------------------------------------------

def test_customer_gets_403_and_anonymous_is_sent_to_sign_in(app, desk):
    customer = signed_in(app, desk, "ann@example.org", "customer")
    anonymous = TestClient(app)
    for path in AGENT_PAGES + ADMIN_PAGES:
        assert customer.get(path, headers=HTML).status_code == 403, path
        assert customer.get(path).status_code == 403, path
        to_login = anonymous.get(path, headers=HTML, follow_redirects=False)
        assert to_login.status_code == 303 and to_login.headers["location"].startswith("/login?next="), path
        assert anonymous.get(path).status_code == 401, path
    for action in ("/agent/tickets/1/reply", "/agent/tickets/1/note", "/admin/quarantine/replay-all",
                   "/admin/jobs/1/retry", "/admin/users/1"):
        assert customer.post(action, data={"text": "x"}).status_code == 403, action
        assert anonymous.post(action, data={"text": "x"}).status_code == 401, action


def test_agent_gets_403_on_admin_pages(agent):
    for path in ADMIN_PAGES:
        assert agent.get(path, headers=HTML).status_code == 403, path
    assert agent.post("/admin/quarantine/replay-all").status_code == 403


def test_post_without_the_forms_csrf_token_is_refused(agent, desk):
    got = receive(desk, mail("Printer", "It smokes."))
    refused = agent.post(f"/agent/tickets/{got.ticket_id}/note", data={"text": "hi"}, headers=HTML)
    assert refused.status_code == 403
    forged = agent.post(f"/agent/tickets/{got.ticket_id}/note", data={"text": "hi", "csrf_token": "0" * 40})
    assert forged.status_code == 403
    with desk.sessions() as s:
        assert s.scalar(select(func.count(Message.id)).where(Message.direction == "note")) == 0


# ---- the queue ------------------------------------------------------------------------------------

def _seed_queue(desk) -> dict[str, int]:
    """Six tickets over two requesters, two agents, skills, summaries and bodies; returns ids by name."""
    with desk.sessions() as s, s.begin():
        me = add_user(s, "agent@example.test", "agent")
        other = add_user(s, "bob@example.test", "agent")
        ann, carl = contact_for(s, "ann@example.org"), contact_for(s, "carl@corp.example")
        rows = {
            "printer": Ticket(subject="Printer smokes", status="new", priority="high", category="technical",
                              requester_id=ann.id, assignee_id=me.id),
            "invoice": Ticket(subject="Invoice twice", status="new", priority="medium", category="billing",
                              requester_id=ann.id, summary="Customer was charged twice for INV-42"),
            "vpn": Ticket(subject="VPN drops", status="in_progress", priority="high", category="technical",
                          requester_id=carl.id, assignee_id=other.id),
            "login": Ticket(subject="Cannot log in", status="waiting", priority="critical", category="account",
                            requester_id=carl.id, assignee_id=me.id),
            "thanks": Ticket(subject="Thanks", status="closed", priority="low", category="general",
                             requester_id=ann.id),
            "refund": Ticket(subject="Question", status="resolved", priority="low", category="billing",
                             requester_id=carl.id),
        }
        for i, (name, t) in enumerate(rows.items()):
            t.reference = f"PD-Q{i}"
            s.add(t)
        s.flush()
        s.add(Message(ticket_id=rows["refund"].id, kind="mail", direction="in", body_text="please REFUND me",
                      visible_text="please REFUND me"))
        s.add(Message(ticket_id=rows["thanks"].id, kind="note", direction="note", body_text="refund internal",
                      visible_text="refund internal"))
        s.add_all([TicketSkill(ticket_id=rows["vpn"].id, skill="network"),
                   TicketSkill(ticket_id=rows["printer"].id, skill="printers")])
        return {name: t.id for name, t in rows.items()}


def _listed(page_text: str) -> set[int]:
    return {int(n) for n in re.findall(r'data-ticket="(\d+)"', page_text)}


def _counts(page_text: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r'data-status="(\w+)">(\d+)<', page_text)}


def test_queue_filters_combine_and_counts_follow_the_filter(agent, desk):
    ids = _seed_queue(desk)

    def queue(query: str) -> str:
        page = agent.get(f"/agent/queue?{query}", headers=HTML)
        assert page.status_code == 200, page.text
        return page.text

    everything = queue("")
    assert _listed(everything) == set(ids.values())
    assert _counts(everything) == {"new": 2, "in_progress": 1, "waiting": 1, "resolved": 1, "closed": 1}
    assert _listed(queue("status=new&status=waiting")) == {ids["printer"], ids["invoice"], ids["login"]}
    assert _listed(queue("status=new&status=waiting&priority=high&priority=critical")) == {ids["printer"],
                                                                                           ids["login"]}
    assert _listed(queue("category=technical")) == {ids["printer"], ids["vpn"]}
    mine = queue("assignee=me")
    assert _listed(mine) == {ids["printer"], ids["login"]}
    assert _counts(mine) == {"new": 1, "in_progress": 0, "waiting": 1, "resolved": 0, "closed": 0}
    assert _listed(queue("assignee=unassigned")) == {ids["invoice"], ids["thanks"], ids["refund"]}
    assert _listed(queue("assignee=bob%40example.test")) == {ids["vpn"]}
    assert _listed(queue("skill=network")) == {ids["vpn"]}
    assert _listed(queue("requester=corp.example")) == {ids["vpn"], ids["login"], ids["refund"]}
    assert _listed(queue("q=inv-42")) == {ids["invoice"]}  # the summary
    assert _listed(queue("q=refund")) == {ids["refund"]}  # a message body; notes are not searched
    assert _listed(queue("q=smokes&assignee=me&status=new")) == {ids["printer"]}
    assert _listed(queue("status=bogus&priority=high")) == {ids["printer"], ids["vpn"]}  # unknown ignored


def test_queue_sorts_by_column_and_pages_by_25(app, desk, agent):
    with desk.sessions() as s, s.begin():
        ann = contact_for(s, "ann@example.org")
        s.add_all(Ticket(reference=f"PD-P{i:02d}", subject=f"Subject {i:02d}", requester_id=ann.id,
                         priority=("low", "medium", "high", "critical")[i % 4]) for i in range(30))
    first = agent.get("/agent/queue?sort=subject", headers=HTML).text
    subjects = re.findall(r'">(Subject \d\d)</a>', first)
    assert subjects == [f"Subject {i:02d}" for i in range(25)]
    assert 'rel="next" href="/agent/queue?sort=subject&amp;page=2"' in first
    second = agent.get("/agent/queue?sort=subject&page=2", headers=HTML).text
    assert re.findall(r'">(Subject \d\d)</a>', second) == [f"Subject {i:02d}" for i in range(25, 30)]
    by_priority = agent.get("/agent/queue?sort=-priority", headers=HTML).text
    assert re.findall(r"<td>(low|medium|high|critical)</td>", by_priority)[:9] == ["critical"] * 7 + ["high"] * 2


# ---- one ticket -----------------------------------------------------------------------------------

def test_agent_reply_is_mailed_on_the_thread_with_markdown_html_and_no_script(agent, desk):
    first = receive(desk, mail("Printer on fire", "It smokes.", msgid="<first@example.org>"))
    receive(desk, mail(f"Re: [#{first.ticket_id}] Printer on fire", "Still smoking.", msgid="<second@example.org>",
                       headers="In-Reply-To: <first@example.org>\nReferences: <first@example.org>\n"))
    before = len(outbox(desk, first.ticket_id))
    text = "Please **switch it off** now.\n\n<script>alert('x')</script>\n\n- unplug it"
    sent = post_form(agent, f"/agent/tickets/{first.ticket_id}", f"/agent/tickets/{first.ticket_id}/reply",
                     {"text": text}, files=[("files", ("steps.txt", b"1. unplug", "text/plain"))])
    assert sent.status_code == 303 and sent.headers["location"] == f"/agent/tickets/{first.ticket_id}?done=reply"
    rows = outbox(desk, first.ticket_id)[before:]
    assert [(r.purpose, r.rcpt_to) for r in rows] == [("reply", "ann@example.org")]
    out = parsed(rows[0])
    assert out["In-Reply-To"] == "<second@example.org>"
    assert "<first@example.org>" in out["References"] and "<second@example.org>" in out["References"]
    reply_to = out["Reply-To"].addresses[0].addr_spec
    assert re.fullmatch(rf"support\+{first.ticket_id}\.[a-z0-9]{{12}}@example\.test", reply_to)
    assert tokens.verify_reply_address(desk.settings.web.secret_key, reply_to, "ann@example.org") == first.ticket_id
    assert out["Subject"].startswith(f"[#{first.ticket_id}]")
    alternative = next(p for p in out.walk() if p.get_content_type() == "multipart/alternative")
    kinds = {p.get_content_type(): p.get_content() for p in alternative.iter_parts()}
    assert "switch it off" in kinds["text/plain"]
    assert "<strong>switch it off</strong>" in kinds["text/html"] and "<li>unplug it</li>" in kinds["text/html"]
    assert "<script" not in kinds["text/html"] and "&lt;script&gt;" in kinds["text/html"]
    page = agent.get(f"/agent/tickets/{first.ticket_id}", headers=HTML).text
    assert "<strong>switch it off</strong>" in page and "<script>alert" not in page
    assert "steps.txt" in page
    with desk.sessions() as s:
        t = s.get(Ticket, first.ticket_id)
        assert t.status == "in_progress" and t.messages[-1].direction == "out"
        assert [a.filename for a in t.messages[-1].attachments] == ["steps.txt"]


def test_empty_reply_is_refused_with_the_form_kept(agent, desk):
    got = receive(desk, mail("Printer", "It smokes."))
    before = len(outbox(desk))
    refused = post_form(agent, f"/agent/tickets/{got.ticket_id}", f"/agent/tickets/{got.ticket_id}/reply",
                        {"text": "   "})
    assert refused.status_code == 400 and "the reply is empty" in refused.text
    assert len(outbox(desk)) == before


def test_note_is_shown_distinctly_and_never_mailed(agent, desk):
    got = receive(desk, mail("Printer", "It smokes."))
    before = len(outbox(desk))
    done = post_form(agent, f"/agent/tickets/{got.ticket_id}", f"/agent/tickets/{got.ticket_id}/note",
                     {"text": "Customer is **VIP**; call back."})
    assert done.status_code == 303
    assert len(outbox(desk)) == before
    page = agent.get(f"/agent/tickets/{got.ticket_id}", headers=HTML).text
    note = re.search(r'<article class="card msg note".*?</article>', page, re.S).group(0)
    assert "Internal note" in note and "<strong>VIP</strong>" in note
    with desk.sessions() as s:
        assert s.scalar(select(Message.direction).order_by(Message.id.desc()).limit(1)) == "note"


def test_status_and_resolution_change_mail_the_requester_and_are_in_history(agent, desk):
    got = receive(desk, mail("Printer", "It smokes.", msgid="<p1@example.org>"))
    before = len(outbox(desk, got.ticket_id))
    page = f"/agent/tickets/{got.ticket_id}"
    done = post_form(agent, page, f"{page}/update", {"status": "resolved", "priority": "high",
                                                     "category": "technical", "assignee": "",
                                                     "resolution": "Replaced the fuser."})
    assert done.status_code == 303
    mails = outbox(desk, got.ticket_id)[before:]
    assert [(m.purpose, m.rcpt_to) for m in mails] == [("status", "ann@example.org")]
    status_mail = parsed(mails[0])
    assert status_mail["In-Reply-To"] == "<p1@example.org>" and status_mail["Auto-Submitted"] == "auto-generated"
    assert "Replaced the fuser." in status_mail.get_body(("plain",)).get_content()
    with desk.sessions() as s:
        changes = {(e.field, e.old_value, e.new_value, e.source) for e in s.scalars(
            select(Event).where(Event.ticket_id == got.ticket_id, Event.field != ""))}
    assert {("status", "new", "resolved", "agent"), ("priority", "medium", "high", "agent"),
            ("category", "general", "technical", "agent"),
            ("resolution", "", "Replaced the fuser.", "agent")} <= changes
    shown = agent.get(page, headers=HTML).text
    assert "resolution:" in shown and "agent@example.test" in shown and ">agent</td>" in shown
    again = post_form(agent, page, f"{page}/update", {"status": "resolved", "priority": "high",
                                                      "category": "technical", "assignee": "",
                                                      "resolution": "Replaced the fuser."})
    assert again.headers["location"].endswith("done=nothing")
    with desk.sessions() as s, s.begin():
        s.get(Ticket, got.ticket_id).resolution = "Replaced the fuser.\nTested twice."
    as_a_browser_sends_it = post_form(agent, page, f"{page}/update", {
        "status": "resolved", "priority": "high", "category": "technical", "assignee": "",
        "resolution": "Replaced the fuser.\r\nTested twice."})
    assert as_a_browser_sends_it.headers["location"].endswith("done=nothing")
    assert len(outbox(desk, got.ticket_id)) == before + 1


def test_assignment_lists_active_staff_and_is_recorded(app, agent, desk):
    got = receive(desk, mail("VPN", "It drops."))
    with desk.sessions() as s, s.begin():
        bob = add_user(s, "bob@example.test", "agent")
        add_user(s, "boss@example.test", "admin")
        gone = add_user(s, "gone@example.test", "agent")
        gone.active = False
        s.flush()
        bob_id, gone_id = bob.id, gone.id
    page = f"/agent/tickets/{got.ticket_id}"
    form = agent.get(page, headers=HTML).text
    choices = re.findall(r'<option value="\d+"[^>]*>([^<]+) \((agent|admin)\)', re.search(
        r'<select id="u-assignee".*?</select>', form, re.S).group(0))
    assert [c[0] for c in choices] == ["agent@example.test", "bob@example.test", "boss@example.test"]
    fields = {"status": "new", "priority": "medium", "category": "general", "resolution": ""}
    assert post_form(agent, page, f"{page}/update", {**fields, "assignee": str(bob_id)}).status_code == 303
    assert post_form(agent, page, f"{page}/update", {**fields, "assignee": str(gone_id)}).status_code == 400
    with desk.sessions() as s:
        assert s.get(Ticket, got.ticket_id).assignee_id == bob_id
        event = s.scalar(select(Event).where(Event.ticket_id == got.ticket_id, Event.kind == "assigned"))
        assert (event.old_value, event.new_value) == ("", "bob@example.test")
    assert post_form(agent, page, f"{page}/update", {**fields, "assignee": ""}).status_code == 303
    with desk.sessions() as s:
        assert s.get(Ticket, got.ticket_id).assignee_id is None
    assert "bob@example.test" in agent.get(f"/agent/queue?assignee=unassigned", headers=HTML).text


def test_attachments_download_as_attachments_and_only_from_their_ticket(agent, desk):
    raw = ("From: ann@example.org\nTo: support@example.test\nSubject: One\nMessage-ID: <att@example.org>\n"
           "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/plain\n\n"
           "see file\n--B\nContent-Type: text/html; name*=UTF-8''rapport%20%C3%A9.html\n"
           "Content-Disposition: attachment; filename*=UTF-8''rapport%20%C3%A9.html\n\n"
           "<script>alert(1)</script>hello!\n--B--\n").encode()
    first = receive(desk, raw)
    other = receive(desk, mail("Two", "no file", sender="bob@example.org"), envelope_from="bob@example.org")
    with desk.sessions() as s:
        att_id = s.scalar(select(Attachment.id))
    got = agent.get(f"/agent/tickets/{first.ticket_id}/attachments/{att_id}")
    assert got.status_code == 200 and got.content.strip() == b"<script>alert(1)</script>hello!"
    assert got.headers["content-disposition"].startswith("attachment;")
    assert "filename*=UTF-8''rapport%20%C3%A9.html" in got.headers["content-disposition"]
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-type"] == "application/octet-stream"  # never rendered as our HTML
    assert agent.get(f"/agent/tickets/{other.ticket_id}/attachments/{att_id}").status_code == 404
    assert agent.get(f"/agent/tickets/{first.ticket_id}/attachments/{att_id + 1}").status_code == 404
    page = agent.get(f"/agent/tickets/{first.ticket_id}", headers=HTML).text
    assert f'href="/agent/tickets/{first.ticket_id}/attachments/{att_id}"' in page


def test_inbound_html_is_sanitised_and_the_quoted_text_is_behind_details(agent, desk):
    raw = (b"From: ann@example.org\nTo: support@example.test\nSubject: Fancy\nMessage-ID: <fancy@example.org>\n"
           b"MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=B\n\n--B\n"
           b"Content-Type: text/plain\n\nHello plain\n--B\nContent-Type: text/html\n\n"
           b"<p onclick=\"steal()\">Hello <b>bold</b></p><script>alert(1)</script>"
           b"<a href=\"javascript:evil()\">x</a><img src=\"https://tracker.example/p.gif\">\n--B--\n")
    first = receive(desk, raw)
    receive(desk, mail(f"Re: [#{first.ticket_id}] Fancy", "New answer\n\nOn Monday Ann wrote:\n> Hello plain\n"))
    page = agent.get(f"/agent/tickets/{first.ticket_id}", headers=HTML).text
    assert "<b>bold</b>" in page
    for bad in ("steal()", "<script>alert(1)", "javascript:", "tracker.example"):
        assert bad not in page, bad
    assert "<summary>Show quoted text</summary>" in page and "&gt; Hello plain" in page


def test_new_messages_are_served_as_text_after_the_last_one_shown(agent, desk):
    first = receive(desk, mail("Printer", "It smokes."))
    url = f"/agent/tickets/{first.ticket_id}/messages.json"
    page = agent.get(f"/agent/tickets/{first.ticket_id}", headers=HTML).text
    last = int(re.search(r'data-after="(\d+)"', page).group(1))
    assert 'src="/static/agent.js"' in page
    assert agent.get(f"{url}?after={last}").json() == {"messages": []}
    receive(desk, mail(f"Re: [#{first.ticket_id}] Printer", "<b>Now</b> it burns."))
    new = agent.get(f"{url}?after={last}").json()["messages"]
    assert [(m["direction"], m["text"].strip(), m["author"]) for m in new] == [
        ("in", "<b>Now</b> it burns.", "ann@example.org")]
    assert agent.get(f"{url}?after={new[0]['id']}").json() == {"messages": []}
    assert agent.get(f"/agent/tickets/999999/messages.json").status_code == 404


def test_summary_skills_and_history_sources_are_shown(agent, desk):
    got = receive(desk, mail("Printer", "It smokes."))
    with desk.sessions() as s, s.begin():
        s.add(TicketSummary(ticket_id=got.ticket_id, summary="Old summary", source="offline"))
        s.flush()
        s.add(TicketSummary(ticket_id=got.ticket_id, summary="Printer smokes on floor 3", source="mistral",
                            notes="Safety issue: smoke\nCheck the fuser"))
        s.add(TicketSkill(ticket_id=got.ticket_id, skill="printers"))
    page = agent.get(f"/agent/tickets/{got.ticket_id}", headers=HTML).text
    assert "Printer smokes on floor 3" in page and "Source: mistral" in page and "Old summary" not in page
    assert "<li>Safety issue: smoke</li>" in page and '<span class="badge">printers</span>' in page
    assert "<td>created</td>" in page and "<td>mail</td>" in page


def test_admin_deletes_a_ticket_agents_may_not(app, agent, desk):
    got = receive(desk, mail("Spam", "Buy now"))
    page = f"/agent/tickets/{got.ticket_id}"
    assert post_form(agent, page, f"{page}/delete", {"confirm": "yes"}).status_code == 403
    admin = signed_in(app, desk, "boss@example.test", "admin")
    assert post_form(admin, page, f"{page}/delete", {"confirm": "yes"}).status_code == 303
    assert admin.get(page, headers=HTML).status_code == 404


# ---- statistics -----------------------------------------------------------------------------------

def _seed_stats(desk):
    """Five tickets with known days and first responses of 30, 90, 10 and 60 minutes (one unanswered)."""
    midnight = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    day = lambda n, hour, minute=0: midnight - timedelta(days=n) + timedelta(hours=hour, minutes=minute)  # noqa: E731
    with desk.sessions() as s, s.begin():
        agent = add_user(s, "agent@example.test", "agent")
        ann = contact_for(s, "ann@example.org")
        s.flush()
        specs = [  # created, status, priority, category, assigned, first responses (minutes after)
            (day(3, 12), "new", "high", "billing", False, [30, 300]),
            (day(3, 13), "closed", "low", "technical", True, [90]),
            (day(1, 12), "in_progress", "high", "technical", True, [10]),
            (day(1, 12, 30), "waiting", "medium", "general", False, []),
            (day(40, 12), "resolved", "medium", "account", False, [60]),
        ]
        for i, (created, status, priority, category, assigned, answers) in enumerate(specs):
            t = Ticket(reference=f"PD-S{i}", subject=f"S{i}", status=status, priority=priority, category=category,
                       requester_id=ann.id, assignee_id=agent.id if assigned else None,
                       created_at=created, updated_at=created)
            s.add(t)
            s.flush()
            s.add(Message(ticket_id=t.id, kind="mail", direction="in", body_text="q", created_at=created))
            s.add(Message(ticket_id=t.id, kind="note", direction="note", body_text="n",
                          created_at=created + timedelta(minutes=1)))  # a note is not a response
            for minutes in answers:
                s.add(Message(ticket_id=t.id, kind="mail", direction="out", body_text="a",
                              created_at=created + timedelta(minutes=minutes)))
    return midnight, day


def test_stats_figures_match_a_known_dataset(agent, desk):
    from core.queries import stats

    midnight, day = _seed_stats(desk)
    with desk.sessions() as s:
        got = stats(s)
    assert (got.total, got.open) == (5, 3)
    span_days = (day(1, 12, 30) - day(40, 12)).total_seconds() / 86400
    assert got.per_day_average == round(5 / span_days, 2)
    assert got.by_status == {"new": 1, "closed": 1, "in_progress": 1, "waiting": 1, "resolved": 1}
    assert got.by_priority == {"high": 2, "low": 1, "medium": 2}
    assert got.by_category == {"billing": 1, "technical": 2, "general": 1, "account": 1}
    assert got.by_assignee == {"agent@example.test": 2, "(unassigned)": 3}
    series = dict(got.last_30_days)
    assert len(got.last_30_days) == 30 and got.last_30_days[-1][0] == midnight.strftime("%Y-%m-%d")
    assert series[day(3, 0).strftime("%Y-%m-%d")] == 2 and series[day(1, 0).strftime("%Y-%m-%d")] == 2
    assert sum(series.values()) == 4  # the 40-day-old ticket is outside the window
    assert got.median_first_response_minutes == 45.0  # median of 10, 30, 60, 90

    page = agent.get("/agent/stats", headers=HTML)
    assert page.status_code == 200
    html = page.text
    assert re.search(r'data-testid="total">5<', html) and re.search(r'data-testid="open">3<', html)
    assert re.search(r'data-testid="first-response">45 min<', html)
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img"' in html
    assert 'aria-label="Tickets opened per day, last 30 days"' in html
    assert html.count("<rect ") == 30
    assert f"<tr><td>{day(3, 0):%Y-%m-%d}</td><td>2</td></tr>" in html


def test_median_first_response_of_an_odd_count_and_of_nothing(desk):
    from core.queries import stats

    with desk.sessions() as s:
        assert stats(s).median_first_response_minutes is None and stats(s).total == 0
    _seed_stats(desk)
    with desk.sessions() as s, s.begin():  # drop the 90-minute answer: 10, 30, 60 remain
        s.execute(Message.__table__.delete().where(Message.ticket_id == s.scalar(
            select(Ticket.id).where(Ticket.reference == "PD-S1"))))
    with desk.sessions() as s:
        assert stats(s).median_first_response_minutes == 30.0


def test_tickets_per_day_count_utc_days_whatever_the_database_time_zone(desk):
    from core.queries import stats

    _, day = _seed_stats(desk)
    with desk.sessions() as s:
        if s.get_bind().dialect.name == "postgresql":
            s.execute(text("SET TIME ZONE 'Pacific/Kiritimati'"))  # UTC+14: 12:00 UTC is tomorrow there
        series = dict(stats(s).last_30_days)
    assert series[day(3, 0).strftime("%Y-%m-%d")] == 2 and series[day(2, 0).strftime("%Y-%m-%d")] == 0


def test_agent_script_inserts_text_only_and_is_served_when_static_is_mounted(app, desk):
    from pathlib import Path

    script = (Path(__file__).resolve().parents[2] / "portal" / "static" / "agent.js").read_text()
    assert "textContent" in script and "innerHTML" not in script and "insertAdjacentHTML" not in script
    if not any(getattr(route, "path", "") == "/static" for route in app.routes):
        pytest.skip("portal/app.py does not mount /static yet")
    served = TestClient(app).get("/static/agent.js")
    assert served.status_code == 200 and served.text == script


def test_revoking_links_closes_every_link_to_the_ticket(agent, app, desk):
    got = receive(desk, mail("Printer", "It smokes."))
    ack = parsed(outbox(desk, got.ticket_id)[0]).get_body(("plain",)).get_content()
    token = re.search(r"/t/(\S+)", ack).group(1)
    visitor = TestClient(app)
    assert visitor.get(f"/t/{token}", headers=HTML).status_code == 200
    done = post_form(agent, f"/agent/tickets/{got.ticket_id}", f"/agent/tickets/{got.ticket_id}/revoke-links", {})
    assert done.status_code == 303
    page = visitor.get(f"/t/{token}", headers=HTML)
    assert page.status_code == 410 and "It smokes." not in page.text
    with desk.sessions() as s:
        assert s.scalar(select(Event.new_value).where(Event.kind == "links-revoked")) == "1"
