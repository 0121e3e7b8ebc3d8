"""The IMAP door (imap-tools): fetch(mark_seen=False) → spool.put → commit → flag / move / delete.

Exactly once, whatever fails when:
- a mail is searched by UID, never by UNSEEN, so one already read in another client still comes in;
- `last_uid` is committed only after the spool holds the mail, and the after-action runs only
  after that: a crash before it re-fetches the mail (the spool recognises it), a crash after it
  skips it;
- `acted_uid` trails `last_uid` until the after-action is done; the next poll finishes the gap,
  so a mail stored just before a crash is still flagged, moved or deleted later;
- a new UIDVALIDITY means the old UIDs name nothing: the folder is read again from UID 1 and
  the spool's dedupe (Message-ID, else the bytes' hash) keeps every mail single.

Each mailbox ([imap] and every [imap.mailboxes.<name>]) is polled on its own: its own state
row, its own lock (ingest/imap_lock.py: one poller per mailbox at a time, across processes;
a poll that finds the lock taken is skipped), its own failures.

Assumptions beyond the [imap] keys: `ssl = false` connects in plain text and upgrades with
STARTTLS (certificate verified) whenever the server offers it; only a server that offers no
STARTTLS (a loopback or trusted-network server) is spoken to in clear. A bare `after = "move"`
moves to the folder "Postdesk".
"""
from __future__ import annotations

import imaplib
import logging
import ssl
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

from imap_tools import AND, BaseMailBox, MailBox, MailBoxUnencrypted, MailMessage
from imap_tools.errors import ImapToolsError, UnexpectedCommandStatusError
from imap_tools.query import UidRange
from imap_tools.utils import check_command_status, encode_folder
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from core.config import ImapMailbox, Settings, validate_imap_mailbox
from core.errors import ConfigError, TransientError
from core.metrics import MAILS
from core.mailbox_health import record_poll
from core.models import ImapState, utcnow
from ingest import spool
from ingest.imap_lock import polling_alone

log = logging.getLogger(__name__)

BULK = 10  # messages per UID FETCH: bounded memory with 25 MB mails, few round trips otherwise
TIMEOUT_SECONDS = 60.0
KEYWORD = "$Postdesk"
CONNECTION_ERRORS = (OSError, imaplib.IMAP4.error, ImapToolsError)


class ImapUnavailable(TransientError):
    """The IMAP server could not be reached, refused the login, or failed in the middle of a poll."""


@dataclass(frozen=True)
class PollResult:
    fetched: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    resynced: bool = False
    skipped: bool = False  # another poller held the mailbox: nothing was read


class _Refused(UnexpectedCommandStatusError):
    """The server answered NO or BAD to an after-action."""


class _RawMessage(MailMessage):
    """A fetched mail that keeps the server's bytes (MailMessage keeps only a re-parsed copy)."""

    def __init__(self, fetch_data: list) -> None:
        super().__init__(fetch_data)
        self.raw: bytes = self._get_message_data_parts(fetch_data)[0]


@dataclass
class _Session:
    """One logged-in connection with the folder selected, and what the server told us about it."""
    box: BaseMailBox
    capabilities: frozenset[str]
    uidvalidity: int
    keywords: bool  # PERMANENTFLAGS allows new keywords (\*)


def mailbox_key(cfg: ImapMailbox) -> str:
    """The state row's name: user@host/folder (the port may change, the mailbox stays)."""
    return cfg.key


def poll_once(settings: Settings, sessions: sessionmaker[Session],
              on_stored: Callable[[], None] = lambda: None, mailbox: ImapMailbox | None = None) -> PollResult:
    """Import every mail of one mailbox (default: [imap]) above its stored UID into the spool,
    then do the after-action on it; skipped when another poller is at that mailbox right now.

    Raises ImapUnavailable when the server fails (what is committed stays committed); database
    errors propagate as they are. `on_stored` is called after each mail new to the spool.
    """
    cfg = settings.imap if mailbox is None else mailbox
    if not cfg.host:
        raise ConfigError(f"[{cfg.section}] host is empty: this mailbox is not polled")
    validate_imap_mailbox(cfg)
    with polling_alone(sessions, settings.paths.var_dir, cfg.key) as alone:
        if not alone:
            log.debug("imap %s: another poller is at it; skipping this poll", cfg.key)
            return PollResult(skipped=True)
        return _poll(settings, sessions, cfg, on_stored)


