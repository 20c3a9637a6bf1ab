"""eqexp entry point: compose the configuration with Hydra and run the job.

    python run.py                                   # the baseline on the synthetic world
    python run.py -m hetero=ownership,region,period # a sweep, in parallel, with its summary

The exit code is non-zero when a job (of a sweep) failed or never finished.
"""

import os
import sys

if "PYTHONHASHSEED" not in os.environ:
    # pyfixest 0.60's estimates depend on Python's string-hash seed in the last digits
    # (~1e-13 relative): pin it, so the same config on the same data gives the same numbers
    # in every run, every sweep worker and on every launcher (they inherit the environment).
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, sys.orig_argv)

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from eqexp.cli import run_from_hydra
from eqexp.sweep import main_with_summary

ROOT = Path.cwd()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    run_from_hydra(cfg, HydraConfig.get(), ROOT)


if __name__ == "__main__":
    # Hydra exits on the first failed job or when a worker dies, skipping `on_multirun_end`;
    # this wrapper still writes every sweep's summary and returns its exit code.
    sys.exit(main_with_summary(main))
