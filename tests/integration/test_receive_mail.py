"""core.tickets.receive_mail on both databases: threading rules, followers, reopening, no
acknowledgement for automatic mail, the per-sender automatic-reply limit."""
from __future__ import annotations

import dataclasses
import itertools

from sqlalchemy import func, select

from core.accounts import add_user
from core.mail import tokens
from core.models import Event, Follower, Outbox, Ticket
from ingest import spool, worker

_ids = itertools.count(1)


def mail(subject="Help", body="Something broke.", sender="ann@example.org", msgid=None, headers="",
         to="support@example.test", cc="") -> bytes:
    msgid = msgid or f"<m{next(_ids)}@example.org>"
    cc_line = f"Cc: {cc}\n" if cc else ""
    return (f"From: {sender}\nTo: {to}\n{cc_line}Subject: {subject}\nMessage-ID: {msgid}\n{headers}"
            f"\n{body}\n").encode()


def receive(desk, raw: bytes, envelope_to=("support@example.test",), envelope_from=None):
    """Through the spool and the worker; the envelope sender is the From unless given (a mail
    whose envelope domain differs from its From, unauthenticated, is not trusted)."""
    if envelope_from is None:
        envelope_from = raw.split(b"From: ", 1)[1].split(b"\n", 1)[0].decode().strip("<> ")
    stored = spool.put(desk.sessions, raw, "smtp", envelope_from, envelope_to)
    outcome = worker.process_one(desk.sessions, desk.settings, stored.id)
    assert outcome.received is not None, outcome.error
    return outcome.received


def outbox_count(desk) -> int:
    with desk.sessions() as s:
        return s.scalar(select(func.count(Outbox.id)))


def test_reply_to_our_signed_message_id_threads(desk):
    first = receive(desk, mail())
    our_id = tokens.make_message_id(desk.settings.web.secret_key, first.ticket_id, "example.test")
    reply = receive(desk, mail("Re: Help", headers=f"In-Reply-To: <{our_id}>\n"))
    assert (reply.ticket_id, reply.matched_by, reply.created) == (first.ticket_id, "in-reply-to", False)


def test_forged_message_id_of_ours_is_not_trusted(desk):
    first = receive(desk, mail())
    forged = f"pd.{first.ticket_id}.0123456789abcdef.aaaaaaaaaaaaaaaa@example.test"
    reply = receive(desk, mail("Re: Help", sender="mallory@example.org", headers=f"In-Reply-To: <{forged}>\n"),
                    envelope_from="mallory@example.org")
    assert reply.created and reply.ticket_id != first.ticket_id


def test_references_to_the_customers_own_mail_threads(desk):
    first = receive(desk, mail(msgid="<orig@example.org>"))
    reply = receive(desk, mail("Re: Help", headers="References: <x@y> <orig@example.org>\n"))
    assert (reply.ticket_id, reply.matched_by) == (first.ticket_id, "references")


def test_signed_reply_address_threads_even_without_headers(desk):
    first = receive(desk, mail())
    addr = tokens.sign_reply_address(desk.settings.web.secret_key, "support@example.test", first.ticket_id,
                                     "ann@example.org")
    reply = receive(desk, mail("totally new subject", to=addr), envelope_to=(addr,))
    assert (reply.ticket_id, reply.matched_by) == (first.ticket_id, "reply-address")


def test_stranger_with_ticket_tag_opens_new_ticket(desk):
    first = receive(desk, mail())
    stranger = receive(desk, mail(f"Re: [#{first.ticket_id}] Help", sender="mallory@example.org"),
                       envelope_from="mallory@example.org")
    assert stranger.created and stranger.ticket_id != first.ticket_id and stranger.matched_by == "new"
    with desk.sessions() as s:
        original = s.get(Ticket, first.ticket_id)
        assert len(original.messages) == 1
        mention = s.scalar(select(Event).where(Event.ticket_id == stranger.ticket_id, Event.kind == "mentions"))
        assert mention.new_value == str(first.ticket_id)


