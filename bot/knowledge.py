"""The knowledge base: typed, frozen topics loaded once from staff-edited YAML.

A knowledge directory holds topic files (``*.yaml`` with ``version: 1`` and
``topics:``), plus two special files: ``synonyms.yaml`` (phrase rewrites used by
the matcher) and ``pathway.yaml`` (the guided pathway, loaded by
:mod:`bot.pathway`). :func:`load_knowledge` reads them all, checks them and
returns either a :class:`KnowledgeBase` or every problem found, each as
``file:line: message`` with what to do about it. Nothing here touches Telegram
or SQL; nothing reads YAML after loading.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from bot.text import normalize
from bot.yamlio import LineDict, LineList, Problem, YamlSyntaxError, load_yaml
from bot.yamlio import parse_date as _parse_date
from bot.yamlio import value_kind as _kind

SYNONYMS_FILE = "synonyms.yaml"
PATHWAY_FILE = "pathway.yaml"
CALENDAR_FILE = "calendar.yaml"
SPECIAL_FILES = frozenset({SYNONYMS_FILE, PATHWAY_FILE, CALENDAR_FILE})
SUPPORTED_VERSIONS = frozenset({1})

#: Telegram allows 4,096 characters; the bot splits longer messages at 4,000, so one
#: answer must fit in that to go out as one message.
TELEGRAM_MESSAGE_LIMIT = 4000
DEFAULT_CATEGORY = "General"
#: A follow-up that is not a topic: a button that starts (or resumes) the guided pathway.
PATHWAY_FOLLOW_UP = "pathway"

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")

TOPIC_FIELDS = frozenset(
    {
        "id",
        "questions",
        "answer",
        "title",
        "category",
        "keywords",
        "follow_ups",
        "sources",
        "reviewed",
        "notes",
        "kind",
        "legal_note",
    }
)
#: What a match on a topic means: an answer, or a polite "outside what I cover".
TOPIC_KINDS = ("answer", "decline")
#: Staff placeholders that must never reach a user.
PLACEHOLDER = re.compile(r"\[\s*(STAFF|TODO|TBD|FIXME)\b", re.IGNORECASE)
REQUIRED_TOPIC_FIELDS = ("id", "questions", "answer")
SOURCE_FIELDS = frozenset({"title", "url"})


@dataclass(frozen=True)
class Source:
    """An official page an answer is based on."""

    title: str
    url: str


@dataclass(frozen=True)
class Topic:
    """One answerable subject: its phrasings, its answer and where it came from."""

    id: str
    questions: tuple[str, ...]
    answer: str
    title: str
    category: str = DEFAULT_CATEGORY
    keywords: tuple[str, ...] = ()
    follow_ups: tuple[str, ...] = ()
    sources: tuple[Source, ...] = ()
    reviewed: dt.date | None = None
    kind: str = "answer"
    legal_note: bool = False
    file: str = ""
    line: int = 0

    @property
    def is_decline(self) -> bool:
        """Tell whether a match on this topic means "outside what the bot covers"."""
        return self.kind == "decline"

    @property
    def canonical_question(self) -> str:
        """Return the first, canonical phrasing."""
        return self.questions[0]


@dataclass(frozen=True)
class SynonymGroup:
    """Phrases (``variants``) that the matcher rewrites to ``canonical``."""

    canonical: str
    variants: tuple[str, ...]
    file: str = ""
    line: int = 0


@dataclass(frozen=True)
class KnowledgeBase:
    """All topics, indexed by id and by category, plus the synonym table."""

    topics: tuple[Topic, ...]
    synonyms: tuple[SynonymGroup, ...] = ()
    source_path: str = ""
    by_id: Mapping[str, Topic] = field(default_factory=lambda: MappingProxyType({}))
    categories: tuple[str, ...] = ()

    @classmethod
    def from_topics(
        cls,
        topics: Iterable[Topic],
        synonyms: Iterable[SynonymGroup] = (),
        source_path: str = "",
    ) -> KnowledgeBase:
        """Build the indexes once; the result is immutable."""
        topic_tuple = tuple(topics)
        categories: list[str] = []
        for topic in topic_tuple:
            # Decline topics are found by matching, not browsed: they are not an area.
            if topic.category not in categories and not topic.is_decline:
                categories.append(topic.category)
        return cls(
            topics=topic_tuple,
            synonyms=tuple(synonyms),
            source_path=source_path,
            by_id=MappingProxyType({t.id: t for t in topic_tuple}),
            categories=tuple(categories),
        )

    def in_category(self, category: str) -> tuple[Topic, ...]:
        """Return the topics of one category, in file order."""
        return tuple(t for t in self.topics if t.category == category)

    @property
    def last_reviewed(self) -> dt.date | None:
        """Return the most recent review date of any topic."""
        dates = [t.reviewed for t in self.topics if t.reviewed is not None]
        return max(dates) if dates else None


# ---------------------------------------------------------------------------
# Loading and validation
# ---------------------------------------------------------------------------


class _FileChecker:
    """Collects the problems of one file, so that all of them are reported at once."""

    def __init__(self, name: str, problems: list[Problem]) -> None:
        self.name = name
        self.problems = problems

    def add(self, line: int, message: str) -> None:
        """Record one problem at ``line`` of this file."""
        self.problems.append(Problem(self.name, line, message))

    def duplicates(self, mapping: LineDict, what: str) -> None:
        """Report keys written twice in one mapping (YAML would keep only the last)."""
        for key, line in getattr(mapping, "duplicates", []):
            self.add(line, f"{what} has the field '{key}' twice; keep one of them")

    def text(
        self, mapping: LineDict, key: str, what: str, *, required: bool = False
    ) -> str | None:
        """Return a non-empty string field, or record why it is not one."""
        if key not in mapping:
            if required:
                self.add(mapping.line, f"{what} is missing the required field '{key}'")
            return None
        value = mapping[key]
        line = mapping.line_of(key)
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.add(line, f"'{key}' of {what} must be text, not {_kind(value)}")
            return None
        text = str(value).strip()
        if not text:
            self.add(line, f"'{key}' of {what} is empty; write the text or remove the field")
            return None
        return text

    def text_list(
        self, mapping: LineDict, key: str, what: str, *, required: bool = False
    ) -> list[tuple[str, int]] | None:
        """Return a list of non-empty strings with their lines, or record why not."""
        if key not in mapping:
            if required:
                self.add(mapping.line, f"{what} is missing the required field '{key}'")
            return None
        value = mapping[key]
        line = mapping.line_of(key)
        if isinstance(value, str):
            self.add(
                line,
                f"'{key}' of {what} must be a list; write it as [{value!r}] "
                "or one '- item' per line",
            )
            return None
        if not isinstance(value, list):
            self.add(line, f"'{key}' of {what} must be a list, not {_kind(value)}")
            return None
        items: list[tuple[str, int]] = []
        for index, item in enumerate(value):
            item_line = value.line_of(index) if isinstance(value, LineList) else line
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                self.add(
                    item_line,
                    f"item {index + 1} of '{key}' in {what} must be text, not {_kind(item)}",
                )
            elif not str(item).strip():
                self.add(item_line, f"item {index + 1} of '{key}' in {what} is empty; remove it")
            else:
                items.append((str(item).strip(), item_line))
        if required and not items and not value:
            self.add(line, f"'{key}' of {what} is an empty list; give at least one item")
        return items


def _suggest(key: str, known: Iterable[str]) -> str:
    """Suggest the closest known field name for a misspelt one."""
    import difflib

    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def valid_url(url: str) -> bool:
    """Tell whether ``url`` is an absolute http(s) URL with a host and no spaces."""
    if any(ch.isspace() for ch in url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return (
        parts.scheme in {"http", "https"}
        and bool(parts.hostname)
        and "." in (parts.hostname or "")
    )


def rendered_length(topic: Topic) -> int:
    """Estimate the visible length of a topic's answer message as the bot sends it.

    The frame is what :func:`bot.views.topic_reply` puts around the answer: the title,
    "Official sources:" with each source's title, and the review line.
    """
    frame = _units(topic.title) + 2 + len("Official sources: ") + 1
    frame += sum(_units(s.title) + 3 for s in topic.sources)
    frame += len("Last reviewed 30 September 2026. Official pages win if they differ.")
    if topic.legal_note:
        frame += 160  # the view's one-line legal note
    return frame + _units(topic.answer) + 4


def _units(text: str) -> int:
    """Count UTF-16 code units, as Telegram does (an emoji counts two)."""
    return len(text.encode("utf-16-le")) // 2


def _parse_topic(raw: Any, line: int, check: _FileChecker, today: dt.date) -> Topic | None:
    """Turn one raw topic mapping into a Topic, recording every problem found."""
    if not isinstance(raw, LineDict):
        check.add(
            line,
            f"each topic must be a mapping with 'id', 'questions' and 'answer', not {_kind(raw)}",
        )
        return None
    check.duplicates(raw, "this topic")
    topic_id = check.text(raw, "id", "this topic", required=True)
    what = f"topic '{topic_id}'" if topic_id else "this topic"
    if topic_id is not None and not ID_PATTERN.match(topic_id):
        check.add(
            raw.line_of("id"),
            f"id '{topic_id}' must be 1-40 lowercase letters, digits "
            "or hyphens, starting with a letter or digit (e.g. 'usmle-step1')",
        )
    for key in raw:
        if key not in TOPIC_FIELDS:
            check.add(
                raw.line_of(key),
                f"{what} has an unknown field '{key}'"
                f"{_suggest(key, TOPIC_FIELDS)}; allowed: {', '.join(sorted(TOPIC_FIELDS))}",
            )
    questions = check.text_list(raw, "questions", what, required=True)
    answer = check.text(raw, "answer", what, required=True)
    title = check.text(raw, "title", what)
    category = check.text(raw, "category", what)
    keywords = check.text_list(raw, "keywords", what) or []
    follow_ups = check.text_list(raw, "follow_ups", what) or []
    sources: list[Source] = []
    if "sources" in raw:
        raw_sources = raw["sources"]
        src_line = raw.line_of("sources")
        if not isinstance(raw_sources, list):
            check.add(
                src_line,
                f"'sources' of {what} must be a list of title + url, not {_kind(raw_sources)}",
            )
        else:
            for index, item in enumerate(raw_sources):
                item_line = (
                    raw_sources.line_of(index) if isinstance(raw_sources, LineList) else src_line
                )
                if not isinstance(item, LineDict):
                    check.add(
                        item_line,
                        f"source {index + 1} of {what} must have 'title' and 'url' fields",
                    )
                    continue
                check.duplicates(item, f"source {index + 1} of {what}")
                for key in item:
                    if key not in SOURCE_FIELDS:
                        check.add(
                            item.line_of(key),
                            f"source {index + 1} of {what} has an "
                            f"unknown field '{key}'{_suggest(key, SOURCE_FIELDS)}; "
                            "allowed: title, url",
                        )
                src_title = check.text(
                    item, "title", f"source {index + 1} of {what}", required=True
                )
                url = check.text(item, "url", f"source {index + 1} of {what}", required=True)
                if url is not None and not valid_url(url):
                    check.add(
                        item.line_of("url"),
                        f"'{url}' in {what} is not a valid web "
                        "address; it must start with https:// and name a site",
                    )
                elif src_title and url:
                    sources.append(Source(src_title, url))
    kind = check.text(raw, "kind", what) or "answer"
    if kind not in TOPIC_KINDS:
        check.add(
            raw.line_of("kind"),
            f"'kind' of {what} must be one of: {', '.join(TOPIC_KINDS)} (not '{kind}')"
            f"{_suggest(kind, TOPIC_KINDS)}",
        )
        kind = "answer"
    legal_note = False
    if "legal_note" in raw:
        if isinstance(raw["legal_note"], bool):
            legal_note = raw["legal_note"]
        else:
            check.add(
                raw.line_of("legal_note"),
                f"'legal_note' of {what} must be true or false, not {_kind(raw['legal_note'])}",
            )
    placeholder = PLACEHOLDER.search(answer) if answer is not None else None
    if placeholder is not None:
        check.add(
            raw.line_of("answer"),
            f"the answer of {what} holds a staff placeholder ('{placeholder.group(0)}...'); "
            "write the real text or remove it: users must never see it",
        )
    reviewed: dt.date | None = None
    if "reviewed" in raw:
        reviewed = _parse_date(raw["reviewed"])
        if reviewed is None:
            check.add(
                raw.line_of("reviewed"),
                f"'reviewed' of {what} must be a date written YYYY-MM-DD, e.g. 2026-11-25",
            )
        elif reviewed > today + dt.timedelta(days=1):
            check.add(
                raw.line_of("reviewed"),
                f"'reviewed' of {what} is in the future "
                f"({reviewed}); write the date the answer was actually checked",
            )
    if topic_id is None or questions is None or answer is None or not questions:
        return None
    seen: dict[str, int] = {}
    for text, q_line in questions:
        folded = text.casefold()
        if folded in seen:
            check.add(q_line, f"the question '{text}' is listed twice in {what}; remove one")
        seen[folded] = q_line
    topic = Topic(
        id=topic_id,
        questions=tuple(q for q, _ in questions),
        answer=answer,
        title=title or questions[0][0],
        category=category or DEFAULT_CATEGORY,
        keywords=tuple(k for k, _ in keywords),
        follow_ups=tuple(f for f, _ in follow_ups),
        sources=tuple(sources),
        reviewed=reviewed,
        kind=kind,
        legal_note=legal_note,
        file=check.name,
        line=raw.line,
    )
    limit = TELEGRAM_MESSAGE_LIMIT
    if rendered_length(topic) > limit:
        check.add(
            raw.line_of("answer"),
            f"the answer of {what} is about "
            f"{rendered_length(topic)} characters once rendered, over the {limit} that fit in "
            "one Telegram message; shorten it or split it into topics linked by 'follow_ups'",
        )
    return topic


def _parse_topic_file(data: Any, check: _FileChecker, today: dt.date) -> list[Topic]:
    """Check a topic file's top level and parse its topics."""
    if not isinstance(data, LineDict):
        check.add(
            1,
            "a knowledge file must be a mapping with 'version: 1' and 'topics:'"
            + ("; this one is empty" if data is None else ""),
        )
        return []
    check.duplicates(data, "the file")
    for key in data:
        if key not in {"version", "topics"}:
            check.add(
                data.line_of(key),
                f"unknown top-level field '{key}'"
                f"{_suggest(key, ('version', 'topics'))}; a file holds 'version' and "
                "'topics' only",
            )
    version = data.get("version")
    if "version" not in data:
        check.add(1, "missing 'version: 1' at the top of the file")
    elif version not in SUPPORTED_VERSIONS:
        check.add(data.line_of("version"), f"unsupported version {version!r}; write 'version: 1'")
    raw_topics = data.get("topics")
    if "topics" not in data:
        check.add(1, "missing 'topics:', the list of topics")
        return []
    if not isinstance(raw_topics, LineList):
        check.add(
            data.line_of("topics"),
            f"'topics' must be a list of topics ('- id: ...'), not {_kind(raw_topics)}",
        )
        return []
    topics = []
    for index, raw in enumerate(raw_topics):
        topic = _parse_topic(raw, raw_topics.line_of(index), check, today)
        if topic is not None:
            topics.append(topic)
    return topics


