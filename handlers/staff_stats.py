"""``/stats`` for admins: the statistics report as a message and a chart as a photo.

Admins are ``telegram.admins``, checked at each use, in a private chat or the staff chat
(``staff.chat_id``). To anyone else ``/stats`` is an unknown command (answered in a
private chat, ignored in a group, like any command the bot does not have). The figures,
the text and the chart come from :mod:`bot.stats`; this module only routes.
"""

from __future__ import annotations

import asyncio
from io import BytesIO

from telegram import InputFile, Update
from telegram.ext import Application, CommandHandler, ContextTypes, filters

from bot import stats
from bot.reply import Reply, text
from handlers.common import engine_of, send_reply, typing_shown, user_of


async def on_stats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Send an admin the report of the last N days (``/stats [N]``, default 30)."""
    user = user_of(update)
    chat = update.effective_chat
    if user is None or chat is None:
        return
    engine = engine_of(context)
    if not engine.staff.may_work(user.id, chat.id):
        if chat.type == chat.PRIVATE:
            await send_reply(update, context, engine.unknown_command())
        return
    args = context.args or []
    days = int(args[0]) if args and args[0].isdigit() else stats.DEFAULT_DAYS
    if not stats.valid_days(days):
        days = stats.DEFAULT_DAYS
    async with typing_shown(update, context):
        figures = await stats.collect(engine.store, engine.bundle.pathway, days)
        # Drawing takes a moment of CPU: off the event loop, so other users are answered.
        png = await asyncio.to_thread(stats.chart_png, figures)
    await send_reply(update, context, Reply(text(stats.text_report(figures)), kind="stats"))
    await context.bot.send_photo(
        chat.id,
        InputFile(BytesIO(png), filename="stats.png"),
        caption=f"Messages per day and the pathway funnel, last {days} day(s)",
    )


def register(app: Application) -> None:  # type: ignore[type-arg]
    """Add /stats (before the catch-all for unknown commands)."""
    app.add_handler(CommandHandler("stats", on_stats, filters=filters.UpdateType.MESSAGE))
