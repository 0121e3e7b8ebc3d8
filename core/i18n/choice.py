"""Which language and time zone a person reads in: their stored choice, else what their browser
or mail program asked for, else the site's default."""
from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel import Locale, UnknownLocaleError

from core.i18n.catalogues import DEFAULT_LANGUAGE, LANGUAGES

TIME_ZONES: tuple[str, ...] = tuple(sorted(z for z in available_timezones() if "/" in z and not z.startswith(
    ("Etc/", "SystemV/", "US/", "posix/", "right/"))) + ["UTC"])


def shipped_language(tag: str | None) -> str | None:
    """The shipped language a tag such as 'de-AT' or 'de_DE' names, or None."""
    if not tag:
        return None
    try:
        locale = Locale.parse(tag.strip().replace("-", "_"))
    except (ValueError, TypeError, UnknownLocaleError):
        return None
    return locale.language if locale.language in LANGUAGES else None


def _weighted(header: str) -> list[tuple[float, int, str]]:
    choices = []
    for position, item in enumerate(header.split(",")[:20]):  # a header is a client's word: bounded
        tag, _, params = item.strip().partition(";")
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if tag and weight > 0:
            choices.append((-weight, position, tag.strip()))
    return sorted(choices)


def best_language(header: str | None) -> str | None:
    """The shipped language an Accept-Language (or Content-Language) header prefers most, or None."""
    for _, _, tag in _weighted(header or ""):
        if tag == "*":
            return None
        found = shipped_language(tag)
        if found:
            return found
    return None


def language_of(person: Any) -> str:
    """The language to write to a person in: their stored choice, else the default (English)."""
    return getattr(person, "language", None) or DEFAULT_LANGUAGE


@lru_cache(maxsize=512)
def valid_time_zone(name: str | None) -> bool:
    """True for an IANA time zone name zoneinfo knows ('Europe/Berlin', 'UTC')."""
    if not name or name != name.strip() or len(name) > 64:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def time_zone_of(person: Any, default: str = "UTC") -> str:
    """The zone to show a person times in: their stored choice, else the site's default."""
    chosen = getattr(person, "time_zone", None)
    return chosen if chosen and valid_time_zone(chosen) else default


def local_time(moment: datetime, zone: str, fmt: str = "%Y-%m-%d %H:%M", with_zone: bool = True) -> str:
    """A stored (UTC) time in `zone`, with the zone's abbreviation ('2024-05-06 16:03 CEST')."""
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        moment = moment.replace(tzinfo=timezone.utc)
    local = moment.astimezone(ZoneInfo(zone if valid_time_zone(zone) else "UTC"))
    shown = local.strftime(fmt)
    return f"{shown} {local.tzname()}" if with_zone else shown
