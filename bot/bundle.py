"""The loaded knowledge: topics, their matcher index and the pathway, swapped as one.

:func:`load_bundle` reads and validates a knowledge directory once and builds the
matcher index. :class:`KnowledgeHolder` keeps the bundle that is serving and
replaces it atomically (one reference assignment) on a successful reload; a broken
edit never replaces a good bundle. Nothing here knows Telegram or SQL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bot.calendar import Calendar, load_calendar, references
from bot.knowledge import (
    CALENDAR_FILE,
    PATHWAY_FILE,
    KnowledgeBase,
    display_path,
    fingerprint,
    load_knowledge,
)
from bot.matching import Matcher
from bot.pathway import Pathway, load_pathway
from bot.yamlio import Problem

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Bundle:
    """Everything answering needs, built together so it is always consistent."""

    kb: KnowledgeBase
    matcher: Matcher
    pathway: Pathway | None
    loaded_at: float
    calendar: Calendar = field(default_factory=Calendar)


def load_bundle(
    path: Path | str, *, with_pathway: bool = True, learned: bool = True
) -> tuple[Bundle | None, list[Problem]]:
    """Load topics, synonyms and (if present) the pathway; return a bundle or the problems.

    ``learned=False`` skips training the learned model (seconds): the bot then answers
    with the lexical matcher at once, and :meth:`KnowledgeHolder.learn` adds the model.
    """
    path = Path(path)
    kb, problems = load_knowledge(path)
    pathway: Pathway | None = None
    pathway_file = path / PATHWAY_FILE if path.is_dir() else None
    if with_pathway and pathway_file is not None and pathway_file.is_file():
        topic_ids = set(kb.by_id) if kb is not None else None
        pathway, pathway_problems = load_pathway(
            pathway_file, topic_ids, display_path(pathway_file)
        )
        problems = problems + pathway_problems
    calendar = Calendar()
    calendar_file = path / CALENDAR_FILE if path.is_dir() else None
    if calendar_file is not None and calendar_file.is_file():
        step_ids = set(pathway.steps) if pathway is not None else None
        loaded, calendar_problems = load_calendar(
            calendar_file, step_ids, display_path(calendar_file)
        )
        problems = problems + calendar_problems
        calendar = loaded or calendar
    if kb is not None and (calendar.events or not problems):
        pathway_name = display_path(pathway_file) if pathway_file is not None else ""
        problems = problems + _missing_events(kb, pathway, pathway_name, calendar)
    if kb is None or problems:
        return None, sorted(problems, key=lambda p: (p.file, p.line))
    matcher = Matcher.build(kb, learned=learned)
    return Bundle(kb, matcher, pathway, time.time(), calendar), []


def _missing_events(
    kb: KnowledgeBase, pathway: Pathway | None, pathway_name: str, calendar: Calendar
) -> list[Problem]:
    """Report answers (and pathway texts) that name an event the calendar lacks."""
    problems = []
    texts = [(t.file, t.line, f"topic '{t.id}'", t.answer) for t in kb.topics]
    if pathway is not None:
        texts += [
            (pathway_name, s.line, f"step '{s.id}'", s.explain) for s in pathway.steps.values()
        ]
    for file, line, what, text in texts:
        for name in references(text):
            if not calendar.known(name):
                problems.append(
                    Problem(
                        file,
                        line,
                        f"{what} names the event '{{{{{name}}}}}', which is not in "
                        f"{CALENDAR_FILE}; write an event id or series from that file",
                    )
                )
    return problems


ReloadListener = Callable[[Sequence[Problem]], Awaitable[None]]


class KnowledgeHolder:
    """Holds the serving bundle and reloads it when the knowledge files change."""

    def __init__(self, path: Path | str, bundle: Bundle) -> None:
        self.path = Path(path)
        self._bundle = bundle
        self._fingerprint = fingerprint(self.path)
        self._failed_fingerprint: tuple[tuple[str, int, int], ...] | None = None
        self._learning: threading.Thread | None = None

    @property
    def bundle(self) -> Bundle:
        """Return the bundle serving right now."""
        return self._bundle

    def reload_if_changed(self) -> tuple[bool, list[Problem]]:
        """Reload when the files changed; return (reloaded, problems of a failed reload).

        A failed reload is reported once per distinct broken state of the files.
        """
        current = fingerprint(self.path)
        if current == self._fingerprint or current == self._failed_fingerprint:
            return False, []
        bundle, problems = load_bundle(self.path, learned=False)
        if bundle is None:
            self._failed_fingerprint = current
            logger.error(
                "knowledge reload failed; still serving the previous version:\n%s",
                "\n".join(str(p) for p in problems),
            )
            return False, problems
        self._bundle = bundle  # the atomic swap: readers see the old or the new, never a mix
        self._fingerprint = current
        self._failed_fingerprint = None
        logger.info("knowledge reloaded: %d topics", len(bundle.kb.topics))
        return True, []

    def learn(self) -> bool:
        """Add the learned model to the serving bundle until it has one; tell if it did.

        Training takes seconds, so a new knowledge base serves with the lexical matcher
        first and this swaps in the full one when ready. A reload during training wins;
        the loop then trains again for the newer bundle.
        """
        added = False
        while not (bundle := self._bundle).matcher.learned:
            matcher = bundle.matcher.with_learned()
            if self._bundle is bundle:
                self._bundle = dataclasses.replace(bundle, matcher=matcher)
                logger.info("learned model in service")
                added = True
        return added

    def keep_learned(self) -> threading.Thread | None:
        """Start training in the background if the serving bundle lacks the model.

        At most one training runs at a time; call it again whenever the bundle may have
        changed (the watcher does, on every poll). The thread is a daemon: a stopping
        bot does not wait for a training nobody will use. Returns the running thread.
        """
        if self.training is None and not self._bundle.matcher.learned:
            self._learning = threading.Thread(target=self.learn, name="learn", daemon=True)
            self._learning.start()
        return self.training

    @property
    def training(self) -> threading.Thread | None:
        """The training in progress, if any."""
        running = self._learning
        return running if running is not None and running.is_alive() else None

    async def watch(self, interval: float, on_failure: ReloadListener) -> None:
        """Poll the knowledge files every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                # Loading is CPU work of tens of milliseconds; keep it off the event loop.
                _, problems = await asyncio.to_thread(self.reload_if_changed)
                self.keep_learned()  # in the background: the next edit is seen meanwhile
            except Exception:
                logger.exception("knowledge watcher failed; will try again")
                continue
            if problems:
                try:
                    await on_failure(problems)
                except Exception:
                    logger.exception("could not report the failed reload")
