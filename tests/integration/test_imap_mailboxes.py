"""Several IMAP mailboxes against a real Dovecot, each polled on its own, and one poller per
mailbox at a time (PostgreSQL advisory lock, a lock file on SQLite) across threads and processes."""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from core.config import load_settings
from core.db import make_engine, make_session_factory
from core.models import ImapState
from ingest.imap import ImapPoller, PollResult, mailbox_pollers, poll_once
from ingest.imap_lock import advisory_lock_id, lock_file, polling_alone
from postdesk.runtime import start_imap_pollers
from tests.integration.test_imap import SEEN, _mail, _raws, _seen, poller_process
from tests.support.dovecot import CuttingProxy, Dovecot, ImapAccount


@pytest.fixture(scope="module")
def dovecot():
    with Dovecot() as server:
        yield server


def _imap_env(prefix: str, account: ImapAccount, **extra: str) -> dict[str, str]:
    """The POSTDESK_* variables that point one mailbox table at a test account."""
    values = {"HOST": account.host, "PORT": str(account.port), "SSL": "false", "USERNAME": account.username,
              "PASSWORD": account.password, **extra}
    return {f"{prefix}__{key}": value for key, value in values.items()}


def _settings(desk, **environ: str):
    """The desk's settings with [imap] tables from the environment, as a deployment would set them."""
    base = {"POSTDESK_DATABASE__URL": desk.settings.database.url, "POSTDESK_PATHS__VAR_DIR": desk.settings.paths.var_dir,
            "POSTDESK_WEB__SECRET_KEY": desk.settings.web.secret_key}
    desk.settings = load_settings(environ={**base, **environ})
    return desk.settings


def _states(desk) -> dict[str, int]:
    with desk.sessions() as s:
        return {row.mailbox: row.last_uid for row in s.scalars(select(ImapState))}


def test_each_mailbox_is_imported_exactly_once_with_its_own_state_row(desk, dovecot, tmp_path):
    desk_user, sales_user = dovecot.add_user(), dovecot.add_user()
    settings = _settings(desk, **_imap_env("POSTDESK_IMAP", desk_user),
                         **_imap_env("POSTDESK_IMAP__MAILBOXES__SALES", sales_user),
                         POSTDESK_IMAP__MAILBOXES__ARCHIVE__FOLDER="Support")  # desk_user's other folder
    desk_user.append(_mail("desk-1"))
    desk_user.append(_mail("desk-2"))
    desk_user.append(_mail("archived"), folder="Support")
    sales_user.append(_mail("sales-1"))

    pollers = mailbox_pollers(settings, desk.sessions)
    assert [p.mailbox.section for p in pollers] == ["imap", "imap.mailboxes.sales", "imap.mailboxes.archive"]
    assert [p.poll().stored for p in pollers] == [2, 1, 1]
    sales_user.append(_mail("sales-2"))
    assert [p.poll() for p in pollers] == [PollResult(), PollResult(fetched=1, stored=1), PollResult()]

    assert sorted(_raws(desk)) == sorted(_mail(t) for t in ("desk-1", "desk-2", "archived", "sales-1", "sales-2"))
    assert _states(desk) == {f"{desk_user.username}@127.0.0.1/INBOX": 2,
                             f"{sales_user.username}@127.0.0.1/INBOX": 2,
                             f"{desk_user.username}@127.0.0.1/Support": 1}
    assert all(_seen(sales_user).values()) and all(_seen(desk_user, "Support").values())


def test_runtime_polls_every_mailbox_in_its_own_thread_and_a_failing_one_stops_no_other(desk, dovecot, caplog):
    broken, sales = dovecot.add_user(), dovecot.add_user()
    _settings(desk, **_imap_env("POSTDESK_IMAP", broken, PASSWORD="not-the-password", POLL_SECONDS="1"),
              **_imap_env("POSTDESK_IMAP__MAILBOXES__SALES", sales))  # poll_seconds inherited: 1
    broken.append(_mail("waits-for-the-password"))
    sales.append(_mail("sales-a"))
    stop = threading.Event()
    caplog.set_level(logging.INFO, logger="ingest.imap")

    threads = start_imap_pollers(desk, lambda: None, stop)
    try:
        assert [t.name for t in threads] == ["imap", "imap-sales"]
        _wait_until(lambda: len(_raws(desk)) == 1)
        sales.append(_mail("sales-b"))  # the sales poller keeps going while [imap] keeps failing
        _wait_until(lambda: len(_raws(desk)) == 2 and _failures_logged(caplog, broken) >= 2)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert not any(t.is_alive() for t in threads)
    assert _raws(desk) == [_mail("sales-a"), _mail("sales-b")]
    assert not broken.flags()[1] & {SEEN}  # untouched until its password is fixed
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and sales.username in r.getMessage()]


