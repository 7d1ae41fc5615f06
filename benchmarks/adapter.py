"""Map the shared benchmark format (id/question/alternates/answer) to the bot's topics.

The shared FAQ sets in ``../shared/benchmarks`` are not in the bot's schema;
this adapter reads them with ``yaml.safe_load`` and builds
:class:`~bot.knowledge.Topic` objects. It lives here, not in the product.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.knowledge import KnowledgeBase, SynonymGroup, Topic

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
DEFAULT_BENCHMARKS = REPO.parent / "shared" / "benchmarks"
STACKFAQ = "stackfaq"
HINT3 = ("hint3-sofmattress", "hint3-curekart", "hint3-powerplay11")


@dataclass(frozen=True)
class Query:
    """One user message and the id of its gold entry (None when out of scope)."""

    text: str
    gold: str | None


def _read(path: Path) -> Any:
    """Return the parsed YAML of one benchmark file."""
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def entry_to_topic(entry: dict[str, Any]) -> Topic:
    """Return the topic for one benchmark entry."""
    question = str(entry["question"])
    alternates = tuple(str(a) for a in entry.get("alternates") or ())
    return Topic(
        id=str(entry["id"]),
        questions=(question, *alternates),
        answer=str(entry.get("answer") or ""),
        title=question,
    )


def load_kb(directory: Path, synonyms: tuple[SynonymGroup, ...] = ()) -> KnowledgeBase:
    """Return a knowledge base built from a benchmark's ``kb.yaml``."""
    entries = _read(directory / "kb.yaml")
    return KnowledgeBase.from_topics(
        (entry_to_topic(e) for e in entries), synonyms, source_path=str(directory)
    )


def load_queries(directory: Path, name: str = "queries_dev.yaml") -> list[Query]:
    """Return the queries of one benchmark file (in-scope or out-of-scope)."""
    path = directory / name
    if not path.exists():
        return []
    return [Query(str(item["q"]), item.get("gold")) for item in _read(path) or ()]