def test_requester_and_cc_follower_may_use_the_tag(desk):
    first = receive(desk, mail(cc="Bob <bob@example.org>"))
    with desk.sessions() as s:
        followers = s.scalars(select(Follower).where(Follower.ticket_id == first.ticket_id)).all()
        assert [f.contact.email for f in followers] == ["bob@example.org"]
    by_requester = receive(desk, mail(f"Re: [#{first.ticket_id}] Help"))
    by_follower = receive(desk, mail(f"Re: [#{first.ticket_id}] Help", sender="bob@example.org"),
                          envelope_from="bob@example.org")
    assert by_requester.matched_by == by_follower.matched_by == "subject-tag"
    assert by_follower.ticket_id == first.ticket_id


def test_agent_may_use_the_tag(desk):
    first = receive(desk, mail())
    with desk.sessions() as s, s.begin():
        add_user(s, "agent@example.test", "agent")
    by_agent = receive(desk, mail(f"[#{first.ticket_id}] note", sender="agent@example.test"))
    assert by_agent.ticket_id == first.ticket_id


def test_customer_reply_reopens_a_closed_ticket_but_an_auto_reply_does_not(desk):
    first = receive(desk, mail())
    with desk.sessions() as s, s.begin():
        s.get(Ticket, first.ticket_id).status = "resolved"
    ooo = receive(desk, mail(f"Re: [#{first.ticket_id}] Help", body="I am out of office.",
                             headers="Auto-Submitted: auto-replied\n"))
    assert ooo.automatic and ooo.ticket_id == first.ticket_id
    with desk.sessions() as s:
        assert s.get(Ticket, first.ticket_id).status == "resolved"
    receive(desk, mail(f"Re: [#{first.ticket_id}] Help", body="It broke again."))
    with desk.sessions() as s:
        assert s.get(Ticket, first.ticket_id).status == "in_progress"


def test_list_and_bulk_mail_opens_a_ticket_but_is_never_acknowledged(desk):
    for headers, sender in [("Auto-Submitted: auto-generated\n", "ann@example.org"),
                            ("Precedence: bulk\n", "ann@example.org"),
                            ("List-Id: <news.example.org>\n", "ann@example.org"),
                            ("", "noreply@example.org")]:
        got = receive(desk, mail(headers=headers, sender=sender), envelope_from=sender)
        assert got.created and got.automatic and not got.acknowledged, (headers, sender)
    got = receive(desk, mail(), envelope_from="")  # a null return path alone: software, about who knows what
    assert got.created and got.automatic == "null return path" and not got.acknowledged
    assert outbox_count(desk) == 0


def test_auto_replies_and_system_mail_open_no_ticket_and_are_kept_for_admins(desk):
    from core.models import AutomaticMail, RawMail

    for headers, sender in [("Auto-Submitted: auto-replied\n", "ann@example.org"),
                            ("", "mailer-daemon@example.org"),
                            ("", "support@example.test")]:
        got = receive(desk, mail(headers=headers, sender=sender), envelope_from=sender)
        assert got.ticket_id is None and got.automatic and not got.acknowledged, (headers, sender)
    with desk.sessions() as s:
        assert s.scalar(select(func.count(Ticket.id))) == 0
        kept = s.execute(select(AutomaticMail.kind, AutomaticMail.evidence, RawMail.state, RawMail.raw)
                         .join(RawMail, RawMail.id == AutomaticMail.raw_mail_id).order_by(AutomaticMail.id)).all()
    assert [(k, e) for k, e, _, _ in kept] == [("auto-reply", "auto-submitted: auto-replied"),
                                               ("auto-reply", "robot sender"),
                                               ("our-own-mail", "sent from our own address")]
    assert all(state == "done" and raw.startswith(b"From: ") for _, _, state, raw in kept)
    assert outbox_count(desk) == 0


def test_our_own_mail_coming_back_is_not_answered(desk):
    loop = tokens.loop_token(desk.settings.web.secret_key, "example.test")
    got = receive(desk, mail(headers=f"X-Postdesk-Loop: {loop}\n"))
    assert got.automatic and outbox_count(desk) == 0


