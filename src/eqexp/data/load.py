"""Load the analysis panel named by a data config, through a content-addressed cache.

Sources (`data.source`):

- ``synthetic``: the synthetic world → its raw sources (`eqexp.data.synthetic`) → the panel
  built from them by the measures (`eqexp.build`), with the options in ``data.build``;
- ``world``: the synthetic world's own panel, its variables as drawn (no measurement);
- ``raw``: the user's raw sources, a folder (``data.path``) laid out as
  `eqexp.data.sources.read_sources` describes, ``data.columns`` mapping each file's column
  names to ours (``{customs: {party_id: firm_id}, accounts: {...}}``), built as ``synthetic``;
- ``panel``: the user's ready panel (one file), validated and cached.

The cache key hashes everything the panel depends on (the generator's and the measures'
code, the parameters and build options, or the user's file bytes and column mapping), so a
sweep builds the panel once and every job loads the same Parquet file; a changed config,
file or measure gets a new entry. A built entry holds panel.parquet, build_log.json (the
options chosen, every step's rows in / dropped / why / out, timings) and build_log.csv,
province_year.parquet (market integration with its lags, human capital), match.parquet (each customs
party-year's ASIF code and the step that matched it); a synthetic one also latent.parquet and
truth.json, and in build_log.json the match's precision and recall and the firm links' recall
against the world's true keys ("truth_scores").
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from eqexp import build as build_mod
from eqexp import measures, steps
from eqexp.data import geography, sources, synthetic, user, validate
from eqexp.spec import DataSpec, SpecError

WORLD_CODE = (synthetic.world, synthetic.latent, geography)
BUILD_CODE = (synthetic, geography, sources, build_mod, measures, validate, user, steps)  # packages: all their modules


@dataclass(frozen=True)
class Loaded:
    panel: pd.DataFrame
    fingerprint: str  # the cache key: same fingerprint, same panel
    directory: Path  # the cache entry (panel.parquet, truth.json, ...)
    truth: dict | None  # the synthetic world's true parameters
    build: dict | None = None  # the build log of a built panel: {"options", "steps", "seconds", ...}


def _digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
    return h.hexdigest()[:16]


@functools.cache
def _code(modules: tuple) -> str:
    """The source of the modules (every module of a package) a cache entry depends on, read once per process."""
    files: list[Path] = []
    for module in modules:
        path = Path(module.__file__)
        files += sorted(path.parent.rglob("*.py")) if path.name == "__init__.py" else [path]
    return _digest(*(f.read_bytes() for f in files))


@functools.cache
def _file_digest(path: Path, mtime_ns: int, size: int) -> str:
    """A file's content hash, read once per process and version (every job of a sweep asks), in chunks:
    raw customs files run to gigabytes."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()[:16]


def file_digest(path: Path) -> str:
    stat = path.stat()
    return _file_digest(path.resolve(), stat.st_mtime_ns, stat.st_size)


def build_options(spec: DataSpec) -> build_mod.BuildOptions:
    """The measures' options of `spec` (defaults filled in); an unknown or invalid option is a SpecError."""
    try:
        return build_mod.BuildOptions.of(spec.build)
    except (TypeError, ValueError) as err:
        raise SpecError(str(err)) from None


def _split_params(params: dict) -> tuple[dict, dict]:
    """World parameters and source parameters (``data.params.sources``)."""
    params = dict(params)
    return params, dict(params.pop("sources", None) or {})


def fingerprint(spec: DataSpec) -> str:
    if spec.source == "world":
        return "world-" + _digest(_code(WORLD_CODE), json.dumps(spec.params, sort_keys=True))  # new generator, new entry
    if spec.source == "synthetic":
        options = json.dumps(build_options(spec).to_dict(), sort_keys=True)
        try:
            synthetic.SourceParams.of(_split_params(spec.params)[1])
        except (TypeError, ValueError) as err:
            raise SpecError(f"data.params.sources: {err}") from None
        return "synthetic-" + _digest(_code(BUILD_CODE), json.dumps(spec.params, sort_keys=True, default=str), options)
    if spec.source == "raw":
        files = sources.source_files(spec.path or "", spec.files)
        parts = [f"{name}={path.name}:{file_digest(path)}" for name, paths in files.items() for path in paths]
        options = json.dumps(build_options(spec).to_dict(), sort_keys=True)
        reading = json.dumps({"columns": spec.columns, "encoding": spec.encoding}, sort_keys=True, default=str)
        return "raw-" + _digest(*parts, reading, options, _code(BUILD_CODE))
    path = Path(spec.path or "")
    if not path.is_file():
        raise SpecError(f"data.path '{spec.path}' does not exist. Point data.path at your panel file (Parquet, CSV or .dta).")
    checks = {"columns": spec.columns, "id": spec.id, "time": spec.time, "schema": spec.schema, "rules": spec.rules}
    return "panel-" + _digest(file_digest(path), json.dumps(checks, sort_keys=True, default=str))


