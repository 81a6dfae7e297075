"""Alembic migrations: from empty to head and back, and the ORM matches the result."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from bot.store import db
from bot.store.models import Base

TABLES = {
    "requests",
    "audit_events",
    "processed_slack_events",
    "pauses",
    "approval_votes",
    "batches",
    "batch_targets",
    "outbox",
}


def _tables(url: str) -> set[str]:
    engine = db.create_sync_engine_for(url)
    try:
        with engine.connect() as conn:
            return set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def test_head_revision() -> None:
    assert db.head_revision() == "0012"


def test_upgrade_from_empty_and_downgrade(database_url: str) -> None:
    assert db.current_revision(database_url) is None
    assert db.is_up_to_date(database_url) is False

    db.upgrade(database_url)
    assert db.current_revision(database_url) == db.head_revision()
    assert db.is_up_to_date(database_url) is True
    assert _tables(database_url) >= TABLES

    db.upgrade(database_url)  # idempotent
    assert db.is_up_to_date(database_url) is True

    db.downgrade(database_url, "base")
    assert db.current_revision(database_url) is None
    assert db.is_up_to_date(database_url) is False
    assert _tables(database_url) & TABLES == set()

    db.upgrade(database_url)
    assert db.is_up_to_date(database_url) is True


def test_orm_matches_migrated_schema(database_url: str) -> None:
    db.upgrade(database_url)
    engine = db.create_sync_engine_for(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diffs = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert diffs == []


def test_indexes_are_created(database_url: str) -> None:
    db.upgrade(database_url)
    engine = db.create_sync_engine_for(database_url)
    try:
        with engine.connect() as conn:
            insp = inspect(conn)
            card = {ix["name"]: ix for ix in insp.get_indexes("requests")}["uq_requests_card"]
            pauses = {ix["name"] for ix in insp.get_indexes("pauses")}
            audit = {ix["name"] for ix in insp.get_indexes("audit_events")}
    finally:
        engine.dispose()
    assert card["unique"]
    assert card["column_names"] == ["channel", "card_ts"]
    assert {"ix_pauses_active_ends_at", "ix_pauses_ends_at", "ix_pauses_active"} <= pauses
    assert {"ix_audit_events_request_id", "ix_audit_events_history"} <= audit


def test_offline_sql_renders() -> None:
    """`alembic upgrade --sql` works without a database (for DBAs who review DDL)."""
    import contextlib
    import io

    from alembic import command

    buffer = io.StringIO()
    config = db.alembic_config("postgresql+psycopg://u@localhost/x")
    config.output_buffer = buffer
    with contextlib.redirect_stdout(buffer):
        command.upgrade(config, "head", sql=True)
    sql = buffer.getvalue()
    assert "CREATE TABLE requests" in sql
    assert "CREATE UNIQUE INDEX uq_requests_card" in sql
    assert "WHERE card_ts IS NOT NULL" in sql


@pytest.mark.parametrize(
    ("given", "sync", "async_"),
    [
        ("sqlite:///bot.db", "sqlite:///bot.db", "sqlite+aiosqlite:///bot.db"),
        ("sqlite+aiosqlite:///a/b.db", "sqlite:///a/b.db", "sqlite+aiosqlite:///a/b.db"),
        ("sqlite://", "sqlite://", "sqlite+aiosqlite://"),
        (
            "postgresql://u:p%40ss@h:5432/d",
            "postgresql+psycopg://u:p%40ss@h:5432/d",
            "postgresql+psycopg://u:p%40ss@h:5432/d",
        ),
        (
            "postgresql+psycopg://u@h/d?sslmode=require",
            "postgresql+psycopg://u@h/d?sslmode=require",
            "postgresql+psycopg://u@h/d?sslmode=require",
        ),
        ("postgres://u@h/d", "postgresql+psycopg://u@h/d", "postgresql+psycopg://u@h/d"),
    ],
)
def test_urls(given: str, sync: str, async_: str) -> None:
    assert db.sync_url(given) == sync
    assert db.async_url(given) == async_


def test_unsupported_url() -> None:
    with pytest.raises(ValueError, match="unsupported database URL"):
        db.sync_url("mysql://u@h/d")


def test_memory_detection(tmp_path: Path) -> None:
    assert db.is_memory("sqlite://")
    assert db.is_memory("sqlite:///:memory:")
    assert not db.is_memory(f"sqlite:///{tmp_path / 'x.db'}")
    assert not db.is_memory("postgresql+psycopg://u@h/d")


async def test_sqlite_engine_pragmas(tmp_path: Path) -> None:
    from sqlalchemy import text

    engine = db.create_engine_for(f"sqlite:///{tmp_path / 'p.db'}")
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
            timeout = (await conn.execute(text("PRAGMA busy_timeout"))).scalar()
            assert timeout == db.SQLITE_BUSY_TIMEOUT_MS
    finally:
        await engine.dispose()


def test_migrations_ship_in_the_package() -> None:
    assert (db.MIGRATIONS_DIR / "env.py").is_file()
    assert (db.MIGRATIONS_DIR / "script.py.mako").is_file()
    assert (db.MIGRATIONS_DIR / "versions" / "0001_initial.py").is_file()
    assert (db.MIGRATIONS_DIR / "versions" / "0002_approvals.py").is_file()
    assert db.MIGRATIONS_DIR.parent.name == "store"


def test_0007_gives_every_pending_approval_its_expiry_job(database_url: str) -> None:
    """Requests awaiting approval before the scheduler took over expiries get their job."""
    import json
    from datetime import datetime

    from sqlalchemy import text

    db.upgrade(database_url, "0006")
    engine = db.create_sync_engine_for(database_url)
    insert = text(
        "INSERT INTO requests (id, status, verb, environment, kind, target_key, target_name,"
        " target_id, all_versions, extends_pause, fingerprint, requested_by, via, created_at,"
        " updated_at, expires_at) VALUES (:id, :status, 'pause', 'prod', 'journey', :id, 'N',"
        " 'x', false, false, :id, 'U1', 'command', :at, :at, :expires)"
    )
    at = datetime(2026, 11, 23, 9, 0)
    expires = datetime(2026, 11, 23, 13, 0)
    try:
        with engine.begin() as conn:
            for ident, status, until in (
                ("pending", "awaiting_approval", expires),
                ("approved", "approved", expires),
                ("plain", "received", None),
            ):
                conn.execute(insert, {"id": ident, "status": status, "at": at, "expires": until})
        db.upgrade(database_url)
        with engine.connect() as conn:
            jobs = conn.execute(text("SELECT kind, key, due_at, attempts FROM jobs")).all()
            (payload,) = conn.execute(text("SELECT payload FROM jobs")).one()
    finally:
        engine.dispose()
    assert [(kind, key, attempts) for kind, key, _, attempts in jobs] == [
        ("approval_expiry", "approval_expiry:pending", 0)
    ]
    assert str(jobs[0][2]).startswith("2026-11-23 13:00:00")
    assert (json.loads(payload) if isinstance(payload, str) else payload) == {
        "request_id": "pending"
    }


def test_0008_keeps_the_first_of_identical_pending_approvals(database_url: str) -> None:
    """Identical requests awaiting approval from before 0008: the first one stays pending,
    the later ones are closed (with the reason) and lose their expiry job."""
    from datetime import datetime

    from sqlalchemy import text

    db.upgrade(database_url, "0007")
    engine = db.create_sync_engine_for(database_url)
    insert = text(
        "INSERT INTO requests (id, status, verb, environment, kind, target_key, target_name,"
        " target_id, all_versions, extends_pause, fingerprint, requested_by, via, created_at,"
        " updated_at, expires_at) VALUES (:id, :status, 'pause', 'prod', 'journey', :key, 'N',"
        " 'x', false, false, :fp, 'U1', 'command', :at, :at, :at)"
    )
    job = text(
        "INSERT INTO jobs (kind, key, due_at, payload, attempts, created_at)"
        " VALUES ('approval_expiry', :key, :at, '{}', 0, :at)"
    )
    rows = [  # id, status, target, fingerprint, minute
        ("first", "awaiting_approval", "welcome", "fp1", 1),
        ("second", "awaiting_approval", "welcome", "fp1", 2),
        ("third", "awaiting_approval", "welcome", "fp1", 3),
        ("other-params", "awaiting_approval", "welcome", "fp2", 4),
        ("other-target", "awaiting_approval", "winback", "fp1", 5),
        ("decided", "denied", "welcome", "fp1", 0),
    ]
    try:
        with engine.begin() as conn:
            for ident, status, key, fp, minute in rows:
                at = datetime(2026, 12, 1, 9, minute)
                conn.execute(
                    insert, {"id": ident, "status": status, "key": key, "fp": fp, "at": at}
                )
                conn.execute(job, {"key": f"approval_expiry:{ident}", "at": at})
        db.upgrade(database_url)
        with engine.connect() as conn:
            found = conn.execute(text("SELECT id, status, error FROM requests")).all()
            statuses = {str(ident): str(status) for ident, status, _ in found}
            errors = {str(ident): error for ident, _, error in found}
            keys = {k for (k,) in conn.execute(text("SELECT key FROM jobs")).all()}
    finally:
        engine.dispose()
    assert statuses == {
        "first": "awaiting_approval",
        "second": "expired",
        "third": "expired",
        "other-params": "awaiting_approval",
        "other-target": "awaiting_approval",
        "decided": "denied",
    }
    assert "duplicate" in str(errors["second"])
    assert errors["first"] is None
    assert keys == {
        f"approval_expiry:{i}" for i in ("first", "other-params", "other-target", "decided")
    }


async def test_0009_leaves_requests_executing_before_it_to_recovery(database_url: str) -> None:
    """A request executing when 0009 is applied has no owner, lease or phase: recovery may
    take it over at once, and treats its call as one that may have been sent."""
    from datetime import UTC, datetime

    from sqlalchemy import text

    from bot.store.repository import Store

    db.upgrade(database_url, "0007")
    engine = db.create_sync_engine_for(database_url)
    at = datetime(2026, 11, 23, 9, 0)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO requests (id, status, verb, environment, kind, target_key,"
                    " target_name, target_id, all_versions, extends_pause, fingerprint,"
                    " requested_by, via, created_at, updated_at) VALUES ('old', 'executing',"
                    " 'pause', 'prod', 'journey', 'k', 'N', 'x', false, false, 'f', 'U1',"
                    " 'command', :at, :at)"
                ),
                {"at": at},
            )
    finally:
        engine.dispose()
    db.upgrade(database_url)
    store = Store.from_url(database_url)
    try:
        old = await store.get_request("old")
        assert old is not None
        assert (old.owner, old.lease_until, old.execution_phase) == (None, None, None)
        now = datetime.now(UTC)
        taken = await store.take_over("old", owner="me", now=now, until=now)
        assert taken is not None
        assert taken.owner == "me"
    finally:
        await store.close()
    db.downgrade(database_url, "0007")
    assert db.current_revision(database_url) == "0007"


def test_0012_names_batches_in_the_outbox_and_finds_batches_by_card(database_url: str) -> None:
    def shape() -> tuple[set[str], set[str]]:
        engine = db.create_sync_engine_for(database_url)
        try:
            with engine.connect() as conn:
                found = inspect(conn)
                columns = {c["name"] for c in found.get_columns("outbox")}
                indexes = {str(i["name"]) for i in found.get_indexes("batches")}
                return columns, indexes
        finally:
            engine.dispose()

    db.upgrade(database_url)
    columns, indexes = shape()
    assert "batch_id" in columns
    assert "ix_batches_channel_card_ts" in indexes
    db.downgrade(database_url, "0011")
    columns, indexes = shape()
    assert "batch_id" not in columns
    assert "ix_batches_channel_card_ts" not in indexes
    db.upgrade(database_url)
    assert db.is_up_to_date(database_url)
