"""An admin finds the automatic mail the desk recognised: a complaint about our acknowledgement
(attached to its ticket, the complainant no longer mailed) and one about a mail we never sent
(kept for admins only), and downloads the latter's bytes as they came in."""
from __future__ import annotations

import re
import smtplib

from playwright.sync_api import Page, expect

from tests.e2e.mailbox import recipient, send_mail, wait_for_mail
from tests.support.automatic_mail import arf_report
from tests.support.server import run_postdesk

ADMIN, ADMIN_PASSWORD = "admin@example.test", "amber-harbour-7240"
CUSTOMER = "carl@example.org"


def _send_raw(port: int, raw: bytes, sender: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.sendmail(sender, ["support@example.test"], raw.replace(b"\n", b"\r\n"))


def test_admin_sees_recognised_automatic_mail_and_downloads_it(page: Page, server, sink, screenshot):
    send_mail(server.smtp_port, sender=f"Carl <{CUSTOMER}>", subject="Printer on fire",
              body="It smokes.", msgid="<fire-1@example.org>")
    ack = wait_for_mail(sink, lambda m: recipient(m) == CUSTOMER, "acknowledgement")
    _send_raw(server.smtp_port, arf_report(ack["Message-ID"].strip("<>"), CUSTOMER), "fbl@fbl.example.net")
    _send_raw(server.smtp_port, arf_report("never-ours@example.net", "dora@example.org",
                                           msgid="<arf2@fbl.example.net>"), "fbl@fbl.example.net")
    added = run_postdesk(["user", "add", "--email", ADMIN, "--role", "admin", "--password-stdin"],
                         server.workdir, server.env, stdin=f"{ADMIN_PASSWORD}\n".encode())
    assert added.returncode == 0, added.stdout.decode() + added.stderr.decode()

    page.goto("/login")
    page.get_by_label("Email address").fill(ADMIN)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto("/admin/users")
    page.get_by_role("navigation", name="Administration").get_by_role("link", name="Automatic mail").click()
    expect(page.get_by_role("heading", name="Automatic mail")).to_be_visible()
    rows = page.locator("tr[data-raw]")
    for _ in range(20):  # the intake worker stores the reports within a second or two
        if rows.count() == 2:
            break
        page.wait_for_timeout(500)
        page.reload()
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text=CUSTOMER)).to_contain_text(re.compile(r"#\d+"))
    screenshot(page, "all")

    page.get_by_label("only those that concern no ticket").check()
    page.get_by_role("button", name="Show").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("dora@example.org")
    expect(rows.first).to_contain_text("feedback report (ARF)")
    screenshot(page, "unmatched")
    with page.expect_download() as download:
        rows.first.get_by_role("link", name=re.compile(r"\.eml$")).click()
    assert b"Original-Rcpt-To: dora@example.org" in open(download.value.path(), "rb").read()
