"""The rating lines core.satisfaction adds to a resolution mail follow the requester's language."""
from __future__ import annotations

from types import SimpleNamespace

from core.satisfaction import resolution_mail

SETTINGS = SimpleNamespace(base_url="https://desk.example", web=SimpleNamespace(secret_key="s3cret"))
TICKET = SimpleNamespace(id=7, status="resolved", requester_id=3)


def test_english_lines_keep_their_wording_and_alignment():
    text, html = resolution_mail(SETTINGS, TICKET, SimpleNamespace(id=3, language=None), "Body\n", "<p>Body</p>")
    assert "How did we do? One click answers (no sign-in):\n  Good: https://desk.example/rate/7.3." in text
    assert "\n  Bad:  https://desk.example/rate/7.3." in text
    assert '">Good</a> · <a href="' in html


def test_german_requester_reads_german_lines():
    text, html = resolution_mail(SETTINGS, TICKET, SimpleNamespace(id=3, language="de"), "Text\n", "<p>Text</p>")
    assert "Ein Klick genügt" in text and "\n  Gut:      https://desk.example/rate/7.3." in text
    assert "\n  Schlecht: https://desk.example/rate/7.3." in text and "How did we do" not in text
    assert '">Gut</a> · <a href="' in html and '">Schlecht</a></p>' in html
