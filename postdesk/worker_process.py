"""The worker role in a process of its own, beside the doors and the portal.

Intake (parse, route, store, compose the acknowledgement), delivery and the job table cost most
of the CPU a mail takes; in the doors' process they shared one interpreter lock with the SMTP
door, so each 250 waited behind them and one Python thread did all the work on a 2-core machine.
`postdesk serve` with the worker among other roles therefore starts `postdesk serve --only worker`
as a child: the doors wake it through a pipe after each stored mail (it also polls every second,
so a lost wake-up costs at most that), it dies with its parent (PR_SET_PDEATHSIG, and the pipe's
end-of-file as a fallback), and the parent restarts it if it dies alone. Nothing is handed over
in memory: a mail is committed to the spool before its 250, and the worker claims it from there.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable

log = logging.getLogger(__name__)


class WorkerProcess:
    """Starts, wakes, watches and stops the child `postdesk serve --only worker`."""

    def __init__(self, argv: list[str], stop_timeout: float = 30.0) -> None:
        self.argv = argv
        self.stop_timeout = stop_timeout
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        self._process: subprocess.Popen | None = None
        self._stopping = False
        self._restarts = 0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> None:
        command = [sys.executable, "-m", "postdesk", *self.argv, "--wake-fd", str(self._read),
                   "--parent-pid", str(os.getpid())]
        self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL, pass_fds=(self._read,))
        log.info("worker process %s started", self._process.pid)

    def wake(self) -> None:
        """A mail was stored: the worker drains the spool now (thread-safe, never blocks)."""
        try:
            os.write(self._write, b"w")
        except BlockingIOError:  # the pipe is full of wake-ups the worker has yet to read
            pass

    async def watch(self, every: float = 0.5) -> None:
        """Restart the worker when it exits on its own (a crash, an OOM kill), waiting longer each time."""
        while not self._stopping:
            await asyncio.sleep(every)
            process = self._process
            if process is None or process.poll() is None or self._stopping:
                continue
            self._restarts += 1
            delay = min(30.0, 2.0 ** min(self._restarts, 5) / 2)
            log.error("worker process %s exited with %s; restarting it in %.0f s", process.pid,
                      process.returncode, delay)
            await asyncio.sleep(delay)
            if not self._stopping:
                self.start()

    def stop(self) -> None:
        """SIGTERM, and wait for the worker to finish its batch (SIGKILL after stop_timeout: every
        step commits, so what it had not committed is simply done again)."""
        self._stopping = True
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            log.error("worker process %s did not stop within %.0f s; killed", process.pid, self.stop_timeout)
            process.kill()
            process.wait()


def share_metrics_between_processes() -> str:
    """Point prometheus_client's multiprocess mode at a fresh temporary directory (the caller removes
    it on the way out), inherited by the worker process, so the portal's /metrics shows the mail flow
    of both processes. Must run before prometheus_client is imported."""
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before its multiprocess directory was set")
    directory = tempfile.mkdtemp(prefix="postdesk-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    return directory


def listen_for_wakes(fd: int, wake: Callable[[], None]) -> threading.Thread:
    """A thread turning the doors' wake-ups into `wake()` calls; on end-of-file (the parent is gone)
    it stops this process as SIGTERM would."""

    def run() -> None:
        while True:
            try:
                data = os.read(fd, 4096)
            except InterruptedError:
                continue
            except OSError:
                data = b""
            if not data:
                log.error("the wake pipe closed: the parent process is gone; stopping")
                time.sleep(0.1)
                os.kill(os.getpid(), signal.SIGTERM)
                return
            wake()

    thread = threading.Thread(target=run, name="wake", daemon=True)
    thread.start()
    return thread
