"""Writing the knowledge base from Telegram: checked first, atomic, with one step back.

Staff change the live knowledge three ways without a shell: by uploading a YAML
file, by adding a user's question as a phrasing of a topic, and by rolling back the
last upload. Every change goes the same way (:meth:`KnowledgeWriter.write`):

1. the new file is checked *together with* the live knowledge (a copy in a temporary
   directory), by the same loader as ``python -m bot check``; problems come back as
   ``file:line: message`` and nothing is written;
2. the live file's current version is kept in ``<knowledge>/.history/`` (a hidden
   folder the loader never reads), with a record of the change for ``/rollback``;
3. the new text replaces the live file atomically (temporary file, fsync, rename), so
   the bot's reloader sees the old file or the new one, never half of one.

Drafts made from answered tickets (:func:`draft_topic`) are written to a separate
drafts directory and never go live by themselves.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from bot.bundle import Bundle, load_bundle
from bot.knowledge import ID_PATTERN, KnowledgeBase, Topic
from bot.text import STOPWORDS, normalize
from bot.yamlio import LineDict, LineList, Problem, YamlSyntaxError, parse_yaml

HISTORY = ".history"
LAST_CHANGE = "last-change.json"
#: What an uploaded file may be called: a plain YAML file name, no folders.
FILE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,40}\.ya?ml$")
MAX_UPLOAD_BYTES = 1_000_000


class EditError(Exception):
    """A change that cannot be made; the message says why, for staff."""


@dataclass(frozen=True)
class Change:
    """What a write did to the live topics."""

    file: str
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def summary(self, limit: int = 15) -> str:
        """Say in a few lines which topics were added, changed and removed."""
        lines = []
        for label, ids in (("Added", self.added), ("Changed", self.changed),
                           ("Removed", self.removed)):
            if ids:
                shown = ", ".join(ids[:limit]) + (f" and {len(ids) - limit} more"
                                                  if len(ids) > limit else "")
                lines.append(f"{label} ({len(ids)}): {shown}")
        return "\n".join(lines) or "No topic changed (the text of the file did)."


def _comparable(topic: Topic) -> tuple[object, ...]:
    return (topic.questions, topic.answer, topic.title, topic.category, topic.keywords,
            topic.follow_ups, topic.sources, topic.reviewed, topic.kind, topic.legal_note)


def compare(before: KnowledgeBase, after: KnowledgeBase, file: str) -> Change:
    """The topics a change added, changed and removed."""
    old, new = before.by_id, after.by_id
    return Change(
        file,
        added=tuple(i for i in new if i not in old),
        changed=tuple(i for i in new if i in old and _comparable(new[i]) != _comparable(old[i])),
        removed=tuple(i for i in old if i not in new),
    )


def atomic_write(path: Path, content: str) -> None:
    """Replace ``path`` with ``content`` all at once, surviving a crash mid-way."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class KnowledgeWriter:
    """Checks and writes files of one live knowledge directory."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def check(self, name: str, content: str | None) -> tuple[Bundle | None, list[Problem]]:
        """Load the live knowledge with ``name`` replaced by ``content`` (None: removed)."""
        if not self.directory.is_dir():
            raise EditError("the knowledge path is not a directory, so it cannot be edited here")
        with tempfile.TemporaryDirectory(prefix="kb-check-") as tmp:
            trial = Path(tmp) / "knowledge"
            trial.mkdir()
            for file in self.directory.iterdir():
                if file.is_file() and file.suffix in (".yaml", ".yml") and file.name != name:
                    shutil.copy2(file, trial / file.name)
            if content is not None:
                (trial / name).write_text(content, encoding="utf-8")
            bundle, problems = load_bundle(trial, learned=False)
            shown = [
                Problem(f"{self.directory.name}/{Path(p.file).name}", p.line, p.message)
                for p in problems
            ]
            return bundle, shown

    def write(
        self, name: str, content: str | None, live: KnowledgeBase, *, by: int, what: str
    ) -> Change | list[Problem]:
        """Check, keep the old version, and write (``None`` removes the file).

        Returns the change, or the problems that stopped it (nothing written then).
        """
        bundle, problems = self.check(name, content)
        if bundle is None:
            return problems
        target = self.directory / name
        history = self.directory / HISTORY
        history.mkdir(exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        previous: str | None = None
        if target.is_file():
            kept = history / f"{name}.{stamp}"
            shutil.copy2(target, kept)
            previous = kept.name
        record = {"file": name, "previous": previous, "at": stamp, "by": by, "what": what}
        if content is None:
            target.unlink(missing_ok=True)
        else:
            atomic_write(target, content)
        atomic_write(history / LAST_CHANGE, json.dumps(record))
        return compare(live, bundle.kb, name)

    def last_change(self) -> Mapping[str, object] | None:
        """The record of the last change written from Telegram, if any."""
        path = self.directory / HISTORY / LAST_CHANGE
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) and record.get("file") else None

    def rollback(self, live: KnowledgeBase, *, by: int) -> Change | list[Problem]:
        """Put back the version the last change replaced (or remove a file it added)."""
        record = self.last_change()
        if record is None:
            raise EditError("there is no change to roll back")
        if record.get("what") == "rollback":
            raise EditError("the last change was already a rollback; upload the file again "
                            "to change it")
        name = str(record["file"])
        previous = record.get("previous")
        content = None
        if previous:
            kept = self.directory / HISTORY / str(previous)
            if not kept.is_file():
                raise EditError(f"the kept version of {name} is missing from {HISTORY}/")
            content = kept.read_text(encoding="utf-8")
        return self.write(name, content, live, by=by, what="rollback")

    # -- adding a phrasing ---------------------------------------------------------------

    def add_question(
        self, topic: Topic, question: str, live: KnowledgeBase, *, by: int
    ) -> Change | list[Problem]:
        """Add ``question`` to ``topic``'s ``questions`` in its file, as a person would."""
        path = Path(topic.file)
        if not path.is_absolute():
            path = Path.cwd() / path
        if path.resolve().parent != self.directory.resolve():
            raise EditError(f"topic '{topic.id}' is not in {self.directory}")
        text = path.read_text(encoding="utf-8")
        return self.write(
            path.name, insert_question(text, topic.id, question, path.name), live, by=by,
            what=f"phrasing for {topic.id}",
        )


