"""The staff loop: tickets handed to a person, answers relayed, knowledge edited from Telegram.

A user the bot could not help presses "Ask the team" (or sends /human): their question
becomes a *ticket*, stored in SQLite and sent to the staff chat (``staff.chat_id``)
with the bot's best guesses. An admin answers by replying to that message (or after
pressing Answer, to the prompt the bot sends); the answer reaches the user's chat,
marked as from the team, and the ticket is marked answered. "Add to knowledge base"
turns an answered ticket into a checked topic draft; an admin can upload a YAML file
to change the live knowledge (checked first, atomic, ``/rollback`` undoes it);
``/unanswered`` groups what the bot could not answer and adds a question to a topic in
one tap.

Everything here returns :class:`~bot.reply.Reply` objects and checks the admin list
at the moment of use: a button made for an admin does nothing for anyone else, and a
non-admin gets ``None`` (the engine then answers as for an unknown command).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from bot import actions as act
from bot.bundle import KnowledgeHolder
from bot.clock import Clock, today
from bot.kbedit import (
    FILE_NAME,
    MAX_UPLOAD_BYTES,
    Change,
    EditError,
    KnowledgeWriter,
    atomic_write,
    draft_topic,
)
from bot.matching import Thresholds
from bot.reply import Attachment, Button, Delivery, Reply, Span, bold, italic, text
from bot.store import Store
from bot.yamlio import Problem

logger = logging.getLogger(__name__)

MAX_OPEN_TICKETS = 3
MAX_TICKET_CHARS = 1000
MAX_ANSWER_CHARS = 3500
MAX_PROBLEMS_SHOWN = 20
TICKETS_SHOWN = 10
#: Unanswered questions looked at for triage (the grouping's work is bounded by this).
UNANSWERED_LOOKED_AT = 300
GROUPS_SHOWN = 8
#: How a ticket is named in every staff message; replies are matched by it.
TICKET_REF = re.compile(r"\bTicket #(\d{1,18})\b")


def ticket_ref(message_text: str | None) -> int | None:
    """The ticket a staff message is about, from its text ("Ticket #12"), if any."""
    match = TICKET_REF.search(message_text or "")
    return int(match.group(1)) if match else None


def _short(value: str, limit: int = 90) -> str:
    flat = " ".join(value.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _age(since: str, now: dt.datetime) -> str:
    try:
        seconds = (now - dt.datetime.fromisoformat(since)).total_seconds()
    except ValueError:
        return "?"
    if seconds < 3600:
        return f"{max(int(seconds // 60), 0)} min"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 86400)} d"


def _problems(problems: Sequence[Problem]) -> str:
    shown = [str(p) for p in problems[:MAX_PROBLEMS_SHOWN]]
    more = len(problems) - len(shown)
    return "\n".join(shown) + (f"\n… and {more} more" if more > 0 else "")


class Staff:
    """Tickets, answers and knowledge edits, for the admins in ``admins``."""

    def __init__(
        self,
        store: Store,
        holder: KnowledgeHolder,
        clock: Clock,
        *,
        admins: Collection[int] = (),
        chat_id: int | None = None,
        drafts: Path | str = "data/drafts",
    ) -> None:
        self.store = store
        self.holder = holder
        self.clock = clock
        self.admins = frozenset(admins)
        self.chat_id = chat_id
        self.drafts = Path(drafts)
        self._edit_lock = asyncio.Lock()  # one knowledge change at a time

    @property
    def handoff(self) -> bool:
        """Whether users can hand a question to the team (a staff chat is set)."""
        return self.chat_id is not None

    def is_admin(self, user_id: int) -> bool:
        """Whether ``user_id`` is staff, right now."""
        return user_id in self.admins

    def may_work(self, user_id: int, chat_id: int) -> bool:
        """Whether staff work may be shown here: an admin, in a private or the staff chat.

        An admin in some other group would otherwise show users' questions to it.
        """
        return self.is_admin(user_id) and chat_id in (user_id, self.chat_id)

    def handoff_row(self, question_id: int) -> tuple[Button, ...]:
        """The "Ask the team" button for a logged question, or nothing without a staff chat."""
        return (Button("🙋 Ask the team", act.Handoff(question_id)),) if self.handoff else ()

    # -- tickets, the user's side ------------------------------------------------------

    async def open_ticket(
        self, user_id: int, first_name: str | None, question: str, guesses: Sequence[str]
    ) -> Reply:
        """Turn a question into a ticket for the team; tell the user what to expect."""
        if self.chat_id is None:
            return Reply(text("Passing questions to a person isn't set up here, sorry."),
                         kind="info")
        if await self.store.open_tickets_of(user_id) >= MAX_OPEN_TICKETS:
            return Reply(
                text(
                    f"You already have {MAX_OPEN_TICKETS} questions waiting for the team. "
                    "They will answer those first; you can send a new one after that."
                ),
                kind="ticket_limit",
                notice="The team has your questions already.",
            )
        question = question.strip()[:MAX_TICKET_CHARS]
        ticket_id = await self.store.create_ticket(
            user_id, user_id, first_name, question, guesses
        )
        by_id = self.holder.bundle.kb.by_id
        titles = [by_id[g].title for g in guesses if g in by_id]
        staff_message = Reply(
            text(
                bold(f"🎫 Ticket #{ticket_id}"),
                f" · {first_name or 'a user'}\n\n",
                question,
                "\n\n",
                italic("Bot's best guesses: " + ("; ".join(titles) if titles else "none")),
                "\n\nReply to this message with your answer, or press Answer.",
            ),
            (
                (
                    Button("✍️ Answer", act.Ticket("answer", ticket_id)),
                    Button("✖ Close", act.Ticket("close", ticket_id)),
                ),
            ),
            kind="ticket",
        )
        logger.info("ticket %d opened", ticket_id)
        return Reply(
            text(
                "✅ I've sent your question to the IMG Guide team ",
                italic(f"(ticket #{ticket_id})"),
                ". A person will answer here, in this chat, usually within a few days. "
                "Meanwhile you can keep asking me anything.",
            ),
            kind="ticket_sent",
            notice="Sent to the team.",
            deliveries=(Delivery(self.chat_id, staff_message),),
        )

    # -- tickets, the staff side -------------------------------------------------------

    async def ticket_action(self, user_id: int, name: str | None, verb: str,
                            ticket_id: int) -> Reply | None:
        """Answer (prompt), close, or draft a topic from one ticket; None for non-admins."""
        if not self.is_admin(user_id):
            return None
        ticket = await self.store.ticket(ticket_id)
        if ticket is None:
            return self._gone(ticket_id)
        if verb == "close":
            closed = await self.store.close_ticket(ticket_id)
            return Reply(
                text(f"✖ Ticket #{ticket_id} closed by {name or 'an admin'}." if closed
                     else f"Ticket #{ticket_id} was already closed."),
                kind="ticket_closed", edit=True, notice="Closed." if closed else None,
            )
        if verb == "draft":
            return await self._draft(ticket)
        if ticket["state"] != "open":
            return self._already(ticket)
        return Reply(
            text(
                bold(f"✍️ Ticket #{ticket_id}"),
                ": write your answer as a reply to this message. It goes to the user as "
                "you write it, marked as from the team.\n\nTheir question: ",
                _short(str(ticket["question"]), 300),
            ),
            kind="ticket_prompt",
            force_reply=True,
        )

    @staticmethod
    def _gone(ticket_id: int) -> Reply:
        """A ticket deleted since (its user sent /forget)."""
        return Reply(text(f"Ticket #{ticket_id} no longer exists."), kind="info",
                     notice="No such ticket.")

    @staticmethod
    def _already(ticket: dict[str, Any]) -> Reply:
        if ticket["state"] == "answered":
            who = ticket["answered_by_name"] or "another admin"
            when = str(ticket["answered_at"] or "")[:16].replace("T", " ")
            message = f"Ticket #{ticket['id']} was already answered by {who} ({when} UTC)."
        else:
            message = f"Ticket #{ticket['id']} is closed."
        return Reply(text(message), kind="ticket_taken", notice=message[:200])

    async def answer(self, user_id: int, name: str | None, ticket_id: int,
                     answer: str) -> Reply | None:
        """Relay an admin's answer to the user; None when the sender is not an admin."""
        if not self.is_admin(user_id):
            return None
        ticket = await self.store.ticket(ticket_id)
        if ticket is None:
            return self._gone(ticket_id)
        answer = answer.strip()[:MAX_ANSWER_CHARS]
        if ticket["state"] != "open" or not await self.store.answer_ticket(
            ticket_id, answer, user_id, name
        ):
            return self._already(await self.store.ticket(ticket_id) or ticket)
        to_user = Reply(
            text(
                bold("💬 From the IMG Guide team"),
                f", about your question “{_short(str(ticket['question']), 120)}”:\n\n",
                answer,
                "\n\n",
                italic("Need more? Send /human to ask the team again."),
            ),
            kind="team_answer",
        )
        logger.info("ticket %d answered", ticket_id)
        return Reply(
            text(f"✅ Ticket #{ticket_id}: your answer was sent to "
                 f"{ticket['first_name'] or 'the user'}."),
            (
                (
                    Button("📚 Add to knowledge base", act.Ticket("draft", ticket_id)),
                    Button("✖ Close", act.Ticket("close", ticket_id)),
                ),
            ),
            kind="ticket_answered",
            deliveries=(
                Delivery(
                    int(ticket["chat_id"]),
                    to_user,
                    undelivered=f"⚠️ Ticket #{ticket_id}: the answer could not be delivered "
                    "(the user blocked the bot or deleted the chat).",
                ),
            ),
        )

    async def tickets(self, user_id: int) -> Reply | None:
        """Open tickets, newest first, with their age and buttons; None for non-admins."""
        if not self.is_admin(user_id):
            return None
        rows, total = await self.store.open_tickets(TICKETS_SHOWN)
        if not rows:
            return Reply(text("No open tickets. 🎉"), kind="tickets")
        now = self.clock.now()
        lines: list[str | Span] = [bold(f"Open tickets: {total}"), "\n"]
        buttons = []
        for row in rows:
            lines.append(
                f"\nTicket #{row['id']} · {_age(row['created_at'], now)} · "
                f"{row['first_name'] or 'user'}: {_short(str(row['question']))}"
            )
            buttons.append(
                (
                    Button(f"✍️ Answer #{row['id']}", act.Ticket("answer", int(row["id"]))),
                    Button(f"✖ Close #{row['id']}", act.Ticket("close", int(row["id"]))),
                )
            )
        if total > len(rows):
            lines.append(f"\n\n… and {total - len(rows)} older.")
        return Reply(text(*lines), tuple(buttons), kind="tickets")

    async def _draft(self, ticket: dict[str, Any]) -> Reply:
        """A checked topic draft from an answered ticket, saved apart from the live files."""
        if ticket["state"] == "open" or not ticket["answer"]:
            return Reply(text(f"Ticket #{ticket['id']} has no answer yet: answer it first."),
                         kind="info")
        bundle = self.holder.bundle
        topic_id, content = draft_topic(ticket, bundle.kb.by_id, today(self.clock))
        name = f"{topic_id}.yaml"
        problems: list[Problem] = []
        writer = KnowledgeWriter(self.holder.path)
        try:
            _, problems = await asyncio.to_thread(writer.check, name, content)
        except EditError as exc:
            problems = [Problem(name, 0, str(exc))]
        try:
            await asyncio.to_thread(atomic_write, self.drafts / name, content)
            saved = f"Saved as {self.drafts / name} (not live)."
        except OSError as exc:
            saved = f"Could not save it in {self.drafts} ({exc.strerror})."
        found = (
            f"\n\nTo fix before it can go live:\n{_problems(problems)}" if problems
            else "\n\nIt passes the checks."
        )
        return Reply(
            text(
                bold(f"📄 Draft topic '{topic_id}' from ticket #{ticket['id']}"),
                f"\n\n{saved} Edit it (the official source, more ways people ask), then send "
                "the file back to me here to put it live." + found,
            ),
            kind="draft",
            attachment=Attachment(name, content.encode("utf-8"), f"Draft: {topic_id}"),
        )

    # -- knowledge edits ---------------------------------------------------------------

    async def _apply(self, change: Any, name: str = "") -> Reply:
        """Reload after a write and say what changed (or list the problems).

        Problems in the file being written come first: elsewhere they are consequences
        (links to topics the new version no longer has).
        """
        if isinstance(change, list):
            ordered = sorted(change, key=lambda p: not p.file.endswith("/" + name))
            return Reply(
                text(bold("✖ Not changed."), " The knowledge base would have these problems:\n\n",
                     _problems(ordered)),
                kind="edit_refused",
            )
        assert isinstance(change, Change)
        await asyncio.to_thread(self.holder.reload_if_changed)
        self.holder.keep_learned()
        return Reply(
            text(bold(f"✅ {change.file} is live."), "\n\n", change.summary(),
                 "\n\n/rollback puts the previous version back."),
            kind="edit_done",
        )

    async def upload(self, user_id: int, filename: str, content: bytes) -> Reply | None:
        """Check an uploaded YAML file with the live knowledge and put it live if clean."""
        if not self.is_admin(user_id):
            return None
        name = Path(filename or "").name.lower()
        if not FILE_NAME.match(name):
            return Reply(text("Send a knowledge file named like 'usmle.yaml' (lowercase "
                              "letters, digits, - or _; ending in .yaml)."), kind="edit_refused")
        if len(content) > MAX_UPLOAD_BYTES:
            return Reply(text("That file is over 1 MB; split it into several files."),
                         kind="edit_refused")
        try:
            decoded = content.decode("utf-8")
        except UnicodeDecodeError:
            return Reply(text("That file is not UTF-8 text; save it as UTF-8 and send it "
                              "again."), kind="edit_refused")
        writer = KnowledgeWriter(self.holder.path)
        async with self._edit_lock:
            try:
                change = await asyncio.to_thread(
                    writer.write, name, decoded, self.holder.bundle.kb, by=user_id,
                    what="upload",
                )
            except EditError as exc:
                return Reply(text(f"✖ Not changed: {exc}."), kind="edit_refused")
            return await self._apply(change, name)

    async def rollback(self, user_id: int) -> Reply | None:
        """Put back what the last change from Telegram replaced."""
        if not self.is_admin(user_id):
            return None
        writer = KnowledgeWriter(self.holder.path)
        async with self._edit_lock:
            try:
                change = await asyncio.to_thread(
                    writer.rollback, self.holder.bundle.kb, by=user_id
                )
            except EditError as exc:
                return Reply(text(f"Nothing rolled back: {exc}."), kind="info")
            return await self._apply(change)

    async def add_phrasing(self, user_id: int, question_id: int, topic_id: str) -> Reply | None:
        """Write a logged question into a topic's questions (checked, atomic, reloaded)."""
        if not self.is_admin(user_id):
            return None
        row = await self.store.question(question_id)
        topic = self.holder.bundle.kb.by_id.get(topic_id)
        if row is None or topic is None:
            return Reply(text("That question or topic is gone (deleted, or the knowledge "
                              "changed). Send /unanswered again."), kind="info",
                         notice="Out of date.")
        writer = KnowledgeWriter(self.holder.path)
        async with self._edit_lock:
            try:
                change = await asyncio.to_thread(
                    writer.add_question, topic, str(row["text"]), self.holder.bundle.kb,
                    by=user_id,
                )
            except EditError as exc:
                return Reply(text(f"✖ Not added: {exc}."), kind="edit_refused")
            reply = await self._apply(change)
        if reply.kind == "edit_done":
            await self.store.set_question_status([question_id], "phrasing")
            return Reply(
                text(f"✅ Added “{_short(str(row['text']), 80)}” as a phrasing of "
                     f"'{topic_id}'. It is live now. /rollback undoes it."),
                kind="edit_done", notice="Added.",
            )
        return reply

    async def _groups(self) -> list[Any]:
        """Recent unanswered questions, grouped by similarity, newest group first."""
        from bot.stats import group_similar

        rows = await self.store.unanswered(limit=UNANSWERED_LOOKED_AT)
        return await asyncio.to_thread(group_similar, rows)

    async def unanswered(self, user_id: int, chat_id: int) -> Reply | None:
        """Triage: each group of similar unanswered questions with one-tap fixes."""
        if not self.is_admin(user_id):
            return None
        groups = await self._groups()
        if not groups:
            return Reply(text("Nothing unanswered right now. 🎉"), kind="unanswered")
        matcher = self.holder.bundle.matcher
        kb = self.holder.bundle.kb
        messages = []
        for group in groups[:GROUPS_SHOWN]:
            result = await asyncio.to_thread(matcher.match, group.text, Thresholds())
            newest = int(group.ids[0])
            rows = [
                (Button(f"➕ Add as a phrasing of {kb.by_id[c.topic_id].title}"[:60],
                        act.AddPhrasing(newest, c.topic_id)),)
                for c in result.candidates[:2]
                if c.topic_id in kb.by_id and not kb.by_id[c.topic_id].is_decline
            ]
            rows.append((Button("🙈 Ignore", act.Ignore(newest)),))
            asked = "once" if group.count == 1 else f"{group.count} times"
            messages.append(
                Delivery(
                    chat_id,
                    Reply(
                        text(f"❓ Asked {asked}, last {str(group.newest)[:10]}:\n", bold(
                            _short(group.text, 300))),
                        tuple(rows),
                        kind="unanswered_group",
                    ),
                )
            )
        more = len(groups) - len(messages)
        return Reply(
            text(
                bold(f"Unanswered: {len(groups)} group(s) of similar questions"),
                " (newest first). “Add as a phrasing” puts the newest question of a group "
                "into that topic's questions, live at once; write a new topic for the others."
                + (f" Showing {len(messages)}; {more} more after these are handled."
                   if more > 0 else ""),
            ),
            kind="unanswered",
            deliveries=tuple(messages),
        )

    async def ignore(self, user_id: int, question_id: int) -> Reply | None:
        """Take a group of unanswered questions off the list (they stay in the log)."""
        if not self.is_admin(user_id):
            return None
        for group in await self._groups():
            if question_id in {int(i) for i in group.ids}:
                await self.store.set_question_status([int(i) for i in group.ids], "ignored")
                return Reply(text(f"🙈 Ignored: {group.count} question(s) like "
                                  f"“{_short(group.text, 80)}”."),
                             kind="ignored", edit=True, notice="Ignored.")
        return Reply(kind="info", notice="Already handled.")

    async def stats(self, user_id: int, days: int) -> Reply | None:
        """The usage report of the last ``days`` days, with its chart as a picture."""
        if not self.is_admin(user_id):
            return None
        from bot import stats

        if not stats.valid_days(days):
            days = stats.DEFAULT_DAYS
        figures = await stats.collect(self.store, self.holder.bundle.pathway, days)
        # Drawing takes a moment of CPU: off the event loop, so other users are answered.
        png = await asyncio.to_thread(stats.chart_png, figures)
        return Reply(
            text(stats.text_report(figures)),
            kind="stats",
            attachment=Attachment(
                "stats.png", png, f"Messages per day and the pathway funnel, last {days} day(s)",
                photo=True,
            ),
        )

    async def feedback(self, user_id: int) -> Reply | None:
        """The least helpful answers, as ``python -m bot feedback`` shows them."""
        if not self.is_admin(user_id):
            return None
        rows = await self.store.feedback_summary()
        if not rows:
            return Reply(text("No feedback yet."), kind="feedback_report")
        kb = self.holder.bundle.kb
        lines: list[str | Span] = [bold("Least helpful answers"), "\n(not helpful / helpful)\n"]
        for row in rows[:15]:
            title = kb.by_id[row["topic_id"]].title if row["topic_id"] in kb.by_id else row[
                "topic_id"]
            lines.append(f"\n{row['not_helpful']} / {row['helpful']} · {title}")
        return Reply(text(*lines), kind="feedback_report")
