"""A child process that must not outlive the process that started it (the worker child of
`serve`, and the worker's parse helper)."""
from __future__ import annotations

import ctypes
import logging
import os
import signal

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Be killed when the process that started this one dies, however it dies (Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the caller's own fallback ends the process
        log.warning("PR_SET_PDEATHSIG unavailable; this process stops by other means when its parent dies")
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(1)