def test_automatic_replies_per_sender_are_limited(desk):
    desk.settings = dataclasses.replace(desk.settings, intake=dataclasses.replace(
        desk.settings.intake, autoreply_limit=2))
    results = [receive(desk, mail(f"Problem {i}")) for i in range(4)]
    assert [r.acknowledged for r in results] == [True, True, False, False]
    assert receive(desk, mail("other", sender="bob@example.org"), envelope_from="bob@example.org").acknowledged


def test_mail_with_several_support_addresses_makes_one_ticket(desk):
    desk.settings = dataclasses.replace(desk.settings, smtp=dataclasses.replace(
        desk.settings.smtp, addresses=("support@example.test", "billing@example.test")))
    raw = mail(to="support@example.test, billing@example.test", cc="support@example.test")
    receive(desk, raw, envelope_to=("support@example.test", "billing@example.test"))
    stored = spool.put(desk.sessions, raw, "smtp", "ann@example.org", ("billing@example.test",))
    assert stored.duplicate
    with desk.sessions() as s:
        assert s.scalar(select(func.count(Ticket.id))) == 1
        assert s.scalar(select(func.count(Follower.ticket_id))) == 0


def _dsn(original_msgid: str, failed: str) -> bytes:
    return (f"From: MAILER-DAEMON@mx.example.org\nTo: support@example.test\nSubject: Undelivered Mail Returned\n"
            f"Message-ID: <dsn{next(_ids)}@mx.example.org>\nAuto-Submitted: auto-replied\nMIME-Version: 1.0\n"
            f"Content-Type: multipart/report; report-type=delivery-status; boundary=B\n\n"
            f"--B\nContent-Type: text/plain\n\nYour message could not be delivered.\n\n"
            f"--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n\n"
            f"Final-Recipient: rfc822; {failed}\nAction: failed\nStatus: 5.1.1\n\n"
            f"--B\nContent-Type: text/rfc822-headers\n\nFrom: support@example.test\nTo: {failed}\n"
            f"Message-ID: <{original_msgid}>\nSubject: [#1] Help\n\n--B--\n").encode()


def test_bounce_is_linked_to_its_ticket_and_marks_the_address_undeliverable(desk):
    first = receive(desk, mail())
    with desk.sessions() as s:
        ack = s.scalar(select(Outbox))
    got = receive(desk, _dsn(ack.message_id, "ann@example.org"), envelope_from="")
    assert (got.ticket_id, got.matched_by, got.created, got.acknowledged) == (first.ticket_id, "bounce", False, False)
    with desk.sessions() as s:
        assert s.scalar(select(func.count(Ticket.id))) == 1
        assert s.scalar(select(Event).where(Event.kind == "bounce")).new_value == "ann@example.org"
        from core.models import Contact
        assert s.scalar(select(Contact).where(Contact.email == "ann@example.org")).undeliverable
    assert not receive(desk, mail("again")).acknowledged  # no more mail to the dead address


def test_bounce_of_unknown_mail_opens_no_ticket(desk):
    got = receive(desk, _dsn("someone-else@example.org", "zed@example.org"), envelope_from="")
    assert got.ticket_id is None and got.matched_by == "bounce"
    with desk.sessions() as s:
        assert s.scalar(select(func.count(Ticket.id))) == 0


def test_reply_long_after_closing_opens_a_new_ticket_when_configured(desk):
    from datetime import timedelta

    from core.models import utcnow

    desk.settings = dataclasses.replace(desk.settings, intake=dataclasses.replace(desk.settings.intake, reopen_days=30))
    first = receive(desk, mail(msgid="<old@example.org>"))
    with desk.sessions() as s, s.begin():
        t = s.get(Ticket, first.ticket_id)
        t.status, t.updated_at = "closed", utcnow() - timedelta(days=31)
    late = receive(desk, mail("Re: Help", "It is back.", headers="In-Reply-To: <old@example.org>\n"))
    assert late.created and late.ticket_id != first.ticket_id
    with desk.sessions() as s:
        assert s.get(Ticket, first.ticket_id).status == "closed"
        mention = s.scalar(select(Event).where(Event.ticket_id == late.ticket_id, Event.kind == "mentions"))
        assert mention.new_value == str(first.ticket_id)
        s.get(Ticket, first.ticket_id).updated_at = utcnow() - timedelta(days=2)
        s.commit()
    recent = receive(desk, mail("Re: Help", "Again.", headers="In-Reply-To: <old@example.org>\n"))
    assert recent.ticket_id == first.ticket_id  # closed only two days ago: reopened


