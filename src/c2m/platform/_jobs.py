"""Background jobs of the admin: "estimate now" fits a choice model on a project's stored survey answers.

A job is a row (queued -> running -> done | failed) so every server worker sees it; the worker that
took the request runs it on its own thread pool. A server restart marks jobs it interrupted as
failed (see `fail_interrupted`), so none stays "running" forever.
"""

from __future__ import annotations

import logging
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, update

from ._db import read_session, write_session
from ._errors import NotFoundError
from ._models import JobRow, ProjectRow, utcnow

log = logging.getLogger(__name__)
MIN_RESPONDENTS = 5


@dataclass(frozen=True)
class JobView:
    id: str
    project: str
    kind: str
    state: str
    params: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    created_by: str
    created_at: datetime
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")


def _view(row: JobRow, project: str) -> JobView:
    return JobView(row.id, project, row.kind, row.state, row.params, row.result, row.error, row.created_by,
                   row.created_at, row.finished_at)


def fail_interrupted(engine: Engine) -> int:
    """Mark queued or running jobs as failed (call once at start-up, before any worker runs); their number."""
    with write_session(engine) as session:
        result = session.execute(
            update(JobRow)
            .where(JobRow.state.in_(("queued", "running")))
            .values(state="failed", error="interrupted: the server restarted; run it again", finished_at=utcnow())
        )
        return int(getattr(result, "rowcount", 0) or 0)


def estimate_result(platform: Any, project: str) -> dict[str, Any]:
    """Fit the project's MNL on its finished respondents' answers; the JSON result of an estimate job."""
    from c2m.pipeline._stages import estimate

    responses = platform.survey_responses(project)
    n_people = responses["id"].n_unique() if responses.height else 0
    if n_people < MIN_RESPONDENTS:
        raise ValueError(f"only {n_people} finished respondent(s); estimating needs at least {MIN_RESPONDENTS}")
    model, validation = estimate(platform.domain_project(project), responses)
    coef = [
        {"feature": f, "coef": float(c), "se": float(s), "z": float(c / s) if s > 0 else None}
        for f, c, s in zip(model.feature_names_, model.coef_, model.se_, strict=True)
    ]
    return {
        "model": model.to_dict(),
        "coefficients": coef,
        "n_respondents": int(n_people),
        "loglik": float(model.loglik_),
        "rho2": float(1 - model.loglik_ / model.loglik_null_),
        "converged": bool(model.converged_),
        "validation": {k: float(v) for k, v in validation.items()},
    }


class JobRunner:
    """Creates job rows and runs them on a small thread pool of this process."""

    def __init__(self, engine: Engine, platform: Any, threads: int = 1) -> None:
        self.engine = engine
        self.platform = platform
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="c2m-job")

    def submit_estimate(self, project: str, user: str) -> tuple[JobView, Future[None]]:
        """Queue an estimate of ``project`` and start it in the background."""
        with write_session(self.engine) as session:
            p = session.scalar(select(ProjectRow).where(ProjectRow.name == project))
            if p is None:
                raise NotFoundError(f"unknown project {project!r}")
            row = JobRow(id=uuid.uuid4().hex, project_id=p.id, kind="estimate", state="queued",
                         params={"model": "mnl"}, created_by=user)
            session.add(row)
            session.flush()
            view = _view(row, project)
        return view, self._pool.submit(self._run, view.id, project)

    def _run(self, job_id: str, project: str) -> None:
        with write_session(self.engine) as session:
            taken = session.execute(
                update(JobRow).where(JobRow.id == job_id, JobRow.state == "queued")
                .values(state="running", started_at=utcnow())
            )
            if not getattr(taken, "rowcount", 0):
                return
        try:
            result, error, state = estimate_result(self.platform, project), None, "done"
        except Exception as exc:  # a failed job reports why; the server goes on
            log.warning("job %s (estimate %s) failed: %s", job_id, project, exc)
            result, error, state = None, f"{type(exc).__name__}: {exc}"[:2000], "failed"
        with write_session(self.engine) as session:
            session.execute(
                update(JobRow).where(JobRow.id == job_id)
                .values(state=state, result=result, error=error, finished_at=utcnow())
            )

    def job(self, project: str, job_id: str) -> JobView:
        with read_session(self.engine) as session:
            row = session.execute(
                select(JobRow).join(ProjectRow, ProjectRow.id == JobRow.project_id)
                .where(JobRow.id == job_id, ProjectRow.name == project)
            ).scalar_one_or_none()
            if row is None:
                raise NotFoundError(f"no job {job_id!r} in project {project!r}")
            return _view(row, project)

    def jobs(self, project: str, limit: int = 20) -> list[JobView]:
        """The project's latest jobs, newest first."""
        with read_session(self.engine) as session:
            rows = session.scalars(
                select(JobRow).join(ProjectRow, ProjectRow.id == JobRow.project_id)
                .where(ProjectRow.name == project).order_by(JobRow.created_at.desc()).limit(limit)
            ).all()
            return [_view(r, project) for r in rows]

    def latest_model(self, project: str) -> JobView | None:
        """The newest successful estimate of the project, or None."""
        with read_session(self.engine) as session:
            row = session.scalars(
                select(JobRow).join(ProjectRow, ProjectRow.id == JobRow.project_id)
                .where(ProjectRow.name == project, JobRow.kind == "estimate", JobRow.state == "done")
                .order_by(JobRow.finished_at.desc()).limit(1)
            ).first()
            return None if row is None else _view(row, project)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
