"""JSON routes: users (OpenAPI at /docs)."""
from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api", tags=["users"])
