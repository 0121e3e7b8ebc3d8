"""The service-level policy in force: [sla] from config.toml, overridden by what an admin saved in
the browser (one JSON row), and the business calendar it counts on."""
from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, fields
from datetime import date, timedelta
from functools import lru_cache
from typing import Any, Container

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.config import ConfigError, Settings, SlaSettings, _build_section, validate_sla
from core.db import in_transaction_memo
from core.models import Contact, SlaPolicy, utcnow
from core.sla.calendar import BusinessCalendar, make_calendar

log = logging.getLogger(__name__)
EDITABLE = tuple(f.name for f in fields(SlaSettings))


@dataclass(frozen=True)
class Targets:
    """What a ticket of one priority is promised, in business time."""
    first_response: timedelta
    resolution: timedelta
    warn_share: float          # the share of a target after which it is "near" (0.8)


def targets(sla: SlaSettings, priority: str) -> Targets:
    return Targets(timedelta(hours=getattr(sla, f"{priority}_first_response_hours")),
                   timedelta(hours=getattr(sla, f"{priority}_resolution_hours")), sla.warn_percent / 100)


def calendar(sla: SlaSettings) -> BusinessCalendar:
    """The business calendar of a policy (holiday tables are built once per country and region)."""
    return _calendar(sla.timezone, sla.business_days, sla.business_hours, sla.holidays_country,
                     sla.holidays_subdivision)


@lru_cache(maxsize=16)
def _calendar(zone: str, days: tuple[str, ...], hours: str, country: str, subdivision: str) -> BusinessCalendar:
    return make_calendar(zone, days, hours, _holidays(country, subdivision))


def _holidays(country: str, subdivision: str) -> Container[date]:
    if not country:
        return frozenset()
    import holidays  # noqa: PLC0415 - a large package, needed only when holidays are configured

    # The holidays object fills in each year as it is asked about one.
    return holidays.country_holidays(country, subdiv=subdivision or None)


def current_policy(session: Session, settings: Settings) -> SlaSettings:
    """[sla] as configured, with the admin's saved changes on top (a stale saved key is ignored)."""
    memo = in_transaction_memo(session)
    if "sla_policy" not in memo:  # asked with every new ticket; a batch of mails is one transaction
        memo["sla_policy"] = session.connection().execute(_SAVED).scalar()
    row = memo["sla_policy"]
    return _merged(settings.sla, row) if row else settings.sla


_SAVED = select(SlaPolicy.data).where(SlaPolicy.id == 1)


@lru_cache(maxsize=8)
def _merged(configured: SlaSettings, data: str) -> SlaSettings:
    """The saved JSON over config.toml's section, built and validated once per distinct saved text
    (intake asks for it with every new ticket)."""
    saved = {k: v for k, v in json.loads(data).items() if k in EDITABLE}
    try:
        built = _build_section(SlaSettings, saved, "sla")
        merged = dataclasses.replace(configured, **{k: getattr(built, k) for k in saved})
        validate_sla(merged)
    except ConfigError as exc:
        log.error("the saved service levels are invalid, using config.toml's: %s", exc)
        return configured
    return merged


def save_policy(session: Session, settings: Settings, admin: Contact, values: dict[str, Any]) -> SlaSettings:
    """Validate and store an admin's service levels (every [sla] key given); ConfigError names the bad key."""
    unknown = set(values) - set(EDITABLE)
    if unknown:
        raise ConfigError(f"[sla] unknown key(s): {', '.join(sorted(unknown))}")
    built = _build_section(SlaSettings, values, "sla")
    policy = dataclasses.replace(settings.sla, **{k: getattr(built, k) for k in values})
    validate_sla(policy)
    data = json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(policy).items()})
    row = session.get(SlaPolicy, 1)
    if row is None:
        session.add(SlaPolicy(id=1, data=data, updated_by_id=admin.id))
    else:
        row.data, row.updated_at, row.updated_by_id = data, utcnow(), admin.id
    in_transaction_memo(session)["sla_policy"] = data
    log.info("service levels changed by %s", admin.id)
    return policy