def _parse_synonyms(data: Any, check: _FileChecker) -> list[SynonymGroup]:
    """Parse synonyms.yaml and report duplicates and loops."""
    if not isinstance(data, LineDict):
        check.add(1, "synonyms.yaml must be a mapping with 'version: 1' and 'synonyms:'")
        return []
    check.duplicates(data, "the file")
    for key in data:
        if key not in {"version", "synonyms"}:
            check.add(
                data.line_of(key),
                f"unknown top-level field '{key}' in synonyms.yaml; allowed: version, synonyms",
            )
    if data.get("version") not in SUPPORTED_VERSIONS:
        check.add(data.line_of("version"), "synonyms.yaml needs 'version: 1'")
    raw_groups = data.get("synonyms")
    if not isinstance(raw_groups, LineList):
        check.add(
            data.line_of("synonyms"),
            "'synonyms' must be a list of '- canonical: ...' entries with 'variants: [...]'",
        )
        return []

    groups: list[SynonymGroup] = []
    variant_at: dict[str, tuple[str, int]] = {}
    for index, raw in enumerate(raw_groups):
        line = raw_groups.line_of(index)
        if not isinstance(raw, LineDict):
            check.add(line, "each synonym entry must be a mapping with 'canonical' and 'variants'")
            continue
        check.duplicates(raw, "this synonym entry")
        for key in raw:
            if key not in {"canonical", "variants"}:
                check.add(
                    raw.line_of(key),
                    f"unknown field '{key}' in a synonym entry; allowed: canonical, variants",
                )
        canonical = check.text(raw, "canonical", "this synonym entry", required=True)
        variants = check.text_list(raw, "variants", f"synonym '{canonical}'", required=True)
        if canonical is None or not variants:
            continue
        norm_canonical = normalize(canonical)
        norm_variants = []
        for variant, v_line in variants:
            norm = normalize(variant)
            if not norm:
                check.add(v_line, f"the variant '{variant}' has no letters or digits; remove it")
                continue
            if norm == norm_canonical:
                check.add(
                    v_line, f"the variant '{variant}' is the canonical phrase itself; remove it"
                )
                continue
            if norm in variant_at and variant_at[norm][0] != norm_canonical:
                other, other_line = variant_at[norm]
                check.add(
                    v_line,
                    f"the variant '{variant}' is also a variant of '{other}' "
                    f"(line {other_line}); a phrase can be rewritten to one canonical only",
                )
                continue
            variant_at[norm] = (norm_canonical, v_line)
            norm_variants.append(norm)
        groups.append(SynonymGroup(norm_canonical, tuple(norm_variants), check.name, raw.line))
    # A canonical phrase that is itself a variant makes a chain; a chain that returns is a loop.
    rewrite = {v: c for g in groups for v in g.variants for c in (g.canonical,)}
    for group in groups:
        if group.canonical in rewrite:
            seen = [group.canonical]
            current = rewrite[group.canonical]
            while current in rewrite and current not in seen:
                seen.append(current)
                current = rewrite[current]
            kind = "a loop" if current in seen else "a chain"
            path = " -> ".join([*seen, current])
            check.add(
                group.line,
                f"synonym {kind}: {path}; the canonical phrase "
                f"'{group.canonical}' must not be a variant of another entry",
            )
    return groups


