"""Where the plugin's rows live: the host's Flask-SQLAlchemy session, or an engine of its own.

With the host's ``db`` the plugin never commits: the host's order and its points land in the
host's one transaction. With its own engine every public call is its own transaction. On
SQLite the own engine begins write transactions with ``BEGIN IMMEDIATE``: SQLAlchemy's
``with_for_update()`` compiles to a plain SELECT there, so the database lock is the row lock.
On PostgreSQL the own engine pings a pooled connection only when it has been idle
(``IDLE_PING_SECONDS``), not on every checkout as ``pool_pre_ping`` would.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from flask import Flask, current_app, has_app_context
from flask.globals import app_ctx
from sqlalchemy import Connection, Engine, Select, create_engine, event, exc, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from .models import Member
from .money import MAX_ID

T = TypeVar("T")

WRITE_OPTION = "loyalty_write"

#: A pooled connection that went back to the pool longer ago than this is pinged before it is
#: handed out again. One in steady use is not: its last statement just proved it alive, and a
#: round trip on every checkout would be a tenth of a cheap page's time.
IDLE_PING_SECONDS = 5.0


def normalise_url(url: str) -> str:
    """Plain ``postgresql://`` means psycopg 3, the driver the ``postgres`` extra installs."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, *, idle_ping_seconds: float = IDLE_PING_SECONDS) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _serialise_sqlite_writers(engine)
        return engine
    # Recycled hourly, under the idle timeouts of common proxies and firewalls.
    engine = create_engine(url, pool_recycle=3600)
    _ping_idle_connections(engine, idle_ping_seconds)
    return engine