def _poll(settings: Settings, sessions: sessionmaker[Session], cfg: ImapMailbox,
          on_stored: Callable[[], None]) -> PollResult:
    """The poll itself, with the mailbox's lock held."""
    key = cfg.key
    action, target = cfg.after_action
    try:
        with _connect(cfg) as imap:
            state, resynced = _load_state(sessions, key, imap.uidvalidity)
            caught_up = state.acted_uid >= state.last_uid or _catch_up(sessions, key, imap, action, target, state)
            uids = _new_uids(imap.box, state.last_uid)
            counts = _import(sessions, settings, key, imap, uids, action, target, on_stored, acting=caught_up)
    except CONNECTION_ERRORS as exc:
        raise ImapUnavailable(f"IMAP {key} on port {cfg.port}: {type(exc).__name__}: {exc}") from exc
    result = PollResult(*counts, resynced=resynced)
    if result.fetched:
        log.info("imap %s: fetched %s, stored %s, duplicates %s, quarantined %s", key, result.fetched,
                 result.stored, result.duplicates, result.quarantined)
    return result


@contextmanager
def _connect(cfg: ImapMailbox) -> Iterator[_Session]:
    if cfg.ssl:
        box: BaseMailBox = MailBox(cfg.host, cfg.port, timeout=TIMEOUT_SECONDS,
                                   ssl_context=ssl.create_default_context())
    else:
        box = MailBoxUnencrypted(cfg.host, cfg.port, timeout=TIMEOUT_SECONDS)
    box.email_message_class = _RawMessage
    try:
        if not cfg.ssl and "STARTTLS" in box.client.capabilities:
            box.client.starttls(ssl.create_default_context())
        box.login(cfg.username, cfg.password, initial_folder=None)
        # The greeting's capabilities are the pre-login ones (Dovecot lists MOVE, UIDPLUS only after).
        _, data = box.client.capability()
        capabilities = frozenset(data[-1].decode().upper().split())
        box.folder.set(cfg.folder)
        uidvalidity = _response_code(box, "UIDVALIDITY")
        if uidvalidity is None:
            uidvalidity = str(box.folder.status(cfg.folder, ["UIDVALIDITY"])["UIDVALIDITY"])
        keywords = "\\*" in (_response_code(box, "PERMANENTFLAGS") or "")
        yield _Session(box, capabilities, int(uidvalidity), keywords)
    finally:
        _logout_quietly(box)


def _response_code(box: BaseMailBox, code: str) -> str | None:
    """A response code of the SELECT just made, e.g. [UIDVALIDITY 3857529045] → '3857529045'."""
    _, data = box.client.response(code)
    return data[-1].decode(errors="replace") if data and data[-1] is not None else None


def _logout_quietly(box: BaseMailBox) -> None:
    try:
        box.logout()
    except Exception:  # the connection is already gone; nothing is left to tell the server
        try:
            box.client.shutdown()
        except Exception:
            pass


def _load_state(sessions: sessionmaker[Session], key: str, uidvalidity: int) -> tuple[ImapState, bool]:
    """The folder's state row, created on first sight, reset to UID 0 when UIDVALIDITY changed."""
    with sessions() as session, session.begin():
        state = session.get(ImapState, key)
        if state is None:
            state = ImapState(mailbox=key, uidvalidity=uidvalidity, last_uid=0, acted_uid=0, updated_at=utcnow())
            session.add(state)
            return state, False
        if state.uidvalidity == uidvalidity:
            return state, False
        log.warning("imap %s: UIDVALIDITY changed from %s to %s; reading the folder again from UID 1",
                    key, state.uidvalidity, uidvalidity)
        state.uidvalidity, state.last_uid, state.acted_uid, state.updated_at = uidvalidity, 0, 0, utcnow()
        return state, True


def _advance(sessions: sessionmaker[Session], key: str, uidvalidity: int, column: str, uid: int) -> None:
    """Move last_uid or acted_uid forward (never back) and commit."""
    col = getattr(ImapState, column)
    with sessions() as session, session.begin():
        session.execute(update(ImapState).where(ImapState.mailbox == key, ImapState.uidvalidity == uidvalidity,
                                                col < uid).values({column: uid, "updated_at": utcnow()}))


