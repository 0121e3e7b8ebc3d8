"""Pages of the workspace through the real app on both databases: the customer portal shows support's
Markdown replies as sanitised HTML; the agent's queue and ticket page carry tags, views, bulk actions,
merge, split, spam, followers, presence and read marks."""
from __future__ import annotations

import re

from sqlalchemy import select

from core import workflow
from core.models import Contact, Ticket
from tests.integration.test_customer_pages import app, csrf_of, new_ticket, signed_in  # noqa: F401

REPLY = "Hello **Ann**,\nline two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n`code` <script>alert(1)</script>"


def _agent_reply(desk, ticket_id: int, text: str) -> None:
    with desk.sessions() as s:
        agent = s.scalar(select(Contact).where(Contact.role == "agent"))
        workflow.reply_as_agent(s, desk.settings, s.get(Ticket, ticket_id), agent, text)
        s.commit()


def test_the_customer_sees_support_replies_as_sanitised_html_with_their_line_breaks(app, desk):
    ann = signed_in(app, desk, "ann@example.org")
    signed_in(app, desk, "agent@example.test", "agent")
    ticket_id = new_ticket(desk, "ann@example.org", "Printer", "It **jams**.")
    _agent_reply(desk, ticket_id, REPLY)
    html = ann.get(f"/my/tickets/{ticket_id}").text
    [reply] = re.findall(r'<div class="body md" data-testid="reply-html">(.*?)</div>', html, re.S)
    assert "<strong>Ann</strong>,<br" in reply and "line two" in reply
    assert "<table>" in reply and "<code>code</code>" in reply
    assert "**" not in reply and "|---|" not in reply and "<script>" not in reply
    assert "It **jams**." in html          # the customer's own text stays as written
    live = ann.get(f"/my/tickets/{ticket_id}/messages.json").json()
    assert [m["html"] != "" for m in live] == [False, True] and "<strong>Ann</strong>" in live[1]["html"]


# ---- the agent's pages ---------------------------------------------------------------------------------

from tests.integration.test_agent_pages import HTML, post_form  # noqa: E402
from tests.integration.test_agent_pages import signed_in as staff_in  # noqa: E402
from tests.integration.test_receive_mail import mail, receive  # noqa: E402


def test_queue_shows_tags_filters_by_tag_and_marks_customer_replies_until_viewed(app, desk):
    agent = staff_in(app, desk, "agent@example.test", "agent")
    first = receive(desk, mail("Printer", "It jams."))
    second = receive(desk, mail("Screen", "It flickers.", sender="bob@example.org"), envelope_from="bob@example.org")
    assert post_form(agent, "/agent/queue", f"/agent/tickets/{first.ticket_id}/tags",
                     {"tags": "VIP, printers"}).status_code == 303
    queue = agent.get("/agent/queue", headers=HTML).text
    assert '<a class="tag" href="/agent/queue?tag=printers">printers</a>' in queue
    assert queue.count('data-testid="customer-replied"') == 2
    tagged = agent.get("/agent/queue?tag=vip", headers=HTML).text
    assert f'data-ticket="{first.ticket_id}"' in tagged and f'data-ticket="{second.ticket_id}"' not in tagged
    agent.get(f"/agent/tickets/{first.ticket_id}", headers=HTML)
    replied = agent.get("/agent/queue?replied=1&status=new", headers=HTML).text
    assert replied.count('data-testid="customer-replied"') == 1      # viewed: no longer unread for me
    assert f'data-ticket="{first.ticket_id}"' in replied            # …but still waiting for our answer
    other = staff_in(app, desk, "dana@example.test", "agent")
    assert other.get("/agent/queue", headers=HTML).text.count('data-testid="customer-replied"') == 2


def test_a_reply_after_viewing_is_unread_again_until_the_open_ticket_page_shows_it(app, desk):
    agent = staff_in(app, desk, "agent@example.test", "agent")
    first = receive(desk, mail("Printer", "It jams.", msgid="<jam1@example.org>"))
    page = agent.get(f"/agent/tickets/{first.ticket_id}", headers=HTML).text
    after = max(int(i) for i in re.findall(r'data-after="(\d+)"', page))
    assert 'data-testid="customer-replied"' not in agent.get("/agent/queue", headers=HTML).text
    receive(desk, mail("Re: Printer", "Still jams.", headers="In-Reply-To: <jam1@example.org>\n"))
    assert agent.get("/agent/queue", headers=HTML).text.count('data-testid="customer-replied"') == 1
    polled = agent.get(f"/agent/tickets/{first.ticket_id}/messages.json?after={after}").json()["messages"]
    assert [m["text"] for m in polled] == ["Still jams."]           # the open page shows it live…
    assert 'data-testid="customer-replied"' not in agent.get("/agent/queue", headers=HTML).text   # …so it is read
    assert agent.get(f"/agent/tickets/{first.ticket_id}/messages.json?after=0").status_code == 200
    assert 'data-testid="customer-replied"' not in agent.get("/agent/queue", headers=HTML).text


