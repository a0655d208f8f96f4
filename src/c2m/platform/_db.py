"""Engines, migrations (Alembic, shipped in the package) and idempotent seeding."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, create_engine, event, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session

from c2m.domain import Project, load_project

from ._models import BenefitRow, ProjectRow, SlotRow, StoreRow, SurveyConceptRow, SurveyDesignRow
from ._settings import BenefitSpec, Settings

SQLITE_BUSY_TIMEOUT_MS = 30_000
IDLE_PING_SECONDS = 10.0  # a pooled server connection idle for longer is pinged before it is handed out


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys, a busy timeout and ``BEGIN IMMEDIATE`` writes.

    Sessions for writing use ``engine.execution_options(write=True)`` (see `write_session`): on
    SQLite their transaction starts with ``BEGIN IMMEDIATE`` so concurrent writers queue on the
    busy timeout instead of failing on a stale read snapshot.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = create_engine(url, **kwargs)
        if not kwargs.get("pool_pre_ping"):
            _ping_when_idle(engine)
        return engine
    connect_args = dict(kwargs.pop("connect_args", {}))
    connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
    connect_args.setdefault("check_same_thread", False)
    engine = create_engine(url, connect_args=connect_args, **kwargs)
    in_memory = parsed.database in (None, "", ":memory:")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = "IMMEDIATE" if conn.get_execution_options().get("write") else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection on checkout only if it sat idle for `IDLE_PING_SECONDS`.

    ``pool_pre_ping`` costs a round trip on every checkout, i.e. on every request; under load a
    connection goes back and forth within milliseconds and cannot have gone stale meanwhile. A
    connection that fails its ping is replaced (SQLAlchemy retries the checkout on a new one).
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the driver's error for a dead connection varies
            raise DisconnectionError(f"stale pooled connection: {exc}") from exc
        if not alive:
            raise DisconnectionError("stale pooled connection")


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A session whose one transaction commits on success and rolls back on any error."""
    with Session(_option_engine(engine, "write"), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A read-only session (its transaction is rolled back at the end)."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


@contextmanager
def single_read(engine: Engine) -> Iterator[Session]:
    """A session for one read statement: on a server database it runs in autocommit (no BEGIN/ROLLBACK).

    Only for a single SELECT, which sees one snapshot by itself; SQLite reads are local and keep
    their transaction.
    """
    if engine.dialect.name != "sqlite":
        engine = _option_engine(engine, "autocommit")
    with Session(engine, expire_on_commit=False) as session:
        yield session


_OPTIONS: dict[str, dict[str, Any]] = {"write": {"write": True}, "autocommit": {"isolation_level": "AUTOCOMMIT"}}


def _option_engine(engine: Engine, kind: str) -> Engine:
    """``engine.execution_options(...)`` for ``kind``, made once per engine (making one takes ~15-45 us).

    Kept on the engine itself, so they go when it goes.
    """
    per_engine: dict[str, Engine] = vars(engine).setdefault("_c2m_option_engines", {})
    if kind not in per_engine:
        per_engine[kind] = engine.execution_options(**_OPTIONS[kind])
    return per_engine[kind]


def _alembic_config(engine: Engine, connection: Any) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(files("c2m.platform").joinpath("migrations")))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run the Alembic migrations up to ``revision`` on ``engine`` (a no-op when already there)."""
    from alembic import command

    with engine.execution_options(write=True).begin() as connection:
        command.upgrade(_alembic_config(engine, connection), revision)


def head_revision() -> str:
    """The newest migration shipped with the package."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(files("c2m.platform").joinpath("migrations")))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def slot_starts(day: date, settings: Settings) -> list[datetime]:
    """Store-local start times of one day's slots: from ``slot_day_start`` while the slot ends by ``slot_day_end``."""
    first = datetime(day.year, day.month, day.day, settings.slot_day_start)
    end = datetime(day.year, day.month, day.day) + timedelta(hours=settings.slot_day_end)
    step = timedelta(minutes=settings.slot_minutes)
    starts = []
    t = first
    while t + step <= end:
        starts.append(t)
        t += step
    return starts


def local_today(settings: Settings) -> date:
    return datetime.now(ZoneInfo(settings.timezone)).date()