def _new_uids(box: BaseMailBox, last_uid: int) -> list[int]:
    """UIDs above last_uid, ascending ('n:*' also matches the highest UID when n is above it)."""
    found = box.uids(AND(uid=UidRange(str(last_uid + 1), "*")), charset=None)
    return sorted(u for u in map(int, found) if u > last_uid)


def _import(sessions: sessionmaker[Session], settings: Settings, key: str, imap: _Session, uids: list[int],
            action: str, target: str, on_stored: Callable[[], None], acting: bool) -> tuple[int, int, int, int]:
    """Store each mail, advance last_uid, then act on it. `acting` False: a refused after-action
    left a gap below, so acted_uid must not move and the next poll's catch-up does them all."""
    counts = {"fetched": 0, "stored": 0, "duplicates": 0, "quarantined": 0}
    for start in range(0, len(uids), BULK):
        messages, missing = _fetch(imap.box, uids[start:start + BULK])
        acted = 0
        for msg in messages:
            uid = int(msg.uid)
            counts["fetched"] += 1
            MAILS.labels("imap", "received").inc()
            counts[_store(sessions, settings, key, uid, msg.raw, on_stored)] += 1
            _advance(sessions, key, imap.uidvalidity, "last_uid", uid)
            if acting:
                acting = _act(imap, action, target, str(uid), key)
                acted = uid if acting else acted
        if acted:  # one commit per bulk: redoing a few actions after a crash is harmless
            _advance(sessions, key, imap.uidvalidity, "acted_uid", acted)
        if missing:
            raise ImapUnavailable(f"IMAP {key}: the server did not return UID {missing}, which still exists")
    return counts["fetched"], counts["stored"], counts["duplicates"], counts["quarantined"]


def _store(sessions: sessionmaker[Session], settings: Settings, key: str, uid: int, raw: bytes,
           on_stored: Callable[[], None]) -> str:
    """Spool one mail (committed); say which count it adds to."""
    limit = settings.smtp.max_message_bytes
    if len(raw) > limit:  # kept whole in quarantine like the pipe door's, for replay
        row_id = spool.put_quarantined(sessions, raw, "imap", f"message larger than {limit} bytes")
        log.info("imap %s uid %s quarantined as raw_mail %s: larger than %s bytes", key, uid, row_id, limit)
        return "quarantined"
    spooled = spool.put(sessions, raw, "imap", envelope_from="", envelope_to=())
    if spooled.duplicate:
        return "duplicates"
    log.info("imap %s uid %s stored as raw_mail %s", key, uid, spooled.id)
    on_stored()
    return "stored"


def _fetch(box: BaseMailBox, uids: list[int]) -> tuple[list[_RawMessage], int]:
    """One bulk of mails by UID with BODY.PEEK[] (\\Seen untouched), in UID order, and the first
    UID the server left out although it still exists (0 if none): the mails from there on are
    held back, since moving last_uid past it would lose it."""
    box.client.response("FETCH")  # drop unsolicited FETCH (flag changes by other clients) so bulks stay aligned
    wanted = set(uids)
    got = sorted((m for m in box.fetch(uid_list=[str(u) for u in uids], mark_seen=False, bulk=True)
                  if m.uid is not None and int(m.uid) in wanted), key=lambda m: int(m.uid))
    left_out = wanted - {int(m.uid) for m in got}
    if not left_out:  # the usual case; otherwise expunged meanwhile, or a reply we could not read
        return got, 0
    present = set(map(int, box.uids(AND(uid=[str(u) for u in sorted(left_out)]), charset=None))) & left_out
    first = min(present, default=0)
    return ([m for m in got if int(m.uid) < first] if first else got), first


def _catch_up(sessions: sessionmaker[Session], key: str, imap: _Session, action: str, target: str,
              state: ImapState) -> bool:
    """Finish the after-action for mails stored before a crash or a refused action."""
    uid_set = f"{state.acted_uid + 1}:{state.last_uid}"
    log.info("imap %s: finishing '%s' for stored UIDs %s", key, action, uid_set)
    if not _act(imap, action, target, uid_set, key):
        return False
    _advance(sessions, key, imap.uidvalidity, "acted_uid", state.last_uid)
    return True


