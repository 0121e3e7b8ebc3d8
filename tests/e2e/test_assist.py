"""An agent answers from a similar resolved ticket: one click inserts its resolution, "Suggest a
reply" (offline here) fills the reply box, and the history says the sent reply began as a draft."""
from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.mailbox import recipient, send_mail, wait_for_mail
from tests.e2e.test_agent import AGENT, AGENT_PASSWORD, add_agent

FIRST, SECOND = "dora@example.org", "emil@example.org"
RESOLUTION = "Hold the power button of the P-300 for 10 seconds to reset the fuser, then print a test page."


def mail_in(server, sink, sender: str, subject: str, body: str, msgid: str) -> None:
    send_mail(server.smtp_port, sender=sender, subject=subject, body=body, msgid=msgid)
    wait_for_mail(sink, lambda m: recipient(m) == sender and m["Auto-Submitted"] == "auto-replied",
                  f"acknowledgement to {sender}")


def test_agent_inserts_a_similar_resolution_and_sends_a_suggested_reply(page: Page, server, sink, screenshot):
    mail_in(server, sink, FIRST, "Printer P-300 shows error E-4711",
            "Our P-300 printer shows error E-4711 and the LED blinks orange.", "<p300-1@client.example.org>")
    add_agent(server)
    page.goto("/login")
    page.get_by_label("Email address").fill(AGENT)
    page.get_by_label("Password").fill(AGENT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/agent/queue$"))

    page.goto("/agent/tickets/1")
    page.get_by_label("Status", exact=True).select_option("resolved")
    page.get_by_label("Resolution (mailed to the customer when it changes)").fill(RESOLUTION)
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status")).to_have_text("Ticket updated.")

    mail_in(server, sink, SECOND, "Error E-4711 on printer P-300",
            "Since today the printer P-300 in our office shows E-4711, the LED blinks orange.",
            "<p300-2@client.example.org>")
    page.goto("/agent/tickets/2")
    helper = page.get_by_role("region", name="Help with the answer")
    expect(helper.get_by_role("link", name=re.compile(r"^#1 "))).to_be_visible()
    expect(helper.get_by_text(RESOLUTION)).to_be_visible()
    box = page.get_by_label("Message")

    helper.get_by_role("button", name="Insert into reply").click()
    expect(box).to_have_value(RESOLUTION)
    box.fill("")
    helper.get_by_role("button", name="Suggest a reply").click()
    expect(box).to_have_value(RESOLUTION)
    expect(page.locator("#suggest-status")).to_contain_text("edit them before sending")
    screenshot(page, "suggested")

    box.fill("Hello Emil,\n\n" + RESOLUTION + "\n\nBest regards")
    page.get_by_role("button", name="Send reply").click()
    expect(page.get_by_role("status")).to_have_text("Reply sent.")
    history = page.get_by_role("region", name="History")
    expect(history.get_by_role("row").filter(has_text="reply_drafted")).to_contain_text(
        "suggested from similar tickets' resolutions (ticket #1)")
    wait_for_mail(sink, lambda m: recipient(m) == SECOND and "Hello Emil" in m.get_body().get_content(),
                  "the agent's reply")
