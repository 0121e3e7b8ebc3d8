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
