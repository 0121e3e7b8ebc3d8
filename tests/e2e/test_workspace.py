"""The agent's workspace in Chromium against `postdesk serve` (SMTP door, worker, web), on both
databases: canned replies with placeholders, bulk status change with a shift-click range, merge and
the customer's later reply, split, spam blocking the next mail, presence and the stale-reply warning
between two browsers, the queue refreshing itself (new tickets, and a read ticket turning unread when
the customer replies by mail), and no sideways scrolling on a phone."""
from __future__ import annotations

import re
import time

from playwright.sync_api import Page, expect
from sqlalchemy import create_engine, text

from tests.e2e.mailbox import recipient, send_mail, text_of, wait_for_mail
from tests.support.server import run_postdesk

PASSWORD = "teal-lantern-5150"
CUSTOMER = "erik@example.org"


def add_user(server, email: str, role: str = "agent", name: str = "") -> None:
    args = ["user", "add", "--email", email, "--role", role, "--password-stdin"] + (["--name", name] if name else [])
    added = run_postdesk(args, server.workdir, server.env, stdin=f"{PASSWORD}\n".encode())
    assert added.returncode == 0, added.stdout.decode() + added.stderr.decode()


def sign_in(page: Page, email: str) -> None:
    page.goto("/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/agent/queue$"))
    page.wait_for_load_state("load")


def mail_in(server, sink, subject: str, msgid: str, body: str = "Hello", sender: str = CUSTOMER) -> None:
    """A customer's mail through the SMTP door, waited for until its acknowledgement is sent."""
    send_mail(server.smtp_port, sender=f"Erik Example <{sender}>", subject=subject, body=body, msgid=f"<{msgid}>")
    wait_for_mail(sink, lambda m: recipient(m) == sender and subject in str(m["Subject"])
                  and m["Auto-Submitted"] == "auto-replied", f"acknowledgement of {subject}")


