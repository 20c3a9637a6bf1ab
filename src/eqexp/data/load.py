"""Load the analysis panel named by a data config, through a content-addressed cache.

The cache key hashes everything the panel depends on (generator code and parameters, or
the user's file bytes and column mapping), so a sweep builds the panel once and every job
loads the same Parquet file; a changed config or file gets a new entry.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from eqexp.data import geography, synthetic, world
from eqexp.spec import DataSpec, SpecError


@dataclass(frozen=True)
class Loaded:
    panel: pd.DataFrame
    fingerprint: str  # the cache key: same fingerprint, same panel
    directory: Path  # the cache entry (panel.parquet, truth.json, ...)
    truth: dict | None  # the synthetic world's true parameters


def _digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
    return h.hexdigest()[:16]


def fingerprint(spec: DataSpec) -> str:
    if spec.source == "synthetic":
        code = "".join(inspect.getsource(m) for m in (synthetic, world, geography))  # new generator, new entry
        return "synthetic-" + _digest(code, json.dumps(spec.params, sort_keys=True))
    path = Path(spec.path or "")
    if not path.is_file():
        raise SpecError(f"data.path '{spec.path}' does not exist. Point data.path at your panel file (Parquet, CSV or .dta).")
    return "panel-" + _digest(path.read_bytes(), json.dumps(spec.columns, sort_keys=True))


def _write_atomically(directory: Path, files: dict[str, object]) -> None:
    """Write the entry into a temporary folder and rename it, so concurrent jobs never see half a panel."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=".tmp-"))
    for name, content in files.items():
        if isinstance(content, pd.DataFrame):
            content.to_parquet(tmp / name, index=False)
        else:
            (tmp / name).write_text(json.dumps(content, indent=2, default=str))
    try:
        os.rename(tmp, directory)
    except OSError:  # another process finished first; its entry is identical
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()


def _build(spec: DataSpec) -> dict[str, object]:
    if spec.source == "synthetic":
        world = synthetic.generate_world(synthetic.WorldParams(**spec.params))
        return {"panel.parquet": world.panel, "latent.parquet": world.latent, "truth.json": world.truth}
    from eqexp.data.user import read_panel  # only users' own data need the readers

    panel, log = read_panel(spec)
    return {"panel.parquet": panel, "build_log.json": log}


def load(spec: DataSpec) -> Loaded:
    """The panel for `spec`, built on first use and read from the cache afterwards."""
    key = fingerprint(spec)
    directory = Path(spec.cache_dir) / key
    if not (directory / "panel.parquet").exists():
        print(f"[eqexp] building data '{spec.name}' into {directory} ...", flush=True)
        _write_atomically(directory, _build(spec))
    truth_file = directory / "truth.json"
    truth = json.loads(truth_file.read_text()) if truth_file.exists() else None
    return Loaded(pd.read_parquet(directory / "panel.parquet"), key, directory, truth)
