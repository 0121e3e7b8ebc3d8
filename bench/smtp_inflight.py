"""Memory of the SMTP door while several large mails arrive at once.

    .venv/bin/python bench/smtp_inflight.py [--mails 6] [--mib 24] [--inflight-mib 100]

Starts `postdesk serve --only smtp` (SQLite in a temp dir) with [smtp] max_message_bytes 25 MiB and
max_inflight_bytes as given, sends the mails over as many parallel connections (each declares its
SIZE, as MTAs do), and prints each reply code, the server's peak RSS (VmHWM) and its RSS afterwards.
A refused mail (452) is what a sender retries later. Asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.net import free_port, wait_for_port  # noqa: E402


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def _send(port: int, n: int, size: int, codes: list) -> None:
    body = b"x" * 76 + b"\r\n"
    raw = (f"From: ann@example.org\r\nTo: support@example.test\r\nSubject: big {n}\r\n"
           f"Message-ID: <big{n}.{time.time()}@example.org>\r\n\r\n").encode() + body * (size // len(body))
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=300) as smtp:
            smtp.sendmail("ann@example.org", ["support@example.test"], raw)
            codes.append((n, 250))
    except smtplib.SMTPResponseException as exc:
        codes.append((n, exc.smtp_code))
    except smtplib.SMTPDataError as exc:
        codes.append((n, exc.smtp_code))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mails", type=int, default=6)
    parser.add_argument("--mib", type=int, default=24)
    parser.add_argument("--inflight-mib", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = {**os.environ, "POSTDESK_DATABASE__URL": f"sqlite:///{tmp}/bench.db", "POSTDESK_SMTP__PORT": str(port),
               "POSTDESK_PATHS__VAR_DIR": tmp, "POSTDESK_WEB__SECRET_KEY": "bench",
               "POSTDESK_SMTP__MAX_INFLIGHT_BYTES": str(args.inflight_mib * 1024 * 1024)}
        server = subprocess.Popen([str(Path(sys.executable).with_name("postdesk")), "serve", "--only", "smtp"],
                                  cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_port(port, timeout=60)
            before = _status(server.pid)["VmRSS"]
            codes: list = []
            threads = [threading.Thread(target=_send, args=(port, n, args.mib * 1024 * 1024, codes))
                       for n in range(args.mails)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            status = _status(server.pid)
        finally:
            server.terminate()
            server.wait(30)
    print(f"{args.mails} mails of {args.mib} MiB at once, max_inflight_bytes {args.inflight_mib} MiB")
    print("replies:", " ".join(f"{code}" for _, code in sorted(codes)))
    print(f"RSS before {before}, peak (VmHWM) {status['VmHWM']}, after {status['VmRSS']}")


if __name__ == "__main__":
    main()
