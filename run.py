"""eqexp entry point: compose the configuration with Hydra and run the job.

    python run.py                                   # the baseline on the synthetic world
    python run.py -m hetero=ownership,region,period # a sweep, in parallel, with its summary

The exit code is non-zero when a job (of a sweep) failed or never finished.
"""

import gc
import os
import sys

from eqexp.runtime_env import RUNTIME_ENV  # standard library only: nothing heavy before the restart

if any(key not in os.environ for key in RUNTIME_ENV):
    os.environ.update({key: value for key, value in RUNTIME_ENV.items() if key not in os.environ})
    os.execv(sys.executable, sys.orig_argv)

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from eqexp.cli import command, run_from_hydra

ROOT = Path.cwd()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    run_from_hydra(cfg, HydraConfig.get(), ROOT)


if __name__ == "__main__":
    code = command(main)  # eqexp.run and eqexp.sweep run this same file in-process (eqexp.api)
    # The interpreter's last collection would walk every object of the command (0.25 s of a
    # single run here); they end with the process anyway.
    gc.freeze()
    sys.exit(code)