def test_built_in_and_saved_views(app, desk):
    agent = staff_in(app, desk, "agent@example.test", "agent")
    mine = receive(desk, mail("Mine", "x"))
    receive(desk, mail("Nobody's", "y"))
    post_form(agent, "/agent/queue", "/agent/bulk", {"ids": str(mine.ticket_id), "assignee": "agent@example.test"})
    page = agent.get("/agent/queue", headers=HTML).text
    for name in ("My open", "Unassigned", "Customer replied", "All open"):
        assert f">{name}</a>" in page
    href = re.search(r'href="(/agent/queue\?[^"]+)" data-view="mine"', page).group(1).replace("&amp;", "&")
    assert agent.get(href, headers=HTML).text.count("data-ticket=") == 1
    saved = post_form(agent, "/agent/queue", "/agent/views", {"name": "Printers", "query": "tag=printers&page=3&x=1"})
    assert saved.status_code == 303 and saved.headers["location"].startswith("/agent/queue?tag=printers&done=")
    assert '<a href="/agent/queue?tag=printers">Printers</a>' in agent.get("/agent/queue", headers=HTML).text
    assert post_form(agent, "/agent/queue", "/agent/views", {"name": " ", "query": ""}).headers["location"] \
        .startswith("/agent/queue?error=")


def test_bulk_form_changes_chosen_tickets_and_reports_refusals(app, desk):
    agent = staff_in(app, desk, "agent@example.test", "agent")
    ids = [receive(desk, mail(f"T{i}", "x")).ticket_id for i in range(3)]
    done = agent.post("/agent/bulk", data={"csrf_token": _csrf(agent), "ids": [str(i) for i in ids] + ["999999"],
                                           "status": "waiting", "add_tag": "wave",
                                           "next": "/agent/queue?status=waiting"},
                      headers=HTML, follow_redirects=False)
    assert done.status_code == 303 and "3+ticket" in done.headers["location"] and "999999" in done.headers["location"]
    listed = agent.get("/agent/queue?status=waiting&tag=wave", headers=HTML).text
    assert all(f'data-ticket="{i}"' in listed for i in ids)
    empty = post_form(agent, "/agent/queue", "/agent/bulk", {"status": "closed"})
    assert "error=" in empty.headers["location"]


def _csrf(client) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/agent/queue", headers=HTML).text).group(1)


def test_ticket_page_has_a_sidebar_requester_panel_followers_and_canned_draft(app, desk):
    agent = staff_in(app, desk, "agent@example.test", "agent")
    first = receive(desk, mail("Printer", "It jams."))
    older = receive(desk, mail("Old question", "Earlier."))
    path = f"/agent/tickets/{first.ticket_id}"
    page = agent.get(path, headers=HTML).text
    assert '<aside class="ticket-side" aria-label="Ticket details">' in page
    assert page.index('<aside class="ticket-side"') < page.index('id="thread"')    # above the thread on phones
    assert f'<a href="/agent/tickets/{older.ticket_id}">#{older.ticket_id} Old question</a>' in page
    assert post_form(agent, path, f"{path}/followers", {"email": "Cleo@Example.org"}).status_code == 303
    assert "cleo@example.org" in agent.get(path, headers=HTML).text.split('data-testid="followers"')[1][:400]
    bad = post_form(agent, path, f"{path}/followers", {"email": "not an address"})
    assert "error=" in bad.headers["location"]
    post_form(agent, path, f"{path}/followers", {"email": "cleo@example.org", "action": "remove"})
    assert "cleo@example.org" not in agent.get(path, headers=HTML).text.split('data-testid="followers"')[1][:400]
    post_form(agent, "/agent/canned-replies", "/agent/canned-replies",
              {"title": "Thanks", "body": "Hi {{ customer.name }}, about {{ ticket.subject }} <b>x</b>"})
    [reply_id] = re.findall(r'data-canned="(\d+)"', agent.get("/agent/canned-replies", headers=HTML).text)
    drafted = agent.get(f"{path}?canned={reply_id}", headers=HTML).text
    assert "Hi ann@example.org, about Printer &lt;b&gt;x&lt;/b&gt;</textarea>" in drafted


def test_a_reply_written_before_new_messages_arrived_asks_for_review_first(app, desk):
    agent = staff_in(app, desk, "agent@example.test", "agent")
    first = receive(desk, mail("Printer", "It jams."))
    path = f"/agent/tickets/{first.ticket_id}"
    seen = int(re.search(r'name="seen_last" value="(\d+)"', agent.get(path, headers=HTML).text).group(1))
    receive(desk, mail(f"Re: [#{first.ticket_id}] Printer", "Now it smokes."))
    stale = post_form(agent, path, f"{path}/reply", {"text": "Try turning it off.", "seen_last": str(seen)})
    assert stale.status_code == 409 and 'data-testid="stale-warning"' in stale.text
    assert "Try turning it off.</textarea>" in stale.text
    fresh = int(re.search(r'name="seen_last" value="(\d+)"', stale.text).group(1))
    assert fresh > seen
    sent = post_form(agent, path, f"{path}/reply", {"text": "Try turning it off.", "seen_last": str(fresh)})
    assert sent.status_code == 303


