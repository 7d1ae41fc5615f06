"""Inline button presses: decode the data, let the engine act, always answer the query."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application, CallbackQueryHandler, ContextTypes

from bot import actions as act
from bot.actions import decode
from handlers.common import engine_of, send_reply, user_of

logger = logging.getLogger(__name__)


#: Buttons that show or change one user's data: like /pathway, private chats only.
PERSONAL = (act.PathChoose, act.PathNav, act.SetStatus, act.Confirm, act.Remind, act.Handoff)


def _personal(action: act.Action | None) -> bool:
    """Tell whether a button press touches the presser's personal data."""
    if isinstance(action, act.Menu):
        return action.name in ("pathway", "progress", "reminders")
    return isinstance(action, PERSONAL)


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Handle one callback query; stale or forged data gets a polite reply."""
    query = update.callback_query
    user = user_of(update)
    if query is None or user is None:
        return
    engine = engine_of(context)
    action = decode(query.data)
    chat = update.effective_chat
    if chat is not None and chat.type != chat.PRIVATE and _personal(action):
        reply = engine.private_only()
    else:
        reply = await engine.handle_action(user, action)
    try:
        await query.answer(reply.notice[:200] if reply.notice else None)
    except TelegramError as exc:  # too old to answer: the reply below still goes out
        logger.info("could not answer callback query: %s", exc)
    await send_reply(update, context, reply)


def register(app: Application) -> None:  # type: ignore[type-arg]
    """Add the callback query handler (it takes every button press)."""
    app.add_handler(CallbackQueryHandler(on_button))
