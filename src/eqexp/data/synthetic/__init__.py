"""The synthetic world (`world`, from the primitives of `latent`) and the raw files it emits, one module per file.

`generate_world(WorldParams(...))` draws the world with its truth; `generate_sources(world)` turns it
into the files a researcher receives (customs, accounts, price_index, education, industry_rd, sigma,
destinations; layout in `eqexp.data.sources`), from which `eqexp.build` measures the panel.
`python -m eqexp.data.synthetic DIR` writes them to a folder, as a template for your own files.
"""

from eqexp.data.synthetic.evaluate import scores
from eqexp.data.synthetic.params import SourceParams
from eqexp.data.synthetic.sources import generate_sources
from eqexp.data.synthetic.world import World, WorldParams, generate_world

__all__ = ["SourceParams", "World", "WorldParams", "generate_sources", "generate_world", "scores"]
