"""`postdesk serve`: SMTP door, web portal and background jobs in one process (or a chosen few)."""
from __future__ import annotations

import asyncio
import gc
import logging
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Callable

import uvicorn
from apscheduler.schedulers.background import BackgroundScheduler

from core import jobs
from core.ai.triage import make_triage_handler
from core.db import is_postgresql
from core.log_limits import OncePer
from core.process_lifetime import die_with_parent
from core.outbound import deliver_due
from core.queries import fold_status_tally
from core.sla.scheduler import run_service_levels
from ingest import worker
from ingest.imap import mailbox_pollers
from ingest.parse_pool import ParsePool
from ingest.smtp import SupportInbox, start_smtp_server
from portal.app import create_app
from postdesk.bootstrap import Postdesk
from postdesk.worker_process import WorkerProcess, listen_for_wakes

log = logging.getLogger(__name__)
ROLES = ("smtp", "imap", "web", "worker")


class IntakeLoop:
    """Drains the spool as soon as a door stores a mail, and every second in any case.

    After a wake-up it lets `gather` seconds pass first, so mails arriving together are stored
    in one batch (one transaction, one commit) rather than one commit each: a tenth of a second
    of latency (the acknowledgement is sent later anyway) for a third of the per-mail cost when
    mail pours in (bench/ingest.py: 5.7 instead of 7.8 ms of CPU per mail with 0.02 s)."""

    def __init__(self, desk: Postdesk, after_drain: Callable[[], None], interval: float = 1.0,
                 gather: float = 0.1, parse_in_helper: bool = False) -> None:
        self.desk = desk
        # On SQLite a helper process parses the next batch while this one is stored (ingest.parse_pool).
        self.parser = ParsePool(desk.settings) if parse_in_helper and not is_postgresql(desk.engine) else None
        self.after_drain = after_drain
        self.interval = interval
        self.gather = gather
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="intake", daemon=True)
        self._last_work = 0.0
        self._draining = False

    def start(self) -> None:
        if self.parser is not None:
            self.parser.start()
        self._thread.start()

    def wake(self) -> None:
        self._last_work = time.monotonic()
        self._wake.set()

    def busy(self) -> bool:
        """Mail arrived or was processed within the last second: background jobs should wait."""
        return self._draining or time.monotonic() - self._last_work < 1.0

    def has_work(self) -> bool:
        """A drain is running, or a mail was stored since the last one began."""
        return self._draining or self._wake.is_set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)
        if self.parser is not None:
            self.parser.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._wake.wait(self.interval) and self.gather:
                self._stop.wait(self.gather)
            self._wake.clear()
            self._draining = True  # a long backlog drain counts as busy throughout
            try:
                if worker.drain(self.desk.sessions, self.desk.settings, parser=self.parser):
                    self._last_work = time.monotonic()
                    self.after_drain()
            except Exception:  # the loop must survive a database outage
                log.exception("draining the spool failed; retrying")
            finally:
                self._draining = False


class Throttled:
    """Calls `action` at most once per `seconds`; calls in between are dropped (the periodic
    run catches up with them) or, with `trailing`, made once when the period ends: the last
    nudge of a burst is never lost (intake's last drain would otherwise wait for the 2 s tick
    of outbox delivery)."""

    def __init__(self, action: Callable[[], None], seconds: float, trailing: bool = False) -> None:
        self.action = action
        self.seconds = seconds
        self.trailing = trailing
        self._last = float("-inf")
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def __call__(self) -> None:
        now = time.monotonic()
        with self._lock:
            due = now - self._last >= self.seconds
            if due:
                self._last = now
            elif self.trailing and self._timer is None:
                self._timer = threading.Timer(self._last + self.seconds - now, self._trail)
                self._timer.daemon = True
                self._timer.start()
        if due:
            self.action()

    def _trail(self) -> None:
        with self._lock:
            self._timer = None
            self._last = time.monotonic()
        self.action()


def run_soon(scheduler: BackgroundScheduler, job_id: str, seconds: float = 0.0) -> None:
    """Bring a periodic job forward (it runs every few seconds anyway), to now or `seconds` from now."""
    try:
        scheduler.modify_job(job_id, next_run_time=datetime.now(timezone.utc) + timedelta(seconds=max(0.0, seconds)))
    except Exception:  # the scheduler is shutting down; the job's next run will do
        pass


