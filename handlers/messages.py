"""Free-text messages: questions, or the answer to something the bot asked.

In a private chat every text message goes to the engine. In a group the bot only
answers messages that mention it or reply to it, so it never talks over people.
Non-text messages (photos, voice, stickers) get a short explanation in private.
"""

from __future__ import annotations

import re

from telegram import Message, MessageEntity, Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from bot.kbedit import MAX_UPLOAD_BYTES
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
    # The bot's own message this one answers (an admin answering a ticket replies to it).
    replied = message.reply_to_message
    reply_to = (
        replied.text
        if replied is not None and replied.from_user is not None
        and replied.from_user.id == context.bot.id
        else None
    )
    async with typing_shown(update, context):
        reply = await engine_of(context).handle_text(user, text, reply_to)
    await send_reply(update, context, reply)


async def on_document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A file: an admin's knowledge upload; anyone else's is not read."""
    message = update.effective_message
    user = user_of(update)
    if message is None or user is None or message.document is None:
        return
    engine = engine_of(context)
    document = message.document
    is_yaml = (document.file_name or "").lower().endswith((".yaml", ".yml"))
    if not engine.staff.may_work(user.id, message.chat.id) or not is_yaml:
        if message.chat.type == message.chat.PRIVATE:
            await send_reply(update, context, engine.text_only())
        return
    if (document.file_size or 0) > MAX_UPLOAD_BYTES:
        content = b"x" * (MAX_UPLOAD_BYTES + 1)  # refused by size, without downloading it
    else:
        file = await document.get_file()
        content = bytes(await file.download_as_bytearray())
    reply = await engine.upload(user, document.file_name or "", content)
    if reply is not None:
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
    app.add_handler(MessageHandler(filters.UpdateType.MESSAGE & filters.Document.ALL,
                                   on_document))
    app.add_handler(
        MessageHandler(filters.UpdateType.MESSAGE & private & ~filters.TEXT & ~filters.COMMAND,
                       on_other)
    )
