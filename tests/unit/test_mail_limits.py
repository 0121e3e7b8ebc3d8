"""parse_mail's limits: checked on the raw bytes before the stdlib parser recurses."""
from __future__ import annotations

import sys
import time

import pytest

from core.errors import MessageRejected
from core.mail.parse import MAX_DEPTH, MAX_HEADER_BYTES, MAX_PARTS, check_limits, parse_mail

HEAD = b"From: Ann <ann@example.org>\r\nTo: support@example.com\r\nSubject: deep\r\nMIME-Version: 1.0\r\n"


def nested_multipart(levels: int) -> bytes:
    opening = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
                       for i in range(levels))
    closing = b"".join(b"\r\n--b%d--" % i for i in reversed(range(levels)))
    return HEAD + opening + b"Content-Type: text/plain\r\n\r\nhello" + closing + b"\r\n"


def nested_messages(levels: int) -> bytes:
    return HEAD + b"Content-Type: message/rfc822\r\n\r\n" * levels + b"Subject: inner\r\n\r\nhello\r\n"


def test_500_levels_of_multipart_are_rejected_fast_without_recursion():
    raw = nested_multipart(500)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)  # far below what the stdlib parser would need for 500 levels
    try:
        started = time.perf_counter()
        with pytest.raises(MessageRejected, match="nesting"):
            parse_mail(raw)
        elapsed = time.perf_counter() - started
    finally:
        sys.setrecursionlimit(limit)
    assert elapsed < 0.5


@pytest.mark.parametrize("newline", [b"\r\n", b"\n"])
def test_the_pre_scan_alone_sees_the_depth_whatever_the_line_ends(newline):
    with pytest.raises(MessageRejected, match="nesting"):
        check_limits(nested_multipart(MAX_DEPTH + 1).replace(b"\r\n", newline))
    check_limits(nested_multipart(MAX_DEPTH).replace(b"\r\n", newline))


def test_nesting_up_to_the_limit_is_parsed_and_one_more_is_rejected():
    assert parse_mail(nested_multipart(MAX_DEPTH)).text == "hello"
    with pytest.raises(MessageRejected):
        parse_mail(nested_multipart(MAX_DEPTH + 1))


def test_500_nested_rfc822_messages_are_rejected():
    with pytest.raises(MessageRejected, match="nesting"):
        check_limits(nested_messages(500))


def test_more_than_max_parts_is_rejected_before_parsing():
    parts = b"".join(b"--b\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i for i in range(MAX_PARTS + 1))
    raw = HEAD + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + parts + b"--b--\r\n"
    with pytest.raises(MessageRejected, match="parts"):
        check_limits(raw)
    with pytest.raises(MessageRejected):
        parse_mail(raw)


def test_a_header_block_over_the_limit_is_rejected():
    raw = HEAD + b"X-Filler: " + b"x" * MAX_HEADER_BYTES + b"\r\n\r\nbody\r\n"
    with pytest.raises(MessageRejected, match="header"):
        parse_mail(raw)


def test_a_large_body_is_not_mistaken_for_a_large_header_block():
    raw = HEAD + b"\r\n" + b"a long body line\r\n" * 80_000
    assert parse_mail(raw).text.startswith("a long body line")


def test_boundaries_that_look_alike_do_not_confuse_the_pre_scan():
    raw = HEAD + (b'Content-Type: multipart/mixed; boundary="ab"\r\n\r\n'
                  b'--ab\r\nContent-Type: multipart/alternative; boundary="abc"\r\n\r\n'
                  b'--abc\r\nContent-Type: text/plain\r\n\r\nplain\r\n'
                  b'--abc\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--abc--\r\n'
                  b'--ab\r\nContent-Type: application/pdf; name="a.pdf"\r\n\r\n%PDF\r\n--ab--\r\n')
    mail = parse_mail(raw)
    assert mail.text == "plain"
    assert [a.filename for a in mail.attachments] == ["a.pdf"]
