"""The whole conversation over real sockets: `postdesk serve` with its SMTP door, a real sink as the
smarthost. A customer writes and replies; the admin hears of the reply by mail and answers it from
their mail client; the customer receives that answer from support, in the admin's name."""
from __future__ import annotations

import time

from tests.e2e.mailbox import recipient, send_mail, text_of, wait_for_mail
from tests.support.server import PostdeskProcess, run_postdesk

ADMIN = "ada@example.test"
CUSTOMER = "erik@example.org"


def test_a_reply_by_mail_reaches_the_admin_and_the_admins_mail_answer_reaches_the_customer(db_url, tmp_path, sink):
    env = {"POSTDESK_DATABASE__URL": db_url, "POSTDESK_OUTBOUND__HOST": "127.0.0.1",
           "POSTDESK_OUTBOUND__PORT": str(sink.port), "POSTDESK_AI__PROVIDER": "offline",
           "POSTDESK_WEB__SECRET_KEY": "over-smtp-" + "k" * 20}
    with PostdeskProcess(tmp_path / "run", env, only="smtp,worker") as server:
        added = run_postdesk(["user", "add", "--email", ADMIN, "--role", "admin", "--name", "Ada Admin",
                              "--password-stdin"], server.workdir, server.env, stdin=b"a-long-admin-password\n")
        assert added.returncode == 0, added.stderr.decode()
        send_mail(server.smtp_port, sender=f"Erik <{CUSTOMER}>", subject="VPN drops every hour",
                  body="It drops at :00 each hour.", msgid="<vpn-1@example.org>")
        ack = wait_for_mail(sink, lambda m: recipient(m) == CUSTOMER, "acknowledgement")
        assert "> It drops at :00 each hour." in text_of(ack)

        send_mail(server.smtp_port, sender=f"Erik <{CUSTOMER}>", subject=f"Re: {ack['Subject']}",
                  body="Also at :30 now.\n\n> earlier text", msgid="<vpn-2@example.org>",
                  in_reply_to=ack["Message-ID"])
        told = wait_for_mail(sink, lambda m: recipient(m) == ADMIN and "Also at :30 now." in text_of(m),
                             "the admin's notice of the customer's reply")

        quoted = "\n".join("> " + line for line in text_of(told).splitlines())
        send_mail(server.smtp_port, sender=f"Ada Admin <{ADMIN}>", subject=f"Re: {told['Subject']}",
                  body=f"#note\nProbably the DHCP lease.\n\nOn Monday, support wrote:\n{quoted}",
                  msgid="<ada-0@example.test>", to=told["Reply-To"].addresses[0].addr_spec)
        send_mail(server.smtp_port, sender=f"Ada Admin <{ADMIN}>", subject=f"Re: {told['Subject']}",
                  body=f"Please renew the lease and tell me.\n\nOn Monday, support wrote:\n{quoted}",
                  msgid="<ada-1@example.test>", to=told["Reply-To"].addresses[0].addr_spec,
                  in_reply_to=told["Message-ID"])
        answer = wait_for_mail(sink, lambda m: recipient(m) == CUSTOMER and "renew the lease" in text_of(m),
                               "the admin's answer at the customer")
        time.sleep(2.5)  # a delivery run later: the note must not have gone anywhere

    sender = answer["From"].addresses[0]
    assert (sender.display_name, sender.addr_spec) == ("Ada Admin", "support@example.test")
    assert "Also at :30" not in text_of(answer) and "support wrote" not in text_of(answer)
    assert answer["In-Reply-To"] == "<vpn-2@example.org>"
    assert not [m for m in sink.mails() if "DHCP" in text_of(m)]
