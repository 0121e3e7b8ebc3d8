"""Prebuilt statements run on the driver's cursor (core.db.fetch_* / execute_prebuilt / insert_rows)
give what SQLAlchemy's own execution gives: the same rows with the same Python types, fixed values
bound, errors raised as SQLAlchemy's, and statements the driver path cannot take run as before."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError

from core.db import execute_prebuilt, fetch_all, fetch_first, fetch_scalar, insert_or_ignore_id, insert_row, insert_rows
from core.models import Contact, Outbox, utcnow

_CONTACT = select(Contact.id, Contact.email, Contact.undeliverable, Contact.created_at).where(
    Contact.email == bindparam("email"))
_COUNT_ACKS = select(Outbox.id).where(Outbox.rcpt_to == bindparam("rcpt"), Outbox.purpose == "acknowledgement",
                                      Outbox.created_at >= bindparam("since")).order_by(Outbox.id)
_MARK = update(Contact).where(Contact.email == bindparam("email")).values(undeliverable=True)
_SOME = select(Contact.email).where(Contact.email.in_(bindparam("emails", expanding=True))).order_by(Contact.email)


def test_rows_come_back_as_sqlalchemy_reads_them(desk):
    with desk.sessions() as s, s.begin():
        cid = insert_row(s, Contact, {"email": "amy@example.org", "name": "Amy", "role": "customer"})
    with desk.sessions() as s, s.begin():
        row = fetch_first(s, _CONTACT, {"email": "amy@example.org"})
        expected = s.execute(_CONTACT, {"email": "amy@example.org"}).one()
        assert tuple(row) == tuple(expected)
        assert row.id == cid and row.email == "amy@example.org"
        assert row.undeliverable is False  # SQLite stores 0: converted as SQLAlchemy converts it
        assert isinstance(row.created_at, datetime)
        assert fetch_first(s, _CONTACT, {"email": "nobody@example.org"}) is None
        assert fetch_scalar(s, _CONTACT, {"email": "nobody@example.org"}) is None


def test_fixed_values_in_a_statement_are_bound_and_parameters_converted(desk):
    with desk.sessions() as s, s.begin():
        base = {"mail_from": "support@example.test", "rcpt_to": "amy@example.org", "raw": b"x"}
        ack = insert_row(s, Outbox, {**base, "purpose": "acknowledgement", "message_id": "a@x"})
        insert_row(s, Outbox, {**base, "purpose": "reply", "message_id": "b@x"})
        insert_row(s, Outbox, {**base, "purpose": "acknowledgement", "message_id": "c@x",
                               "created_at": utcnow() - timedelta(days=2)})
    with desk.sessions() as s, s.begin():
        since = utcnow() - timedelta(hours=1)
        assert [r.id for r in fetch_all(s, _COUNT_ACKS, {"rcpt": "amy@example.org", "since": since})] == [ack]
        assert fetch_all(s, _COUNT_ACKS, {"rcpt": "ben@example.org", "since": since}) == []


def test_updates_report_the_rows_they_matched(desk):
    with desk.sessions() as s, s.begin():
        insert_row(s, Contact, {"email": "amy@example.org"})
        assert execute_prebuilt(s, _MARK, {"email": "amy@example.org"}) == 1
        assert execute_prebuilt(s, _MARK, {"email": "nobody@example.org"}) == 0
    with desk.sessions() as s:
        assert s.scalar(select(Contact.undeliverable).where(Contact.email == "amy@example.org")) is True


def test_in_lists_of_any_length_are_written_out(desk):
    with desk.sessions() as s, s.begin():
        insert_rows(s, Contact, [{"email": "b@example.org"}, {"email": "a@example.org"}, {"email": "c@example.org"}])
        found = fetch_all(s, _SOME, {"emails": ["c@example.org", "a@example.org", "z@example.org"]})
        assert [r.email for r in found] == ["a@example.org", "c@example.org"]
        assert [r.email for r in fetch_all(s, _SOME, {"emails": ["b@example.org"]})] == ["b@example.org"]
        assert fetch_all(s, _SOME, {"emails": []}) == []


def test_values_in_a_list_are_converted_like_single_ones(desk):
    now = utcnow().replace(microsecond=0)
    with desk.sessions() as s, s.begin():
        base = {"mail_from": "support@example.test", "rcpt_to": "amy@example.org", "raw": b"x", "purpose": "reply"}
        first = insert_row(s, Outbox, {**base, "message_id": "a@x", "created_at": now})
        insert_row(s, Outbox, {**base, "message_id": "b@x", "created_at": now - timedelta(hours=1)})
        stmt = select(Outbox.id, Outbox.created_at).where(Outbox.created_at.in_(bindparam("ats", expanding=True)),
                                                          Outbox.rcpt_to == bindparam("rcpt"))
        rows = fetch_all(s, stmt, {"ats": [now, now + timedelta(days=1)], "rcpt": "amy@example.org"})
        assert [(r.id, r.created_at.replace(tzinfo=None)) for r in rows] == [(first, now.replace(tzinfo=None))]


def test_insert_rows_applies_column_defaults_and_keeps_order(desk):
    with desk.sessions() as s, s.begin():
        insert_rows(s, Contact, [{"email": f"p{i}@example.org"} for i in (2, 0, 1)])
        insert_rows(s, Contact, [])  # nothing to do
    with desk.sessions() as s:
        people = s.scalars(select(Contact).order_by(Contact.id)).all()
        assert [p.email for p in people] == ["p2@example.org", "p0@example.org", "p1@example.org"]
        assert {(p.name, p.role, p.active, p.undeliverable) for p in people} == {("", "customer", True, False)}
        assert all(isinstance(p.created_at, datetime) for p in people)


def test_insert_or_ignore_returns_the_new_id_or_none(desk):
    with desk.sessions() as s, s.begin():
        first = insert_or_ignore_id(s, Contact, ("email",), {"email": "amy@example.org", "name": "Amy"})
        again = insert_or_ignore_id(s, Contact, ("email",), {"email": "amy@example.org", "name": "Other"})
        assert isinstance(first, int) and again is None
    with desk.sessions() as s:
        assert s.get(Contact, first).name == "Amy"


def test_errors_are_sqlalchemys_and_leave_the_transaction_usable_after_a_savepoint(desk):
    with desk.sessions() as s, s.begin():
        insert_row(s, Contact, {"email": "amy@example.org"})
        with pytest.raises(IntegrityError):
            with s.begin_nested():
                insert_rows(s, Contact, [{"email": "ben@example.org"}, {"email": "amy@example.org"}])
        assert fetch_scalar(s, select(Contact.email).where(Contact.email == bindparam("e")),
                            {"e": "ben@example.org"}) is None
