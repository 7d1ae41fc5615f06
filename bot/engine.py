"""The conversation engine: user input in, :class:`~bot.reply.Reply` out.

Front ends (the Telegram handlers, the terminal chat) call one method per input:
a command, a free-text message or a button action. The engine reads the serving
knowledge bundle from a :class:`~bot.bundle.KnowledgeHolder`, decides with the
matcher, remembers through the :class:`~bot.store.Store`, and walks the guided
pathway (:mod:`bot.guide`). Inputs of one user are handled one at a time, so a
double press or two updates arriving together cannot interleave. Nothing here
imports Telegram.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import unicodedata
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot import actions as act
from bot import reminders as rem
from bot import views
from bot.bundle import Bundle, KnowledgeHolder
from bot.calendar import format_day
from bot.clock import Clock, SystemClock, today
from bot.config import MatchingSettings
from bot.guide import Guide
from bot.knowledge import Topic
from bot.matching import Decision, MatchResult, Thresholds
from bot.pathway import Status
from bot.reply import Attachment, Button, Reply, Span, bold, italic, text
from bot.smalltalk import REPLIES, looks_non_english, small_talk
from bot.staff import Staff, ticket_ref
from bot.store import Store

logger = logging.getLogger(__name__)

#: Characters of a message that are looked at; a longer one is cut (and logged cut).
MAX_QUESTION_CHARS = 1000
#: Questions up to this long (and already in NFKC form) are understood on the event loop.
INLINE_MAX_CHARS = 200
#: How long the bot waits for the "what were you looking for?" answer.
AWAIT_TTL = dt.timedelta(minutes=15)
PAGE_SIZE = 8

AWAIT_COMMENT = "comment:"
AWAIT_HANDOFF = "handoff"
AWAIT_ANSWER = "answer:"
ENGLISH_NOTE = "(I answer in English, the language of the official sources.)"

EXAMPLES = (
    "What OET score do I need?",
    "Is Step 2 CS still required?",
    "How do I register for USMLE now?",
    "What is the NRMP Match?",
)


@dataclass(frozen=True)
class User:
    """Who sent the input, as far as the engine needs to know."""

    id: int
    first_name: str | None = None
    chat_id: int | None = None  # where the input came from; None means the private chat

    @property
    def chat(self) -> int:
        """The chat the input came from (a private chat's id is the user's id)."""
        return self.id if self.chat_id is None else self.chat_id


def thresholds_from(settings: MatchingSettings) -> Thresholds:
    """Turn the config's matching section into matcher thresholds."""
    return Thresholds(
        answer=settings.answer,
        suggest=settings.suggest,
        margin=settings.margin,
        max_suggestions=settings.max_suggestions,
    )


@dataclass(frozen=True)
class Understood:
    """What a free-text message is: small talk, or a match and the status it leads to."""

    status: str  # answer | ambiguous | fallback | decline | smalltalk
    result: MatchResult
    topic: Topic | None  # the first candidate's topic, when there is one
    small_talk: str | None = None  # the small-talk intent, for status "smalltalk"


def understand(bundle: Bundle, thresholds: Thresholds, question: str) -> Understood:
    """Tell what a message is; the one place that turns a match into a status.

    Small talk is recognised before matching; a decline topic matched (directly or first
    in a choice) means the question is outside what the bot covers.
    """
    intent = small_talk(question.strip())
    if intent is not None:
        return Understood("smalltalk", MatchResult(Decision.FALLBACK, ()), None, intent)
    result = bundle.matcher.match(question[:MAX_QUESTION_CHARS], thresholds)
    best = result.best
    topic = bundle.kb.by_id.get(best.topic_id) if best else None
    if topic is None or result.decision is Decision.FALLBACK:
        return Understood(str(Decision.FALLBACK), result, topic)
    return Understood("decline" if topic.is_decline else str(result.decision), result, topic)


def answer_record(
    bundle: Bundle, settings: MatchingSettings, question: str, day: dt.date | None = None
) -> dict[str, Any]:
    """Answer one question as the ``ask --json`` contract describes (dates as of ``day``)."""
    seen = understand(bundle, thresholds_from(settings), question)
    day = day or dt.datetime.now(dt.UTC).date()
    result, topic = seen.result, seen.topic
    best = result.best
    fallback = seen.status in ("fallback", "smalltalk")
    return {
        "status": seen.status,
        "topic": None if fallback or topic is None else topic.id,
        "score": round(best.score, 2) if best else 0.0,
        "text": "" if fallback or topic is None else bundle.calendar.render(topic.answer, day),
        "candidates": [
            {"topic": c.topic_id, "title": c.title, "score": round(c.score, 2)}
            for c in result.candidates
        ],
    }


