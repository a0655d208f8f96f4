"""The consumer survey: screening, the CBC tasks of a stored design version, profile questions.

Versions are handed out round-robin to qualified respondents by one conditional statement,
``UPDATE survey_design SET assigned = assigned + 1 ... RETURNING assigned`` (row lock on
PostgreSQL, the write lock on SQLite), and ``(design, seq)`` is unique, so no two respondents
get the same place in the rotation. Each answer is one row, committed when it is submitted;
``(respondent, task)`` is unique and tasks are answered in order.

Re-submitting an answered task never changes the stored answer (its timing feeds the quality
flags): the same choice again is acknowledged (``repeated=True``), a different one is a
`ConflictError` (``already_answered``).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import polars as pl
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from c2m.domain import Project

from ._db import load_projects, read_session, write_session
from ._errors import ConflictError, InvalidError, NotFoundError
from ._i18n import ATTRIBUTE_ZH, CITY_ZH, LEVEL_ZH, NONE_ZH
from ._models import ProjectRow, SurveyAnswerRow, SurveyConceptRow, SurveyDesignRow, SurveyRespondentRow, utcnow
from ._settings import Settings

SCREENING_QUESTIONS = ("adult", "buys_within_24m")
HOME_CHARGING = ("yes", "no", "unsure")
CURRENT_CAR = ("none", "petrol", "hybrid", "electric")
MAX_DAILY_KM = 1500
OTHER_CITY = "other"


# ---------------------------------------------------------------------- values
@dataclass(frozen=True)
class Concept:
    alt: int
    levels: dict[str, Any]


@dataclass(frozen=True)
class SurveyTask:
    """One choice task as a respondent sees it; ``number`` is the design's task number (1-based)."""

    number: int
    n_tasks: int
    holdout: bool
    concepts: tuple[Concept, ...]
    none_option: bool

    @property
    def none_alt(self) -> int:
        return len(self.concepts) + 1


@dataclass(frozen=True)
class SurveyState:
    """Where a respondent is: ``step`` is ``task``, ``profile``, ``done`` or ``screened_out``."""

    token: str
    respondent_id: int
    project: str
    status: str
    step: str
    lang: str
    version: int | None
    answered: int
    n_tasks: int
    task: SurveyTask | None = None


@dataclass(frozen=True)
class AnswerView:
    task: int
    alt: int
    is_none: bool
    seconds: float
    answered_at: datetime
    repeated: bool = False
    next: SurveyState | None = None  # where the respondent is after this answer


@dataclass(frozen=True)
class StoredDesign:
    """A design as stored in the database (immutable once seeded, so cached per process)."""

    id: int
    method: str
    seed: int
    n_versions: int
    n_tasks: int
    n_alts: int
    none_option: bool
    holdout_tasks: frozenset[int]
    attributes: tuple[str, ...]
    concepts: dict[tuple[int, int], tuple[Concept, ...]] = field(repr=False)

    def task(self, version: int, number: int) -> SurveyTask:
        return SurveyTask(
            number, self.n_tasks, number in self.holdout_tasks, self.concepts[(version, number)], self.none_option
        )

    def frame(self, project: Project) -> pl.DataFrame:
        """The design in `c2m.survey.Design.frame` layout: version, task, alt, attributes, holdout."""
        kinds = {a.name: a.kind for a in project.attributes}
        rows = [
            {"version": v, "task": t, "alt": c.alt, **c.levels, "holdout": t in self.holdout_tasks}
            for (v, t), concepts in sorted(self.concepts.items())
            for c in concepts
        ]
        schema: dict[str, Any] = {"version": pl.Int64, "task": pl.Int64, "alt": pl.Int64}
        schema |= {a: pl.Float64 if kinds.get(a) == "numeric" else pl.String for a in self.attributes}
        schema["holdout"] = pl.Boolean
        return pl.DataFrame(rows, schema=schema, orient="row")


