"""Scale benchmark: the web tier over HTTP on a PostgreSQL holding 100,000 tickets and 1,000,000 messages.

    .venv/bin/python bench/scale.py [--tickets 100000] [--messages 1000000] [--url postgresql://…]
                                    [--clients 8] [--requests 400] [--reuse] [--plans] [--ingest]

Seeds the database with bulk COPY (realistic generated text, so full-text search means
something), starts `postdesk serve --only web` as a real process, signs in over HTTP and
drives each endpoint with concurrent clients; prints p50/p95/p99 per endpoint against its
target. `--plans` adds EXPLAIN ANALYZE of the queries behind each endpoint, `--ingest` the
SMTP intake rate with 1 and with 3 `--only worker` processes behind one `--only smtp`.
"""
from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import quote, urlencode

import psycopg
from sqlalchemy import event
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import ingest as ingest_bench  # noqa: E402  (bench/ingest.py: server start and stop, its mail corpus, SMTP sending)
from core.accounts import hash_password  # noqa: E402  (the project's own argon2id hashing)
from core.db import alembic_config, migrate, normalise_url  # noqa: E402

POSTDESK = REPO / ".venv" / "bin" / "postdesk"
DEFAULT_URL = os.environ.get("POSTDESK_BENCH_SCALE_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postdesk_scale")
PASSWORD = "scale-bench-passphrase"
DOMAIN = "scale.bench.example"
MARKER = f"admin@{DOMAIN}"        # a database holding this contact was seeded by this script
AGENTS = 20
LONG_THREAD = 200                 # messages on the one long ticket
LIST_TARGET_MS, SEARCH_TARGET_MS = 50.0, 100.0


class BenchError(Exception):
    """The benchmark could not measure (server down, a request failed, wrong data)."""


# --- text -------------------------------------------------------------------------------

COMMON = """the a to and of I it is in for on my we you that this with not have be are was can but from
at our your please as an or if me when after since all do so no there they what would could will
been has still one some any about error again now also only just get got help need see try tried
issue problem account invoice order payment login password email page app update version browser
customer support team office phone server file report data screen message number time today week
month yesterday morning working works work broken fails failed failing slow stuck wrong missing
open close closed new old send sent receive received click button settings user users admin access
sync upload download export import print printer network connection link reset change changed
charge charged refund price plan subscription trial cancel renew billing receipt address name
mobile desktop laptop windows mac android iphone device install installed reinstall restart crash
crashes loading spinner blank timeout code verification two factor sign signed log logged
""".split()
SYLLABLES = ("ka lo mi ra te so vu ne pa di ro tu be la ge fi no ma ve sa ku ri ze ta mo li da na "
             "po ke si go vi bu re ha jo el an or un is ar en ul ost ing ber lin dor mar tas vel").split()
GREETINGS = ["Hello,", "Hi,", "Dear support,", "Good morning,", "Hello again,", "Hi team,", "Bonjour,", "Hallo,"]
CLOSINGS = ["Thanks.", "Best regards.", "Kind regards.", "Thank you for your help.", "Cheers.", "Merci."]
REAL_SENTENCES = [
    "Since yesterday the page only shows a spinner and nothing else loads.",
    "I tried another browser and cleared the cache, but the problem stays the same.",
    "The amount on the last invoice does not match what we agreed on the phone.",
    "When I click on Save, the form just resets and my changes are lost.",
    "We have restarted the router and the VPN still drops every few minutes.",
    "Could you tell me which plan includes the reporting features?",
    "The export to CSV stops halfway with a timeout.",
    "Our accountant needs the VAT number on every receipt.",
    "Thank you, the fix works and we can close this ticket.",
    "I have attached the log file from this morning.",
]
SUBJECTS = ["Invoice {n} charged twice", "Cannot log in since this morning", "Password reset link expired",
            "Export to CSV fails with error {n}", "Question about the annual plan", "Refund for order {n}",
            "App crashes when uploading a photo", "Sync stopped working after update {n}",
            "VAT number missing on receipt", "Two-factor code never arrives", "VPN drops every hour",
            "Printer {w} shows error {n}", "The {w} module does not load", "Access to {w} for a new colleague"]
SKILLS = ["billing", "accounts", "printers", "networking", "email", "servers", "security", "mobile"]


class Vocabulary:
    """Words with a Zipf distribution: a few hundred common ones and 20,000 invented names, so a
    search term can be chosen by how many messages hold it."""

    def __init__(self, rng: random.Random, rare: int = 20_000) -> None:
        seen, words = set(COMMON), []
        while len(words) < rare:
            word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
            if len(word) >= 5 and word not in seen:
                seen.add(word)
                words.append(word)
        self.rare = words                                    # rank 1 first
        self.common_weights = list(itertools.accumulate(1 / (r + 1) for r in range(len(COMMON))))
        self.rare_weights = list(itertools.accumulate(1 / (r + 1) for r in range(rare)))

    def sentence(self, rng: random.Random) -> str:
        count = rng.randint(7, 15)
        words = rng.choices(COMMON, cum_weights=self.common_weights, k=count)
        for _ in range(rng.randint(1, 3)):
            words.insert(rng.randrange(len(words) + 1), rng.choices(self.rare, cum_weights=self.rare_weights)[0])
        return words[0].capitalize() + " " + " ".join(words[1:]) + "."

    def message(self, rng: random.Random) -> str:
        parts = [rng.choice(GREETINGS)] if rng.random() < 0.6 else []
        if rng.random() < 0.5:
            parts.append(rng.choice(REAL_SENTENCES))
        parts += [self.sentence(rng) for _ in range(rng.randint(2, 5))]
        if rng.random() < 0.5:
            parts.append(rng.choice(CLOSINGS))
        return " ".join(parts)

    def word_at_rank(self, rank: int) -> str:
        return self.rare[min(rank, len(self.rare)) - 1]


