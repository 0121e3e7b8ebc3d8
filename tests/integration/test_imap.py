"""The IMAP door against a real Dovecot: every mail in exactly once, whatever fails when.

Failures are real ones: a TCP relay that drops (or holds) the connection when the poller sends
its after-action, a poller process killed at that moment, a database trigger refusing the
state update, a closed port, a wrong password.
"""
from __future__ import annotations

import dataclasses
import os
import re
import smtplib
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import func, select, text

from core.config import Settings
from core.errors import ConfigError
from core.models import ImapState, Message, RawMail, Ticket
from ingest import worker
from ingest.imap import ImapPoller, PollResult, mailbox_key, poll_once
from tests.support.dovecot import CuttingProxy, Dovecot, ImapAccount
from tests.support.net import free_port

SEEN = "\\Seen"
KEYWORD = "$Postdesk"


@pytest.fixture(scope="module")
def dovecot():
    """One Dovecot for the module; each test gets its own user, hence its own empty mailbox."""
    with Dovecot() as server:
        yield server


@pytest.fixture
def account(dovecot) -> ImapAccount:
    return dovecot.add_user()


@pytest.fixture(scope="module")
def tls_dovecot():
    """A Dovecot with a self-signed certificate: STARTTLS on .port, implicit TLS on .tls_port."""
    with Dovecot(tls=True) as server:
        yield server


def _point_at(desk, account: ImapAccount, **imap) -> Settings:
    """Give the desk an [imap] section for this mailbox (plain IMAP on loopback)."""
    desk.settings = dataclasses.replace(
        desk.settings, imap=dataclasses.replace(desk.settings.imap, **account.settings(**imap)))
    return desk.settings


def _mail(tag: str, message_id: bool = True) -> bytes:
    head = (f"From: Ann Example <ann@example.org>\r\nTo: support@example.test\r\nSubject: {tag}\r\n"
            f"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n")
    if message_id:
        head += f"Message-ID: <{tag}@example.org>\r\n"
    return (head + f"\r\nBody of {tag}.\r\n").encode()


def _count(desk, model) -> int:
    with desk.sessions() as s:
        return s.scalar(select(func.count()).select_from(model))


def _raws(desk) -> list[bytes]:
    with desk.sessions() as s:
        return list(s.scalars(select(RawMail.raw).order_by(RawMail.id)))


def _state(desk) -> ImapState:
    with desk.sessions() as s:
        return s.get(ImapState, mailbox_key(desk.settings.imap))


def _seen(account: ImapAccount, folder: str = "INBOX") -> dict[int, bool]:
    return {uid: SEEN in flags for uid, flags in account.flags(folder).items()}


def test_new_mails_are_spooled_byte_for_byte_and_become_tickets(desk, account):
    settings = _point_at(desk, account)
    mails = [_mail("first"), _mail("second")]
    for raw in mails:
        account.append(raw)

    assert poll_once(settings, desk.sessions) == PollResult(fetched=2, stored=2)

    assert _raws(desk) == mails  # the server's bytes, not a re-serialised copy
    with desk.sessions() as s:
        assert set(s.scalars(select(RawMail.door))) == {"imap"}
    worker.drain(desk.sessions, settings)
    assert _count(desk, Ticket) == 2 and _count(desk, Message) == 2
    assert all({SEEN, KEYWORD} <= flags for flags in account.flags().values())


def test_mail_already_read_in_another_client_is_still_imported(desk, account):
    settings = _point_at(desk, account)
    account.append(_mail("read-elsewhere"), flags=(SEEN,))

    assert poll_once(settings, desk.sessions).stored == 1
    worker.drain(desk.sessions, settings)
    assert _count(desk, Ticket) == 1


def test_polling_again_imports_nothing_twice_even_when_marked_unread(desk, account):
    settings = _point_at(desk, account)
    first = account.append(_mail("a"))
    account.append(_mail("b"))
    assert poll_once(settings, desk.sessions).stored == 2

    account.remove_flags(first, (SEEN, KEYWORD))  # someone marks it unread again
    assert poll_once(settings, desk.sessions) == PollResult()

    account.append(_mail("c"))
    assert poll_once(settings, desk.sessions) == PollResult(fetched=1, stored=1)
    assert _count(desk, RawMail) == 3
    assert _state(desk).last_uid == 3 and _state(desk).acted_uid == 3


def test_after_flag_sets_seen_and_keyword_and_expunges_nothing(desk, account):
    settings = _point_at(desk, account, after="flag")
    first = account.append(_mail("a"))
    poll_once(settings, desk.sessions)
    account.add_flags(first, ("\\Deleted",))  # another client deletes without expunging

    second = account.append(_mail("b"))
    poll_once(settings, desk.sessions)

    assert account.uids() == [first, second]  # imap-tools' flag() would have EXPUNGEd the first
    assert {SEEN, KEYWORD} <= account.flags()[second]


