"""A stranger opens a ticket on the public form, and follows it through the link in the acknowledgement."""
from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.mailbox import link_in, recipient, wait_for_mail

SUBJECT = "Scanner jams on every page"
DESCRIPTION = "Since Monday the scanner on floor 2 jams after the first sheet.\nIt beeps twice."


def test_form_ticket_is_acknowledged_with_a_link_that_shows_the_ticket(page: Page, server, sink, screenshot):
    page.goto("/new")
    expect(page.get_by_role("heading", name="Open a ticket")).to_be_visible()
    page.get_by_label("Your name").fill("Dana Example")
    page.get_by_label("Your email address").fill("dana@example.org")
    page.get_by_label("Subject").fill(SUBJECT)
    page.get_by_label("Description").fill(DESCRIPTION)
    page.get_by_role("button", name="Send").click()

    expect(page.get_by_role("heading", name="Thank you")).to_be_visible()
    expect(page.get_by_text("Your request is ticket #1.")).to_be_visible()
    screenshot(page, "thanks")

    ack = wait_for_mail(sink, lambda m: recipient(m) == "dana@example.org", "acknowledgement")
    assert ack["Subject"] == f"[#1] {SUBJECT}"
    link = link_in(ack, server.base_url, "/t/")

    page.goto(link)
    expect(page).to_have_url(link)
    expect(page.get_by_role("heading", level=1)).to_have_text(f"#1 {SUBJECT}")
    conversation = page.get_by_role("region", name="Conversation")
    expect(conversation.get_by_text("Since Monday the scanner on floor 2 jams")).to_be_visible()
    expect(conversation.get_by_text("It beeps twice.")).to_be_visible()
    expect(page.get_by_test_id("status")).to_have_text(re.compile(r"\bnew\b"))
    screenshot(page, "ticket-by-link")
