"""The guided pathway: the road to a US residency as a state machine read from YAML.

``knowledge/pathway.yaml`` (edited by staff) lists named steps; each step asks one
question whose choices record a :class:`Status` for that step and name the next
step (or :data:`END`). :func:`load_pathway` reads and checks the file once and
returns a frozen :class:`Pathway`, or every problem as ``file:line: message``
with a remedy. Everything else here is pure: the engine asks the pathway where a
choice leads (:meth:`Pathway.choose`), where Back goes (:meth:`Pathway.previous`),
where a returning user stands after staff renamed or removed a step
(:meth:`Pathway.resolve`) and what to do next (:meth:`Pathway.next_to_do`); the
store keeps statuses as the text of :class:`Status` values, keyed by step id.
:func:`to_mermaid` draws the machine (``knowledge/pathway.mmd``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

from bot.yamlio import LineDict, LineList, Problem, YamlSyntaxError, load_yaml

#: The pseudo step id a choice names to finish the road.
END = "end"
SUPPORTED_VERSIONS = frozenset({1})
#: Step and choice ids go into Telegram callback data (64 bytes), so keep them short.
MAX_ID_LENGTH = 24
#: Titles and labels are shown on buttons.
MAX_TITLE_LENGTH = 40
MAX_LABEL_LENGTH = 30
MAX_EXPLAIN_LENGTH = 600
MAX_QUESTION_LENGTH = 300
ID_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")

TOP_FIELDS = ("version", "start", "steps")
STEP_FIELDS = ("id", "title", "explain", "question", "choices", "topics", "formerly", "notes")
CHOICE_FIELDS = ("id", "label", "status", "next")


class Status(StrEnum):
    """Where a user stands on one step; stored as its text value."""

    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    NOT_APPLICABLE = "not_applicable"
    BLOCKED = "blocked"

    @property
    def symbol(self) -> str:
        """Return the emoji shown for this status."""
        return _STATUS_SYMBOLS[self]

    @property
    def word(self) -> str:
        """Return the status in plain words."""
        return _STATUS_WORDS[self]

    @property
    def label(self) -> str:
        """Return the symbol and the words together, e.g. ``✅ done``."""
        return f"{self.symbol} {self.word}"

    @property
    def finished(self) -> bool:
        """Return True when the step needs nothing more from the user."""
        return self in (Status.DONE, Status.NOT_APPLICABLE)


_STATUS_SYMBOLS = {
    Status.NOT_STARTED: "⬜",
    Status.IN_PROGRESS: "⏳",
    Status.DONE: "✅",
    Status.NOT_APPLICABLE: "➖",
    Status.BLOCKED: "⛔",
}
_STATUS_WORDS = {
    Status.NOT_STARTED: "not started",
    Status.IN_PROGRESS: "in progress",
    Status.DONE: "done",
    Status.NOT_APPLICABLE: "not applicable",
    Status.BLOCKED: "blocked",
}
STATUS_VALUES = tuple(s.value for s in Status)


def parse_status(value: object) -> Status | None:
    """Return the Status for stored text, or None if it is not a known status."""
    if isinstance(value, Status):
        return value
    if isinstance(value, str):
        try:
            return Status(value.strip())
        except ValueError:
            return None
    return None


@dataclass(frozen=True)
class Choice:
    """One answer to a step's question: the status it records and where it leads."""

    id: str
    label: str
    status: Status
    next: str


@dataclass(frozen=True)
class Step:
    """One stop on the road, with its question, choices and explaining topics."""

    id: str
    title: str
    explain: str
    question: str
    choices: tuple[Choice, ...]
    topics: tuple[str, ...] = ()
    formerly: tuple[str, ...] = ()
    line: int = 0

    def choice(self, choice_id: str) -> Choice | None:
        """Return the choice with this id, or None."""
        for choice in self.choices:
            if choice.id == choice_id:
                return choice
        return None


@dataclass(frozen=True)
class Transition:
    """The result of pressing a choice: the status to record and the step to show next."""

    step_id: str
    choice_id: str
    status: Status
    next: str

    @property
    def is_end(self) -> bool:
        """Return True when the choice finishes the road."""
        return self.next == END


