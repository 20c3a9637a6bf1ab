"""Raw sources: the files and columns eqexp builds a panel from, and the readers of users' files.

A folder holds one file per source, `<name>.parquet`, `.csv` or `.dta`, or a source's files are
listed by globs (`data.files`: per-year customs CSVs, per-year ASIF .dta; read by
`eqexp.data.readers`); the synthetic world writes either layout (`python -m eqexp.data.synthetic
DIR [--layout licensed]`):

=============  ==========================================================================
file           one row per ... (columns)
=============  ==========================================================================
customs        export record: party × HS6 × destination × year (× month) (party_id,
               firm_name, zip, phone, hs6, hs_vintage, destination, year, month, trade_mode,
               unit, quantity, value_usd). party_id is the customs' own 10-digit code, matched
               to the ASIF by name, then zip and telephone; a file already keyed by the ASIF id
               has firm_id instead (no match). Optional: zip, phone (the second match step),
               hs_vintage (else the year's: HS2002 for 2002-06, HS2007 for 2007-11, ...),
               month (monthly records, summed to the year).
accounts       firm-year of the industrial-enterprise database, thousand RMB (firm_id (the
               legal-person code, new after a restructuring), year, firm_name, legal_person,
               zip, phone, province, city, industry, registration_type, founding_year,
               employment, total_assets, current_assets, net_fixed_assets,
               accumulated_depreciation, current_depreciation, liabilities, profit,
               inventory, sales, output). The identifying columns serve the match and the
               firm linking, the accounting ones the ASIF cleaning: each step or rule runs on
               the columns present.
price_index    province × year × retail category, chain index, previous year = 100
               (province, year, category, index)
education      province-year shares of the employed by education level, in percent
               (province, year, and the nine levels of `measures.mediators.EDUCATION_YEARS`)
industry_rd    CIC2 industry × province × year, 10k RMB (industry, province, year,
               rd_expenditure, output)
sigma          Broda–Weinstein-style import elasticities by HS3 code (hs3, sigma); optional
destinations   destination, name, income_group (high / other); optional
hs_concordance HS conversion to the target vintage, e.g. UNSD's tables stacked (from_vintage,
               from_hs6, to_hs6); optional, needed when codes of several vintages are present
rauch          Rauch (1999) classification by HS6 of the target vintage (hs6, con, lib: n
               differentiated, r reference priced, w exchange traded); optional
match          your own customs–ASIF match (party_id, year, firm_id); optional, used instead
               of matching by name and telephone
province_vars  province × year × your own variables, e.g. an instrument for market integration
               (province, year, any numeric columns); optional, each merged into the panel
               by the firm's province and year
=============  ==========================================================================

Columns are checked (names, types, keys, impossible values) by `eqexp.data.validate`'s
schemas when the panel is built.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from eqexp.data import readers
from eqexp.data.validate import DataValidationError
from eqexp.steps import StepLog

FILES = ("customs", "accounts", "price_index", "education", "industry_rd", "sigma", "destinations", "hs_concordance",
         "rauch", "match", "province_vars")
OPTIONAL_FILES = ("sigma", "destinations", "hs_concordance", "rauch", "match", "province_vars")
READ_SUFFIXES = (".parquet", ".csv", ".dta")


@dataclass(frozen=True, eq=False)
class Sources:
    """The raw files of one world (or of a user's folder); see the module docstring."""

    customs: pd.DataFrame
    accounts: pd.DataFrame
    price_index: pd.DataFrame
    education: pd.DataFrame
    industry_rd: pd.DataFrame
    sigma: pd.DataFrame | None = None
    destinations: pd.DataFrame | None = None
    hs_concordance: pd.DataFrame | None = None
    rauch: pd.DataFrame | None = None
    match: pd.DataFrame | None = None
    province_vars: pd.DataFrame | None = None
    info: dict = field(default_factory=dict)  # how the synthetic sources were made (checks, counts)
    truth: dict = field(default_factory=dict)  # the synthetic world's true keys (never written): see eqexp.data.synthetic

    def tables(self) -> dict[str, pd.DataFrame]:
        return {name: getattr(self, name) for name in FILES if getattr(self, name) is not None}

    def write(self, directory: str | Path, format: str = "parquet") -> Path:
        """Write each table as `<name>.parquet` (or `.csv`) into `directory`: the layout `read_sources` reads."""
        if format not in ("parquet", "csv"):
            raise ValueError(f"format {format!r}: use parquet or csv")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name, df in self.tables().items():
            if format == "csv":
                df.to_csv(directory / f"{name}.csv", index=False)
            else:
                df.to_parquet(directory / f"{name}.parquet", index=False)
        return directory


# --------------------------------------------------------------------------- reading users' files


def source_files(directory: str | Path, files: Mapping[str, str | Sequence[str]] | None = None) -> dict[str, list[Path]]:
    """The files of each source in `directory`, in a stable (sorted) order: the globs of `files` (relative to
    `directory`, e.g. {"customs": "customs/*.csv"}), else `<name>.parquet`, `.csv` or `.dta` (first found)."""
    directory = Path(directory)
    files = dict(files or {})
    if not directory.is_dir():
        raise DataValidationError(
            f"data.path '{directory}' is not a folder. For source: raw, point data.path at a folder holding "
            f"{', '.join(f'{n}.parquet|csv|dta' for n in FILES[:5])} (and optionally {', '.join(OPTIONAL_FILES)}).")
    unknown = set(files) - set(FILES)
    if unknown:
        raise DataValidationError(f"data.files names unknown source(s) {sorted(unknown)}; the sources are {', '.join(FILES)}.")
    found = {name: _globbed(directory, name, patterns) for name, patterns in files.items()}
    for name in (n for n in FILES if n not in found):
        path = next((directory / f"{name}{suffix}" for suffix in READ_SUFFIXES if (directory / f"{name}{suffix}").is_file()), None)
        if path is not None:
            found[name] = [path]
    missing = [n for n in FILES if n not in found and n not in OPTIONAL_FILES]
    if missing:
        present = sorted(p.name for p in directory.iterdir() if p.is_file())
        raise DataValidationError(
            f"{directory}: missing raw source file(s) {', '.join(missing)} (as .parquet, .csv or .dta). "
            f"Files found: {', '.join(present) or 'none'}. Name each file after its source, e.g. customs.csv, or list "
            "a source's files with data.files, e.g. {customs: 'customs/*.csv'}.")
    return {name: found[name] for name in FILES if name in found}


def _globbed(directory: Path, name: str, patterns: str | Sequence[str]) -> list[Path]:
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    paths = sorted({p for pattern in patterns for p in directory.glob(pattern) if p.is_file()})
    if not paths:
        raise DataValidationError(
            f"data.files.{name} = {patterns!r} matches no file under {directory}. The globs are relative to data.path, "
            "e.g. customs/*.csv or asif/asif_20??.dta.")
    return paths


def read_sources(directory: str | Path, columns: Mapping[str, Mapping[str, str]] | None = None,
                 files: Mapping[str, str | Sequence[str]] | None = None,
                 encoding: str | Mapping[str, str] | None = None, progress: bool = False) -> Sources:
    """Read a folder of raw files laid out as the module docstring describes, or as `files` lists them.

    Each source is `<name>.parquet`, `<name>.csv` or `<name>.dta` in `directory`, or the files
    its globs in `files` match (read in sorted order and stacked): customs, accounts,
    price_index, education and industry_rd are required; the others optional. `columns` maps,
    per source, the files' column names to eqexp's, several of theirs to one of ours where the
    name changed over the years, e.g. ``{"customs": {"企业编码": "party_id", "商品编码": "hs8"},
    "accounts": {"法人代码": "firm_id", "组织机构代码": "firm_id"}}``. CSV encodings are detected
    (`encoding` overrides, for every file or per source). Codes are text (`readers.TEXT_CODES`);
    hs8 (or hs10) becomes hs6 and year_month (YYYYMM) year and month (`readers.derive_codes`).
    `Sources.info["read"]` holds the steps for the build log: every file with its rows and
    encoding, and the columns some files lack (missing there, never filled).
    """
    columns = dict(columns or {})
    unknown = set(columns) - set(FILES)
    if unknown:
        raise DataValidationError(f"data.columns names unknown source(s) {sorted(unknown)}; the sources are {', '.join(FILES)}.")
    for name, mapping in columns.items():
        if not isinstance(mapping, Mapping):
            raise DataValidationError(
                f"data.columns.{name} must map the file's column names to eqexp's, e.g. {{party_id: firm_id}}; got {mapping!r}.")
    paths = source_files(directory, files)
    tables: dict[str, pd.DataFrame] = {}
    steps: StepLog = []
    for name, group in paths.items():
        wanted = encoding.get(name) if isinstance(encoding, Mapping) else encoding
        tables[name], read = readers.read_source(name, group, dict(columns.get(name, {})), wanted, Path(directory),
                                                 progress)
        steps += read
    info = {"files": {k: [str(p) for p in v] for k, v in paths.items()}, "read": steps}
    return Sources(**tables, info=info)


READERS = {".parquet": pd.read_parquet, ".csv": pd.read_csv, ".dta": pd.read_stata}


def read_file(path: Path, columns: dict[str, str]) -> pd.DataFrame:
    """Read one file and rename `columns` (their name -> ours); unknown extensions are an error."""
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise DataValidationError(f"{path}: unsupported file type '{path.suffix}'. Use one of {', '.join(READERS)}.")
    df = reader(path)
    absent = [theirs for theirs in columns if theirs not in df.columns]
    if absent:
        raise DataValidationError(
            f"{path}: data.columns maps {', '.join(map(repr, absent))}, which the file does not have. "
            f"Its columns are: {', '.join(map(str, df.columns))}."
        )
    return df.rename(columns=columns)


def describe(sources: Sources) -> dict[str, Any]:
    """Row counts of each table (for logs and benchmarks)."""
    return {name: int(len(df)) for name, df in sources.tables().items()}
