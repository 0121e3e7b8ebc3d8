"""The agent's ticket form says plainly whom a reply or a status change is mailed to, and whom not
because they opted out: what the agent sees in the browser."""
from __future__ import annotations

import re

from playwright.sync_api import Page, expect
from sqlalchemy import create_engine, update

from core.db import normalise_url
from core.models import Contact
from tests.e2e.mailbox import recipient, send_mail, wait_for_mail
from tests.e2e.test_agent import AGENT, AGENT_PASSWORD, add_agent

CUSTOMER = "frida@example.org"


def test_the_agent_sees_that_the_customer_opted_out_of_status_mails(page: Page, server, sink):
    send_mail(server.smtp_port, sender=f"Frida <{CUSTOMER}>", subject="Scanner offline",
              body="The scanner on floor 2 is offline.", msgid="<scan-1@example.org>")
    wait_for_mail(sink, lambda m: recipient(m) == CUSTOMER, "acknowledgement")
    engine = create_engine(normalise_url(server.env["POSTDESK_DATABASE__URL"]))
    with engine.begin() as conn:  # as if Frida had unticked "status changes" on her account page
        conn.execute(update(Contact).where(Contact.email == CUSTOMER).values(notify_status=False))
    engine.dispose()
    add_agent(server)

    page.goto("/login")
    page.get_by_label("Email address").fill(AGENT)
    page.get_by_label("Password").fill(AGENT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/agent/queue$"))
    page.get_by_role("link", name="Scanner offline").click()

    expect(page.get_by_text(f"mailed to {CUSTOMER})")).to_be_visible()  # the reply's label
    expect(page.get_by_role("note").filter(has_text="chose not to receive status changes by mail")) \
        .to_have_text(f"Not mailed to {CUSTOMER}: they chose not to receive status changes by mail.")
