"""eqexp's sweeper and launcher for Hydra.

- `hydra/sweeper=eqexp_basic`: Hydra's `BasicSweeper` (same grammar, same job list, same order),
  minus the combinations `hydra.sweeper.exclude` lists (`eqexp.multiverse.axes`). It plans the
  sweep (`eqexp.sweep.start`), hands the plan to eqexp's launcher, or the jobs' overrides to any
  other (Hydra's joblib, Ray, SLURM), and ends the sweep with its summary (`eqexp.sweep.finish`).
- `hydra/launcher=eqexp_joblib`: local worker processes, with the joblib launcher's `n_jobs` and
  `timeout`, that receive the plan's jobs as arguments, in chains, the costliest first. A worker
  that dies stops the sweep as joblib does; the summary then names the jobs that never finished.
"""

import logging
import sys
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper, BasicSweeperConf
from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn
from hydra_plugins.hydra_joblib_launcher.config import JobLibLauncherConf
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher

log = logging.getLogger(__name__)

# conf/hydra/launcher/{ray,submitit_slurm}.yaml carry the plugins' own names, so Hydra validates
# them against the plugins' schemas (a misspelt key fails) and warns each time that this
# "automatic schema matching" is deprecated. The files are complete without the schemas.
warnings.filterwarnings("ignore", message=r"(?s).*is validated against ConfigStore schema with the same name")

_LAUNCHER_HINTS = {
    "hydra_ray_launcher": 'pip install -e ".[ray]" && pip install --no-deps hydra-ray-launcher==1.2.2 '
    "(its cloudpickle<3 pin conflicts with joblib 1.6's cloudpickle>=3; it works with cloudpickle 3; see docs/sweeps.md)",
    "hydra_submitit_launcher": 'pip install -e ".[slurm]"',
}


def _check_launcher(config: Any) -> None:
    """Stop before any work when the chosen launcher's plugin is not installed."""
    import importlib.util

    from omegaconf import OmegaConf

    module = str(OmegaConf.select(config, "hydra.launcher._target_", default="") or "").rpartition(".")[0]
    try:
        found = not module or importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        hint = next((h for name, h in _LAUNCHER_HINTS.items() if name in module), "install the launcher's Hydra plugin")
        choice = OmegaConf.select(config, "hydra.runtime.choices", default={}) or {}
        print(f"[eqexp] The launcher hydra/launcher={choice.get('hydra/launcher', '?')} needs the module {module}, "
              f"which is not installed: {hint}.", file=sys.stderr, flush=True)
        raise SystemExit(2)


