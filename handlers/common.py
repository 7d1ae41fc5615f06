"""Shared pieces of the Telegram handlers: the engine accessor and sending a Reply."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from io import BytesIO

from telegram import ForceReply, InlineKeyboardMarkup, InputFile, LinkPreviewOptions, Update
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, Forbidden
from telegram.ext import ContextTypes

from bot.engine import Engine, User
from bot.reply import Reply
from handlers.render import render_html, render_keyboard

logger = logging.getLogger(__name__)

ENGINE_KEY = "engine"
TYPING_AFTER_KEY = "typing_after"
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


def engine_of(context: ContextTypes.DEFAULT_TYPE) -> Engine:
    """Return the engine that build_application put on bot_data."""
    engine = context.bot_data.get(ENGINE_KEY)
    if not isinstance(engine, Engine):  # pragma: no cover - a wiring error, not user input
        raise RuntimeError("the engine is missing from bot_data; use build_application")
    return engine


def user_of(update: Update) -> User | None:
    """Return who sent an update, or None for updates without a user."""
    tg_user = update.effective_user
    if tg_user is None:
        return None
    chat = update.effective_chat
    return User(tg_user.id, tg_user.first_name, chat.id if chat is not None else None)


@contextlib.asynccontextmanager
async def typing_shown(
    update: Update, context: ContextTypes.DEFAULT_TYPE
) -> AsyncIterator[None]:
    """Show "typing..." while the body runs, if it runs longer than ``typing_after`` seconds.

    Most answers are ready in a millisecond or two, long before a person could see an
    indicator, so it is only sent when the work is slow (a busy database, a large export).
    That also keeps it from spending the bot's Telegram rate budget on every message.
    """
    chat = update.effective_chat
    delay = context.bot_data.get(TYPING_AFTER_KEY, 0.0)
    if chat is None:
        yield
        return
    bot, chat_id = context.bot, chat.id

    async def send() -> None:
        try:
            await bot.send_chat_action(chat_id, ChatAction.TYPING)
        except Exception as exc:  # typing is cosmetic: never let it stop the answer
            logger.debug("send_chat_action failed: %s", exc)

    if delay <= 0:
        await send()
        yield
        return
    started: list[asyncio.Task[None]] = []
    timer = asyncio.get_running_loop().call_later(
        delay, lambda: started.append(asyncio.ensure_future(send()))
    )
    try:
        yield
    finally:
        timer.cancel()
        for task in started:  # still on its way: it would show "typing" after the answer
            task.cancel()


async def send_reply(update: Update, context: ContextTypes.DEFAULT_TYPE, reply: Reply) -> None:
    """Deliver a Reply: edit the pressed message when asked to, else send new messages.

    Then its deliveries (messages for other chats: a ticket to staff, an answer to a user);
    one that cannot be delivered is reported to this chat when the reply says how.
    """
    chat = update.effective_chat
    if chat is None:
        return
    await _deliver(update, context, chat.id, reply)
    for delivery in reply.deliveries:
        try:
            await _deliver(None, context, delivery.chat_id, delivery.reply)
        except (Forbidden, BadRequest) as exc:
            logger.warning("a message for another chat was not delivered: %s", exc)
            if delivery.undelivered:
                await context.bot.send_message(chat.id, delivery.undelivered)


async def _deliver(
    update: Update | None, context: ContextTypes.DEFAULT_TYPE, chat_id: int, reply: Reply
) -> None:
    """Send (or edit into the pressed message) one reply to one chat."""
    chunks = render_html(reply.spans)
    keyboard = render_keyboard(reply.buttons)
    markup: InlineKeyboardMarkup | ForceReply | None = keyboard
    if reply.force_reply:  # the whole staff chat may answer it: not "selective"
        markup = ForceReply(selective=False, input_field_placeholder="Your answer")
    query = update.callback_query if update is not None else None
    editable = reply.edit and not reply.force_reply
    if chunks and editable and query is not None and query.message is not None and len(
        chunks
    ) == 1:
        try:
            await query.edit_message_text(
                chunks[0],
                parse_mode=ParseMode.HTML,
                reply_markup=keyboard,
                link_preview_options=NO_PREVIEW,
            )
            chunks = ()
        except BadRequest as exc:
            if "not modified" in str(exc).lower():
                chunks = ()
            else:  # too old to edit, deleted, ...: send it as a new message instead
                logger.info("could not edit message, sending a new one: %s", exc)
    for index, chunk in enumerate(chunks):
        last = index == len(chunks) - 1
        await context.bot.send_message(
            chat_id,
            chunk,
            parse_mode=ParseMode.HTML,
            reply_markup=markup if last else None,
            link_preview_options=NO_PREVIEW,
        )
    attachment = reply.attachment
    if attachment is not None:
        upload = InputFile(BytesIO(attachment.content), filename=attachment.filename)
        if attachment.photo:
            await context.bot.send_photo(chat_id, upload, caption=attachment.caption or None)
        else:
            await context.bot.send_document(chat_id, upload, caption=attachment.caption or None)
