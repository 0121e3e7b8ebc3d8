"""The body of each `postdesk` subcommand (printing is fine here; exiting is cli.py's job)."""
from __future__ import annotations

import argparse
import logging
import sys

from sqlalchemy import select

from core import quarantine as quarantine_rows
from core.accounts import add_user
from core.db import migrate as migrate_db
from core.models import RawMail
from ingest import pipe, worker
from postdesk.bootstrap import Postdesk, bootstrap

log = logging.getLogger(__name__)


def migrate(desk: Postdesk) -> None:
    migrate_db(desk.settings.database.url)


def import_json(desk: Postdesk, args: argparse.Namespace) -> int:
    from core.importer import import_tickets, read_records

    try:
        with open(args.file, "rb") as stream:
            records = read_records(stream.read())  # InvalidImport: cli prints it, exit 1
    except OSError as exc:
        print(f"postdesk import-json: {exc}", file=sys.stderr)
        return 66  # EX_NOINPUT
    with desk.sessions() as session, session.begin():
        result = import_tickets(session, desk.settings, records)
    for error in result.errors:
        print(f"record {error.index} ({error.external_id or 'no id'}): {error.message}", file=sys.stderr)
    print(f"imported {len(result.created)}, already there {len(result.skipped)}, refused {len(result.errors)}")
    return 65 if result.errors else 0  # EX_DATAERR


def announce_first_admin(desk: Postdesk) -> None:
    """On an empty database, create one admin with a random password and print it once (never stored in clear)."""
    from core.accounts import ensure_first_admin

    with desk.sessions() as session, session.begin():
        first = ensure_first_admin(session, desk.settings)
    if first:
        print(f"First admin: {first[0].email}  password: {first[1]}  (shown once; change it under /account)",
              flush=True)


def ingest(args: argparse.Namespace) -> int:
    try:
        desk = bootstrap(args.config)
    except Exception:
        log.exception("cannot start")
        return pipe.EX_TEMPFAIL
    if args.file == "-":
        return pipe.ingest_stream(sys.stdin.buffer, desk.sessions, desk.settings, args.sender)
    try:
        stream = open(args.file, "rb")
    except OSError as exc:
        print(f"postdesk ingest: {exc}", file=sys.stderr)
        return 66  # EX_NOINPUT
    with stream:
        return pipe.ingest_stream(stream, desk.sessions, desk.settings, args.sender)


def user_add(desk: Postdesk, args: argparse.Namespace) -> int:
    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    with desk.sessions() as session, session.begin():
        user = add_user(session, args.email, args.role, args.name, password)
        print(f"user {user.id} {user.email} ({user.role})")
    return 0


def backup_or_restore(desk: Postdesk, args: argparse.Namespace) -> int:
    from pathlib import Path

    from core import backup as backups

    if args.command == "backup":
        from ingest.staging import move_left_over

        # Mail the SMTP door accepted into its staging file goes into the database first, so the
        # backup holds every mail answered 250 (a running door's mover may do the same at once:
        # the spool's dedupe key stores each mail once).
        move_left_over(desk.settings.database.url, desk.sessions)
        size = backups.backup(desk.settings.database.url, Path(args.path))
        print(f"backup written to {args.path} ({size} bytes)")
    else:
        desk.engine.dispose()
        backups.restore(desk.settings.database.url, Path(args.path))
        print(f"database restored from {args.path}")
    return 0


def quarantine(desk: Postdesk, args: argparse.Namespace) -> int:
    if args.quarantine_command == "list":
        with desk.sessions() as session:
            rows = session.execute(select(RawMail.id, RawMail.door, RawMail.received_at, RawMail.attempts,
                                          RawMail.last_error).where(RawMail.state == "quarantined")
                                   .order_by(RawMail.id)).all()
        for row in rows:
            print(f"{row.id}\t{row.door}\t{row.received_at:%Y-%m-%d %H:%M:%S}\t{row.attempts}\t{row.last_error}")
        print(f"{len(rows)} quarantined", file=sys.stderr)
        return 0
    if not args.all and not args.ids:
        print("postdesk quarantine replay: name IDs or --all", file=sys.stderr)
        return 64
    with desk.sessions() as session, session.begin():
        ids = quarantine_rows.quarantined_ids(session, None if args.all else args.ids)
        quarantine_rows.requeue(session, ids)
    worker.drain(desk.sessions, desk.settings)
    with desk.sessions() as session, session.begin():
        report = quarantine_rows.settle_replay(session, ids)
    print(report.summary)
    for raw_id in report.failed:
        print(f"raw_mail {raw_id} failed again", file=sys.stderr)
    return 65 if report.failed else 0  # EX_DATAERR: mails still fail
