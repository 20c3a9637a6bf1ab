"""The typed specification of one job, validated before any long work starts.

Hydra composes a plain config; `load_spec` checks every key against the dataclasses
below (an unknown key fails with the nearest valid names), converts types through
OmegaConf's structured configs, and returns a frozen `Spec`. `check_variables` then
checks every variable the spec names against the panel's columns.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import FrozenInstanceError, dataclass, field, fields, is_dataclass, replace
from typing import Any, Iterable, Optional, get_args, get_origin, get_type_hints

import pandas as pd
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from eqexp.data.validate import SCHEMAS
from eqexp.terms import interaction_parts, label
from eqexp.terms import parse as parse_term


OUTPUTS = "outputs"  # the default root of everything eqexp writes (conf/config.yaml's `outputs`)


class SpecError(ValueError):
    """A specification that cannot run; the message says what to change."""


class _Sealable:
    """A spec part that `load_spec` seals: once loaded, no field can be assigned. (OmegaConf merges
    into the mutable dataclasses first; frozen ones would refuse the merge.)"""

    def __setattr__(self, name: str, value: Any) -> None:
        if getattr(self, "_sealed", False):
            raise FrozenInstanceError(f"cannot assign to '{name}': a loaded Spec is read-only; build another with dataclasses.replace")
        object.__setattr__(self, name, value)


def _seal(node: Any) -> None:
    if isinstance(node, _Sealable):
        for f in fields(node):
            _seal(getattr(node, f.name))
        object.__setattr__(node, "_sealed", True)
    elif isinstance(node, list):
        for item in node:
            _seal(item)


@dataclass
class DataSpec(_Sealable):
    name: str = "synthetic"
    source: str = "synthetic"  # synthetic (built from its raw sources) | world (drawn, unmeasured) | raw | panel
    params: dict[str, Any] = field(default_factory=dict)  # generator parameters (synthetic, world)
    path: Optional[str] = None  # the user's panel file (panel) or folder of raw sources (raw)
    columns: dict[str, Any] = field(default_factory=dict)  # rename: their column name -> the name used in the YAML (raw: per source file)
    build: dict[str, Any] = field(default_factory=dict)  # measure options (eqexp.build.BuildOptions)
    files: dict[str, Any] = field(default_factory=dict)  # raw: each source's files, globs under path ({customs: "customs/*.csv"})
    encoding: Any = None  # raw: the CSVs' encoding (utf-8, gb18030, ...; or {source: encoding}); default: detected per file
    memory_limit: Optional[str] = None  # raw, synthetic: DuckDB's memory limit for the customs records ("4GB" if unset)
    cache_dir: str = f"{OUTPUTS}/cache"
    id: str = "firm_id"  # the panel unit: lags, the default clustering, resampling and permutation draws
    time: str = "year"  # the period: lags are gap-aware in it
    schema: Optional[str] = None  # named rules a ready panel must meet (export_quality: the reference study's)
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)  # your own: {column: {min: ..., max: ...}}


@dataclass
class LagSpec(_Sealable):
    treatment: int = 0  # k in L^k of the treatment (and its square)
    controls: int = 0  # k in L^k of every control
    # where the treatment's lag comes from (set once per job, in the `lags` group):
    # firm: the firm's own year t-k row (Stata's L. after xtset firm year; the study's N);
    # province: the province-year series (methods §6.3), so firm gaps do not matter
    unit: str = "firm"


@dataclass
class Column(_Sealable):
    """One column of a regression table: overrides of the model for that column."""

    label: Optional[str] = None
    outcome: Optional[str] = None
    controls: Optional[list[str]] = None
    lags: Optional[LagSpec] = None


@dataclass
class ModelSpec(_Sealable):
    name: str = "baseline"
    outcome: str = "quality"
    treatment: str = "market"
    square: bool = True
    two_lines: bool = False  # with the square: Simonsohn's two-lines test next to Lind–Mehlum's (four more regressions)
    controls: list[str] = field(default_factory=list)
    fixed_effects: list[str] = field(default_factory=lambda: ["firm_id", "year"])
    columns: list[Column] = field(default_factory=lambda: [Column()])
    # Endogeneity (eqexp.iv): excluded instruments make the treatment (and its square) endogenous,
    # instrumented by them and the controls; `z_sq` is the square of z, lagged as the treatment is.
    instruments: list[str] = field(default_factory=list)
    endogenous: list[str] = field(default_factory=list)  # other endogenous regressors (lagged as the controls)
    estimator: str = "auto"  # auto: 2SLS when instruments are listed, else OLS | ols | iv
    reduced_form: bool = False  # 2SLS tables: also the outcome on the instruments and controls


@dataclass
class WildSpec(_Sealable):
    """The wild cluster bootstrap (restricted, WCR) of every treatment term (eqexp.inference.wild)."""

    type: str = "wild"
    draws: int = 9999
    weights: str = "auto"  # auto (Webb's below 12 clusters, Rademacher otherwise) | rademacher | webb
    seed: int = 20240101
    alpha: float = 0.05  # the confidence intervals' level is 1 - alpha


@dataclass
class VcovSpec(_Sealable):
    name: str = "firm"
    type: str = "CRV1"  # CRV1 | CRV3 | hetero | iid
    cluster: list[str] = field(default_factory=lambda: ["firm_id"])  # two for two-way; `a^b` clusters by a × b
    label: str = ""  # the table's "S.E." row; empty: the cluster variables' labels (report.labels, else their names)
    bootstrap: Optional[WildSpec] = None  # e.g. {type: wild, draws: 9999}: few-cluster p-values and intervals


@dataclass
class SampleSpec(_Sealable):
    name: str = "all"
    query: Optional[str] = None  # pandas query selecting the rows to keep
    label: str = ""  # empty: "All <unit>-<period>s" when report.labels names the unit (data.id), else "All observations"


@dataclass
class TrimSpec(_Sealable):
    name: str = "none"
    method: str = "none"  # none | trim | winsor
    variables: list[str] = field(default_factory=lambda: ["quality"])
    lower: float = 5.0  # percentile
    upper: float = 95.0
    by: Optional[str] = None  # e.g. year: percentiles within each year


@dataclass
class PermutationSpec(_Sealable):
    draws: int = 1000
    seed: int = 20240101


@dataclass
class HeteroSpec(_Sealable):
    name: str = "none"
    label: str = ""
    groups: dict[str, str] = field(default_factory=dict)  # column header -> pandas query
    permutation: PermutationSpec = field(default_factory=PermutationSpec)


@dataclass
class BootstrapSpec(_Sealable):
    draws: int = 1000
    seed: int = 20240101
    alpha: float = 0.05
    # Other mediators whose moments the bootstrap sums as well, so that their jobs on the same
    # sample take its draws instead of drawing again; results unchanged. A sweep fills it in.
    share_with: list[str] = field(default_factory=list)


@dataclass
class MediatorSpec(_Sealable):
    name: str = "none"
    variable: Optional[str] = None
    square: bool = False  # add the squared treatment to the mediator equation
    bootstrap: BootstrapSpec = field(default_factory=BootstrapSpec)


@dataclass
class ReportSpec(_Sealable):
    title: str = ""
    stat: str = "t"  # t | se: what goes in parentheses
    digits: int = 4
    labels: dict[str, str] = field(default_factory=dict)  # names and texts -> what tables show (eqexp.report.language)
    phrases: list[list[str]] = field(default_factory=list)  # [regex, replacement] pairs for the notes under tables
    descriptives: list[str] = field(default_factory=list)  # variables of Tables 2 and 3
    figures: bool = True  # a job's own figures (a multiverse draws its curve instead)


@dataclass
class TrackingSpec(_Sealable):
    enabled: bool = True
    uri: str = f"sqlite:///{OUTPUTS}/mlflow.db"
    experiment: str = "eqexp"
    artifact_root: str = f"{OUTPUTS}/mlartifacts"


@dataclass
class MultiverseSpec(_Sealable):
    """A job's part in a multiverse (conf/multiverse/*.yaml; eqexp.multiverse). Outside one, draws = 0."""

    name: str = "none"
    term: str = "auto"  # the curve's coefficient: auto (the square of an inverted-U model, else the treatment) | treatment | square
    draws: int = 0  # firm-cluster resampling draws under the null for the joint test (0: no joint test)
    seed: int = 20240101
    alpha: float = 0.05  # what counts as significant on the curve and in its joint test