def test_a_sender_we_cannot_write_to_still_gets_a_ticket_and_no_acknowledgement(desk):
    # An internationalised local part (RFC 6532) cannot be addressed without SMTPUTF8, which
    # we do not send: the mail is stored all the same, never quarantined over its answer.
    got = receive(desk, mail(sender="jürgen@example.org"), envelope_from="jürgen@example.org")
    assert got.created and not got.acknowledged
    assert outbox_count(desk) == 0
    with desk.sessions() as s:
        assert s.get(Ticket, got.ticket_id).requester.email == "jürgen@example.org"


def test_a_reply_spooled_before_the_mail_it_answers_still_lands_on_its_ticket(desk):
    # An IMAP folder read out of order, or two workers each storing one of them at once: the
    # reply waits in the spool until its original is stored, then threads onto its ticket.
    original = mail("Printer on fire", msgid="<orig-late@example.org>")
    reply = mail("Re: Printer on fire", "Still smoking.", msgid="<reply-early@example.org>",
                 headers="In-Reply-To: <orig-late@example.org>\nReferences: <orig-late@example.org>\n")
    first = spool.put(desk.sessions, reply, "imap", "ann@example.org", ("support@example.test",))
    spool.put(desk.sessions, original, "imap", "ann@example.org", ("support@example.test",))
    outcomes = worker.drain(desk.sessions, desk.settings, batch=1)
    outcomes += worker.drain(desk.sessions, desk.settings, batch=1)
    assert [o.raw_id for o in outcomes if o.received and o.received.held_for] == [first.id]
    assert [o.raw_id for o in outcomes if o.received and not o.received.held_for] == [first.id + 1, first.id]
    with desk.sessions() as s:
        assert s.scalar(select(func.count(Ticket.id))) == 1
        from core.models import Message, RawMail
        stored = {m.message_id: m.matched_by for m in s.scalars(select(Message).where(Message.direction == "in"))}
        assert stored == {"orig-late@example.org": "new", "reply-early@example.org": "in-reply-to"}
        assert s.get(RawMail, first.id).attempts == 1  # waiting is not a failed attempt


# ---- sender trust (forged From) -------------------------------------------------------------------

def test_forged_from_of_the_requester_opens_a_linked_ticket_and_adds_no_follower(desk):
    first = receive(desk, mail(msgid="<alice-1@example.org>"))
    forged = receive(desk, mail(f"Re: [#{first.ticket_id}] Help", cc="mallory@evil.test",
                                headers="In-Reply-To: <alice-1@example.org>\n"), envelope_from="mallory@evil.test")
    assert forged.created and forged.ticket_id != first.ticket_id
    with desk.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Follower)) == 0
        why = s.scalar(select(Event.new_value).where(Event.ticket_id == forged.ticket_id, Event.kind == "not-joined"))
        assert "envelope sender's domain evil.test differs" in why
        assert len(s.get(Ticket, first.ticket_id).messages) == 1


def test_forged_from_of_an_agent_cannot_append_to_a_ticket(desk):
    first = receive(desk, mail())
    with desk.sessions() as s, s.begin():
        add_user(s, "agent@example.test", "agent")
    forged = receive(desk, mail(f"Re: [#{first.ticket_id}] Help", sender="agent@example.test"),
                     envelope_from="mallory@evil.test")
    assert forged.created and forged.ticket_id != first.ticket_id