def test_after_move_creates_the_folder_and_moves_the_mail_there(desk, account):
    settings = _point_at(desk, account, after="move:Handled")
    account.append(_mail("a"))
    account.append(_mail("b"))

    assert poll_once(settings, desk.sessions).stored == 2

    assert account.uids("INBOX") == []
    assert sorted(account.raw("Handled").values()) == sorted([_mail("a"), _mail("b")])
    assert poll_once(settings, desk.sessions) == PollResult()


def test_after_delete_expunges_only_the_imported_mails(desk, account):
    settings = _point_at(desk, account, after="delete")
    account.append(_mail("a"))
    account.append(_mail("b"))

    assert poll_once(settings, desk.sessions).stored == 2

    assert account.uids() == []
    assert _count(desk, RawMail) == 2


def test_connection_cut_between_commit_and_flag_neither_loses_nor_doubles(desk, account, dovecot):
    settings = _point_at(desk, account)
    account.append(_mail("a"))
    account.append(_mail("b"))

    with CuttingProxy(dovecot.port, trigger=rb"UID STORE") as proxy:
        poller = ImapPoller(dataclasses.replace(settings, imap=dataclasses.replace(settings.imap, port=proxy.port)),
                            desk.sessions)
        assert poller.poll() is None  # the failure is logged, not raised
    assert proxy.tripped.is_set() and "ImapUnavailable" in poller.last_error
    assert _raws(desk) == [_mail("a")]  # stored and committed; its flag never reached the server
    assert _seen(account) == {1: False, 2: False}

    assert poll_once(settings, desk.sessions) == PollResult(fetched=1, stored=1)  # only b

    assert _raws(desk) == [_mail("a"), _mail("b")]
    assert _seen(account) == {1: True, 2: True}  # a's flag was finished on the next poll
    worker.drain(desk.sessions, settings)
    assert _count(desk, Ticket) == 2


POLL_IN_A_PROCESS = """
from core.config import load_settings
from core.db import make_engine, make_session_factory
from ingest.imap import poll_once

settings = load_settings()
print(poll_once(settings, make_session_factory(make_engine(settings.database.url))))
"""


@contextmanager
def poller_process(cwd: Path, env: dict[str, str], proxy: CuttingProxy) -> Iterator[subprocess.Popen]:
    """POLL_IN_A_PROCESS with these POSTDESK_* settings only, yielded once its IMAP session has
    reached the proxy's trigger (and is held there); killed on leaving."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("POSTDESK_")}
    proc = subprocess.Popen([sys.executable, "-c", POLL_IN_A_PROCESS], cwd=cwd, env={**clean, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        if not proxy.tripped.wait(60):
            proc.kill()
            pytest.fail(f"the poller never reached {proxy.trigger!r}:\n{proc.communicate()[0].decode()}")
        yield proc
    finally:
        proc.kill()  # SIGKILL: its locks go with its connection / open file
        proc.wait(10)


def test_poller_process_killed_between_commit_and_move_neither_loses_nor_doubles(desk, account, dovecot, tmp_path):
    settings = _point_at(desk, account, after="move:Handled")
    account.append(_mail("a"))
    account.append(_mail("b"))

    with CuttingProxy(dovecot.port, trigger=rb"UID MOVE", hold=True) as proxy:
        env = {"POSTDESK_DATABASE__URL": settings.database.url, "POSTDESK_PATHS__VAR_DIR": str(tmp_path / "var"),
               "POSTDESK_IMAP__HOST": "127.0.0.1", "POSTDESK_IMAP__PORT": str(proxy.port),
               "POSTDESK_IMAP__SSL": "false", "POSTDESK_IMAP__USERNAME": account.username,
               "POSTDESK_IMAP__PASSWORD": account.password, "POSTDESK_IMAP__AFTER": "move:Handled"}
        with poller_process(tmp_path, env, proxy) as proc:
            proc.kill()  # SIGKILL: no finally, no logout, no rollback of anything
            proc.wait(10)
    assert proc.returncode == -9
    assert _raws(desk) == [_mail("a")]
    assert account.uids("INBOX") == [1, 2]

    assert poll_once(settings, desk.sessions) == PollResult(fetched=1, stored=1)

    assert _raws(desk) == [_mail("a"), _mail("b")]
    assert account.uids("INBOX") == []  # a's interrupted move was finished
    assert sorted(account.raw("Handled").values()) == [_mail("a"), _mail("b")]


def test_refused_after_action_never_blocks_intake_and_is_finished_later(desk, account):
    settings = _point_at(desk, account, after="move:~Refused")  # Dovecot refuses to create that name
    account.append(_mail("a"))
    account.append(_mail("b"))

    assert poll_once(settings, desk.sessions) == PollResult(fetched=2, stored=2)
    assert poll_once(settings, desk.sessions) == PollResult()  # the retry is refused again; nothing re-read
    state = _state(desk)
    assert (state.last_uid, state.acted_uid) == (2, 0) and account.uids() == [1, 2]

    settings = _point_at(desk, account, after="move:Handled")  # the admin fixes the setting
    account.append(_mail("c"))
    assert poll_once(settings, desk.sessions) == PollResult(fetched=1, stored=1)

    assert account.uids() == []
    assert sorted(account.raw("Handled").values()) == [_mail("a"), _mail("b"), _mail("c")]
    assert _count(desk, RawMail) == 3


def _refuse_state_updates(desk, refuse: bool) -> None:
    """A database trigger that makes advancing last_uid fail: the crash after spool.put's commit."""
    with desk.engine.begin() as conn:
        if desk.engine.dialect.name == "postgresql":
            if refuse:
                conn.execute(text("CREATE FUNCTION boom() RETURNS trigger AS $$ BEGIN "
                                  "RAISE EXCEPTION 'disk on fire'; END $$ LANGUAGE plpgsql"))
                conn.execute(text("CREATE TRIGGER boom BEFORE UPDATE ON imap_state "
                                  "FOR EACH ROW EXECUTE FUNCTION boom()"))
            else:
                conn.execute(text("DROP TRIGGER boom ON imap_state"))
        elif refuse:
            conn.execute(text("CREATE TRIGGER boom BEFORE UPDATE ON imap_state "
                              "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"))
        else:
            conn.execute(text("DROP TRIGGER boom"))