# --- the data ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Shape:
    """What the seeded database holds, derived from the sizes alone (so --reuse knows it without a table)."""
    tickets: int
    messages: int
    seed: int = 20240601

    @property
    def customers(self) -> int:
        return max(10, self.tickets // 4)

    @property
    def long_ticket(self) -> int:           # recent, open, ann's: the 200-message thread
        return self.tickets - self.tickets // 10

    @property
    def heavy_share(self) -> int:           # tickets requested by one big customer address
        return max(50, self.tickets // 50)

    # contact ids: 1 admin, 2..21 agents, 22 ann (a few tickets), 23 bigcorp (many), then customers
    ADMIN, ANN, BIGCORP, FIRST_CUSTOMER = 1, 22, 23, 24

    def agent_email(self, n: int) -> str:
        return f"agent{n:02d}@{DOMAIN}"


@dataclass
class Seeded:
    seconds: float
    message_rows: int


def _stamp(moment: datetime) -> str:
    return moment.isoformat()


def _ticket_rows(shape: Shape, rng: random.Random, vocab: Vocabulary, now: datetime):
    """Ticket rows in id order (older first), with how many messages each gets (exactly shape.messages in all)."""
    n = shape.tickets
    counts = [max(1, min(60, int(rng.expovariate(1 / max(0.01, shape.messages / n - 1))) + 1)) for _ in range(n)]
    counts[shape.long_ticket - 1] = LONG_THREAD
    _adjust_total(counts, shape.messages, rng, keep=shape.long_ticket - 1)
    span = timedelta(days=730)
    start = now - span
    for i in range(1, n + 1):
        created = start + span * ((i - 1) / n) + timedelta(seconds=rng.randint(0, 600))
        age = 1 - i / n
        if i == shape.long_ticket:
            status = "in_progress"
        elif age < 0.05:
            status = rng.choices(["new", "in_progress", "waiting", "resolved", "closed"], [30, 30, 20, 10, 10])[0]
        else:
            status = rng.choices(["new", "in_progress", "waiting", "resolved", "closed"], [1, 1, 1, 17, 80])[0]
        if i == shape.long_ticket or rng.random() < 0.0003:
            requester = Shape.ANN
        elif rng.random() < shape.heavy_share / n:
            requester = Shape.BIGCORP
        else:
            requester = Shape.FIRST_CUSTOMER + rng.randrange(shape.customers)
        assignee = 2 if i == shape.long_ticket else (2 + rng.randrange(AGENTS) if rng.random() < 0.85 else None)
        subject = rng.choice(SUBJECTS).format(n=rng.randint(10_000, 99_999), w=vocab.word_at_rank(rng.randint(1, 3000)))
        summary = vocab.sentence(rng) if rng.random() < 0.8 else ""
        yield dict(id=i, created=created, status=status, requester=requester, assignee=assignee,
                   subject=subject, summary=summary, count=counts[i - 1],
                   priority=rng.choices(["low", "medium", "high", "critical"], [20, 55, 20, 5])[0],
                   category=rng.choice(["billing", "technical", "account", "general"]))


def _adjust_total(counts: list[int], total: int, rng: random.Random, keep: int) -> None:
    """Add or remove single messages at random tickets until the counts sum to `total`."""
    diff = total - sum(counts)
    while diff:
        i = rng.randrange(len(counts))
        if i == keep:
            continue
        if diff > 0 and counts[i] < 60:
            counts[i] += 1
            diff -= 1
        elif diff < 0 and counts[i] > 1:
            counts[i] -= 1
            diff += 1


def seed(url: str, shape: Shape) -> Seeded:
    """Empty the database, migrate to 0004, COPY every row in, then migrate to head (which builds the
    newer indexes on the full tables, as an upgrade in production would) and VACUUM ANALYZE."""
    started = time.perf_counter()
    _wipe(url)
    _step("migrating the empty database to 0004")
    from alembic import command
    command.upgrade(alembic_config(url), "0004")
    rng, now = random.Random(shape.seed), datetime.now(timezone.utc).replace(microsecond=0)
    vocab = Vocabulary(random.Random(shape.seed))
    with psycopg.connect(_libpq(url)) as conn:
        _copy_contacts(conn, shape)
        skeleton = _copy_tickets(conn, shape, rng, vocab, now)
        _step(f"ordering {len(skeleton):,} messages by time")
        skeleton.sort()
        _copy_messages(conn, shape, skeleton, rng, vocab)
        for table in ("contact", "ticket", "message", "event", "ticket_summary"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        conn.commit()
    _step("migrating to head (builds the newer indexes on the full tables)")
    head_started = time.perf_counter()
    migrate(url)
    _step(f"  … {time.perf_counter() - head_started:.0f} s")
    _vacuum(url)
    return Seeded(time.perf_counter() - started, len(skeleton))


def _step(what: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {what}", flush=True)


def _libpq(url: str) -> str:
    return make_url(normalise_url(url)).set(drivername="postgresql").render_as_string(hide_password=False)


def ensure_database(url: str) -> None:
    """CREATE DATABASE when the URL names one that does not exist yet (through the server's `postgres` db)."""
    target = make_url(normalise_url(url))
    try:
        psycopg.connect(_libpq(url)).close()
        return
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise BenchError(f"cannot reach PostgreSQL at {target.render_as_string()}: {exc}") from None
    admin = target.set(database="postgres").set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{target.database}"')
    _step(f"created database {target.database}")


def _wipe(url: str) -> None:
    """Drop every table, but only in a database this script seeded before (or an empty one)."""
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()").fetchone()[0]
        if tables:
            seeded = conn.execute("SELECT to_regclass('contact') IS NOT NULL").fetchone()[0] and \
                conn.execute("SELECT count(*) FROM contact WHERE email = %s", (MARKER,)).fetchone()[0]
            if not seeded:
                raise BenchError("the database holds tables this benchmark did not create; give --url another one")
            _step("dropping the previous benchmark data")
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")


def _copy_contacts(conn: psycopg.Connection, shape: Shape) -> None:
    _step(f"COPY {shape.customers + Shape.FIRST_CUSTOMER - 1:,} contacts")
    pw = hash_password(PASSWORD)  # one argon2id hash for every account that signs in
    now = _stamp(datetime.now(timezone.utc))
    cols = ("id, email, name, role, password_hash, active, undeliverable, created_at, email_verified_at, "
            "notify_replies, notify_status")
    with conn.cursor().copy(f"COPY contact ({cols}) FROM STDIN") as copy:
        copy.write_row((Shape.ADMIN, MARKER, "Bench Admin", "admin", pw, True, False, now, now, True, True))
        for n in range(1, AGENTS + 1):
            copy.write_row((1 + n, shape.agent_email(n), f"Agent {n}", "agent", pw, True, False, now, now, True, True))
        copy.write_row((Shape.ANN, f"ann@customer.{DOMAIN}", "Ann Customer", "customer", pw, True, False, now, now,
                        True, True))
        copy.write_row((Shape.BIGCORP, f"helpdesk@bigcorp.{DOMAIN}", "Bigcorp IT", "customer", pw, True, False, now,
                        now, True, True))
        for c in range(shape.customers):
            copy.write_row((Shape.FIRST_CUSTOMER + c, f"customer{c}@example{c % 97}.test", f"Customer {c}",
                            "customer", None, True, False, now, None, True, True))


def _copy_tickets(conn: psycopg.Connection, shape: Shape, rng: random.Random, vocab: Vocabulary,
                  now: datetime) -> list[tuple]:
    """COPY tickets, their events, skills, summaries and a few followers; return every message's skeleton
    (time, ticket, position in its thread, requester, assignee)."""
    _step(f"COPY {shape.tickets:,} tickets with events, skills and summaries")
    skeleton: list[tuple] = []
    ticket_cols = "id, reference, subject, status, priority, category, requester_id, assignee_id, summary, " \
                  "resolution, created_at, updated_at"
    event_id = summary_id = 0
    events, skills, summaries, followers = [], [], [], []
    with conn.cursor().copy(f"COPY ticket ({ticket_cols}) FROM STDIN") as copy:
        for t in _ticket_rows(shape, rng, vocab, now):
            moment = t["created"]
            gap_minutes = min(60 * 20, (now - moment).total_seconds() / 60 / (t["count"] + 1))  # the thread ends by now
            for position in range(t["count"]):
                skeleton.append((moment, t["id"], position, t["requester"], t["assignee"]))
                moment = min(now, moment + timedelta(minutes=rng.expovariate(1 / gap_minutes)))
            if t["id"] == shape.long_ticket:
                moment = now - timedelta(minutes=5)
            updated = moment
            resolution = "Solved: " + vocab.sentence(rng) if t["status"] in ("resolved", "closed") else ""
            copy.write_row((t["id"], f"PD-{t['id']:08X}", t["subject"], t["status"], t["priority"], t["category"],
                            t["requester"], t["assignee"], t["summary"], resolution, t["created"], updated))
            event_id += 1
            events.append((event_id, t["id"], "created", "", "", "", "mail", t["requester"], t["created"]))
            if t["status"] != "new":
                event_id += 1
                events.append((event_id, t["id"], "status", "status", "new", t["status"], "agent", t["assignee"],
                               updated))
            if t["summary"]:
                summary_id += 1
                summaries.append((summary_id, t["id"], t["summary"], "", "offline", t["created"]))
            for skill in rng.sample(SKILLS, rng.choices([0, 1, 2], [30, 55, 15])[0]):
                skills.append((t["id"], skill))
            if rng.random() < 0.03:
                followers.append((t["id"], Shape.FIRST_CUSTOMER + rng.randrange(shape.customers)))
    _copy(conn, "event (id, ticket_id, kind, field, old_value, new_value, source, actor_id, created_at)", events)
    _copy(conn, "ticket_skill (ticket_id, skill)", skills)
    _copy(conn, "ticket_summary (id, ticket_id, summary, notes, source, created_at)", summaries)
    _copy(conn, "follower (ticket_id, contact_id)", sorted(set(f for f in followers if f[1] != Shape.ANN)))
    return skeleton


def _copy(conn: psycopg.Connection, target: str, rows: list[tuple]) -> None:
    with conn.cursor().copy(f"COPY {target} FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _copy_messages(conn: psycopg.Connection, shape: Shape, skeleton: list[tuple], rng: random.Random,
                   vocab: Vocabulary) -> None:
    """COPY the messages in time order (ids ascend with time across tickets, as mail arrives)."""
    _step(f"COPY {len(skeleton):,} messages")
    cols = ("id, ticket_id, kind, direction, author_id, from_address, subject, message_id, in_reply_to, "
            "\"references\", body_text, visible_text, body_html, matched_by, automatic, created_at")
    with conn.cursor().copy(f"COPY message ({cols}) FROM STDIN") as copy:
        for mid, (moment, ticket_id, position, requester, assignee) in enumerate(skeleton, start=1):
            if position == 0:
                direction = "in"
            else:
                direction = rng.choices(["in", "out", "note"], [45, 45, 10])[0]
            if direction == "out" and assignee is None:
                assignee = 2 + ticket_id % AGENTS
            author = requester if direction == "in" else assignee
            kind = "note" if direction == "note" else ("web" if rng.random() < 0.15 else "mail")
            visible = vocab.message(rng)
            body = visible if direction != "in" or position == 0 else \
                visible + "\n\n> " + vocab.sentence(rng) + "\n> " + vocab.sentence(rng)
            message_id = f"m{mid}.{ticket_id}@{DOMAIN}" if kind == "mail" else None
            copy.write_row((mid, ticket_id, kind, direction, author, "", "", message_id, "", "", body, visible, "",
                            "new" if position == 0 else ("references" if kind == "mail" else ""), False, moment))
            if mid % 200_000 == 0:
                _step(f"  … {mid:,}")


def _vacuum(url: str) -> None:
    _step("VACUUM ANALYZE (visibility map for index-only scans, statistics for the planner)")
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def is_seeded(url: str, shape: Shape) -> bool:
    """True when the database holds exactly this shape's data (what --reuse skips re-creating)."""
    try:
        with psycopg.connect(_libpq(url)) as conn:
            if not conn.execute("SELECT to_regclass('message') IS NOT NULL").fetchone()[0]:
                return False
            marker, tickets, messages, long_thread = conn.execute(
                "SELECT (SELECT count(*) FROM contact WHERE email = %s), (SELECT count(*) FROM ticket),"
                " (SELECT count(*) FROM message), (SELECT count(*) FROM message WHERE ticket_id = %s)",
                (MARKER, shape.long_ticket)).fetchone()
    except psycopg.OperationalError:
        return False
    return (marker, tickets, messages, long_thread) == (1, shape.tickets, shape.messages, LONG_THREAD)


# --- the plans --------------------------------------------------------------------------

@dataclass(frozen=True)
class Scenario:
    name: str
    run: Callable  # (session, a staff Contact) -> None: the reads one request makes


def _scenarios(shape: Shape, vocab: Vocabulary) -> list[Scenario]:
    from core import queries, staff, views
    from core.models import OPEN_STATUSES

    def queue(**kw):
        def run(s, me):
            queries.queue_page(s, queries.TicketFilter(**kw))
        return run

    def api(**kw):
        def run(s, me):
            queries.list_tickets(s, queries.TicketFilter(**kw))
        return run

    def customer(owner: int):
        def run(s, me):
            rows, _ = queries.list_tickets(s, queries.TicketFilter(owner_id=owner, per_page=20))
            queries.last_support_message(s, [t.id for t in rows])
        return run

    def ticket_page(s, me):
        ticket = queries.visible_ticket(s, me, shape.long_ticket)
        views.latest_summary(s, ticket.id), views.ticket_skills(s, ticket.id)
        views.history_with_actors(s, ticket.id), staff.staff(s)

    return [
        Scenario("agent queue, default (-updated)", queue()),
        Scenario("agent queue, open statuses", queue(status=OPEN_STATUSES)),
        Scenario("agent queue, status=closed page 40", queue(status=("closed",), page=40)),
        Scenario("agent queue, assignee=me", queue(assignee=shape.agent_email(1))),
        Scenario("agent queue, priority+category", queue(priority=("high", "critical"), category=("billing",))),
        Scenario("agent queue, skill", queue(skill="networking")),
        Scenario("GET /api/tickets, open statuses (list and count)", api(status=OPEN_STATUSES)),
        Scenario("GET /api/tickets, priority+category", api(priority=("critical",), category=("billing",))),
        Scenario(f"search, a rare word ({vocab.word_at_rank(5000)})", queue(search=vocab.word_at_rank(5000))),
        Scenario(f"search, a mid word ({vocab.word_at_rank(300)})", queue(search=vocab.word_at_rank(300))),
        Scenario(f"search, ticket #{shape.long_ticket}", queue(search=f"#{shape.long_ticket}")),
        Scenario("search, a common word (refund)", queue(search="refund")),
        Scenario("search, two words (printer error)", queue(search="printer error")),
        Scenario("search, the most common word (the)", queue(search="the")),
        Scenario("customer my tickets (ann, a few)", customer(Shape.ANN)),
        Scenario("customer my tickets (bigcorp, many)", customer(Shape.BIGCORP)),
        Scenario(f"ticket page, {LONG_THREAD} messages", ticket_page),
    ]


def explain_plans(url: str, shape: Shape, only: str = "") -> None:
    """Per scenario: how long each statement takes as the app runs it (median of 5 warm runs), then
    EXPLAIN (ANALYZE, BUFFERS) of it with its real parameters."""
    from sqlalchemy.orm import Session

    from core.db import make_engine
    from core.models import Contact

    engine = make_engine(url)
    timings: list[tuple[str, object, float]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def started(conn, cursor, statement, parameters, context, executemany):
        conn.info["started"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def finished(conn, cursor, statement, parameters, context, executemany):
        timings.append((statement, parameters, (time.perf_counter() - conn.info["started"]) * 1000))

    vocab = Vocabulary(random.Random(shape.seed))
    for scenario in _scenarios(shape, vocab):
        if only and only not in scenario.name:
            continue
        runs: list[list[tuple[str, object, float]]] = []
        totals = []
        for _ in range(6):
            timings.clear()
            with Session(engine) as session:
                me = session.get(Contact, 2)
                timings.clear()
                began = time.perf_counter()
                scenario.run(session, me)
                totals.append((time.perf_counter() - began) * 1000)
            runs.append(list(timings))
        runs, totals = runs[1:], totals[1:]  # the first run warms caches
        print(f"\n=== {scenario.name}: {len(runs[0])} statements, {_median(totals):.1f} ms in-process "
              f"(median of {len(totals)} runs, SQL and Python)")
        with engine.connect() as conn:
            for i, (statement, parameters, _) in enumerate(runs[0]):
                took = _median([run[i][2] for run in runs if i < len(run)])
                if "set_config(" in statement:  # a planner setting the app makes: made here too
                    conn.exec_driver_sql(statement)
                    print(f"--- {took:.2f} ms: {statement}")
                    continue
                plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).scalars().all()
                print(f"--- {took:.2f} ms: " + " ".join(statement.split())[:240])
                print("\n".join("    " + line for line in plan))
    engine.dispose()


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else 0.0


# --- the web server and its clients -----------------------------------------------------

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@contextmanager
def web_server(url: str, workdir: Path) -> Iterator[ingest_bench.Server]:
    """`postdesk serve --only web` as a user starts it, on a free port; SIGTERM and wait on the way out."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = ingest_bench.free_port()
    env = ingest_bench._server_environment(url, ingest_bench.free_port(), workdir)
    env["POSTDESK_WEB__SECRET_KEY"] = "scale-bench-shared-secret"  # several web processes behave as one
    env["POSTDESK_WEB__PORT"] = str(port)
    env["POSTDESK_WEB__BASE_URL"] = f"http://127.0.0.1:{port}"
    log = workdir / "web.log"
    with open(log, "wb") as log_file:
        process = subprocess.Popen([str(POSTDESK), "serve", "--only", "web"], cwd=workdir, env=env,
                                   stdout=log_file, stderr=subprocess.STDOUT)
    server = ingest_bench.Server(process, port, log)
    try:
        ingest_bench._wait_for_port(server)
        yield server
    finally:
        ingest_bench._stop(server)


class Browser:
    """One keep-alive HTTP/1.1 connection with a cookie jar of one, or a bearer token (stdlib: the
    client's own CPU must not be what the figures measure)."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cookies: dict[str, str] = {}
        self.bearer = ""

    def request(self, method: str, path: str, body: bytes | None = None,
                content_type: str = "") -> tuple[int, dict[str, str], bytes]:
        headers = {"Accept": "text/html" if not path.startswith("/api/") else "application/json"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if self.bearer:
            headers["Authorization"] = f"Bearer {self.bearer}"
        if content_type:
            headers["Content-Type"] = content_type
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        data = response.read()
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                self.cookies[key] = rest.split(";", 1)[0]
        return response.status, dict(response.getheaders()), data

    def sign_in(self, email: str) -> None:
        """The login form, as a browser fills it in: its CSRF token, then the session cookie."""
        status, _, page = self.request("GET", "/login")
        token = CSRF_RE.search(page.decode()).group(1)
        form = urlencode({"email": email, "password": PASSWORD, "csrf_token": token, "next": ""}).encode()
        status, _, _ = self.request("POST", "/login", form, "application/x-www-form-urlencoded")
        if status != 303:
            raise BenchError(f"signing in as {email} answered {status}")

    def api_sign_in(self, email: str) -> None:
        status, _, data = self.request("POST", "/api/auth/login", json.dumps({"email": email, "password": PASSWORD})
                                       .encode(), "application/json")
        if status != 200:
            raise BenchError(f"API sign-in as {email} answered {status}: {data[:200]!r}")
        self.bearer = json.loads(data)["access_token"]


@dataclass(frozen=True)
class Endpoint:
    name: str
    target_ms: float | None      # None: measured and shown, with no target (a word in most tickets)
    who: tuple[tuple[str, tuple[str, ...]], ...]  # (account, its paths): clients sign in as each in turn
    api: bool = False


def endpoints(shape: Shape, vocab: Vocabulary) -> list[Endpoint]:
    rng = random.Random(shape.seed + 1)
    agent, ann, bigcorp = shape.agent_email(1), f"ann@customer.{DOMAIN}", f"helpdesk@bigcorp.{DOMAIN}"
    agents = tuple(shape.agent_email(n) for n in range(1, 5))
    queue = ("", "?status=new&status=in_progress&status=waiting", "?assignee=me", "?assignee=me&status=waiting",
             "?priority=high&priority=critical&category=billing", "?skill=networking", "?status=closed&page=40",
             "?sort=-created&page=3", "?requester=example7.test")
    api = ("?per_page=25", "?status=new,in_progress,waiting", "?assignee=me", "?priority=critical&category=billing",
           "?skill=networking&status=closed", "?page=20", "?sort=-created&status=waiting")
    words = [vocab.word_at_rank(rng.randint(500, 20_000)) for _ in range(12)]  # each in 0.05–2% of messages
    words += [vocab.word_at_rank(rng.randint(100, 500)) for _ in range(4)]   # each in 2–8%
    words += [f"#{rng.randint(1, shape.tickets)}", str(rng.randint(1, shape.tickets)),
              f"{vocab.word_at_rank(rng.randint(500, 5000))} {vocab.word_at_rank(rng.randint(100, 2000))}",
              vocab.word_at_rank(rng.randint(300, 3000))[:5], f'"{vocab.word_at_rank(rng.randint(300, 3000))} the"']
    common = ("refund", "printer error", "password", "the")
    def each(paths) -> tuple:
        paths = tuple(paths)
        return tuple((who, paths) for who in agents)

    mine = ("/my/tickets", "/my/tickets?status=open", "/my/tickets?page=2&sort=-created")
    return [
        Endpoint("agent queue (filters, sorts, pages)", LIST_TARGET_MS, each(f"/agent/queue{q}" for q in queue)),
        Endpoint("GET /api/tickets (filters)", LIST_TARGET_MS, each(f"/api/tickets{q}" for q in api), api=True),
        Endpoint("search: agent queue ?q=", SEARCH_TARGET_MS, each(f"/agent/queue?q={quote(w)}" for w in words)),
        Endpoint("search: GET /api/tickets?search=", SEARCH_TARGET_MS,
                 each(f"/api/tickets?search={quote(w)}" for w in words), api=True),
        Endpoint("search: words in a third of all tickets or more", None,
                 each(f"/agent/queue?q={quote(w)}" for w in common)),
        Endpoint("customer my tickets (a few, and 2% of all)", LIST_TARGET_MS, ((ann, mine), (bigcorp, mine))),
        Endpoint(f"ticket page, {LONG_THREAD} messages (agent, customer)", LIST_TARGET_MS,
                 ((agent, (f"/agent/tickets/{shape.long_ticket}",)), (ann, (f"/my/tickets/{shape.long_ticket}",)))),
    ]


@dataclass
class Measured:
    endpoint: Endpoint
    latencies_ms: list[float] = field(default_factory=list)
    by_path: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    busy_cores: float = 0.0
    server_cpu_ms: float = 0.0   # the web process's CPU per request (PostgreSQL's is not in it)

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))] if ordered else float("nan")


def drive(servers: list[ingest_bench.Server], endpoint: Endpoint, clients: int, requests: int) -> Measured:
    """`clients` threads, each signed in on its own connection (to the servers in turn), share `requests`
    requests to the endpoint's paths; each request's time is from sending to the last byte of the answer."""
    measured = Measured(endpoint)
    browsers = []
    for i in range(clients):
        browser = Browser(servers[i % len(servers)].port)
        who, paths = endpoint.who[i % len(endpoint.who)]
        browser.api_sign_in(who) if endpoint.api else browser.sign_in(who)
        for path in paths:  # warm: templates, the ORM's compiled statements, the pool, the caches
            browser.request("GET", path)
        browsers.append((browser, paths))
    counter = itertools.count()
    lock = threading.Lock()

    def work(browser: Browser, paths: tuple[str, ...]) -> None:
        while (n := next(counter)) < requests:
            path = paths[n % len(paths)]
            started = time.perf_counter()
            try:
                status, _, _ = browser.request("GET", path)
            except (ConnectionError, OSError):  # the server closed an idle keep-alive connection: reconnect
                browser.connection.close()
                started = time.perf_counter()
                status, _, _ = browser.request("GET", path)
            took = (time.perf_counter() - started) * 1000
            with lock:
                measured.latencies_ms.append(took)
                measured.by_path.setdefault(path, []).append(took)
                if status != 200:
                    measured.errors.append(f"{path}: {status}")

    threads = [threading.Thread(target=work, args=pair) for pair in browsers]
    machine_before, started = ingest_bench.machine_cpu(), time.perf_counter()
    server_before = sum(server.cpu_seconds() for server in servers)
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    measured.seconds = time.perf_counter() - started
    measured.busy_cores = ingest_bench.machine_busy_cores(machine_before, ingest_bench.machine_cpu())
    server_cpu = sum(server.cpu_seconds() for server in servers) - server_before
    measured.server_cpu_ms = server_cpu * 1000 / max(1, len(measured.latencies_ms))
    for browser, _ in browsers:
        browser.connection.close()
    return measured


def print_web_report(results: list[Measured], clients: int, web_processes: int) -> None:
    columns = ["endpoint", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "target p95", "web CPU ms/req",
               "busy cores", "errors"]
    rows = []
    for m in results:
        target = m.endpoint.target_ms
        verdict = "-" if target is None else (f"< {target:.0f} ms " + ("met" if m.percentile(95) < target else "MISSED"))
        rows.append([m.endpoint.name, str(len(m.latencies_ms)), f"{len(m.latencies_ms) / m.seconds:.0f}",
                     f"{m.percentile(50):.1f}", f"{m.percentile(95):.1f}", f"{m.percentile(99):.1f}", verdict,
                     f"{m.server_cpu_ms:.1f}", f"{m.busy_cores:.2f}", str(len(m.errors))])
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]
    print(f"\n{clients} concurrent clients over HTTP/1.1 keep-alive, {web_processes} `postdesk serve --only web` "
          f"process(es); {os.cpu_count()} CPUs")
    print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(columns, widths))))
    for r in rows:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    print("busy cores: the whole machine's CPU use during the run (server, PostgreSQL, these clients, and anyone "
          "else's work)")
    print("slowest paths (median ms):")
    for m in results:
        medians = sorted(((sorted(t)[len(t) // 2], path) for path, t in m.by_path.items()), reverse=True)[:3]
        print(f"  {m.endpoint.name}: " + ", ".join(f"{path} {ms:.0f}" for ms, path in medians))
    for m in results:
        for error in sorted(set(m.errors))[:5]:
            print(f"ERROR {m.endpoint.name}: {error}")


# --- SMTP intake: 1 worker process against 3 ----------------------------------------------

@dataclass(frozen=True)
class IngestRun:
    workers: int
    accept_seconds: float
    e2e_seconds: float
    busy_cores: float
    outcome: object   # ingest_bench.Outcome
    log_errors: list[str]  # ERROR lines the processes logged (deadlocks, retries)


def measure_ingest(corpus, workers: int, connections: int, timeout: float) -> IngestRun:
    """A fresh PostgreSQL schema, one `--only smtp` process and `workers` `--only worker` processes;
    the corpus over SMTP, timed until every mail is stored and acknowledged (bench/ingest.py's way)."""
    with tempfile.TemporaryDirectory(prefix="postdesk-scale-ingest-") as tmp:
        workdir = Path(tmp)
        with ingest_bench.fresh_database("postgresql", workdir) as db:
            migrate(db.url)  # once, before the processes start: first starts racing to migrate would fail
            secret = "scale-ingest-" + uuid.uuid4().hex
            with _process(db.url, workdir / "smtp", "smtp", secret) as door:
                with ExitStack() as stack:
                    for n in range(workers):
                        stack.enter_context(_process(db.url, workdir / f"worker{n}", "worker", secret))
                    engine = ingest_bench._observer_engine(db.url)
                    try:
                        before = ingest_bench.machine_cpu()
                        timing = ingest_bench.send_and_wait(door, engine, corpus, connections, timeout)
                        busy = ingest_bench.machine_busy_cores(before, ingest_bench.machine_cpu())
                        outcome = ingest_bench.outcome(engine, corpus)
                    finally:
                        engine.dispose()
            errors = [line for log in sorted(workdir.glob("*/serve.log"))
                      for line in log.read_text(errors="replace").splitlines() if " ERROR " in line]
    return IngestRun(workers, timing.accept_seconds, timing.e2e_seconds, busy, outcome, errors)


@contextmanager
def _process(url: str, workdir: Path, role: str, secret: str) -> Iterator[ingest_bench.Server]:
    """`postdesk serve --only <role>` (no migration: done once before); SMTP on a free port."""
    workdir.mkdir(parents=True)
    port = ingest_bench.free_port()
    env = ingest_bench._server_environment(url, port, workdir)
    env["POSTDESK_WEB__SECRET_KEY"] = secret  # the processes sign and check each other's reply addresses
    log = workdir / "serve.log"
    with open(log, "wb") as log_file:
        process = subprocess.Popen([str(POSTDESK), "serve", "--only", role, "--no-migrate"], cwd=workdir, env=env,
                                   stdout=log_file, stderr=subprocess.STDOUT)
    server = ingest_bench.Server(process, port, log)
    try:
        if role == "smtp":
            ingest_bench._wait_for_port(server)
        yield server
    finally:
        ingest_bench._stop(server)


def print_ingest_report(corpus, runs: list[IngestRun], connections: int) -> None:
    n = len(corpus.mails)
    print(f"\nSMTP intake on PostgreSQL: {n} mails ({corpus.new_count} new, {corpus.reply_count} replies) over "
          f"{connections} SMTP connections to one `--only smtp` process, stored by N `--only worker` processes")
    columns = ["workers", "accept msg/s", "e2e msg/s", "e2e s", "busy cores", "tickets", "replies ok", "quarantined",
               "acks", "logged errors"]
    rows = []
    for r in runs:
        o = r.outcome
        rows.append([str(r.workers), f"{n / r.accept_seconds:,.0f}", f"{n / r.e2e_seconds:,.0f}", f"{r.e2e_seconds:.1f}",
                     f"{r.busy_cores:.2f}", f"{o.tickets}/{corpus.new_count}",
                     f"{o.replies_on_their_ticket}/{corpus.reply_count}", str(o.quarantined),
                     f"{o.acknowledgements}/{corpus.new_count}", str(len(r.log_errors))])
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths)))
    for r in rows:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))
    print("e2e: first MAIL FROM until every mail is a stored message and every acknowledgement is queued; "
          "replies ok: replies stored on their own thread's ticket")
    for r in runs:
        for kind in sorted({line.partition(" ERROR ")[2][:150] for line in r.log_errors})[:5]:
            print(f"  {r.workers} worker(s) logged: {kind}")


