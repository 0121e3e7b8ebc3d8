"""Settings: config.toml, then POSTDESK_<SECTION>__<KEY> environment overrides, into one frozen object.
A table inside a section takes one more __ per level: [imap.mailboxes.sales] host is
POSTDESK_IMAP__MAILBOXES__SALES__HOST.

The section and key names are a public interface (deployments and outside tests use them);
add keys, never rename them.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import secrets
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, get_origin, get_type_hints

from core.errors import ConfigError

ENV_PREFIX = "POSTDESK_"
DEFAULT_MOVE_FOLDER = "Postdesk"
# A mailbox name is also part of environment names: POSTDESK_IMAP__MAILBOXES__<NAME>__<KEY>.
MAILBOX_NAME = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)*")


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = "sqlite:///var/postdesk.db"


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 2525
    addresses: tuple[str, ...] = ("support@example.test",)
    max_message_bytes: int = 25 * 1024 * 1024
    # Bytes of DATA held in memory across all connections at once; beyond it a sender gets 452 4.3.1.
    max_inflight_bytes: int = 100 * 1024 * 1024
    # Longest wait for the spool to store a mail before DATA is answered 451 (the sender retries).
    data_timeout_seconds: float = 30.0


@dataclass(frozen=True)
class OutboundSettings:
    host: str = ""
    port: int = 25
    starttls: bool = False
    username: str = ""
    password: str = ""
    outbox_dir: str = "var/outbox"
    from_address: str = ""
    timeout_seconds: float = 30.0
    max_attempts: int = 8
    connections: int = 2
    lease_seconds: float = 30.0
    max_attachment_bytes: int = 10 * 1024 * 1024
    coalesce_seconds: float = 60.0


@dataclass(frozen=True)
class WebSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    base_url: str = ""
    secret_key: str = ""
    link_days: int = 90


@dataclass(frozen=True)
class AiSettings:
    provider: str = "auto"
    api_key: str = ""
    model: str = "mistral-small-latest"
    server_url: str = ""
    timeout_seconds: float = 20.0
    max_retries: int = 3
    rules_file: str = ""
    concurrency: int = 4
    breaker_failures: int = 3
    breaker_seconds: float = 60.0
    classify_anonymous: str = "offline"
    classify_per_minute: int = 30
    thread_token_budget: int = 3000


@dataclass(frozen=True)
class ImapMailbox:
    """One mailbox folder the IMAP door polls: [imap] itself (name "") or [imap.mailboxes.<name>]."""
    host: str = ""
    port: int = 993
    ssl: bool = True
    username: str = ""
    password: str = field(default="", repr=False)  # Settings end up in logs and tracebacks
    folder: str = "INBOX"
    poll_seconds: int = 60
    after: str = "flag"
    name: str = field(default="", metadata={"key": False})

    @property
    def section(self) -> str:
        """Where it is configured, as error messages and logs name it."""
        return f"imap.mailboxes.{self.name}" if self.name else "imap"

    @property
    def key(self) -> str:
        """What identifies the mailbox (its state row, its lock): user@host/folder; the port may change."""
        return f"{self.username}@{self.host.lower()}/{self.folder}"

    @property
    def after_action(self) -> tuple[str, str]:
        """('flag'|'delete'|'move', target folder) from `after`; a bare "move" moves to "Postdesk"."""
        action, _, target = self.after.partition(":")
        if action == "move":
            return "move", target.strip() or DEFAULT_MOVE_FOLDER
        return action, ""


@dataclass(frozen=True)
class ImapSettings(ImapMailbox):
    """[imap] is the first mailbox; each [imap.mailboxes.<name>] table adds one, its unset keys taken from [imap]."""
    mailboxes: tuple[ImapMailbox, ...] = field(default=(), metadata={"key": False})

    @property
    def enabled_mailboxes(self) -> tuple[ImapMailbox, ...]:
        """Every mailbox with a host, [imap] first: the ones to poll."""
        first = ImapMailbox(**{f.name: getattr(self, f.name) for f in fields(ImapMailbox)})
        return tuple(m for m in (first, *self.mailboxes) if m.host)


@dataclass(frozen=True)
class IntakeSettings:
    autoreply_limit: int = 5
    autoreply_window_minutes: int = 60
    max_attempts: int = 3
    reopen_days: int = 0
    parent_wait_seconds: float = 5.0
    sender_auth: bool = True
    dns_servers: tuple[str, ...] = ()
    dns_timeout_seconds: float = 2.0
    trusted_authserv_ids: tuple[str, ...] = ()
    hold_unverified: bool = False
    max_followers: int = 50


@dataclass(frozen=True)
class OidcSettings:
    issuer: str = ""
    client_id: str = ""
    client_secret: str = ""


@dataclass(frozen=True)
class LogSettings:
    format: str = "text"


@dataclass(frozen=True)
class PathSettings:
    var_dir: str = "var"


@dataclass(frozen=True)
class MetricsSettings:
    token: str = field(default="", repr=False)  # Settings end up in logs and tracebacks
    allowed_networks: tuple[str, ...] = ("127.0.0.0/8", "::1/128")


@dataclass(frozen=True)
class Settings:
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    outbound: OutboundSettings = field(default_factory=OutboundSettings)
    web: WebSettings = field(default_factory=WebSettings)
    ai: AiSettings = field(default_factory=AiSettings)
    imap: ImapSettings = field(default_factory=ImapSettings)
    intake: IntakeSettings = field(default_factory=IntakeSettings)
    oidc: OidcSettings = field(default_factory=OidcSettings)
    log: LogSettings = field(default_factory=LogSettings)
    paths: PathSettings = field(default_factory=PathSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)

    @property
    def from_address(self) -> str:
        return self.outbound.from_address or self.smtp.addresses[0]

    @property
    def base_url(self) -> str:
        return (self.web.base_url or f"http://{self.web.host}:{self.web.port}").rstrip("/")

    @property
    def ai_provider(self) -> str:
        """The provider that will actually run: 'auto' picks Mistral only when a key is set."""
        if self.ai.provider == "auto":
            return "mistral" if self.ai.api_key else "offline"
        return self.ai.provider


def _coerce(raw: Any, target: Any, where: str) -> Any:
    """Turn a TOML or environment value into the declared field type."""
    if get_origin(target) is tuple:
        if isinstance(raw, str):
            items = [part.strip() for part in raw.split(",") if part.strip()]
        elif isinstance(raw, list):
            items = [str(part).strip() for part in raw]
        else:
            raise ConfigError(f"{where}: expected a list, got {raw!r}")
        return tuple(items)
    if target is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off", ""}:
            return False
        raise ConfigError(f"{where}: expected true/false, got {raw!r}")
    if target in (int, float):
        try:
            return target(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {raw!r}") from None
    return str(raw)


def _build_section(cls: type, values: Mapping[str, Any], section: str) -> Any:
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls) if f.metadata.get("key", True)}
    unknown = set(values) - known
    if unknown:
        raise ConfigError(f"[{section}] unknown key(s): {', '.join(sorted(unknown))}")
    kwargs = {k: _coerce(v, hints[k], f"[{section}] {k}") for k, v in values.items()}
    return cls(**kwargs)


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """POSTDESK_<SECTION>__<KEY> as {section: {key: value}}; each further __ goes one table deeper
    (POSTDESK_IMAP__MAILBOXES__SALES__HOST is [imap.mailboxes.sales] host)."""
    out: dict[str, dict[str, Any]] = {}
    for name, value in environ.items():
        if name.startswith(ENV_PREFIX) and "__" in name:
            _merge(out, _nested(name[len(ENV_PREFIX):].lower().split("__"), value), name)
    return out


def _nested(path: list[str], value: Any) -> dict[str, Any]:
    for part in reversed(path):
        value = {part: value}
    return value


def _merge(into: dict[str, Any], values: Mapping[str, Any], where: str, path: str = "") -> None:
    """Copy `values` into `into`, table by table (a key set later wins; a table never replaces a value)."""
    for key, value in values.items():
        name = f"{path}.{key}" if path else key
        if isinstance(value, Mapping):
            table = into.setdefault(key, {})
            if not isinstance(table, dict):
                raise ConfigError(f"{where}: {name} is a single value, not a table of keys")
            _merge(table, value, where, name)
        elif isinstance(into.get(key), dict):
            raise ConfigError(f"{where}: {name} is a table of keys, not a single value")
        else:
            into[key] = value


def load_settings(path: str | os.PathLike[str] | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Read config.toml (if any) and POSTDESK_* overrides into a frozen Settings."""
    environ = os.environ if environ is None else environ
    data: dict[str, dict[str, Any]] = {}
    path = path or environ.get("POSTDESK_CONFIG")
    if path is None and Path("config.toml").is_file():
        path = "config.toml"
    if path is not None:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: {exc}") from None
    _merge(data, _env_overrides(environ), "POSTDESK_* environment")
    if not data.get("ai", {}).get("api_key") and environ.get("MISTRAL_API_KEY"):
        data.setdefault("ai", {})["api_key"] = environ["MISTRAL_API_KEY"]

    sections = {f.name: f for f in fields(Settings)}
    unknown = set(data) - set(sections)
    if unknown:
        raise ConfigError(f"unknown config section(s): {', '.join(sorted(unknown))}")
    hints = get_type_hints(Settings)
    built = {name: _build_section(hints[name], data.get(name, {}), name) for name in sections if name != "imap"}
    built["imap"] = _build_imap(data.get("imap", {}))
    settings = Settings(**built)
    _validate(settings)
    return settings