def test_failure_after_store_before_state_commit_re_puts_as_one_mail(desk, account):
    settings = _point_at(desk, account)
    account.append(_mail("a"))
    poll_once(settings, desk.sessions)  # creates the state row; nothing new afterwards
    account.append(_mail("b"))
    _refuse_state_updates(desk, True)

    poller = ImapPoller(settings, desk.sessions)
    assert poller.poll() is None and "disk on fire" in poller.last_error
    assert _raws(desk) == [_mail("a"), _mail("b")]  # b is in the spool, its UID not recorded
    assert _seen(account) == {1: True, 2: False}  # so it was not flagged either

    _refuse_state_updates(desk, False)
    assert poll_once(settings, desk.sessions) == PollResult(fetched=1, duplicates=1)

    assert _count(desk, RawMail) == 2
    assert _seen(account) == {1: True, 2: True}
    assert _state(desk).last_uid == 2


def test_uidvalidity_change_reads_the_folder_again_without_duplicates(desk, account):
    settings = _point_at(desk, account, folder="Support")
    for tag in ("a", "b", "c"):
        account.append(_mail(tag), folder="Support")
    assert poll_once(settings, desk.sessions).stored == 3
    old = _state(desk).uidvalidity

    # The server rebuilt the folder: c and a new mail now have UIDs 1 and 2, below last_uid 3.
    new = account.recreate_folder("Support", keep=[_mail("c"), _mail("d")])
    assert new != old

    assert poll_once(settings, desk.sessions) == PollResult(fetched=2, stored=1, duplicates=1, resynced=True)
    assert _raws(desk) == [_mail("a"), _mail("b"), _mail("c"), _mail("d")]
    state = _state(desk)
    assert (state.uidvalidity, state.last_uid, state.acted_uid) == (new, 2, 2)
    assert poll_once(settings, desk.sessions) == PollResult()


@pytest.mark.parametrize("message_id", [True, False], ids=["by-message-id", "by-content-hash"])
def test_same_mail_by_smtp_and_by_imap_is_stored_once(desk, account, message_id):
    from tests.support.server import SmtpDoor

    settings = _point_at(desk, account)
    raw = _mail("both-doors", message_id=message_id)
    with SmtpDoor(desk, with_worker=False) as door:
        with smtplib.SMTP("127.0.0.1", door.port, timeout=10) as smtp:
            smtp.sendmail("ann@example.org", ["support@example.test"], raw)
    account.append(raw)

    assert poll_once(settings, desk.sessions) == PollResult(fetched=1, duplicates=1)

    with desk.sessions() as s:
        assert list(s.scalars(select(RawMail.door))) == ["smtp"]
    assert _seen(account) == {1: True}  # a duplicate is still acted on: it is safely stored
    worker.drain(desk.sessions, settings)
    assert _count(desk, Ticket) == 1


