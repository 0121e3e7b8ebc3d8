"""JSON routes on tickets (OpenAPI at /docs)."""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from core.ai.provider import ProviderError

router = APIRouter(prefix="/api/tickets", tags=["tickets"])


class ClassifyRequest(BaseModel):
    subject: str = Field("", max_length=998)
    description: str = Field(..., min_length=1, max_length=20_000)


class Suggestion(BaseModel):
    category: Literal["billing", "technical", "account", "general"]
    priority: Literal["low", "medium", "high", "critical"]
    skills: list[str]
    summary: str
    source: str = Field(description="mistral, offline, or default when the provider failed")
    fallback: bool = Field(description="true when the provider failed and these are the defaults")


@router.post("/classify", response_model=Suggestion)
async def classify(body: ClassifyRequest, request: Request) -> Suggestion:
    """Suggest category and priority for a description before it is submitted; never fails on the provider."""
    provider = request.app.state.triage_provider
    try:
        t = await run_in_threadpool(provider.triage, body.subject, body.description)
    except ProviderError:
        return Suggestion(category="general", priority="medium", skills=[], summary="", source="default",
                          fallback=True)
    return Suggestion(category=t.category, priority=t.priority, skills=list(t.skills), summary=t.summary,
                      source=provider.name, fallback=False)
