"""The HTML part made from a mail's text part: escaped, links clickable, quotes and signature kept."""
from __future__ import annotations

from core.customer_mail import split_attachments
from core.mail.text_html import text_to_html
from core.notify import request_excerpt


def test_everything_from_outside_is_escaped_and_links_are_clickable():
    html = text_to_html("Hello <script>x</script> & co,\nsee https://desk.example/t/abc?x=1&y=2.\n")
    assert "<script>" not in html and "&lt;script&gt;" in html and "&amp; co" in html
    assert '<a href="https://desk.example/t/abc?x=1&amp;y=2">' in html  # the full stop is not part of it
    assert "href" not in text_to_html("javascript:alert(1) and www.example.test")  # only http(s) links


def test_quoted_lines_become_a_quotation_and_the_signature_small_print():
    html = text_to_html("You wrote:\n\n> first line\n> second <b>\n\nThanks\n\n-- \nPostdesk support\n")
    assert "<blockquote" in html and "first line<br>second &lt;b&gt;" in html
    assert '<hr' in html and "Postdesk support" in html.split("<hr")[1]


def test_a_placeholder_paragraph_is_replaced_by_ready_html():
    html = text_to_html("@@body@@\n\nBye", {"@@body@@": "<p><strong>hi</strong></p>"})
    assert "<p><strong>hi</strong></p>" in html and "@@body@@" not in html


def test_the_request_excerpt_is_quoted_and_cut_at_a_word():
    quoted = request_excerpt("word " * 300)
    assert quoted.startswith("> word") and quoted.endswith("[…]") and len(quoted) < 700
    assert request_excerpt("a\n\nb") == "> a\n>\n> b"


class _File:
    def __init__(self, size: int) -> None:
        self.size = size


def test_files_go_with_the_mail_while_their_total_fits_the_rest_as_links():
    files = [_File(4), _File(7), _File(3), _File(1)]
    sent, linked = split_attachments(files, limit=8)
    assert sent == [files[0], files[2], files[3]] and linked == [files[1]]
