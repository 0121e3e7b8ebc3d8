"""The admin's service-level page: targets per priority, business hours, time zone and public
holidays, saved in the database over config.toml's [sla]. Every route needs an admin."""
from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from core.config import SLA_DAYS, ConfigError, Settings, SlaSettings
from core.i18n import N_
from core.models import PRIORITIES, Contact
from core.sla.policy import current_policy, save_policy
from core.sla.tracking import recompute_open
from portal.deps import csrf_protect, db, require_role, settings
from portal.render import page

log = logging.getLogger(__name__)
router = APIRouter(prefix="/admin", include_in_schema=False)
admin_only = require_role("admin")


def _sla_page(request: Request, policy: SlaSettings, status_code: int = 200, **extra):
    return page(request, "admin/sla.html", status_code=status_code, policy=policy, days=SLA_DAYS,
                priorities=PRIORITIES[::-1], notice=N_("Saved.") if request.query_params.get("done") else "", **extra)


@router.get("/sla")
def sla_page(request: Request, user: Contact = Depends(admin_only), session: Session = Depends(db),
             cfg: Settings = Depends(settings)):
    return _sla_page(request, current_policy(session, cfg))


def form_values(form) -> dict:
    """The page's form as [sla] keys (an unticked box sends nothing: it is off)."""
    values = {"enabled": form.get("enabled") == "yes", "business_days": list(form.getlist("business_days"))}
    for key in ("timezone", "business_hours", "holidays_country", "holidays_subdivision", "warn_percent"):
        values[key] = str(form.get(key, "")).strip()
    for priority in PRIORITIES:
        for target in ("first_response", "resolution"):
            key = f"{priority}_{target}_hours"
            values[key] = str(form.get(key, "")).strip()
    values["holidays_country"] = values["holidays_country"].upper()
    values["holidays_subdivision"] = values["holidays_subdivision"].upper()
    return values


@router.post("/sla")
async def save_sla(request: Request, user: Contact = Depends(admin_only), _csrf: None = Depends(csrf_protect),
                   session: Session = Depends(db), cfg: Settings = Depends(settings)):
    values = form_values(await request.form())
    try:
        save_policy(session, cfg, user, values)
    except ConfigError as exc:
        session.rollback()
        shown = current_policy(session, cfg)
        return _sla_page(request, shown, 400, error=str(exc).replace("[sla] ", ""), submitted=values)
    recompute_open(session)
    session.commit()
    return RedirectResponse("/admin/sla?done=saved", status_code=303)
