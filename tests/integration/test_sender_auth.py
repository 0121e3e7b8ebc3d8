"""Sender authentication and the trust rules built on it: DKIM signed with dkimpy by a key the
test publishes through a stub DNS server on loopback (never real DNS), SPF from a given client
address, DMARC alignment, trusted Authentication-Results only from our MTA, and what a forged
From can no longer do (join a ticket, add a follower, read the ticket after registering)."""
from __future__ import annotations

import base64
import smtplib
import time

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from sqlalchemy import select

from core.accounts import add_user
from core.db import migrate
from core.sessions import start_session
from core.models import Event, Follower, Message, Ticket
from core.sender_auth import SenderAuthenticator, verdict_from_results
from core.sender_auth.dns import CachingResolver
from core.trust import sender_trust
from portal.app import create_app
from postdesk.bootstrap import bootstrap
from tests.conftest import make_settings
from tests.integration.test_accounts import PASSWORD, link_path, mails, sign_in, submit, HTML
from tests.support.dns_server import StubDns
from tests.support.server import SmtpDoor

_KEY = rsa.generate_private_key(public_exponent=65537, key_size=1024)
PRIVATE = _KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())
PUBLIC = base64.b64encode(_KEY.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
RECORDS = {"sel._domainkey.example.org": [f"v=DKIM1; k=rsa; p={PUBLIC}"],
           "_dmarc.example.org": ["v=DMARC1; p=reject"],
           "example.org": ["v=spf1 ip4:192.0.2.10 -all"]}


def signed(raw: bytes, domain: str = "example.org") -> bytes:
    signature = dkim.sign(raw, b"sel", domain.encode(), PRIVATE, include_headers=[b"from", b"to", b"subject",
                                                                                  b"message-id", b"cc"])
    return signature + raw


def mail(sender: str, subject: str, msgid: str, cc: str = "", extra: str = "") -> bytes:
    cc_line = f"Cc: {cc}\r\n" if cc else ""
    return (f"From: {sender}\r\nTo: support@example.test\r\n{cc_line}Subject: {subject}\r\n"
            f"Message-ID: <{msgid}>\r\n{extra}\r\nHello from {sender}.\r\n").encode()


# ---- the verifier --------------------------------------------------------------------------------

@pytest.fixture
def stub():
    with StubDns(RECORDS) as server:
        yield server


def verifier(server: StubDns, timeout: float = 2.0) -> SenderAuthenticator:
    return SenderAuthenticator(CachingResolver((server.address,), timeout=timeout))


def test_valid_signature_passes_dkim_and_aligned_dmarc(stub):
    raw = signed(mail("alice@example.org", "Hi", "s1@example.org"))
    verdict = verifier(stub).verify(raw, "alice@example.org", "alice@example.org", "", "")
    assert (verdict.dkim, verdict.spf, verdict.dmarc, verdict.from_aligned) == ("pass", "none", "pass", True)


def test_altered_body_fails_dkim_and_dmarc(stub):
    raw = signed(mail("alice@example.org", "Hi", "s2@example.org")).replace(b"Hello", b"Hallo")
    verdict = verifier(stub).verify(raw, "alice@example.org", "alice@example.org", "", "")
    assert (verdict.dkim, verdict.dmarc) == ("fail", "fail")
    assert not sender_trust(verdict, "alice@example.org", "alice@example.org").trusted


def test_a_signature_is_found_wherever_the_header_block_has_it_and_only_there(stub):
    raw = signed(mail("alice@example.org", "Hi", "s3@example.org"))
    below = mail("alice@example.org", "Hi", "s4@example.org") + raw  # a signed mail quoted in the body
    lf = raw.replace(b"\r\n", b"\n")  # LF line ends, as a pipe hands mail over
    later = b"X-Other: 1\r\n" + raw.replace(b"DKIM-Signature:", b"dkim-signature:", 1)  # not first, lower case
    checked = {name: verifier(stub).verify(r, "alice@example.org", "alice@example.org", "", "").dkim
               for name, r in (("top", raw), ("below", below), ("lf", lf), ("later", later))}
    assert checked == {"top": "pass", "below": "none", "lf": "pass", "later": "pass"}


def test_spf_judges_the_client_address_for_the_envelope_sender(stub):
    raw = mail("alice@example.org", "Hi", "s3@example.org")
    good = verifier(stub).verify(raw, "alice@example.org", "alice@example.org", "192.0.2.10", "mx.example.org")
    bad = verifier(stub).verify(raw, "alice@example.org", "alice@example.org", "198.51.100.7", "evil.test")
    assert (good.spf, good.dmarc) == ("pass", "pass")
    assert (bad.spf, bad.dmarc) == ("fail", "fail")


def test_domain_without_records_gives_none(stub):
    verdict = verifier(stub).verify(mail("bob@other.test", "Hi", "s4@other.test"), "bob@other.test",
                                    "bob@other.test", "198.51.100.7", "other.test")
    assert (verdict.dkim, verdict.spf, verdict.dmarc) == ("none", "none", "none")


def test_dns_timeout_is_temperror_not_a_hang():
    with StubDns(silent=True) as silent:
        checker = verifier(silent, timeout=0.3)
        started = time.monotonic()
        verdict = checker.verify(signed(mail("alice@example.org", "Hi", "s5@example.org")), "alice@example.org",
                                 "alice@example.org", "198.51.100.7", "example.org")
        first = time.monotonic() - started
        started = time.monotonic()
        again = checker.verify(signed(mail("alice@example.org", "Hi", "s6@example.org")), "alice@example.org",
                               "alice@example.org", "198.51.100.7", "example.org")
        second = time.monotonic() - started
    assert (verdict.dkim, verdict.spf, verdict.dmarc) == ("temperror", "temperror", "temperror")
    assert again == verdict
    assert second < first  # cached failures and the breaker: the next mail does not wait again


def test_authentication_results_are_read_only_from_trusted_servers():
    headers = ["mx.evil.test; dkim=pass header.d=example.org; dmarc=pass",
               "mx.ours.example; dkim=fail; spf=pass smtp.mailfrom=example.org; dmarc=fail header.from=example.org"]
    assert not verdict_from_results(headers, ()).checked
    ours = verdict_from_results(headers, ("mx.ours.example",), "alice@example.org")
    assert (ours.dkim, ours.spf, ours.dmarc, ours.checked) == ("fail", "pass", "fail", True)
    forged = verdict_from_results(headers[:1], ("mx.ours.example",), "alice@example.org")
    assert not forged.checked


# ---- through the SMTP door -------------------------------------------------------------------------

@pytest.fixture
def desk_with_dns(db_url, tmp_path, stub):
    settings = make_settings(db_url, tmp_path, intake={"dns_servers": (stub.address,)})
    migrate(settings.database.url)
    desk = bootstrap(settings=settings)
    yield desk
    desk.engine.dispose()


def _send(port: int, raw: bytes, envelope: str) -> tuple[int, float]:
    started = time.monotonic()
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.ehlo("client.example")
        smtp.mail(envelope)
        smtp.rcpt("support@example.test")
        code, _ = smtp.data(raw)
    return code, time.monotonic() - started


def _stored(desk, msgid: str, timeout: float = 15) -> Message:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with desk.sessions() as s:
            found = s.scalar(select(Message).where(Message.message_id == msgid))
            if found is not None:
                return found
        time.sleep(0.05)
    raise AssertionError(f"{msgid} not stored")


def test_signed_reply_adds_cc_follower_but_forged_from_gets_nothing(desk_with_dns):
    desk = desk_with_dns
    with SmtpDoor(desk) as door:
        assert _send(door.port, signed(mail("alice@example.org", "Printer", "a1@example.org")),
                     "alice@example.org")[0] == 250
        ticket_id = _stored(desk, "a1@example.org").ticket_id
        reply = signed(mail("alice@example.org", f"Re: [#{ticket_id}] Printer", "a2@example.org",
                            cc="bob@example.org", extra="In-Reply-To: <a1@example.org>\r\n"))
        assert _send(door.port, reply, "alice@example.org")[0] == 250
        forged = mail("alice@example.org", f"Re: [#{ticket_id}] Printer", "f1@evil.test",
                      cc="mallory@evil.test", extra="In-Reply-To: <a1@example.org>\r\n")
        assert _send(door.port, forged, "mallory@evil.test")[0] == 250
        joined, refused = _stored(desk, "a2@example.org"), _stored(desk, "f1@evil.test")
    assert (joined.ticket_id, joined.matched_by, joined.auth_dkim, joined.auth_dmarc) == (
        ticket_id, "in-reply-to", "pass", "pass")
    assert refused.ticket_id != ticket_id and (refused.auth_dkim, refused.auth_dmarc) == ("none", "fail")
    with desk.sessions() as s:
        followers = {f.contact.email for f in s.scalars(select(Follower))}
        assert followers == {"bob@example.org"}
        why = s.scalars(select(Event.new_value).where(Event.ticket_id == refused.ticket_id,
                                                      Event.kind == "not-joined")).all()
        assert why and "DMARC fail" in why[0]
        assert s.scalar(select(Event).where(Event.ticket_id == ticket_id, Event.kind == "not-joined")) is not None
    # Agents see the verdict on each mail and the followers, and manage them.
    with desk.sessions() as s, s.begin():
        agent = add_user(s, "agent@example.test", "agent", name="Dana")
        s.flush()
        token = start_session(s, agent, kind="bearer")
    staff = TestClient(create_app(desk.settings, desk.sessions), base_url="http://testserver",
                       headers={"authorization": f"Bearer {token}"})
    shown = staff.get(f"/agent/tickets/{ticket_id}", headers=HTML).text
    assert "DKIM pass · SPF none · DMARC pass" in shown, shown[shown.find("Conversation"):][:3000]
    assert "Remove follower bob@example.org" in shown
    assert "DMARC fail</span>" in staff.get(f"/agent/tickets/{refused.ticket_id}", headers=HTML).text
    api = staff.get(f"/api/tickets/{ticket_id}").json()
    assert api["followers"] == [{"email": "bob@example.org", "name": ""}] and api["merged_into"] is None
    assert [m["auth"] for m in api["messages"]][:2] == [{"dkim": "pass", "spf": "none", "dmarc": "pass"}] * 2
    assert [m["message_id"] for m in api["messages"]][:2] == ["a1@example.org", "a2@example.org"]
    # The stranger registers, verifies and signs in: the ticket stays out of reach.
    client = TestClient(create_app(desk.settings, desk.sessions), base_url="http://testserver")
    answer = submit(client, "/register", {"email": "mallory@evil.test", "password": PASSWORD, "name": "M"})
    assert answer.status_code in (200, 303), answer.text
    assert submit(client, link_path(mails(desk.sessions, "verify")[-1], "verify"), {}).status_code == 303
    sign_in(client, "mallory@evil.test")
    assert client.get("/api/auth/me").status_code == 200
    assert client.get(f"/api/tickets/{ticket_id}").status_code == 404
    assert client.get(f"/my/tickets/{ticket_id}", headers=HTML).status_code == 404


def test_dns_timeout_at_the_door_stores_the_mail_as_temperror(db_url, tmp_path):
    with StubDns(silent=True) as silent:
        settings = make_settings(db_url, tmp_path, intake={"dns_servers": (silent.address,),
                                                           "dns_timeout_seconds": 1.0})
        migrate(settings.database.url)
        desk = bootstrap(settings=settings)
        try:
            with SmtpDoor(desk) as door:
                code, took = _send(door.port, signed(mail("alice@example.org", "Hi", "t1@example.org")),
                                   "alice@example.org")
                stored = _stored(desk, "t1@example.org")
        finally:
            desk.engine.dispose()
    assert code == 250 and took < 30  # answered within the SMTP timeout: checks run after the 250
    assert (stored.auth_dkim, stored.auth_dmarc) == ("temperror", "temperror")
    with desk.sessions() as s:
        assert s.get(Ticket, stored.ticket_id).status == "new"


def test_a_from_domain_dns_cannot_hold_is_checked_as_unpublished(stub):
    domain = "x" * 70 + ".example"
    verdict = verifier(stub).verify(mail(f"bob@{domain}", "Hi", f"s7@{domain}"), f"bob@{domain}",
                                    f"bob@{domain}", "198.51.100.7", "helo.example")
    assert (verdict.dkim, verdict.dmarc) == ("none", "none")


def test_a_sender_check_that_breaks_leaves_the_mail_stored_unchecked(desk, monkeypatch):
    from ingest import sender_check, spool, worker

    def broken(*args):
        raise RuntimeError("resolver exploded")

    monkeypatch.setattr(worker, "verdict_for", broken)
    stored = spool.put(desk.sessions, mail("alice@example.org", "Hi", "u1@example.org"), "smtp",
                       "alice@example.org", ("support@example.test",))
    outcome = worker.process_one(desk.sessions, desk.settings, stored.id)
    assert outcome.received is not None and outcome.received.created
    with desk.sessions() as s:
        assert s.scalar(select(Message.auth_dmarc).where(Message.message_id == "u1@example.org")) == "none"
    assert sender_check.verdict_for is not broken