# ---------------------------------------------------------------------- labels
def level_label(project: Project, attribute: str, value: Any, lang: str) -> str:
    """The label of a level (zh or en) as the respondent reads it; prices formatted in yuan."""
    attr = next(a for a in project.attributes if a.name == attribute)
    if attr.kind == "numeric":
        level = next((lv for lv in attr.levels if lv.value is not None and float(lv.value) == float(value)), None)
        if level is not None and level.label and lang == "en":
            return level.label
        amount = f"{float(value):,.0f}"
        return f"{amount} 元" if lang == "zh" else f"{amount} yuan"
    level = next((lv for lv in attr.levels if lv.name == value), None)
    en = (level.label if level is not None and level.label else None) or str(value)
    if lang == "zh":
        return getattr(level, "label_zh", None) or LEVEL_ZH.get((attribute, str(value)), en)
    return en


def attribute_label(project: Project, attribute: str, lang: str) -> str:
    attr = next(a for a in project.attributes if a.name == attribute)
    en = attr.label or attr.name
    if lang == "zh":
        return getattr(attr, "label_zh", None) or ATTRIBUTE_ZH.get(attribute, en)
    return en


def none_label(project: Project, lang: str) -> str:
    if lang == "zh":
        return getattr(project.none_option, "label_zh", None) or NONE_ZH
    return project.none_option.label


def city_label(city: str, lang: str) -> str:
    return CITY_ZH.get(city, city) if lang == "zh" else city


