"""`postdesk serve` runs the worker role in a child process: it gets the doors' mail, dies with its
parent however the parent dies, and comes back when it dies alone."""
from __future__ import annotations

import os
import signal
import smtplib
import time
from pathlib import Path

from sqlalchemy import create_engine, func, select

from core.models import Message
from tests.support.server import PostdeskProcess


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        out.extend(int(c) for c in task.read_text().split())
    return out


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _worker_of(server: PostdeskProcess, other_than: int | None = None, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = [c for c in _children(server.proc.pid) if "--only worker" in _cmdline(c) and c != other_than]
        if workers:
            return workers[0]
        time.sleep(0.1)
    raise AssertionError(f"no worker process:\n{server.output()}")


def _send(server: PostdeskProcess, msgid: str) -> None:
    with smtplib.SMTP("127.0.0.1", server.smtp_port) as smtp:
        smtp.sendmail("ann@example.org", ["support@example.test"],
                      f"From: ann@example.org\r\nSubject: hi\r\nMessage-ID: <{msgid}>\r\n\r\nhello\r\n".encode())


def _stored(db_url: str, count: int, timeout: float = 20) -> None:
    engine = create_engine(db_url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                if conn.execute(select(func.count(Message.id)).where(Message.direction == "in")).scalar() >= count:
                    return
            time.sleep(0.1)
        raise AssertionError(f"fewer than {count} mails stored")
    finally:
        engine.dispose()


def test_the_worker_runs_beside_the_doors_and_dies_with_them(db_url, tmp_path):
    with PostdeskProcess(tmp_path / "run", {"POSTDESK_DATABASE__URL": db_url}, only="smtp,worker") as server:
        worker = _worker_of(server)
        _send(server, "w1@example.org")
        _stored(db_url, 1)  # the door in the parent, intake in the child, woken through the pipe
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait()
        deadline = time.monotonic() + 10
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(worker), "the worker outlived its SIGKILLed parent"


def test_a_worker_that_dies_alone_is_restarted_and_nothing_is_lost(db_url, tmp_path):
    with PostdeskProcess(tmp_path / "run", {"POSTDESK_DATABASE__URL": db_url}, only="smtp,worker") as server:
        first = _worker_of(server)
        os.kill(first, signal.SIGKILL)
        _send(server, "w2@example.org")  # accepted by the door while no worker runs
        second = _worker_of(server, other_than=first)
        assert second != first
        _stored(db_url, 1)
        assert "exited with -9; restarting it" in server.output()


def test_one_process_keeps_the_worker_in_the_doors_process(db_url, tmp_path):
    with PostdeskProcess(tmp_path / "run", {"POSTDESK_DATABASE__URL": db_url}, only="smtp,worker",
                         extra_args=["--one-process"]) as server:
        _send(server, "w3@example.org")
        _stored(db_url, 1)
        assert not [c for c in _children(server.proc.pid) if "--only worker" in _cmdline(c)]


def test_sigterm_stops_the_worker_in_order_and_leaves_no_metrics_directory(db_url, tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    with PostdeskProcess(tmp_path / "run", {"POSTDESK_DATABASE__URL": db_url, "TMPDIR": str(scratch)},
                         only="smtp,web,worker") as server:
        worker = _worker_of(server)
        assert [p.name for p in scratch.iterdir() if p.name.startswith("postdesk-metrics-")]
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=30) == 0  # not ended by the signal: the roles stopped in order
    assert not _alive(worker)
    assert "exited with" not in server.output()  # the worker was stopped, not found dead and restarted
    assert not [p for p in scratch.iterdir() if p.name.startswith("postdesk-metrics-")]


def test_the_parse_helper_runs_on_sqlite_only_and_dies_with_the_worker(db_url, tmp_path):
    with PostdeskProcess(tmp_path / "run", {"POSTDESK_DATABASE__URL": db_url}, only="smtp,worker") as server:
        worker = _worker_of(server)
        _send(server, "w4@example.org")
        _stored(db_url, 1)  # parsed by the helper on SQLite, in the worker on PostgreSQL
        helpers = [c for c in _children(worker) if "multiprocessing" in _cmdline(c)]
        assert bool(helpers) == db_url.startswith("sqlite")
        os.kill(worker, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(_alive(h) for h in helpers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [h for h in helpers if _alive(h)], "the parse helper outlived its SIGKILLed worker"
