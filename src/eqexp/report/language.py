"""The words of a table in the paper's language: `report.labels` and `report.phrases`.

`report.labels` maps a name or a text to what the table shows: a variable (`quality`), a group
or column label (`State-Owned`), a title, or one of the table's own words (`Observations`,
`YES`). A key with `{}` is a pattern: `"{} FE": "{}固定效应"` labels every fixed-effect row,
the `{}` filled with the label of what it matched. `report.phrases` are pairs of a regular
expression and its replacement (Python's `re`), applied in order to the notes under a table,
which the tests write as sentences with their numbers in them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from eqexp.terms import label

_HOLE = "{}"


def _pattern(key: str) -> re.Pattern[str]:
    return re.compile("^" + "(.+)".join(map(re.escape, key.split(_HOLE, 1))) + "$")


def text(shown: str, labels: dict[str, str]) -> str:
    """`shown` as the labels say: its own entry, else a pattern's (`{}` filled, labelled in turn),
    else, for `a: b` (a sweep's job and group), each side; else as it is."""
    if shown in labels:
        return labels[shown]
    for key, value in labels.items():
        if _HOLE in key and (found := _pattern(key).match(shown)):
            return value.replace(_HOLE, text(found.group(1), labels))
    head, sep, tail = shown.rpartition(": ")
    if sep and head and tail:
        return f"{text(head, labels)}{sep}{text(tail, labels)}"
    return label(shown, labels)


def word(key: str, labels: dict[str, str], filling: str | None = None, default: str | None = None) -> str:
    """One of the table's own words (`{} FE` filled with `filling`), as `report.labels` has it, else
    `default`, else `key` itself."""
    shown = labels.get(key, key if default is None else default)
    return shown if filling is None else shown.replace(_HOLE, filling)


def sentence(note: str, labels: dict[str, str], phrases: Iterable[Iterable[str]], names: Iterable[str] = ()) -> str:
    """A note: its own entry in the labels, else the phrases applied in order, then every one of
    `names` (the table's groups) in it labelled, the longest first."""
    if note in labels:
        return labels[note]
    for pattern, replacement in phrases:
        note = re.sub(pattern, replacement, note)
    for name in sorted(set(names), key=len, reverse=True):
        if name and labels.get(name, name) != name:
            note = note.replace(name, labels[name])
    return note


def needs_cjk(shown: str) -> bool:
    """A text with a character of East Asian width (Chinese, Japanese, Korean, full-width forms)."""
    return any(unicodedata.east_asian_width(c) in "WF" for c in shown)