def test_remote_images_load_only_when_asked_and_image_attachments_preview(app, desk):
    agent = staff_in(app, desk, "agent@example.test", "agent")
    raw = (b"From: ann@example.org\nTo: support@example.test\nSubject: Pic\nMessage-ID: <pic@example.org>\n"
           b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=B\n\n--B\n"
           b"Content-Type: text/html\n\n<p>See <b>this</b></p><img src=\"https://images.example/a.png\">\n--B\n"
           b"Content-Type: image/png\nContent-Disposition: attachment; filename=shot.png\n"
           b"Content-Transfer-Encoding: base64\n\niVBORw0KGgo=\n--B--\n")
    got = receive(desk, raw)
    path = f"/agent/tickets/{got.ticket_id}"
    page = agent.get(path, headers=HTML)
    assert "<b>this</b>" in page.text and "images.example" not in page.text
    assert 'data-testid="load-images"' in page.text and '<img class="preview"' in page.text
    assert "https:" not in page.headers["content-security-policy"]
    with desk.sessions() as s:
        from core.models import Message
        mid = s.scalar(select(Message.id).where(Message.message_id == "pic@example.org"))
    loaded = agent.get(f"{path}?images={mid}", headers=HTML)
    assert 'src="https://images.example/a.png"' in loaded.text
    assert "img-src 'self' data: https:" in loaded.headers["content-security-policy"]


def test_presence_shows_who_else_is_viewing_or_typing(app, desk):
    agent = staff_in(app, desk, "agent@example.test", "agent")
    dana = staff_in(app, desk, "dana@example.test", "agent")
    first = receive(desk, mail("Printer", "It jams."))
    url = f"/agent/tickets/{first.ticket_id}/presence"
    token = lambda c: re.search(r'data-csrf="([^"]+)"', c.get(f"/agent/tickets/{first.ticket_id}", headers=HTML).text).group(1)  # noqa: E731
    assert agent.post(url, json={"typing": True}, headers={"x-csrf-token": token(agent)}).json()["others"] == []
    seen = dana.post(url, json={"typing": False}, headers={"x-csrf-token": token(dana)}).json()
    assert seen["others"] == [{"name": "Agent", "email": "agent@example.test", "typing": True}]
    assert seen["last_message_id"] >= 1
    assert dana.post(url, json={"typing": False}).status_code == 403          # no CSRF token
    assert "Dana is viewing." in agent.get(f"/agent/tickets/{first.ticket_id}", headers=HTML).text


def test_merge_split_and_spam_from_the_ticket_page(app, desk):
    agent = staff_in(app, desk, "agent@example.test", "agent")
    admin = staff_in(app, desk, "admin@example.test", "admin")
    a = receive(desk, mail("Printer", "It jams.")).ticket_id
    b = receive(desk, mail("Printer again", "Still jams.")).ticket_id
    merged = post_form(agent, f"/agent/tickets/{b}", f"/agent/tickets/{b}/merge", {"into": f"#{a}"})
    assert merged.headers["location"] == f"/agent/tickets/{a}?done=merged"
    assert f'Merged into <a href="/agent/tickets/{a}">' in agent.get(f"/agent/tickets/{b}", headers=HTML).text
    refused = post_form(agent, f"/agent/tickets/{a}", f"/agent/tickets/{a}/merge", {"into": str(a)})
    assert "error=" in refused.headers["location"]
    with desk.sessions() as s:
        from core.models import Message
        moved = s.scalar(select(Message.id).where(Message.ticket_id == a).order_by(Message.id.desc()))
    split = post_form(agent, f"/agent/tickets/{a}", f"/agent/tickets/{a}/split", {"message_ids": str(moved)})
    new_id = int(re.search(r"/agent/tickets/(\d+)\?done=split", split.headers["location"]).group(1))
    assert "Still jams." in agent.get(f"/agent/tickets/{new_id}", headers=HTML).text
    spam = receive(desk, mail("Pills", "Buy", sender="spam@example.net"), envelope_from="spam@example.net")
    post_form(agent, f"/agent/tickets/{spam.ticket_id}", f"/agent/tickets/{spam.ticket_id}/spam", {})
    blocked = admin.get("/admin/blocked", headers=HTML).text
    assert "spam@example.net" in blocked
    assert post_form(admin, "/admin/blocked", "/admin/blocked/unblock", {"email": "spam@example.net"}).status_code == 303
    assert "spam@example.net" not in admin.get("/admin/blocked", headers=HTML).text
