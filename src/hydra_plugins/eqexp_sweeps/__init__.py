"""eqexp's sweeper and launcher for Hydra: Hydra's basic sweeper and joblib launcher, minus
the repeated start-up work (see `eqexp.sweep.workers`).

- `hydra/sweeper=eqexp_basic`: Hydra's `BasicSweeper` (same grammar, same job list, same
  order), minus the combinations listed in `hydra.sweeper.exclude` (a multiverse's, see
  `eqexp.multiverse.axes`); a job that eqexp's planning has already composed and validated
  is not composed a second time.
- `hydra/launcher=eqexp_joblib`: local worker processes, as `hydra/launcher=joblib`, with
  its `n_jobs` and `timeout`; the workers are forked when the sweep starts (with the parent's
  imports; they read data while the parent plans), each job runs on the config the parent composed,
  the longest jobs are dispatched first, and jobs on the same prepared panel run in a row
  on one worker. A worker that dies stops the sweep as joblib
  does; eqexp's summary then names the jobs that never finished.
"""


import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper, BasicSweeperConf
from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn
from hydra_plugins.hydra_joblib_launcher.config import JobLibLauncherConf
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher

log = logging.getLogger(__name__)


class PlannedBasicSweeper(BasicSweeper):
    """Hydra's basic sweeper; jobs already composed by eqexp's planning are not composed again,
    and the combinations `exclude` names are left out (`eqexp.multiverse.axes`)."""

    def __init__(self, max_batch_size: Optional[int], params: Optional[Dict[str, str]] = None,
                 exclude: Optional[List[Any]] = None) -> None:
        super().__init__(max_batch_size, params)
        self.exclude = exclude

    def split_arguments(self, overrides: List[Any], max_batch_size: Optional[int]) -> List[List[List[str]]]:  # type: ignore[override]
        from eqexp.multiverse.axes import apply_exclusions

        jobs = [job for batch in BasicSweeper.split_arguments(overrides, None) for job in batch]
        kept = apply_exclusions(jobs, overrides, self.exclude)
        return list(BasicSweeper.split_overrides_to_chunks(kept, max_batch_size))

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        from eqexp.sweep import workers

        unplanned = [overrides for overrides in batch if tuple(overrides) not in workers.COMPOSED]
        if unplanned:
            super().validate_batch_is_legal(unplanned)


class PlannedJoblibLauncher(JoblibLauncher):
    """Local workers as joblib's, forked early, fed longest first with configs composed once, the
    jobs that share a prepared panel in a row on one worker (`eqexp.sweep.workers.chains`)."""

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from hydra.core.utils import configure_log, filter_overrides, setup_globals
        from joblib import effective_n_jobs

        from eqexp.sweep import threads, workers

        assert self.config is not None and self.task_function is not None and self.hydra_context is not None
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        n_workers = min(effective_n_jobs(self.joblib.get("n_jobs", -1)), len(job_overrides))
        executor = workers.pool(n_workers, threads.worker_env(threads.threads_per_worker(n_workers)))
        log.info(f"Launching {len(job_overrides)} jobs on {n_workers} forked workers, longest first")
        futures = {}  # job -> (its chain's future, its place in the chain)
        for chain in workers.chains(job_overrides, n_workers):
            items = []
            for i in chain:
                overrides = list(job_overrides[i])
                log.info(f"\t#{initial_job_idx + i} : {' '.join(filter_overrides(overrides))}")
                config = workers.COMPOSED.pop(tuple(overrides), None)
                if config is None:
                    config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
                items.append((initial_job_idx + i, config, workers.SPECS.pop(tuple(overrides), None)))
            future = workers.submit(executor, workers.run_chain, items, self.hydra_context, self.task_function)
            futures |= {i: (future, place) for place, i in enumerate(chain)}
        try:
            return [futures[i][0].result(timeout=self.joblib.get("timeout"))[futures[i][1]] for i in range(len(job_overrides))]
        except BaseException:  # a worker died, the timeout, a stop: no job of this sweep may run on
            workers.kill()
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
