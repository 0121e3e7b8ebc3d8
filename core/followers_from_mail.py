"""The people a mail was also addressed to become the ticket's followers, up to [intake]
max_followers — in a few statements per mail whatever the number of addresses (a 5,000-address
To: is a handful of statements, not 10,000 round trips), so intake stays linear in the size of
the header. (Agents' own follower changes are core/followers.py.)"""
from __future__ import annotations

from typing import Iterable

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.orm import Session

from core.db import dialect_insert, is_postgresql
from core.models import Contact, Event, Follower, utcnow

_CHUNK = 500  # addresses per IN list / executemany batch (SQLite)

_KNOWN = select(Contact.email, Contact.id, Contact.role).where(Contact.email.in_(bindparam("emails", expanding=True)))
_PRESENT = select(Follower.contact_id).where(Follower.ticket_id == bindparam("ticket_id"),
                                             Follower.contact_id.in_(bindparam("ids", expanding=True)))
# PostgreSQL: one statement per list, the list as one array parameter.
_PG_KNOWN = text("SELECT email, id, role FROM contact WHERE email = ANY(:emails)")
# Columns a migration adds to an existing table have server defaults, so naming these is enough.
_PG_NEW_CONTACTS = text("INSERT INTO contact (email, name, role, active, undeliverable, created_at) "
                        "SELECT e, '', 'customer', true, false, :now FROM unnest(CAST(:emails AS text[])) AS e "
                        "ORDER BY e ON CONFLICT (email) DO NOTHING")
_PG_NEW_FOLLOWERS = text("INSERT INTO follower (ticket_id, contact_id) SELECT :ticket_id, c "
                         "FROM unnest(CAST(:ids AS integer[])) AS c ON CONFLICT DO NOTHING")
_PG_LIMIT_EVENTS = text("INSERT INTO event (ticket_id, kind, field, old_value, new_value, source, created_at) "
                        "SELECT :ticket_id, 'follower-limit', '', '', v, 'rule', :now "
                        "FROM unnest(CAST(:notes AS text[])) WITH ORDINALITY AS n(v, i) ORDER BY i")
_PG_PRESENT = text("SELECT contact_id FROM follower WHERE ticket_id = :ticket_id AND contact_id = ANY(:ids)")


def _chunks(items: list, size: int = _CHUNK) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _contacts(session: Session, addresses: list[str]) -> dict[str, tuple[int, str]]:
    """{address: (contact id, role)} for the known ones."""
    conn = session.connection()
    if is_postgresql(session.get_bind()):
        return {email: (cid, role) for email, cid, role in conn.execute(_PG_KNOWN, {"emails": addresses})}
    found: dict[str, tuple[int, str]] = {}
    for chunk in _chunks(addresses):
        found.update((email, (cid, role)) for email, cid, role in conn.execute(_KNOWN, {"emails": chunk}))
    return found


def ensure_contacts(session: Session, addresses: list[str]) -> dict[str, tuple[int, str]]:
    """Every address as a contact (new ones as customers, in address order so concurrent intakes
    lock them in one order); returns {address: (id, role)}."""
    known = _contacts(session, addresses)
    missing = sorted(set(addresses) - known.keys())
    if not missing:
        return known
    conn = session.connection()
    if is_postgresql(session.get_bind()):  # one statement, the list as one array parameter
        conn.execute(_PG_NEW_CONTACTS, {"emails": missing, "now": utcnow()})
    else:  # in-process: executemany costs no round trips
        insert = dialect_insert(session)(Contact.__table__).on_conflict_do_nothing(index_elements=["email"])
        conn.execute(insert, [{"email": a, "name": "", "role": "customer", "active": True, "undeliverable": False}
                              for a in missing])
    known.update(_contacts(session, missing))
    return known


_COUNT = select(func.count()).select_from(Follower).where(Follower.ticket_id == bindparam("ticket_id"))


def add_followers(session: Session, ticket_id: int, addresses: Iterable[str], skip_ids: set[int], limit: int) -> int:
    """Make the customers among these addresses followers of the ticket (not those in skip_ids:
    the requester and the sender) until it has `limit`; each one past the limit is noted in the
    ticket's history instead. Returns how many were added."""
    addresses = list(dict.fromkeys(a.strip().lower() for a in addresses if a.strip()))
    if not addresses:
        return 0
    contacts = ensure_contacts(session, addresses)
    candidates: dict[int, str] = {}
    for address in addresses:
        contact_id, role = contacts.get(address, (0, ""))
        if role == "customer" and contact_id not in skip_ids:
            candidates.setdefault(contact_id, address)
    if not candidates:
        return 0
    conn = session.connection()
    wanted = list(candidates)
    present: set[int] = set()
    if is_postgresql(session.get_bind()):
        present.update(conn.execute(_PG_PRESENT, {"ticket_id": ticket_id, "ids": wanted}).scalars())
    else:
        for chunk in _chunks(wanted):
            present.update(conn.execute(_PRESENT, {"ticket_id": ticket_id, "ids": chunk}).scalars())
    new = [cid for cid in wanted if cid not in present]
    if not new:
        return 0
    room = max(0, limit - conn.execute(_COUNT, {"ticket_id": ticket_id}).scalar_one())
    added, refused = new[:room], new[room:]
    if added and is_postgresql(session.get_bind()):
        conn.execute(_PG_NEW_FOLLOWERS, {"ticket_id": ticket_id, "ids": added})
    elif added:
        insert = dialect_insert(session)(Follower.__table__).on_conflict_do_nothing(
            index_elements=["ticket_id", "contact_id"])
        conn.execute(insert, [{"ticket_id": ticket_id, "contact_id": cid} for cid in added])
    notes = [f"{candidates[cid]} not added: {limit} followers already" for cid in refused]
    if notes and is_postgresql(session.get_bind()):
        conn.execute(_PG_LIMIT_EVENTS, {"ticket_id": ticket_id, "notes": notes, "now": utcnow()})
    elif notes:
        now = utcnow()
        conn.execute(Event.__table__.insert(), [
            {"ticket_id": ticket_id, "kind": "follower-limit", "field": "", "old_value": "", "source": "rule",
             "new_value": note, "created_at": now} for note in notes])
    return len(added)
