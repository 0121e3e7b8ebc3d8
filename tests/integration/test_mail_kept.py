"""Every mail kept, over a real SMTP socket on both databases: long lines accepted byte for byte,
the same mail twice stored once, a different mail reusing a Message-ID stored as its own,
automatic mail recognised (never a ticket, never an answer), joined to its ticket or kept for
admins, complaints and hard bounces making the recipient do-not-mail."""
from __future__ import annotations

import smtplib
import time

from sqlalchemy import func, select

from core.db import staged_count
from core.models import AutomaticMail, Contact, Event, Message, Outbox, RawMail, Ticket
from tests.integration.test_agent_pages import HTML, app, post_form, signed_in  # noqa: F401 (fixture)
from tests.support.automatic_mail import arf_report, hotmail_complaint, ses_notification, vacation_reply
from tests.support.server import SmtpDoor


def send(port: int, raw: bytes, sender: str = "ann@example.org") -> int:
    """One SMTP transaction; the DATA reply code."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.ehlo()
        smtp.mail(sender)
        smtp.rcpt("support@example.test")
        return smtp.data(raw)[0]


def crlf(raw: bytes) -> bytes:
    """The bytes as SMTP carries them (smtplib writes every line end as CRLF)."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def settle(desk, timeout: float = 20.0) -> None:
    """Wait until the intake worker has processed every spooled mail (on SQLite, including the mails
    the SMTP door has answered but not yet moved from its staging file)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        staged = staged_count(desk.settings.database.url)  # first: a mail leaves it only once in raw_mail
        with desk.sessions() as s:
            if not staged and not s.scalar(select(func.count(RawMail.id)).where(RawMail.state == "pending")):
                return
        time.sleep(0.1)
    raise AssertionError("the spool did not drain")


def count(desk, column, *where) -> int:
    with desk.sessions() as s:
        return s.scalar(select(func.count(column)).where(*where))


def person_mail(n: int, body: str = "My printer is broken.", msgid: str | None = None, sender: str = "ann@example.org",
                extra: str = "") -> bytes:
    return (f"From: Ann <{sender}>\r\nTo: support@example.test\r\nSubject: Printer {n}\r\n"
            f"Message-ID: <{msgid or f'p{n}@example.org'}>\r\nDate: Wed, 02 Dec 2026 07:00:00 +0000\r\n{extra}\r\n"
            f"{body}\r\n").encode()


def our_message_id(desk, ticket_id: int) -> str:
    with desk.sessions() as s:
        return s.scalar(select(Outbox.message_id).where(Outbox.ticket_id == ticket_id).order_by(Outbox.id).limit(1))


def test_a_line_far_past_1000_octets_is_accepted_and_kept_byte_for_byte(desk):
    html = "<p>" + "x" * 20_000 + "</p>"
    raw = (b"From: Ann <ann@example.org>\r\nTo: support@example.test\r\nSubject: Long line\r\n"
           b"Message-ID: <long@example.org>\r\nContent-Type: text/html\r\n\r\n" + html.encode() + b"\r\n")
    with SmtpDoor(desk) as door:
        assert send(door.port, raw) == 250
        settle(desk)
    with desk.sessions() as s:
        kept = s.scalar(select(RawMail.raw))
        body = s.scalar(select(Message.body_html))
    assert kept == raw and "x" * 20_000 in body


def test_the_same_mail_twice_is_one_message_a_reused_id_is_two(desk):
    first = person_mail(1, msgid="same@example.org")
    again = b"Received: from relay.example.net by mx.example.test; Wed, 02 Dec 2026 07:00:09 +0000\r\n" + first
    other = person_mail(2, body="A different question entirely.", msgid="same@example.org", sender="bob@example.org")
    with SmtpDoor(desk) as door:
        for raw in (first, again, first.replace(b"\r\n", b"\n"), other):
            assert send(door.port, raw) == 250
        settle(desk)
    with desk.sessions() as s:
        rows = s.execute(select(RawMail.id, RawMail.reuses_message_id_of).order_by(RawMail.id)).all()
        messages = s.execute(select(Message.message_id, Message.from_address).where(Message.direction == "in")
                             .order_by(Message.id)).all()
    assert len(rows) == 2 and rows[1].reuses_message_id_of == rows[0].id
    # both keep the mail's own Message-ID: the reuse is noted on the spool row, not written into the field
    assert messages == [("same@example.org", "ann@example.org"), ("same@example.org", "bob@example.org")]


def test_every_distinct_input_ends_as_a_message_a_kept_automatic_mail_or_quarantined(desk):
    inputs = [person_mail(1), person_mail(2, msgid="reused@example.org"),
              person_mail(3, body="Other text", msgid="reused@example.org"),
              arf_report("pd.999.aaaa.bbbb@example.test", "carl@example.org"),
              hotmail_complaint("nowhere@example.net", "erin@hotmail.com"),
              ses_notification("Bounce", "nowhere@example.net", "gone@example.org"),
              vacation_reply("Automatic reply: Printer", msgid="<ooo@example.org>"),
              b"\x00\x01 not a mail at all \xff\r\n"]
    inputs = [crlf(raw) for raw in inputs]
    with SmtpDoor(desk) as door:
        for raw in inputs + inputs[:3]:  # and the first three again: nothing doubled
            assert send(door.port, raw) == 250
        settle(desk)
    with desk.sessions() as s:
        rows = s.execute(select(RawMail.id, RawMail.state, RawMail.raw)).all()
        with_message = set(s.scalars(select(Message.raw_mail_id)))
        automatic = set(s.scalars(select(AutomaticMail.raw_mail_id)))
    assert sorted(r.raw for r in rows) == sorted(inputs)  # every input kept once, its bytes as sent
    for row in rows:
        assert row.id in with_message or row.id in automatic or row.state == "quarantined", row
    assert len(automatic) == 4 and count(desk, Ticket.id) == 4  # three people and the junk line
    assert count(desk, Contact.id, Contact.undeliverable.is_(True)) == 3  # carl, erin, gone


def test_a_complaint_about_our_acknowledgement_joins_the_ticket_and_stops_mail(desk):
    with SmtpDoor(desk) as door:
        send(door.port, person_mail(1, sender="carl@example.org"), sender="carl@example.org")
        settle(desk)
        with desk.sessions() as s:
            ticket_id = s.scalar(select(Ticket.id))
        ack = our_message_id(desk, ticket_id)
        send(door.port, arf_report(ack, "carl@example.org"), sender="fbl@fbl.example.net")
        send(door.port, vacation_reply(f"Abwesenheitsnotiz: [#{ticket_id}] Printer", sender="carl@example.org",
                                       in_reply_to=ack), sender="carl@example.org")
        settle(desk)
    with desk.sessions() as s:
        assert s.scalar(select(func.count(Ticket.id))) == 1
        assert s.scalar(select(Contact.undeliverable).where(Contact.email == "carl@example.org"))
        events = s.execute(select(Event.field, Event.new_value).where(Event.kind == "automatic")
                           .order_by(Event.id)).all()
        automatic = s.execute(select(Message.automatic, Message.matched_by).where(Message.direction == "in")
                              .order_by(Message.id)).all()
        outbox = s.scalar(select(func.count(Outbox.id)))
    assert events == [("feedback-report", "feedback report (ARF); carl@example.org"),
                      ("auto-reply", "auto-reply subject")]
    assert automatic == [(False, "new"), (True, "feedback-report"), (True, "auto-reply")]
    assert outbox == 1  # the acknowledgement of the first mail, nothing after


def test_ses_bounce_marks_the_recipient_undeliverable_and_joins_the_ticket(desk):
    with SmtpDoor(desk) as door:
        send(door.port, person_mail(1, sender="gone@example.org"), sender="gone@example.org")
        settle(desk)
        with desk.sessions() as s:
            ticket_id = s.scalar(select(Ticket.id))
        send(door.port, ses_notification("Bounce", our_message_id(desk, ticket_id), "gone@example.org",
                                         sns_envelope=True), sender="no-reply@sns.amazonaws.com")
        settle(desk)
    with desk.sessions() as s:
        assert s.scalar(select(Contact.undeliverable).where(Contact.email == "gone@example.org"))
        assert s.scalar(select(AutomaticMail.ticket_id)) == ticket_id
        assert s.scalar(select(func.count(Ticket.id))) == 1


def test_automatic_mail_about_no_ticket_is_listed_for_admins_with_its_bytes(app, desk):  # noqa: F811
    report = crlf(arf_report("unknown@example.net", "dora@example.org"))
    with SmtpDoor(desk) as door:
        send(door.port, report, sender="fbl@fbl.example.net")
        settle(desk)
    admin = signed_in(app, desk, "boss@example.test", "admin")
    listing = admin.get("/admin/automatic?unmatched=yes", headers=HTML).text
    assert "feedback-report" in listing and "dora@example.org" in listing
    with desk.sessions() as s:
        raw_id = s.scalar(select(AutomaticMail.raw_mail_id))
    download = admin.get(f"/admin/mail/{raw_id}/raw")
    assert download.status_code == 200 and download.content == report
    assert download.headers["content-type"].startswith("message/rfc822")
    assert admin.get("/admin/mail/999999/raw").status_code == 404


def test_a_signed_mail_shows_as_signed_not_with_its_signature_as_a_file(app, desk):  # noqa: F811
    raw = crlf(b"From: Ann <ann@example.org>\nTo: support@example.test\nSubject: Signed\nMessage-ID: <sig@example.org>\n"
               b"MIME-Version: 1.0\nContent-Type: multipart/signed; protocol=\"application/pgp-signature\"; "
               b"micalg=pgp-sha256; boundary=s\n\n--s\nContent-Type: text/plain\n\nPlease check my invoice.\n"
               b"--s\nContent-Type: application/pgp-signature; name=signature.asc\n\n-----BEGIN PGP SIGNATURE-----\n"
               b"iQEzBAEBCAAdFiEE\n-----END PGP SIGNATURE-----\n--s--\n")
    with SmtpDoor(desk) as door:
        assert send(door.port, raw) == 250
        settle(desk)
    with desk.sessions() as s:
        ticket_id = s.scalar(select(Ticket.id))
    agent = signed_in(app, desk, "bob@example.test", "agent")
    page = agent.get(f"/agent/tickets/{ticket_id}", headers=HTML).text
    assert "Please check my invoice." in page and "Signed (PGP" in page
    assert "signature.asc" not in page  # kept (below), but not offered as the customer's file
    with desk.sessions() as s:
        from core.models import Attachment
        assert s.scalar(select(Attachment.filename)) == "signature.asc"


def test_a_huge_to_header_makes_every_customer_a_follower_once(desk):
    import dataclasses

    from core.accounts import add_user
    from core.models import Follower
    from ingest import spool, worker

    desk = dataclasses.replace(desk, settings=dataclasses.replace(
        desk.settings, intake=dataclasses.replace(desk.settings.intake, max_followers=1600)))
    with desk.sessions() as s, s.begin():
        add_user(s, "agent7@example.test", "agent", name="Agent")
    people = [f"person{i}@example{i % 7}.org" for i in range(1500)]
    to = ",\r\n ".join(["support@example.test", "agent7@example.test", "ann@example.org", *people, people[0]])
    raw = (f"From: Ann <ann@example.org>\r\nTo: {to}\r\nSubject: Everyone\r\nMessage-ID: <all@example.org>\r\n\r\n"
           f"Hello all.\r\n").encode()
    stored = spool.put(desk.sessions, raw, "smtp", "ann@example.org", ("support@example.test",))
    first = worker.process_one(desk.sessions, desk.settings, stored.id).received
    again = raw.replace(b"<all@example.org>", b"<all2@example.org>").replace(b"Subject: Everyone",
                                                                            b"Subject: Re: [#%d] Everyone" % first.ticket_id)
    stored = spool.put(desk.sessions, again, "smtp", "ann@example.org", ("support@example.test",))
    assert worker.process_one(desk.sessions, desk.settings, stored.id).received.ticket_id == first.ticket_id
    with desk.sessions() as s:
        followers = set(s.scalars(select(Contact.email).join(Follower, Follower.contact_id == Contact.id)
                                  .where(Follower.ticket_id == first.ticket_id)))
    assert followers == set(people)  # not the requester, not staff, not our address; each once


def test_past_the_follower_limit_the_rest_of_a_huge_to_is_noted(desk):
    from core.models import Follower
    from ingest import spool, worker

    people = [f"person{i}@example.org" for i in range(300)]
    raw = (f"From: Ann <ann@example.org>\r\nTo: support@example.test, {', '.join(people)}\r\nSubject: All\r\n"
           f"Message-ID: <all@example.org>\r\n\r\nHello all.\r\n").encode()
    stored = spool.put(desk.sessions, raw, "smtp", "ann@example.org", ("support@example.test",))
    ticket_id = worker.process_one(desk.sessions, desk.settings, stored.id).received.ticket_id
    limit = desk.settings.intake.max_followers
    with desk.sessions() as s:
        followers = set(s.scalars(select(Contact.email).join(Follower, Follower.contact_id == Contact.id)))
        noted = list(s.scalars(select(Event.new_value).where(Event.ticket_id == ticket_id,
                                                             Event.kind == "follower-limit").order_by(Event.id)))
    assert followers == set(people[:limit])
    assert noted == [f"{p} not added: {limit} followers already" for p in people[limit:]]


def test_a_ticket_opened_by_list_mail_is_assigned_without_mailing_the_agent(desk):
    from core.accounts import add_user
    from core.ai.provider import Triage, TriageOutcome
    from core.ai.triage import apply_triage
    from ingest import spool, worker

    with desk.sessions() as s, s.begin():
        add_user(s, "admin1@example.test", "admin", name="Admin")
    tickets = []
    for n, extra in ((1, "Precedence: bulk\r\n"), (2, "")):
        stored = spool.put(desk.sessions, person_mail(n, extra=extra), "smtp", "ann@example.org",
                           ("support@example.test",))
        tickets.append(worker.process_one(desk.sessions, desk.settings, stored.id).received.ticket_id)
    outcome = TriageOutcome(Triage(summary="Printer broken.", category="technical", priority="medium", skills=[],
                                    notes=[]),
                            "offline")
    for ticket_id in tickets:
        with desk.sessions() as s, s.begin():
            apply_triage(s, desk.settings, ticket_id, outcome)
    with desk.sessions() as s:
        assigned = s.execute(select(Ticket.id, Ticket.assignee_id).order_by(Ticket.id)).all()
        mailed = list(s.scalars(select(Outbox.ticket_id).where(Outbox.purpose == "assignment")))
    assert all(assignee for _, assignee in assigned)
    assert mailed == [tickets[1]]  # only the person's ticket mails its assignee


def test_an_admin_turns_a_misjudged_automatic_mail_into_a_ticket(app, desk):  # noqa: F811
    from ingest import worker

    misjudged = crlf(vacation_reply("Out of office: who covers for you? My order is stuck", sender="gus@example.org",
                                    msgid="<gus-1@example.org>"))
    with SmtpDoor(desk) as door:
        send(door.port, misjudged, sender="gus@example.org")
        settle(desk)
    assert count(desk, Ticket.id) == 0
    with desk.sessions() as s:
        raw_id = s.scalar(select(AutomaticMail.raw_mail_id))
    admin = signed_in(app, desk, "boss@example.test", "admin")
    done = post_form(admin, "/admin/automatic", f"/admin/automatic/{raw_id}/open-ticket", {})
    assert done.status_code == 303 and done.headers["location"].endswith("done=as-person")
    worker.drain(desk.sessions, desk.settings)
    with desk.sessions() as s:
        ticket = s.scalar(select(Ticket))
        acks = list(s.scalars(select(Outbox.rcpt_to).where(Outbox.purpose == "acknowledgement")))
        assert s.scalar(select(func.count(AutomaticMail.id))) == 0
        assert s.scalar(select(RawMail.state).where(RawMail.id == raw_id)) == "done"
    assert ticket.subject.startswith("Out of office") and acks == ["gus@example.org"]
    again = post_form(admin, "/admin/automatic", f"/admin/automatic/{raw_id}/open-ticket", {})
    assert again.headers["location"].endswith("done=none")  # only once, and never for a mail on a ticket


def test_only_data_lines_may_be_long_a_long_command_line_is_refused(desk):
    with SmtpDoor(desk, with_worker=False) as door:
        with smtplib.SMTP("127.0.0.1", door.port, timeout=10) as smtp:
            smtp.ehlo()
            code, message = smtp.docmd("NOOP", "x" * 5000)
            assert smtp.noop()[0] == 250  # the session goes on
    assert code == 500 and b"too long" in message
