"""MIME edge cases: folded boundaries, multipart without subtype or boundary, inline named text,
detached signatures, names for unnamed parts."""
from __future__ import annotations

import pytest

from core.mail.parse import SIGNATURE_TYPES, parse_mail


def _mixed(content_type: bytes, delimiter: bytes, crlf: bool = False) -> bytes:
    raw = (b"From: ann@example.org\nSubject: parts\nMIME-Version: 1.0\n" + content_type + b"\n\n"
           b"--" + delimiter + b"\nContent-Type: text/plain\n\nThe text.\n"
           b"--" + delimiter + b"\nContent-Type: application/pdf\nContent-Disposition: attachment; filename=a.pdf\n\n"
           b"%PDF-1.4\n--" + delimiter + b"--\n")
    return raw.replace(b"\n", b"\r\n") if crlf else raw


@pytest.mark.parametrize("crlf", [False, True])
def test_boundary_folded_inside_its_quotes_keeps_the_parts(crlf):
    header = b'Content-Type: multipart/mixed; boundary="----=_NextPart_000_0001_\n\t01D8C0A1.12345670"'
    mail = parse_mail(_mixed(header, b"----=_NextPart_000_0001_01D8C0A1.12345670", crlf))
    assert mail.text.strip() == "The text." and [a.filename for a in mail.attachments] == ["a.pdf"]


def test_folded_boundary_whose_delimiters_keep_the_space_is_read_the_rfc_way():
    header = b'Content-Type: multipart/mixed; boundary="part\n one"'
    mail = parse_mail(_mixed(header, b"part one"))
    assert [a.filename for a in mail.attachments] == ["a.pdf"]


@pytest.mark.parametrize("header", [b"Content-Type: multipart; boundary=zz", b"Content-Type: multipart/x-unheard-of; boundary=zz",
                                    b"Content-Type: multipart/mixed"])
def test_unknown_or_missing_subtype_and_missing_boundary_read_as_mixed(header):
    mail = parse_mail(_mixed(header, b"zz"))
    assert mail.text.strip() == "The text." and [a.filename for a in mail.attachments] == ["a.pdf"]


def test_inline_text_part_with_a_filename_is_shown_and_kept():
    raw = (b"From: ann@example.org\nContent-Type: multipart/mixed; boundary=zz\n\n--zz\nContent-Type: text/plain\n\n"
           b"See the log below.\n--zz\nContent-Type: text/plain; name=log.txt\nContent-Disposition: inline; "
           b"filename=log.txt\n\nERROR 42 at boot\n--zz--\n")
    mail = parse_mail(raw)
    assert "See the log below." in mail.text and "ERROR 42 at boot" in mail.text
    assert [(a.filename, a.inline) for a in mail.attachments] == [("log.txt", True)]


def test_attached_text_file_stays_an_attachment_only():
    raw = (b"From: ann@example.org\nContent-Type: multipart/mixed; boundary=zz\n\n--zz\nContent-Type: text/plain\n\n"
           b"Body.\n--zz\nContent-Type: text/plain; name=notes.txt\nContent-Disposition: attachment; filename=notes.txt\n\n"
           b"secret notes\n--zz--\n")
    mail = parse_mail(raw)
    assert "secret notes" not in mail.text and [a.filename for a in mail.attachments] == ["notes.txt"]


@pytest.mark.parametrize("sig_type, name", [(b"application/pgp-signature", "signature.asc"),
                                            (b"application/pkcs7-signature", "smime.p7s")])
def test_detached_signature_is_kept_with_its_type(sig_type, name):
    raw = (b"From: ann@example.org\nContent-Type: multipart/signed; protocol=\"" + sig_type + b"\"; boundary=s\n\n"
           b"--s\nContent-Type: text/plain\n\nSigned words.\n--s\nContent-Type: " + sig_type + b"; name=" +
           name.encode() + b"\n\nSIGNATURE\n--s--\n")
    mail = parse_mail(raw)
    assert mail.text.strip() == "Signed words."
    assert [(a.filename, a.content_type in SIGNATURE_TYPES) for a in mail.attachments] == [(name, True)]


def test_unnamed_parts_are_named_from_content_id_or_type():
    raw = (b"From: ann@example.org\nContent-Type: multipart/mixed; boundary=zz\n\n--zz\nContent-Type: text/plain\n\nHi\n"
           b"--zz\nContent-Type: image/jpeg\nContent-ID: <photo.jpg@01D8>\n\nJPEG\n"
           b"--zz\nContent-Type: image/jpeg\nContent-ID: <part1.abc@example.org>\n\nJPEG1\n"
           b"--zz\nContent-Type: image/jpeg\n\nJPEG2\n"
           b"--zz\nContent-Type: application/pdf\n\n%PDF\n"
           b"--zz\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; x\n--zz--\n")
    names = [a.filename for a in parse_mail(raw).attachments]
    assert names == ["photo.jpg", "image.jpg", "image-2.jpg", "document.pdf", "delivery-status.txt"]
