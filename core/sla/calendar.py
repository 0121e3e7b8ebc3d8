"""Business time: the opening hours of a support team, on its working days, in its time zone,
without its public holidays. Pure arithmetic on aware datetimes; every answer is in UTC."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Container, Iterator
from zoneinfo import ZoneInfo

MAX_DAYS = 3700     # ten years of calendar: a target longer than that is a configuration mistake
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class BusinessCalendar:
    zone: ZoneInfo
    days: frozenset[int]            # weekday numbers, Monday = 0
    opens: timedelta                # since local midnight
    closes: timedelta               # since local midnight; 24 h = until midnight
    holidays: Container[date] = frozenset()

    def windows(self, since: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The business windows (UTC) from the local day of `since` on, in order."""
        day = since.astimezone(self.zone).date() - timedelta(days=1)  # a window may start the day before in UTC
        for _ in range(MAX_DAYS):
            window = self._window(day)
            if window is not None:
                yield window
            day += timedelta(days=1)
        raise ValueError("no business hours within ten years: check the business days and holidays")

    def _window(self, day: date) -> tuple[datetime, datetime] | None:
        """A day's window in UTC (None on a day off), remembered: every new ticket asks for the same few days."""
        known = self.__dict__.get("_known_days")
        if known is None:
            known = {}
            object.__setattr__(self, "_known_days", known)  # frozen for its fields; this is only a cache
        if day in known:
            return known[day]
        window = None
        if day.weekday() in self.days and day not in self.holidays:
            midnight = datetime.combine(day, time(0), tzinfo=self.zone)
            # Wall-clock arithmetic on the local midnight, then UTC: a DST day keeps its opening hours.
            window = ((midnight + self.opens).astimezone(timezone.utc), (midnight + self.closes).astimezone(timezone.utc))
        if len(known) < 4 * MAX_DAYS:
            known[day] = window
        return window


def business_time(calendar: BusinessCalendar, start: datetime, end: datetime) -> timedelta:
    """How much business time lies between two instants (zero when end is not after start)."""
    total = timedelta(0)
    if end <= start:
        return total
    for opens, closes in calendar.windows(start):
        if opens >= end:
            break
        overlap = min(closes, end) - max(opens, start)
        if overlap > timedelta(0):
            total += overlap
    return total


def add_business_time(calendar: BusinessCalendar, start: datetime, amount: timedelta) -> datetime:
    """The instant `amount` of business time after `start` (a start outside business hours counts
    from the next opening)."""
    left = amount
    for opens, closes in calendar.windows(start):
        if closes <= start:
            continue
        begin = max(opens, start)
        if begin + left <= closes:
            return begin + left
        left -= closes - begin
    raise AssertionError("unreachable: windows() raises first")


def make_calendar(zone: str, days: tuple[str, ...], hours: str, holidays: Container[date] = frozenset()
                  ) -> BusinessCalendar:
    """A calendar from the [sla] settings' words: 'Europe/Berlin', ('mon', …), '09:00-17:00'."""
    opens, _, closes = hours.strip().partition("-")
    return BusinessCalendar(ZoneInfo(zone), frozenset(DAY_NAMES.index(d) for d in days),
                            _since_midnight(opens), _since_midnight(closes), holidays)


def _since_midnight(hhmm: str) -> timedelta:
    hours, _, minutes = hhmm.strip().partition(":")
    return timedelta(hours=int(hours), minutes=int(minutes))
