"""The queue's matches per status and the API's total, on both databases: on PostgreSQL they come
from the tally the triggers of migration 0007 keep (folded together by readers), on SQLite from
counting; either way they must equal a count of the tickets after every kind of change."""
from __future__ import annotations

import pytest
from sqlalchemy import delete, func, select, text, update

from core import queries, workflow
from core.models import Ticket
from core.queries import TicketFilter


def _open(desk, n: int) -> list[int]:
    with desk.sessions() as s, s.begin():
        tickets = [workflow.open_from_web(s, desk.settings, email=f"c{i}@example.org", name="C", subject=f"T{i}",
                                          description="Help.") for i in range(n)]
        s.flush()
        return [t.id for t in tickets]


def _set_status(desk, ids: list[int], status: str) -> None:
    with desk.sessions() as s, s.begin():
        s.execute(update(Ticket).where(Ticket.id.in_(ids)).values(status=status))


def _truth(desk) -> dict[str, int]:
    with desk.sessions() as s:
        return dict(s.execute(select(Ticket.status, func.count()).group_by(Ticket.status)).all())


def _shown(desk, **filters) -> tuple[dict[str, int], int, int]:
    """(per status, queue total, API total) as the queue and GET /api/tickets compute them."""
    with desk.sessions() as s:
        found = queries.queue_page(s, TicketFilter(**filters))
        _, api_total = queries.list_tickets(s, TicketFilter(**filters))
        return found.per_status, found.total, api_total


def test_counts_follow_new_changed_and_deleted_tickets(desk):
    ids = _open(desk, 6)
    assert _shown(desk) == ({"new": 6}, 6, 6)
    _set_status(desk, ids[:2], "closed")
    _set_status(desk, ids[2:3], "waiting")
    _set_status(desk, ids[3:4], "new")  # unchanged: no tally row, no change
    with desk.sessions() as s, s.begin():
        s.execute(delete(Ticket).where(Ticket.id == ids[5]))
    assert _truth(desk) == {"new": 2, "closed": 2, "waiting": 1}
    assert _shown(desk) == ({"new": 2, "closed": 2, "waiting": 1}, 5, 5)
    per_status, queue_total, api_total = _shown(desk, status=("new", "waiting"))
    assert per_status == {"new": 2, "closed": 2, "waiting": 1} and queue_total == 3 and api_total == 3


def test_a_rolled_back_change_does_not_count(desk):
    ids = _open(desk, 2)
    with desk.sessions() as s:
        s.execute(update(Ticket).where(Ticket.id == ids[0]).values(status="resolved"))
        s.rollback()
    assert _shown(desk) == ({"new": 2}, 2, 2)


def test_other_filters_still_count_the_tickets(desk):
    ids = _open(desk, 3)
    with desk.sessions() as s, s.begin():
        s.execute(update(Ticket).where(Ticket.id == ids[0]).values(priority="critical", status="waiting"))
    assert _shown(desk, priority=("critical",)) == ({"waiting": 1}, 1, 1)


def test_readers_fold_the_tally_and_keep_its_sums(desk, monkeypatch):
    if desk.settings.database.url.startswith("sqlite"):
        pytest.skip("the tally is PostgreSQL's; SQLite counts the tickets (the tests above)")
    monkeypatch.setattr(queries, "TALLY_FOLD_AFTER", 4)
    ids = _open(desk, 5)
    _set_status(desk, ids[:3], "in_progress")
    _set_status(desk, ids[:1], "resolved")
    with desk.sessions() as s:
        before = s.scalar(text("SELECT count(*) FROM ticket_status_tally"))
    assert before == 5 + 2 * 3 + 2
    assert _shown(desk) == ({"new": 2, "in_progress": 2, "resolved": 1}, 5, 5)  # read, then folded
    with desk.sessions() as s:
        rows = s.execute(text("SELECT status, n FROM ticket_status_tally ORDER BY status")).all()
    assert [tuple(r) for r in rows] == [("in_progress", 2), ("new", 2), ("resolved", 1)]
    _set_status(desk, ids[3:4], "closed")
    assert _shown(desk) == ({"new": 1, "in_progress": 2, "resolved": 1, "closed": 1}, 5, 5) == \
        (_truth(desk), 5, 5)


def test_the_schedulers_fold_leaves_one_row_per_status(desk):
    if not desk.settings.database.url.startswith("postgresql"):
        pytest.skip("the tally is PostgreSQL's")
    ids = _open(desk, 4)
    _set_status(desk, ids[:3], "waiting")
    queries.fold_status_tally(desk.engine)  # what the worker's scheduler runs every minute
    with desk.sessions() as s:
        rows = s.execute(text("SELECT status, n FROM ticket_status_tally ORDER BY status")).all()
    assert [tuple(r) for r in rows] == [("new", 1), ("waiting", 3)]
    assert _shown(desk) == ({"new": 1, "waiting": 3}, 4, 4)
