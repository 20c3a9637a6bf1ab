"""Glue between Hydra's job context and the runner."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from eqexp.runner import run_job


def job_name(hydra_cfg) -> str:
    """A run is named after its overrides (e.g. `hetero=region`), or `default`."""
    return ",".join(hydra_cfg.overrides.task) or "default"


def run_from_hydra(cfg: DictConfig, hydra_cfg, root: Path) -> None:
    out_dir = Path(hydra_cfg.runtime.output_dir)
    result = run_job(cfg, out_dir, root=root, run_name=job_name(hydra_cfg))
    where = [f"[eqexp] tables:  {out_dir / 'tables'}", f"[eqexp] results: {out_dir / 'coefficients.csv'}"]
    if result.run_id:
        where.append(f"[eqexp] MLflow run {result.run_id} (mlflow ui --backend-store-uri sqlite:///outputs/mlflow.db)")
    print("\n".join(where))