def _write_atomically(directory: Path, files: dict[str, object]) -> None:
    """Write the entry into a temporary folder and rename it, so concurrent jobs never see half a panel."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=".tmp-"))
    for name, content in files.items():
        if isinstance(content, pd.DataFrame) and name.endswith(".csv"):
            content.to_csv(tmp / name, index=False)
        elif isinstance(content, pd.DataFrame):
            content.to_parquet(tmp / name, index=False)
        else:
            (tmp / name).write_text(json.dumps(content, indent=2, default=str))
    try:
        os.rename(tmp, directory)
    except OSError:  # another process finished first; its entry is identical
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()


def _built_files(built: build_mod.Built, extra: dict) -> dict[str, object]:
    tables = {name: json.loads(t.to_json(orient="records")) for name, t in built.tables.items()}
    log = {"options": built.options.to_dict(), "steps": [s.as_dict() for s in built.log], "seconds": built.seconds,
           **tables, **extra}
    files = {"panel.parquet": built.panel, "build_log.json": log, "build_log.csv": build_mod.log_frame(built.log),
             "province_year.parquet": built.province_year}
    if built.match is not None:
        files["match.parquet"] = built.match.astype({"party_id": "string", "firm_id": "string"})
    return files


def _build(spec: DataSpec) -> dict[str, object]:
    if spec.source == "world":
        world = synthetic.generate_world(synthetic.WorldParams(**spec.params))
        return {"panel.parquet": world.panel, "latent.parquet": world.latent, "truth.json": world.truth}
    if spec.source == "synthetic":
        options = build_options(spec)
        world_params, source_params = _split_params(spec.params)
        start = time.perf_counter()
        world = synthetic.generate_world(synthetic.WorldParams(**world_params))
        generated = time.perf_counter()
        raw = synthetic.generate_sources(world, source_params)
        done = time.perf_counter()
        print(f"[eqexp]   world {generated - start:.1f}s, raw sources {done - generated:.1f}s: "
              f"{', '.join(f'{k} {v:,}' for k, v in sources.describe(raw).items())} rows", flush=True)
        built = build_mod.build(raw, options, progress=True, memory_limit=spec.memory_limit)
        built.seconds = {"world": round(generated - start, 3), "sources": round(done - generated, 3), **built.seconds}
        extra = {"source": "synthetic", "sources": sources.describe(raw), "sources_info": raw.info,
                 "truth_scores": synthetic.scores(raw.truth, built.match, built.firm_of)}
        return {**_built_files(built, extra), "latent.parquet": world.latent, "truth.json": world.truth}
    if spec.source == "raw":
        options = build_options(spec)
        raw = sources.read_sources(spec.path or "", spec.columns, spec.files, spec.encoding, progress=True)
        built = build_mod.build(raw, options, progress=True, memory_limit=spec.memory_limit)
        return _built_files(built, {"source": "raw", "path": str(spec.path), "columns": spec.columns,
                                    "sources": sources.describe(raw)})
    from eqexp.data.user import read_panel  # only users' own data need the readers

    panel, log = read_panel(spec)
    return {"panel.parquet": panel, "build_log.json": [s.as_dict() for s in log]}


def _read(path: Path) -> pd.DataFrame:
    """A cached panel, converted column by column (each freed from Arrow once converted), with
    pyarrow's pool then giving back what the conversion used: a panel's size less at the peak."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    panel = pq.read_table(path).to_pandas(self_destruct=True, split_blocks=True)
    pa.default_memory_pool().release_unused()
    return panel


def load(spec: DataSpec) -> Loaded:
    """The panel for `spec`, built on first use and read from the cache afterwards (a process
    that runs many jobs keeps the last one: `eqexp.cache.ProcessCache.load`)."""
    key = fingerprint(spec)
    directory = Path(spec.cache_dir).resolve() / key
    if not (directory / "panel.parquet").exists():
        print(f"[eqexp] building data '{spec.name}' into {directory} ...", flush=True)
        _write_atomically(directory, _build(spec))
    truth_file, log_file = directory / "truth.json", directory / "build_log.json"
    truth = json.loads(truth_file.read_text()) if truth_file.exists() else None
    log = json.loads(log_file.read_text()) if log_file.exists() else None
    built = log if isinstance(log, dict) else None  # a ready panel's log is a plain list of steps
    return Loaded(_read(directory / "panel.parquet"), key, directory, truth, built)