# --- the command ------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default=DEFAULT_URL, help="PostgreSQL database to seed and serve (created if missing; "
                   "its tables are replaced unless --reuse finds this size already there)")
    p.add_argument("--tickets", type=int, default=100_000)
    p.add_argument("--messages", type=int, default=1_000_000)
    p.add_argument("--reuse", action="store_true", help="skip seeding when the database already holds this data")
    p.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients (default 8)")
    p.add_argument("--requests", type=int, default=400, help="requests per endpoint (default 400)")
    p.add_argument("--web", type=int, default=1, help="`--only web` processes, the clients spread over them")
    p.add_argument("--only", default="", help="measure only the endpoints whose name contains this")
    p.add_argument("--plans", action="store_true", help="print EXPLAIN ANALYZE of the queries behind each endpoint")
    p.add_argument("--ingest", action="store_true", help="also measure SMTP intake with 1 and 3 worker processes")
    p.add_argument("--ingest-mails", type=int, default=3000)
    p.add_argument("--connections", type=int, default=4, help="SMTP connections for --ingest (default 4)")
    args = p.parse_args(argv)
    if args.messages < args.tickets + LONG_THREAD or args.tickets < 100:
        p.error(f"--tickets must be at least 100 and --messages at least --tickets + {LONG_THREAD}")
    shape = Shape(args.tickets, args.messages)
    try:
        ensure_database(args.url)
        if args.reuse and is_seeded(args.url, shape):
            _step(f"reusing the {shape.tickets:,} tickets and {shape.messages:,} messages already in the database")
            migrate(args.url)  # a newer migration builds its indexes on the data as it is
        else:
            seeded = seed(args.url, shape)
            _step(f"seeded {shape.tickets:,} tickets and {seeded.message_rows:,} messages in {seeded.seconds:.0f} s")
        if args.plans:
            explain_plans(args.url, shape, args.only)
        results = run_web(args.url, shape, args)
        print_web_report(results, args.clients, args.web)
        if args.ingest:
            corpus = ingest_bench.build_corpus(args.ingest_mails)
            runs = [measure_ingest(corpus, workers, args.connections, timeout=900) for workers in (1, 3)]
            print_ingest_report(corpus, runs, args.connections)
    except (BenchError, ingest_bench.BenchError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    return 1 if any(m.errors for m in results) else 0  # a missed target is a figure, not a failure


def run_web(url: str, shape: Shape, args) -> list[Measured]:
    vocab = Vocabulary(random.Random(shape.seed))
    chosen = [e for e in endpoints(shape, vocab) if args.only in e.name]
    with tempfile.TemporaryDirectory(prefix="postdesk-scale-web-") as tmp, ExitStack() as stack:
        servers = [stack.enter_context(web_server(url, Path(tmp) / f"web{n}")) for n in range(args.web)]
        _step(f"measuring {len(chosen)} endpoints, {args.requests} requests each, {args.clients} clients, "
              f"{len(servers)} web process(es)")
        return [drive(servers, e, args.clients, args.requests) for e in chosen]


if __name__ == "__main__":
    sys.exit(main())
