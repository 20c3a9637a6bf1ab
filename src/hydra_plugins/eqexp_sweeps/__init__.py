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

_INSTALL = {"hydra_ray_launcher": 'pip install -e ".[ray]" && pip install --no-deps hydra-ray-launcher==1.2.2 (docs/sweeps.md: "Ray")',
            "hydra_submitit_launcher": 'pip install -e ".[slurm]"'}


def _check_launcher(config: Any) -> None:
    """Stop before any work when the chosen launcher's plugin is not installed, saying how to install it."""
    import importlib.util

    module = str(config.hydra.launcher.get("_target_", "")).rpartition(".")[0]
    try:
        found = not module or importlib.util.find_spec(module) is not None
    except ImportError:  # its package is missing
        found = False
    if not found:
        hint = next((h for name, h in _INSTALL.items() if name in module), "install the launcher's Hydra plugin")
        print(f"[eqexp] The launcher hydra/launcher={config.hydra.runtime.choices.get('hydra/launcher', '?')} needs the module {module}, "
              f"which is not installed: {hint}.", file=sys.stderr, flush=True)
        raise SystemExit(2)


def planned_jobs(arguments: List[str], loader: Any, params: Optional[Dict[str, str]] = None, exclude: Optional[List[Any]] = None) -> List[List[str]]:
    """Hydra's job list for these task overrides and sweeper `params` (as its basic sweeper builds
    it), minus the combinations `exclude` names (`eqexp.multiverse.axes`)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from eqexp.multiverse.axes import apply_exclusions

    parsed = OverridesParser.create(config_loader=loader).parse_overrides([*(f"{k}={v}" for k, v in (params or {}).items()), *arguments])
    return [list(job) for job in apply_exclusions([job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch], parsed, exclude)]


class PlannedBasicSweeper(BasicSweeper):
    """Hydra's basic sweeper that plans the sweep, launches the plan and summarises the sweep."""

    def __init__(self, max_batch_size: Optional[int], params: Optional[Dict[str, str]] = None,
                 exclude: Optional[List[Any]] = None) -> None:
        super().__init__(max_batch_size, params)
        self.exclude = exclude

    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        _check_launcher(config)
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> Any:
        """Plan (a mistake in the sweep's YAML stops it here, said once), launch, summarise."""
        from hydra.errors import ConfigCompositionException
        from omegaconf import OmegaConf

        from eqexp.multiverse.axes import MultiverseError
        from eqexp.sweep import finish, runs, start, stop

        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        stop.stop_on_sigterm()
        loader = self.hydra_context.config_loader
        try:
            jobs = planned_jobs(arguments, loader, self.params, self.exclude)
            sweep = start.start_sweep(self.config, loader, jobs, local=isinstance(self.launcher, PlannedJoblibLauncher))
        except (runs.SweepError, MultiverseError, ConfigCompositionException) as err:  # Hydra would print a traceback
            print(f"[eqexp] {'' if isinstance(err, runs.SweepError) else type(err).__name__ + ': '}{err}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        OmegaConf.save(self.config, f"{sweep.ctx.sweep_dir}/multirun.yaml")
        if isinstance(self.launcher, PlannedJoblibLauncher):
            returns = [self.launcher.launch_plan(sweep)]
        else:  # Hydra's joblib, Ray, SLURM: the jobs' overrides, in batches of `max_batch_size`
            size = self.max_batch_size or len(jobs) or 1
            returns = [self.launcher.launch(jobs[i : i + size], initial_job_idx=i) for i in range(0, len(jobs), size)]
        stop.recording()
        finish.finish_sweep(sweep.ctx.sweep_dir)
        return returns


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
            future = pool.submit(run_chain, chain, sweep.ctx, self.hydra_context, state)
            futures |= {job.num: (future, place) for place, job in enumerate(chain)}
        try:
            return [futures[n][0].result(timeout=self.joblib.get("timeout"))[place] for n, (_, place) in sorted(futures.items())]
        except BaseException:  # a worker died, the timeout, a stop: no job of this sweep may run on
            pool.kill()
            raise


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