@pytest.mark.parametrize("failure", ["closed-port", "wrong-password"])
def test_unreachable_server_never_escapes_the_poller_loop_and_touches_nothing(desk, account, failure):
    settings = _point_at(desk, account)
    account.append(_mail("waiting"))
    broken = {"closed-port": {"port": free_port()}, "wrong-password": {"password": "not-the-password"}}[failure]
    poller = ImapPoller(dataclasses.replace(settings, imap=dataclasses.replace(settings.imap, **broken)),
                        desk.sessions, interval=0.05)
    stop = threading.Event()
    thread = threading.Thread(target=poller.run_forever, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while poller.failures < 2 and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    thread.join(10)

    assert poller.failures >= 2 and not thread.is_alive()
    assert "ImapUnavailable" in poller.last_error
    assert _count(desk, RawMail) == 0
    assert not account.flags()[1] & {SEEN, KEYWORD, "\\Deleted"}  # untouched
    assert poll_once(settings, desk.sessions).stored == 1  # and it recovers once the server is back


def test_poller_wakes_the_intake_worker_when_it_stores_a_mail(desk, account):
    from postdesk.runtime import IntakeLoop

    settings = _point_at(desk, account)
    intake = IntakeLoop(desk, after_drain=lambda: None, interval=60)  # only a wake-up drains in time
    poller = ImapPoller(settings, desk.sessions, on_stored=intake.wake, interval=0.1)
    stop = threading.Event()
    thread = threading.Thread(target=poller.run_forever, args=(stop,), daemon=True)
    intake.start()
    thread.start()
    try:
        account.append(_mail("wake-up"))
        deadline = time.monotonic() + 15
        while _count(desk, Ticket) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(10)
        intake.stop()
    assert _count(desk, Ticket) == 1


def test_door_is_disabled_when_no_host_is_configured(desk):
    poller = ImapPoller(desk.settings, desk.sessions)  # [imap] host is empty by default
    assert not poller.enabled
    thread = threading.Thread(target=poller.run_forever, args=(threading.Event(),), daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive() and poller.polls == 0
    with pytest.raises(ConfigError):
        poll_once(desk.settings, desk.sessions)


def test_oversize_mail_is_quarantined_and_acted_on_not_dropped(desk, account):
    settings = _point_at(desk, account)
    desk.settings = settings = dataclasses.replace(settings, smtp=dataclasses.replace(settings.smtp,
                                                                                       max_message_bytes=2000))
    big = _mail("big").replace(b"Body of big.", b"x" * 3000)
    account.append(big)

    assert poll_once(settings, desk.sessions) == PollResult(fetched=1, quarantined=1)

    with desk.sessions() as s:
        row = s.scalar(select(RawMail))
    assert row.state == "quarantined" and row.raw == big and "larger than 2000" in row.last_error
    assert _seen(account) == {1: True}
    assert poll_once(settings, desk.sessions) == PollResult()


def test_a_backlog_larger_than_one_bulk_arrives_whole_and_in_uid_order(desk, account):
    settings = _point_at(desk, account)
    mails = [_mail(f"backlog-{i:02d}") for i in range(25)]
    with account.connect() as mb:
        for raw in mails:
            mb.append(raw, "INBOX")

    assert poll_once(settings, desk.sessions) == PollResult(fetched=25, stored=25)

    assert _raws(desk) == mails
    assert all(_seen(account).values())


def test_implicit_tls_connects_with_a_verified_certificate(desk, tls_dovecot, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_dovecot.ca_file))  # trust the test certificate
    account = tls_dovecot.add_user()
    settings = _point_at(desk, account, ssl=True, port=tls_dovecot.tls_port)
    account.append(_mail("over-tls"))

    assert poll_once(settings, desk.sessions).stored == 1


def test_plain_port_upgrades_with_starttls_when_the_server_offers_it(desk, tls_dovecot, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_dovecot.ca_file))
    account = tls_dovecot.add_user()
    settings = _point_at(desk, account, ssl=False)
    account.append(_mail("over-starttls"))

    assert poll_once(settings, desk.sessions).stored == 1
    # The helper logs in without TLS; Dovecot marks the poller's login as TLS.
    assert re.search(rf"Login: user=<{account.username}>.*, TLS,", tls_dovecot.log())


def test_untrusted_certificate_is_refused_never_downgraded_to_clear_text(desk, tls_dovecot, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    account = tls_dovecot.add_user()
    settings = _point_at(desk, account, ssl=False)
    account.append(_mail("not-sent-in-clear"))

    poller = ImapPoller(settings, desk.sessions)
    assert poller.poll() is None and "CERTIFICATE_VERIFY_FAILED" in poller.last_error
    assert _count(desk, RawMail) == 0
    assert _seen(account) == {1: False}
