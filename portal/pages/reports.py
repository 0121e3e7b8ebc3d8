"""The reports page (staff): per agent, service-level compliance, backlog by age, categories and
tickets opened per day over a chosen period; SVG charts drawn on the server, each with its table."""
from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from core import i18n
from core.models import Contact
from core.reports.figures import period, report
from core.svg_chart import bar_chart
from portal.deps import db, require_role
from portal.render import page

router = APIRouter(prefix="/agent", include_in_schema=False)
staff_only = require_role("agent", "admin")


def _day(text: str) -> date | None:
    return date.fromisoformat(text) if text.strip() else None


def duration(minutes: float | None) -> str:
    """Minutes as the page says them: '45 min', '3.5 h', '2.1 days'; '—' for none."""
    if minutes is None:
        return "—"
    if minutes < 90:
        return f"{minutes:.0f} min"
    return f"{minutes / 60:.1f} h" if minutes < 48 * 60 else f"{minutes / 1440:.1f} days"


@router.get("/reports")
def reports_page(request: Request, user: Contact = Depends(staff_only), session: Session = Depends(db)):
    chosen = {"from": request.query_params.get("from", ""), "to": request.query_params.get("to", "")}
    try:
        p = period(_day(chosen["from"]), _day(chosen["to"]))
    except ValueError as exc:
        return page(request, "agent/reports.html", status_code=400, error=i18n.translate(user.language, "Choose a valid period: %(problem)s.", problem=exc),
                    chosen=chosen, r=None)
    r = report(session, p)
    charts = {"per_day": bar_chart(r.per_day, i18n.translate(
        user.language, "Tickets opened per day, %(first)s to %(last)s", first=r.per_day[0][0], last=r.per_day[-1][0])),
              "backlog": bar_chart(r.backlog, i18n.translate(user.language, "Open tickets by age, now"), height=180),
              "category": bar_chart(sorted(r.by_category.items()), i18n.translate(user.language, "Tickets opened by category"),
                                  height=180)}
    return page(request, "agent/reports.html", r=r, chosen={"from": p.first.isoformat(), "to": p.last.isoformat()},
                charts=charts, duration=duration)
