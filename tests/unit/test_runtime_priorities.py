"""The all-in-one process gives intake priority: outbox delivery waits while mail pours in,
but never longer than its limit, and the intake loop nudges delivery at most so often."""
from __future__ import annotations

import time

import pytest

import postdesk.runtime as runtime
from postdesk.runtime import OutboxDelivery, Throttled


def test_delivery_runs_at_once_when_intake_is_idle_and_waits_at_most_max_wait_while_it_is_busy(monkeypatch):
    runs: list[float] = []
    clock = [100.0]
    monkeypatch.setattr(runtime.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(runtime, "deliver_due", lambda sessions, settings: runs.append(clock[0]))
    busy = [False]
    asked: list[float] = []
    job = OutboxDelivery(desk=type("Desk", (), {"sessions": None, "settings": None})(),
                         intake_has_work=lambda: busy[0], max_wait=5.0, run_in=asked.append)

    job()
    assert runs == [100.0]          # idle intake: deliver now
    busy[0] = True
    for t in (101.0, 103.0, 104.9):
        clock[0] = t
        job()
    assert runs == [100.0]          # mail keeps coming: wait
    assert asked == pytest.approx([4.0, 2.0, 0.1])  # and ask for a run when the wait is over
    clock[0] = 105.0
    job()
    assert runs == [100.0, 105.0]   # but never longer than max_wait
    busy[0] = False
    clock[0] = 105.5
    job()
    assert runs == [100.0, 105.0, 105.5]


def test_throttled_calls_at_most_once_per_period(monkeypatch):
    calls: list[float] = []
    clock = [0.0]
    monkeypatch.setattr(runtime.time, "monotonic", lambda: clock[0])
    nudge = Throttled(lambda: calls.append(clock[0]), 0.5)
    for t in (0.0, 0.1, 0.49, 0.5, 0.6, 1.2):
        clock[0] = t
        nudge()
    assert calls == [0.0, 0.5, 1.2]


def test_throttled_with_trailing_makes_the_last_dropped_call_when_the_period_ends():
    calls: list[float] = []
    nudge = Throttled(lambda: calls.append(time.monotonic()), 0.2, trailing=True)
    start = time.monotonic()
    for _ in range(5):  # one call now, four dropped: one of them is made when the period ends
        nudge()
    assert len(calls) == 1
    deadline = start + 5
    while len(calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)  # and no more than one
    assert len(calls) == 2 and calls[1] - calls[0] >= 0.19
