"""Engine and session factory; the same code for SQLite and PostgreSQL, SQLite made durable by pragmas."""
from __future__ import annotations

import sqlite3
from collections import namedtuple
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from core.sqlite_writers import QueuedWriterConnection

ALEMBIC_DIR = Path(__file__).resolve().parent.parent / "alembic"


def normalise_url(url: str) -> str:
    """Use psycopg 3 for plain postgresql:// URLs."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def staging_path(database_url: str) -> Path | None:
    """The SMTP door's staging file beside a SQLite database file (ingest.staging); None for
    PostgreSQL or an in-memory database, where the door writes to raw_mail directly."""
    url = make_url(normalise_url(database_url))
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:" \
            or url.database.startswith("file:"):
        return None
    return Path(f"{url.database}-smtp-spool")


def staged_count(database_url: str) -> int:
    """Mails the SMTP door accepted that are still in its staging file (0 when there is none)."""
    path = staging_path(database_url)
    if path is None or not path.exists():
        return 0
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute("SELECT count(*) FROM staged").fetchone()[0]
    except sqlite3.OperationalError:  # created, its table not yet
        return 0
    finally:
        conn.close()


def make_engine(url: str) -> Engine:
    """An engine whose commits are durable: SQLite in WAL mode with synchronous=FULL."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        connect_args: dict[str, Any] = {"timeout": 30, "check_same_thread": False}
        if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
            connect_args["factory"] = QueuedWriterConnection
        engine = create_engine(url, connect_args=connect_args)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # Let SQLAlchemy issue BEGIN itself (see _sqlite_begin).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


READ_ONLY = {"postdesk_read_only": True}


def _sqlite_begin(conn) -> None:
    # Take the write lock at BEGIN: two writers then queue on busy_timeout instead of
    # failing with "database is locked" when a reader upgrades to a writer. A transaction
    # that only reads for long (see read_only) begins deferred: in WAL mode it reads its
    # snapshot without blocking a writer.
    # Writers queue on a file lock first (core.sqlite_writers), so the next one starts as the last ends.
    if conn.get_execution_options().get("postdesk_read_only"):
        conn.exec_driver_sql("BEGIN")
        return
    dbapi = conn.connection.dbapi_connection
    queued = isinstance(dbapi, QueuedWriterConnection)
    if queued:
        dbapi.take_write_turn()
    try:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    except BaseException:
        if queued:
            dbapi.give_back_turn()
        raise


def read_only(session: Session) -> Session:
    """Mark the session's coming transaction as one that never writes. On SQLite it then does not take
    the write lock at BEGIN, so a long read (a streamed export) leaves intake free to store mail.
    Call before the session's first statement; a write in it would fail on SQLite."""
    session.connection(execution_options=READ_ONLY)
    return session