@dataclass
class Spec(_Sealable):
    analysis: str = "regression"  # regression | descriptives | correlations
    force: bool = False  # re-run a sweep job even if an identical finished run exists
    outputs: str = OUTPUTS  # where runs, sweeps, the data cache and the MLflow store go (the configs refer to it)
    data: DataSpec = field(default_factory=DataSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    vcov: VcovSpec = field(default_factory=VcovSpec)
    sample: SampleSpec = field(default_factory=SampleSpec)
    trim: TrimSpec = field(default_factory=TrimSpec)
    lags: LagSpec = field(default_factory=LagSpec)
    hetero: HeteroSpec = field(default_factory=HeteroSpec)
    mediator: MediatorSpec = field(default_factory=MediatorSpec)
    report: ReportSpec = field(default_factory=ReportSpec)
    tracking: TrackingSpec = field(default_factory=TrackingSpec)
    multiverse: MultiverseSpec = field(default_factory=MultiverseSpec)


CHOICES = {
    "analysis": ("regression", "descriptives", "correlations"),
    "data.source": ("synthetic", "world", "raw", "panel"),
    "data.schema": (None, *SCHEMAS),  # the named rules of eqexp.data.validate
    "vcov.type": ("CRV1", "CRV3", "hetero", "iid"),
    "trim.method": ("none", "trim", "winsor"),
    "lags.unit": ("firm", "province"),
    "report.stat": ("t", "se"),
    "multiverse.term": ("auto", "treatment", "square"),
    "model.estimator": ("auto", "ols", "iv"),
}


def _suggest(bad: str, valid: Iterable[str]) -> str:
    close = difflib.get_close_matches(bad, list(valid), n=3, cutoff=0.5)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def _dataclass_of(hint: Any) -> type | None:
    """The dataclass inside a hint such as `LagSpec`, `Optional[LagSpec]` or `list[Column]`."""
    if is_dataclass(hint):
        return hint
    for arg in get_args(hint):
        found = _dataclass_of(arg)
        if found is not None:
            return found
    return None


def _check_keys(node: Any, schema: type, path: str) -> None:
    if not isinstance(node, dict):
        if isinstance(node, list) and _dataclass_of(schema) is not None:
            for i, item in enumerate(node):
                _check_keys(item, schema, f"{path}[{i}]")
        return
    hints = get_type_hints(schema)
    for key, value in node.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in hints:
            raise SpecError(
                f"Unknown key '{where}' in the configuration.{_suggest(str(key), hints)} "
                f"Valid keys here: {', '.join(sorted(hints))}."
            )
        inner = _dataclass_of(hints[key])
        is_list = get_origin(hints[key]) is list or list in map(get_origin, get_args(hints[key]))
        if inner is not None and (isinstance(value, dict) or (is_list and isinstance(value, list))):
            _check_keys(value, inner, where)


def _check_choices(spec: Spec) -> None:
    for dotted, allowed in CHOICES.items():
        value: Any = spec
        for part in dotted.split("."):
            value = getattr(value, part)
        if value not in allowed:
            names = [str(a) for a in allowed if a is not None]
            raise SpecError(
                f"'{dotted}' is '{value}', which is not one of {', '.join(names)}"
                f"{' (or empty)' if None in allowed else ''}.{_suggest(str(value), names)}"
            )


def _check_model(spec: Spec) -> None:
    """What a model cannot mean: a variable twice, the treatment as its own control, a negative lag."""
    model = spec.model
    lists = {"model.controls": model.controls, "model.fixed_effects": model.fixed_effects}
    lists |= {f"model.columns[{i}].controls": c.controls for i, c in enumerate(model.columns) if c.controls is not None}
    for where, names in lists.items():
        twice = sorted({n for n in names if list(names).count(n) > 1})
        if twice:
            raise SpecError(f"'{where}' lists {', '.join(map(repr, twice))} more than once. List each variable once.")
        if where != "model.fixed_effects" and model.treatment in names:
            raise SpecError(f"'{where}' lists the treatment '{model.treatment}' as a control; it is in the model already "
                            f"(with its square when model.square is true). Remove it from the controls.")
    if spec.mediator.variable and spec.data.id not in model.fixed_effects:
        raise SpecError(f"The mediation bootstrap resamples whole units (data.id = '{spec.data.id}') and needs their fixed "
                        f"effect: add '{spec.data.id}' to model.fixed_effects ({model.fixed_effects}), or set data.id to one of them.")
    _check_multiverse(spec)
    _check_instruments(spec)
    for where, lags in [("lags", spec.lags), *((f"model.columns[{i}].lags", c.lags) for i, c in enumerate(model.columns))]:
        if lags is None:
            continue
        for part in ("treatment", "controls"):
            if getattr(lags, part) < 0:
                raise SpecError(f"'{where}.{part}' is {getattr(lags, part)}: a lag is a number of periods back, 0 or more. "
                                "Leads (values of later periods) are not supported.")


def _check_bootstrap(spec: Spec) -> None:
    """The wild cluster bootstrap needs one clustering dimension and a model with fixed effects."""
    from eqexp.inference.wild import WEIGHTS

    boot, vcov = spec.vcov.bootstrap, spec.vcov
    if boot is None:
        return
    problems = []
    if boot.type != "wild":
        problems.append(f"vcov.bootstrap.type is '{boot.type}'; the only type is 'wild'")
    if boot.weights not in WEIGHTS:
        problems.append(f"vcov.bootstrap.weights is '{boot.weights}', not one of {', '.join(WEIGHTS)}{_suggest(boot.weights, WEIGHTS)}")
    if boot.draws < 99:
        problems.append(f"vcov.bootstrap.draws is {boot.draws}; use at least 99 (9,999 for published p-values)")
    if not 0 < boot.alpha < 1:
        problems.append(f"vcov.bootstrap.alpha is {boot.alpha}; it must lie strictly between 0 and 1")
    if vcov.type != "CRV1" or len(vcov.cluster) != 1:
        problems.append(f"the wild cluster bootstrap resamples one clustering dimension and needs vcov.type CRV1 with one "
                        f"cluster variable (vcov '{vcov.name}' is {vcov.type} by {vcov.cluster or 'nothing'})")
    if not spec.model.fixed_effects:
        problems.append("the wild cluster bootstrap is offered for models with fixed effects (model.fixed_effects is empty)")
    if problems:
        raise SpecError("Cannot run the wild bootstrap: " + "; ".join(problems) + ".")


def _check_multiverse(spec: Spec) -> None:
    """The joint test resamples whole units under the null: it needs their fixed effect, a square to show, draws ≥ 0."""
    mv, model = spec.multiverse, spec.model
    if mv.draws < 0 or not 0 < mv.alpha < 1:
        raise SpecError(f"'multiverse.draws' must be 0 or more (got {mv.draws}) and 'multiverse.alpha' in (0, 1) (got {mv.alpha}).")
    if mv.term == "square" and not model.square:
        raise SpecError("'multiverse.term' is 'square' but the model has no squared treatment (model.square: false). "
                        "Use multiverse.term=treatment or auto.")
    if mv.draws and spec.data.id not in model.fixed_effects:
        raise SpecError(f"The multiverse's joint test resamples whole units (data.id = '{spec.data.id}') and needs their fixed "
                        f"effect: add '{spec.data.id}' to model.fixed_effects ({model.fixed_effects}), or set multiverse.draws=0.")


def uses_iv(spec: Spec) -> bool:
    """2SLS: instruments listed and the estimator not forced to OLS."""
    return bool(spec.model.instruments) and spec.model.estimator != "ols"


def _check_instruments(spec: Spec) -> None:
    """What an IV model cannot mean: no instruments for `iv`, an instrument that is a regressor, too few instruments,
    and the parts of eqexp that only OLS serves."""
    from eqexp.terms import base_variable

    model = spec.model
    if model.estimator == "iv" and not model.instruments:
        raise SpecError("'model.estimator' is 'iv' but 'model.instruments' is empty. List the excluded instruments "
                        "(model.instruments=[z]) or use model.estimator=ols.")
    if not uses_iv(spec):
        return
    for where, names in {"model.instruments": model.instruments, "model.endogenous": model.endogenous}.items():
        twice = sorted({n for n in names if list(names).count(n) > 1})
        if twice:
            raise SpecError(f"'{where}' lists {', '.join(map(repr, twice))} more than once. List each variable once.")
    controls = set(model.controls).union(*(c.controls or [] for c in model.columns))
    regressors = {model.treatment: "the treatment", model.outcome: "the outcome", **{c: "a control" for c in controls},
                  **{e: "an endogenous regressor" for e in model.endogenous}}
    for z in model.instruments:
        role = regressors.get(z) or ("the treatment" if base_variable(z) == model.treatment else None)
        if role:
            raise SpecError(f"'model.instruments' lists '{z}', which is {role} of the model. An excluded instrument must not be a "
                            "regressor (the controls instrument themselves already): remove it from model.instruments.")
    for e in model.endogenous:
        if e in controls or e == model.treatment:
            raise SpecError(f"'model.endogenous' lists '{e}', which is {'the treatment' if e == model.treatment else 'a control'} "
                            "already. List an endogenous regressor in model.endogenous only (the treatment is endogenous anyway).")
    needed = (2 if model.square else 1) + len(model.endogenous)
    if len(model.instruments) < needed:
        terms = [model.treatment, *([f"{model.treatment}_sq"] if model.square else []), *model.endogenous]
        raise SpecError(f"The IV model is under-identified: {needed} endogenous regressors ({', '.join(terms)}) but "
                        f"{len(model.instruments)} excluded instrument(s) ({', '.join(model.instruments)}). List at least as many "
                        f"instruments as endogenous regressors{' (z and z_sq for a squared treatment)' if model.square else ''}.")
    unsupported = {
        "a mediator (mediator.variable)": bool(spec.mediator.variable),
        "the wild cluster bootstrap (vcov.bootstrap)": spec.vcov.bootstrap is not None,
        "CRV3 standard errors": spec.vcov.type == "CRV3",
        "the two-lines test (model.two_lines)": model.two_lines,
    }
    bad = [what for what, present in unsupported.items() if present]
    if bad:
        raise SpecError(f"2SLS (model.instruments) is not offered with {', '.join(bad)}: these re-estimate the model by OLS. "
                        "Drop them, or set model.estimator=ols.")


def with_bootstrap_shared(spec: Spec, mediators: list[str]) -> Spec:
    """The spec whose mediation bootstrap also sums these mediators' moments (sealed, as `load_spec` leaves a spec)."""
    bootstrap = replace(spec.mediator.bootstrap, share_with=list(mediators))
    shared = replace(spec, mediator=replace(spec.mediator, bootstrap=bootstrap))
    _seal(shared)
    return shared


def load_spec(cfg: DictConfig | dict) -> Spec:
    """Validate a composed config and return the typed `Spec`.

    Keys that are not part of the specification (Hydra's own, `experiment`) are ignored; a
    job's whole config can be passed (its `hydra` node, which resolves only inside a job, is
    never read).
    """
    raw = {k: _plain(cfg[k]) for k in cfg if k not in ("hydra", "experiment")}
    _check_keys(raw, Spec, "")
    try:
        merged = OmegaConf.merge(_spec_schema(), raw)
        spec = OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "?"
        first_line = str(err).splitlines()[0]
        raise SpecError(f"Invalid value for '{key}': {first_line}") from None
    _check_choices(spec)
    _check_model(spec)
    _check_bootstrap(spec)
    if not spec.vcov.label:
        names = spec.vcov.cluster if spec.vcov.type.startswith("CRV") else []
        default = {"hetero": "Robust", "iid": "IID"}.get(spec.vcov.type, spec.vcov.type)
        spec.vcov.label = " and ".join(label(c, spec.report.labels) for c in names) or default
    if not spec.sample.label:
        spec.sample.label = _all_rows_label(spec.data.id, spec.data.time, spec.report.labels)
    _seal(spec)
    return spec


def _all_rows_label(unit: str, period: str, labels: dict[str, str]) -> str:
    """The whole sample in the panel's own words: "All firm-years" where the labels name the unit and period."""
    if unit not in labels:
        return "All observations"
    return f"All {labels[unit].lower()}-{labels.get(period, period).lower()}s"


def _plain(value: Any) -> Any:
    """A config node as plain containers, its interpolations resolved against its whole config."""
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


@functools.cache
def _spec_schema() -> DictConfig:
    """`Spec` as a typed config, built once (merging copies it)."""
    return OmegaConf.structured(Spec)


def descriptive_variables(spec: Spec) -> list[str]:
    """What Tables 2 and 3 describe: `report.descriptives`, else the model's outcome, treatment, controls and mediator."""
    model = spec.model
    return list(spec.report.descriptives) or list(dict.fromkeys(
        [model.outcome, model.treatment, *model.controls, *([spec.mediator.variable] if spec.mediator.variable else [])]))


# --- variables -----------------------------------------------------------------------

def interacted(names: Iterable[str]) -> list[str]:
    """The panel columns behind fixed effects or clusters, `region^year` being region and year."""
    return [part for name in names for part in name.split("^")]


def named_variables(spec: Spec) -> dict[str, list[str]]:
    """Every panel column the spec refers to, keyed by the field that names it."""
    model = spec.model
    named = {
        "data.id": [spec.data.id],
        "data.time": [spec.data.time],
        "model.outcome": [model.outcome],
        "model.treatment": [model.treatment],
        "model.controls": list(model.controls),
        "model.fixed_effects": interacted(model.fixed_effects),
        "vcov.cluster": interacted(spec.vcov.cluster) if spec.vcov.type.startswith("CRV") else [],
        "trim.variables": list(spec.trim.variables) if spec.trim.method != "none" else [],
        "trim.by": [spec.trim.by] if spec.trim.by else [],
        "mediator.variable": [spec.mediator.variable] if spec.mediator.variable else [],
        "model.instruments": [parse_term(z).variable for z in model.instruments],
        "model.endogenous": list(model.endogenous),
        "mediator.bootstrap.share_with": list(spec.mediator.bootstrap.share_with) if spec.mediator.variable else [],
        "report.descriptives": descriptive_variables(spec) if spec.analysis != "regression" else [],  # only Tables 2 and 3 read them
    }
    for i, col in enumerate(model.columns):
        if col.outcome:
            named[f"model.columns[{i}].outcome"] = [col.outcome]
        if col.controls:
            named[f"model.columns[{i}].controls"] = list(col.controls)
    return named


# Fields whose columns may hold labels (codes, names, groups); every other named column is a number.
_LABEL_FIELDS = ("data.id", "data.time", "model.fixed_effects", "vcov.cluster", "trim.by")


def numeric_variables(spec: Spec) -> dict[str, str]:
    """Every panel column the spec uses as a number, with the first field that names it."""
    out: dict[str, str] = {}
    for where, names in named_variables(spec).items():
        if where not in _LABEL_FIELDS:
            for name in names:
                out.setdefault(name, where)
    return out


def _check_query(query: str, columns: pd.Index, where: str) -> None:
    try:
        pd.DataFrame(columns=columns).query(query)
    except Exception as err:  # pandas raises several types; the message is what matters
        missing = re.search(r"name '(\w+)' is not defined", str(err))
        hint = _suggest(missing.group(1), columns) if missing else ""
        raise SpecError(f"'{where}' = {query!r} cannot be evaluated on the panel: {err}.{hint}") from None


def check_variables(spec: Spec, columns: Iterable[str]) -> None:
    """Fail before estimation if the spec names a column the panel does not have."""
    columns = pd.Index(list(columns))
    for where, names in named_variables(spec).items():
        for name in (part for named in names for part in interaction_parts(named)):
            if name not in columns:
                raise SpecError(
                    f"'{where}' names the variable '{name}', which is not a column of the panel."
                    f"{_suggest(name, columns)} Available: {', '.join(columns)}."
                )
    if spec.sample.query:
        _check_query(spec.sample.query, columns, "sample.query")
    for group, query in spec.hetero.groups.items():
        _check_query(query, columns, f"hetero.groups.{group}")
