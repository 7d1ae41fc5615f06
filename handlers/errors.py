"""The one error handler: full detail to the log, a short kind sentence to the user."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application, ContextTypes

logger = logging.getLogger(__name__)

SORRY = (
    "Sorry, something went wrong on my side. Please try again in a moment. "
    "Your progress is safe."
)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the exception with its context and tell the user something kind."""
    if not isinstance(update, Update):
        logger.error("error outside an update", exc_info=context.error)
        return
    user_id = update.effective_user.id if update.effective_user else None
    chat_id = update.effective_chat.id if update.effective_chat else None
    kind = "callback" if update.callback_query else "message"
    logger.error(
        "error handling update %s (%s, user %s, chat %s)",
        update.update_id, kind, user_id, chat_id, exc_info=context.error,
    )
    try:
        if update.callback_query is not None:
            await update.callback_query.answer("Sorry, something went wrong.")
    except TelegramError:
        pass
    if chat_id is not None and (update.effective_chat and update.effective_chat.type == "private"):
        try:
            await context.bot.send_message(chat_id, SORRY)
        except TelegramError as exc:
            logger.warning("could not tell user %s about the error: %s", user_id, exc)


def register(app: Application) -> None:  # type: ignore[type-arg]
    """Install the error handler."""
    app.add_error_handler(on_error)