def ticket_of(db_url: str, msgid: str, timeout: float = 20.0) -> int | None:
    """The ticket a mail was stored on, read from the server's database (None while not stored)."""
    engine = create_engine(db_url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                found = conn.execute(text("SELECT ticket_id FROM message WHERE message_id = :m"), {"m": msgid}).scalar()
            if found is not None:
                return found
            time.sleep(0.2)
        return None
    finally:
        engine.dispose()


def test_canned_reply_with_placeholders_is_inserted_with_slash_and_mailed(page: Page, server, sink, screenshot):
    add_user(server, "agent@example.test", name="Dana Agent")
    mail_in(server, sink, "Printer jams", "p1@client.example.org")
    sign_in(page, "agent@example.test")
    page.goto("/agent/canned-replies")
    page.get_by_label("Title").fill("Thanks")
    page.get_by_label("Text (Markdown, with placeholders)").fill(
        "Hello {{ customer.name }},\nabout #{{ ticket.id }} ({{ ticket.subject }}): fixed.\n{{ agent.name }}")
    page.get_by_label("Shared with the team").check()
    page.get_by_role("button", name="Save canned reply").click()
    expect(page.get_by_role("status")).to_have_text("Canned reply saved.")
    page.goto("/agent/tickets/1")
    side, thread = page.locator("aside.ticket-side").bounding_box(), page.locator("#thread").bounding_box()
    assert side["x"] > thread["x"] + thread["width"] - 1     # wide screen: the fields beside the thread
    box = page.get_by_label("Message")
    box.click()
    page.keyboard.press("/")
    expect(page.get_by_label("Canned reply")).to_be_focused()
    page.keyboard.press("Enter")
    expect(box).to_have_value("Hello Erik Example,\nabout #1 (Printer jams): fixed.\nDana Agent")
    screenshot(page, "canned")
    page.get_by_role("button", name="Send reply").click()
    expect(page.get_by_role("status")).to_have_text("Reply sent.")
    mailed = wait_for_mail(sink, lambda m: recipient(m) == CUSTOMER and "fixed." in text_of(m), "the reply")
    assert "Hello Erik Example," in text_of(mailed) and "{{" not in text_of(mailed)


def test_bulk_status_change_of_three_tickets_with_a_shift_click_range(page: Page, server, sink, screenshot):
    add_user(server, "agent@example.test")
    for i in range(3):
        mail_in(server, sink, f"Bulk {i}", f"b{i}@client.example.org")
    sign_in(page, "agent@example.test")
    boxes = page.locator("#queue-rows input[name=ids]")
    expect(boxes).to_have_count(3)
    boxes.nth(0).click()
    boxes.nth(2).click(modifiers=["Shift"])
    for i in range(3):
        expect(boxes.nth(i)).to_be_checked()
    expect(page.locator("#chosen-count")).to_have_text("3 chosen")
    page.get_by_label("Set status").select_option("waiting")
    page.get_by_role("button", name="Apply to chosen tickets").click()
    expect(page.get_by_role("status")).to_have_text("3 ticket(s) changed.")
    expect(page.locator("#queue-rows .badge", has_text="waiting")).to_have_count(3)
    screenshot(page, "bulk")


def test_merge_then_a_customer_reply_to_the_merged_ticket_lands_on_the_target(page: Page, server, sink, db_url):
    add_user(server, "agent@example.test")
    mail_in(server, sink, "VPN drops", "v1@client.example.org")
    mail_in(server, sink, "VPN drops again", "v2@client.example.org")
    sign_in(page, "agent@example.test")
    page.goto("/agent/tickets/2")
    page.get_by_label("Merge this ticket into ticket number").fill("1")
    page.get_by_role("button", name="Merge", exact=True).click()
    expect(page).to_have_url(re.compile(r"/agent/tickets/1\?done=merged"))
    conversation = page.get_by_role("region", name="Conversation")
    expect(conversation.get_by_role("article")).to_have_count(2)
    send_mail(server.smtp_port, sender=f"Erik Example <{CUSTOMER}>", subject="Re: [#2] VPN drops again",
              body="It dropped once more at noon.", msgid="<v3@client.example.org>")
    expect(conversation.get_by_text("It dropped once more at noon.")).to_be_visible(timeout=20_000)
    assert ticket_of(db_url, "v3@client.example.org") == 1


def test_split_moves_the_chosen_entry_to_a_new_ticket(page: Page, server, sink):
    add_user(server, "agent@example.test")
    mail_in(server, sink, "Two questions", "s1@client.example.org", "First: the invoice.")
    send_mail(server.smtp_port, sender=f"Erik Example <{CUSTOMER}>", subject="Re: [#1] Two questions",
              body="Second: my new address.", msgid="<s2@client.example.org>")
    sign_in(page, "agent@example.test")
    page.goto("/agent/tickets/1")
    second = page.locator("article", has_text="Second: my new address.")
    expect(second).to_be_visible(timeout=20_000)
    second.get_by_label("Move to a new ticket").check()
    page.get_by_role("button", name="Split into a new ticket").click()
    expect(page).to_have_url(re.compile(r"/agent/tickets/2\?done=split"))
    expect(page.get_by_role("region", name="Conversation").get_by_role("article")).to_have_count(1)
    expect(page.get_by_text("Second: my new address.")).to_be_visible()
    expect(page.get_by_text("Erik Example").first).to_be_visible()
    page.goto("/agent/tickets/1")
    conversation = page.get_by_role("region", name="Conversation")
    expect(conversation.get_by_text("First: the invoice.")).to_be_visible()
    expect(conversation.get_by_text("Second: my new address.")).to_have_count(0)


def test_spam_blocks_the_next_mail_from_the_sender(page: Page, server, sink):
    add_user(server, "admin@example.test", role="admin")
    mail_in(server, sink, "Cheap pills", "x1@spam.example.net", sender="pills@spam.example.net")
    sign_in(page, "admin@example.test")
    page.goto("/agent/tickets/1")
    page.get_by_role("button", name=re.compile("^Spam: close and block")).click()
    expect(page.get_by_role("status")).to_contain_text("pills@spam.example.net is blocked")
    before = len(sink.mails())
    send_mail(server.smtp_port, sender="Pills <pills@spam.example.net>", subject="More pills", body="Buy",
              msgid="<x2@spam.example.net>")   # accepted at the door (stored), then held
    held = page.get_by_text("spam: blocked sender pills@spam.example.net")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:   # the quarantine page shows what is held when it is loaded
        page.goto("/admin/quarantine")
        if held.count():
            break
        time.sleep(0.5)
    expect(held).to_be_visible()
    time.sleep(1.5)
    assert not [m for m in sink.mails()[before:] if recipient(m) == "pills@spam.example.net"]
    page.goto("/admin/blocked")
    page.get_by_role("button", name="Unblock pills@spam.example.net").click()
    expect(page.get_by_role("status")).to_contain_text("1 held mail(s) back in line")


def test_two_agents_see_each_other_and_a_stale_reply_asks_for_review(browser, page: Page, server, sink, screenshot):
    add_user(server, "agent@example.test", name="Alex")
    add_user(server, "dana@example.test", name="Dana")
    mail_in(server, sink, "Printer smokes", "c1@client.example.org")
    sign_in(page, "agent@example.test")
    page.goto("/agent/tickets/1")
    other = browser.new_context(base_url=server.base_url, locale="en-GB")
    try:
        dana = other.new_page()
        sign_in(dana, "dana@example.test")
        dana.goto("/agent/tickets/1")
        expect(page.locator("#presence")).to_have_text("Dana is viewing.", timeout=15_000)
        expect(dana.locator("#presence")).to_have_text("Alex is viewing.", timeout=15_000)
        dana.get_by_label("Message").type("Please switch it off")
        expect(page.locator("#presence")).to_have_text("Dana is typing a reply.", timeout=15_000)
        page.get_by_label("Message").fill("I am on my way.")
        dana.get_by_role("button", name="Send reply").click()
        expect(dana.get_by_role("status")).to_have_text("Reply sent.")
        page.get_by_role("button", name="Send reply").click()
        expect(page.get_by_test_id("stale-warning")).to_be_visible()
        expect(page.get_by_label("Message")).to_have_value("I am on my way.")
        expect(page.get_by_text("Please switch it off").first).to_be_visible()
        screenshot(page, "stale")
        page.get_by_role("button", name="Send reply").click()
        expect(page.get_by_role("status")).to_have_text("Reply sent.")
    finally:
        other.close()


def test_the_queue_shows_new_tickets_without_a_reload(page: Page, server, sink):
    add_user(server, "agent@example.test")
    mail_in(server, sink, "First one", "q1@client.example.org")
    sign_in(page, "agent@example.test")
    expect(page.locator("#queue-rows tr[data-ticket]")).to_have_count(1)
    page.wait_for_load_state("load")       # the page's scripts are in place before keys are pressed
    page.evaluate("window.e2eMarker = 'never reloaded'")
    page.keyboard.press("j")
    expect(page.locator("#queue-rows tr.current")).to_have_count(1)
    send_mail(server.smtp_port, sender=f"Erik Example <{CUSTOMER}>", subject="Second one", body="Hi",
              msgid="<q2@client.example.org>")
    expect(page.locator("#queue-rows tr[data-ticket]")).to_have_count(2, timeout=20_000)
    expect(page.get_by_role("link", name="Second one")).to_be_visible()
    expect(page.get_by_test_id("total")).to_have_text("2")
    assert page.evaluate("window.e2eMarker") == "never reloaded"
    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_hidden()
    page.keyboard.press("k")                     # back to the first row: the newest ticket
    page.keyboard.press("o")
    expect(page).to_have_url(re.compile(r"/agent/tickets/2$"))
    page.wait_for_load_state("load")
    page.keyboard.press("r")
    expect(page.get_by_label("Message")).to_be_focused()
    page.keyboard.press("Escape")
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("n")
    expect(page.get_by_label("Note (Markdown")).to_be_focused()


def too_wide(page: Page) -> list[str]:
    """The elements reaching past the viewport's right edge (tag, id, class, right edge), deepest first."""
    return page.evaluate("""() => Array.from(document.querySelectorAll("body *"))
        .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1)
        .map(el => `${el.tagName.toLowerCase()}#${el.id}.${el.className} → ${Math.round(el.getBoundingClientRect().right)}`)
        .reverse().slice(0, 8)""")


def test_queue_and_ticket_page_do_not_scroll_sideways_on_a_phone(browser, server, sink, screenshot):
    add_user(server, "agent@example.test")
    mail_in(server, sink, "A rather long subject line that keeps going and going without any end in sight",
            "w1@client.example.org", "averyveryverylongwordwithoutanyspacesthatcouldpushthelayoutwideropen" * 2)
    context = browser.new_context(base_url=server.base_url, viewport={"width": 390, "height": 844},
                                  is_mobile=True, has_touch=True, device_scale_factor=2)
    try:
        phone = context.new_page()
        sign_in(phone, "agent@example.test")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:   # the triage summary (which repeats the long word) is shown too
            phone.goto("/agent/tickets/1")
            if phone.get_by_text("Source: offline").count():
                break
            time.sleep(0.5)
        for path in ("/agent/queue", "/agent/tickets/1"):
            phone.goto(path)
            width = phone.evaluate("Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)")
            assert width <= 390, f"{path} is {width} px wide on a 390 px phone: {too_wide(phone)}"
            screenshot(phone, path.strip("/").replace("/", "-"))
        side = phone.locator("aside.ticket-side").bounding_box()
        thread = phone.locator("#thread").bounding_box()
        assert side["y"] < thread["y"]      # the fields come above the thread on a phone
    finally:
        context.close()


def test_a_customer_reply_by_mail_marks_the_read_ticket_unread_in_the_open_queue(page: Page, server, sink, db_url):
    add_user(server, "agent@example.test")
    mail_in(server, sink, "Toner empty", "u1@client.example.org")
    ticket = ticket_of(db_url, "u1@client.example.org")
    sign_in(page, "agent@example.test")
    row = page.locator(f'#queue-rows tr[data-ticket="{ticket}"]')
    expect(row.get_by_test_id("customer-replied")).to_be_visible()       # never opened: unread
    row.get_by_role("link", name="Toner empty").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"#{ticket} Toner empty")
    page.goto("/agent/queue")
    expect(row).to_be_visible()
    expect(row.get_by_test_id("customer-replied")).to_have_count(0)      # read by this agent
    expect(row).not_to_have_class(re.compile(r"\bunread\b"))
    page.evaluate("window.e2eMarker = 'never reloaded'")
    send_mail(server.smtp_port, sender=f"Erik Example <{CUSTOMER}>", subject="Re: Toner empty",
              body="Still empty after the new cartridge.", msgid="<u2@client.example.org>",
              in_reply_to="<u1@client.example.org>")
    expect(row.get_by_test_id("customer-replied")).to_be_visible(timeout=20_000)
    expect(row).to_have_class(re.compile(r"\bunread\b"))
    assert ticket_of(db_url, "u2@client.example.org") == ticket
    assert page.evaluate("window.e2eMarker") == "never reloaded"