def _scalar(value: str) -> str:
    """One YAML double-quoted scalar (JSON's escapes are YAML's)."""
    return json.dumps(" ".join(value.split()), ensure_ascii=False)


def insert_question(text: str, topic_id: str, question: str, name: str) -> str:
    """Return ``text`` with ``question`` appended to topic ``topic_id``'s questions.

    The rest of the file (comments, order, quoting) is left exactly as it was.
    """
    try:
        data = parse_yaml(text, name)
    except YamlSyntaxError as exc:
        raise EditError(str(exc.problem)) from exc
    topics = data.get("topics") if isinstance(data, LineDict) else None
    raw = next(
        (t for t in topics or () if isinstance(t, LineDict) and t.get("id") == topic_id), None
    )
    questions = raw.get("questions") if raw is not None else None
    if raw is None or not isinstance(questions, LineList) or not questions:
        raise EditError(f"topic '{topic_id}' has no list of questions in {name}")
    lines = text.splitlines(keepends=True)
    key_line = raw.line_of("questions")
    if questions.line_of(0) == key_line:  # flow style on the key's line: [a, b]
        line = lines[key_line - 1]
        close = line.rstrip().rfind("]")
        if close < 0:
            raise EditError(f"the questions of '{topic_id}' span several lines in brackets; "
                            "add this one by hand")
        lines[key_line - 1] = line[:close] + ", " + _scalar(question) + line[close:]
        return "".join(lines)
    # Block style: a new "- ..." item after the last one, before the next key.
    item_line = questions.line_of(len(questions) - 1)
    indent = lines[item_line - 1][: len(lines[item_line - 1]) -
                                  len(lines[item_line - 1].lstrip())]
    after = [raw.line_of(k) for k in raw if raw.line_of(k) > item_line]
    insert_at = min(after) - 1 if after else item_line
    if not after:  # the last key of the topic: after the item and its continuation lines
        insert_at = item_line
        while insert_at < len(lines) and lines[insert_at].startswith(indent + " "):
            insert_at += 1
    while insert_at > item_line and not lines[insert_at - 1].strip():
        insert_at -= 1  # keep blank lines before the next key where they were
    new = f"{indent}- {_scalar(question)}\n"
    if insert_at > 0 and not lines[insert_at - 1].endswith("\n"):
        lines[insert_at - 1] += "\n"
    lines.insert(insert_at, new)
    return "".join(lines)


# -- drafts ---------------------------------------------------------------------------------


def suggest_id(question: str, taken: Mapping[str, object]) -> str:
    """A short topic id from the question's words, not used by any live topic."""
    words = [w for w in normalize(question).split() if w not in STOPWORDS and w.isalnum()]
    base = "-".join(words[:5])[:32].strip("-") or "new-topic"
    base = re.sub(r"[^a-z0-9-]", "", base) or "new-topic"
    candidate, number = f"faq-{base}"[:40], 2
    while candidate in taken or not ID_PATTERN.match(candidate):
        candidate = f"faq-{base}"[:36] + f"-{number}"
        number += 1
    return candidate


def draft_topic(
    ticket: Mapping[str, object], taken: Mapping[str, object], today: dt.date
) -> tuple[str, str]:
    """A topic file made from an answered ticket: (suggested id, YAML text).

    The source is left empty on purpose: the checker lists it as a problem until staff
    name the official page the answer rests on.
    """
    question = " ".join(str(ticket["question"]).split())
    topic_id = suggest_id(question, taken)
    topic = {
        "id": topic_id,
        "title": question[:60].rstrip(" ?") or topic_id,
        "questions": [question],
        "answer": str(ticket["answer"]).strip(),
        "sources": [{"title": "Name of the official page", "url": ""}],
        "reviewed": today,
    }
    body = yaml.safe_dump(
        {"version": 1, "topics": [topic]}, sort_keys=False, allow_unicode=True, width=88
    )
    header = (
        f"# Draft from ticket #{ticket['id']}: check every fact on the official page, put\n"
        "# that page in sources (title and url), add a few more ways people ask it under\n"
        "# questions, then send this file to the bot in the staff chat to put it live.\n"
    )
    return topic_id, header + body
