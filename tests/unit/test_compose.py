import email
import email.policy

import pytest

from core.errors import HeaderInjection
from core.mail.compose import OutgoingMail, build_mail, header_safe


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