def _validate(settings: Settings) -> None:
    if not settings.smtp.addresses:
        raise ConfigError("[smtp] addresses must name at least one support address")
    if settings.log.format not in {"text", "json"}:
        raise ConfigError("[log] format must be text or json")
    if settings.ai.provider not in {"auto", "mistral", "offline"}:
        raise ConfigError("[ai] provider must be auto, mistral or offline")
    _validate_imap(settings.imap)
    if settings.outbound.connections < 1 or settings.outbound.lease_seconds < 1:
        raise ConfigError("[outbound] connections and lease_seconds must be at least 1")
    _validate_hardening(settings)


def _validate_hardening(settings: Settings) -> None:
    if settings.ai.classify_anonymous not in {"offline", "provider"}:
        raise ConfigError("[ai] classify_anonymous must be offline or provider")
    if settings.ai.concurrency < 1 or settings.ai.breaker_failures < 1:
        raise ConfigError("[ai] concurrency and breaker_failures must be at least 1")
    if settings.smtp.max_inflight_bytes < 1 or settings.smtp.data_timeout_seconds <= 0:
        raise ConfigError("[smtp] max_inflight_bytes and data_timeout_seconds must be positive")
    for network in settings.metrics.allowed_networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ConfigError(f"[metrics] allowed_networks: {network!r} is not a network (e.g. 10.0.0.0/8)") from None


