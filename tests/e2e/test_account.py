"""A customer who wrote by mail registers, confirms the address from the mail, signs out and in,
and finds the mailed request under "My tickets"."""
from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.mailbox import link_in, recipient, send_mail, wait_for_mail

CUSTOMER = "carol@example.org"
PASSWORD = "violet-harbour-73"
SUBJECT = "VPN drops every hour"


def test_registered_customer_sees_the_ticket_she_sent_by_mail(page: Page, server, sink, screenshot):
    send_mail(server.smtp_port, sender=f"Carol Example <{CUSTOMER}>", subject=SUBJECT,
              body="The VPN disconnects at the full hour.", msgid="<vpn-1@client.example.org>")
    wait_for_mail(sink, lambda m: recipient(m) == CUSTOMER and "[#1]" in m["Subject"], "acknowledgement")

    page.goto("/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Register").click()
    expect(page.get_by_role("heading", name="Create an account")).to_be_visible()
    page.get_by_label("Email address").fill(CUSTOMER)
    page.get_by_label("Name").fill("Carol Example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Check your mail")).to_be_visible()
    expect(page.get_by_text(CUSTOMER)).to_be_visible()

    verify = wait_for_mail(sink, lambda m: recipient(m) == CUSTOMER and "Confirm" in m["Subject"],
                           "verification mail")
    page.goto(link_in(verify, server.base_url, "/verify/"))  # only a button: no sign-in by opening a link
    page.get_by_role("button", name="Confirm my address").click()
    expect(page.get_by_text("Your address is confirmed. Please sign in.")).to_be_visible()
    page.get_by_label("Email address").fill(CUSTOMER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto("/account")
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    expect(page.get_by_test_id("verification")).to_contain_text("confirmed on")
    expect(page.get_by_test_id("tickets")).to_contain_text("1")
    sign_out = page.get_by_role("button", name=f"Sign out {CUSTOMER}")
    expect(sign_out).to_be_visible()

    sign_out.click()
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Sign in")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Sign out"))).to_have_count(0)
    page.goto("/my/tickets")  # signed out: the list asks to sign in first, then comes back
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Email address").fill(CUSTOMER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(re.compile(r"/my/tickets$"))
    expect(page.get_by_role("heading", name="My tickets")).to_be_visible()
    expect(page.get_by_text("1 ticket", exact=True)).to_be_visible()
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=SUBJECT))
    expect(row).to_have_count(1)
    expect(row.get_by_role("cell").first).to_have_text("#1")
    screenshot(page, "my-tickets")

    row.get_by_role("link", name=SUBJECT).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"#1 {SUBJECT}")
    conversation = page.get_by_role("region", name="Conversation")
    expect(conversation.get_by_text("The VPN disconnects at the full hour.")).to_be_visible()
    screenshot(page, "my-ticket")
