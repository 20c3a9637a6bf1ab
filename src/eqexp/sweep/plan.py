"""Planning a sweep: the jobs' labels and identity (`job_key`), each job composed and validated
once, its estimated cost and the chains of jobs that share work; all of it one value, `Plan`,
which the launcher and its workers receive as arguments."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from eqexp.spec import MultiverseSpec, Spec

# The prefix of the share keys of mediation jobs on one bootstrap (`bootstrap_share_key`): a chain kept whole.
BOOTSTRAP_CHAIN = "bootstrap:"
# Keys that never change a job's results: left out of its identity (`job_key`).
_KEY_EXCLUDED = ("tracking", "force", "outputs")  # where results go is not what they are
_KEY_EXCLUDED_DATA = ("cache_dir",)


@dataclass
class PlannedJob:
    """One job as the parent planned it: its composed config and validated spec travel with it."""

    num: int
    overrides: list[str]
    label: str
    config: DictConfig | None = None
    spec: Spec | None = None
    reason: str = ""  # why its spec is invalid (the job will fail with it)
    cost: float = 0.0  # relative to one regression: the longest run first
    share: tuple[str, int] | None = None  # (what it shares with its chain, its models' width)


@dataclass
class Plan:
    jobs: list[PlannedJob] = field(default_factory=list)

    def chains(self, n_workers: int) -> list[list[PlannedJob]]:
        """The jobs as chains that one worker runs in a row, the costliest chain first: jobs that
        share work (`share`), widest model first, at most 1/(2·workers) of the jobs long so that
        the workers still share the sweep evenly; a bootstrap's chain (`BOOTSTRAP_CHAIN`) whole."""
        groups: dict[str, list[PlannedJob]] = {}
        for job in sorted(self.jobs, key=lambda j: -(j.share or ("", 0))[1]):
            groups.setdefault(job.share[0] if job.share else f"job-{job.num}", []).append(job)
        longest = max(1, -(-len(self.jobs) // (2 * max(n_workers, 1))))
        split = [g[i : i + step] for key, g in groups.items()
                 for step in [len(g) if key.startswith(BOOTSTRAP_CHAIN) else longest] for i in range(0, len(g), step)]
        return sorted(split, key=lambda chain: -sum(j.cost for j in chain))


def job_labels(job_overrides: list[list[str]]) -> list[str]:
    """Name each job after the overrides that vary across the sweep (`hetero=region`)."""
    key = lambda override: override.split("=", 1)[0].lstrip("+~")  # noqa: E731
    values: dict[str, set[str]] = {}
    for o in (o for overrides in job_overrides for o in overrides):
        values.setdefault(key(o), set()).add(o)
    varying = {k for k, v in values.items() if len(v) > 1 or any(sum(key(o) == k for o in ov) != 1 for ov in job_overrides)}
    return [",".join(o for o in overrides if key(o) in varying) or ",".join(overrides) or "default"
            for overrides in job_overrides]


def is_sweep(override: str) -> bool:
    """`hetero=a,b` and `glob(...)`, `range(...)` sweep; `model.controls=[a,b]` does not."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_override(override).is_sweep_override()  # Hydra has parsed it already


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


def estimated_cost(spec: Spec) -> float:
    """A job's cost relative to one regression: its models, a split's group model and permutation draws, a mediation's bootstrap."""
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


def share_key(spec: Spec, fingerprint: str) -> tuple[str, int]:
    """Which jobs share estimation samples (the same prepared panel and fixed effects), and how wide
    a job's models are (the widest first: the moments its draws keep cover the narrower ones)."""
    from eqexp.models import plans
    from eqexp.panel import preparation_key

    if spec.analysis != "regression":
        return f"{spec.analysis}-{id(spec)}", 0
    return f"{preparation_key(spec, fingerprint)}:{'+'.join(spec.model.fixed_effects)}", max(len(p.regressors) for p in plans(spec))


def bootstrap_share_key(spec: Spec, fingerprint: str) -> str | None:
    """Mediation jobs whose bootstraps resample the same firms the same way (the same prepared
    panel, model and draws; the job checks the rows): one bootstrap's moments serve them all."""
    from eqexp.panel import preparation_key

    med, model = spec.mediator, spec.model
    if spec.analysis != "regression" or not med.variable:
        return None
    parts = [preparation_key(spec, fingerprint), model.outcome, model.treatment, model.square or med.square, list(model.controls),
             list(model.fixed_effects), spec.data.id, med.bootstrap.draws, med.bootstrap.seed]
    return BOOTSTRAP_CHAIN + json.dumps(parts, default=str)


def compose_job(loader: Any, cfg: DictConfig, overrides: list[str]) -> tuple[DictConfig, Spec | None, str]:
    """One job's composed config and its validated spec, or why the spec is invalid (a config
    that cannot be composed at all, such as a misspelt group, raises)."""
    from eqexp.spec import load_spec

    job_cfg = loader.load_sweep_config(cfg, list(overrides))
    try:
        return job_cfg, load_spec(job_cfg), ""
    except Exception as err:  # recorded: the job itself will fail with the same message
        return job_cfg, None, f"{type(err).__name__}: {err}"


def share_bootstraps(jobs: list[PlannedJob], fingerprints: dict[int, str]) -> None:
    """Mediation jobs that resample the same firms the same way (other channels of one model):
    each one's bootstrap also sums the others' mediators, and they form one chain, so that the
    first draws and the others solve from its moments."""
    from eqexp.spec import with_bootstrap_shared

    groups: dict[str, list[PlannedJob]] = {}
    for job in jobs:
        key = bootstrap_share_key(job.spec, fingerprints[job.num]) if job.spec is not None and not job.reason else None
        if key is not None:
            groups.setdefault(key, []).append(job)
    for key, group in groups.items():
        mediators = list(dict.fromkeys(j.spec.mediator.variable for j in group))
        if len(mediators) > 1:
            for job in group:
                job.spec = with_bootstrap_shared(job.spec, [m for m in mediators if m != job.spec.mediator.variable])
                job.share = job.share or (key, 0)
