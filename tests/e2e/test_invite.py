"""An admin invites an agent in the browser; the agent follows the mailed link, chooses a password,
signs out and signs in with it, and lands on the queue."""
from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.mailbox import link_in, recipient, wait_for_mail
from tests.support.server import run_postdesk

ADMIN, ADMIN_PASSWORD = "admin@example.test", "amber-signal-2207"
INVITEE, INVITEE_PASSWORD = "nina@example.test", "copper-meadow-4411"


def test_an_invited_agent_sets_a_password_and_signs_in(page: Page, server, sink, screenshot):
    added = run_postdesk(["user", "add", "--email", ADMIN, "--role", "admin", "--password-stdin"],
                         server.workdir, server.env, stdin=f"{ADMIN_PASSWORD}\n".encode())
    assert added.returncode == 0, added.stdout.decode() + added.stderr.decode()
    page.goto("/login")
    page.get_by_label("Email address").fill(ADMIN)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto("/admin/users")
    invite = page.get_by_role("form", name="Invite an agent or admin")
    invite.get_by_label("Address").fill(INVITEE)
    invite.get_by_label("Name (optional)").fill("Nina Agent")
    invite.get_by_label("Role").select_option("agent")
    invite.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_role("status")).to_contain_text("Invitation sent")
    page.get_by_label("Search address or name").fill("nina")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_test_id("people-total")).to_have_text("1")
    screenshot(page, "people-after-invite")
    page.get_by_role("button", name=f"Sign out {ADMIN}").click()

    mail = wait_for_mail(sink, lambda m: recipient(m) == INVITEE and "invited" in m["Subject"], "invitation")
    page.goto(link_in(mail, server.base_url, "/reset/"))
    expect(page.get_by_text(INVITEE)).to_be_visible()
    page.get_by_label("New password", exact=True).fill(INVITEE_PASSWORD)
    page.get_by_label("New password again").fill(INVITEE_PASSWORD)
    page.get_by_role("button", name="Save and sign in").click()
    sign_out = page.get_by_role("button", name=f"Sign out {INVITEE}")
    expect(sign_out).to_be_visible()
    sign_out.click()

    page.goto("/login")
    page.get_by_label("Email address").fill(INVITEE)
    page.get_by_label("Password").fill(INVITEE_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/agent/queue$"))
    expect(page.get_by_role("heading", name="Queue")).to_be_visible()
    screenshot(page, "invited-agent-queue")
