"""The reference graph kept for threading: which Message-IDs each stored mail names, and the
replies in the spool held until the mail they answer is stored."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from core.db import execute_prebuilt, fetch_first, fetch_scalar, in_transaction_memo, insert_rows
from core.mail.parse import ParsedMail
from core.models import MessageReference, RawMail, utcnow

MAX_REFERENCES = 100  # a References header naming more ancestors keeps the nearest ones

_RELEASE = (update(RawMail).where(RawMail.waiting_for == bindparam("msgid"), RawMail.state == "pending")
            .values(held_until=bindparam("now")).execution_options(synchronize_session=False))
_ANY_HELD = select(RawMail.id).where(RawMail.waiting_for.is_not(None), RawMail.state == "pending").limit(1)
_PENDING_PARENT = (select(RawMail.message_id).where(RawMail.message_id.in_(bindparam("ids", expanding=True)),
                                                    RawMail.state == "pending", RawMail.id != bindparam("self_id"))
                   .limit(1))


def index_references(session: Session, message_id: int, ticket_id: int, mail: ParsedMail) -> None:
    """Record the Message-IDs a stored mail names: itself, its parent(s), its other ancestors."""
    rows, seen = [], set()
    ancestors = mail.references[-MAX_REFERENCES:]
    for kind, refs in (("self", (mail.message_id,)), ("parent", mail.in_reply_to), ("ancestor", ancestors)):
        for ref in refs:
            if ref and ref not in seen:
                seen.add(ref)
                rows.append({"message_id": message_id, "ticket_id": ticket_id, "ref": ref[:998], "kind": kind})
    insert_rows(session, MessageReference, rows)


def release_replies_waiting_for(session: Session, msgid: str) -> None:
    """The mail these held replies answer is stored now: let the worker take them at once."""
    if msgid and in_transaction_memo(session).get("replies_held", True):
        execute_prebuilt(session, _RELEASE, {"msgid": msgid, "now": utcnow()})


def look_up_held_replies(session: Session) -> None:
    """Ask once whether any reply waits in the spool at all: when none does, storing a batch of mail
    needs no look-up per mail (a reply is put on hold only when its batch is recorded, after)."""
    held = fetch_first(session, _ANY_HELD) is not None
    in_transaction_memo(session)["replies_held"] = held


def parent_in_spool(session: Session, raw_id: int, mail: ParsedMail) -> str | None:
    """The Message-ID of a mail this one answers that is in the spool but not stored yet."""
    ids = list(dict.fromkeys((*mail.in_reply_to, *mail.references)))[-MAX_REFERENCES:]
    if not ids:
        return None
    return fetch_scalar(session, _PENDING_PARENT, {"ids": ids, "self_id": raw_id})


def hold_deadline(wait_seconds: float):
    return utcnow() + timedelta(seconds=max(wait_seconds, 0))
