"""Injected dependencies: a database session per request, the settings."""
from __future__ import annotations

from typing import Iterator

from fastapi import Request
from sqlalchemy.orm import Session

from core.config import Settings


def db(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


def settings(request: Request) -> Settings:
    return request.app.state.settings
