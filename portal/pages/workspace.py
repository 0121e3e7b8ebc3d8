"""Agent pages of the workspace: bulk actions, merge, split, spam, followers, saved views, presence."""
from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
