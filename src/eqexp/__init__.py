"""eqexp: export-quality econometrics as YAML. From Python: `eqexp.run`, `eqexp.sweep` and
`eqexp.load` (`eqexp.api`, `eqexp.results`), loaded when first used, so that importing one
module of eqexp stays light (run.py imports `eqexp.runtime_env` before it restarts)."""

import sys
import types

__all__ = ["run", "sweep", "load", "Run", "Sweep"]


class _SweepPackage(types.ModuleType):
    """`eqexp.sweep` is both the package of the sweep layer and `eqexp.api.sweep`: the package, called."""

    def __call__(self, *overrides: str, **options):
        from eqexp import api

        return api.sweep(*overrides, **options)


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value) -> None:
        if name == "sweep" and type(value) is types.ModuleType:  # the import system binding the sub-package
            value.__class__ = _SweepPackage
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str):
    if name == "run":
        from eqexp.api import run

        return run
    if name == "sweep":
        import eqexp.sweep

        return eqexp.sweep
    if name in ("load", "Run", "Sweep"):
        from eqexp import results

        return getattr(results, name)
    raise AttributeError(f"module 'eqexp' has no attribute {name!r}")
