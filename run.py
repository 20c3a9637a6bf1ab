"""eqexp entry point: compose the configuration with Hydra and run the job.

    python run.py                                   # the baseline on the synthetic world
    python run.py -m hetero=ownership,region,period # a sweep, in parallel, with its summary

The exit code is non-zero when a job (of a sweep) failed or never finished.
"""

import gc
import os
import sys

# Settings read once, when a process starts: so this one starts again with them, and every
# sweep worker inherits them. A user's own setting wins.
RUNTIME_ENV = {
    # pyfixest's estimates (its path serves what eqexp's fast path does not) depend on
    # Python's string-hash seed in the last digits (~1e-13): one seed, the same numbers.
    "PYTHONHASHSEED": "0",
    # glibc serves blocks below 1 GiB from its heap and keeps up to 128 MiB of freed heap for
    # reuse, instead of mapping and unmapping them: large temporaries (absorbed columns,
    # bootstrap weights) then cost no page faults each time (a quarter of a sweep's time here).
    "MALLOC_MMAP_THRESHOLD_": str(2**30),
    "MALLOC_TRIM_THRESHOLD_": str(2**27),
}
if any(key not in os.environ for key in RUNTIME_ENV):
    os.environ.update({key: value for key, value in RUNTIME_ENV.items() if key not in os.environ})
    os.execv(sys.executable, sys.orig_argv)

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from eqexp.cli import run_from_hydra
from eqexp.sweep.finish import main_with_summary

ROOT = Path.cwd()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    run_from_hydra(cfg, HydraConfig.get(), ROOT)


if __name__ == "__main__":
    # Hydra exits on the first failed job or when a worker dies, skipping `on_multirun_end`;
    # this wrapper still writes every sweep's summary and returns its exit code.
    code = main_with_summary(main)
    # The interpreter's last collection would walk every object of the command (0.25 s of a
    # single run here); they end with the process anyway.
    gc.freeze()
    sys.exit(code)
