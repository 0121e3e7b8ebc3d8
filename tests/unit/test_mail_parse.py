"""parse_mail on inline mails: names, bodies and attachments as a person would expect them."""
from __future__ import annotations

import base64
import random

import pytest

from core.mail.parse import parse_mail, quick_message_id

HEAD = "From: Ann Example <ann@example.org>\r\nTo: support@example.com\r\nSubject: help\r\nMIME-Version: 1.0\r\n"


def multipart(*parts: str, subtype: str = "mixed") -> bytes:
    body = "".join(f"--sep\r\n{part}\r\n" for part in parts)
    return (HEAD + f'Content-Type: multipart/{subtype}; boundary="sep"\r\n\r\n{body}--sep--\r\n').encode()


TEXT = "Content-Type: text/plain; charset=utf-8\r\n\r\nSee attached."


def test_rfc2231_filename_with_charset_and_continuations():
    part = ("Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
            "Content-Disposition: attachment;\r\n filename*0*=utf-8''%E6%96%B0%E3%81%97%E3%81%84;\r\n"
            " filename*1*=%20Rechnung%20M%C3%A4rz.pdf\r\n\r\n" + base64.b64encode(b"%PDF-1.4").decode())
    attachment = parse_mail(multipart(TEXT, part)).attachments[0]
    assert attachment.filename == "新しい Rechnung März.pdf"
    assert attachment.data == b"%PDF-1.4"


def test_rfc2047_encoded_filename_is_decoded():
    part = ('Content-Type: text/plain; name="=?iso-8859-1?Q?Bestellbest=E4tigung.txt?="\r\n'
            "Content-Disposition: attachment\r\n\r\nOrder 1")
    assert parse_mail(multipart(TEXT, part)).attachments[0].filename == "Bestellbestätigung.txt"


def test_a_filename_never_carries_a_path():
    part = 'Content-Type: application/octet-stream; name="C:\\\\Users\\\\ann\\\\..\\\\secret.doc"\r\n\r\nx'
    assert parse_mail(multipart(TEXT, part)).attachments[0].filename == "secret.doc"


def test_html_only_mail_gets_a_derived_text():
    raw = (HEAD + "Content-Type: text/html; charset=utf-8\r\n\r\n"
           "<html><head><style>p {color: red}</style></head><body><p>Hello <b>team</b>,</p>"
           "<table><tr><td>Order</td><td>4711</td></tr></table><img alt='Logo of ACME' src='cid:x'>"
           "<script>alert(1)</script></body></html>").encode()
    mail = parse_mail(raw)
    assert mail.html.startswith("<html>")
    assert mail.text == "Hello team,\n\nOrder 4711\n\nLogo of ACME"


def test_a_bin_attachment_keeps_its_exact_bytes():
    payload = bytes(range(256)) * 4
    part = ('Content-Type: application/octet-stream; name="firmware.bin"\r\n'
            "Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment\r\n\r\n"
            + base64.encodebytes(payload).decode())
    attachment = parse_mail(multipart(TEXT, part)).attachments[0]
    assert (attachment.filename, attachment.content_type, attachment.data) == (
        "firmware.bin", "application/octet-stream", payload)


def test_an_unnamed_binary_part_gets_a_name_from_its_type():
    part = "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC"
    attachment = parse_mail(multipart(TEXT, part)).attachments[0]
    assert (attachment.filename, attachment.data) == ("file.bin", b"\x00\x01\x02")


def test_text_calendar_is_kept_as_an_attachment_not_as_body():
    invite = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nSUMMARY:Call\r\nEND:VEVENT\r\nEND:VCALENDAR"
    part = f"Content-Type: text/calendar; method=REQUEST; charset=utf-8\r\n\r\n{invite}"
    mail = parse_mail(multipart(TEXT, part, subtype="alternative"))
    assert mail.text == "See attached."
    assert [(a.filename, a.content_type) for a in mail.attachments] == [("document.ics", "text/calendar")]
    assert mail.attachments[0].data.startswith(b"BEGIN:VCALENDAR")


def test_a_forwarded_message_is_kept_whole_and_named_after_its_subject():
    inner = "From: Bob <bob@example.net>\r\nSubject: Quarterly report\r\n\r\nNumbers inside."
    mail = parse_mail(multipart(TEXT, f"Content-Type: message/rfc822\r\n\r\n{inner}"))
    assert mail.text == "See attached."
    assert [(a.filename, a.content_type) for a in mail.attachments] == [("Quarterly report.eml", "message/rfc822")]
    assert b"Numbers inside." in mail.attachments[0].data