class OutboxDelivery:
    """The deliver-outbox job. It sends at once when intake has nothing to do; while mail keeps
    coming in it waits, at most `max_wait` seconds between runs, so SQLite's write lock (taken by
    each sent mail's record) and the CPU go to accepting mail first."""

    def __init__(self, desk: Postdesk, intake_has_work: Callable[[], bool], max_wait: float = 0.3,
                 run_in: Callable[[float], None] = lambda seconds: None) -> None:
        self.desk = desk
        self.intake_has_work = intake_has_work
        self.max_wait = max_wait
        self.run_in = run_in  # asks for a run that many seconds from now
        self._last_run = float("-inf")

    def __call__(self) -> None:
        now = time.monotonic()
        if self.intake_has_work() and now - self._last_run < self.max_wait:
            # Not later than max_wait, though: the periodic tick may be seconds away.
            self.run_in(self._last_run + self.max_wait - now)
            return
        self._last_run = now
        deliver_due(self.desk.sessions, self.desk.settings)


def start_scheduler(desk: Postdesk, intake_busy: Callable[[], bool] = lambda: False,
                    intake_has_work: Callable[[], bool] = lambda: False) -> BackgroundScheduler:
    """Periodic jobs: outbox delivery and the job table (AI triage), each never running twice at once.
    Both give way while mail is flowing in: intake comes first (delivery for at most 1 s: a run costs
    intake a write transaction per batch of 20, not per mail, so acknowledgements keep pace). And once
    a minute, the per-status tally is folded (PostgreSQL; core.queries)."""
    scheduler = BackgroundScheduler(timezone="UTC")
    # While a run is still busy (a slow provider) every tick warns "skipped: maximum number of running
    # instances reached": once a minute says as much.
    logging.getLogger("apscheduler.scheduler").addFilter(OncePer(60, contains="maximum number of running"))
    delivery = OutboxDelivery(desk, intake_has_work, run_in=lambda seconds: run_soon(scheduler, "deliver-outbox",
                                                                                      seconds))
    scheduler.add_job(delivery, "interval", seconds=2, id="deliver-outbox", max_instances=1, coalesce=True)
    scheduler.add_job(fold_status_tally, "interval", seconds=60, id="fold-status-tally",
                      args=[desk.engine], max_instances=1, coalesce=True)
    scheduler.add_job(ServiceLevels(desk, scheduler), "interval", seconds=30, id="service-levels",
                      max_instances=1, coalesce=True)
    handlers = {"triage": make_triage_handler(desk.sessions, desk.settings)}
    scheduler.add_job(run_jobs, "interval", seconds=2, id="run-jobs",
                      args=[desk, handlers, scheduler, intake_busy], max_instances=1, coalesce=True)
    scheduler.start()
    return scheduler


class ServiceLevels:
    """Reminders, due times and escalations (core.sla) every 30 s; their mails are delivered right after."""

    def __init__(self, desk: Postdesk, scheduler: BackgroundScheduler) -> None:
        self.desk, self.scheduler = desk, scheduler

    def __call__(self) -> None:
        if run_service_levels(self.desk.sessions, self.desk.settings):
            run_soon(self.scheduler, "deliver-outbox")


def run_jobs(desk: Postdesk, handlers: dict, scheduler: BackgroundScheduler,
             intake_busy: Callable[[], bool]) -> None:
    """Run due jobs until none is left (or mail starts flowing); mail they caused is delivered right after."""
    ran = False
    ai = desk.settings.ai
    while not intake_busy() and jobs.run_due(desk.sessions, handlers, limit=max(5, ai.concurrency),
                                             concurrency=ai.concurrency):
        ran = True
    if ran:
        run_soon(scheduler, "deliver-outbox")


