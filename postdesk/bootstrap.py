"""Composition root: settings → engine → sessions, shared by every command."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.config import Settings, load_settings, with_secret_key
from core.db import make_engine, make_session_factory


@dataclass
class Postdesk:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]


def bootstrap(config_path: str | None = None, settings: Settings | None = None) -> Postdesk:
    settings = with_secret_key(settings or load_settings(config_path))
    engine = make_engine(settings.database.url)
    return Postdesk(settings, engine, make_session_factory(engine))
