"""Slash commands: /start, /help, /topics, /pathway, /progress, /dates, /reminders, ..."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from telegram import BotCommand, Update
from telegram.ext import Application, CommandHandler, ContextTypes, MessageHandler, filters

from bot.engine import Engine, User
from bot.reply import Reply
from handlers.common import engine_of, send_reply, typing_shown, user_of

#: The command list Telegram shows in its menu (set at start-up).
COMMANDS = (
    BotCommand("start", "Welcome and main menu"),
    BotCommand("topics", "Browse topics by area"),
    BotCommand("pathway", "Start or resume your step-by-step pathway"),
    BotCommand("progress", "Your status on every step"),
    BotCommand("dates", "Key dates of the Match season"),
    BotCommand("reminders", "Turn deadline reminders on or off"),
    BotCommand("help", "How to use the bot"),
    BotCommand("about", "What this bot is and where answers come from"),
    BotCommand("mydata", "Everything stored about you"),
    BotCommand("reset", "Clear your pathway progress"),
    BotCommand("forget", "Delete everything stored about you"),
    BotCommand("skip", "Skip the question I asked you"),
    BotCommand("human", "Ask a person from the team"),
)
#: Staff commands: answered for admins only, checked at the moment of use.
STAFF_COMMANDS = ("tickets", "unanswered", "feedback", "rollback", "stats")

#: An engine call for one command; None means "not for you": answered as an unknown command.
Action = Callable[[Engine, User, list[str]], Awaitable[Reply | None]]


async def _start(engine: Engine, user: User, args: list[str]) -> Reply:
    return await engine.start(user, args[0] if args else None)


async def _help(engine: Engine, user: User, args: list[str]) -> Reply:
    return engine.help()


async def _about(engine: Engine, user: User, args: list[str]) -> Reply:
    return engine.about()


async def _topics(engine: Engine, user: User, args: list[str]) -> Reply:
    return engine.browse()


async def _pathway(engine: Engine, user: User, args: list[str]) -> Reply:
    return await engine.pathway(user)


async def _progress(engine: Engine, user: User, args: list[str]) -> Reply:
    return await engine.progress(user)


async def _dates(engine: Engine, user: User, args: list[str]) -> Reply:
    return engine.dates()


async def _reminders(engine: Engine, user: User, args: list[str]) -> Reply:
    return await engine.reminders(user)


async def _reset(engine: Engine, user: User, args: list[str]) -> Reply:
    return await engine.reset(user)


async def _mydata(engine: Engine, user: User, args: list[str]) -> Reply:
    return await engine.mydata(user)


async def _forget(engine: Engine, user: User, args: list[str]) -> Reply:
    return await engine.forget(user)


async def _skip(engine: Engine, user: User, args: list[str]) -> Reply:
    return await engine.skip(user)


async def _human(engine: Engine, user: User, args: list[str]) -> Reply:
    return await engine.human(user)


ACTIONS: dict[str, Action] = {
    "start": _start,
    "help": _help,
    "about": _about,
    "topics": _topics,
    "pathway": _pathway,
    "progress": _progress,
    "dates": _dates,
    "reminders": _reminders,
    "reset": _reset,
    "mydata": _mydata,
    "forget": _forget,
    "skip": _skip,
    "human": _human,
}
#: Commands that hold personal data: answered in private chats only.
PRIVATE_ONLY = frozenset(
    {"pathway", "progress", "reset", "mydata", "forget", "skip", "reminders", "human"}
)


def _staff(name: str) -> Action:
    """The engine call of an admin command (checked by the engine at each use)."""

    async def run(engine: Engine, user: User, args: list[str]) -> Reply | None:
        return await engine.staff_command(user, name, args)

    return run


def _handler(
    name: str, action: Action
) -> Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]:
    """Wrap an engine call as a PTB callback."""

    async def callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user = user_of(update)
        chat = update.effective_chat
        if user is None or chat is None:
            return
        engine = engine_of(context)
        args = list(context.args or [])
        personal_link = name == "start" and bool(args) and args[0].lower() in PRIVATE_ONLY
        if (name in PRIVATE_ONLY or personal_link) and chat.type != chat.PRIVATE:
            await send_reply(update, context, engine.private_only())
            return
        async with typing_shown(update, context):
            reply = await action(engine, user, args)
        if reply is None:  # a staff command from someone else: like one the bot lacks
            if chat.type == chat.PRIVATE:
                await send_reply(update, context, engine.unknown_command())
            return
        await send_reply(update, context, reply)

    callback.__name__ = f"command_{name}"
    return callback


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer a command the bot does not have (private chats only)."""
    await send_reply(update, context, engine_of(context).unknown_command())


def register(app: Application) -> None:  # type: ignore[type-arg]
    """Add the command handlers."""
    # New messages only: an edited "/mydata" or "/forget" must not run the command again.
    new = filters.UpdateType.MESSAGE
    for name, action in ACTIONS.items():
        app.add_handler(CommandHandler(name, _handler(name, action), filters=new))
    for name in STAFF_COMMANDS:
        app.add_handler(CommandHandler(name, _handler(name, _staff(name)), filters=new))
    app.add_handler(
        MessageHandler(new & filters.COMMAND & filters.ChatType.PRIVATE, unknown_command)
    )
