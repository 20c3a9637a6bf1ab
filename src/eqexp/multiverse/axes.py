"""A multiverse's axes and its excluded combinations, on Hydra's job list.

An axis is any override a sweep varies: a config group (`trim: none,p5`) or a value
(`data.build.sigma: table,5,10`), declared in `hydra.sweeper.params` or on the command line.
Hydra's basic sweeper runs their full product; `hydra.sweeper.exclude` (eqexp's sweeper)
lists combinations to leave out, each a mapping of axes to one option or a list of options:

    exclude:
      - {trim: winsor1, controls: none}          # this pair
      - {lags: [l1, l2], sample: drop2010}       # l1 or l2 together with drop2010

A job is left out when, for every axis an entry names, its option is one of those listed.
An entry naming an axis or an option the sweep does not have is an error, raised before
any job runs, with the nearest valid names.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf


class MultiverseError(ValueError):
    """A multiverse that cannot run as written; the message says what to change."""


def axis_key(override: str) -> str:
    """`+controls=full` -> `controls`."""
    return override.split("=", 1)[0].lstrip("+~")


def option_of(override: str) -> str:
    return override.split("=", 1)[1] if "=" in override else ""


def declared_options(overrides: Iterable[Any]) -> dict[str, list[str]]:
    """Every option of each swept key, from Hydra's parsed overrides (the config's params and the
    command line's, both: a command-line `lags=none` may narrow a multiverse that declares l2)."""
    options: dict[str, list[str]] = {}
    swept = set()
    for override in overrides:
        values = list(override.sweep_string_iterator()) if override.is_sweep_override() else [override.get_value_element_as_str()]
        known = options.setdefault(axis_key(override.get_key_element()), [])
        known += [v for v in values if v not in known]
        swept |= {axis_key(override.get_key_element())} if override.is_sweep_override() else set()
    return {axis: values for axis, values in options.items() if axis in swept}


def _nearest(bad: str, valid: Sequence[str]) -> str:
    close = difflib.get_close_matches(bad, list(valid), n=2, cutoff=0.5)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def _as_list(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [str(v).lower() if isinstance(v, bool) else str(v) for v in values]


def parse_exclusions(raw: Any, options: Mapping[str, Sequence[str]]) -> list[dict[str, set[str]]]:
    """`hydra.sweeper.exclude` as a list of {axis: {options}}, every name checked against `options`."""
    if isinstance(raw, (DictConfig, ListConfig)):
        raw = OmegaConf.to_container(raw, resolve=True)
    entries = list(raw or [])
    parsed = []
    for i, entry in enumerate(entries, start=1):
        if not hasattr(entry, "items") or not entry:
            raise MultiverseError(f"hydra.sweeper.exclude entry #{i} is {entry!r}: write a mapping of axes to options, "
                                  "e.g. {trim: winsor1, controls: none}.")
        rule = {}
        for key, value in entry.items():
            axis = axis_key(str(key))
            if axis not in options:
                raise MultiverseError(f"hydra.sweeper.exclude entry #{i} names the axis '{axis}', which this sweep does not "
                                      f"have.{_nearest(axis, list(options))} Axes: {', '.join(options)}.")
            wanted = _as_list(value)
            for option in wanted:
                if option not in options[axis]:
                    raise MultiverseError(f"hydra.sweeper.exclude entry #{i} names {axis}={option}, which is not an option "
                                          f"of the axis '{axis}'.{_nearest(option, options[axis])} Options: {', '.join(options[axis])}.")
            rule[axis] = set(wanted)
        parsed.append(rule)
    return parsed


def is_excluded(job: Sequence[str], rules: list[dict[str, set[str]]]) -> bool:
    chosen = {axis_key(o): option_of(o) for o in job}
    return any(all(chosen.get(axis) in allowed for axis, allowed in rule.items()) for rule in rules)


def apply_exclusions(jobs: list[list[str]], overrides: Iterable[Any], raw: Any) -> list[list[str]]:
    """The jobs no exclusion names (Hydra's order kept); `overrides` are the parsed overrides the jobs came from."""
    rules = parse_exclusions(raw, declared_options(overrides))
    kept = [job for job in jobs if not is_excluded(job, rules)]
    if rules and not kept:
        raise MultiverseError(f"hydra.sweeper.exclude leaves none of the {len(jobs)} combinations to run.")
    return kept


def sweep_axes(jobs: Sequence[Sequence[str]]) -> dict[str, list[str]]:
    """The keys that vary across the jobs, each with its options in the order they first appear."""
    options: dict[str, list[str]] = {}
    for job in jobs:
        for override in job:
            known = options.setdefault(axis_key(override), [])
            if option_of(override) not in known:
                known.append(option_of(override))
    return {axis: values for axis, values in options.items() if len(values) > 1}