def dialect_insert(session: Session):
    """The dialect's INSERT construct (both have .on_conflict_do_nothing for insert-or-ignore)."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


# Statements built once and run with parameters: building one with its values each time (and
# keying the compiled-statement cache on them) cost several times what the database did.
_PREBUILT: dict[tuple, Any] = {}


def _flush_new(session: Session) -> None:
    # A row written past the unit of work may refer to one still pending in it (a ticket the
    # web form just added): flush those first, as autoflush would before an ORM query.
    if session.new:
        session.flush()


def insert_row(session: Session, model: type, values: dict[str, Any]) -> int:
    """INSERT one row (column defaults apply) on the session's connection; returns its id.
    Bypasses the unit of work: nothing is flushed, and no ORM object is created."""
    _flush_new(session)
    conn = session.connection()
    key = ("insert", conn.dialect.name, model, frozenset(values))
    insert = _PREBUILT.get(key)
    if insert is None:
        insert = _PREBUILT[key] = _DriverInsert(conn.dialect, model, values.keys())
    return insert.run(conn, values)


def insert_rows(session: Session, model: type, rows: list[dict[str, Any]]) -> None:
    """INSERT several rows with the same columns in one executemany (column defaults apply), as insert_row."""
    if not rows:
        return
    _flush_new(session)
    conn = session.connection()
    key = ("insert-many", conn.dialect.name, model, frozenset(rows[0]))
    insert = _PREBUILT.get(key)
    if insert is None:
        insert = _PREBUILT[key] = _DriverInsert(conn.dialect, model, rows[0].keys(), returning=False)
    insert.run_many(conn, rows)


def _wrapped(sql: str, args: Any, exc: Exception, dbapi_error: type) -> DBAPIError:
    return DBAPIError.instance(sql, args, exc, dbapi_error)


class _DriverInsert:
    """An INSERT (… RETURNING id) compiled once per dialect and set of columns, run on the driver's own
    cursor. Intake writes four to six rows per mail; SQLAlchemy's execution of a compiled statement
    (parameter construction, the execution context, the result object) cost several times what the
    driver did (py-spy: insert_row was a fifth of the worker's store time). The SQL, the column
    defaults and the type conversions are SQLAlchemy's own, taken from the compiled statement;
    errors are raised as SQLAlchemy's (IntegrityError and the rest), as before."""

    def __init__(self, dialect, model: type, keys, returning: bool = True, stmt=None) -> None:
        table = model.__table__
        if stmt is None:
            stmt = table.insert().returning(table.c.id) if returning else table.insert()
        compiled = stmt.compile(dialect=dialect, column_keys=list(keys))
        self.sql = str(compiled)
        self.positional = compiled.positiontup  # qmark (SQLite); None for named (psycopg)
        self.names = list(self.positional or compiled.binds)
        self.processors = {n: p for n, p in compiled._bind_processors.items() if n in self.names}
        given = set(keys)
        self.defaults: dict[str, Any] = {}
        self.callables: set[str] = set()  # defaults that are functions (wrapped to take a context)
        for column in table.columns:
            default = column.default
            if column.key in given or column.key not in self.names or default is None:
                continue
            self.defaults[column.key] = default.arg
            if default.is_callable:
                self.callables.add(column.key)
        self.dbapi_error = dialect.loaded_dbapi.Error

    def _args(self, values: dict[str, Any]) -> Any:
        params = {}
        for name in self.names:
            if name in values:
                value = values[name]
            else:
                value = self.defaults[name](None) if name in self.callables else self.defaults[name]
            processor = self.processors.get(name)
            params[name] = processor(value) if processor is not None else value
        return tuple(params[n] for n in self.positional) if self.positional else params

    def run(self, conn: Connection, values: dict[str, Any]) -> Any:
        """The returned column of the row inserted (None when an insert-or-ignore inserted none)."""
        args = self._args(values)
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            cursor.execute(self.sql, args)
            row = cursor.fetchone()
            return row[0] if row is not None else None
        except self.dbapi_error as exc:
            raise _wrapped(self.sql, args, exc, self.dbapi_error) from exc
        finally:
            cursor.close()

    def run_many(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        args = [self._args(values) for values in rows]
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            cursor.executemany(self.sql, args)
        except self.dbapi_error as exc:
            raise _wrapped(self.sql, args, exc, self.dbapi_error) from exc
        finally:
            cursor.close()


def fetch_all(db: Session | Connection, stmt, params: dict[str, Any] | None = None) -> list:
    """The rows of a prebuilt statement (SELECT, or a write with RETURNING) as named tuples, run on the
    driver's cursor like insert_row. Like Connection.execute it does not flush the session."""
    return _run_prebuilt(db, stmt, params or {}).rows


def fetch_first(db: Session | Connection, stmt, params: dict[str, Any] | None = None):
    """The first row of a prebuilt statement, or None (see fetch_all)."""
    found = _run_prebuilt(db, stmt, params or {}).rows
    return found[0] if found else None


def fetch_scalar(db: Session | Connection, stmt, params: dict[str, Any] | None = None) -> Any:
    """The first column of the first row of a prebuilt statement, or None (see fetch_all)."""
    found = _run_prebuilt(db, stmt, params or {}).rows
    return found[0][0] if found else None


def execute_prebuilt(db: Session | Connection, stmt, params: dict[str, Any] | None = None) -> int:
    """Run a prebuilt UPDATE or DELETE without RETURNING; the number of rows it matched."""
    return _run_prebuilt(db, stmt, params or {}).rowcount


class _Ran:
    __slots__ = ("rows", "rowcount")

    def __init__(self, rows: list, rowcount: int) -> None:
        self.rows = rows
        self.rowcount = rowcount


def _run_prebuilt(db: Session | Connection, stmt, params: dict[str, Any]) -> _Ran:
    conn = db.connection() if isinstance(db, Session) else db
    key = ("query", conn.dialect.name, id(stmt))
    entry = _PREBUILT.get(key)
    if entry is None or entry[0] is not stmt:  # the statement is kept in the entry: its id stays its own
        entry = _PREBUILT[key] = (stmt, _DriverQuery.build(conn.dialect, stmt))
    query = entry[1]
    if query is None:  # a statement the driver path does not take (literal-rendered values): SQLAlchemy runs it
        result = conn.execute(stmt, params)
        return _Ran(result.all(), -1) if result.returns_rows else _Ran([], result.rowcount)
    return query.run(conn, params)


class _DriverQuery:
    """A prebuilt statement compiled once per dialect and run on the driver's cursor (see _DriverInsert):
    the SQL, bound values' conversions and result conversions are SQLAlchemy's own."""

    def __init__(self, compiled, dialect) -> None:
        self.compiled = compiled
        self.expanding = bool(compiled.post_compile_params)  # IN lists: the SQL depends on their lengths
        self.sql = str(compiled)
        self.positional = compiled.positiontup
        by_name = {name: bind for bind, name in compiled.bind_names.items()}
        self.names = list(self.positional or by_name)
        self.fixed = {name: bind.effective_value for name, bind in by_name.items() if not bind.required}
        self.processors = {n: p for n, p in compiled._bind_processors.items() if n in self.names}
        columns = compiled._result_columns
        self.row_type = namedtuple("Row", [c.keyname for c in columns], rename=True) if columns else None
        self.results = [(i, p) for i, c in enumerate(columns)
                        if (p := c.type._cached_result_processor(dialect, None)) is not None]
        self.dbapi_error = dialect.loaded_dbapi.Error

    @classmethod
    def build(cls, dialect, stmt) -> "_DriverQuery | None":
        compiled = stmt.compile(dialect=dialect)
        if compiled.literal_execute_params or compiled.escaped_bind_names:
            return None
        return cls(compiled, dialect)

    def _bound(self, values: dict[str, Any]) -> tuple[str, Any]:
        """The SQL and the driver's parameters for these values."""
        if self.expanding:
            # SQLAlchemy writes out the IN lists (one placeholder per item) and names their items.
            state = self.compiled.construct_expanded_state(values)
            params = dict(state.parameters)
            for name, processor in (*self.processors.items(), *state.processors.items()):
                if name in params:
                    params[name] = processor(params[name])
            positional = state.positiontup
            return state.statement, tuple(params[n] for n in positional) if positional else params
        params = {}
        for name in self.names:
            value = values[name] if name in values else self.fixed[name]
            processor = self.processors.get(name)
            params[name] = processor(value) if processor is not None else value
        return self.sql, tuple(params[n] for n in self.positional) if self.positional else params

    def run(self, conn: Connection, values: dict[str, Any]) -> _Ran:
        sql, args = self._bound(values)
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            cursor.execute(sql, args)
            if self.row_type is None:
                return _Ran([], cursor.rowcount)
            rows = cursor.fetchall()
        except self.dbapi_error as exc:
            raise _wrapped(sql, args, exc, self.dbapi_error) from exc
        finally:
            cursor.close()
        make = self.row_type._make
        if not self.results:
            return _Ran([make(row) for row in rows], len(rows))
        converted = []
        for row in rows:
            row = list(row)
            for i, processor in self.results:
                row[i] = processor(row[i])
            converted.append(make(row))
        return _Ran(converted, len(rows))


def insert_or_ignore(session: Session, model: type, unique: tuple[str, ...], values: dict[str, Any]) -> bool:
    """INSERT one row unless one with the same unique key exists; True when it was inserted."""
    return _insert_or_ignore(session, model, unique, values, unique[0]) is not None


def insert_or_ignore_id(session: Session, model: type, unique: tuple[str, ...], values: dict[str, Any]) -> int | None:
    """insert_or_ignore that returns the new row's id (None when one with the same key existed)."""
    return _insert_or_ignore(session, model, unique, values, "id")


def _insert_or_ignore(session: Session, model: type, unique: tuple[str, ...], values: dict[str, Any],
                      returned: str) -> Any:
    _flush_new(session)
    conn = session.connection()
    key = ("or-ignore", conn.dialect.name, model, unique, returned, frozenset(values))
    insert = _PREBUILT.get(key)
    if insert is None:
        table = model.__table__
        # RETURNING says whether a row went in (psycopg's rowcount for this is -1).
        stmt = (dialect_insert(session)(table).on_conflict_do_nothing(index_elements=list(unique))
                .returning(table.c[returned]))
        insert = _PREBUILT[key] = _DriverInsert(conn.dialect, model, values.keys(), stmt=stmt)
    return insert.run(conn, values)


def in_transaction_memo(session: Session) -> dict[str, Any]:
    """A dict that lives as long as the session's current transaction: for what a use-case would
    otherwise read again and again in one transaction (intake stores a batch of mails in one)."""
    transaction = session.get_transaction()
    memo = session.info.get("postdesk_memo")
    if memo is None or memo[0] is not transaction:
        memo = session.info["postdesk_memo"] = (transaction, {})
    return memo[1]


def skip_locked(session: Session, stmt):
    """Rows this transaction claims: locked and skipped by other workers on PostgreSQL; on SQLite
    the write lock taken at BEGIN IMMEDIATE already serialises claimers."""
    return stmt.with_for_update(skip_locked=True) if session.get_bind().dialect.name == "postgresql" else stmt


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def is_postgresql(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(ALEMBIC_DIR))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


UNMAPPED_TABLES = frozenset({"ticket_search", "ticket_status_tally",  # PostgreSQL only: raw SQL in migrations 0005, 0007
                             "ticket_similar"})  # and 0012


def migration_includes(obj, name: str | None, type_: str, reflected: bool, compare_to) -> bool:
    """Alembic's include_object: what `alembic revision --autogenerate` compares. Tables the models
    leave unmapped on purpose (and their indexes) are not proposed for dropping."""
    if type_ == "table":
        return name not in UNMAPPED_TABLES
    if type_ == "index":
        return obj.table.name not in UNMAPPED_TABLES
    return True


def migrate(url: str) -> None:
    """Upgrade the database to the newest migration."""
    from alembic import command

    command.upgrade(alembic_config(url), "head")


@lru_cache(maxsize=1)
def head_revisions() -> frozenset[str]:
    """The newest migration(s) this code knows (read once per process)."""
    from alembic.script import ScriptDirectory

    return frozenset(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def at_head(bind: Engine | Connection) -> bool:
    """True when the database carries the newest migration (pass a connection to reuse it:
    on SQLite a second connection from the same thread would wait on the first one's lock)."""
    from alembic.runtime.migration import MigrationContext

    if isinstance(bind, Connection):
        return frozenset(MigrationContext.configure(bind).get_current_heads()) == head_revisions()
    with bind.connect() as conn:
        return at_head(conn)
