"""Planning a sweep: Hydra's job list (as its BasicSweeper builds it), the jobs' labels,
their identity (`job_key`) and their task configs."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from eqexp.multiverse.axes import apply_exclusions
from eqexp.spec import MultiverseSpec

# The prefix of the share keys of mediation jobs on one bootstrap (`bootstrap_share_key`): a chain kept whole.
BOOTSTRAP_CHAIN = "bootstrap:"
# Keys that never change a job's results: left out of its identity (`job_key`).
_KEY_EXCLUDED = ("tracking", "force", "outputs")  # where results go is not what they are
_KEY_EXCLUDED_DATA = ("cache_dir",)


def _override_key(override: str) -> str:
    key = override.split("=", 1)[0]
    return key.lstrip("+~")


def job_labels(job_overrides: list[list[str]]) -> list[str]:
    """Name each job after the overrides that vary across the sweep (`hetero=region`)."""
    if not job_overrides:
        return []
    values: dict[str, set[str]] = {}
    for overrides in job_overrides:
        for o in overrides:
            values.setdefault(_override_key(o), set()).add(o)
    varying = {k for k, v in values.items() if len(v) > 1 or any(sum(_override_key(o) == k for o in ov) != 1 for ov in job_overrides)}
    labels = []
    for overrides in job_overrides:
        chosen = [o for o in overrides if _override_key(o) in varying]
        labels.append(",".join(chosen) or ",".join(overrides) or "default")
    return labels


def planned_overrides(cfg: DictConfig, config_loader: Any = None) -> list[list[str]] | None:
    """Hydra's job list, as eqexp's basic sweeper will build it (exclusions left out); None for other sweepers."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    sweeper = OmegaConf.select(cfg, "hydra.sweeper._target_", default="")
    if sweeper and not sweeper.endswith("BasicSweeper"):
        return None
    params = OmegaConf.select(cfg, "hydra.sweeper.params", default=None) or {}
    arguments = [f"{k}={v}" for k, v in params.items()]
    arguments += list(OmegaConf.to_container(cfg.hydra.overrides.task, resolve=False))
    parser = OverridesParser.create(config_loader=config_loader)
    parsed = parser.parse_overrides(arguments)
    jobs = [list(job) for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]
    return apply_exclusions(jobs, parsed, OmegaConf.select(cfg, "hydra.sweeper.exclude", default=None))


def _is_sweep(override: str) -> bool:
    """`hetero=a,b` and `glob(...)`, `range(...)` sweep; `model.controls=[a,b]` does not."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        return OverridesParser.create().parse_override(override).is_sweep_override()
    except Exception:
        return "," in override.split("=", 1)[-1] and "[" not in override


def task_config(cfg: DictConfig) -> DictConfig:
    """The job's config without the `hydra` node, which cannot be resolved outside a job."""
    task = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    with open_dict(task):
        task.pop("hydra", None)
    return task


def job_key(spec: Any, fingerprint: str) -> str:
    """Identity of a job's results: the resolved spec (minus tracking/force/cache) and the data."""
    tree = dataclasses.asdict(spec) if dataclasses.is_dataclass(spec) else dict(spec)  # as OmegaConf would give it, 100× sooner
    tree = {k: v for k, v in tree.items() if k not in _KEY_EXCLUDED}
    if tree.get("multiverse") == dataclasses.asdict(MultiverseSpec()):  # outside a multiverse: the keys runs had before it existed
        tree.pop("multiverse")
    tree["data"] = {k: v for k, v in tree.get("data", {}).items() if k not in _KEY_EXCLUDED_DATA}
    tree.get("mediator", {}).get("bootstrap", {}).pop("share_with", None)  # which draws it shares, not what it finds
    text = json.dumps({"spec": tree, "data": fingerprint}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def treatment_of(spec: Any) -> str:
    return spec.model.treatment


def estimated_cost(spec: Any) -> float:
    """A job's cost relative to one regression, to dispatch the longest first: its models,
    the group model and permutation draws of a split, the bootstrap draws of a mediation."""
    from eqexp.models import plans

    if spec.analysis != "regression":
        return 0.2
    cost = float(len(plans(spec)))
    groups = len(spec.hetero.groups)
    if groups:
        cost += 1 + groups * (groups - 1) / 2 * spec.hetero.permutation.draws / 400
    if spec.mediator.variable:
        cost += spec.mediator.bootstrap.draws / 300
    return cost


def share_key(spec: Any, fingerprint: str) -> tuple[str, int]:
    """Which jobs share work, and how wide a job's models are: jobs with the same prepared panel
    and fixed effects share estimation samples; the widest goes first, so that the moments a
    multiverse's draws keep cover the narrower models after it."""
    from eqexp.models import plans
    from eqexp.panel import preparation_key

    if spec.analysis != "regression":
        return f"{spec.analysis}-{id(spec)}", 0
    return f"{preparation_key(spec, fingerprint)}:{'+'.join(spec.model.fixed_effects)}", max(len(p.regressors) for p in plans(spec))


def bootstrap_share_key(spec: Any, fingerprint: str) -> str | None:
    """Mediation jobs whose bootstraps resample the same firms the same way (the same prepared
    panel, model and draws; the job checks the rows): one bootstrap's moments serve them all."""
    from eqexp.panel import preparation_key

    med = spec.mediator
    if spec.analysis != "regression" or not med.variable:
        return None
    model = spec.model
    parts = [preparation_key(spec, fingerprint), model.outcome, model.treatment, model.square or med.square, list(model.controls),
             list(model.fixed_effects), spec.data.id, med.bootstrap.draws, med.bootstrap.seed]
    return BOOTSTRAP_CHAIN + json.dumps(parts, default=str)
