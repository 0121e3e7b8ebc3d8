"""Postdesk as users start it (`postdesk serve` in a subprocess), or its SMTP door in-process."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from postdesk.bootstrap import Postdesk
from tests.support.net import free_port, wait_for_port

POSTDESK = str(Path(sys.executable).with_name("postdesk"))


class PostdeskProcess:
    """`postdesk serve` with POSTDESK_* overrides, on free ports, in its own working directory."""

    def __init__(self, workdir: Path, env: dict[str, str], only: str = "smtp,web,worker",
                 extra_args: list[str] | None = None) -> None:
        self.workdir = workdir
        self.smtp_port = free_port()
        self.web_port = free_port()
        self.env = {**os.environ, "POSTDESK_SMTP__PORT": str(self.smtp_port),
                    "POSTDESK_WEB__PORT": str(self.web_port), **env}
        self.only = only
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen | None = None
        self.log = workdir / "serve.log"

    def __enter__(self) -> "PostdeskProcess":
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([POSTDESK, "serve", "--only", self.only, *self.extra_args],
                                     cwd=self.workdir, env=self.env,
                                     stdout=open(self.log, "wb"), stderr=subprocess.STDOUT)
        try:
            if "smtp" in self.only:
                wait_for_port(self.smtp_port, timeout=60)
            if "web" in self.only:
                wait_for_port(self.web_port, timeout=60)
        except AssertionError:
            self.__exit__()
            raise AssertionError(f"postdesk serve did not start:\n{self.log.read_text()}")
        return self

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def run_postdesk(args: list[str], workdir: Path, env: dict[str, str], stdin: bytes | None = None,
                 timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([POSTDESK, *args], cwd=workdir, env={**os.environ, **env}, input=stdin,
                          capture_output=True, timeout=timeout)


class SmtpDoor:
    """The SMTP door of a Postdesk on a free port in a background event loop, with its intake worker."""

    def __init__(self, desk: Postdesk, with_worker: bool = True) -> None:
        from postdesk.runtime import IntakeLoop

        self.desk = desk
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.intake = IntakeLoop(desk, after_drain=lambda: None, interval=0.2) if with_worker else None
        self.server = None

    def __enter__(self) -> "SmtpDoor":
        from ingest.smtp import SupportInbox, start_smtp_server

        self.thread.start()
        if self.intake:
            self.intake.start()
        self.handler = SupportInbox(self.desk.settings, self.desk.sessions,
                                    on_stored=self.intake.wake if self.intake else (lambda: None))
        self.server = asyncio.run_coroutine_threadsafe(
            start_smtp_server(self.desk.settings, self.handler, "127.0.0.1", self.port), self.loop).result(10)
        return self

    def __exit__(self, *exc) -> None:
        async def close():
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.handler.close()
        if self.intake:
            self.intake.stop()
