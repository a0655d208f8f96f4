"""Pooled server connections: pinged when they sat idle, not on every request; single reads in autocommit."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import OperationalError

from c2m.platform import _db
from c2m.platform._db import make_engine, single_read


def _server_only(db_url: str) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite has no server connection to lose")


def _kill_pooled_backends(engine_url: str, pids: list[int]) -> None:
    admin = make_engine(engine_url, pool_pre_ping=True)
    with admin.connect() as conn:
        for pid in pids:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        conn.commit()
    admin.dispose()


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_connection_that_died_while_idle_is_replaced_on_checkout(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _server_only(db_url)
    engine = make_engine(db_url, pool_size=1, max_overflow=0)
    pid = _backend_pid(engine)
    _kill_pooled_backends(db_url, [pid])
    monkeypatch.setattr(_db, "IDLE_PING_SECONDS", 0.0)  # it has been idle "long enough"
    assert _backend_pid(engine) != pid  # the dead one failed its ping and was replaced, no error
    engine.dispose()


def test_a_connection_in_steady_use_is_not_pinged(db_url: str) -> None:
    """No ping within the idle threshold: a dead connection then fails the statement itself."""
    _server_only(db_url)
    engine = make_engine(db_url, pool_size=1, max_overflow=0)
    pid = _backend_pid(engine)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    for _ in range(5):
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    assert statements == ["SELECT 1"] * 5  # pool_pre_ping would have added a ping per checkout
    _kill_pooled_backends(db_url, [pid])
    time.sleep(0.2)
    with pytest.raises(OperationalError), engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    with engine.connect() as conn:  # the pool was invalidated: the next checkout connects afresh
        assert conn.execute(text("SELECT 1")).scalar_one() == 1
    engine.dispose()


def test_single_read_sends_no_transaction_on_a_server_database(db_url: str) -> None:
    engine = make_engine(db_url)
    with single_read(engine) as session:
        assert session.execute(text("SELECT 1")).scalar_one() == 1
        if not db_url.startswith("sqlite"):
            driver = session.connection().connection.dbapi_connection
            assert driver.info.transaction_status.name == "IDLE"  # type: ignore[union-attr]  # no BEGIN was sent
    engine.dispose()
