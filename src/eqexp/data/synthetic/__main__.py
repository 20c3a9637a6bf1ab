"""Write the raw sources of a synthetic world to a folder, e.g. as a template for your own files:

    python -m eqexp.data.synthetic outputs/raw_small --n-firms 4000 --n-obs 24000 --format csv
    python -m eqexp.data.synthetic outputs/licensed --layout licensed   # per-year GB18030 CSV and .dta, data.yaml
"""

from __future__ import annotations

import argparse

from eqexp.data.sources import describe
from eqexp.data.synthetic.licensed import write_licensed
from eqexp.data.synthetic.sources import generate_sources
from eqexp.data.synthetic.world import WorldParams, generate_world


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m eqexp.data.synthetic", description=__doc__.splitlines()[0])
    parser.add_argument("directory")
    parser.add_argument("--n-firms", type=int, default=4000)
    parser.add_argument("--n-obs", type=int, default=24000)
    parser.add_argument("--seed", type=int, default=WorldParams.seed)
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet", help="files of the one-file layout")
    parser.add_argument("--layout", choices=("files", "licensed"), default="files",
                        help="files: one file per source; licensed: as the licensed data arrive, with the data config")
    args = parser.parse_args(argv)
    world = generate_world(WorldParams(n_firms=args.n_firms, n_obs=args.n_obs, seed=args.seed))
    raw = generate_sources(world)
    rows = ", ".join(f"{k} {v:,} rows" for k, v in describe(raw).items())
    if args.layout == "licensed":
        config = write_licensed(raw, args.directory)
        print(f"[eqexp] raw sources written to {args.directory} in the licensed layout: {rows}; its data config: {config}")
        return
    out = raw.write(args.directory, args.format)
    print(f"[eqexp] raw sources written to {out}: {rows}")


if __name__ == "__main__":
    main()
