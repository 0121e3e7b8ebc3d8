"""A throwaway Dovecot (Debian's dovecot-imapd) on a free loopback port, and a proxy that can cut it off.

`Dovecot` runs `dovecot -F -c <tmp>/dovecot.conf` with everything (base_dir, state_dir,
log, maildirs, passwd-file) under one short temporary directory, so it never meets a
system Dovecot. Plain-text login is allowed because it listens on 127.0.0.1 only.
`ImapAccount` is what another mail client would do to the mailbox: append, flag, look.
`CuttingProxy` sits between the poller and Dovecot and drops (or holds) the connection
the moment the client sends a chosen command: a real network failure at an exact step.
"""
from __future__ import annotations

import ctypes
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from imap_tools import MailBoxUnencrypted

from tests.support.net import free_port

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USERS = 200


def dovecot_version(binary: str = DOVECOT) -> tuple[int, int]:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    major, minor = re.match(r"(\d+)\.(\d+)", out.strip()).groups()
    return int(major), int(minor)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM Dovecot when the test process dies without cleaning up."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        pass


def _user_or(name: str, fallback: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return pwd.getpwnam(fallback)


def _identities() -> tuple[str, str, int, int]:
    """(internal user, login user, mail uid, mail gid): Dovecot refuses to run logins or mail as root."""
    if os.getuid() != 0:
        me = pwd.getpwuid(os.getuid())
        return me.pw_name, me.pw_name, me.pw_uid, me.pw_gid
    internal = _user_or("dovecot", "nobody")
    login = _user_or("dovenull", "nobody")
    mail = pwd.getpwnam("nobody")
    return internal.pw_name, login.pw_name, mail.pw_uid, mail.pw_gid


def _config(root: Path, port: int, tls_port: int, version: tuple[int, int]) -> str:
    """dovecot.conf for this instance; TLS (STARTTLS on `port`, implicit on `tls_port`) when tls_port."""
    internal, login, uid, gid = _identities()
    v24 = version >= (2, 4)  # new syntax; written from the 2.4 documentation, not tried here
    if not tls_port:
        tls = "ssl = no\n"
    elif v24:
        tls = f"ssl = yes\nssl_server_cert_file = {root}/cert.pem\nssl_server_key_file = {root}/key.pem\n"
    else:
        tls = f"ssl = yes\nssl_cert = <{root}/cert.pem\nssl_key = <{root}/key.pem\n"
    common = f"""\
instance_name = postdesk-test-{port}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
{tls}auth_mechanisms = plain login
default_internal_user = {internal}
default_login_user = {login}
first_valid_uid = {min(uid, 500)}
# A failed login (one test uses a wrong password) must not delay the next logins from
# 127.0.0.1: no failure delay, and no auth penalty (its anvil socket made unusable).
auth_failure_delay = 0
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    {"listen" if v24 else "address"} = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    {"listen" if v24 else "address"} = 127.0.0.1
    port = {tls_port}
  }}
}}
"""
    if v24:
        return f"""\
dovecot_config_version = 2.4.0
dovecot_storage_version = 2.4.0
{common}auth_allow_cleartext = yes
mail_driver = maildir
mail_home = {root}/mail/%{{user}}
mail_path = ~
namespace inbox {{
  inbox = yes
}}
passdb passwd-file {{
  passwd_file_path = {root}/passwd
}}
userdb static {{
  fields {{
    uid = {uid}
    gid = {gid}
    home = {root}/mail/%{{user}}
  }}
}}
"""
    return f"""\
{common}disable_plaintext_auth = no
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
"""


def _self_signed_certificate(root: Path) -> Path:
    """cert.pem / key.pem for 127.0.0.1 and localhost (openssl comes with dovecot-core)."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(root / "key.pem"), "-out", str(root / "cert.pem")],
                   check=True, capture_output=True)
    return root / "cert.pem"


@dataclass(frozen=True)
class ImapAccount:
    """One mailbox on the test server, seen through a second, ordinary IMAP client."""
    host: str
    port: int
    username: str
    password: str

    def settings(self, **overrides) -> dict:
        """The [imap] section that points Postdesk at this mailbox (plain IMAP on loopback)."""
        return {"host": self.host, "port": self.port, "ssl": False, "username": self.username,
                "password": self.password, **overrides}

    def connect(self) -> MailBoxUnencrypted:
        return MailBoxUnencrypted(self.host, self.port, timeout=10).login(
            self.username, self.password, initial_folder=None)

    def append(self, raw: bytes, folder: str = "INBOX", flags: tuple[str, ...] = ()) -> int:
        """Deliver a mail into the folder (created when missing); returns its UID."""
        with self.connect() as mb:
            if folder != "INBOX" and not mb.folder.exists(folder):
                mb.folder.create(folder)
            _, data = mb.append(raw, folder, flag_set=list(flags))
        found = re.search(rb"APPENDUID \d+ (\d+)", data[-1])
        return int(found.group(1))

    def uids(self, folder: str = "INBOX") -> list[int]:
        with self.connect() as mb:
            if not mb.folder.exists(folder):
                return []
            mb.folder.set(folder)
            return sorted(int(u) for u in mb.uids("ALL"))

    def flags(self, folder: str = "INBOX") -> dict[int, set[str]]:
        """UID → flags, read without touching \\Seen."""
        with self.connect() as mb:
            mb.folder.set(folder)
            return {int(m.uid): set(m.flags) for m in mb.fetch("ALL", mark_seen=False, headers_only=True)}

    def raw(self, folder: str = "INBOX") -> dict[int, bytes]:
        with self.connect() as mb:
            mb.folder.set(folder)
            data = {}
            for uid in mb.uids("ALL"):
                typ, resp = mb.client.uid("FETCH", uid, "(BODY.PEEK[])")
                data[int(uid)] = resp[0][1]
            return data

    def add_flags(self, uid: int, flags: tuple[str, ...], folder: str = "INBOX") -> None:
        """What another client does (mark read, mark deleted), without expunging."""
        self._store(uid, "+FLAGS", flags, folder)

    def remove_flags(self, uid: int, flags: tuple[str, ...], folder: str = "INBOX") -> None:
        self._store(uid, "-FLAGS", flags, folder)

    def _store(self, uid: int, how: str, flags: tuple[str, ...], folder: str) -> None:
        with self.connect() as mb:
            mb.folder.set(folder)
            typ, _ = mb.client.uid("STORE", str(uid), how, f"({' '.join(flags)})")
            assert typ == "OK"

    def uidvalidity(self, folder: str = "INBOX") -> int:
        with self.connect() as mb:
            return mb.folder.status(folder, ["UIDVALIDITY"])["UIDVALIDITY"]

    def recreate_folder(self, folder: str, keep: list[bytes]) -> int:
        """Delete and create the folder again holding `keep` (a server rebuilding its index):
        the folder gets a new UIDVALIDITY and its UIDs start again at 1. INBOX cannot be deleted."""
        assert folder.upper() != "INBOX", "Dovecot refuses to delete INBOX: use another folder"
        with self.connect() as mb:
            if mb.folder.exists(folder):
                mb.folder.delete(folder)
            mb.folder.create(folder)
            for raw in keep:
                mb.append(raw, folder)
            return mb.folder.status(folder, ["UIDVALIDITY"])["UIDVALIDITY"]


class Dovecot:
    """`with Dovecot() as server:` a Dovecot listening on 127.0.0.1:<free port> until the block ends.

    With tls=True it also offers STARTTLS on `port` and implicit TLS on `tls_port`, with a
    self-signed certificate in `ca_file` (point SSL_CERT_FILE at it to trust it)."""

    def __init__(self, binary: str = DOVECOT, tls: bool = False) -> None:
        self.binary = binary
        self.port = free_port()
        self.tls_port = free_port() if tls else 0
        self.ca_file: Path | None = None
        self.root: Path | None = None
        self.proc: subprocess.Popen | None = None
        self._stdout = None
        self._accounts: list[ImapAccount] = []
        self._lock = threading.Lock()

    def __enter__(self) -> "Dovecot":
        if not os.access(self.binary, os.X_OK):
            raise RuntimeError(f"{self.binary} not found: install Debian's dovecot-imapd")
        # A short path: Dovecot's unix sockets live under base_dir and must fit in 108 bytes.
        self.root = Path(tempfile.mkdtemp(prefix="pd-dovecot-", dir="/tmp"))
        self.root.chmod(0o755)  # the mail and login users must reach their directories
        _, _, uid, gid = _identities()
        (self.root / "mail").mkdir()
        os.chown(self.root / "mail", uid, gid)
        # Dovecot re-reads a changed passwd-file at most once a second: write every user now.
        self._accounts = [ImapAccount("127.0.0.1", self.port, f"desk{i}", secrets.token_urlsafe(12))
                          for i in range(1, USERS + 1)]
        (self.root / "passwd").write_text("".join(f"{a.username}:{{PLAIN}}{a.password}::::::\n"
                                                  for a in self._accounts))
        (self.root / "passwd").chmod(0o644)
        conf = self.root / "dovecot.conf"
        if self.tls_port:
            self.ca_file = _self_signed_certificate(self.root)
        conf.write_text(_config(self.root, self.port, self.tls_port, dovecot_version(self.binary)))
        self._stdout = open(self.root / "stdout", "wb")
        self.proc = subprocess.Popen([self.binary, "-F", "-c", str(conf)], stdout=self._stdout,
                                     stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent)
        try:
            self._wait_until_listening(timeout=20)
        except RuntimeError:
            self.__exit__()
            raise
        return self

    def _wait_until_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for port in filter(None, (self.port, self.tls_port)):
            while True:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Dovecot did not start (exit status {self.proc.poll()}):\n{self.log()}")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    time.sleep(0.02)

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self._stdout is not None:
            self._stdout.close()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        parts = [p.read_text(errors="replace") for p in (self.root / "stdout", self.root / "dovecot.log")
                 if p.exists()]
        return "\n".join(parts)

    def add_user(self) -> ImapAccount:
        """A user nobody has used yet: an empty mailbox."""
        with self._lock:
            if not self._accounts:
                raise RuntimeError(f"all {USERS} test users are taken; raise USERS")
            return self._accounts.pop(0)


class CuttingProxy:
    """A TCP relay to an IMAP server that, once the client sends a command matching `trigger`,
    does not forward it and either closes both sides at once (hold=False: the network failed)
    or keeps the client waiting for an answer that never comes (hold=True: e.g. until the test
    kills the client process). `.tripped` is set at that moment. Only the first connection
    that sends the trigger trips; later connections pass through untouched."""

    def __init__(self, upstream_port: int, trigger: bytes, hold: bool = False) -> None:
        self.upstream_port = upstream_port
        self.trigger = re.compile(trigger)
        self.hold = hold
        self.tripped = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._closing = threading.Event()
        self._sockets: list[socket.socket] = []

    def __enter__(self) -> "CuttingProxy":
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._closing.set()
        self.listener.close()
        for s in list(self._sockets):
            _close(s)

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, from_client: bool) -> None:
        seen = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if from_client and not self.tripped.is_set():
                    seen = (seen + data)[-4096:]
                    if self.trigger.search(seen):
                        self.tripped.set()
                        if self.hold:
                            while src.recv(65536):  # swallow until the client goes away
                                pass
                        break
                dst.sendall(data)
        except OSError:
            pass
        _close(src)
        _close(dst)


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()
