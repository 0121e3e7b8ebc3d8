"""Settings: config.toml, then POSTDESK_<SECTION>__<KEY> environment overrides, into one frozen object.

The section and key names are a public interface (deployments and outside tests use them);
add keys, never rename them.
"""
from __future__ import annotations

import dataclasses
import os
import secrets
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, get_origin, get_type_hints

from core.errors import ConfigError

ENV_PREFIX = "POSTDESK_"


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = "sqlite:///var/postdesk.db"


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 2525
    addresses: tuple[str, ...] = ("support@example.test",)
    max_message_bytes: int = 25 * 1024 * 1024


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


@dataclass(frozen=True)
class ImapSettings:
    host: str = ""
    port: int = 993
    ssl: bool = True
    username: str = ""
    password: str = ""
    folder: str = "INBOX"
    poll_seconds: int = 60
    after: str = "flag"


@dataclass(frozen=True)
class IntakeSettings:
    autoreply_limit: int = 5
    autoreply_window_minutes: int = 60
    max_attempts: int = 3
    reopen_days: int = 0


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
    known = {f.name for f in fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ConfigError(f"[{section}] unknown key(s): {', '.join(sorted(unknown))}")
    kwargs = {k: _coerce(v, hints[k], f"[{section}] {k}") for k, v in values.items()}
    return cls(**kwargs)


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX):].partition("__")
        out.setdefault(section.lower(), {})[key.lower()] = value
    return out


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
    for section, values in _env_overrides(environ).items():
        data.setdefault(section, {}).update(values)
    if not data.get("ai", {}).get("api_key") and environ.get("MISTRAL_API_KEY"):
        data.setdefault("ai", {})["api_key"] = environ["MISTRAL_API_KEY"]

    sections = {f.name: f for f in fields(Settings)}
    unknown = set(data) - set(sections)
    if unknown:
        raise ConfigError(f"unknown config section(s): {', '.join(sorted(unknown))}")
    hints = get_type_hints(Settings)
    built = {name: _build_section(hints[name], data.get(name, {}), name) for name in sections}
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
    if settings.imap.after not in {"flag", "move", "delete"} and not settings.imap.after.startswith("move:"):
        raise ConfigError("[imap] after must be flag, delete or move:<folder>")


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