class Engine:
    """Decides what to answer; one instance serves every user."""

    def __init__(
        self,
        holder: KnowledgeHolder,
        store: Store,
        matching: MatchingSettings,
        clock: Clock | None = None,
        staff: Staff | None = None,
    ) -> None:
        self.holder = holder
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.staff = staff or Staff(store, holder, self.clock)
        self.thresholds = thresholds_from(matching)
        self.guide = Guide(store, self.clock)
        self._locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()

    @property
    def bundle(self) -> Bundle:
        """Return the knowledge bundle serving right now."""
        return self.holder.bundle

    def _lock(self, user_id: int) -> asyncio.Lock:
        """Return the lock that serialises one user's inputs."""
        lock = self._locks.get(user_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[user_id] = lock
        return lock

    # -- commands ------------------------------------------------------------------------

    async def start(self, user: User, payload: str | None = None) -> Reply:
        """Welcome the user, or open the topic or pathway a deep link names."""
        async with self._lock(user.id):
            await self._clear_awaiting(user)
            payload = (payload or "").strip().lower()
            if payload in ("pathway", "progress"):
                return await self._pathway_or_progress(user, payload)
            if payload:
                topic = self.bundle.kb.by_id.get(payload)
                if topic is not None:
                    return self.topic_reply(topic)
            return self.welcome(user, unknown_link=bool(payload))

    def welcome(self, user: User, *, unknown_link: bool = False) -> Reply:
        """Return the welcome message with the main menu."""
        name = f", {user.first_name}" if user.first_name else ""
        intro = (
            "That link points to a topic I no longer have, so here is the main menu.\n\n"
            if unknown_link
            else ""
        )
        return Reply(
            text(
                intro,
                bold(f"Hi{name}! I'm IMG Guide."),
                "\nI help international medical graduates on the road to a US residency: "
                "ECFMG certification, USMLE, ERAS and the NRMP Match, SOAP, and J-1/H-1B visas. "
                "I also answer quick questions for prospective medical students.\n\n"
                "• Type any question in your own words, e.g. "
                f"“{EXAMPLES[0]}”\n"
                "• Browse topics by area\n"
                "• Follow the step-by-step pathway: I remember where you are, even months "
                "later\n\n",
                italic(
                    "Every answer names its official source and review date. I'm not an "
                    "official ECFMG/Intealth service, and official pages always win."
                ),
            ),
            buttons=self.main_menu(),
            kind="welcome",
        )

    @staticmethod
    def main_menu() -> tuple[tuple[Button, ...], ...]:
        """Return the main menu buttons."""
        return (
            (
                Button("❓ Ask a question", act.Menu("ask")),
                Button("📚 Browse topics", act.Menu("topics")),
            ),
            (
                Button("🧭 My pathway", act.Menu("pathway")),
                Button("ℹ️ Help", act.Menu("help")),
            ),
        )

    def help(self) -> Reply:
        """Explain what the bot can do and its commands."""
        return Reply(
            text(
                bold("How to use IMG Guide"),
                "\n\nJust type your question, in your own words. Short is fine: "
                "“oet score”, “j1 waiver”, “step 3 eligibility”.\n\n",
                bold("Commands"),
                "\n/topics: browse topics by area\n"
                "/pathway: start or resume your step-by-step pathway\n"
                "/progress: see and change the status of every step\n"
                "/dates: the next key dates of the Match season\n"
                "/reminders: turn deadline reminders on or off\n"
                "/about: what this bot is and where its answers come from\n"
                "/mydata: everything I store about you\n"
                "/reset: clear your pathway progress\n"
                "/forget: delete everything I store about you\n"
                "/skip: skip a question I asked you\n"
                + ("/human: ask a person from the team\n" if self.staff.handoff else "")
                + "\n",
                italic("If I don't know something, I say so and note it for the team."),
            ),
            buttons=self.main_menu(),
            kind="help",
        )

    def about(self) -> Reply:
        """Say what the bot is, where answers come from and how current they are."""
        kb = self.bundle.kb
        return Reply(
            text(
                bold("About IMG Guide"),
                "\n\nIMG Guide is an independent assistant for international medical "
                "graduates. It is ",
                bold("not"),
                " an official service of ECFMG, Intealth, FSMB, the NRMP, the AAMC or any "
                "government.\n\n"
                f"Its {len(kb.topics)} answers are written by our team from the official pages "
                "of ECFMG/Intealth, USMLE/FSMB, the NRMP, the AAMC (ERAS), the US State "
                "Department and USCIS. Each answer links its sources and shows when it was "
                "last reviewed.\n\n"
                f"Content last reviewed: {views.format_date(kb.last_reviewed)}.\n\n",
                italic(
                    "Rules change every season. When an official page says something different, "
                    "the official page is right. Nothing here is legal or immigration advice."
                ),
            ),
            buttons=((Button("📚 Browse topics", act.Menu("topics")),),),
            kind="about",
        )

    def ask_prompt(self) -> Reply:
        """Invite the user to type a question."""
        examples = "\n".join(f"• {e}" for e in EXAMPLES)
        return Reply(
            text("Type your question in your own words. For example:\n", examples),
            kind="ask",
        )

    def unknown_command(self) -> Reply:
        """Answer a command the bot does not have."""
        return Reply(text("I don't know that command. /help lists what I can do, or just "
                          "type your question."), kind="unknown_command")

    def text_only(self) -> Reply:
        """Answer a photo, voice note or sticker."""
        return Reply(text("I can only read text. Please type your question in words."),
                     kind="text_only")

    def private_only(self) -> Reply:
        """Decline a personal command in a group chat."""
        return Reply(text("That command works in a private chat with me, so your data stays "
                          "yours. Open a chat with me and send it there."), kind="private_only")

    # -- browsing ------------------------------------------------------------------------

    def browse(self, category_slug: str = "", page: int = 0, *, edit: bool = False) -> Reply:
        """List categories, or the topics of one category, a page at a time."""
        kb = self.bundle.kb
        if not category_slug:
            areas = tuple(
                (Button(f"{name} ({len(kb.in_category(name))})", act.Browse(act.slug(name))),)
                for name in kb.categories
            )
            return Reply(
                text(bold("Browse topics"), "\nPick an area:"), areas, kind="categories", edit=edit
            )
        category = next((c for c in kb.categories if act.slug(c) == category_slug), None)
        if category is None:
            return Reply(
                text(
                    "That list has changed since this message was sent. Here are the "
                    "current areas:"
                ),
                self.browse(edit=False).buttons,
                kind="categories",
                edit=edit,
            )
        topics = kb.in_category(category)
        pages = max(1, -(-len(topics) // PAGE_SIZE))
        page = min(max(page, 0), pages - 1)
        shown = topics[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
        rows: list[tuple[Button, ...]] = [(Button(t.title, act.OpenTopic(t.id)),) for t in shown]
        nav: list[Button] = []
        if page > 0:
            nav.append(Button("« Previous", act.Browse(category_slug, page - 1)))
        if page < pages - 1:
            nav.append(Button("Next »", act.Browse(category_slug, page + 1)))
        if nav:
            rows.append(tuple(nav))
        rows.append((Button("⬅ All areas", act.Browse()),))
        suffix = f" (page {page + 1} of {pages})" if pages > 1 else ""
        return Reply(
            text(bold(category), f"{suffix}\nPick a topic:"), tuple(rows), kind="topics", edit=edit
        )

    # -- answering -----------------------------------------------------------------------

    @property
    def today(self) -> dt.date:
        """The current (UTC) day, from the engine's clock."""
        return today(self.clock)

    def topic_reply(self, topic: Topic, *, intro: str = "", personal: str = "") -> Reply:
        """Render one topic with its sources, review date and related topics."""
        return views.topic_reply(
            self.bundle, topic, intro=intro, today=self.today, personal=personal
        )

    async def _personal_line(self, user: User, topic: Topic) -> str:
        """One line on the user's own step, when the topic explains a step they recorded.

        Only in a private chat (progress is personal), and only where a status is
        recorded: "You marked “USMLE Step 2 CK” as done." plus the next date that
        concerns the step while it is unfinished.
        """
        pathway = self.bundle.pathway
        if pathway is None or user.chat != user.id:
            return ""
        steps = [s for s in pathway.steps.values() if topic.id in s.topics]
        if not steps:
            return ""
        state = await self.store.get_user(user.id)
        live = pathway.live_statuses(state.statuses)
        for step in steps:
            status = live.get(step.id)
            if status is None or status is Status.NOT_STARTED:
                continue
            line = f"📍 Your pathway: you marked “{step.title}” as {status.word}."
            if not status.finished:
                event = self.bundle.calendar.next_for_steps([step.id], self.today)
                if event is not None:
                    line += f" Next date: {event.title}, {event.describe(self.today)}."
            return line
        return ""

    async def handle_text(self, user: User, message: str, reply_to: str | None = None) -> Reply:
        """Answer a free-text message (or take it as the answer the bot asked for).

        ``reply_to`` is the text of the bot's message this one replies to, if any: an
        admin replying to a ticket answers that ticket.
        """
        async with self._lock(user.id):
            cleaned = message.strip()
            ticket = ticket_ref(reply_to) if reply_to and cleaned else None
            if ticket is not None and self.staff.is_admin(user.id):
                relayed = await self.staff.answer(user.id, user.first_name, ticket, cleaned)
                if relayed is not None:
                    await self._clear_awaiting(user)
                    return relayed
            if not cleaned:
                return Reply(
                    text(
                        "I didn't catch any text. Type your question in words, for example: “",
                        EXAMPLES[1],
                        "”",
                    ),
                    kind="empty",
                )
            awaiting, since = await self.store.awaiting(user.id)
            pending = self._pending_here(user, awaiting)
            if pending and self._awaiting_fresh(since):
                return await self._take_awaited(user, pending, cleaned)
            return await self._answer(user, cleaned)

    async def _answer(self, user: User, question: str) -> Reply:
        """Understand a message and turn what it is into a reply."""
        question = question[:MAX_QUESTION_CHARS]
        seen = await self._understand(question)
        result, topic = seen.result, seen.topic
        best = result.best
        outcome = seen.small_talk if seen.small_talk == "my_step" else seen.status
        self.store.record_asked(user.id, outcome, topic.id if topic is not None else None)
        if seen.small_talk == "my_step":  # "what should I do next?": from their progress
            return await self._my_step(user)
        if seen.small_talk is not None:  # a kind word back, and nothing logged for staff
            return Reply(
                text(REPLIES[seen.small_talk]),
                ((Button("📚 Browse topics", act.Menu("topics")),),),
                kind="smalltalk",
            )
        if seen.status == "decline" and topic is not None:
            return self.topic_reply(topic)  # outside what the bot covers: said, not logged
        if seen.status == "answer" and topic is not None:
            note = ENGLISH_NOTE if looks_non_english(question) else ""
            return self.topic_reply(
                topic, intro=note, personal=await self._personal_line(user, topic)
            )
        if seen.status == "ambiguous" and best:
            return await self._did_you_mean(user, question, result)
        question_id = await self.store.log_question(
            user.id,
            question,
            "fallback",
            best.topic_id if best else None,
            best.score if best else None,
        )
        return self._fallback_reply(question_id if user.chat == user.id else None)

    async def _did_you_mean(self, user: User, question: str, result: MatchResult) -> Reply:
        """Offer the closest topics, and a way to say none of them fits."""
        kb = self.bundle.kb
        offered = [
            c
            for c in result.candidates[: self.thresholds.max_suggestions]
            if c.topic_id in kb.by_id
        ]
        best = result.best
        question_id = await self.store.log_question(
            user.id,
            question,
            "ambiguous",
            best.topic_id if best else None,
            best.score if best else None,
        )
        rows = tuple(
            (Button(kb.by_id[c.topic_id].title, act.OpenTopic(c.topic_id)),) for c in offered
        )
        rows += ((Button("None of these", act.NoneOfThese(question_id)),),)
        return Reply(
            text("I'm not sure which of these you mean. Did you mean:"), rows, kind="ambiguous"
        )

    def _fallback_reply(self, question_id: int | None = None) -> Reply:
        """Say honestly that there is no answer yet, and offer a way on (a person, too)."""
        person = self.staff.handoff_row(question_id) if question_id is not None else ()
        offer = (
            " If you'd like a person to answer, press “Ask the team”." if person else ""
        )
        return Reply(
            text(
                "I don't have an answer for that yet, sorry. I've noted your question so "
                "the team can add one.\n\n"
                "You could try again with a key term (like “OET”, “Step 2 CK”, “ERAS” or "
                f"“J-1 waiver”), or browse the topics I know.{offer}",
            ),
            tuple(row for row in (person, (Button("📚 Browse topics", act.Menu("topics")),))
                  if row),
            kind="fallback",
        )

    async def staff_command(
        self, user: User, name: str, args: Sequence[str] = ()
    ) -> Reply | None:
        """An admin command (/tickets, /unanswered, /feedback, /rollback, /stats [N]).

        The admin list is checked now, at the moment of use; a non-admin gets None and
        the front end answers as it does for any unknown command.
        """
        staff = self.staff
        if not staff.may_work(user.id, user.chat):
            return None
        if name == "tickets":
            return await staff.tickets(user.id)
        if name == "unanswered":
            return await staff.unanswered(user.id, user.chat)
        if name == "feedback":
            return await staff.feedback(user.id)
        if name == "rollback":
            return await staff.rollback(user.id)
        if name == "stats":
            days = int(args[0]) if args and args[0].isdigit() and len(args[0]) < 6 else 30
            return await staff.stats(user.id, days)
        return None

    async def upload(self, user: User, filename: str, content: bytes) -> Reply | None:
        """An admin's knowledge file; None when the sender is not an admin (or not here)."""
        if not self.staff.may_work(user.id, user.chat):
            return None
        return await self.staff.upload(user.id, filename, content)

    async def human(self, user: User) -> Reply:
        """/human: the next message goes to the team as a ticket."""
        async with self._lock(user.id):
            if user.chat != user.id:
                return self.private_only()
            if not self.staff.handoff:
                return Reply(text("Passing questions to a person isn't set up here, sorry. "
                                  "Ask me, or browse the topics."),
                             ((Button("📚 Browse topics", act.Menu("topics")),),), kind="info")
            await self.store.set_awaiting(user.id, self._pending(user, AWAIT_HANDOFF))
            return Reply(
                text("Write your question for the team in one message (up to 1,000 "
                     "characters). A person will answer here. (Send /skip to cancel.)"),
                kind="ask_handoff",
            )

    async def _guesses(self, question: str) -> list[str]:
        """The bot's best topics for a question, for the team to see with the ticket."""
        seen = await self._understand(question)
        return [c.topic_id for c in seen.result.candidates[:3]]

    async def _handoff(self, user: User, question_id: int) -> Reply:
        """Pass a logged question of this user to the team."""
        row = await self.store.question(question_id)
        if row is None or int(row["user_id"]) != user.id or user.chat != user.id:
            return self.stale()
        question = str(row["text"])
        return await self.staff.open_ticket(
            user.id, user.first_name, question, await self._guesses(question)
        )

    # -- the "what were you looking for?" dialogue ----------------------------------------

    @staticmethod
    def _pending(user: User, what: str) -> str:
        """Tie a question to the user to the chat it was asked in."""
        return f"{user.chat}|{what}"

    @staticmethod
    def _pending_here(user: User, awaiting: str | None) -> str | None:
        """Return what the bot is waiting for from the user in this chat, if anything.

        A question asked in a group is answered in that group: the user's next private
        message is a question of its own, not the comment asked for elsewhere.
        """
        if not awaiting:
            return None
        chat, sep, what = awaiting.partition("|")
        if not sep:  # written before pending questions carried their chat: a private one
            return awaiting if user.chat == user.id else None
        return what if chat == str(user.chat) else None

    @staticmethod
    def _awaiting_fresh(since: str | None) -> bool:
        """Tell whether a pending question to the user is recent enough to still apply."""
        if not since:
            return False
        try:
            asked = dt.datetime.fromisoformat(since)
        except ValueError:
            return False
        return dt.datetime.now(dt.UTC) - asked <= AWAIT_TTL

    async def _understand(self, question: str) -> Understood:
        """Understand a question without holding up other users' messages.

        The matcher bounds its own work (see :meth:`Matcher.analyse`). A short question
        that normalisation cannot lengthen costs at most a few milliseconds (the worst
        constructed one about 4 ms, ``benchmarks/hostile.py``): it is understood here, which
        is cheaper than a hop to a worker thread. Anything longer goes to a worker thread,
        so that even its bounded work stays off the event loop that serves everyone.
        """
        if len(question) <= INLINE_MAX_CHARS and unicodedata.is_normalized("NFKC", question):
            return understand(self.bundle, self.thresholds, question)
        return await asyncio.to_thread(understand, self.bundle, self.thresholds, question)

    async def _take_awaited(self, user: User, awaiting: str, message: str) -> Reply:
        """Handle the text the bot asked for, instead of treating it as a question."""
        await self.store.set_awaiting(user.id, None)
        if awaiting.startswith(AWAIT_ANSWER) and awaiting[len(AWAIT_ANSWER):].isdigit():
            ticket = int(awaiting[len(AWAIT_ANSWER):])
            relayed = await self.staff.answer(user.id, user.first_name, ticket, message)
            if relayed is not None:
                return relayed
        if awaiting == AWAIT_HANDOFF:
            return await self.staff.open_ticket(
                user.id, user.first_name, message, await self._guesses(message)
            )
        if awaiting.startswith(AWAIT_COMMENT):
            topic_id = awaiting.removeprefix(AWAIT_COMMENT)
            await self.store.add_feedback_comment(user.id, topic_id, message[:MAX_QUESTION_CHARS])
            seen = await self._understand(message)
            thanks = "Thank you, I've passed that on to the team."
            if seen.status == "answer" and seen.topic is not None and seen.topic.id != topic_id:
                return self.topic_reply(
                    seen.topic,
                    intro=thanks + " This may be closer to what you need:",
                )
            return Reply(
                text(thanks + " You can ask another question any time."),
                ((Button("📚 Browse topics", act.Menu("topics")),),),
                kind="thanks",
            )
        return await self._answer(user, message)

    async def _clear_awaiting(self, user: User) -> None:
        """Drop a pending question to the user, if any."""
        awaiting, _ = await self.store.awaiting(user.id)
        if awaiting:
            await self.store.set_awaiting(user.id, None)

    async def skip(self, user: User) -> Reply:
        """Skip the question the bot asked the user."""
        async with self._lock(user.id):
            awaiting, _ = await self.store.awaiting(user.id)
            if not self._pending_here(user, awaiting):
                return Reply(text("There's nothing to skip. Ask me anything!"), kind="info")
            await self.store.set_awaiting(user.id, None)
            return Reply(text("Skipped. Ask me anything!"), kind="info")

    # -- buttons -------------------------------------------------------------------------

    async def handle_action(self, user: User, action: act.Action | None) -> Reply:
        """Carry out a button press; stale or forged data gets a polite answer."""
        if action is None:
            return self.stale()
        async with self._lock(user.id):
            return await self._dispatch(user, action)

    def stale(self, what: str = "That button") -> Reply:
        """Answer a button the bot no longer understands."""
        return Reply(
            text(
                f"{what} is from an older version of this chat and no longer works. "
                "Here is the main menu:"
            ),
            self.main_menu(),
            kind="stale",
            notice="That button has expired.",
        )

    async def _dispatch(self, user: User, action: act.Action) -> Reply:
        """Route one decoded action."""
        kb = self.bundle.kb
        match action:
            case act.OpenTopic(topic_id):
                topic = kb.by_id.get(topic_id)
                return self.topic_reply(topic) if topic else self.stale("That topic link")
            case act.Browse(category, page):
                return self.browse(category, page, edit=True)
            case act.Feedback(topic_id, helpful):
                if topic_id not in kb.by_id:
                    return self.stale()
                await self.store.record_feedback(user.id, topic_id, helpful)
                if helpful:
                    return Reply(kind="feedback", notice="Thanks! Glad it helped.")
                pending = self._pending(user, AWAIT_COMMENT + topic_id)
                await self.store.set_awaiting(user.id, pending)
                return Reply(
                    text(
                        "Sorry it didn't help. In one message, what were you looking for? "
                        "I'll pass it on to the team. (Send /skip to skip.)"
                    ),
                    kind="ask_comment",
                    notice="Thanks for telling us.",
                )
            case act.NoneOfThese(question_id):
                marked = await self.store.mark_none_of_these(user.id, question_id)
                if not marked:
                    return Reply(kind="info", notice="Already noted, thank you.")
                person = self.staff.handoff_row(question_id) if user.chat == user.id else ()
                return Reply(
                    text(
                        "Thanks for telling me. I've noted your question so the team can "
                        "add an answer. Meanwhile, try other words, or browse"
                        + (", or ask a person:" if person else ":")
                    ),
                    tuple(r for r in (person, (Button("📚 Browse topics", act.Menu("topics")),))
                          if r),
                    kind="none_of_these",
                    notice="Passed on to the team.",
                )
            case act.Menu(name):
                return await self._menu(user, name)
            case act.Confirm(what, yes):
                return await self._confirm(user, what, yes)
            case act.Remind(kind, on):
                return await self._set_reminder(user, kind, on)
            case act.Handoff(question_id):
                return await self._handoff(user, question_id)
            case act.Ticket(verb, ticket_id):
                done = await self.staff.ticket_action(user.id, user.first_name, verb, ticket_id)
                if done is None:
                    return self.stale()
                if done.kind == "ticket_prompt":  # their next message here is the answer
                    pending = self._pending(user, f"{AWAIT_ANSWER}{ticket_id}")
                    await self.store.set_awaiting(user.id, pending)
                return done
            case act.AddPhrasing(question_id, topic_id):
                added = await self.staff.add_phrasing(user.id, question_id, topic_id)
                return added if added is not None else self.stale()
            case act.Ignore(question_id):
                ignored = await self.staff.ignore(user.id, question_id)
                return ignored if ignored is not None else self.stale()
            case act.PathChoose() | act.PathNav() | act.SetStatus():
                bundle = self.bundle
                if bundle.pathway is None:
                    return self._no_pathway()
                return await self.guide.act(user.id, bundle, action)

    async def _menu(self, user: User, name: str) -> Reply:
        """Open a main-menu entry."""
        if name == "ask":
            return self.ask_prompt()
        if name == "help":
            return self.help()
        if name == "about":
            return self.about()
        if name == "topics":
            return self.browse()
        if name in ("pathway", "progress"):
            return await self._pathway_or_progress(user, name)
        if name == "dates":
            return self.dates()
        if name == "reminders":
            return await self._reminders(user)
        return self.welcome(user)

    # -- the season calendar and reminders ---------------------------------------------

    def dates(self, limit: int = 8) -> Reply:
        """The next key dates of the season calendar, each with its source."""
        calendar = self.bundle.calendar
        day = self.today
        upcoming = calendar.upcoming(day, limit)
        spans: list[str | Span] = [bold("Key dates"), f" (as of {format_day(day)})\n\n"]
        if not calendar.events:
            spans.append("I have no dates in my calendar yet.\n")
        elif not upcoming:
            spans.append("No upcoming date in my calendar has been published yet.\n")
        for event in upcoming:
            spans += [
                "• ",
                bold(event.title),
                f": {event.when()} ({event.relative(day)})",
                "" if event.confirmed else ", not yet confirmed",
                " · ",
                views.source_link(event),
                "\n",
            ]
        missing = calendar.stale(day)
        if missing:
            spans.append(
                "\nNot in my calendar yet for a later season (the last date I have; check "
                "the official page):\n"
            )
            for event in missing[:10]:
                note = "" if event.confirmed else ", not confirmed"
                spans += [
                    f"• {event.title}: {event.when()} ({event.season} Match{note}) · ",
                    views.source_link(event),
                    "\n",
                ]
        spans.append(
            italic("\nDates change: the official page always wins. /reminders can remind you.")
        )
        return Reply(
            text(*spans),
            ((Button("🔔 Reminders", act.Menu("reminders")),),),
            kind="dates",
        )

    async def reminders(self, user: User) -> Reply:
        """Show the user's reminder switches."""
        async with self._lock(user.id):
            return await self._reminders(user)

    async def _reminders(self, user: User) -> Reply:
        if user.chat != user.id:
            return self.private_only()
        return rem.settings_reply(await self.store.reminder_settings(user.id))

    async def _set_reminder(self, user: User, kind: str, on: bool) -> Reply:
        """Flip one reminder switch and show the switches again."""
        if user.chat != user.id:
            return self.private_only()
        await self.store.set_reminders(user.id, user.id, kind, on)
        label = rem.KIND_LABELS[kind].split(" (")[0]
        note = f"{label}: reminders {'on' if on else 'off'}."
        if on and kind == "deadlines":
            note += " They follow your /progress: mark steps done and I stop reminding you."
        reply = rem.settings_reply(await self.store.reminder_settings(user.id), edit=True)
        return Reply(reply.spans, reply.buttons, kind=reply.kind, edit=True, notice=note)

    async def my_step(self, user: User) -> Reply:
        """Where the user stands: current step, what is next, and its next date."""
        async with self._lock(user.id):
            return await self._my_step(user)

    async def _my_step(self, user: User) -> Reply:
        pathway = self.bundle.pathway
        if pathway is None:
            return self._no_pathway()
        if user.chat != user.id:
            return self.private_only()
        state = await self.store.get_user(user.id)
        live = pathway.live_statuses(state.statuses)
        todo = pathway.next_to_do(state.statuses, state.choices)
        if not live:
            return Reply(
                text(
                    "You haven't recorded any steps yet, so I don't know where you are. The "
                    "step-by-step pathway asks one question per step and remembers your "
                    "answers; then I can tell you what is next and which dates concern you."
                ),
                ((Button("🧭 Start the pathway", act.Menu("pathway")),),),
                kind="my_step",
            )
        if todo is None:
            return Reply(
                text("Every step on your road is marked done. Congratulations! "
                     "/progress lists them all."),
                ((Button("📋 My progress", act.Menu("progress")),),),
                kind="my_step",
            )
        step = pathway.steps[todo]
        done = sum(1 for status in live.values() if status.finished)
        status = live.get(todo, Status.NOT_STARTED)
        spans: list[str | Span] = [
            bold("Where you are"),
            f"\n\nYou have finished {done} step{'s' if done != 1 else ''}. Next to do: ",
            bold(step.title),
            f" ({status.word}).\n",
        ]
        event = self.bundle.calendar.next_for_steps([todo], self.today)
        if event is None:  # a date further along the road still helps to plan
            road = pathway.route(state.statuses, state.choices)
            ahead = road[road.index(todo) + 1 :] if todo in road else ()
            event = self.bundle.calendar.next_for_steps(
                [s for s in ahead if not live.get(s, Status.NOT_STARTED).finished], self.today
            )
        if event is not None:
            spans += ["\n📅 Next date that concerns you: ", bold(event.title), ", ",
                      event.describe(self.today), ". "]
            spans += [italic("Source: "), views.source_link(event), "\n"]
        return Reply(
            text(*spans),
            (
                (Button(f"▶ {step.title}", act.PathNav("go", todo)),),
                (
                    Button("📋 My progress", act.Menu("progress")),
                    Button("🔔 Reminders", act.Menu("reminders")),
                ),
            ),
            kind="my_step",
        )

    # -- pathway and personal data -------------------------------------------------------

    def _no_pathway(self) -> Reply:
        """Say that no pathway is configured."""
        return Reply(
            text(
                "The step-by-step pathway isn't available right now. You can "
                "still ask questions or browse topics."
            ),
            kind="info",
        )

    async def _pathway_or_progress(self, user: User, which: str) -> Reply:
        """Open the pathway at the user's step, or their progress overview."""
        bundle = self.bundle
        if bundle.pathway is None:
            return self._no_pathway()
        if which == "progress":
            return await self.guide.progress(user.id, bundle)
        return await self.guide.resume(user.id, bundle)

    async def pathway(self, user: User) -> Reply:
        """Start, or resume at the user's current step."""
        async with self._lock(user.id):
            return await self._pathway_or_progress(user, "pathway")

    async def progress(self, user: User) -> Reply:
        """Show every step with its status and what to do next."""
        async with self._lock(user.id):
            return await self._pathway_or_progress(user, "progress")

    async def reset(self, user: User) -> Reply:
        """Ask for confirmation before clearing pathway progress."""
        return Reply(
            text(
                "This clears your pathway progress (every step's status and where you are). "
                "Your logged questions and feedback are kept (they are deleted automatically "
                "after the retention period; /forget deletes everything now). Clear it?"
            ),
            (
                (
                    Button("Yes, clear my progress", act.Confirm("reset", True)),
                    Button("Cancel", act.Confirm("reset", False)),
                ),
            ),
            kind="confirm",
        )

    async def forget(self, user: User) -> Reply:
        """Ask for confirmation before deleting everything about the user."""
        return Reply(
            text(
                "This permanently deletes everything I store about you: your pathway "
                "progress and its history, the questions you asked that I logged, your "
                "feedback and your reminders. It cannot be undone. Delete it all?"
            ),
            (
                (
                    Button("Yes, delete everything", act.Confirm("forget", True)),
                    Button("Cancel", act.Confirm("forget", False)),
                ),
            ),
            kind="confirm",
        )

    async def _confirm(self, user: User, what: str, yes: bool) -> Reply:
        """Carry out (or cancel) a confirmed reset or forget."""
        if not yes:
            return Reply(text("Cancelled. Nothing was changed."), kind="cancelled", edit=True)
        if what == "reset":
            await self.store.reset_progress(user.id)
            return Reply(
                text("Done: your pathway progress is cleared. Send /pathway to start again."),
                kind="reset",
                edit=True,
            )
        await self.store.forget(user.id)
        return Reply(
            text(
                "Done: everything I stored about you is deleted. If you write "
                "again, I start from a blank page."
            ),
            kind="forgotten",
            edit=True,
        )

    async def mydata(self, user: User) -> Reply:
        """Send the user everything stored about them, readable and as JSON."""
        async with self._lock(user.id):
            data = await self.store.export(user.id)
            pathway = self.bundle.pathway
            lines = [f"User id: {user.id}"]
            statuses = data["pathway"]["statuses"]
            current = data["pathway"]["current_step"]
            if statuses or current:
                lines.append("\nPathway progress:")
                for step_id, status in statuses.items():
                    step = pathway.step(step_id) if pathway else None
                    title = step.title if step else step_id
                    lines.append(f"• {title}: {status.replace('_', ' ')}")
                if current:
                    step = pathway.step(current) if pathway else None
                    lines.append(f"Current step: {step.title if step else current}")
                lines.append(f"Status changes recorded: {len(data['pathway']['history'])}")
            else:
                lines.append("\nPathway progress: none")
            lines.append(f"\nLogged questions: {len(data['questions'])}")
            for row in data["questions"][-10:]:
                lines.append(
                    f"• {row['asked_at'][:10]} ({row['status'].replace('_', ' ')}): "
                    f"{_short(row['text'])}"
                )
            lines.append(f"\nFeedback given: {len(data['feedback'])}")
            for row in data["feedback"][-10:]:
                verdict = "helpful" if row["helpful"] else "not helpful"
                lines.append(f"• {row['topic_id']}: {verdict}")
            lines.append(
                f"\nMessages counted for statistics (what I did with them, not their text): "
                f"{len(data['message_outcomes'])}"
            )
            if data["tickets"]:
                lines.append(f"\nQuestions sent to the team: {len(data['tickets'])}")
                for row in data["tickets"][-5:]:
                    lines.append(f"• #{row['id']} ({row['state']}): {_short(row['question'])}")
            reminders = data["reminders"]
            settings = reminders["settings"] or {}
            kinds = [k for k in ("deadlines", "milestones") if settings.get(k)]
            lines.append(
                f"\nReminders: {', '.join(kinds) if kinds else 'off'}"
                f" ({len(reminders['planned'])} planned or sent)"
            )
            lines.append("\nThe attached file holds all of it. /forget deletes it all.")
            payload = json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")
            return Reply(
                text(bold("Your data"), "\n\n" + "\n".join(lines)),
                kind="mydata",
                attachment=Attachment(
                    f"img-guide-data-{user.id}.json",
                    payload,
                    "Everything IMG Guide stores about you (JSON)",
                ),
            )


def _short(value: str, limit: int = 80) -> str:
    """Shorten a text for a one-line listing."""
    flat = " ".join(value.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


__all__: Sequence[str] = ("Engine", "User", "answer_record", "thresholds_from")
