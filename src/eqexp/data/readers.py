"""One raw file as the licensed data deliver it, read into eqexp's columns.

- Encodings are found, not guessed: a UTF-8 BOM, else the first MiB decodes as UTF-8, else as
  GB18030 (a superset of GBK and GB2312); `data.encoding` overrides. GB18030 is decoded as it is
  read (a text stream), never whole. Bytes the encoding cannot decode are a named error with
  the file and the line.
- Column maps may be many-to-one (法人代码 and 组织机构代码 both to firm_id): a file holding two
  candidates of one column, or none of a required column's, is a named error.
- Codes and ids (`TEXT_CODES`) are text from the first read, so no leading zero is lost; a code
  stored as a number becomes its digits.
- Stata files of every format pandas reads: variable names and value labels in any script (before Stata 14's
  format 118, GB18030 text as the ASIF was written); the codes are kept, not their labels.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from eqexp.data import validate as V
from eqexp.data.validate import DataValidationError
from eqexp.measures.quality import per_value
from eqexp.steps import Step, StepLog

# Columns (ours) that hold codes or identifiers: read as text, never as numbers.
TEXT_CODES = ("party_id", "firm_id", "hs6", "hs8", "hs10", "zip", "phone", "destination", "trade_mode", "unit",
              "registration_type", "year_month")
LONG_HS = {"hs8": 8, "hs10": 10}  # longer product codes, cut to HS6
# The columns a file of each source must have (after mapping), and the columns that can stand in for one.
REQUIRED = {"customs": V.CUSTOMS["columns"], "accounts": V.ACCOUNTS["columns"], "price_index": V.PRICE_INDEX["columns"],
            "hs_concordance": V.HS_CONCORDANCE["columns"], "rauch": V.RAUCH["columns"], "match": V.MATCH["columns"]}
STAND_INS = {"hs6": tuple(LONG_HS), "year": ("year_month",)}
SAMPLE_BYTES = 1 << 20  # the encoding is decided on the first MiB
UTF8_BOM = codecs.BOM_UTF8


@dataclass(frozen=True)
class FileRead:
    """What one file gave: its rows, the encoding it was read with, the columns it lacked."""

    path: Path
    rows: int
    encoding: str
    columns: tuple[str, ...]  # as the file names them
    absent: tuple[str, ...] = ()  # mapped columns (ours) none of whose candidates the file has


def detect_encoding(path: Path) -> str:
    """utf-8-sig (a BOM), utf-8 or gb18030, from the file's first MiB."""
    with open(path, "rb") as f:
        sample = f.read(SAMPLE_BYTES)
    if sample.startswith(UTF8_BOM):
        return "utf-8-sig"
    for encoding in ("utf-8", "gb18030"):
        try:
            codecs.getincrementaldecoder(encoding)().decode(sample, final=False)  # a cut last character is fine
            return encoding
        except UnicodeDecodeError:
            continue
    line, _ = undecodable_line(path, "gb18030")
    raise DataValidationError(
        f"{path}: line {line} is neither UTF-8 nor GB18030/GBK text. Set data.encoding to the file's encoding "
        "(any Python codec, e.g. big5), or re-save the file as UTF-8.")


def undecodable_line(path: Path, encoding: str) -> tuple[int, bytes]:
    """The first line (1-based, the header is line 1) that `encoding` cannot decode, and its bytes.

    Lines split at b'\\n' whatever the encoding: no byte of a GB18030 or UTF-8 multi-byte character is 0x0A."""
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            try:
                line.decode(encoding)
            except UnicodeDecodeError:
                return number, line[:80]
    return 0, b""


def text_stream(path: Path, encoding: str) -> io.TextIOWrapper:
    """The file decoded as it is read (pandas pulls it in chunks)."""
    return io.TextIOWrapper(open(path, "rb"), encoding=encoding, newline="")