def seed_project(
    session: Session, project: Project, settings: Settings, benefits: Sequence[BenefitSpec], today: date
) -> ProjectRow:
    """Insert what is missing of ``project``: its row, stores, test-drive and service slots for the coming days,
    benefits, survey design."""
    row = session.scalar(select(ProjectRow).where(ProjectRow.name == project.name))
    if row is None:
        row = ProjectRow(name=project.name, product=project.product.name, description=project.description)
        session.add(row)
        session.flush()
    stores = {s.code: s for s in session.scalars(select(StoreRow).where(StoreRow.project_id == row.id))}
    new_stores = [
        StoreRow(project_id=row.id, code=s.id, city=s.city, lat=s.lat, lon=s.lon, kind=s.kind)
        for s in project.stores
        if s.id not in stores
    ]
    if new_stores:
        session.add_all(new_stores)
        session.flush()
        stores.update({s.code: s for s in new_stores})
    days = [today + timedelta(days=k) for k in range(settings.slot_days_ahead)]
    starts = [t for day in days for t in slot_starts(day, settings)]
    if starts:
        rows = session.execute(
            select(SlotRow.store_id, SlotRow.start)
            .join(StoreRow, StoreRow.id == SlotRow.store_id)
            .where(StoreRow.project_id == row.id, SlotRow.start >= starts[0], SlotRow.start <= starts[-1])
        )
        existing = {(store_id, start) for store_id, start in rows}
        missing = [
            {
                "store_id": store.id,
                "start": t,
                "minutes": settings.slot_minutes,
                "capacity": settings.slot_capacity,
                "booked": 0,
            }
            for store in stores.values()
            for t in starts
            if (store.id, t) not in existing
        ]
        if missing:
            session.execute(insert(SlotRow), missing)
    from ._aftersales import seed_service_slots  # here: _aftersales imports this module

    seed_service_slots(session, stores.values(), settings, today)
    codes = set(session.scalars(select(BenefitRow.code).where(BenefitRow.project_id == row.id)))
    session.add_all(
        BenefitRow(project_id=row.id, code=b.code, name=b.name, name_zh=b.name_zh, quota=b.quota, granted=0)
        for b in benefits
        if b.code not in codes
    )
    seed_survey_design(session, row, project, settings)
    return row


def seed_survey_design(session: Session, row: ProjectRow, project: Project, settings: Settings) -> None:
    """Store the project's survey design unless it has one (a stored design never changes: respondents use it).

    The design is `c2m.survey.make_design` with the settings' method, versions, tasks, concepts
    and holdouts and the project's seed, so the same project file and settings give the same design.
    """
    from c2m.survey import make_design

    if session.scalar(select(SurveyDesignRow.id).where(SurveyDesignRow.project_id == row.id)) is not None:
        return
    design = make_design(
        project,
        method=settings.survey_method,
        n_versions=settings.survey_versions,
        n_tasks=settings.survey_tasks,
        n_alts=settings.survey_alts,
        n_holdout=settings.survey_holdouts,
        seed=project.seed,
    )
    stored = SurveyDesignRow(
        project_id=row.id,
        method=design.method,
        seed=design.seed,
        n_versions=design.n_versions,
        n_tasks=design.n_tasks,
        n_alts=design.n_alts,
        none_option=design.none_option,
        assigned=0,
    )
    session.add(stored)
    session.flush()
    attributes = design.attribute_names
    session.execute(
        insert(SurveyConceptRow),
        [
            {
                "design_id": stored.id,
                "version": r["version"],
                "task": r["task"],
                "alt": r["alt"],
                "holdout": bool(r["holdout"]),
                "levels": {a: r[a] for a in attributes},
            }
            for r in design.frame.iter_rows(named=True)
        ],
    )


def load_projects(settings: Settings) -> list[Project]:
    """The projects named in the settings, loaded and validated."""
    return [load_project(Path(p)) for p in settings.projects]


def seed(
    engine: Engine, settings: Settings, projects: Sequence[Project] | None = None, today: date | None = None
) -> None:
    """Seed every project idempotently (running it twice changes nothing)."""
    projects = load_projects(settings) if projects is None else projects
    day = local_today(settings) if today is None else today
    with write_session(engine) as session:
        for project in projects:
            seed_project(session, project, settings, settings.benefits, day)


def init_db(
    url: str | None = None,
    settings: Settings | None = None,
    *,
    projects: Sequence[Project] | None = None,
    today: date | None = None,
    **engine_kwargs: Any,
) -> Engine:
    """Migrate the database at ``url`` to the latest schema and seed the projects; returns the engine."""
    settings = Settings() if settings is None else settings
    engine = make_engine(url or settings.database_url, **engine_kwargs)
    upgrade(engine)
    seed(engine, settings, projects, today)
    return engine
