"""Free-text messages: questions, or the answer to something the bot asked.

In a private chat every text message goes to the engine. In a group the bot only
answers messages that mention it or reply to it, so it never talks over people.
Non-text messages (photos, voice, stickers) get a short explanation in private.
"""

from __future__ import annotations

import re

from telegram import Message, MessageEntity, Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from handlers.common import engine_of, send_reply, typing_shown, user_of


class _AddressedToBot(filters.MessageFilter):
    """Pass group messages that mention the bot or reply to one of its messages."""

    def filter(self, message: Message) -> bool:
        bot = message.get_bot()
        reply = message.reply_to_message
        if reply is not None and reply.from_user is not None and reply.from_user.id == bot.id:
            return True
        username = (bot.username or "").casefold()
        if not username:
            return False
        for entity, value in message.parse_entities([MessageEntity.MENTION]).items():
            if entity.type == MessageEntity.MENTION and value[1:].casefold() == username:
                return True
        return False


ADDRESSED_TO_BOT = _AddressedToBot()


def _strip_mention(text: str, username: str | None) -> str:
    """Remove '@botname' from a group message before treating it as a question."""
    if not username:
        return text
    return re.sub(rf"@{re.escape(username)}\b", " ", text, flags=re.IGNORECASE).strip()


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer a text message."""
    message = update.effective_message
    user = user_of(update)
    if message is None or user is None or message.text is None:
        return
    text = message.text
    if message.chat.type != message.chat.PRIVATE:
        text = _strip_mention(text, context.bot.username)
    async with typing_shown(update, context):
        reply = await engine_of(context).handle_text(user, text)
    await send_reply(update, context, reply)


async def on_other(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Explain that only text is understood."""
    await send_reply(update, context, engine_of(context).text_only())


def register(app: Application) -> None:  # type: ignore[type-arg]
    """Add the message handlers (after the commands, so commands win)."""
    private = filters.ChatType.PRIVATE
    groups = filters.ChatType.GROUPS
    text = filters.UpdateType.MESSAGE & filters.TEXT & ~filters.COMMAND
    app.add_handler(MessageHandler(text & (private | (groups & ADDRESSED_TO_BOT)), on_text))
    app.add_handler(
        MessageHandler(filters.UpdateType.MESSAGE & private & ~filters.TEXT & ~filters.COMMAND,
                       on_other)
    )
