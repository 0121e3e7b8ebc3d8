"""Prometheus metrics. `postdesk serve` runs its worker role in a child process and shares the
metrics of both through prometheus_client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set before
this module is imported); separate `serve --only …` processes each expose their own, unless the
deployment sets that directory for them too."""
from __future__ import annotations

import os

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

MAILS = Counter("postdesk_mails_total", "Inbound mails by door and outcome "
                "(received, stored, duplicate, quarantined, refused)", ["door", "outcome"])
OUTBOUND = Counter("postdesk_outbound_mails_total", "Outgoing mails by purpose and outcome (sent, retry, failed)",
                   ["purpose", "outcome"])
JOB_SECONDS = Histogram("postdesk_job_seconds", "Time from a job's claim to its end, by kind and outcome",
                        ["kind", "outcome"])
AI_CALLS = Counter("postdesk_ai_calls_total", "Triage calls by provider and outcome", ["provider", "outcome"])
HTTP_SECONDS = Histogram("postdesk_http_request_seconds", "HTTP request latency by method, route and status class",
                         ["method", "route", "status"])
# Set by the process answering the scrape: across processes, the value written last counts.
OUTBOX_BACKLOG = Gauge("postdesk_outbox_backlog", "Outgoing mails waiting to be sent (read at scrape time)",
                       multiprocess_mode="mostrecent")
QUARANTINED = Gauge("postdesk_quarantined_mails", "Mails in quarantine (read at scrape time)",
                    multiprocess_mode="mostrecent")
DEAD_JOBS = Gauge("postdesk_dead_jobs", "Jobs that failed for good (read at scrape time)",
                  multiprocess_mode="mostrecent")


def exposition() -> bytes:
    """The text a scrape gets: every process's metrics in multiprocess mode, else this process's."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)