def _failures_logged(caplog, account: ImapAccount) -> int:
    return sum(1 for r in caplog.records if r.levelno == logging.WARNING and f"IMAP {account.username}@" in r.getMessage())


def _wait_until(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def test_lock_id_and_lock_file_are_stable_per_mailbox(desk):
    key = "desk@imap.example.test/INBOX"
    # Pinned: processes of two versions must agree during an upgrade, or both would poll.
    assert advisory_lock_id(key) == 8821263856189171790 != advisory_lock_id(key + "x")
    path = lock_file(desk.engine, desk.settings.paths.var_dir, key)
    if desk.engine.dialect.name == "sqlite":  # beside the database: shared by all its processes
        assert path.parent == Path(desk.engine.url.database).parent and path.name.startswith("postdesk.db.imap-")
    with polling_alone(desk.sessions, desk.settings.paths.var_dir, key) as first:
        with polling_alone(desk.sessions, desk.settings.paths.var_dir, key) as second:
            with polling_alone(desk.sessions, desk.settings.paths.var_dir, key + "x") as other:
                assert (first, second, other) == (True, False, True)
    with polling_alone(desk.sessions, desk.settings.paths.var_dir, key) as again:
        assert again  # released on leaving


def test_poll_skips_while_another_process_polls_the_mailbox_and_resumes_when_it_dies(desk, dovecot, tmp_path):
    account = dovecot.add_user()
    settings = _settings(desk, **_imap_env("POSTDESK_IMAP", account))
    account.append(_mail("a"))
    account.append(_mail("b"))

    with CuttingProxy(dovecot.port, trigger=rb"UID FETCH", hold=True) as proxy:
        env = {"POSTDESK_DATABASE__URL": settings.database.url, "POSTDESK_PATHS__VAR_DIR": str(tmp_path / "other"),
               **_imap_env("POSTDESK_IMAP", account, PORT=str(proxy.port))}
        with poller_process(tmp_path, env, proxy):
            # The other process is in the middle of its poll, holding the mailbox.
            poller = ImapPoller(settings, desk.sessions)
            assert poller.poll() == PollResult(skipped=True) and poller.skips == 1
            assert _raws(desk) == [] and _seen(account) == {1: False, 2: False}

    _wait_until(lambda: not poll_once(settings, desk.sessions).skipped, timeout=10)
    assert _raws(desk) == [_mail("a"), _mail("b")] and _seen(account) == {1: True, 2: True}


def test_two_pollers_on_one_mailbox_fetch_every_arriving_mail_once(desk, dovecot):
    account = dovecot.add_user()
    settings = _settings(desk, **_imap_env("POSTDESK_IMAP", account))
    mails = [_mail(f"arriving-{i:02d}") for i in range(20)]
    results: list[PollResult] = []
    errors: list[str] = []
    stop = threading.Event()

    def keep_polling() -> None:  # its own engine: separate connections, as another process has
        engine = make_engine(settings.database.url)
        poller = ImapPoller(settings, make_session_factory(engine))
        while not stop.is_set():
            result = poller.poll()
            results.append(result) if result else errors.append(poller.last_error)
            stop.wait(0.005)
        engine.dispose()

    threads = [threading.Thread(target=keep_polling, daemon=True) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for raw in mails:
            account.append(raw)
            time.sleep(0.03)
        _wait_until(lambda: len(_raws(desk)) == len(mails) and all(_seen(account).values()))
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)

    assert errors == []
    assert _raws(desk) == mails  # each once, in arrival order
    assert sum(r.fetched for r in results) == len(mails) and sum(r.duplicates for r in results) == 0
    assert any(r.skipped for r in results)  # they did meet at the lock
