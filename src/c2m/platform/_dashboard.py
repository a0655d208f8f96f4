"""What the admin dashboard shows: survey progress and quality, the funnel, bookings per store and day; exports.

Exports cover every table of the platform's schema except the secrets (sessions, login attempts,
one-time codes and their outbox) and columns that hold a secret (password, token or code hashes).
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

import polars as pl
from sqlalchemy import Column, Engine, Table, distinct, func, select

from ._db import read_session
from ._errors import InvalidError, NotFoundError
from ._models import (
    Base,
    BenefitClaimRow,
    BenefitRow,
    BookingRow,
    PreorderRow,
    ProjectRow,
    SlotRow,
    StoreRow,
    SurveyRespondentRow,
)

ExportFormat = Literal["csv", "parquet"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("csv", "parquet")
_SECRET_TABLE_WORDS = ("session", "login_attempt", "otp", "outbox", "one_time")
_SECRET_COLUMN_WORDS = ("password", "token", "code_hash", "secret")


@dataclass(frozen=True)
class Funnel:
    """People at each stage (distinct persons where the stage knows them; survey respondents are anonymous)."""

    survey_started: int
    survey_qualified: int
    survey_done: int
    test_drives: int
    benefits: int
    preorders: int
    confirmed: int

    def stages(self) -> list[tuple[str, int]]:
        return [
            ("survey_done", self.survey_done),
            ("test_drives", self.test_drives),
            ("benefits", self.benefits),
            ("preorders", self.preorders),
            ("confirmed", self.confirmed),
        ]


def _project_id(engine: Engine, project: str) -> int:
    with read_session(engine) as session:
        pid = session.scalar(select(ProjectRow.id).where(ProjectRow.name == project))
    if pid is None:
        raise NotFoundError(f"unknown project {project!r}")
    return int(pid)


def funnel(engine: Engine, project: str) -> Funnel:
    """Counts of the survey -> test drive -> benefit -> pre-order -> confirmed funnel of a project."""
    pid = _project_id(engine, project)
    with read_session(engine) as session:
        statuses = dict(
            session.execute(
                select(SurveyRespondentRow.status, func.count())
                .where(SurveyRespondentRow.project_id == pid)
                .group_by(SurveyRespondentRow.status)
            ).all()
        )

        def persons(column: Any, *where: Any) -> int:
            return int(session.scalar(select(func.count(distinct(column))).where(*where)) or 0)

        drives = persons(BookingRow.person_hash, BookingRow.project_id == pid, BookingRow.status == "booked")
        claims = persons(BenefitClaimRow.person_hash, BenefitClaimRow.project_id == pid)
        live = PreorderRow.state.in_(("reserved", "deposit_paid", "confirmed", "delivered"))
        orders = persons(PreorderRow.person_hash, PreorderRow.project_id == pid, live)
        confirmed = persons(
            PreorderRow.person_hash, PreorderRow.project_id == pid, PreorderRow.state.in_(("confirmed", "delivered"))
        )
    started = sum(int(n) for n in statuses.values())
    done = int(statuses.get("done", 0))
    qualified = done + int(statuses.get("active", 0))
    return Funnel(started, qualified, done, drives, claims, orders, confirmed)


def survey_progress(respondents: pl.DataFrame) -> pl.DataFrame:
    """Respondents by design version and city: started, finished, speeders and straight-liners among the finished.

    ``respondents`` is `SurveyService.survey_respondents`'s table; unqualified respondents
    (no version) are left out; city is ``"(not yet)"`` until the profile page is answered.
    """
    qualified = respondents.filter(pl.col("version").is_not_null())
    if qualified.is_empty():
        return pl.DataFrame(
            schema={"version": pl.Int64, "city": pl.String, "started": pl.UInt32, "done": pl.UInt32,
                    "speeders": pl.UInt32, "straight_liners": pl.UInt32}
        )
    done = pl.col("status") == "done"
    return (
        qualified.with_columns(pl.col("city").fill_null("(not yet)"))
        .group_by("version", "city")
        .agg(
            pl.len().alias("started"),
            done.sum().alias("done"),
            (done & pl.col("speeder").fill_null(False)).sum().alias("speeders"),
            (done & pl.col("straight_liner").fill_null(False)).sum().alias("straight_liners"),
        )
        .sort("version", "city")
    )


def bookings_by_store_day(engine: Engine, project: str) -> pl.DataFrame:
    """Active test-drive bookings and seats by store and day (every day with slots)."""
    pid = _project_id(engine, project)
    with read_session(engine) as session:
        rows = session.execute(
            select(StoreRow.code, StoreRow.city, SlotRow.start, SlotRow.capacity, SlotRow.booked)
            .join(SlotRow, SlotRow.store_id == StoreRow.id)
            .where(StoreRow.project_id == pid)
        ).all()
    frame = pl.DataFrame(
        [(code, city, start.date(), cap, booked) for code, city, start, cap, booked in rows],
        schema={"store": pl.String, "city": pl.String, "day": pl.Date, "capacity": pl.Int64, "booked": pl.Int64},
        orient="row",
    )
    return (
        frame.group_by("store", "city", "day")
        .agg(pl.col("booked").sum(), pl.col("capacity").sum().alias("seats"))
        .sort("store", "day")
    )


def benefit_uptake(engine: Engine, project: str) -> list[tuple[str, int, int]]:
    """(benefit code, granted, quota) of a project's benefits."""
    pid = _project_id(engine, project)
    with read_session(engine) as session:
        rows = session.execute(
            select(BenefitRow.code, BenefitRow.granted, BenefitRow.quota)
            .where(BenefitRow.project_id == pid)
            .order_by(BenefitRow.code)
        ).all()
    return [(c, int(g), int(q)) for c, g, q in rows]