def _act(imap: _Session, action: str, target: str, uid_set: str, key: str) -> bool:
    """Flag, move or delete the stored mails; False when the server refused (a retry comes later)."""
    try:
        if action == "delete":
            _delete(imap, uid_set)
        elif action == "move":
            _move(imap, uid_set, target)
        else:
            flags = f"(\\Seen {KEYWORD})" if imap.keywords else "(\\Seen)"
            _uid_command(imap.box, "STORE", uid_set, "+FLAGS.SILENT", flags)
    except UnexpectedCommandStatusError as exc:
        log.warning("imap %s: '%s' refused for UIDs %s, retried next poll: %s", key, action, uid_set, exc)
        return False
    return True


def _uid_command(box: BaseMailBox, command: str, *args: str) -> None:
    check_command_status(box.client.uid(command, *args), _Refused)


def _delete(imap: _Session, uid_set: str) -> None:
    # imap-tools' delete() and flag() EXPUNGE the whole folder, which would also remove mails
    # another client only marked \Deleted; with UIDPLUS only ours go.
    _uid_command(imap.box, "STORE", uid_set, "+FLAGS.SILENT", "(\\Deleted)")
    if "UIDPLUS" in imap.capabilities:
        check_command_status(imap.box.client._simple_command("UID", "EXPUNGE", uid_set), _Refused)
    else:
        imap.box.expunge()


def _move(imap: _Session, uid_set: str, target: str) -> None:
    box = imap.box
    if not box.folder.exists(target):
        box.folder.create(target)
    if "MOVE" in imap.capabilities:
        _uid_command(box, "MOVE", uid_set, encode_folder(target))
    else:
        _uid_command(box, "COPY", uid_set, encode_folder(target))
        _delete(imap, uid_set)


class ImapPoller:
    """Polls one mailbox (default: [imap]) every poll_seconds in a thread (`run_forever`), or once
    per call of `poll` (an APScheduler job). Never raises: failures are logged and the next poll
    retries, so one failing mailbox never stops another's poller."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session],
                 on_stored: Callable[[], None] = lambda: None, interval: float | None = None,
                 mailbox: ImapMailbox | None = None) -> None:
        self.settings = settings
        self.sessions = sessions
        self.on_stored = on_stored
        self.mailbox = settings.imap if mailbox is None else mailbox
        self.interval = float(self.mailbox.poll_seconds) if interval is None else interval
        self.polls = 0
        self.skips = 0
        self.failures = 0
        self.last_error = ""

    @property
    def enabled(self) -> bool:
        return bool(self.mailbox.host)

    def poll(self) -> PollResult | None:
        """One pass; None when it failed (logged)."""
        self.polls += 1
        try:
            result = poll_once(self.settings, self.sessions, self.on_stored, self.mailbox)
        except ImapUnavailable as exc:  # the server's or the network's fault: say so, retry later
            self._failed(exc)
            log.warning("%s; retrying in %ss", exc, self.interval)
            record_poll(self.sessions, self.mailbox.key, self.last_error)
            return None
        except Exception as exc:  # ours (database down…): the traceback matters; nothing was acted on
            self._failed(exc)
            log.exception("IMAP poll of %s failed; retrying in %ss", self.mailbox.key, self.interval)
            record_poll(self.sessions, self.mailbox.key, self.last_error)
            return None
        self.skips += result.skipped
        self.last_error = ""
        record_poll(self.sessions, self.mailbox.key, None)  # the admin's mailbox page reads it
        return result

    def run_forever(self, stop: threading.Event) -> None:
        """Poll until `stop` is set (returns at once when the mailbox has no host)."""
        if not self.enabled:
            log.info("IMAP door disabled for [%s] (host is empty)", self.mailbox.section)
            return
        log.info("IMAP door polling %s ([%s]) every %ss", self.mailbox.key, self.mailbox.section, self.interval)
        while not stop.is_set():
            self.poll()
            stop.wait(self.interval)

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"


def mailbox_pollers(settings: Settings, sessions: sessionmaker[Session],
                    on_stored: Callable[[], None] = lambda: None) -> list[ImapPoller]:
    """One poller per mailbox with a host: [imap] first, then each [imap.mailboxes.<name>]."""
    return [ImapPoller(settings, sessions, on_stored, mailbox=box) for box in settings.imap.enabled_mailboxes]
