"""What an outside probe found in the web portal, each case over the app as deployed (ASGI, real database)."""
from __future__ import annotations

import asyncio
import dataclasses

import pytest
from fastapi.testclient import TestClient

from portal.app import create_app


def client_for(desk, address: str = "127.0.0.1", **sections) -> TestClient:
    cfg = desk.settings
    for name, values in sections.items():
        cfg = dataclasses.replace(cfg, **{name: dataclasses.replace(getattr(cfg, name), **values)})
    return TestClient(create_app(cfg, desk.sessions), client=(address, 40000))


# ---- /metrics -----------------------------------------------------------------------------------------

def test_metrics_refuse_a_client_outside_the_allowed_networks(desk):
    outside = client_for(desk, "203.0.113.9")
    inside = client_for(desk, "127.0.0.1")
    assert outside.get("/metrics").status_code == 403
    answer = inside.get("/metrics")
    assert answer.status_code == 200 and "postdesk_mails_total" in answer.text


def test_metrics_token_opens_metrics_from_anywhere(desk):
    client = client_for(desk, "203.0.113.9", metrics={"token": "scrape-secret", "allowed_networks": ()})
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"}).status_code == 200


def test_invented_http_methods_add_no_metric_series(desk):
    client = client_for(desk)
    for n in range(20):
        client.request(f"PROBE{n}", "/healthz")
    text = client.get("/metrics").text
    assert "PROBE" not in text
    assert 'method="other"' in text


# ---- headers ------------------------------------------------------------------------------------------

def test_https_base_url_sends_strict_transport_security(desk):
    secure = client_for(desk, web={"base_url": "https://help.example.test"})
    plain = client_for(desk)
    assert "max-age=" in secure.get("/healthz").headers.get("strict-transport-security", "")
    assert "strict-transport-security" not in plain.get("/healthz").headers


def test_every_attachment_route_sends_the_sandbox_policy(desk):
    from tests.integration.test_api_tickets import make_world
    from core import notify
    from core.models import Ticket

    world = make_world(desk)
    with desk.sessions() as s, s.begin():
        ticket = s.get(Ticket, world.ticket_a)
        token = notify.create_access_link(s, desk.settings, ticket, ticket.requester).rsplit("/", 1)[1]
    urls = {"agent": f"/agent/tickets/{world.ticket_a}/attachments/{world.attachment_a}",
            "customer": f"/my/tickets/{world.ticket_a}/attachments/{world.attachment_a}",
            "link": f"/t/{token}/attachments/{world.attachment_a}"}
    from tests.integration.test_authz_matrix import app_routes

    routes = {path for _, path in app_routes(world.client.app) if "attachments" in path}
    assert len(routes) == len(urls)
    for who, url in urls.items():
        answer = world.client.get(url, headers=world.auth("agent" if who == "agent" else "customer_a"))
        assert answer.status_code == 200, who
        assert answer.headers["content-security-policy"] == "default-src 'none'; sandbox", who


# ---- body limits while streaming --------------------------------------------------------------------

class CountingBody:
    """A chunked body (no Content-Length) that records how much of it the app read."""

    def __init__(self, head: bytes, filler: bytes, total: int, tail: bytes = b"") -> None:
        self.chunks = iter([head, *[filler * 65536] * (total // 65536), tail])
        self.sent = 0

    async def receive(self) -> dict:
        chunk = next(self.chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        self.sent += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}


def post_chunked(desk, path: str, content_type: str, body: CountingBody) -> int:
    """POST through the app's ASGI interface as a server hands over a chunked body; the answer's status."""
    app = create_app(desk.settings, desk.sessions)
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"testserver"), (b"content-type", content_type.encode()),
                         (b"transfer-encoding", b"chunked"), (b"accept", b"text/html")],
             "client": ("127.0.0.1", 40000), "server": ("testserver", 80)}
    sent = []

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, body.receive, send))
    return next(m["status"] for m in sent if m["type"] == "http.response.start")


def test_chunked_json_beyond_one_mebibyte_is_refused_with_413(desk):
    body = CountingBody(b'{"name": "Nia", "email": "nia@example.org", "subject": "Hi", "description": "',
                        b"x", 3_200_000, b'"}')
    assert post_chunked(desk, "/api/tickets", "application/json", body) == 413
    assert body.sent < 1024 * 1024 + 200_000  # reading stopped at the limit


def test_chunked_multipart_beyond_the_form_limit_is_cut_off(desk):
    from portal.pages.public import MAX_FORM_BYTES

    boundary = "XyZ"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.pdf\"\r\n"
            f"Content-Type: application/pdf\r\n\r\n%PDF-1.4\n").encode()
    body = CountingBody(head, b"A", 4 * MAX_FORM_BYTES, f"\r\n--{boundary}--\r\n".encode())
    assert post_chunked(desk, "/new", f"multipart/form-data; boundary={boundary}", body) == 413
    assert body.sent < MAX_FORM_BYTES + 200_000


# ---- classify: throttled, offline for anonymous callers -------------------------------------------

def test_classify_is_throttled_per_client_address(desk):
    here, there = client_for(desk, "198.51.100.1", ai={"classify_per_minute": 3}), client_for(desk, "198.51.100.2")
    asked = [here.post("/api/tickets/classify", json={"description": "Refund please"}).status_code for _ in range(5)]
    assert asked == [200, 200, 200, 429, 429]
    assert there.post("/api/tickets/classify", json={"description": "Refund please"}).status_code == 200


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_anonymous_classify_uses_the_offline_rules_even_with_a_mistral_key(desk):
    from core.accounts import add_user
    from core.sessions import start_session
    from tests.fakes.mistral_server import FakeMistral, ok

    answer = {"summary": "Refund.", "category": "billing", "priority": "high", "skills": [], "notes": []}
    with FakeMistral(api_key="k", default=ok(answer)) as fake:
        client = client_for(desk, ai={"api_key": "k", "server_url": fake.url, "max_retries": 0})
        anonymous = client.post("/api/tickets/classify", json={"description": "I was charged twice"})
        assert len(fake.requests) == 0
        with desk.sessions() as s, s.begin():
            token = start_session(s, add_user(s, "cara@example.org", "customer"), kind="bearer")
        signed_in = client.post("/api/tickets/classify", json={"description": "I was charged twice"},
                                headers={"Authorization": f"Bearer {token}"})
    assert anonymous.status_code == 200 and anonymous.json()["source"] == "offline"
    assert signed_in.json()["source"] == "mistral" and len(fake.requests) == 1


# ---- error pages for browsers ---------------------------------------------------------------------

def test_a_malformed_ticket_address_shows_the_sites_not_found_page_to_a_browser(desk):
    from tests.integration.test_api_tickets import make_world

    world = make_world(desk)
    page = world.client.get("/agent/tickets/abc", headers={**world.auth("agent"), "accept": "text/html"})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "<h1>Page not found</h1>" in page.text and 'href="/agent/queue"' in page.text  # the agent's way on
    api = world.client.get("/api/tickets/abc", headers=world.auth("agent"))
    assert api.status_code == 422 and api.json()["detail"] == "invalid input"


def test_an_unknown_address_shows_a_not_found_page_with_the_way_on(desk):
    client = client_for(desk)
    page = client.get("/no/such/page", headers={"accept": "text/html"})
    assert page.status_code == 404 and "<h1>Page not found</h1>" in page.text
    assert "There is no page at this address." in page.text and 'href="/new"' in page.text
    assert client.get("/no/such/page").json() == {"detail": "Not Found"}
