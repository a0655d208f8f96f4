"""``Signals``: the one query API over a market's behaviour events, whatever the engine."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import polars as pl

from c2m.domain import Project
from c2m.errors import C2MError

from ._engine import ACTIVITY_COLUMNS, Engine, check_event_weights, make_engine
from ._interest import categorical_attributes, interest_from_counts
from ._validate import EventCheck, event_rules, validate_events

if TYPE_CHECKING:
    from c2m.data import Market

DEFAULT_EVENT_WEIGHTS: dict[str, float] = {"view": 1.0, "search": 1.0, "cart": 3.0, "order": 10.0}
_BAND_ORDER = {
    "age_band": ("18-24", "25-34", "35-44", "45-54", "55+"),
    "income_band": ("low", "middle", "high"),
}


def _as_by(by: Sequence[str] | str) -> list[str]:
    cols = [by] if isinstance(by, str) else list(by)
    if len(set(cols)) != len(cols):
        raise C2MError(f"signals: by has repeated columns {cols}")
    return cols


class Signals:
    """Behaviour signals of a market directory (docs/schemas.md "Synthetic market").

    ``engine`` is ``"duckdb"`` (SQL over the Parquet files, out of core),
    ``"polars"`` (lazy Polars scans), ``"spark"`` (the ``spark`` extra;
    options ``session``, ``master``, ``config``) or an :class:`Engine`
    instance; other ``options`` go to the engine. Nothing is read until a query
    runs; queries return small aggregated Polars frames.

    Before the first query the events are validated (:meth:`check_events`):
    rows with a missing ``person_id``/``ts``/``city``/``event_type``, a ``ts``
    after ``now`` (default: the current UTC time), a city not among the
    ``project``'s cities (or the persons' when no project is given) or an
    unknown event type raise a :class:`C2MError` with the count per reason,
    unless ``quarantine`` names a Parquet file to write them to, in which case
    the queries run on the good rows. ``validate=False`` skips the check.
    """

    def __init__(
        self,
        market_dir: str | Path,
        engine: str | Engine = "duckdb",
        *,
        project: Project | None = None,
        validate: bool = True,
        quarantine: str | Path | None = None,
        now: dt.datetime | None = None,
        **options: object,
    ):
        if project is not None and not isinstance(project, Project):
            raise C2MError(f"Signals: project must be a c2m Project, got {type(project).__name__}")
        self.market_dir = Path(market_dir)
        self.engine = make_engine(market_dir, engine, **options)
        self._setup_checks(project, validate, quarantine, now)

    def _setup_checks(
        self, project: Project | None, validate: bool, quarantine: str | Path | None, now: dt.datetime | None
    ) -> None:
        if quarantine is not None and not validate:
            raise C2MError("Signals: quarantine needs validate=True")
        self._project = project
        self._validate = bool(validate)
        self._quarantine = quarantine
        self._now = now
        self._check: EventCheck | None = None
        self._where = str(self.market_dir / "events")

    def check_events(self) -> EventCheck:
        """Validate the events once (see the class docs) and return the counts; later calls reuse the result."""
        if self._check is None:
            rules = event_rules(self.engine, project=self._project, now=self._now)
            self._check = validate_events(self.engine, rules, quarantine=self._quarantine, where=self._where)
        return self._check

    def _ready(self) -> None:
        if self._validate:
            self.check_events()

    @classmethod
    def from_market(
        cls,
        market: Market,
        *,
        validate: bool = True,
        quarantine: str | Path | None = None,
        now: dt.datetime | None = None,
    ) -> Signals:
        """Signals of an in-memory :class:`c2m.data.Market` (Polars engine; validated against its project)."""
        from ._polars import PolarsEngine

        out = cls.__new__(cls)
        out.market_dir = Path(".")
        out.engine = PolarsEngine(market.persons, market.events, where=f"market {market.project_name!r}")
        out._setup_checks(market.project, validate, quarantine, now)
        out._where = f"market {market.project_name!r}: events"
        return out

    def __enter__(self) -> Signals:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the engine's resources."""
        self.engine.close()

    def __repr__(self) -> str:
        return f"Signals({str(self.market_dir)!r}, engine={self.engine.name!r})"

    def interest_by_level(
        self,
        project: Project,
        by: Sequence[str] | str = ("city",),
        event_weights: Mapping[str, float] | None = None,
        prior_strength: float | None = None,
    ) -> pl.DataFrame:
        """Interest in each level of each categorical attribute, per cell of ``by``.

        ``by`` columns come from the events (``city``, ``month``) or, joined on
        ``person_id``, from the persons (``age_band``, ``income_band``, ...).
        Columns: ``by...``, ``attribute``, ``level``, ``events`` (events showing
        the level), ``weighted_events`` (sum of ``event_weights``), ``raw_share``
        (share of the cell's weighted events on the attribute; null when the
        cell has none), ``share`` (empirical Bayes: ``(n s + A p) / (n + A)``
        with ``n`` the cell's effective number of events, ``p`` the attribute's
        overall share and ``A`` = ``prior_strength``, or estimated per attribute
        by the method of moments of a Dirichlet-multinomial across cells when
        None), ``n_persons`` (distinct persons with such events) and
        ``prior_strength`` (the ``A`` used). Every level of the project appears
        in every cell, in project order.
        """
        if not isinstance(project, Project):
            raise C2MError(f"interest_by_level: project must be a c2m Project, got {type(project).__name__}")
        weights = check_event_weights(DEFAULT_EVENT_WEIGHTS if event_weights is None else event_weights)
        cols = _as_by(by)
        attributes = [a.name for a in categorical_attributes(project)]
        if not attributes:
            raise C2MError(f"interest_by_level: project {project.name!r} has no categorical attributes")
        self._ready()
        counts = self.engine.level_counts(attributes, cols, weights)
        return interest_from_counts(counts, project, cols, prior_strength)

    def segment_profiles(self, by: Sequence[str] | str = ("city",)) -> pl.DataFrame:
        """One row per segment of persons (``by``: person columns; one row overall when empty).

        Columns: ``by...``, ``persons``, ``share_home_charging``, ``share_owns_car``,
        ``share_app_user``, ``mean_daily_km``, ``share_age_<band>`` and
        ``share_income_<band>`` (mix within the segment), ``events_per_person``
        (view/search/cart/order), ``views_per_person``, ``carts_per_person``,
        ``orders_per_person``, ``service_visits_per_person``, ``cart_rate``
        (carts per view), ``order_rate`` (orders per cart; null without carts)
        and ``buyer_share`` (persons with an order).
        """
        cols = _as_by(by)
        clash = [c for c in cols if c in ACTIVITY_COLUMNS]
        if clash:
            raise C2MError(
                f"segment_profiles: by column(s) {clash} are profile measures (share_...); "
                "segment by other person columns, e.g. city, age_band, income_band"
            )
        self._ready()
        act = self.engine.person_activity(cols)
        n = pl.col("persons").cast(pl.Float64)
        product = pl.col("n_view") + pl.col("n_search") + pl.col("n_cart") + pl.col("n_order")
        out = act.select(
            *cols,
            "persons",
            (pl.col("home_charging") / n).alias("share_home_charging"),
            (pl.col("owns_car") / n).alias("share_owns_car"),
            (pl.col("app_user") / n).alias("share_app_user"),
            (pl.col("daily_km") / n).alias("mean_daily_km"),
            (product / n).alias("events_per_person"),
            (pl.col("n_view") / n).alias("views_per_person"),
            (pl.col("n_cart") / n).alias("carts_per_person"),
            (pl.col("n_order") / n).alias("orders_per_person"),
            (pl.col("n_service_visit") / n).alias("service_visits_per_person"),
            pl.when(pl.col("n_view") > 0).then(pl.col("n_cart") / pl.col("n_view")).alias("cart_rate"),
            pl.when(pl.col("n_cart") > 0).then(pl.col("n_order") / pl.col("n_cart")).alias("order_rate"),
            (pl.col("buyers") / n).alias("buyer_share"),
        )
        keys = cols or ["_all"]
        if not cols:
            out = out.with_columns(pl.lit(0).alias("_all"))
        mixes: list[str] = []
        for column, prefix in (("age_band", "share_age_"), ("income_band", "share_income_")):
            bands = self.engine.band_counts(cols, column).filter(pl.col("value").is_not_null())
            if not cols:
                bands = bands.with_columns(pl.lit(0).alias("_all"))
            seen = bands["value"].unique().to_list()
            known = _BAND_ORDER[column]
            order = [v for v in known if v in seen] + sorted(v for v in seen if v not in known)
            wide = bands.with_columns((prefix + pl.col("value")).alias("value")).pivot(
                on="value", index=keys, values="persons"
            )
            names = [prefix + v for v in order]
            out = out.join(wide, on=keys, how="left", nulls_equal=True)
            out = out.with_columns([(pl.col(c).fill_null(0) / n).alias(c) for c in names])
            mixes.extend(names)
        first = [*cols, "persons", "share_home_charging", "share_owns_car", "share_app_user", "mean_daily_km"]
        rest = [c for c in out.columns if c not in first and c not in mixes and c != "_all"]
        return out.select([*first, *mixes, *rest])


def interest_by_level(
    source: Signals | Market | str | Path,
    project: Project,
    by: Sequence[str] | str = ("city",),
    event_weights: Mapping[str, float] | None = None,
    prior_strength: float | None = None,
    engine: str | Engine = "duckdb",
) -> pl.DataFrame:
    """:meth:`Signals.interest_by_level` of a market directory, a :class:`Signals` or an in-memory market."""
    if isinstance(source, Signals):
        return source.interest_by_level(project, by, event_weights, prior_strength)
    if isinstance(source, str | Path):
        with Signals(source, engine=engine) as sig:
            return sig.interest_by_level(project, by, event_weights, prior_strength)
    from c2m.data import Market

    if isinstance(source, Market):
        return Signals.from_market(source).interest_by_level(project, by, event_weights, prior_strength)
    raise C2MError(
        f"interest_by_level: source must be a market directory, Signals or Market, got {type(source).__name__}"
    )