def test_unverified_claim_waits_for_an_agent_when_configured(desk):
    desk = dataclasses.replace(desk, settings=dataclasses.replace(
        desk.settings, intake=dataclasses.replace(desk.settings.intake, hold_unverified=True)))
    first = receive(desk, mail(msgid="<held-1@example.org>"))
    stored = spool.put(desk.sessions, mail("Re: Help", "Pay to this account instead.",
                                           headers="In-Reply-To: <held-1@example.org>\n"),
                       "smtp", "mallory@evil.test", ("support@example.test",))
    outcome = worker.process_one(desk.sessions, desk.settings, stored.id)
    assert outcome.quarantined and "held for approval" in outcome.error
    from core import quarantine
    with desk.sessions() as s, s.begin():
        assert [m.id for m in quarantine.held_for_approval(s)] == [stored.id]
        agent = add_user(s, "agent@example.test", "agent")
        s.flush()
        assert quarantine.approve(s, stored.id, agent.id)
    approved = worker.process_one(desk.sessions, desk.settings, stored.id)
    assert approved.received.ticket_id == first.ticket_id and approved.received.matched_by == "in-reply-to"


def test_followers_stop_at_the_limit_and_the_rest_is_noted(desk):
    desk = dataclasses.replace(desk, settings=dataclasses.replace(
        desk.settings, intake=dataclasses.replace(desk.settings.intake, max_followers=2)))
    first = receive(desk, mail(cc="a@example.org, b@example.org, c@example.org"))
    with desk.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Follower)) == 2
        noted = s.scalars(select(Event.new_value).where(Event.ticket_id == first.ticket_id,
                                                        Event.kind == "follower-limit")).all()
        assert noted == ["c@example.org not added: 2 followers already"]


def test_pipe_mail_is_judged_by_authentication_results_of_our_mta_only(desk):
    desk = dataclasses.replace(desk, settings=dataclasses.replace(
        desk.settings, intake=dataclasses.replace(desk.settings.intake, trusted_authserv_ids=("mx.ours.example",))))
    first = receive(desk, mail(msgid="<ar-1@example.org>"))

    def piped(msgid: str, results: str) -> worker.Outcome:
        raw = mail("Re: Help", msgid=f"<{msgid}>", headers=f"Authentication-Results: {results}\n"
                   "In-Reply-To: <ar-1@example.org>\n")
        return worker.process_one(desk.sessions, desk.settings,
                                  spool.put(desk.sessions, raw, "pipe", "bounce@mailer.example").id)

    forged = piped("ar-2@example.org", "mx.evil.test; dkim=pass header.d=example.org; dmarc=pass")
    genuine = piped("ar-3@example.org", "mx.ours.example; dkim=pass header.d=example.org; spf=fail; dmarc=pass")
    failing = piped("ar-4@example.org", "mx.ours.example; dkim=fail; dmarc=fail header.from=example.org")
    assert forged.received.created and forged.received.ticket_id != first.ticket_id
    assert (genuine.received.ticket_id, genuine.received.matched_by) == (first.ticket_id, "in-reply-to")
    assert failing.received.created
    from core.models import Message
    with desk.sessions() as s:
        auth = {m.message_id: (m.auth_dkim, m.auth_spf, m.auth_dmarc) for m in s.scalars(select(Message))}
    assert auth["ar-2@example.org"] == ("none", "none", "none")
    assert auth["ar-3@example.org"] == ("pass", "fail", "pass")
    assert auth["ar-4@example.org"] == ("fail", "none", "fail")


def test_a_new_ticket_has_its_due_times_and_a_plain_reply_leaves_nothing_for_the_sweep(desk):
    from datetime import timedelta

    from core.models import utcnow
    from core.sla.tracking import sweep

    first = receive(desk, mail(msgid="<sla-orig@example.org>"))
    with desk.sessions() as s:
        ticket = s.get(Ticket, first.ticket_id)
        assert ticket.first_response_due_at is not None and ticket.resolution_due_at is not None
        assert ticket.sla_checked_at is not None and ticket.sla_next_check_at is not None
    receive(desk, mail("Re: Help", headers="In-Reply-To: <sla-orig@example.org>\n"))
    with desk.sessions() as s, s.begin():
        assert sweep(s, desk.settings) == 0  # the reply changed no service level: nothing to recompute
    with desk.sessions() as s, s.begin():  # changed by another path since its last check: stays due
        s.execute(Ticket.__table__.update().values(sla_checked_at=utcnow() - timedelta(hours=1)))
    receive(desk, mail("Re: Help", headers="In-Reply-To: <sla-orig@example.org>\n"))
    with desk.sessions() as s, s.begin():
        assert sweep(s, desk.settings) == 1
