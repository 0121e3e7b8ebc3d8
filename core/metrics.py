"""Prometheus metrics of this process (each process of a deployment exposes its own)."""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MAILS = Counter("postdesk_mails_total", "Inbound mails by door and outcome "
                "(received, stored, duplicate, quarantined, refused)", ["door", "outcome"])
OUTBOUND = Counter("postdesk_outbound_mails_total", "Outgoing mails by purpose and outcome (sent, retry, failed)",
                   ["purpose", "outcome"])
JOB_SECONDS = Histogram("postdesk_job_seconds", "Time from a job's claim to its end, by kind and outcome",
                        ["kind", "outcome"])
AI_CALLS = Counter("postdesk_ai_calls_total", "Triage calls by provider and outcome", ["provider", "outcome"])
HTTP_SECONDS = Histogram("postdesk_http_request_seconds", "HTTP request latency by method, route and status class",
                         ["method", "route", "status"])
OUTBOX_BACKLOG = Gauge("postdesk_outbox_backlog", "Outgoing mails waiting to be sent (read at scrape time)")
QUARANTINED = Gauge("postdesk_quarantined_mails", "Mails in quarantine (read at scrape time)")
DEAD_JOBS = Gauge("postdesk_dead_jobs", "Jobs that failed for good (read at scrape time)")
