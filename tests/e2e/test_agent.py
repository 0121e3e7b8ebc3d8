"""An agent answers a mailed request from the portal; the customer's mail answer to that reply
appears on the agent's open page by itself (polling), without a reload."""
from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from core.mail import tokens
from tests.e2e.mailbox import recipient, send_mail, text_of, wait_for_mail
from tests.support.server import run_postdesk

AGENT, AGENT_PASSWORD = "agent@example.test", "teal-lantern-5150"
CUSTOMER = "erik@example.org"
SUBJECT = "Invoice 2024-118 shows the wrong VAT"
FIRST_ID = "<vat-1@client.example.org>"


def add_agent(server) -> None:
    added = run_postdesk(["user", "add", "--email", AGENT, "--role", "agent", "--password-stdin"],
                         server.workdir, server.env, stdin=f"{AGENT_PASSWORD}\n".encode())
    assert added.returncode == 0, added.stdout.decode() + added.stderr.decode()


def test_agent_reply_is_mailed_threaded_and_the_customer_answer_appears_without_reload(
        page: Page, server, sink, secret_key, screenshot):
    send_mail(server.smtp_port, sender=f"Erik Example <{CUSTOMER}>", subject=SUBJECT,
              body="The invoice charges 21 % VAT; we are in a 19 % country.", msgid=FIRST_ID)
    wait_for_mail(sink, lambda m: recipient(m) == CUSTOMER and m["Auto-Submitted"] == "auto-replied",
                  "acknowledgement")
    add_agent(server)

    page.goto("/login")
    page.get_by_label("Email address").fill(AGENT)
    page.get_by_label("Password").fill(AGENT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/agent/queue$"))
    expect(page.get_by_role("heading", name="Queue")).to_be_visible()
    page.get_by_role("row").filter(has_text=CUSTOMER).get_by_role("link", name=SUBJECT).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"#1 {SUBJECT}")
    conversation = page.get_by_role("region", name="Conversation")
    expect(conversation.get_by_text("The invoice charges 21 % VAT")).to_be_visible()

    page.get_by_label("Message").fill("Sorry about that. A corrected invoice follows today.")
    page.get_by_role("button", name="Send reply").click()
    expect(page.get_by_role("status")).to_have_text("Reply sent.")
    expect(conversation.get_by_text("A corrected invoice follows today.")).to_be_visible()

    reply = wait_for_mail(sink, lambda m: recipient(m) == CUSTOMER and "corrected invoice" in text_of(m),
                          "agent's reply")
    assert reply["In-Reply-To"] == FIRST_ID
    assert FIRST_ID in reply["References"].split()
    assert reply["Subject"].endswith(SUBJECT) and "[#1]" in reply["Subject"]
    reply_to = reply["Reply-To"].addresses[0].addr_spec
    assert re.fullmatch(r"support\+1\.[a-z0-9]+@example\.test", reply_to), reply_to
    assert tokens.verify_reply_address(secret_key, reply_to, CUSTOMER) == 1

    # From here on the agent's page must not navigate: a reload would drop this marker.
    page.evaluate("window.e2eMarker = 'never reloaded'")
    send_mail(server.smtp_port, sender=f"Erik Example <{CUSTOMER}>", to=reply_to, subject=f"Re: {reply['Subject']}",
              body="Thanks, the corrected one arrived.\n\n> Sorry about that. A corrected invoice follows today.",
              msgid="<vat-2@client.example.org>", in_reply_to=reply["Message-ID"],
              references=f"{FIRST_ID} {reply['Message-ID']}")

    expect(conversation.get_by_text("Thanks, the corrected one arrived.")).to_be_visible(timeout=20_000)
    expect(page.locator("#poll-status")).to_contain_text("1 new message")
    assert page.evaluate("window.e2eMarker") == "never reloaded"
    expect(conversation.get_by_role("article")).to_have_count(3)
    screenshot(page, "agent-ticket")
