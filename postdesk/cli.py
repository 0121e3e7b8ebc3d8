"""The `postdesk` command: the only place that wires ingest, portal and core together,
configures logging and exits with a status code."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import sys

from core.errors import ConfigError, PostdeskError

log = logging.getLogger("postdesk")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="postdesk", description="Email-first helpdesk.")
    p.add_argument("--config", metavar="PATH", help="config.toml to read (default ./config.toml if present)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run SMTP, web portal and background jobs (all-in-one by default)")
    serve.add_argument("--only", default="smtp,imap,web,worker",
                       help="comma-separated roles to run: smtp, imap, web, worker (default all; "
                            "imap polls every [imap] and [imap.mailboxes.<name>] mailbox that has a host)")
    serve.add_argument("--no-migrate", action="store_true", help="do not upgrade the database on start")
    serve.add_argument("--one-process", action="store_true",
                       help="run the worker role in this process too (by default, beside other roles, it "
                            "runs in a child process of its own, so intake gets a CPU core of its own)")
    # Set by `serve` on the worker process it starts: the pipe the doors wake it through, and its parent.
    serve.add_argument("--wake-fd", type=int, default=None, help=argparse.SUPPRESS)
    serve.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)

    ingest = sub.add_parser("ingest", help="store one raw mail from FILE or stdin (MTA pipe; sysexits codes)")
    ingest.add_argument("file", nargs="?", default="-", help="path of the mail, or - for stdin")
    ingest.add_argument("--sender", default="", help="envelope sender, as the MTA knows it")

    sub.add_parser("migrate", help="upgrade the database to the newest schema")

    user = sub.add_parser("user", help="manage accounts").add_subparsers(dest="user_command", required=True)
    add = user.add_parser("add", help="create an account (or change an existing one)")
    add.add_argument("--email", required=True)
    add.add_argument("--role", required=True, choices=["customer", "agent", "admin"])
    add.add_argument("--name", default="")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")

    imp = sub.add_parser("import-json", help="import tickets from a JSON export (idempotent; sends no mail)")
    imp.add_argument("file", help="path of the JSON list of tickets")

    backup = sub.add_parser("backup", help="copy the SQLite database (mails, attachments) while running")
    backup.add_argument("path")
    restore = sub.add_parser("restore", help="replace the SQLite database with a backup (stop serve first)")
    restore.add_argument("path")

    quarantine = sub.add_parser("quarantine", help="mails that could not be processed")
    qsub = quarantine.add_subparsers(dest="quarantine_command", required=True)
    qsub.add_parser("list", help="list quarantined mails with their error")
    replay = qsub.add_parser("replay", help="process quarantined mails again")
    replay.add_argument("ids", nargs="*", type=int)
    replay.add_argument("--all", action="store_true")
    return p


class JsonLines(logging.Formatter):
    """One JSON object per line, with ticket_id / message_id when the event names them."""

    FIELDS = ("ticket_id", "message_id", "raw_mail_id", "door", "outbox_id")

    def format(self, record: logging.LogRecord) -> str:
        import json

        entry = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"), "level": record.levelname,
                 "logger": record.name, "message": record.getMessage()}
        entry.update({k: getattr(record, k) for k in self.FIELDS if hasattr(record, k)})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(verbose: bool, json_lines: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines() if json_lines else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler], force=True)


def _log_format(config_path: str | None) -> str:
    from core.config import load_settings

    try:
        return load_settings(config_path).log.format
    except ConfigError:
        return "text"  # the same error is reported properly when the command loads its settings


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(verbose=args.verbose, json_lines=_log_format(args.config) == "json")
    for noisy in ("apscheduler", "mail.log", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return _run(args)
    except ConfigError as exc:
        print(f"postdesk: configuration error: {exc}", file=sys.stderr)
        return 78  # EX_CONFIG
    except PostdeskError as exc:
        print(f"postdesk: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    roles = {r.strip() for r in getattr(args, "only", "").split(",") if r.strip()}
    split = args.command == "serve" and "worker" in roles and len(roles) > 1 and not args.one_process
    own_metrics_dir = None
    if split and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from postdesk.worker_process import share_metrics_between_processes

        own_metrics_dir = share_metrics_between_processes()  # before anything imports prometheus_client
    from postdesk import commands
    from postdesk.bootstrap import bootstrap

    if args.command == "ingest":
        return commands.ingest(args)
    desk = bootstrap(args.config)
    if args.command == "migrate":
        commands.migrate(desk)
        return 0
    if args.command == "serve":
        if not args.no_migrate:
            commands.migrate(desk)
            commands.announce_first_admin(desk)
        from postdesk.runtime import ROLES, serve

        unknown = roles - set(ROLES)
        if unknown or not roles:
            raise ConfigError(f"--only takes roles from {', '.join(ROLES)}")
        worker_argv = None
        if split:
            worker_argv = [*(["--config", args.config] if args.config else []), *(["-v"] if args.verbose else []),
                           "serve", "--only", "worker", "--no-migrate"]
        asyncio.run(serve(desk, roles, worker_argv=worker_argv, wake_fd=args.wake_fd, parent_pid=args.parent_pid))
        # Everything that must finish has (spool and outbox commit per row); a job thread still
        # waiting on a hung AI server is abandoned rather than awaited at interpreter exit.
        logging.shutdown()
        if own_metrics_dir is not None:
            shutil.rmtree(own_metrics_dir, ignore_errors=True)
        os._exit(0)
    if args.command == "user":
        return commands.user_add(desk, args)
    if args.command == "quarantine":
        return commands.quarantine(desk, args)
    if args.command == "import-json":
        return commands.import_json(desk, args)
    if args.command in ("backup", "restore"):
        return commands.backup_or_restore(desk, args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