def knowledge_files(path: Path) -> tuple[list[Path], Path | None]:
    """Return the topic files and the synonyms file of a knowledge directory or file."""
    if path.is_file():
        return [path], None
    files = sorted(p for p in path.iterdir() if p.suffix in {".yaml", ".yml"} and p.is_file())
    topics = [p for p in files if p.name not in SPECIAL_FILES]
    synonyms = path / SYNONYMS_FILE
    return topics, synonyms if synonyms.is_file() else None


def display_path(path: Path) -> str:
    """Show a path relative to the working directory when it is inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load_knowledge(
    path: Path | str, *, today: dt.date | None = None
) -> tuple[KnowledgeBase | None, list[Problem]]:
    """Load and validate a knowledge directory (or one topic file).

    Returns the knowledge base and no problems, or ``None`` and every problem found.
    """
    path = Path(path)
    today = today or dt.date.today()
    problems: list[Problem] = []
    if not path.exists():
        return None, [
            Problem(
                str(path),
                0,
                "no such file or directory; check knowledge.path in the config or the --kb option",
            )
        ]
    topic_files, synonyms_file = knowledge_files(path)
    if not topic_files:
        return None, [Problem(display_path(path), 0, "no topic files (*.yaml) found here")]
    topics: list[Topic] = []
    for file in topic_files:
        name = display_path(file)
        check = _FileChecker(name, problems)
        try:
            data = load_yaml(file, name)
        except YamlSyntaxError as exc:
            problems.append(exc.problem)
            continue
        topics.extend(_parse_topic_file(data, check, today))
    synonyms: list[SynonymGroup] = []
    if synonyms_file is not None:
        name = display_path(synonyms_file)
        try:
            raw_synonyms = load_yaml(synonyms_file, name)
            synonyms = _parse_synonyms(raw_synonyms, _FileChecker(name, problems))
        except YamlSyntaxError as exc:
            problems.append(exc.problem)
    problems.extend(_cross_check(topics))
    if problems:
        return None, sorted(problems, key=lambda p: (p.file, p.line))
    return KnowledgeBase.from_topics(topics, synonyms, source_path=str(path)), []


def _cross_check(topics: list[Topic]) -> list[Problem]:
    """Check what spans topics: duplicate ids, shared questions, follow-up targets."""

    problems: list[Problem] = []
    first_at: dict[str, Topic] = {}
    for topic in topics:
        if topic.id in first_at:
            other = first_at[topic.id]
            problems.append(
                Problem(
                    topic.file,
                    topic.line,
                    f"duplicate id '{topic.id}': it is "
                    f"also used at {other.file}:{other.line}; ids must be unique "
                    "across all files, rename one",
                )
            )
        else:
            first_at[topic.id] = topic
    question_owner: dict[str, Topic] = {}
    for topic in topics:
        for question in topic.questions:
            key = normalize(question)
            if not key:
                problems.append(
                    Problem(
                        topic.file,
                        topic.line,
                        f"the question '{question}' of "
                        f"topic '{topic.id}' has no letters or digits",
                    )
                )
                continue
            owner = question_owner.setdefault(key, topic)
            if owner.id != topic.id:
                problems.append(
                    Problem(
                        topic.file,
                        topic.line,
                        f"the question '{question}' of "
                        f"topic '{topic.id}' is also a question of topic "
                        f"'{owner.id}' ({owner.file}:{owner.line}); keep it "
                        "under one topic only",
                    )
                )
    for topic in topics:
        for target in topic.follow_ups:
            if target == topic.id:
                problems.append(
                    Problem(
                        topic.file,
                        topic.line,
                        f"topic '{topic.id}' lists itself in 'follow_ups'; remove it",
                    )
                )
            elif target not in first_at and target != PATHWAY_FOLLOW_UP:
                problems.append(
                    Problem(
                        topic.file,
                        topic.line,
                        f"topic '{topic.id}' has the "
                        f"follow-up '{target}', which is not a topic id"
                        f"{_suggest(target, first_at)}",
                    )
                )
    return problems


def fingerprint(path: Path | str) -> tuple[tuple[str, int, int], ...]:
    """Return a cheap signature (name, size, mtime) of every YAML file under ``path``."""
    path = Path(path)
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in {".yaml", ".yml"})
    else:
        return ()
    result = []
    for file in files:
        try:
            stat = file.stat()
        except OSError:
            continue
        result.append((file.name, stat.st_size, stat.st_mtime_ns))
    return tuple(result)
