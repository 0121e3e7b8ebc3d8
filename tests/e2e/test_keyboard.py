"""The new-ticket form for people who use a keyboard or a screen reader: every field has a label,
and the form is filled in and sent with Tab, typing and Enter alone."""
from __future__ import annotations

from playwright.sync_api import Page, expect

FIELDS = ["Your name", "Your email address", "Subject", "Description", "Category", "Priority", "Attachments"]


def unlabelled_fields(page: Page) -> list[str]:
    """Form controls a person can reach (not hidden, not the aria-hidden honeypot) without a <label>."""
    return page.evaluate("""() => Array.from(document.querySelectorAll("main input, main select, main textarea"))
        .filter(el => el.type !== "hidden" && !el.hidden && !el.closest("[aria-hidden=true]"))
        .filter(el => !el.labels || el.labels.length === 0)
        .map(el => el.outerHTML)""")


def tab_until(page: Page, element_id: str, limit: int = 20) -> int:
    """Press Tab until the element with this id has the focus; the number of presses."""
    for presses in range(1, limit + 1):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return presses
    raise AssertionError(f"#{element_id} never got the focus in {limit} presses of Tab")


def test_new_ticket_form_is_labelled_and_can_be_sent_with_the_keyboard(page: Page, screenshot):
    page.goto("/new")
    for label in FIELDS:
        expect(page.get_by_label(label, exact=False)).to_have_count(1)
        expect(page.get_by_label(label, exact=False)).to_be_visible()
    assert unlabelled_fields(page) == []
    screenshot(page, "form")

    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    tab_until(page, "name")
    page.keyboard.type("Kim Keyboard")
    order = [("Your email address", "kim@example.org"), ("Subject", "Keyboard only"),
             ("Description", "I reached every field with Tab."), ("Category", None), ("Priority", None),
             ("Attachments", None)]
    for label, text in order:
        page.keyboard.press("Tab")
        expect(page.get_by_label(label, exact=False)).to_be_focused()
        if text:
            page.keyboard.type(text)
    page.keyboard.press("Tab")  # past the honeypot (tabindex=-1) straight to the button
    expect(page.get_by_role("button", name="Send")).to_be_focused()
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="Thank you")).to_be_visible()
    expect(page.get_by_test_id("ticket-number")).to_have_text("#1")
    screenshot(page, "thanks")