def renames(path: Path, found: Iterable[str], mapping: Mapping[str, str]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Their names → ours for the columns `found` in one file, and each mapped column (ours) with its candidates
    (theirs) the file lacks. Two candidates of one column in one file are a named error."""
    found = list(map(str, found))
    candidates: dict[str, list[str]] = {}
    for theirs, ours in mapping.items():
        candidates.setdefault(ours, []).append(theirs)
    out: dict[str, str] = {}
    absent: dict[str, list[str]] = {}
    for ours, names in candidates.items():
        own = [ours] if ours in found and ours not in mapping else []  # a column already named as ours counts too
        present = [n for n in names if n in found] + own
        if len(present) > 1:
            raise DataValidationError(
                f"{path}: columns {', '.join(map(repr, present))} are all mapped to '{ours}' (data.columns), and the "
                f"file has more than one of them. Keep one: remove the other from data.columns, or drop it from the file.")
        if present:
            out[present[0]] = ours
        else:
            absent[ours] = names
    return out, absent


def read_table(path: Path, mapping: Mapping[str, str], encoding: str | None = None) -> tuple[pd.DataFrame, FileRead]:
    """One Parquet, CSV or .dta file with its columns renamed to ours (codes as text), and what it gave."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        encoding = encoding or detect_encoding(path)
        df, found, names, absent = _read_csv(path, mapping, encoding)
    elif suffix == ".dta":
        df, encoding = read_stata(path, encoding)
        found = tuple(map(str, df.columns))
        names, absent = renames(path, found, mapping)
    elif suffix == ".parquet":
        df, encoding = pd.read_parquet(path), "parquet"
        found = tuple(map(str, df.columns))
        names, absent = renames(path, found, mapping)
    else:
        raise DataValidationError(f"{path}: unsupported file type '{path.suffix}'. Use .parquet, .csv or .dta.")
    df = df.rename(columns=names)
    df = df.assign(**{c: as_text(df[c]) for c in df.columns if c in TEXT_CODES})
    return df, FileRead(path, len(df), encoding, found, tuple(absent))


def read_stata(path: Path, encoding: str | None = None) -> tuple[pd.DataFrame, str]:
    """A .dta file of any version pandas reads, and how its text was read. Codes, not their labels: value labels
    (登记注册类型 110 = 国有企业) would replace the codes the build reads. Before format 118 (Stata 14) a file holds
    its text in the code page of the machine that wrote it, which pandas reads as Latin-1: for the ASIF that is
    GB18030/GBK, re-decoded here (`encoding` overrides)."""
    df = pd.read_stata(path, convert_categoricals=False)
    version = stata_format(path)
    if version >= 118:
        return df, f"stata {version}"
    encoding = encoding or "gb18030"
    text = [c for c in df.columns if df[c].dtype == object or pd.api.types.is_string_dtype(df[c])]
    df = df.assign(**{c: per_value(df[c], lambda v: v.map(lambda x: _redecoded(x, encoding))) for c in text})
    return df.rename(columns=lambda c: _redecoded(str(c), encoding)), f"stata {version}, text as {encoding}"


def stata_format(path: Path) -> int:
    """The .dta format (release) number: 113-115 in the first byte, 117-119 in the XML-like header."""
    with open(path, "rb") as f:
        head = f.read(64)
    if head.startswith(b"<stata_dta>"):
        return int(head.split(b"<release>")[1][:3])
    return head[0]


def _redecoded(text, encoding: str):
    """Latin-1 text back to its bytes, decoded as `encoding`; unchanged if it is ASCII or does not decode."""
    if not isinstance(text, str) or text.isascii():
        return text
    try:
        return text.encode("latin-1").decode(encoding)
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def _read_csv(path: Path, mapping: Mapping[str, str], encoding: str):
    try:
        with text_stream(path, encoding) as f:
            found = tuple(map(str, pd.read_csv(f, nrows=0).columns))
        names, absent = renames(path, found, mapping)
        text = {c: "string" for c in found if names.get(c, c) in TEXT_CODES}
        with text_stream(path, encoding) as f:
            return pd.read_csv(f, dtype=text), found, names, absent
    except UnicodeDecodeError:
        line, raw = undecodable_line(path, encoding)
        raise DataValidationError(
            f"{path}: line {line} has bytes that are not {encoding} ({raw!r}). Set data.encoding to the file's "
            "encoding (utf-8, gb18030, ...), or repair that line.") from None


def as_text(codes: pd.Series) -> pd.Series:
    """Codes as text, categorical (millions of records share a few thousand codes): integers (or whole floats)
    stored as numbers become their digits; blanks become missing."""
    if pd.api.types.is_float_dtype(codes) and (codes.dropna() % 1 == 0).all():
        codes = codes.astype("Int64")
    inverse, uniques = pd.factorize(codes)  # millions of records, a few thousand codes: convert each once
    text = pd.Series(uniques, dtype=object).astype("string").str.strip()
    labels, categories = pd.factorize(text.mask(text.eq("")), sort=True)  # equal after stripping: one category
    rows = np.where(inverse >= 0, labels[np.maximum(inverse, 0)], -1) if len(text) else inverse
    return pd.Series(pd.Categorical.from_codes(rows, categories=pd.Index(categories, dtype=str)), index=codes.index)


def read_source(name: str, paths: list[Path], mapping: Mapping[str, str], encoding: str | None, root: Path,
                progress: bool = False) -> tuple[pd.DataFrame, StepLog]:
    """One source's files stacked in their order, columns ours (`read_table`), hs8 → hs6 and year_month → year,
    month (`derive_codes`); the steps say what each file gave and which columns some files lack."""
    frames, reads = [], []
    rows = 0
    for path in paths:
        df, read = read_table(path, mapping, encoding)
        _require(name, path, df, mapping)
        frames.append(df)
        reads.append(read)
        rows += read.rows
        if progress and len(paths) > 1:
            print(f"[eqexp]   read {name}: {_relative(path, root)} ({read.rows:,} rows, {read.encoding}); "
                  f"{len(reads)} of {len(paths)} files, {rows:,} rows so far", flush=True)
    nowhere = [theirs for theirs in mapping if not any(theirs in r.columns for r in reads)]
    if nowhere:  # in none of the files: a typo, not a name of some years
        raise DataValidationError(
            f"{_relative(paths[0], root) if len(paths) == 1 else name}: data.columns maps {', '.join(map(repr, nowhere))}, "
            f"which the file does not have. Its columns are: {', '.join(dict.fromkeys(c for r in reads for c in r.columns))}.")
    out = _stack(frames)
    steps = [Step("read_file", r.rows, r.rows, reason=f"{name}: {_relative(r.path, root)}, {r.rows:,} rows, "
                  f"read as {r.encoding}") for r in reads]
    steps += _absent_steps(name, reads, root)
    out, derived = derive_codes(name, out)
    return out, steps + derived


def _stack(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The files' rows one after another; a code column categorical in every file stays categorical (over the union
    of their codes, sorted), rather than becoming one Python string per record."""
    if len(frames) == 1:
        return frames[0]
    for column in set.intersection(*(set(f.columns) for f in frames)):
        if all(isinstance(f[column].dtype, pd.CategoricalDtype) for f in frames):
            codes = pd.Index(sorted(set().union(*(f[column].cat.categories for f in frames))), dtype=str)
            frames = [f.assign(**{column: f[column].cat.set_categories(codes)}) for f in frames]
    return pd.concat(frames, ignore_index=True)


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _require(name: str, path: Path, df: pd.DataFrame, mapping: Mapping[str, str]) -> None:
    """Each required column of the source present (or a column standing in for it), else name the candidates."""
    for ours in REQUIRED.get(name, ()):
        if ours in df.columns or any(s in df.columns for s in STAND_INS.get(ours, ())):
            continue
        wanted = (ours, *STAND_INS.get(ours, ()))
        theirs = [t for t, o in mapping.items() if o in wanted]
        how = (f"data.columns.{name} maps {', '.join(map(repr, theirs))} to it, and the file has none of them" if theirs
               else f"map yours with data.columns: {{{name}: {{your_column: {ours}}}}}")
        raise DataValidationError(
            f"{path}: no column for '{ours}', which {name} needs ({' or '.join(wanted)}); {how}. "
            f"Columns found: {', '.join(map(str, df.columns))}.")


def _absent_steps(name: str, reads: list[FileRead], root: Path) -> StepLog:
    """A column mapped but absent from some files: missing in their rows (counted), never filled."""
    steps = []
    for column in dict.fromkeys(c for r in reads for c in r.absent):
        lacking = [r for r in reads if column in r.absent]
        rows = sum(r.rows for r in reads)
        missing = sum(r.rows for r in lacking)
        steps.append(Step(f"absent_{column}", rows, rows, reason=(
            f"{name}: '{column}' absent from {len(lacking)} of {len(reads)} file(s) "
            f"({', '.join(_relative(r.path, root) for r in lacking)}): missing in their {missing:,} rows, not filled")))
    return steps


def derive_codes(name: str, df: pd.DataFrame) -> tuple[pd.DataFrame, StepLog]:
    """hs8 (or hs10) → hs6, zero-padded first where it was stored as a number; year_month (YYYYMM) → year, month."""
    steps: StepLog = []
    for column, width in LONG_HS.items():
        if column in df.columns and "hs6" not in df.columns:
            df, step = _cut_to_hs6(name, df, column, width)
            steps.append(step)
    if "year_month" in df.columns:
        if "year" in df.columns:
            raise DataValidationError(f"{name}: both year and year_month columns; map only one of them (data.columns).")
        df, step = _split_year_month(name, df)
        steps.append(step)
    return df, steps


def _cut_to_hs6(name: str, df: pd.DataFrame, column: str, width: int) -> tuple[pd.DataFrame, Step]:
    inverse, codes = pd.factorize(df[column])
    codes = pd.Series(codes, dtype="string")  # categories of as_text
    digits = codes.str.len()
    short, long = (digits < width).to_numpy(bool), (digits > width).to_numpy(bool)
    counts = pd.Series(inverse).value_counts().reindex(range(len(codes)), fill_value=0).to_numpy()
    n_short, n_long = int(counts[short].sum()), int(counts[long].sum())
    hs6 = codes.str.zfill(width).str[:6].reindex(inverse).set_axis(df.index)
    out = df.drop(columns=column).assign(hs6=hs6)
    reason = (f"{name}: {column} cut to hs6; {n_short + n_long:,} record(s) whose code was not {width} digits: "
              f"{n_short:,} shorter (stored as a number: zero-padded to {width}), {n_long:,} longer (cut all the same)")
    return out, Step(f"{column}_to_hs6", len(df), len(df), changed=n_short, reason=reason)


def _split_year_month(name: str, df: pd.DataFrame) -> tuple[pd.DataFrame, Step]:
    text = df["year_month"].astype("string").str.strip()
    ok = text.str.fullmatch(r"\d{4}(0[1-9]|1[0-2])").fillna(False).astype(bool) | text.isna()
    if not ok.all():
        bad = text[~ok]
        raise DataValidationError(
            f"{name}: column 'year_month' has {len(bad):,} value(s) that are not YYYYMM (a year and a month 01-12), "
            f"e.g. {', '.join(bad.head(5).astype(str))}. Fix the values, or map separate year and month columns.")
    year = pd.to_numeric(text.str[:4]).astype("Int64")
    month = pd.to_numeric(text.str[4:]).astype("Int64")
    if not text.isna().any():
        year, month = year.astype("int64"), month.astype("int64")
    out = df.drop(columns="year_month").assign(year=year, month=month)
    return out, Step("year_month", len(df), len(df), reason=f"{name}: year_month (YYYYMM) split into year and month")