@dataclass(frozen=True)
class Pathway:
    """The whole road: steps by id (read-only), their file order and the first step."""

    start: str
    steps: Mapping[str, Step] = field(hash=False)
    order: tuple[str, ...]

    @classmethod
    def from_steps(cls, start: str, steps: Iterable[Step]) -> Pathway:
        """Build a pathway from steps in file order; the result is immutable."""
        step_tuple = tuple(steps)
        return cls(
            start=start,
            steps=MappingProxyType({s.id: s for s in step_tuple}),
            order=tuple(s.id for s in step_tuple),
        )

    def step(self, step_id: str) -> Step | None:
        """Return the step with this id, or None (also for END and old ids)."""
        return self.steps.get(step_id)

    def renamed(self) -> dict[str, str]:
        """Return the map from old step ids (``formerly``) to the live step ids."""
        return {old: s.id for s in self.steps.values() for old in s.formerly}

    def live_id(self, step_id: str) -> str | None:
        """Return the live id for a step id or an old (renamed) one, else None."""
        if step_id in self.steps:
            return step_id
        return self.renamed().get(step_id)

    def choose(self, step_id: str, choice_id: str) -> Transition | None:
        """Return where a choice leads, or None for a stale or forged step or choice id."""
        step = self.steps.get(step_id)
        if step is None:
            return None
        choice = step.choice(choice_id)
        if choice is None:
            return None
        return Transition(step.id, choice.id, choice.status, choice.next)

    def skip(self, step_id: str) -> str | None:
        """Return where Skip leads from a step (the main road: its first choice), else None."""
        step = self.steps.get(step_id)
        return step.choices[0].next if step is not None else None

    def previous(self, history: Sequence[str]) -> tuple[str, tuple[str, ...]] | None:
        """Return Back's step and the history to keep (visited ids, oldest first), or None."""
        # history ends with the current step; renamed ids are followed, removed ones dropped.
        if not history:
            return None
        current = self.live_id(history[-1])
        live: list[str] = []
        for step_id in history[:-1]:
            live_id = self.live_id(step_id)
            if live_id is not None and (not live or live[-1] != live_id):
                live.append(live_id)
        while live and live[-1] == current:
            live.pop()
        if not live:
            return None
        return live[-1], tuple(live)

    def live_statuses(self, statuses: Mapping[str, str]) -> dict[str, Status]:
        """Return statuses keyed by live step ids: renamed ids followed, unknown ones dropped."""
        renamed = self.renamed()
        live: dict[str, Status] = {}
        for step_id, value in statuses.items():
            status = parse_status(value)
            if status is None:
                continue
            if step_id in self.steps:
                live[step_id] = status
            elif step_id in renamed:
                live.setdefault(renamed[step_id], status)
        return live

    def route(
        self, statuses: Mapping[str, str], choices: Mapping[str, str] | None = None
    ) -> tuple[str, ...]:
        """Return the steps the user's answers lead through, from the start, in order."""
        # At each step follow the user's last choice there (``choices``: step id -> choice
        # id) if the engine knows it; else a choice recording the step's status, preferring
        # one leading to a step already answered (the branch taken); else the main road.
        live = self.live_statuses(statuses)
        renamed = self.renamed()
        picked: dict[str, str] = {}
        for step_id, choice_id in (choices or {}).items():
            key = step_id if step_id in self.steps else renamed.get(step_id)
            if key is not None:
                picked.setdefault(key, choice_id)
        road: list[str] = []
        current = self.start
        while current != END and current in self.steps and current not in road:
            road.append(current)
            current = self._followed(self.steps[current], live, picked).next
        return tuple(road)

    def _followed(
        self, step: Step, live: Mapping[str, Status], picked: Mapping[str, str]
    ) -> Choice:
        """Return the choice a walk follows out of ``step``."""
        if step.id in picked:
            choice = step.choice(picked[step.id])
            if choice is not None:
                return choice
        status = live.get(step.id)
        if status is not None:
            matching = [c for c in step.choices if c.status == status]
            for choice in matching:
                if choice.next in live:
                    return choice
            if matching:
                return matching[0]
        return step.choices[0]

    def progress_steps(
        self, statuses: Mapping[str, str], choices: Mapping[str, str] | None = None
    ) -> tuple[str, ...]:
        """Return the steps /progress lists, in file order: the user's road and any answered."""
        shown = set(self.route(statuses, choices)) | set(self.live_statuses(statuses))
        return tuple(step_id for step_id in self.order if step_id in shown)

    def next_to_do(
        self, statuses: Mapping[str, str], choices: Mapping[str, str] | None = None
    ) -> str | None:
        """Return the first step on the user's road that is not done, or None if all are."""
        live = self.live_statuses(statuses)
        for step_id in self.route(statuses, choices):
            status = live.get(step_id)
            if status is None or not status.finished:
                return step_id
        return None

    def resolve(self, step_id: str | None, statuses: Mapping[str, str]) -> tuple[str, str | None]:
        """Return where a returning user stands (a live step or END) and a note if moved."""
        # A renamed step is found through `formerly`; for a removed step (or none yet) the
        # nearest valid step is the next one to do on the user's road, else the start.
        if step_id == END or (step_id is not None and step_id in self.steps):
            return step_id, None
        if step_id is not None:
            new_id = self.renamed().get(step_id)
            if new_id is not None:
                title = self.steps[new_id].title
                return new_id, f"The step you were on is now called “{title}”."
        target = self.next_to_do(statuses) or self.start
        if step_id is None:
            return target, None
        title = self.steps[target].title
        return target, (
            f"The step you were on has been removed from the guide, so you are now at "
            f"“{title}”. Your other answers are kept."
        )


