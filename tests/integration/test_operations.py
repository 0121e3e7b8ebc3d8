"""/readyz and /metrics over a real HTTP socket, fed by a mail through the real SMTP door."""
from __future__ import annotations

import smtplib
import time

import httpx

from tests.support.server import PostdeskProcess


def test_readiness_and_metrics_follow_the_mail(db_url, tmp_path):
    with PostdeskProcess(tmp_path / "run", {"POSTDESK_DATABASE__URL": db_url}) as server:
        ready = httpx.get(server.base_url + "/readyz")
        assert ready.status_code == 200
        assert ready.json() | {"error": ""} == {"ready": True, "database": True, "migrations_at_head": True,
                                                "quarantined": 0, "dead_jobs": 0, "outbox_backlog": 0,
                                                "spool_backlog": 0, "error": ""}
        with smtplib.SMTP("127.0.0.1", server.smtp_port) as smtp:
            smtp.sendmail("ann@example.org", ["support@example.test"],
                          b"From: ann@example.org\r\nSubject: hi\r\nMessage-ID: <o1@x>\r\n\r\nhello\r\n")
            code, _ = smtp.rcpt("nobody@elsewhere.example") if smtp.mail("a@b.c")[0] == 250 else (0, b"")
            assert code == 550
        deadline = time.monotonic() + 15
        text = ""
        while time.monotonic() < deadline:
            text = httpx.get(server.base_url + "/metrics").text
            if ('postdesk_outbound_mails_total{outcome="sent",purpose="acknowledgement"} 1.0' in text
                    and 'postdesk_job_seconds_count{kind="triage",outcome="done"} 1.0' in text
                    and "postdesk_outbox_backlog 0.0" in text):
                # the acknowledgement went out, the triage job ran (in either order), and the
                # assignment notice triage queued for the first admin went out after it
                break
            time.sleep(0.2)
    assert 'postdesk_mails_total{door="smtp",outcome="stored"} 1.0' in text
    assert 'postdesk_mails_total{door="smtp",outcome="refused"} 1.0' in text
    assert 'postdesk_outbound_mails_total{outcome="sent",purpose="acknowledgement"} 1.0' in text
    assert 'postdesk_job_seconds_count{kind="triage",outcome="done"} 1.0' in text
    assert "postdesk_http_request_seconds_bucket" in text and 'route="/readyz"' in text
    assert "postdesk_outbox_backlog 0.0" in text


def test_readiness_fails_when_the_database_is_unreachable(tmp_path):
    env = {"POSTDESK_DATABASE__URL": "postgresql://postgres@127.0.0.1:1/none?connect_timeout=1"}
    with PostdeskProcess(tmp_path / "run", env, only="web", extra_args=["--no-migrate"]) as server:
        answer = httpx.get(server.base_url + "/readyz")
    assert answer.status_code == 503 and answer.json()["database"] is False
