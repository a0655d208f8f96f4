"""The synthetic market as a value: generate it, write it to a directory, read it back."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from c2m.domain import FeatureCoder, Project, project_from_dict
from c2m.errors import C2MError

from ._events import event_schema, generate_events
from ._population import generate_population, persons_frame, stores_frame
from ._preferences import SEGMENTS, generate_preferences

SCHEMA_VERSION = 1
MARKET_FILES = ("persons.parquet", "stores.parquet", "events", "truth.parquet", "manifest.json")

PERSONS_SCHEMA: dict[str, pl.DataType] = {
    "person_id": pl.Int64(),
    "city": pl.String(),
    "age_band": pl.String(),
    "income_band": pl.String(),
    "owns_car": pl.Boolean(),
    "daily_km": pl.Float64(),
    "home_charging": pl.Boolean(),
    "app_user": pl.Boolean(),
}
STORES_SCHEMA: dict[str, pl.DataType] = {
    "store_id": pl.String(),
    "city": pl.String(),
    "lat": pl.Float64(),
    "lon": pl.Float64(),
    "kind": pl.String(),
}


@dataclass(eq=False)
class Market:
    """A synthetic market: persons, stores, behaviour events and the hidden true preferences.

    ``truth`` has ``person_id``, ``segment`` and one Float64 column per feature
    of ``feature_names`` (the project's :class:`~c2m.domain.FeatureCoder` order).
    ``project`` is the project the market was generated for (kept so that survey
    answers can be coded); it is restored by :func:`read_market`.
    """

    project_name: str
    seed: int
    feature_names: list[str]
    persons: pl.DataFrame
    stores: pl.DataFrame
    events: pl.DataFrame
    truth: pl.DataFrame
    project: Project | None = field(default=None, repr=False, compare=False)
    events_per_person: float = 3.0

    @property
    def sizes(self) -> dict[str, int]:
        """Row counts of each table."""
        return {
            "persons": self.persons.height,
            "stores": self.stores.height,
            "events": self.events.height,
            "truth": self.truth.height,
        }

    def true_betas(self, person_ids: Sequence[int] | np.ndarray | pl.Series | None = None) -> np.ndarray:
        """True individual coefficients (n, n_features) in feature order; all persons when None."""
        coef = self.truth.select(self.feature_names).to_numpy().astype(float)
        if person_ids is None:
            return coef
        ids = np.asarray(person_ids, dtype=np.int64)
        truth_ids = self.truth["person_id"].to_numpy()
        order = np.argsort(truth_ids, kind="stable")
        pos = np.searchsorted(truth_ids[order], ids)
        pos = np.minimum(pos, max(len(order) - 1, 0))
        found = (truth_ids[order][pos] == ids) if len(order) else np.zeros(ids.shape, dtype=bool)
        if not found.all():
            missing = ids[~found][:5].tolist()
            raise C2MError(f"market {self.project_name!r}: unknown person_id(s) {missing}")
        return coef[order[pos]]

    def manifest(self) -> dict[str, Any]:
        """The manifest.json content (no timestamps: same market, same bytes)."""
        months = (
            sorted(self.events["ts"].dt.strftime("%Y-%m").unique().to_list()) if self.events.height else []
        )
        return {
            "schema_version": SCHEMA_VERSION,
            "project_name": self.project_name,
            "seed": self.seed,
            "events_per_person": self.events_per_person,
            "sizes": self.sizes,
            "feature_names": list(self.feature_names),
            "segments": list(SEGMENTS),
            "event_months": months,
            "project": self.project.model_dump(mode="json") if self.project is not None else None,
        }

    def write(self, out_dir: str | Path) -> Path:
        """Write the market directory of docs/schemas.md atomically; return its path.

        The files are written into a temporary directory beside ``out_dir`` which
        then replaces it; an existing ``out_dir`` is replaced only when it is empty
        or holds a market (a ``manifest.json``).
        """
        out = Path(out_dir)
        if out.exists() and not out.is_dir():
            raise C2MError(f"{out}: exists and is not a directory")
        if out.is_dir() and any(out.iterdir()) and not (out / "manifest.json").is_file():
            raise C2MError(
                f"{out}: exists and is not a market directory (no manifest.json); "
                "choose a new or empty directory"
            )
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        tmp.chmod(0o755)
        try:
            _write_parquet(self.persons, tmp / "persons.parquet")
            _write_parquet(self.stores, tmp / "stores.parquet")
            _write_parquet(self.truth, tmp / "truth.parquet")
            _write_events(self.events, tmp / "events")
            text = json.dumps(self.manifest(), indent=2, ensure_ascii=False) + "\n"
            (tmp / "manifest.json").write_text(text, encoding="utf-8")
            old: Path | None = None
            if out.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
                os.rename(out, old / "market")
            try:
                os.rename(tmp, out)
            except OSError:
                if old is not None:  # put the previous market back
                    os.rename(old / "market", out)
                    shutil.rmtree(old, ignore_errors=True)
                raise
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return out


def _write_parquet(frame: pl.DataFrame, path: Path) -> None:
    frame.write_parquet(path, compression="zstd", compression_level=3, statistics=False)


def _write_events(events: pl.DataFrame, root: Path) -> None:
    """One file per month of ``ts`` (hive style ``month=YYYY-MM/part-0.parquet``), written month by month."""
    root.mkdir()
    if events.height == 0:
        return
    if not events["ts"].is_sorted():
        events = events.sort("ts", maintain_order=True)
    months = events["ts"].dt.strftime("%Y-%m")
    starts = np.flatnonzero(np.r_[True, (months[1:] != months[:-1]).to_numpy()])
    ends = np.r_[starts[1:], events.height]
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        part = root / f"month={months[a]}"
        part.mkdir()
        _write_parquet(events.slice(a, b - a), part / "part-0.parquet")


def generate_market(
    project: Project, n_persons: int = 100_000, seed: int = 0, events_per_person: float = 3.0
) -> Market:
    """Generate the deterministic synthetic market of ``project`` (same seed, same market)."""
    if n_persons < 1:
        raise C2MError(f"n_persons: must be at least 1, got {n_persons}")
    if events_per_person < 0:
        raise C2MError(f"events_per_person: must be >= 0, got {events_per_person}")
    streams = np.random.SeedSequence(seed).spawn(4)
    rng_pop, rng_pref, rng_store, rng_events = (np.random.default_rng(s) for s in streams)
    pop = generate_population(project, n_persons, rng_pop)
    betas, segment = generate_preferences(project, pop, rng_pref)
    stores = stores_frame(project, rng_store)
    events = generate_events(project, pop, betas, stores, events_per_person, rng_events)
    coder = FeatureCoder.from_project(project)
    persons = persons_frame(project, pop)
    truth = pl.DataFrame(
        {
            "person_id": persons["person_id"],
            "segment": pl.Series(segment, dtype=pl.Int64),
            **{name: pl.Series(betas[:, k], dtype=pl.Float64) for k, name in enumerate(coder.feature_names)},
        }
    )
    return Market(
        project_name=project.name,
        seed=seed,
        feature_names=coder.feature_names,
        persons=persons,
        stores=stores,
        events=events,
        truth=truth,
        project=project,
        events_per_person=float(events_per_person),
    )


def _check_schema(frame: pl.DataFrame, expected: dict[str, pl.DataType], where: Path) -> pl.DataFrame:
    missing = [c for c in expected if c not in frame.columns]
    if missing:
        raise C2MError(f"{where}: missing column(s) {missing}; found {frame.columns}")
    for name, dtype in expected.items():
        if frame.schema[name] != dtype:
            raise C2MError(f"{where}: column {name!r} has type {frame.schema[name]}, expected {dtype}")
    return frame.select(list(expected))


def _read(path: Path) -> pl.DataFrame:
    if not path.is_file():
        raise C2MError(f"{path}: file not found (a market directory holds {', '.join(MARKET_FILES)})")
    try:
        return pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise C2MError(f"{path}: cannot read as Parquet: {str(exc).splitlines()[0]}") from None


def read_market(directory: str | Path, project: Project | None = None) -> Market:
    """Read a market directory written by :meth:`Market.write`.

    The project is restored from the manifest unless given.
    """
    root = Path(directory)
    if not root.is_dir():
        raise C2MError(f"{root}: market directory not found")
    manifest_path = root / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise C2MError(
            f"{manifest_path}: file not found (a market directory holds {', '.join(MARKET_FILES)})"
        ) from None
    except json.JSONDecodeError as exc:
        raise C2MError(f"{manifest_path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(manifest, dict):
        raise C2MError(f"{manifest_path}: expected a JSON object")
    for key in ("schema_version", "project_name", "seed", "feature_names"):
        if key not in manifest:
            raise C2MError(f"{manifest_path}: missing key {key!r}")
    if manifest["schema_version"] != SCHEMA_VERSION:
        raise C2MError(
            f"{manifest_path}: schema_version {manifest['schema_version']!r} is not supported "
            f"(expected {SCHEMA_VERSION})"
        )
    if project is None and manifest.get("project") is not None:
        project = project_from_dict(manifest["project"], source=f"{manifest_path}: project")
    feature_names = [str(f) for f in manifest["feature_names"]]
    if project is not None and FeatureCoder.from_project(project).feature_names != feature_names:
        raise C2MError(f"{manifest_path}: feature_names do not match the project's features")

    persons = _check_schema(_read(root / "persons.parquet"), PERSONS_SCHEMA, root / "persons.parquet")
    stores = _check_schema(_read(root / "stores.parquet"), STORES_SCHEMA, root / "stores.parquet")
    truth_schema: dict[str, pl.DataType] = {"person_id": pl.Int64(), "segment": pl.Int64()}
    truth_schema.update({name: pl.Float64() for name in feature_names})
    truth = _check_schema(_read(root / "truth.parquet"), truth_schema, root / "truth.parquet")

    events_dir = root / "events"
    if not events_dir.is_dir():
        raise C2MError(f"{events_dir}: folder not found (a market directory holds {', '.join(MARKET_FILES)})")
    attr_names = [a.name for a in project.attributes if a.kind != "numeric"] if project is not None else None
    files = sorted(events_dir.glob("month=*/*.parquet"))
    parts = [_read(f) for f in files]
    if attr_names is None:
        known = set(event_schema([]))
        attr_names = [c for c in (parts[0].columns if parts else []) if c not in known and c != "month"]
    schema = event_schema(attr_names)
    parts = [_check_schema(p, schema, f) for p, f in zip(parts, files, strict=True)]
    events = pl.concat(parts, how="vertical") if parts else pl.DataFrame(schema=schema)
    sizes = manifest.get("sizes", {})
    for name, frame in (("persons", persons), ("stores", stores), ("events", events), ("truth", truth)):
        if name in sizes and sizes[name] != frame.height:
            raise C2MError(f"{root}: {name} has {frame.height} rows but manifest.json says {sizes[name]}")
    return Market(
        project_name=str(manifest["project_name"]),
        seed=int(manifest["seed"]),
        feature_names=feature_names,
        persons=persons,
        stores=stores,
        events=events,
        truth=truth,
        project=project,
        events_per_person=float(manifest.get("events_per_person", 0.0)),
    )
