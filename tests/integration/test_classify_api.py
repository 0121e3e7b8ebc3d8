"""POST /api/tickets/classify over a real HTTP socket: offline by default, defaults when Mistral fails."""
from __future__ import annotations

import httpx
import pytest

from tests.fakes.mistral_server import FakeMistral, ok, status
from tests.support.server import PostdeskProcess


@pytest.fixture
def env(db_url):
    return {"POSTDESK_DATABASE__URL": db_url}


def test_offline_suggestion_while_typing(env, tmp_path):
    with PostdeskProcess(tmp_path / "run", env, only="web") as server:
        answer = httpx.post(f"{server.base_url}/api/tickets/classify",
                            json={"subject": "Refund", "description": "I was charged twice on my invoice."})
        bad = httpx.post(f"{server.base_url}/api/tickets/classify", json={"subject": "x"})
    assert answer.status_code == 200
    assert answer.json()["category"] == "billing" and answer.json()["fallback"] is False
    assert answer.json()["source"] == "offline"
    assert bad.status_code == 422 and "description" in bad.text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_failing_mistral_gives_defaults_marked_as_fallback(env, tmp_path):
    with FakeMistral(api_key="k", default=status(503)) as fake:
        env = {**env, "POSTDESK_AI__API_KEY": "k", "POSTDESK_AI__SERVER_URL": fake.url,
               "POSTDESK_AI__MAX_RETRIES": "0", "POSTDESK_AI__CLASSIFY_ANONYMOUS": "provider"}
        with PostdeskProcess(tmp_path / "run", env, only="web") as server:
            failed = httpx.post(f"{server.base_url}/api/tickets/classify", json={"description": "Printer smokes"})
            fake.script(ok({"summary": "Printer smokes.", "category": "technical", "priority": "critical",
                            "skills": ["printers"], "notes": []}))
            answered = httpx.post(f"{server.base_url}/api/tickets/classify", json={"description": "Printer smokes"})
    assert failed.status_code == 200
    assert failed.json() | {"summary": ""} == {"category": "general", "priority": "medium", "skills": [],
                                              "summary": "", "source": "default", "fallback": True}
    assert answered.json()["source"] == "mistral" and answered.json()["priority"] == "critical"
