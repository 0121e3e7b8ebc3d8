"""The resolution mail's rating link in Chromium against `postdesk serve`, on both databases: one
click records the answer (the link's page posts it with /static/rate.js under the site's CSP), a
second click is still one answer, and fetching the link without running the page records nothing."""
from __future__ import annotations

from playwright.sync_api import Page, expect
from sqlalchemy import create_engine, text

from core.satisfaction import rating_token
from tests.e2e.mailbox import send_mail, wait_for_mail
from tests.e2e.test_workspace import CUSTOMER, ticket_of


def answers(db_url: str) -> list[tuple]:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text("SELECT ticket_id, score FROM satisfaction ORDER BY id"))]
    finally:
        engine.dispose()


def requester_link(server, db_url: str, secret_key: str, ticket: int, score: str) -> str:
    """The link the resolution mail carries (core/satisfaction.rating_links) for the ticket's requester."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            person = conn.execute(text("SELECT requester_id FROM ticket WHERE id = :t"), {"t": ticket}).scalar()
    finally:
        engine.dispose()
    return f"{server.base_url}/rate/{rating_token(secret_key, ticket, person)}/{score}"


def test_one_click_on_a_rating_link_records_one_answer_and_a_prefetch_records_none(
        page: Page, server, sink, db_url, secret_key, screenshot):
    send_mail(server.smtp_port, sender=f"Erik Example <{CUSTOMER}>", subject="Paper jam", body="It jams.",
              msgid="<r1@client.example.org>")
    wait_for_mail(sink, lambda m: "Paper jam" in str(m["Subject"]), "acknowledgement")
    ticket = ticket_of(db_url, "r1@client.example.org")
    good, bad = (requester_link(server, db_url, secret_key, ticket, s) for s in ("good", "bad"))

    scanner = page.context.request                   # what a mail scanner does: fetch, run nothing
    assert scanner.head(bad).status in (200, 405) and scanner.get(bad).ok
    assert answers(db_url) == []

    page.goto(good)
    expect(page.get_by_test_id("rating")).to_contain_text("as good")
    screenshot(page, "rating-thanks")
    assert answers(db_url) == [(ticket, "good")]
    page.goto(good)                                  # the same link again: the thank-you page, one answer
    expect(page.get_by_test_id("rating")).to_contain_text("as good")
    page.goto(bad)                                   # the other link: a change of mind
    expect(page.get_by_test_id("rating")).to_contain_text("as bad")
    assert answers(db_url) == [(ticket, "bad")]