def test_outlook_inline_image_is_named_after_its_content_id():
    part = ("Content-Type: image/png\r\nContent-ID: <image001.png@01D9A2B3.C4D5E6F0>\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=")
    html = "Content-Type: text/html\r\n\r\n<p>Logo: <img src='cid:image001.png@01D9A2B3.C4D5E6F0'></p>"
    mail = parse_mail(multipart(html, part, subtype="related"))
    assert mail.text == "Logo:"
    image = mail.attachments[0]
    assert (image.filename, image.content_id) == ("image001.png", "image001.png@01D9A2B3.C4D5E6F0")


def test_uuencoded_file_in_a_text_body_becomes_an_attachment():
    raw = (HEAD + "Content-Type: text/plain\r\n\r\nHere is the file.\r\n\r\n"
           "begin 644 hello.txt\r\n,:&5L;&\\@=V]R;&0*\r\n`\r\nend\r\n\r\nBye.\r\n").encode()
    mail = parse_mail(raw)
    assert "begin 644" not in mail.text and "Bye." in mail.text
    assert [(a.filename, a.data) for a in mail.attachments] == [("hello.txt", b"hello world\n")]


def test_multipart_whose_boundary_never_comes_is_read_as_text():
    raw = (HEAD + 'Content-Type: multipart/mixed; boundary="never"\r\n'
           "Content-Transfer-Encoding: quoted-printable\r\n\r\n=E4=F6=FC ad asd\r\n").encode()
    mail = parse_mail(raw)
    assert mail.text == "äöü ad asd"
    assert mail.attachments == ()


def test_first_from_header_with_an_address_wins():
    raw = b"From: [??????]\r\nFrom: =?utf-8?B?6YO955C5?= <ghgbwum@example.cn>\r\n\r\nhi"
    mail = parse_mail(raw)
    assert (mail.from_name, mail.from_address) == ("都琹", "ghgbwum@example.cn")


def test_random_bytes_never_crash_the_parser_nor_leak_undecodable_text():
    rng = random.Random(20240305)
    pieces = [b"\r\n", b"--b\r\n", b"Content-Type: multipart/mixed; boundary=b\r\n", b"=?utf-8?q?=FF?=",
              b"Content-Transfer-Encoding: base64\r\n", b"\xff\xfe", b"begin 644 x\r\n", b"Subject: ", b": ",
              b"Content-Type: text/plain; charset=\xff\r\n", b"Content-Type: message/rfc822\r\n"]
    for _ in range(300):
        raw = b"".join(rng.choice(pieces) + bytes(rng.randrange(256) for _ in range(rng.randrange(8)))
                       for _ in range(rng.randrange(1, 60)))
        mail = parse_mail(raw)
        texts = [mail.text, mail.html, mail.subject, mail.from_name, mail.from_address, *mail.to,
                 *(value for header in mail.headers for value in header),
                 *(f"{a.filename}{a.content_type}{a.content_id}" for a in mail.attachments)]
        for text in texts:
            text.encode("utf-8")  # no lone surrogates: the database would refuse them


@pytest.mark.parametrize("raw, expected", [
    (b"Subject: x\nMessage-ID:\n <folded@example.org>\n\nbody", "folded@example.org"),
    (b"Message-Id: <a@b> (a comment)\r\nSubject: y\r\n\r\n", "a@b"),
    (b"From sender Mon Jan  1 00:00:00 2024\nMessage-ID: <mbox@example.org>\n\n", "mbox@example.org"),
    (b"Subject: no id\n\nMessage-ID: <in-the-body@example.org>\n", ""),
    (b"X-A: 1\nnot a header line\nMessage-ID: <after-the-headers@example.org>\n\n", "after-the-headers@example.org"),
    (b"X-A: 1\nnot a header line\nX-B: 2\n\nMessage-ID: <in-the-body@example.org>\n", ""),
    (b"Message-ID: <first@example.org>\nMessage-ID: <second@example.org>\n\n", "first@example.org"),
    (b"", ""),
])
def test_quick_message_id_reads_the_header_block_as_the_parser_does(raw, expected):
    assert quick_message_id(raw) == expected == (parse_mail(raw).message_id if raw else "")