def _build_imap(values: Mapping[str, Any]) -> ImapSettings:
    """[imap], and one mailbox per [imap.mailboxes.<name>] table holding [imap]'s keys where it sets none."""
    tables = values.get("mailboxes", {})
    if not isinstance(tables, Mapping) or not all(isinstance(t, Mapping) for t in tables.values()):
        raise ConfigError("[imap] mailboxes must be tables: [imap.mailboxes.<name>] with host, username, …")
    first = _build_section(ImapMailbox, {k: v for k, v in values.items() if k != "mailboxes"}, "imap")
    named = tuple(_named_mailbox(name, table, first) for name, table in tables.items())
    return ImapSettings(**{f.name: getattr(first, f.name) for f in fields(ImapMailbox)}, mailboxes=named)


def _named_mailbox(name: str, table: Mapping[str, Any], first: ImapMailbox) -> ImapMailbox:
    section = f"imap.mailboxes.{name}"
    if not MAILBOX_NAME.fullmatch(name):
        raise ConfigError(f"[{section}]: a mailbox name is lower-case letters and digits, words joined by "
                          f"single underscores (it is part of POSTDESK_IMAP__MAILBOXES__<NAME>__<KEY>)")
    own = _build_section(ImapMailbox, table, section)
    return dataclasses.replace(first, name=name, **{key: getattr(own, key) for key in table})


def _validate_imap(imap: ImapSettings) -> None:
    for box in (imap, *imap.mailboxes):
        if box.after not in {"flag", "move", "delete"} and not box.after.startswith("move:"):
            raise ConfigError(f"[{box.section}] after must be flag, delete or move:<folder>")
    polled: dict[tuple[str, str, str], str] = {}
    for box in imap.enabled_mailboxes:
        validate_imap_mailbox(box)
        same = (box.username.lower(), box.host.lower(), "INBOX" if box.folder.upper() == "INBOX" else box.folder)
        if same in polled:
            raise ConfigError(f"[{box.section}] polls {box.key}, which [{polled[same]}] polls already: "
                              f"give each mailbox folder one table")
        polled[same] = box.section


def validate_imap_mailbox(box: ImapMailbox) -> None:
    """Refuse a mailbox setting that could only go wrong once polling starts."""
    action, target = box.after_action
    if action == "move" and target == box.folder:
        raise ConfigError(f"[{box.section}] after moves mails into {target!r}, the folder it reads: they would come back")
    if box.poll_seconds < 1:
        raise ConfigError(f"[{box.section}] poll_seconds must be at least 1")


def with_secret_key(settings: Settings) -> Settings:
    """Return settings whose web.secret_key is set, generating and storing one under var/ on first run."""
    if settings.web.secret_key:
        return settings
    key_file = Path(settings.paths.var_dir) / "secret_key"
    if key_file.is_file():
        key = key_file.read_text().strip()
    else:
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        try:
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process won the race: use its key
            key = key_file.read_text().strip()
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(key + "\n")
    return dataclasses.replace(settings, web=dataclasses.replace(settings.web, secret_key=key))


