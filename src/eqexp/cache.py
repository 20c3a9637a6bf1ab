"""What one process keeps between the jobs it runs (a sweep worker runs many): the panel it
loaded last, the panel it prepared last, the absorbed columns and the resampling moments of
the samples it estimated on. One object, `ProcessCache`; a job receives it as an argument
(`runner.run_job(cache=...)`) and hands it to its workspace. The process's one instance,
`PROCESS`, is used only by a sweep's jobs and its parent (which reads the first job's panel
into it before forking the workers, then resets it): jobs on the same data and preparation,
one after another on a worker, then skip that work. Nothing downstream modifies a panel in place.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

from eqexp.estimate import BlockCache

_KEPT = {"drawn": 2, "moments": 4}  # a mediation's drawn moments 4 MB, a multiverse sample's 1.2 MB


class ProcessCache:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget everything, and give the panels' memory back to the system."""
        had_panels = bool(getattr(self, "panels", None))
        self.panels: dict[Path, Any] = {}  # data directory -> its Loaded panel (the last one)
        self.prepared: dict[str, tuple[Any, list]] = {}  # preparation key -> (prepared panel, steps) (the last one)
        self.blocks = BlockCache(max_bytes=128 * 2**20)  # absorbed columns; a full-size column is 4.7 MB
        self.drawn: OrderedDict[tuple, Any] = OrderedDict()  # mediation bootstraps' moments, by sample, draws and seed
        self.moments: OrderedDict[tuple, Any] = OrderedDict()  # a multiverse's per-sample moments over its draws
        self.weights: dict[tuple[int, int], Any] = {}  # (seed, draws) -> the firm weights computed so far
        if had_panels:
            import pyarrow as pa

            pa.default_memory_pool().release_unused()  # the columns live there: the loader converts zero-copy

    def load(self, spec: Any) -> Any:
        """The panel of a DataSpec (`eqexp.data.load.load`), read once while it is the last one."""
        from eqexp.data import load as data_load

        directory = Path(spec.cache_dir).resolve() / data_load.fingerprint(spec)
        if directory not in self.panels or not (directory / "panel.parquet").exists():
            self.panels = {directory: data_load.load(spec)}
        return self.panels[directory]

    def prepare(self, key: str, prepare: Callable[[], tuple[Any, list]]) -> tuple[Any, list]:
        """`prepare()` for a preparation `key`, or its result kept from the previous job; moving
        on to another key drops the previous one's absorbed columns, which no later job of a
        chain can use."""
        if key not in self.prepared:
            self.prepared.clear()
            self.blocks.keep_only(key)
            self.prepared[key] = prepare()
        return self.prepared[key]

    def kept(self, kind: str, key: tuple) -> Any:
        """The `kind` ("drawn", "moments") kept for `key`, or None."""
        found: OrderedDict = getattr(self, kind)
        if key in found:
            found.move_to_end(key)
        return found.get(key)

    def keep(self, kind: str, key: tuple, value: Any) -> None:
        found: OrderedDict = getattr(self, kind)
        found[key] = value
        while len(found) > _KEPT[kind]:
            found.popitem(last=False)


PROCESS = ProcessCache()  # this process's: a sweep's jobs share it