async def serve(desk: Postdesk, only: set[str], worker_argv: list[str] | None = None,
                wake_fd: int | None = None, parent_pid: int | None = None) -> None:
    """Run the chosen roles until SIGINT/SIGTERM. With `worker_argv`, the worker role runs in a child
    process started with those arguments (postdesk.worker_process); `wake_fd` and `parent_pid` are
    given to such a child."""
    # Threads (SMTP loop, intake, jobs) hand the GIL over more often: each SMTP reply waiting
    # behind a busy worker thread otherwise waits out the switch interval (5 ms by default), and
    # one connection sends its next mail only after the last reply. 0.2 ms: 136 mails/s over
    # one connection in bench/ingest.py against 112 with 1 ms.
    # In the worker child the same holds for outbox delivery: each step of its SMTP conversation
    # waits for the GIL that intake holds (with 5 ms, the acknowledgements trailed intake by 2 s).
    sys.setswitchinterval(0.0002)
    cfg = desk.settings
    intake = scheduler = smtp_server = smtp_handler = child = watcher = None
    if parent_pid is not None:
        die_with_parent(parent_pid)
    if "worker" in only and worker_argv is not None:
        child = WorkerProcess(worker_argv)
        child.start()
        watcher = asyncio.create_task(child.watch())
        # The wake-ups go to the child process; the roles here never run intake themselves.
        only = only - {"worker"}
    if "worker" in only:
        # Acknowledgements go out right after the mails they answer, but while mail pours in the
        # outbox is sent in batches (at most every half second) rather than after every drain.
        intake = IntakeLoop(desk, after_drain=Throttled(lambda: run_soon(scheduler, "deliver-outbox"), 0.5,
                                                        trailing=True),
                            parse_in_helper=True)
        scheduler = start_scheduler(desk, intake_busy=intake.busy, intake_has_work=intake.has_work)
        intake.start()
        if wake_fd is not None:
            listen_for_wakes(wake_fd, intake.wake)
    wake = child.wake if child else intake.wake if intake else (lambda: None)
    if "smtp" in only:
        smtp_handler = SupportInbox(cfg, desk.sessions, on_stored=wake)
        smtp_server = await start_smtp_server(cfg, smtp_handler)
        log.info("SMTP listening on %s:%s", cfg.smtp.host, cfg.smtp.port)
    imap_stop = threading.Event()
    imap_threads: list[threading.Thread] = []
    if "imap" in only:
        imap_threads = start_imap_pollers(desk, wake, imap_stop)
    try:
        if "web" in only:
            config = uvicorn.Config(create_app(cfg, desk.sessions), host=cfg.web.host, port=cfg.web.port,
                                    log_level="info", access_log=False, lifespan="off")
            _freeze_startup_objects()
            log.info("web portal on %s", cfg.base_url)
            await _serve_web(uvicorn.Server(config))
        else:
            await _wait_for_signal()
    finally:
        imap_stop.set()
        # A poll stuck on a slow server is abandoned: whatever it committed stays, the rest is redone.
        deadline = time.monotonic() + 5
        for thread in imap_threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if smtp_server is not None:
            smtp_server.close()
            await smtp_server.wait_closed()
            await asyncio.to_thread(smtp_handler.close)  # its last staged mails into the spool
        if child is not None:  # after the doors: no door wakes a stopping worker; what it left waits in the spool
            watcher.cancel()
            await asyncio.to_thread(child.stop)
        if scheduler is not None:
            # A job waiting on a slow AI server is abandoned, not awaited: its lease expires
            # and another run picks it up. Mail delivery and intake commit per row.
            scheduler.shutdown(wait=False)
        if intake is not None:
            intake.stop()


def _freeze_startup_objects() -> None:
    """Move what start-up built (modules, the app, compiled templates and schemas: hundreds of thousands
    of objects) out of the garbage collector's sight. A full collection walked all of them, every few
    requests that build a page of rows: at 100,000 tickets the slowest 1 % of `GET /api/tickets`
    took 150 ms, 57 ms with them frozen (bench/scale.py)."""
    gc.collect()
    gc.freeze()


def start_imap_pollers(desk: Postdesk, on_stored: Callable[[], None],
                       stop: threading.Event) -> list[threading.Thread]:
    """One thread per mailbox with a host, each failing and retrying on its own."""
    threads = []
    for poller in mailbox_pollers(desk.settings, desk.sessions, on_stored):
        name = f"imap-{poller.mailbox.name}" if poller.mailbox.name else "imap"
        threads.append(threading.Thread(target=poller.run_forever, args=(stop,), name=name, daemon=True))
        threads[-1].start()
    if not threads:
        log.info("IMAP door off: no mailbox has a host ([imap] host, [imap.mailboxes.<name>] host)")
    return threads


async def _serve_web(server: uvicorn.Server) -> None:
    """uvicorn until SIGINT/SIGTERM, then back here for the other roles' orderly stop. uvicorn raises
    the signal again once it is done, for the handler it found at start: the default one ended the
    process there, before the worker process, intake and the metrics directory were looked after.
    The handler it finds is this one (which, before uvicorn's own is in place, asks it to stop)."""
    import signal

    def stop(_sig, _frame) -> None:
        server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    await server.serve()


async def _wait_for_signal() -> None:
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
