"""Load YAML safely while remembering where every mapping and key came from.

Staff edit the knowledge files by hand, so every problem has to be reported as
``file:line``. ``load_yaml`` parses with libyaml's C parser when it is available
(an order of magnitude faster than the pure-Python one) and builds plain Python
values, except that mappings become :class:`LineDict` and sequences
:class:`LineList`, which carry the line of the node and of each key or item.
Duplicate keys, which PyYAML would silently collapse, are reported.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

try:  # libyaml's C parser; construction stays in Python, so line marks still work.
    _BaseLoader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _BaseLoader = yaml.SafeLoader


class LineDict(dict[str, Any]):
    """A mapping that knows its own line and the line of each of its keys."""

    line: int = 0
    key_lines: dict[str, int]
    duplicates: list[tuple[str, int]]

    def line_of(self, key: str) -> int:
        """Return the 1-based line of ``key``, or of the mapping if it is absent."""
        return self.key_lines.get(key, self.line)


class LineList(list[Any]):
    """A sequence that knows its own line and the line of each item."""

    line: int = 0
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        """Return the 1-based line of item ``index``."""
        if 0 <= index < len(self.item_lines):
            return self.item_lines[index]
        return self.line


class _LineLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """A safe loader whose mappings and sequences keep their line numbers."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    result.duplicates = []
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            key = str(key)
        line = key_node.start_mark.line + 1
        if key in result:
            result.duplicates.append((key, line))
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = line
    return result


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


def _construct_timestamp(loader: _LineLoader, node: yaml.ScalarNode) -> Any:
    """A date as YAML reads it; an impossible one (2027-02-30) stays text.

    PyYAML raises ValueError on a date that does not exist, which would end loading
    with a traceback; as text, the field's validator reports it at its line.
    """
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError:
        return str(node.value)


_LineLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


@dataclass(frozen=True)
class Problem:
    """One problem found in a staff-edited file, with where it is and what to do."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class YamlSyntaxError(Exception):
    """A file that is not valid YAML; carries a ready-made :class:`Problem`."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def parse_yaml(text: str, filename: str) -> Any:
    """Parse YAML text into line-aware values; raise YamlSyntaxError on bad syntax."""
    try:
        return yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass: safe
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = exc.problem or "invalid YAML"
        raise YamlSyntaxError(
            Problem(
                filename,
                line,
                f"YAML syntax error: {what}. Check indentation, colons and quotes "
                "(a text containing ': ' or starting with a quote must itself be quoted).",
            )
        ) from exc
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(Problem(filename, 1, f"YAML error: {exc}")) from exc


def load_yaml(path: Path, display_name: str | None = None) -> Any:
    """Read and parse one YAML file; raise YamlSyntaxError on bad syntax or encoding."""
    name = display_name or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise YamlSyntaxError(
            Problem(name, 1, "the file is not UTF-8 text; save it as UTF-8")
        ) from exc
    return parse_yaml(text, name)


def value_kind(value: Any) -> str:
    """Name a YAML value's type in words staff understand."""
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "yes/no"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dt.date):
        return "a date"
    if isinstance(value, int | float):
        return "a number"
    return "text"


def parse_date(value: Any) -> dt.date | None:
    """Accept a YAML date or an ISO 'YYYY-MM-DD' string."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None