# --- loading and checking -------------------------------------------------------------


def load_pathway(
    path: Path,
    topic_ids: Collection[str] | None = None,
    display_name: str | None = None,
) -> tuple[Pathway | None, list[Problem]]:
    """Load and check pathway.yaml; return the pathway, or None and every problem found."""
    # topic_ids: the knowledge base's ids that steps may link to (None skips that check).
    name = display_name or str(path)
    if not path.is_file():
        return None, [
            Problem(name, 1, "the pathway file is missing; restore it from version control")
        ]
    try:
        data = load_yaml(path, name)
    except YamlSyntaxError as exc:
        return None, [exc.problem]
    except OSError as exc:
        return None, [Problem(name, 1, f"cannot read the file ({exc.strerror})")]
    return _Checker(name, topic_ids).check(data)


def _kind(value: object) -> str:
    """Name a YAML value's type the way staff see it."""
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return f"true/false ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _suggest(word: str, options: Iterable[str]) -> str:
    """Return ' Did you mean X?' for a close option, or ''."""
    close = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


@dataclass
class _Edge:
    """One choice's ``next``, remembered with its line for the graph checks."""

    where: str
    target: str
    line: int


class _Checker:
    """Turn parsed YAML into a Pathway, collecting every problem on the way."""

    def __init__(self, filename: str, topic_ids: Collection[str] | None) -> None:
        self.file = filename
        self.topic_ids = None if topic_ids is None else frozenset(topic_ids)
        self.problems: list[Problem] = []
        self.edges: dict[str, list[_Edge]] = {}

    def add(self, line: int, message: str) -> None:
        """Record one problem."""
        self.problems.append(Problem(self.file, line, message))

    def check(self, data: Any) -> tuple[Pathway | None, list[Problem]]:
        """Check the whole file and build the pathway if nothing is wrong."""
        if data is None:
            self.add(1, "the file is empty; it needs `version: 1`, `start:` and `steps:`")
            return None, self.problems
        if not isinstance(data, LineDict):
            self.add(1, "the file must be a mapping with `version: 1`, `start:` and `steps:`")
            return None, self.problems
        self._fields(data, TOP_FIELDS, "the file")
        self._version(data)
        steps = self._steps(data)
        start = self._start(data, steps)
        self._references(steps)
        self._graph(start, steps)
        if self.problems or start is None:
            return None, sorted(self.problems, key=lambda p: p.line)
        return Pathway.from_steps(start, steps.values()), []

    # -- small field helpers -----------------------------------------------------------

    def _fields(self, mapping: LineDict, allowed: Sequence[str], where: str) -> None:
        """Report unknown and duplicated keys of one mapping."""
        for key in mapping:
            if key not in allowed:
                self.add(
                    mapping.line_of(key),
                    f"unknown field `{key}` in {where}.{_suggest(key, allowed)} "
                    f"Allowed fields: {', '.join(allowed)}.",
                )
        for key, line in mapping.duplicates:
            self.add(line, f"`{key}` appears twice in {where}; keep only one")

    def _text(
        self, mapping: LineDict, key: str, where: str, max_length: int | None = None
    ) -> str | None:
        """Return a required non-empty text field, or None after reporting why not."""
        if key not in mapping:
            self.add(mapping.line, f"{where} has no `{key}`; add `{key}: ...`")
            return None
        value = mapping[key]
        line = mapping.line_of(key)
        if not isinstance(value, str):
            self.add(
                line,
                f"`{key}` in {where} must be text, not {_kind(value)}; "
                f'put it in quotes, e.g. {key}: "..."',
            )
            return None
        value = value.strip()
        if not value:
            self.add(line, f"`{key}` in {where} is empty; write it")
            return None
        if max_length is not None and len(value) > max_length:
            self.add(
                line,
                f"`{key}` in {where} is {len(value)} characters, more than the {max_length} "
                "that fit; shorten it",
            )
        return value

    def _ident(self, mapping: LineDict, key: str, where: str) -> str | None:
        """Return a required id field, checking its spelling and length."""
        value = self._text(mapping, key, where)
        if value is None:
            return None
        return value if self._id_ok(value, mapping.line_of(key), f"`{key}` in {where}") else None

    def _id_ok(self, value: str, line: int, what: str) -> bool:
        """Report an id that is badly spelt or too long for button data."""
        if not ID_PATTERN.match(value):
            self.add(
                line,
                f"{what} is '{value}'; use lowercase letters, digits and single hyphens "
                "(e.g. usmle-step1)",
            )
            return False
        if len(value) > MAX_ID_LENGTH:
            self.add(
                line,
                f"{what} '{value}' is {len(value)} characters; ids must be at most "
                f"{MAX_ID_LENGTH} (they go into button data): shorten it",
            )
            return False
        return True

    def _id_list(self, mapping: LineDict, key: str, where: str) -> list[tuple[str, int]]:
        """Return an optional list of ids with their lines, reporting bad items."""
        if key not in mapping:
            return []
        value = mapping[key]
        line = mapping.line_of(key)
        if value is None:
            return []
        if not isinstance(value, LineList):
            self.add(line, f"`{key}` in {where} must be a list, e.g. {key}: [some-id]")
            return []
        items: list[tuple[str, int]] = []
        seen: set[str] = set()
        for index, item in enumerate(value):
            item_line = value.line_of(index)
            if not isinstance(item, str):
                self.add(item_line, f"`{key}` in {where} lists {_kind(item)}; list ids only")
                continue
            if item in seen:
                self.add(item_line, f"`{key}` in {where} lists '{item}' twice; keep one")
                continue
            seen.add(item)
            items.append((item, item_line))
        return items

    # -- the top level -----------------------------------------------------------------

    def _version(self, data: LineDict) -> None:
        """Check ``version``."""
        if "version" not in data:
            self.add(data.line, "the file has no `version`; add `version: 1` at the top")
        elif data["version"] not in SUPPORTED_VERSIONS or isinstance(data["version"], bool):
            self.add(
                data.line_of("version"),
                f"unsupported `version: {data['version']}`; this bot reads `version: 1`",
            )

    def _start(self, data: LineDict, steps: Mapping[str, Step]) -> str | None:
        """Check ``start`` and return it if it names a step."""
        start = self._ident(data, "start", "the file")
        if start is None:
            return None
        if start not in steps:
            self.add(
                data.line_of("start"),
                f"`start: {start}` names no step.{self._hint(start, steps)} "
                "Set it to the id of the first step.",
            )
            return None
        return start

    def _steps(self, data: LineDict) -> dict[str, Step]:
        """Check ``steps`` and return the steps by id, in file order."""
        steps: dict[str, Step] = {}
        if "steps" not in data:
            self.add(data.line, "the file has no `steps:`; add the list of steps")
            return steps
        raw_steps = data["steps"]
        if not isinstance(raw_steps, LineList) or not raw_steps:
            self.add(data.line_of("steps"), "`steps` must be a non-empty list of steps")
            return steps
        for index, raw in enumerate(raw_steps):
            line = raw_steps.line_of(index)
            if not isinstance(raw, LineDict):
                self.add(line, f"step {index + 1} must be a mapping with `id:`, `title:`, ...")
                continue
            step = self._step(raw, index)
            if step is None:
                continue
            if step.id in steps:
                self.add(
                    step.line,
                    f"duplicate step id '{step.id}' (first at line {steps[step.id].line}); "
                    "every step needs its own id: rename one",
                )
                continue
            steps[step.id] = step
        return steps

    def _step(self, raw: LineDict, index: int) -> Step | None:
        """Check one step; return it (possibly with blanks) if it has a usable id."""
        step_id = self._ident(raw, "id", f"step {index + 1}")
        where = f"step '{step_id}'" if step_id else f"step {index + 1}"
        self._fields(raw, STEP_FIELDS, where)
        title = self._text(raw, "title", where, MAX_TITLE_LENGTH)
        explain = self._text(raw, "explain", where, MAX_EXPLAIN_LENGTH)
        question = self._text(raw, "question", where, MAX_QUESTION_LENGTH)
        topics = self._id_list(raw, "topics", where)
        if self.topic_ids is not None:
            for topic, line in topics:
                if topic not in self.topic_ids:
                    self.add(
                        line,
                        f"{where} links to unknown topic '{topic}'."
                        f"{_suggest(topic, self.topic_ids)} Use the `id:` of a topic in "
                        "the knowledge files, or remove the link.",
                    )
        formerly = self._id_list(raw, "formerly", where)
        for old, line in formerly:
            if old == END or not ID_PATTERN.match(old):
                self.add(line, f"`formerly` in {where} lists '{old}', which is not a step id")
        choices = self._choices(raw, where, step_id)
        if step_id is None:
            return None
        return Step(
            id=step_id,
            title=title or "",
            explain=explain or "",
            question=question or "",
            choices=tuple(choices),
            topics=tuple(t for t, _ in topics),
            formerly=tuple(f for f, _ in formerly),
            line=raw.line,
        )

    def _choices(self, raw: LineDict, where: str, step_id: str | None) -> list[Choice]:
        """Check a step's choices and remember where each leads."""
        if "choices" not in raw:
            self.add(raw.line, f"{where} has no `choices:`; add at least one choice")
            return []
        raw_choices = raw["choices"]
        if not isinstance(raw_choices, LineList) or not raw_choices:
            self.add(
                raw.line_of("choices"),
                f"`choices` in {where} must be a non-empty list of choices "
                "(each with id, label, status and next)",
            )
            return []
        choices: list[Choice] = []
        first_line: dict[str, int] = {}
        label_line: dict[str, int] = {}
        for index, item in enumerate(raw_choices):
            line = raw_choices.line_of(index)
            if not isinstance(item, LineDict):
                self.add(line, f"choice {index + 1} of {where} must be a mapping with `id:`, ...")
                continue
            choice_id = self._ident(item, "id", f"choice {index + 1} of {where}")
            cwhere = (
                f"choice '{choice_id}' of {where}"
                if choice_id
                else f"choice {index + 1} of {where}"
            )
            self._fields(item, CHOICE_FIELDS, cwhere)
            label = self._text(item, "label", cwhere, MAX_LABEL_LENGTH)
            status = self._status(item, cwhere)
            target = self._ident(item, "next", cwhere)
            if choice_id is not None:
                if choice_id in first_line:
                    self.add(
                        item.line_of("id"),
                        f"duplicate choice id '{choice_id}' in {where} (first at line "
                        f"{first_line[choice_id]}); rename one",
                    )
                    continue
                first_line[choice_id] = item.line_of("id")
            if label is not None:
                if label.casefold() in label_line:
                    self.add(
                        item.line_of("label"),
                        f"two choices of {where} read '{label}' (first at line "
                        f"{label_line[label.casefold()]}); users cannot tell them apart",
                    )
                label_line.setdefault(label.casefold(), item.line_of("label"))
            if step_id is not None:  # a broken `next` (reported) is kept as "" for the graph
                self.edges.setdefault(step_id, []).append(
                    _Edge(cwhere, target or "", item.line_of("next"))
                )
            if choice_id is not None:
                choices.append(
                    Choice(choice_id, label or "", status or Status.NOT_STARTED, target or "")
                )
        return choices

    def _status(self, item: LineDict, where: str) -> Status | None:
        """Return a choice's status, reporting a missing or unknown one."""
        if "status" not in item:
            self.add(
                item.line, f"{where} has no `status:`; add one of: {', '.join(STATUS_VALUES)}"
            )
            return None
        value = item["status"]
        status = parse_status(value)
        if status is None:
            hint = _suggest(value, STATUS_VALUES) if isinstance(value, str) else ""
            self.add(
                item.line_of("status"),
                f"unknown status '{value}' in {where}.{hint} "
                f"Use one of: {', '.join(STATUS_VALUES)}.",
            )
        return status

    # -- cross references and the graph ------------------------------------------------

    def _hint(self, target: str, steps: Mapping[str, Step]) -> str:
        """Explain an unknown step id: an old (renamed) id, or a near miss."""
        for step in steps.values():
            if target in step.formerly:
                return f" '{target}' is the old id of step '{step.id}'; use '{step.id}'."
        return _suggest(target, [*steps, END])

    def _references(self, steps: Mapping[str, Step]) -> None:
        """Check ``next`` targets and ``formerly`` ids against the live steps."""
        for edges in self.edges.values():
            for edge in edges:
                if edge.target and edge.target != END and edge.target not in steps:
                    self.add(
                        edge.line,
                        f"`next: {edge.target}` in {edge.where} names no step."
                        f"{self._hint(edge.target, steps)} Use a step id from this file "
                        f"or `{END}`.",
                    )
        claimed: dict[str, Step] = {}
        for step in steps.values():
            for old in step.formerly:
                if old in steps:
                    self.add(
                        step.line,
                        f"step '{step.id}' lists '{old}' under `formerly`, but '{old}' is a "
                        f"live step (line {steps[old].line}); users on it would have two "
                        "places: remove it from `formerly` or rename the live step",
                    )
                elif old in claimed:
                    self.add(
                        step.line,
                        f"step '{step.id}' lists '{old}' under `formerly`, and so does step "
                        f"'{claimed[old].id}' (line {claimed[old].line}); keep it in one",
                    )
                else:
                    claimed[old] = step

    def _graph(self, start: str | None, steps: Mapping[str, Step]) -> None:
        """Report steps that cannot be reached from start, or from which END is unreachable."""
        targets = {
            sid: [
                e.target for e in self.edges.get(sid, []) if e.target in steps or e.target == END
            ]
            for sid in steps
        }
        reached = {start} if start is not None else set(steps)
        queue = [start] if start is not None else []
        while queue:
            for target in targets[queue.pop()]:
                if target != END and target not in reached:
                    reached.add(target)
                    queue.append(target)
        # A broken `next` is reported already; treat it as a way out to avoid a cascade.
        leads_out = {
            sid
            for sid in steps
            if END in targets[sid]
            or len(targets[sid]) < len(self.edges.get(sid, []))
            or not steps[sid].choices
        }
        changed = True
        while changed:
            changed = False
            for sid in steps:
                if sid not in leads_out and any(t in leads_out for t in targets[sid]):
                    leads_out.add(sid)
                    changed = True
        for sid, step in steps.items():
            if sid not in reached:
                self.add(
                    step.line,
                    f"step '{sid}' cannot be reached from `start: {start}`: no choice leads "
                    "to it. Point a choice's `next` to it, or remove it (and list its id "
                    "under another step's `formerly` so users standing on it are moved)",
                )
            if sid not in leads_out:
                self.add(
                    step.line,
                    f"step '{sid}' has no way out: no path from it reaches `{END}`, so users "
                    f"would go round in circles. Give one of its choices `next: {END}` or a "
                    "step that leads on",
                )


