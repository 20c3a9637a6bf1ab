"""eqexp entry point: compose the configuration with Hydra and run the job.

    python run.py                                   # the baseline on the synthetic world
    python run.py -m hetero=ownership,region,period # a sweep, in parallel
"""

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from eqexp.cli import run_from_hydra

ROOT = Path.cwd()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    run_from_hydra(cfg, HydraConfig.get(), ROOT)


if __name__ == "__main__":
    main()
