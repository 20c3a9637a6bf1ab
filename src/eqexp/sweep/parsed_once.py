"""Hydra's `file://` and `pkg://` config sources, each YAML file parsed once per process.

Hydra parses every YAML file of the defaults tree again for each config it composes, once
per job of a sweep: a multiverse composes over a hundred jobs from the same few dozen files.
These sources keep each file's parsed content, keyed by its path and modification time (an
edited file is read again), and give every load a new config built from a copy of it: what
Hydra receives is what its own sources would have returned. `parse_once()` puts them in
Hydra's registry of sources, which every composition reads when it sets up its search path.
They bear the names of Hydra's classes: the registry keeps a source whose class name equals
the one registered again by a later plugin scan (a Ray or SLURM worker rescans when it
restores Hydra's state), and refuses any other; not a Hydra plugin for the same reason.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import yaml
from hydra._internal.core_plugins import file_config_source, importlib_resources_config_source
from hydra._internal.sources_registry import SourcesRegistry
from hydra.plugins import config_source
from omegaconf import OmegaConf
from omegaconf._utils import get_yaml_loader  # the loader OmegaConf.load uses

_PARSED: dict[tuple, tuple[dict, Any]] = {}  # (path, mtime, size) -> (header, parsed YAML)


def _parsed(key: tuple, read: Any) -> tuple[dict, Any]:
    if key not in _PARSED:
        text = read()
        text = text.decode("utf-8") if isinstance(text, bytes) else text
        obj = yaml.load(text, Loader=get_yaml_loader())
        if obj is not None and not isinstance(obj, (list, dict, str)):
            raise OSError(f"Invalid loaded object type: {type(obj).__name__}")
        _PARSED[key] = (config_source.ConfigSource._get_header_dict(text[:512]), obj)
    return _PARSED[key]


def _result(source: config_source.ConfigSource, header: dict, obj: Any) -> config_source.ConfigResult:
    config = OmegaConf.create() if obj is None else OmegaConf.create(copy.deepcopy(obj))
    return config_source.ConfigResult(config=config, path=f"{source.scheme()}://{source.path}", provider=source.provider,
                                      header=dict(header))


class FileConfigSource(file_config_source.FileConfigSource):
    """`file://` (a config directory: conf/, --config-dir)."""

    def load_config(self, config_path: str) -> config_source.ConfigResult:
        full_path = os.path.realpath(os.path.join(self.path, self._normalize_file_name(config_path)))
        try:
            stat = os.stat(full_path)
        except OSError:
            raise config_source.ConfigLoadError(f"Config not found : {full_path}") from None

        def read() -> str:
            with open(full_path, encoding="utf-8") as f:
                return f.read()

        return _result(self, *_parsed((full_path, stat.st_mtime_ns, stat.st_size), read))


class ImportlibResourcesConfigSource(importlib_resources_config_source.ImportlibResourcesConfigSource):
    """`pkg://` (configs shipped in packages: Hydra's own, its plugins')."""

    def load_config(self, config_path: str) -> config_source.ConfigResult:
        name = self._normalize_file_name(config_path)

        def read() -> bytes:  # installed packages do not change while a process runs: no mtime in the key
            resource = importlib_resources_config_source.resources.files(self.path).joinpath(name)
            if not resource.exists():
                raise config_source.ConfigLoadError(f"Config not found : {name}")
            return resource.read_bytes()

        return _result(self, *_parsed(("pkg", self.path, name), read))


def parse_once(loader: Any = None) -> None:
    """From now on, this process's compositions (and its forked workers') use these sources,
    also those of Hydra's config `loader`, whose sources exist already."""
    from hydra.core.plugins import Plugins

    Plugins.instance()  # its scan registers Hydra's sources first, and would refuse these after them
    types = SourcesRegistry.instance().types
    types[FileConfigSource.scheme()] = FileConfigSource
    types[ImportlibResourcesConfigSource.scheme()] = ImportlibResourcesConfigSource
    if loader is not None:
        loader.repository.initialize_sources(loader.get_search_path())