class PlannedBasicSweeper(BasicSweeper):
    """Hydra's basic sweeper that plans the sweep, launches the plan and summarises the sweep."""

    def __init__(self, max_batch_size: Optional[int], params: Optional[Dict[str, str]] = None,
                 exclude: Optional[List[Any]] = None) -> None:
        super().__init__(max_batch_size, params)
        self.exclude = exclude

    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        _check_launcher(config)
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def split_arguments(self, overrides: List[Any], max_batch_size: Optional[int]) -> List[List[List[str]]]:  # type: ignore[override]
        from eqexp.multiverse.axes import apply_exclusions

        jobs = [job for batch in BasicSweeper.split_arguments(overrides, None) for job in batch]
        kept = apply_exclusions(jobs, overrides, self.exclude)
        return list(BasicSweeper.split_overrides_to_chunks(kept, max_batch_size))

    def jobs(self, arguments: List[str], loader: Any) -> List[List[str]]:
        """Hydra's job list for these task overrides and the sweeper's `params`, exclusions left out."""
        from hydra.core.override_parser.overrides_parser import OverridesParser

        parsed = OverridesParser.create(config_loader=loader).parse_overrides([*(f"{k}={v}" for k, v in (self.params or {}).items()), *arguments])
        return [list(job) for batch in self.split_arguments(parsed, None) for job in batch]

    def sweep(self, arguments: List[str]) -> Any:
        from hydra.errors import ConfigCompositionException
        from omegaconf import OmegaConf

        from eqexp.multiverse.axes import MultiverseError
        from eqexp.sweep import finish, runs, start, stop

        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        stop.stop_on_sigterm()
        loader = self.hydra_context.config_loader
        try:
            jobs = self.jobs(arguments, loader)
            sweep = start.start_sweep(self.config, loader, jobs, local=isinstance(self.launcher, PlannedJoblibLauncher))
        except runs.SweepError as err:  # Hydra would only print a traceback
            print(f"[eqexp] {err}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        except (MultiverseError, ConfigCompositionException) as err:  # a mistake in the sweep's YAML or an axis's
            print(f"[eqexp] {type(err).__name__}: {err}", file=sys.stderr, flush=True)  # option: said once, before anything runs
            raise SystemExit(2) from None
        OmegaConf.save(self.config, f"{sweep.ctx.sweep_dir}/multirun.yaml")
        if isinstance(self.launcher, PlannedJoblibLauncher):
            returns = [self.launcher.launch_plan(sweep)]
        else:
            returns = [self.launcher.launch(batch, initial_job_idx=batch_start)
                       for batch_start, batch in self._batches(jobs)]
        stop.recording()
        finish.finish_sweep(sweep.ctx.sweep_dir)
        return returns

    def _batches(self, jobs: List[List[str]]) -> List[Any]:
        size = self.max_batch_size or len(jobs) or 1
        return [(i, jobs[i : i + size]) for i in range(0, len(jobs), size)]


class PlannedJoblibLauncher(JoblibLauncher):
    """Local workers forked when the sweep starts, fed the plan's chains of jobs as arguments."""

    def launch_plan(self, sweep: Any) -> Sequence[JobReturn]:
        from hydra.core.singleton import Singleton
        from hydra.core.utils import configure_log, filter_overrides, setup_globals

        from eqexp.sweep.job import run_chain

        assert self.config is not None and self.hydra_context is not None and sweep.pool is not None
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        pool, state = sweep.pool, Singleton.get_state()
        log.info(f"Launching {len(sweep.plan.jobs)} jobs on {pool.size} forked workers, the costliest first")
        futures = {}  # job number -> (its chain's future, its place in the chain)
        for chain in sweep.plan.chains(pool.size):
            for job in chain:
                log.info(f"\t#{job.num} : {' '.join(filter_overrides(job.overrides))}")
                if job.config is None:
                    job.config = self.hydra_context.config_loader.load_sweep_config(self.config, job.overrides)
            future = pool.submit(run_chain, chain, sweep.ctx, self.hydra_context, state)
            futures |= {job.num: (future, place) for place, job in enumerate(chain)}
        try:
            return [futures[n][0].result(timeout=self.joblib.get("timeout"))[place] for n, (_, place) in sorted(futures.items())]
        except BaseException:  # a worker died, the timeout, a stop: no job of this sweep may run on
            pool.kill()
            raise


def planned_overrides(config: Any, loader: Any) -> List[List[str]]:
    """The job list eqexp's sweeper builds for a composed primary config."""
    from omegaconf import OmegaConf

    sweeper = OmegaConf.to_container(config.hydra.sweeper, resolve=True)
    arguments = OmegaConf.to_container(config.hydra.overrides.task, resolve=False)
    return PlannedBasicSweeper(None, sweeper.get("params"), sweeper.get("exclude")).jobs(arguments, loader)


@dataclass
class PlannedBasicSweeperConf(BasicSweeperConf):
    _target_: str = "hydra_plugins.eqexp_sweeps.PlannedBasicSweeper"
    # combinations of the axes to leave out: [{axis: option or [options], ...}, ...]
    exclude: List[Any] = field(default_factory=list)


@dataclass
class PlannedJoblibLauncherConf(JobLibLauncherConf):
    _target_: str = "hydra_plugins.eqexp_sweeps.PlannedJoblibLauncher"


ConfigStore.instance().store(group="hydra/sweeper", name="eqexp_basic", node=PlannedBasicSweeperConf, provider="eqexp")
ConfigStore.instance().store(group="hydra/launcher", name="eqexp_joblib", node=PlannedJoblibLauncherConf, provider="eqexp")
