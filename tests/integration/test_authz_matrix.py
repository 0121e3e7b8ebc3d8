"""Who may call what: every route of the app × every role, with the status each must get.

The table below is the contract. A route that appears without a row fails
`test_every_route_has_an_expectation`: whoever adds a route adds its row here (one line:
method, path as app.routes lists it, and five statuses). Placeholders in paths are filled from
the world's fixtures (DEFAULT_AT, or a row's own `at`): customer A's ticket, its attachment, its
no-login link, customer B's ticket, a person to change, a quarantined mail, a dead job.

Signed-in roles call with bearer tokens (exempt from CSRF), and the anonymous visitor sends a
valid CSRF token for its anonymous cookie, so what is measured is authorisation, not CSRF.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts

from core import notify
from core.accounts import add_user, hash_password
from core.models import CannedReply, Contact, Follower, Job, RawMail, Ticket, utcnow
from core.satisfaction import rating_token
from core.sessions import csrf_token, start_session
from portal.deps import ANON_COOKIE
from tests.integration.test_api_tickets import ROLES, World, make_world

ANON_ID = "matrix-anonymous-visitor"
PASSWORD = "matrix password 1"
DEFAULT_AT = {"ticket_id": "ticket_a", "attachment_id": "attachment_a", "token": "link_a",
              "user_id": "target_user", "contact_id": "target_user", "raw_id": "raw_mail", "job_id": "dead_job",
              "path": "static_file", "email": "follower_email", "reply_id": "canned_reply",
              "view_id": "unknown_ticket"}


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    expect: tuple[int, int, int, int, int]     # anonymous, customer A, customer B, agent, admin
    at: dict[str, str] = field(default_factory=dict)
    json: Any = None
    form: dict | None = None
    fresh_ticket: bool = False                  # the call destroys its target: a new ticket of A's each time
    fresh_token: bool = False                   # the call ends the caller's session: a new token each time

    def __str__(self) -> str:
        extra = " ".join(f"{k}={v}" for k, v in self.at.items())
        return f"{self.method} {self.path} {extra}".strip()


def case(method: str, path: str, anonymous: int, customer_a: int, customer_b: int, agent: int, admin: int,
         **kw) -> Case:
    return Case(method, path, (anonymous, customer_a, customer_b, agent, admin), **kw)


A_TICKET, B_TICKET = {"ticket_id": "ticket_a"}, {"ticket_id": "ticket_b"}
B_ATTACHMENT = {"ticket_id": "ticket_b", "attachment_id": "attachment_a"}   # A's attachment asked via B's ticket
UNKNOWN_TICKET = {"ticket_id": "unknown_ticket"}
SLA_FORM = {"enabled": "yes", "timezone": "Europe/Berlin", "business_hours": "08:00-18:00",
            "business_days": ["mon", "tue", "wed", "thu", "fri"], "warn_percent": "75",
            **{f"{p}_{t}_hours": "10" for p in ("low", "medium", "high", "critical")
               for t in ("first_response", "resolution")}}
NEW = {"name": "Nia", "email": "nia{n}@example.org", "subject": "Hello", "description": "A question."}

# fmt: off
TABLE: list[Case] = [
    # ---- documentation and operations
    case("GET", "/openapi.json",                     200, 200, 200, 200, 200),
    case("GET", "/docs",                             200, 200, 200, 200, 200),
    case("GET", "/docs/oauth2-redirect",             200, 200, 200, 200, 200),
    case("GET", "/redoc",                            200, 200, 200, 200, 200),
    case("GET", "/docs/assets/{path}",               200, 200, 200, 200, 200, at={"path": "docs_asset"}),
    case("GET", "/healthz",                          200, 200, 200, 200, 200),
    case("GET", "/readyz",                           200, 200, 200, 200, 200),
    case("GET", "/metrics",                          403, 403, 403, 403, 403),   # [metrics] token or networks
    case("GET", "/static/{path}",                    200, 200, 200, 200, 200),
    # ---- public pages and the no-login link (the link is the credential, whoever holds it)
    case("GET", "/",                                 200, 200, 200, 200, 200),
    case("GET", "/new",                              200, 200, 200, 200, 200),
    case("POST", "/new",                             303, 303, 303, 303, 303, form=NEW),
    case("GET", "/new/thanks",                       200, 200, 200, 200, 200),
    case("GET", "/t/{token}",                        200, 200, 200, 200, 200),
    case("GET", "/t/{token}",                        404, 404, 404, 404, 404, at={"token": "bad_token"}),
    case("POST", "/t/resend",                        200, 200, 200, 200, 200, form={"email": "r{n}@example.org"}),
    case("POST", "/t/{token}/reply",                 303, 303, 303, 303, 303, form={"text": "More details."}),
    case("POST", "/t/{token}/reply",                 404, 404, 404, 404, 404, at={"token": "bad_token"},
         form={"text": "More details."}),
    case("GET", "/t/{token}/attachments/{attachment_id:int}", 200, 200, 200, 200, 200),
    case("GET", "/t/{token}/attachments/{attachment_id:int}", 404, 404, 404, 404, 404, at={"token": "bad_token"}),
    case("GET", "/t/{token}/messages.json",          200, 200, 200, 200, 200),
    # ---- accounts (pages)
    case("GET", "/login",                            200, 200, 200, 200, 200),
    case("POST", "/login",                           303, 303, 303, 303, 303,
         form={"email": "login@example.org", "password": PASSWORD}),
    case("POST", "/logout",                          303, 303, 303, 303, 303, fresh_token=True),
    case("GET", "/register",                         200, 200, 200, 200, 200),
    case("POST", "/register",                        200, 200, 200, 200, 200,
         form={"email": "reg{n}@example.org", "password": PASSWORD, "name": "Reg"}),
    case("GET", "/verify",                           200, 200, 200, 200, 200),
    case("POST", "/verify",                          200, 200, 200, 200, 200, form={"email": "ann@example.org"}),
    case("GET", "/verify/{token}",                   400, 400, 400, 400, 400, at={"token": "bad_token"}),
    case("POST", "/verify/{token}",                  400, 400, 400, 400, 400, at={"token": "bad_token"}),
    case("GET", "/reset",                            200, 200, 200, 200, 200),
    case("POST", "/reset",                           200, 200, 200, 200, 200, form={"email": "ann@example.org"}),
    case("GET", "/reset/{token}",                    400, 400, 400, 400, 400, at={"token": "bad_token"}),
    case("POST", "/reset/{token}",                   400, 400, 400, 400, 400, at={"token": "bad_token"},
         form={"password": PASSWORD, "confirm": PASSWORD}),
    case("GET", "/account",                          401, 200, 200, 200, 200),
    case("POST", "/account",                         401, 303, 303, 303, 303, form={"action": "preferences"}),
    case("GET", "/login/oidc",                       404, 404, 404, 404, 404),
    case("GET", "/login/oidc/callback",              404, 404, 404, 404, 404),
    # ---- the customer's pages: own tickets only, others' answer 404; staff see every ticket, but only
    #      the requester edits or closes
    case("GET", "/my/tickets",                       401, 200, 200, 200, 200),
    case("GET", "/my/tickets/{ticket_id:int}",       401, 200, 404, 200, 200),
    case("GET", "/my/tickets/{ticket_id:int}",       401, 404, 200, 200, 200, at=B_TICKET),
    case("POST", "/my/tickets/{ticket_id:int}/reply", 401, 303, 404, 303, 303, form={"text": "Any news?"}),
    case("POST", "/my/tickets/{ticket_id:int}/edit", 401, 303, 404, 403, 403,
         form={"subject": "Invoice twice", "description": "I was charged twice."}),
    case("POST", "/my/tickets/{ticket_id:int}/close", 401, 303, 404, 403, 403),
    case("GET", "/my/tickets/{ticket_id:int}/attachments/{attachment_id:int}", 401, 200, 404, 200, 200),
    case("GET", "/my/tickets/{ticket_id:int}/attachments/{attachment_id:int}", 401, 404, 404, 404, 404,
         at=B_ATTACHMENT),
    case("GET", "/my/tickets/{ticket_id:int}/messages.json", 401, 200, 404, 200, 200),
    # ---- the agent's pages: staff only
    case("GET", "/agent/queue",                      401, 403, 403, 200, 200),
    case("GET", "/agent/tickets/{ticket_id}",        401, 403, 403, 200, 200),
    case("GET", "/agent/tickets/{ticket_id}",        401, 403, 403, 404, 404, at=UNKNOWN_TICKET),
    case("POST", "/agent/tickets/{ticket_id}/reply", 401, 403, 403, 303, 303, form={"text": "Looking into it."}),
    case("POST", "/agent/tickets/{ticket_id}/note",  401, 403, 403, 303, 303, form={"text": "Internal."}),
    case("POST", "/agent/tickets/{ticket_id}/revoke-links", 401, 403, 403, 303, 303),
    case("POST", "/agent/tickets/{ticket_id}/update", 401, 403, 403, 303, 303,
         form={"status": "waiting", "priority": "high", "category": "billing"}),
    case("POST", "/agent/tickets/{ticket_id}/delete", 401, 403, 403, 403, 303, form={"confirm": "yes"},
         fresh_ticket=True),
    case("GET", "/agent/tickets/{ticket_id}/messages.json", 401, 403, 403, 200, 200),
    case("GET", "/agent/tickets/{ticket_id}/attachments/{attachment_id}", 401, 403, 403, 200, 200),
    case("GET", "/agent/tickets/{ticket_id}/attachments/{attachment_id}", 401, 403, 403, 404, 404, at=B_ATTACHMENT),
    case("GET", "/agent/stats",                      401, 403, 403, 200, 200),
    case("POST", "/agent/tickets/{ticket_id}/followers", 401, 403, 403, 303, 303, form={"email": "fp{n}@example.org"}),
    case("GET", "/agent/held",                       401, 403, 403, 200, 200),
    case("POST", "/agent/held/{raw_id}/approve",     401, 403, 403, 404, 404),
    case("POST", "/agent/held/{raw_id}/reject",      401, 403, 403, 404, 404),
    # ---- the admin's pages
    case("GET", "/admin/users",                      401, 403, 403, 403, 200),
    case("POST", "/admin/users/{contact_id}",        401, 403, 403, 403, 303,
         form={"role": "customer", "active": "yes"}),
    case("GET", "/admin/config",                     401, 403, 403, 403, 200),
    case("GET", "/admin/quarantine",                 401, 403, 403, 403, 200),
    case("POST", "/admin/quarantine/replay-all",     401, 403, 403, 403, 303),
    case("POST", "/admin/quarantine/{raw_id}/replay", 401, 403, 403, 403, 303),
    case("GET", "/admin/automatic",                  401, 403, 403, 403, 200),
    case("GET", "/admin/mail/{raw_id}/raw",          401, 403, 403, 403, 200),
    case("POST", "/admin/automatic/{raw_id}/open-ticket", 401, 403, 403, 403, 303),
    case("GET", "/admin/jobs",                       401, 403, 403, 403, 200),
    case("POST", "/admin/jobs/{job_id}/retry",       401, 403, 403, 403, 303),
    # ---- JSON API: tickets
    case("POST", "/api/tickets",                     201, 201, 201, 201, 201, json=NEW),
    case("GET", "/api/tickets",                      401, 200, 200, 200, 200),
    case("GET", "/api/tickets/stats",                401, 403, 403, 200, 200),
    case("POST", "/api/tickets/classify",            200, 200, 200, 200, 200, json={"description": "Refund please"}),
    case("GET", "/api/tickets/{ticket_id}",          401, 200, 404, 200, 200),
    case("GET", "/api/tickets/{ticket_id}",          401, 404, 200, 200, 200, at=B_TICKET),
    case("GET", "/api/tickets/{ticket_id}",          401, 404, 404, 404, 404, at=UNKNOWN_TICKET),
    case("PATCH", "/api/tickets/{ticket_id}",        401, 200, 404, 200, 200, json={"status": "closed"}),
    case("PATCH", "/api/tickets/{ticket_id}",        401, 403, 404, 200, 200, json={"priority": "high"}),
    case("PATCH", "/api/tickets/{ticket_id}",        401, 404, 200, 200, 200, at=B_TICKET, json={"comment": "Hi"}),
    case("DELETE", "/api/tickets/{ticket_id}",       401, 403, 403, 403, 204, fresh_ticket=True),
    case("DELETE", "/api/tickets/{ticket_id}",       401, 403, 403, 403, 404, at=UNKNOWN_TICKET),
    case("POST", "/api/tickets/{ticket_id}/followers", 401, 403, 403, 201, 201, json={"email": "fa{n}@example.org"}),
    case("DELETE", "/api/tickets/{ticket_id}/followers/{email}", 401, 403, 403, 204, 404),
    case("GET", "/api/tickets/{ticket_id}/similar",  401, 403, 403, 200, 200),
    case("GET", "/api/tickets/{ticket_id}/similar",  401, 403, 403, 404, 404, at=UNKNOWN_TICKET),
    case("POST", "/api/tickets/{ticket_id}/suggest-reply", 401, 403, 403, 200, 200),
    case("POST", "/api/tickets/{ticket_id}/suggest-reply", 401, 403, 403, 404, 404, at=UNKNOWN_TICKET),
    # ---- JSON API: accounts and users
    case("POST", "/api/auth/register",               201, 201, 201, 201, 201,
         json={"email": "api{n}@example.org", "password": PASSWORD}),
    case("POST", "/api/auth/login",                  200, 200, 200, 200, 200,
         json={"email": "login@example.org", "password": PASSWORD}),
    case("POST", "/api/auth/logout",                 204, 204, 204, 204, 204, fresh_token=True),
    case("GET", "/api/auth/me",                      401, 200, 200, 200, 200),
    case("PATCH", "/api/auth/me",                    401, 200, 200, 200, 200, json={"language": "de",
                                                                                   "time_zone": "Europe/Berlin"}),
    case("GET", "/api/users",                        401, 403, 403, 403, 200),
    case("PATCH", "/api/users/{user_id}",            401, 403, 403, 403, 200, json={"name": "Tara"}),
    # ---- service levels, reports, satisfaction, administration (issue 14)
    case("GET", "/admin/sla",                        401, 403, 403, 403, 200),
    case("POST", "/admin/sla",                       401, 403, 403, 403, 303, form=SLA_FORM),
    case("GET", "/agent/reports",                    401, 403, 403, 200, 200),
    case("GET", "/api/tickets/export.csv",           401, 200, 200, 200, 200),
    case("GET", "/rate/{token}/{score}",             200, 200, 200, 200, 200, at={"token": "rating_a", "score": "good"}),
    case("GET", "/rate/{token}/{score}",             404, 404, 404, 404, 404, at={"token": "bad_token", "score": "good"}),
    case("POST", "/rate/{token}/{score}",            303, 303, 303, 303, 303, at={"token": "rating_a", "score": "good"}),
    case("POST", "/rate/{token}/{score}",            404, 404, 404, 404, 404, at={"token": "bad_token", "score": "good"}),
    case("POST", "/admin/users/invite",              401, 403, 403, 403, 303,
         form={"email": "invitee{n}@example.test", "role": "agent"}),
    case("GET", "/admin/skills",                     401, 403, 403, 403, 200),
    case("POST", "/admin/skills",                    401, 403, 403, 403, 303, form={"name": "skill{n}"}),
    case("POST", "/admin/skills/rename",             401, 403, 403, 403, 400, form={"old": "nosuch", "new": "x"}),
    case("POST", "/admin/skills/merge",              401, 403, 403, 403, 400, form={"source": "a", "target": "a"}),
    case("GET", "/admin/mailboxes",                  401, 403, 403, 403, 200),
    case("POST", "/rate/{token}/comment",            200, 200, 200, 200, 200, at={"token": "rating_a"},
         form={"text": "Quick and kind."}),
    # ---- JSON API: the agent's workspace (staff only; customers never see tags or canned replies)
    case("GET", "/api/canned-replies",               401, 403, 403, 200, 200),
    case("POST", "/api/canned-replies",              401, 403, 403, 201, 201, json={"title": "T{n}", "body": "B"}),
    case("PATCH", "/api/canned-replies/{reply_id}",  401, 403, 403, 200, 200, json={"title": "Hello"}),
    case("POST", "/api/canned-replies/{reply_id}/render", 401, 403, 403, 200, 200, json={"ticket_id": 1}),
    case("DELETE", "/api/canned-replies/{reply_id}", 401, 403, 403, 404, 404, at={"reply_id": "unknown_ticket"}),
    case("DELETE", "/api/canned-replies/{reply_id}", 401, 403, 403, 204, 404),
    case("POST", "/api/tickets/bulk",                401, 403, 403, 200, 200,
         json={"ids": [1, 2], "changes": {"priority": "high"}}),
    case("POST", "/api/tickets/{ticket_id}/merge",   401, 403, 403, 200, 200, json={"into": 2}, fresh_ticket=True),
    case("POST", "/api/tickets/{ticket_id}/merge",   401, 403, 403, 404, 404, at=UNKNOWN_TICKET, json={"into": 2}),
    case("POST", "/api/tickets/{ticket_id}/split",   401, 403, 403, 422, 422, json={"message_ids": [999999]}),
    case("GET", "/api/blocked-senders",              401, 403, 403, 403, 200),
    case("DELETE", "/api/blocked-senders/{email}",   401, 403, 403, 403, 404, at={"email": "unblocked_email"}),
    # ---- the agent's workspace pages (staff only) and blocked senders (admins)
    case("POST", "/agent/bulk",                      401, 403, 403, 303, 303, form={"ids": "1", "priority": "low"}),
    case("POST", "/agent/views",                     401, 403, 403, 303, 303, form={"name": "V{n}", "query": "tag=x"}),
    case("POST", "/agent/views/{view_id}/delete",    401, 403, 403, 404, 404),
    case("POST", "/agent/tickets/{ticket_id}/tags",  401, 403, 403, 303, 303, form={"tags": "vip"}),
    case("POST", "/agent/tickets/{ticket_id}/merge", 401, 403, 403, 303, 303, form={"into": "2"}, fresh_ticket=True),
    case("POST", "/agent/tickets/{ticket_id}/split", 401, 403, 403, 303, 303, form={"message_ids": "999999"}),
    case("POST", "/agent/tickets/{ticket_id}/spam",  401, 403, 403, 303, 303, fresh_ticket=True),
    case("POST", "/agent/tickets/{ticket_id}/presence", 401, 403, 403, 200, 200, json={"typing": False}),
    case("GET", "/agent/canned-replies",             401, 403, 403, 200, 200),
    case("POST", "/agent/canned-replies",            401, 403, 403, 303, 303, form={"title": "T{n}", "body": "B"}),
    case("POST", "/agent/canned-replies/{reply_id}/delete", 401, 403, 403, 404, 404, at={"reply_id": "unknown_ticket"}),
    case("POST", "/agent/away",                      401, 403, 403, 303, 303, form={"away": "no"}),
    case("GET", "/admin/blocked",                    401, 403, 403, 403, 200),
    case("POST", "/admin/blocked/unblock",           401, 403, 403, 403, 404, form={"email": "nobody@example.org"}),
]
# fmt: on


def app_routes(app) -> set[tuple[str, str]]:
    """(method, path) of every route the app answers, HEAD left out (it follows GET); a mount
    (static files) counts as GET <prefix>/{path}."""
    found = set()
    for ctx in iter_route_contexts(app.routes):
        if ctx.methods is None:
            found.add(("GET", f"{ctx.path}/{{path}}"))
        found.update((method, ctx.path) for method in ctx.methods or () if method != "HEAD")
    return found


# ---- the world the table refers to ----------------------------------------------------------------

@pytest.fixture
def world(desk) -> World:
    w = make_world(desk)
    with desk.sessions() as s, s.begin():
        ticket_a = s.get(Ticket, w.ticket_a)
        link = notify.create_access_link(s, desk.settings, ticket_a, ticket_a.requester)
        target = add_user(s, "tara@example.org", "customer", name="Tara")
        login = add_user(s, "login@example.org", "customer", name="Login")
        login.password_hash, login.email_verified_at = hash_password(PASSWORD), utcnow()
        raw = RawMail(dedupe_key="matrix-quarantined", door="pipe", raw=b"Subject: x\r\n\r\nbroken",
                      state="quarantined", attempts=3, last_error="matrix")
        s.add(raw)
        s.add(Job(kind="triage", ticket_id=w.ticket_b, state="dead", attempts=5, last_error="matrix"))
        s.flush()
        w.extra = {"link_a": link.rsplit("/", 1)[1], "bad_token": "no-such-token", "target_user": target.id,
                   "raw_mail": raw.id, "dead_job": s.query(Job.id).filter_by(state="dead").scalar(),
                   "unknown_ticket": 999_999, "ticket_a": w.ticket_a, "ticket_b": w.ticket_b,
                   "attachment_a": w.attachment_a, "static_file": "portal.css",
                   "follower_email": "fol@example.org", "docs_asset": "swagger-ui.css",
                   "rating_a": rating_token(desk.settings.web.secret_key, w.ticket_a, w.user_ids["customer_a"]),
                   "good": "good"}
        s.add(Follower(ticket_id=w.ticket_a, contact_id=add_user(s, "fol@example.org", "customer").id))
        w.extra["canned_reply"] = _canned_reply(s, w.user_ids["agent"])
        w.extra["unblocked_email"] = "nobody@example.org"
    with w.client:
        yield w


def _canned_reply(s, owner_id: int) -> int:
    reply = CannedReply(owner_id=owner_id, title="Matrix", body="Hello {{ customer.name }}", shared=True)
    s.add(reply)
    s.flush()
    return reply.id


def _fill(value: Any, n: int) -> Any:
    if isinstance(value, str):
        return value.replace("{n}", str(n))
    if isinstance(value, dict):
        return {k: _fill(v, n) for k, v in value.items()}
    return value


def _path(world: World, c: Case, fresh_ticket: int | None) -> str:
    at = {**DEFAULT_AT, **c.at}

    def value(match: re.Match) -> str:
        name = match.group(1)
        if fresh_ticket is not None and name == "ticket_id":
            return str(fresh_ticket)
        return str(world.extra[at[name]])

    return re.sub(r"\{(\w+)(?::\w+)?\}", value, c.path)


def _throwaway_token(world: World, role: str) -> str:
    with world.desk.sessions() as s, s.begin():
        return start_session(s, s.get(Contact, world.user_ids[role]), kind="bearer")


def call(world: World, c: Case, role: str, n: int) -> int:
    headers = {"x-csrf-token": csrf_token(world.desk.settings.web.secret_key, ANON_ID), **world.auth(role)}
    if c.fresh_token and role != "anonymous":
        headers["authorization"] = f"Bearer {_throwaway_token(world, role)}"
    fresh = world.open_ticket("customer_a", "To be removed") if c.fresh_ticket else None
    world.client.cookies.clear()                     # a page login must not leak into the next call
    world.client.cookies.set(ANON_COOKIE, ANON_ID)
    answer = world.client.request(c.method, _path(world, c, fresh), headers=headers, follow_redirects=False,
                                  json=_fill(c.json, n), data=_fill(c.form, n))
    return answer.status_code


# ---- the tests --------------------------------------------------------------------------------------

def test_every_route_has_an_expectation(world):
    routes = app_routes(world.client.app)
    covered = {(c.method, c.path) for c in TABLE}
    missing = sorted(routes - covered)
    stale = sorted(covered - routes)
    assert not missing, ("routes without a row in TABLE (add one line each, with the five statuses): "
                         + ", ".join(f"{m} {p}" for m, p in missing))
    assert not stale, "rows for routes that no longer exist: " + ", ".join(f"{m} {p}" for m, p in stale)


def test_every_role_gets_the_expected_status_on_every_route(world):
    counter = itertools.count(1)
    routes = app_routes(world.client.app)
    wrong = []
    for c in TABLE:
        if (c.method, c.path) not in routes:
            continue                                 # reported by the test above
        got = tuple(call(world, c, role, next(counter)) for role in ROLES)
        if got != c.expect:
            wrong.append(f"{c}: expected {c.expect}, got {got}")
    assert not wrong, "statuses by role (" + ", ".join(ROLES) + "):\n" + "\n".join(wrong)


# ---- followers: what following a ticket opens, and what it does not -------------------------------

def test_a_follower_reads_and_comments_but_neither_edits_nor_manages(world):
    """Customer B follows A's ticket: B reads it (page, API, attachments) and comments, but may not change
    its fields, close it or manage its followers; once removed, B gets 404 again."""
    a = world.ticket_a
    with world.desk.sessions() as s, s.begin():
        s.add(Follower(ticket_id=a, contact_id=world.user_ids["customer_b"]))
    b = lambda method, path, **kw: world.call("customer_b", method, path, **kw).status_code  # noqa: E731
    assert b("GET", f"/api/tickets/{a}") == 200
    assert b("GET", f"/my/tickets/{a}") == 200
    assert b("GET", f"/my/tickets/{a}/attachments/{world.attachment_a}") == 200
    assert b("PATCH", f"/api/tickets/{a}", json={"priority": "low"}) == 403
    assert b("POST", f"/api/tickets/{a}/followers", json={"email": "x@example.org"}) == 403
    assert b("GET", f"/agent/tickets/{a}") == 403
    assert world.call("agent", "DELETE", f"/api/tickets/{a}/followers/nobody@example.org").status_code == 404
    shown = world.call("agent", "GET", f"/api/tickets/{a}").json()["followers"]
    assert world.emails["customer_b"] in {f["email"] for f in shown}
    assert world.call("agent", "DELETE", f"/api/tickets/{a}/followers/{world.emails['customer_b']}").status_code == 204
    assert b("GET", f"/api/tickets/{a}") == 404
    assert b("GET", f"/my/tickets/{a}") == 404
