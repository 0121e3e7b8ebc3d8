"""Nothing lost, nothing doubled, on every mail of the development corpus (../shared/corpus)
through the real intake on both databases: each distinct input ends as a message, a recognised
automatic mail kept with its bytes, or a quarantined mail; none is lost or stored twice."""
from __future__ import annotations

import json
from collections import Counter

import pytest
from sqlalchemy import func, select

from core.mail.identity import mail_fingerprint
from core.models import AutomaticMail, Message, RawMail
from ingest import spool, worker
from tests.conftest import CORPUS

pytestmark = pytest.mark.skipif(not (CORPUS / "manifest.jsonl").is_file(), reason=f"no corpus at {CORPUS}")


def _corpus_mails() -> list[bytes]:
    entries = [json.loads(line) for line in (CORPUS / "manifest.jsonl").read_text().splitlines() if line.strip()]
    return [(CORPUS / e["path"]).read_bytes() for e in entries if e["kind"] == "message"]


def test_every_distinct_corpus_mail_ends_stored_recognised_or_quarantined(desk):
    mails = _corpus_mails()
    for raw in mails:
        if raw.strip():
            spool.put(desk.sessions, raw, "pipe", "")
        else:
            spool.put_quarantined(desk.sessions, raw, "pipe", "empty message")
    while worker.drain(desk.sessions, desk.settings, batch=100):
        pass
    with desk.sessions() as s:
        rows = s.execute(select(RawMail.id, RawMail.state, RawMail.raw)).all()
        on_a_ticket = set(s.scalars(select(Message.raw_mail_id)))
        recognised = dict(s.execute(select(AutomaticMail.raw_mail_id, AutomaticMail.kind)).all())
        kinds = Counter(recognised.values())
    distinct = {mail_fingerprint(raw) for raw in mails if raw.strip()}
    stored = Counter(mail_fingerprint(r.raw) for r in rows if r.raw.strip())
    assert set(stored) == distinct and set(stored.values()) == {1}  # each distinct mail once, none lost
    assert {r.raw for r in rows} <= set(mails)  # kept as received
    lost = [r.id for r in rows if r.id not in on_a_ticket and r.id not in recognised and r.state != "quarantined"]
    assert not lost, f"raw_mail rows neither on a ticket, nor recognised, nor quarantined: {lost}"
    assert all(r.state in ("done", "quarantined") for r in rows)
    print(f"\n{len(mails)} corpus mails, {len(distinct)} distinct: {len(on_a_ticket)} on tickets, "
          f"{len(recognised)} recognised ({dict(kinds)}), {sum(r.state == 'quarantined' for r in rows)} quarantined")
