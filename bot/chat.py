"""``python -m bot chat``: the same engine in a terminal, no Telegram token needed.

Type a question to get an answer; a number picks one of the numbered buttons of
the last reply ("did you mean" choices, related topics, pathway choices); slash
commands work as in Telegram. When standard input is not a terminal, each line
is one message, so staff can script a preview of their edits.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TextIO

from bot.bundle import KnowledgeHolder, load_bundle
from bot.config import Settings
from bot.engine import Engine, User
from bot.reply import Button, Reply, Style
from bot.store import Store

BANNER = (
    "IMG Guide in your terminal. Type a question, or: /topics /pathway /progress /dates "
    "/reminders /help /about /mydata /reset /forget /quit. A number picks a button."
)


def render_plain(reply: Reply) -> str:
    """Render a reply as plain text with numbered buttons."""
    parts: list[str] = []
    for span in reply.spans:
        if span.style is Style.LINK and span.url:
            parts.append(f"{span.text} <{span.url}>")
        else:
            parts.append(span.text)
    body = "".join(parts).strip()
    lines = [body] if body else []
    if reply.notice and not body:
        lines.append(f"({reply.notice})")
    for number, button in enumerate(reply.all_buttons, start=1):
        lines.append(f"  [{number}] {button.label}")
    if reply.attachment is not None:
        lines.append(f"(attachment: {reply.attachment.filename}, "
                     f"{len(reply.attachment.content)} bytes)")
    return "\n".join(lines)


class ChatSession:
    """One terminal conversation: keeps the last reply's buttons for numbered choices."""

    def __init__(self, engine: Engine, user: User) -> None:
        self.engine = engine
        self.user = user
        self.buttons: list[Button] = []

    async def send(self, line: str) -> Reply | None:
        """Handle one input line; return the reply, or None to quit."""
        stripped = line.strip()
        engine, user = self.engine, self.user
        if stripped in ("/quit", "/exit"):
            return None
        if stripped.isdigit() and self.buttons:
            index = int(stripped) - 1
            if 0 <= index < len(self.buttons):
                reply = await engine.handle_action(user, self.buttons[index].action)
            else:
                reply = Reply(kind="info", notice=f"Pick a number from 1 to {len(self.buttons)}.")
        elif stripped.startswith("/"):
            command, _, argument = stripped[1:].partition(" ")
            reply = await self._command(command.lower(), argument.strip())
        else:
            reply = await engine.handle_text(user, line)
        if reply.buttons:
            self.buttons = reply.all_buttons
        return reply

    async def _command(self, command: str, argument: str) -> Reply:
        """Run a slash command."""
        engine, user = self.engine, self.user
        if command == "start":
            return await engine.start(user, argument or None)
        if command == "help":
            return engine.help()
        if command == "about":
            return engine.about()
        if command == "topics":
            return engine.browse()
        if command == "pathway":
            return await engine.pathway(user)
        if command == "progress":
            return await engine.progress(user)
        if command == "reset":
            return await engine.reset(user)
        if command == "forget":
            return await engine.forget(user)
        if command == "mydata":
            return await engine.mydata(user)
        if command == "skip":
            return await engine.skip(user)
        if command == "dates":
            return engine.dates()
        if command == "human":
            return await engine.human(user)
        if command == "reminders":
            return await engine.reminders(user)
        return engine.unknown_command()


async def chat_loop(
    engine: Engine,
    user: User,
    stdin: TextIO,
    out: TextIO,
    holder: KnowledgeHolder | None = None,
) -> None:
    """Read lines until end of input or /quit, printing each reply.

    With a ``holder``, edited knowledge files are picked up before each message, so
    staff can keep the chat open while they edit (a broken edit is reported, and the
    last good version keeps answering).
    """
    session = ChatSession(engine, user)
    interactive = stdin.isatty()
    print(BANNER, file=out)
    loop = asyncio.get_running_loop()
    while True:
        if interactive:
            out.write("\n> ")
            out.flush()
        line = await loop.run_in_executor(None, stdin.readline)
        if not line:
            break
        if not interactive:
            print(f"\n> {line.rstrip()}", file=out)
        if holder is not None:
            reloaded, problems = holder.reload_if_changed()
            if reloaded:
                holder.learn()
                print("(knowledge base reloaded)", file=out)
            for problem in problems:
                print(f"(edit rejected) {problem}", file=out)
        reply = await session.send(line.rstrip("\n"))
        if reply is None:
            break
        print(render_plain(reply), file=out)
        out.flush()


def trial_database(production: str) -> str:
    """Return the database a terminal trial uses: beside the bot's, never the bot's own."""
    path = Path(production)
    return str(path.with_name(f"{path.stem}.chat{path.suffix or '.sqlite3'}"))


def run_chat(
    settings: Settings,
    *,
    kb_path: str | None = None,
    user_id: int = 0,
    db_path: str | None = None,
) -> int:
    """Run the terminal chat; return the exit status.

    Trials keep to their own database (``--db``, or the bot's with ``.chat`` in its name)
    so that they never show up in staff's ``unanswered`` list.
    """
    path = Path(kb_path or settings.knowledge.path)
    bundle, problems = load_bundle(path)
    if bundle is None:
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"cannot start: the knowledge base at {path} has problems", file=sys.stderr)
        return 1
    holder = KnowledgeHolder(path, bundle)

    async def main() -> None:
        store = await Store.open(db_path or trial_database(settings.storage.path))
        try:
            engine = Engine(holder, store, settings.matching)
            await chat_loop(engine, User(user_id, None), sys.stdin, sys.stdout, holder)
        finally:
            await store.close()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        print("", file=sys.stderr)
    return 0