# ---------------------------------------------------------------------- validation
def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("yes", "true", "1"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("no", "false", "0"):
        return False
    return None


def validate_screening(answers: Mapping[str, Any]) -> tuple[dict[str, bool], list[str]]:
    """Clean screening answers (booleans; 'yes'/'no' accepted) and the names of missing or invalid ones."""
    clean: dict[str, bool] = {}
    bad: list[str] = []
    for name in SCREENING_QUESTIONS:
        value = _as_bool(answers.get(name))
        if value is None:
            bad.append(name)
        else:
            clean[name] = value
    return clean, bad


def validate_profile(answers: Mapping[str, Any], cities: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """Clean profile answers and the names of the missing or invalid ones.

    ``city``: one of ``cities`` or ``other``; ``daily_km``: whole number 0..1500;
    ``home_charging``: yes/no/unsure; ``current_car``: none/petrol/hybrid/electric.
    """
    clean: dict[str, Any] = {}
    bad: list[str] = []
    city = answers.get("city")
    if isinstance(city, str) and (city in cities or city == OTHER_CITY):
        clean["city"] = city
    else:
        bad.append("city")
    km = answers.get("daily_km")
    if isinstance(km, str) and km.strip().isdigit() and len(km.strip()) <= 6:
        km = int(km.strip())
    if isinstance(km, int) and not isinstance(km, bool) and 0 <= km <= MAX_DAILY_KM:
        clean["daily_km"] = km
    else:
        bad.append("daily_km")
    for name, allowed in (("home_charging", HOME_CHARGING), ("current_car", CURRENT_CAR)):
        value = answers.get(name)
        if isinstance(value, str) and value in allowed:
            clean[name] = value
        else:
            bad.append(name)
    return clean, bad


def parse_choice(choice: Any, n_alts: int, none_option: bool) -> int:
    """The chosen alt (1..n_alts; ``n_alts + 1`` for ``none``) or `InvalidError` naming ``choice``."""
    if isinstance(choice, str):
        text = choice.strip().lower()
        if text == "none" and none_option:
            return n_alts + 1
        if text.isdigit() and len(text) <= 3:
            choice = int(text)
    if isinstance(choice, int) and not isinstance(choice, bool) and 1 <= choice <= n_alts:
        return choice
    allowed = f"1..{n_alts}" + (" or 'none'" if none_option else "")
    raise InvalidError(f"choice: {choice!r} is not a concept of this task; expected {allowed}", field="choice")


# ---------------------------------------------------------------------- quality
def quality_flags(answers: pl.DataFrame, speeder_fraction: float = 0.4) -> pl.DataFrame:
    """Speeders and straight-liners from answers (columns ``id``, ``task``, ``alt``, ``seconds``).

    One row per respondent: ``n_answers``, ``total_seconds``, ``speeder`` (total time below
    ``speeder_fraction`` of the median total of the respondents given) and ``straight_liner``
    (the same concept position, None included, in every task; needs at least 3 answers).
    """
    missing = [c for c in ("id", "task", "alt", "seconds") if c not in answers.columns]
    if missing:
        raise InvalidError(f"quality flags: missing column(s) {missing}")
    per = (
        answers.group_by("id")
        .agg(
            pl.len().cast(pl.Int64).alias("n_answers"),
            pl.col("seconds").cast(pl.Float64).sum().alias("total_seconds"),
            pl.col("alt").n_unique().alias("_positions"),
        )
        .sort("id")
    )
    median = per["total_seconds"].median() if per.height else None
    threshold = speeder_fraction * float(median) if median is not None else 0.0  # type: ignore[arg-type]
    return per.with_columns(
        speeder=pl.col("total_seconds") < threshold,
        straight_liner=(pl.col("_positions") == 1) & (pl.col("n_answers") >= 3),
    ).drop("_positions")


# ---------------------------------------------------------------------- service
def _aware(moment: datetime) -> datetime:
    """SQLite gives back naive datetimes for timezone-aware columns: they are UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class SurveyService:
    """The survey operations of `Platform` (mixed in; one session per call, thread-safe)."""

    engine: Engine
    settings: Settings
    _designs: dict[int, StoredDesign]
    _design_lock: threading.Lock
    _domain_projects: dict[str, Project] | None

    def _project(self, session: Session, name: str) -> ProjectRow:  # pragma: no cover - Platform's
        raise NotImplementedError

    # ------------------------------------------------------------------ designs and projects
    def domain_project(self, name: str) -> Project:
        """The project file's `Project` for ``name`` (labels, attributes, cities)."""
        cache = self._domain_projects
        if cache is None:
            cache = {p.name: p for p in load_projects(self.settings)}
            self._domain_projects = cache
        if name not in cache:
            raise NotFoundError(f"project {name!r} is not among the platform's project files", field="project")
        return cache[name]

    def _design(self, session: Session, project: ProjectRow) -> StoredDesign:
        lock, cache = self._design_lock, self._designs
        with lock:
            if project.id in cache:
                return cache[project.id]
        row = session.scalar(select(SurveyDesignRow).where(SurveyDesignRow.project_id == project.id))
        if row is None:
            raise NotFoundError(f"project {project.name!r} has no survey design; run init_db to seed it")
        concepts: dict[tuple[int, int], list[Concept]] = {}
        holdouts: set[int] = set()
        attributes: tuple[str, ...] = ()
        query = (
            select(SurveyConceptRow)
            .where(SurveyConceptRow.design_id == row.id)
            .order_by(SurveyConceptRow.version, SurveyConceptRow.task, SurveyConceptRow.alt)
        )
        for c in session.scalars(query):
            concepts.setdefault((c.version, c.task), []).append(Concept(c.alt, dict(c.levels)))
            if c.holdout:
                holdouts.add(c.task)
            attributes = attributes or tuple(c.levels)
        design = StoredDesign(
            row.id, row.method, row.seed, row.n_versions, row.n_tasks, row.n_alts, row.none_option,
            frozenset(holdouts), attributes, {k: tuple(v) for k, v in concepts.items()},
        )
        with lock:
            cache[project.id] = design
        return design

    def _check_design(self, design: StoredDesign, project: str) -> None:
        """Refuse a stored design whose attributes are no longer the project file's (it was changed after seeding)."""
        names = {a.name for a in self.domain_project(project).attributes}
        if names != set(design.attributes):
            raise ConflictError(
                f"the stored survey design of project {project!r} has attributes {sorted(design.attributes)} but the "
                f"project file now has {sorted(names)}; give the changed project a new name to field a new survey",
                code="design_mismatch",
            )

    def survey_design(self, project: str) -> StoredDesign:
        with read_session(self.engine) as session:
            return self._design(session, self._project(session, project))

    # ------------------------------------------------------------------ respondents
    def _respondent(self, session: Session, project: ProjectRow, token: str) -> SurveyRespondentRow:
        row = None
        if isinstance(token, str) and 0 < len(token) <= 64:
            row = session.scalar(select(SurveyRespondentRow).where(SurveyRespondentRow.token == token))
        if row is None or row.project_id != project.id:
            raise NotFoundError(f"token: no survey respondent with this token in project {project.name!r}",
                                field="token")
        return row

    def _state(
        self, session: Session, project: ProjectRow, row: SurveyRespondentRow, answered: set[int] | None = None
    ) -> SurveyState:
        """The respondent's state; ``answered`` (the tasks answered) is read from the database unless given."""
        design = self._design(session, project)
        if answered is None:
            answered = set(
                session.scalars(select(SurveyAnswerRow.task).where(SurveyAnswerRow.respondent_id == row.id))
            )
        remaining = [t for t in range(1, design.n_tasks + 1) if t not in answered]
        step = {"screened_out": "screened_out", "done": "done"}.get(row.status, "task" if remaining else "profile")
        task = None
        if step == "task":
            assert row.version is not None
            task = design.task(row.version, remaining[0])
        return SurveyState(
            row.token, row.id, project.name, row.status, step, row.lang, row.version, len(answered), design.n_tasks,
            task,
        )

    def survey_start(self, project: str, screening: Mapping[str, Any], lang: str = "zh") -> SurveyState:
        """A new respondent: screened out unless 18+ and buying within 24 months, else given the next version."""
        clean, bad = validate_screening(screening)
        if bad:
            raise InvalidError(
                f"screening.{bad[0]}: answer yes or no (questions: {', '.join(SCREENING_QUESTIONS)})",
                field=f"screening.{bad[0]}",
            )
        if lang not in ("zh", "en"):
            raise InvalidError(f"lang: {lang!r} is not a survey language; expected zh or en", field="lang")
        qualified = all(clean.values())
        with write_session(self.engine) as session:
            p = self._project(session, project)
            design = self._design(session, p)
            self._check_design(design, p.name)
            seq = version = None
            if qualified:
                seq = session.execute(
                    update(SurveyDesignRow)
                    .where(SurveyDesignRow.id == design.id)
                    .values(assigned=SurveyDesignRow.assigned + 1)
                    .returning(SurveyDesignRow.assigned)
                ).scalar_one()
                version = (seq - 1) % design.n_versions + 1
            row = SurveyRespondentRow(
                project_id=p.id, design_id=design.id, token=secrets.token_urlsafe(24), seq=seq, version=version,
                lang=lang, status="active" if qualified else "screened_out", screening=clean, profile=None,
                started_at=utcnow(),
            )
            if not qualified:
                row.finished_at = row.started_at
            session.add(row)
            session.flush()
            state = self._state(session, p, row)
        return state

    def survey_state(self, project: str, token: str) -> SurveyState:
        """Where the respondent with ``token`` is: the next unanswered task, the profile, or done."""
        with read_session(self.engine) as session:
            p = self._project(session, project)
            return self._state(session, p, self._respondent(session, p, token))

    def survey_answer(self, project: str, token: str, task: int, choice: int | str) -> AnswerView:
        """Store the choice of ``task`` (the respondent's current task) at once; see the module doc on re-submits."""
        with write_session(self.engine) as session:
            p = self._project(session, project)
            row = self._respondent(session, p, token)
            rid = row.id
            design = self._design(session, p)
            if isinstance(task, bool) or not isinstance(task, int) or not 1 <= task <= design.n_tasks:
                raise NotFoundError(f"task: {task!r} is not a task of this survey (1..{design.n_tasks})", field="task")
            alt = parse_choice(choice, design.n_alts, design.none_option)
            given = {
                a.task: a
                for a in session.scalars(select(SurveyAnswerRow).where(SurveyAnswerRow.respondent_id == row.id))
            }
            if task in given:  # read after the respondent's other answers: a concurrent submit is seen either way
                return replace(_repeat(given[task], alt), next=self._state(session, p, row, set(given)))
            if row.status != "active":
                raise ConflictError(f"this respondent's survey is {row.status.replace('_', ' ')}", code="not_active")
            current = next((t for t in range(1, design.n_tasks + 1) if t not in given), None)
            if current is None:
                raise ConflictError(
                    f"task: every task is answered; the profile questions are next (task {task} is not answered "
                    "because it is not part of this respondent's survey)",
                    code="not_current_task", field="task",
                )
            if task != current:
                raise ConflictError(
                    f"task: {task} is not the current task; answer task {current} first",
                    code="not_current_task", field="task",
                )
            last = max((a.answered_at for a in given.values()), default=None, key=_aware)
            now = utcnow()
            since = _aware(last if last is not None else row.started_at)
            answer = SurveyAnswerRow(
                respondent_id=row.id, task=task, alt=alt, is_none=alt == design.n_alts + 1, answered_at=now,
                seconds=max(0.0, (now - since).total_seconds()),
            )
            session.add(answer)
            try:
                session.flush()
            except IntegrityError:  # a concurrent submit of the same task won
                session.rollback()
                with read_session(self.engine) as again:
                    first = again.scalar(
                        select(SurveyAnswerRow).where(
                            SurveyAnswerRow.respondent_id == rid, SurveyAnswerRow.task == task
                        )
                    )
                if first is None:
                    raise
                return replace(_repeat(first, alt), next=self.survey_state(project, token))
            state = self._state(session, p, row, {*given, task})
            view = AnswerView(task, alt, answer.is_none, answer.seconds, now, next=state)
        return view

    def survey_profile(self, project: str, token: str, answers: Mapping[str, Any]) -> SurveyState:
        """Store the profile answers once every task is answered; finishes the survey."""
        with write_session(self.engine) as session:
            p = self._project(session, project)
            row = self._respondent(session, p, token)
            cities = [c.name for c in self.domain_project(p.name).cities]
            clean, bad = validate_profile(answers, cities)
            if bad:
                raise InvalidError(f"profile.{bad[0]}: {_PROFILE_HELP[bad[0]]}", field=f"profile.{bad[0]}")
            state = self._state(session, p, row)
            if state.step != "profile":
                detail = {"task": f"task {state.task.number if state.task else '?'} is not answered yet",
                          "done": "the survey is already finished", "screened_out": "the respondent is screened out"}
                raise ConflictError(f"profile: {detail[state.step]}", code="not_at_profile", field="profile")
            finished = session.execute(
                update(SurveyRespondentRow)
                .where(SurveyRespondentRow.id == row.id, SurveyRespondentRow.status == "active")
                .values(status="done", profile=clean, finished_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            if getattr(finished, "rowcount", 0) != 1:
                raise ConflictError("profile: the survey is already finished", code="not_at_profile", field="profile")
            session.refresh(row)
            state = self._state(session, p, row)
        return state

    # ------------------------------------------------------------------ export
    def survey_responses(self, project: str, include_partial: bool = False) -> pl.DataFrame:
        """Answers in the long format `c2m estimate --responses` reads (docs/schemas.md, "Survey responses").

        One row per respondent x answered task x concept, the None concept last (``alt = J + 1``,
        ``is_none``, attributes null), ``chosen`` 1 on the chosen row; finished respondents only
        unless ``include_partial`` (then every answered task of the unfinished ones too).
        """
        domain = self.domain_project(project)
        with read_session(self.engine) as session:
            p = self._project(session, project)
            design = self._design(session, p)
            self._check_design(design, p.name)
            statuses = ["done", "active"] if include_partial else ["done"]
            answers = session.execute(
                select(SurveyRespondentRow.id, SurveyRespondentRow.version, SurveyAnswerRow.task, SurveyAnswerRow.alt)
                .join(SurveyAnswerRow, SurveyAnswerRow.respondent_id == SurveyRespondentRow.id)
                .where(SurveyRespondentRow.project_id == p.id, SurveyRespondentRow.status.in_(statuses))
                .order_by(SurveyRespondentRow.id, SurveyAnswerRow.task)
            ).all()
        kinds = {a.name: a.kind for a in domain.attributes}
        attrs = [a.name for a in domain.attributes]
        rows: list[dict[str, Any]] = []
        for rid, version, task, chosen in answers:
            assert version is not None  # only qualified respondents answer
            holdout = task in design.holdout_tasks
            for c in design.concepts[(version, task)]:
                rows.append({"id": rid, "version": version, "task": task, "alt": c.alt, "is_none": False,
                             "chosen": int(c.alt == chosen), **{a: c.levels.get(a) for a in attrs},
                             "holdout": holdout})
            if design.none_option:
                rows.append({"id": rid, "version": version, "task": task, "alt": design.n_alts + 1, "is_none": True,
                             "chosen": int(chosen == design.n_alts + 1), **dict.fromkeys(attrs),
                             "holdout": holdout})
        schema: dict[str, Any] = {"id": pl.Int64, "version": pl.Int64, "task": pl.Int64, "alt": pl.Int64,
                                  "is_none": pl.Boolean, "chosen": pl.Int8}
        schema |= {a: pl.Float64 if kinds[a] == "numeric" else pl.String for a in attrs}
        schema["holdout"] = pl.Boolean
        return pl.DataFrame(rows, schema=schema, orient="row")

    def survey_respondents(self, project: str) -> pl.DataFrame:
        """One row per respondent: status, version, language, times, screening and profile answers, quality flags.

        ``person_id`` equals ``id`` (the ``id`` of the responses). Quality flags (see `quality_flags`)
        compare finished respondents with each other; they are null for the others.
        """
        with read_session(self.engine) as session:
            p = self._project(session, project)
            people = session.scalars(
                select(SurveyRespondentRow)
                .where(SurveyRespondentRow.project_id == p.id)
                .order_by(SurveyRespondentRow.id)
            ).all()
            answers = session.execute(
                select(
                    SurveyAnswerRow.respondent_id, SurveyAnswerRow.task, SurveyAnswerRow.alt, SurveyAnswerRow.seconds
                )
                .join(SurveyRespondentRow, SurveyRespondentRow.id == SurveyAnswerRow.respondent_id)
                .where(SurveyRespondentRow.project_id == p.id, SurveyRespondentRow.status == "done")
            ).all()
        done = pl.DataFrame(
            [tuple(a) for a in answers],
            schema={"id": pl.Int64, "task": pl.Int64, "alt": pl.Int64, "seconds": pl.Float64}, orient="row",
        )
        flags = quality_flags(done, self.settings.survey_speeder_fraction)
        frame = pl.DataFrame(
            [
                {
                    "id": r.id, "person_id": r.id, "status": r.status, "version": r.version, "lang": r.lang,
                    "started_at": _aware(r.started_at),
                    "finished_at": _aware(r.finished_at) if r.finished_at is not None else None,
                    **{f"screen_{q}": (r.screening or {}).get(q) for q in SCREENING_QUESTIONS},
                    **{k: (r.profile or {}).get(k) for k in ("city", "daily_km", "home_charging", "current_car")},
                }
                for r in people
            ],
            schema={
                "id": pl.Int64, "person_id": pl.Int64, "status": pl.String, "version": pl.Int64, "lang": pl.String,
                "started_at": pl.Datetime("us", "UTC"), "finished_at": pl.Datetime("us", "UTC"),
                **{f"screen_{q}": pl.Boolean for q in SCREENING_QUESTIONS},
                "city": pl.String, "daily_km": pl.Int64, "home_charging": pl.String, "current_car": pl.String,
            },
            orient="row",
        )
        return frame.join(flags, on="id", how="left", maintain_order="left")


_PROFILE_HELP = {
    "city": f"choose one of the project's cities or {OTHER_CITY!r}",
    "daily_km": f"a whole number of kilometres from 0 to {MAX_DAILY_KM}",
    "home_charging": f"one of {', '.join(HOME_CHARGING)}",
    "current_car": f"one of {', '.join(CURRENT_CAR)}",
}


def _repeat(existing: SurveyAnswerRow, alt: int) -> AnswerView:
    if existing.alt != alt:
        raise ConflictError(
            f"task: task {existing.task} is already answered with concept {existing.alt}; answers cannot be changed",
            code="already_answered", field="task",
        )
    return AnswerView(existing.task, existing.alt, existing.is_none, existing.seconds,
                      _aware(existing.answered_at), repeated=True)
