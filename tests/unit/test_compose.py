import email
import email.policy

import pytest

from core.errors import HeaderInjection
from core.mail.compose import OutgoingMail, _verify_headers, build_mail, header_safe, mailable


def _mail(**kw) -> OutgoingMail:
    base = dict(from_address="support@example.test", to="ann@example.org", subject="Hello", text="Body",
                message_id="pd.1.abc.def@example.test")
    base.update(kw)
    return OutgoingMail(**base)


def test_header_safe_folds_every_line_break_and_control_character():
    assert header_safe("a\r\nBcc: x@y\u2028z\x00") == "a Bcc: x@y z"


@pytest.mark.parametrize("field, value", [
    ("subject", "Hi\r\nBcc: victim@evil.example"),
    ("to_name", "Ann\nX-Evil: 1"),
    ("subject", "Hi\u2028Bcc: victim@evil.example"),
])
def test_outside_values_never_add_a_header(field, value):
    raw = build_mail(_mail(**{field: value}))
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert "Bcc" not in msg and "X-Evil" not in msg
    assert len(msg.get_all("Subject")) == 1


@pytest.mark.parametrize("to", ["ann@example.org\r\nBcc: x@y", "a@b, c@d", "no-at-sign", "<a@b>"])
def test_a_recipient_that_is_not_one_address_is_refused(to):
    with pytest.raises(HeaderInjection):
        build_mail(_mail(to=to))


def test_threading_headers_and_alternative_html():
    raw = build_mail(_mail(in_reply_to="m1@example.org", references=("m0@example.org", "m1@example.org"),
                           html="<p>Body</p>", reply_to="support+1.abcdefabcdef@example.test"))
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["In-Reply-To"] == "<m1@example.org>"
    assert msg["References"] == "<m0@example.org> <m1@example.org>"
    assert msg.get_body(("html",)).get_content().strip() == "<p>Body</p>"
    assert b"\r\n" in raw and b"\n\n" not in raw.replace(b"\r\n", b"")


def test_international_domain_is_written_in_idna_and_names_and_subjects_in_rfc2047():
    raw = build_mail(_mail(to="ann@bäckerei.example", to_name="Zoë Müller", subject="Grüße – Drucker brennt"))
    assert raw.isascii()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["To"].addresses[0].domain == "xn--bckerei-5wa.example"
    assert msg["To"].addresses[0].display_name == "Zoë Müller"
    assert msg["Subject"] == "Grüße – Drucker brennt"


def test_long_headers_are_folded_and_unfold_to_the_same_value():
    subject = "word " * 40 + "x" * 120
    refs = tuple(f"r{i}.{'a' * 30}@example.org" for i in range(8))
    raw = build_mail(_mail(subject=subject.strip(), references=refs, in_reply_to=refs[-1]))
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))
    assert max(len(line) for line in head.split(b"\r\n") if not line.startswith(b"Subject: word")) <= 130
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Subject"] == subject.strip()
    assert msg["References"].split() == [f"<{r}>" for r in refs]


@pytest.mark.parametrize("text", ["plain ascii\nsecond line", "Grüße aus Köln\n" + "x" * 200, "שלום " * 50])
def test_body_round_trips_whatever_its_encoding(text):
    raw = build_mail(_mail(text=text, html=f"<p>{text}</p>"))
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    def content(kind: str) -> str:  # what a reader sees: the CRLF of the wire as plain line ends
        return msg.get_body((kind,)).get_content().replace("\r\n", "\n").rstrip("\n")

    assert content("plain") == text
    assert content("html") == f"<p>{text}</p>"
    assert all(len(line) <= 78 for line in raw.split(b"\r\n"))


def test_quoted_printable_bodies_decode_to_the_text_with_short_crlf_lines():
    import random

    rng = random.Random(7)
    words = ["Grüße", "naïve", "a" * 90, "[…]", "end ", "tab\t", "=eq", "x" * 75, "ü" * 40, ".", "", " "]
    encoded = 0
    for _ in range(2000):  # binascii's encoder alone once wrote a 77-column line (a tab before the end)
        lines = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 14))) for _ in range(rng.randint(1, 6))]
        text = "\n".join(lines) + rng.choice(["", "\n", " ", "\t"]) + " Grüße"
        raw = build_mail(_mail(text=text, html=""))
        head, body = raw.split(b"\r\n\r\n", 1)
        if b"quoted-printable" not in head:  # mostly non-ASCII: base64
            continue
        encoded += 1
        assert all(len(line) <= 76 for line in body.split(b"\r\n"))
        assert b"\n" not in body.replace(b"\r\n", b"") and b"\r" not in body.replace(b"\r\n", b"")
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert msg.get_content().replace("\r\n", "\n") == text.replace("\r\n", "\n")
    assert encoded > 1000


@pytest.mark.parametrize("address, ok", [("ann@example.org", True), ("ann@bäckerei.example", True),
                                          ("jürgen@example.org", False), ('"a b"@example.org', False)])
def test_mailable_says_which_addresses_a_mail_can_be_written_to(address, ok):
    assert mailable(address) is ok


def test_attachments_ride_beside_the_alternative_body_byte_for_byte():
    from core.mail.compose import MailAttachment

    data = bytes(range(256)) * 40
    raw = build_mail(_mail(text="Grüße,\nsiehe Anhang.", html="<p>Grüße</p>",
                           attachments=(MailAttachment("bericht ü.pdf", "application/pdf", data),
                                        MailAttachment("a.txt", "weird type", b"plain\n"))))
    assert all(len(line) <= 998 for line in raw.split(b"\r\n")) and b"\n" not in raw.replace(b"\r\n", b"")
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/mixed" and not msg.defects
    assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == "Grüße,\nsiehe Anhang."
    assert msg.get_body(("html",)).get_content().strip() == "<p>Grüße</p>"
    files = list(msg.iter_attachments())
    assert [(f.get_filename(), f.get_content_type()) for f in files] == [
        ("bericht ü.pdf", "application/pdf"), ("a.txt", "application/octet-stream")]
    assert files[0].get_content() == data and files[1].get_content() == b"plain\n"


@pytest.mark.parametrize("head, names", [
    (b"Subject: a\r\n b\r\nTo: x@y", ["subject", "to"]),         # a folded value is one header
    (b"Subject: a\nBcc: x@y", ["subject", "bcc"]),                # a lone LF starts a header, as for the parser
    (b"Subject: a\rBcc: x@y", ["subject", "bcc"]),                # and so does a lone CR
    (b"Subject: a\r\nno colon here", ["subject", "<not a header>"]),
])
def test_header_check_reads_a_header_block_as_the_email_parser_does(head, names):
    parsed = email.message_from_bytes(head + b"\r\n\r\nbody", policy=email.policy.compat32)
    parser_names = [k.lower() for k in parsed.keys()]
    if "<not a header>" in names:  # the parser drops such a line (a defect); the check refuses it
        with pytest.raises(HeaderInjection):
            _verify_headers(head + b"\r\n\r\nbody", parser_names)
        return
    assert parser_names == names
    _verify_headers(head + b"\r\n\r\nbody", names)
    with pytest.raises(HeaderInjection):
        _verify_headers(head + b"\r\n\r\nbody", names[:1])
