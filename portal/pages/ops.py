"""Operations endpoints: readiness for orchestrators and Prometheus metrics."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from core import metrics
from core.health import readiness

router = APIRouter(tags=["operations"])


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """200 when the database answers and carries the newest migration, else 503; with backlog counts."""
    state = await run_in_threadpool(readiness, request.app.state.sessions)
    return JSONResponse(state.as_dict(), status_code=200 if state.ready else 503)


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(request: Request) -> Response:
    state = await run_in_threadpool(readiness, request.app.state.sessions)
    metrics.OUTBOX_BACKLOG.set(state.outbox_backlog)
    metrics.QUARANTINED.set(state.quarantined)
    metrics.DEAD_JOBS.set(state.dead_jobs)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
