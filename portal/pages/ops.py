"""Operations endpoints: readiness for orchestrators and Prometheus metrics."""
from __future__ import annotations

import hmac
import ipaddress

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from core import metrics
from core.config import Settings
from core.health import readiness

router = APIRouter(tags=["operations"])


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """200 when the database answers and carries the newest migration, else 503; with backlog counts."""
    state = await run_in_threadpool(readiness, request.app.state.sessions)
    return JSONResponse(state.as_dict(), status_code=200 if state.ready else 503)


def metrics_caller_allowed(request: Request, cfg: Settings) -> bool:
    """The [metrics] token as a bearer token, or a client address inside [metrics] allowed_networks."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if cfg.metrics.token and scheme.lower() == "bearer":
        return hmac.compare_digest(given.strip().encode(), cfg.metrics.token.encode())
    try:
        client = ipaddress.ip_address(request.client.host if request.client else "")
    except ValueError:  # not an address (a test client, a Unix socket): not in any network
        return False
    return any(client in ipaddress.ip_network(net, strict=False) for net in cfg.metrics.allowed_networks)


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(request: Request) -> Response:
    """Prometheus metrics, for the [metrics] token or the allowed networks only (they describe the mail flow)."""
    cfg: Settings = request.app.state.settings
    if not metrics_caller_allowed(request, cfg):
        if cfg.metrics.token:
            raise HTTPException(401, "/metrics needs the [metrics] token as a bearer token.",
                                headers={"WWW-Authenticate": "Bearer"})
        raise HTTPException(403, "/metrics answers only the networks in [metrics] allowed_networks.")
    state = await run_in_threadpool(readiness, request.app.state.sessions)
    metrics.OUTBOX_BACKLOG.set(state.outbox_backlog)
    metrics.QUARANTINED.set(state.quarantined)
    metrics.DEAD_JOBS.set(state.dead_jobs)
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