# ---------------------------------------------------------------------- exports
def _exportable(table: Table) -> bool:
    return not any(word in table.name for word in _SECRET_TABLE_WORDS)


def _public_columns(table: Table) -> list[Column[Any]]:
    return [c for c in table.columns if not any(word in c.name for word in _SECRET_COLUMN_WORDS)]


def export_tables() -> list[str]:
    """Names of the tables an admin can export, in dependency order."""
    return [t.name for t in Base.metadata.sorted_tables if _exportable(t)]


def _cell(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)  # timestamps with a zone are exported in UTC
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return value


def _polars_type(column: Column[Any]) -> Any:
    python_type: Any
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        python_type = str
    if python_type is bool:
        return pl.Boolean
    if python_type is int:
        return pl.Int64
    if python_type is float:
        return pl.Float64
    if python_type is datetime:
        return pl.Datetime("us")
    if python_type is date:
        return pl.Date
    return pl.String


def table_frame(engine: Engine, name: str) -> pl.DataFrame:
    """One exportable table as a DataFrame (JSON columns as JSON text, secrets left out)."""
    table = Base.metadata.tables.get(name)
    if table is None or not _exportable(table):
        raise NotFoundError(f"no exportable table {name!r}; tables: {', '.join(export_tables())}")
    columns = _public_columns(table)
    with read_session(engine) as session:
        rows = session.execute(select(*columns).order_by(*table.primary_key.columns)).all()
    schema = {c.name: _polars_type(c) for c in columns}
    data = [tuple(_cell(v) for v in row) for row in rows]
    return pl.DataFrame(data, schema=schema, orient="row")


def export_bytes(frame: pl.DataFrame, fmt: str) -> bytes:
    """A table as CSV (UTF-8) or Parquet bytes."""
    if fmt not in EXPORT_FORMATS:
        raise InvalidError(f"format {fmt!r}: must be one of {', '.join(EXPORT_FORMATS)}", field="format")
    buffer = io.BytesIO()
    if fmt == "csv":
        frame.write_csv(buffer)
    else:
        frame.write_parquet(buffer)
    return buffer.getvalue()


def export_zip(engine: Engine, fmt: str) -> bytes:
    """Every exportable table in one ZIP file, one ``<table>.<fmt>`` per table."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in export_tables():
            archive.writestr(f"{name}.{fmt}", export_bytes(table_frame(engine, name), fmt))
    return buffer.getvalue()
