"""The sweep's config sources that parse each YAML file once (eqexp.sweep.parsed_once): the
same configs as Hydra's own sources, and a file edited between two compositions is read again."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.file_config_source import FileConfigSource
from hydra._internal.core_plugins.importlib_resources_config_source import ImportlibResourcesConfigSource
from hydra._internal.sources_registry import SourcesRegistry
from hydra.core.global_hydra import GlobalHydra
from hydra.core.plugins import Plugins
from omegaconf import OmegaConf

from eqexp.sweep import parsed_once

CONF = Path(__file__).resolve().parents[1] / "conf"
JOBS = [["experiment=table11_region"], ["experiment=table6_mediation_humancapital", "trim=p5"],
        ["+multiverse=reference", "lags=l2", "controls=full", "vcov=province"], ["data=spill", "experiment=spill3_city"]]


@pytest.fixture
def hydra_sources():
    """Hydra's own sources registered, whatever an earlier sweep in this process installed; restored after."""
    Plugins.instance()  # Hydra's plugin scan fills the registry
    types = SourcesRegistry.instance().types
    saved = dict(types)
    types.update(file=FileConfigSource, pkg=ImportlibResourcesConfigSource)
    yield
    types.clear()
    types.update(saved)


def composed(conf: Path, overrides: list[str], once: bool) -> str:
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        if once:
            parsed_once.parse_once(GlobalHydra.instance().config_loader())
        return OmegaConf.to_yaml(compose(config_name="config", overrides=overrides, return_hydra_config=True))


@pytest.mark.parametrize("overrides", JOBS, ids=lambda o: o[0])
def test_the_same_configs_as_hydras_own_sources(hydra_sources, overrides):
    own = composed(CONF, overrides, once=False)
    assert composed(CONF, overrides, once=True) == own
    assert composed(CONF, overrides, once=True) == own  # from the parsed files this time
    assert any(key[0] == "pkg" for key in parsed_once._PARSED)  # Hydra's own configs went through it too


def test_a_file_edited_between_compositions_is_read_again(hydra_sources, tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    before = OmegaConf.create(composed(conf, ["trim=p5"], once=True))
    path = conf / "trim" / "p5.yaml"
    time.sleep(0.01)  # a new modification time even on coarse clocks, and a new size
    path.write_text(path.read_text() + "\n# edited\nlabel_note: edited\n")
    after = OmegaConf.create(composed(conf, ["trim=p5"], once=True))
    assert "label_note" not in before.trim and after.trim.label_note == "edited"