def _ping_idle_connections(engine: Engine, idle_seconds: float) -> None:
    """``pool_pre_ping``, for connections idle longer than ``idle_seconds`` only.

    A server restart or a dropped connection is then found on checkout, as with pre-ping, when
    the connection sat in the pool; a connection lost while in steady use fails the statement
    that finds out, and SQLAlchemy then replaces every pooled connection of that moment.
    """
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["loyalty_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("loyalty_idle_since")  # None: a new connection, alive
        if since is None or time.monotonic() - since < idle_seconds:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                raise exc.InvalidatePoolError("idle connection lost") from error  # the pool reconnects
            raise


def _serialise_sqlite_writers(engine: Engine) -> None:
    """The pysqlite recipe from SQLAlchemy's docs, plus IMMEDIATE for write transactions."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        options = conn.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":  # one read on its own needs no transaction
            return
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get(WRITE_OPTION) else "BEGIN")


class Store:
    """The session and engine of one app."""

    def __init__(self, app: Flask, db: Any = None, uri: str | None = None) -> None:
        self._app = app
        self._db = db
        self.owns_session = db is None
        if db is None:
            if uri is None:
                os.makedirs(app.instance_path, exist_ok=True)
                uri = "sqlite:///" + os.path.join(app.instance_path, "loyalty.sqlite")
            self._engine: Engine | None = make_engine(uri)
            self._sessions = scoped_session(
                sessionmaker(self._engine, expire_on_commit=False),
                scopefunc=lambda: id(app_ctx._get_current_object()),
            )
            app.teardown_appcontext(self._remove)
        else:
            self._engine = None

    def _remove(self, _exc: BaseException | None = None) -> None:
        self._sessions.remove()

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            # The host's engine is made once, by its ``db.init_app`` (which may come after ours),
            # and Flask-SQLAlchemy hands it out inside the app only: looked up there on first
            # use and kept, so threads outside any request (writers, listeners) have it too. An
            # app context is pushed only when this app's is not current: popping one runs the
            # host's teardown handlers, which must not happen in the middle of its request.
            if has_app_context() and current_app._get_current_object() is self._app:
                self._engine = self._db.engine
            else:
                with self._app.app_context():
                    self._engine = self._db.engine
        return self._engine

    @property
    def session(self) -> Session:
        return self._sessions() if self._db is None else self._db.session()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def work(self, *, write: bool = True) -> Iterator[Session]:
        """One unit of work: committed here with the own engine, left to the host otherwise."""
        session = self.session
        if not self.owns_session:
            if write and self.dialect == "sqlite":
                _take_sqlite_write_lock(session)
            yield session
            session.flush()
            return
        if session.in_transaction():
            session.commit()
        if write:
            session.connection(execution_options={WRITE_OPTION: True})
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise

    def commit(self) -> None:
        """End the plugin's own request (webhook, CLI, job) in either mode."""
        self.session.commit()

    def dispose(self) -> None:
        """Close every pooled connection of the plugin's own engine (tests, forked workers)."""
        if self.owns_session and self._engine is not None:
            self._engine.dispose()


class QuickRead:
    """One row by one ``SELECT``, run on a pooled DBAPI connection outside any transaction.

    For the one read a cached page makes on every request: there SQLAlchemy's ``Connection``
    (and, on SQLite, switching a connection to autocommit and back) costs several times the
    query. The statement is compiled once per dialect. Parameters go to the driver as given and
    the row comes back as the driver returns it (a SQLite timestamp is a string): read columns
    that need no type processing, or use them only to compare. A connection found broken is
    replaced and the read tried once more.
    """

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, str], tuple[str, tuple[str, ...] | None]] = {}

    def first(self, engine: Engine, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        try:
            return self._first(engine, params)
        except exc.DBAPIError as error:
            if not error.connection_invalidated:
                raise
            return self._first(engine, params)

    def _first(self, engine: Engine, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        dialect = engine.dialect
        sql, positions = self._sql(dialect)
        args = params if positions is None else [params[name] for name in positions]
        connection = engine.raw_connection()
        dbapi_connection = connection.dbapi_connection
        # PostgreSQL's drivers begin a transaction before a SELECT unless in autocommit: a BEGIN
        # and a ROLLBACK more, each a round trip. SQLite's driver begins none for a SELECT.
        switch = dialect.name == "postgresql" and not dbapi_connection.autocommit
        try:
            if switch:
                dialect.set_isolation_level(dbapi_connection, "AUTOCOMMIT")
            cursor = connection.cursor()
            try:
                cursor.execute(sql, args)
                return cursor.fetchone()
            finally:
                cursor.close()
        except dialect.loaded_dbapi.Error as error:
            gone = dialect.is_disconnect(error, dbapi_connection, None)
            if gone:
                connection.invalidate(error)
            raise exc.DBAPIError.instance(
                sql, args, error, dialect.loaded_dbapi.Error, connection_invalidated=gone
            ) from error
        finally:
            if switch and connection.is_valid:
                dialect.reset_isolation_level(dbapi_connection)
            connection.close()

    def _sql(self, dialect: Dialect) -> tuple[str, tuple[str, ...] | None]:
        key = (dialect.name, dialect.paramstyle)
        if key not in self._compiled:
            compiled = self.statement.compile(dialect=dialect)
            positions = compiled.positiontup
            self._compiled[key] = (str(compiled), tuple(positions) if positions is not None else None)
        return self._compiled[key]


def lock_member(session: Session, user_id: str) -> Member | None:
    """The member row, locked until the transaction ends and read fresh (not from the
    session's identity map): every change of points starts here."""
    stmt = select(Member).where(Member.user_id == user_id).with_for_update()
    return session.scalars(stmt.execution_options(populate_existing=True)).one_or_none()


def _take_sqlite_write_lock(session: Session) -> None:
    """A host's SQLite session begins lazily, its reads run outside any transaction and
    ``FOR UPDATE`` is dropped: a write that matches no row takes the database's write lock
    now, before any read a rule relies on, so two requests cannot both spend one balance."""
    session.execute(text("UPDATE loyalty_members SET id = id WHERE 0 = 1"))


def upsert_insert(bind: Session | Connection) -> Any:
    """The dialect's ``insert`` with ``on_conflict_do_nothing``: the plugin runs on these two."""
    dialect = bind.get_bind().dialect if isinstance(bind, Session) else bind.dialect
    return {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect.name]


def find(session: Session, model: type[T], ident: int, **options: Any) -> T | None:
    """The row with this id, or None, also for an id too large for the column (which the
    database would refuse with an error instead of finding nothing); ``options`` go to
    ``Session.get``."""
    return session.get(model, ident, **options) if 0 < ident <= MAX_ID else None
