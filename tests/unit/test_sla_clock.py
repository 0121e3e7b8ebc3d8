"""Service-level arithmetic on a fixed clock: business hours, a public holiday, a waiting pause,
a reopen (no sleeps: every instant is given)."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from core.config import SlaSettings
from core.sla.calendar import add_business_time, business_time
from core.sla.clock import sla_state
from core.sla.policy import calendar, targets

BERLIN = ZoneInfo("Europe/Berlin")
POLICY = SlaSettings(timezone="Europe/Berlin", business_hours="09:00-17:00", holidays_country="DE")
CAL = calendar(POLICY)
HIGH = targets(POLICY, "high")          # 4 h first response, 24 h resolution, warning at 80 %


def berlin(day: str, hhmm: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=BERLIN).astimezone(timezone.utc)


CREATED = berlin("2026-12-24", "16:00")   # Thursday afternoon; Friday 25th and Saturday 26th are holidays


def test_first_response_due_skips_the_holiday_and_the_weekend():
    state = sla_state(CAL, HIGH, CREATED, [], None, now=berlin("2026-12-24", "16:30"))
    # Thursday 16-17 (1 h), Christmas, weekend, Monday 9-12 (3 h).
    assert state.first_response_due_at == berlin("2026-12-28", "12:00")
    assert state.resolution_due_at == berlin("2026-12-30", "16:00")   # 1 + 8 + 8 + 7 h
    assert state.due_at == state.first_response_due_at
    # 80 % of 4 h = 3 h 12 min of business time: Thursday's hour, then Monday until 11:12.
    assert state.warn_at == berlin("2026-12-28", "11:12")
    assert not state.breached


def test_a_waiting_pause_moves_the_resolution_due_time_by_the_business_time_it_lasted():
    transitions = [(berlin("2026-12-28", "10:00"), "in_progress"), (berlin("2026-12-28", "10:00"), "waiting"),
                   (berlin("2026-12-29", "10:00"), "in_progress")]
    paused = sla_state(CAL, HIGH, CREATED, transitions[:2], berlin("2026-12-28", "09:30"),
                       now=berlin("2026-12-28", "15:00"))
    assert paused.resolution_due_at is None and paused.due_at is None     # the clock stands still
    assert not [p for p in paused.checkpoints if p.target == "resolution"]
    resumed = sla_state(CAL, HIGH, CREATED, transitions, berlin("2026-12-28", "09:30"),
                        now=berlin("2026-12-29", "10:30"))
    # Paused Monday 10-17 and Tuesday 9-10: 8 business hours, so Wednesday 16:00 becomes Thursday 16:00.
    assert resumed.resolution_due_at == berlin("2026-12-31", "16:00")
    assert resumed.due_at == resumed.resolution_due_at and not resumed.breached


def test_a_late_first_response_is_a_breach():
    state = sla_state(CAL, HIGH, CREATED, [(berlin("2026-12-28", "13:00"), "in_progress")],
                      berlin("2026-12-28", "13:00"), now=berlin("2026-12-28", "13:05"))
    assert state.breached
    assert state.first_responded_at == berlin("2026-12-28", "13:00")


def test_an_unanswered_ticket_past_its_due_time_is_breached_and_its_breach_checkpoint_passed():
    now = berlin("2026-12-28", "12:01")
    state = sla_state(CAL, HIGH, CREATED, [], None, now=now)
    assert state.breached
    assert [(p.target, p.stage) for p in state.checkpoints if p.at <= now] == \
        [("first_response", "warning"), ("first_response", "breach")]


def test_a_reopen_restarts_the_resolution_clock_with_the_whole_target():
    transitions = [(berlin("2026-12-28", "09:30"), "in_progress"), (berlin("2026-12-31", "10:00"), "resolved"),
                   (berlin("2026-12-31", "12:00"), "in_progress")]
    state = sla_state(CAL, HIGH, CREATED, transitions, berlin("2026-12-28", "09:30"),
                      now=berlin("2026-12-31", "12:30"))
    # Thursday 12-17 (5 h), New Year's Day, weekend, Monday and Tuesday (16 h), Wednesday 9-12 (3 h).
    assert state.resolution_due_at == berlin("2027-01-06", "12:00")
    assert state.cycle == 1 and state.resolved_at is None
    assert {p.cycle for p in state.checkpoints} == {1}
    assert state.breached   # resolved after its first due time (Wednesday 16:00): stays on record


def test_a_regional_holiday_counts_where_the_region_is_configured():
    bavaria = calendar(dataclasses.replace(POLICY, holidays_subdivision="BY"))
    start = berlin("2027-01-05", "12:00")
    assert add_business_time(CAL, start, timedelta(hours=8)) == berlin("2027-01-06", "12:00")
    assert add_business_time(bavaria, start, timedelta(hours=8)) == berlin("2027-01-07", "12:00")  # Epiphany


def test_resolved_in_time_is_not_breached_and_has_no_checkpoints():
    transitions = [(berlin("2026-12-28", "09:10"), "in_progress"), (berlin("2026-12-28", "11:00"), "resolved")]
    state = sla_state(CAL, HIGH, CREATED, transitions, berlin("2026-12-28", "09:10"),
                      now=berlin("2027-02-01", "09:00"))
    assert not state.breached and state.checkpoints == () and state.due_at is None
    assert state.resolved_at == berlin("2026-12-28", "11:00")


def test_business_hours_keep_their_local_time_across_daylight_saving():
    friday = berlin("2026-03-27", "16:00")            # CET; summer time starts on Sunday the 29th
    assert add_business_time(CAL, friday, timedelta(hours=2)) == datetime(2026, 3, 30, 8, 0, tzinfo=timezone.utc)
    assert business_time(CAL, friday, berlin("2026-03-30", "10:00")) == timedelta(hours=2)


@pytest.mark.parametrize("hours", ["00:00-24:00"])
def test_round_the_clock_hours(hours):
    always = calendar(dataclasses.replace(POLICY, business_hours=hours, holidays_country="",
                                          business_days=("mon", "tue", "wed", "thu", "fri", "sat", "sun")))
    assert add_business_time(always, CREATED, timedelta(hours=30)) == CREATED + timedelta(hours=30)
