"""Raw sources → measures → the analysis panel, with a log of every row dropped (`pipeline`)."""

from eqexp.build.merge import PANEL_COLUMNS
from eqexp.build.options import BuildOptions
from eqexp.build.pipeline import Built, build, build_panel, log_frame
from eqexp.build.stages import market_panel

__all__ = ["PANEL_COLUMNS", "BuildOptions", "Built", "build", "build_panel", "log_frame", "market_panel"]