# --- the diagram ----------------------------------------------------------------------

_MERMAID_RESERVED = frozenset(
    [
        "end",
        "graph",
        "subgraph",
        "flowchart",
        "style",
        "class",
        "classdef",
        "click",
        "call",
        "href",
        "linkstyle",
        "direction",
        "default",
    ]
)


def _node(step_id: str) -> str:
    """Return a mermaid node id for a step id (or END)."""
    if step_id == END:
        return "END"
    node = step_id.replace("-", "_")
    return f"{node}_" if node in _MERMAID_RESERVED else node


def _quoted(text: str) -> str:
    """Return text as a quoted mermaid label."""
    return '"' + text.replace('"', "#quot;") + '"'


def to_mermaid(p: Pathway) -> str:
    """Draw the pathway as a mermaid ``flowchart TD``; blocked choices are dotted."""
    lines = ["flowchart TD", f"    START([Start]) --> {_node(p.start)}"]
    for sid in p.order:
        lines.append(f"    {_node(sid)}[{_quoted(p.steps[sid].title)}]")
    lines.append("    END([End])")
    for sid in p.order:
        grouped: dict[str, list[Choice]] = {}
        for choice in p.steps[sid].choices:
            grouped.setdefault(choice.next, []).append(choice)
        for target, choices in grouped.items():
            label = " / ".join(c.label for c in choices)
            blocked = all(c.status is Status.BLOCKED for c in choices)
            arrow = "-.->" if blocked else "-->"
            lines.append(f"    {_node(sid)} {arrow}|{_quoted(label)}| {_node(target)}")
    return "\n".join(lines) + "\n"
