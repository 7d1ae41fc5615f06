"""The composition root: the one place where the bot's objects are built and wired.

:func:`build_application` turns settings, a knowledge holder and a store into a
python-telegram-bot ``Application`` with every handler registered; tests call it
with a recording request instead of the network. :func:`run_bot` is
``python -m bot run``: it loads the knowledge, opens the store, starts the live
reload watcher and polls (or serves a webhook) until SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Sequence
from typing import Any

from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, InvalidToken, TelegramError
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder
from telegram.request import BaseRequest

from bot.bundle import KnowledgeHolder, load_bundle
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.engine import Engine
from bot.reminders import Outcome, Scheduler
from bot.reply import Reply
from bot.staff import Staff
from bot.store import Store
from bot.yamlio import Problem

logger = logging.getLogger(__name__)

WATCH_TASK_KEY = "knowledge_watch_task"
RETENTION_TASK_KEY = "retention_task"
REMINDER_TASK_KEY = "reminder_task"
RETENTION_EVERY = 24 * 3600.0
MAX_ADMIN_PROBLEMS = 20


class RedactSecrets(logging.Filter):
    """Replace secrets (the bot token) in every log record before it is written."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place; never drop it."""
        if not self.secrets:
            return True
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        redacted = message
        exc_text = record.exc_text or ""
        for secret in self.secrets:
            redacted = redacted.replace(secret, "[REDACTED]")
            exc_text = exc_text.replace(secret, "[REDACTED]")
        record.msg, record.args = redacted, None
        record.exc_text = exc_text or None
        return True


def install_redaction(token: str | None) -> None:
    """Make sure the token never reaches a log line, whatever logger writes it."""
    if not token:
        return
    redactor = RedactSecrets([token])
    for handler in logging.getLogger().handlers:
        handler.addFilter(redactor)


async def notify_admins(
    app: Application, admins: Sequence[int], problems: Sequence[Problem]  # type: ignore[type-arg]
) -> None:
    """Tell the admins a knowledge edit was rejected, with every problem found."""
    if not admins:
        return
    # Causes first: links to topics a broken file no longer defines are consequences.
    ordered = sorted(problems, key=lambda p: "which is not a topic id" in str(p))
    shown = [str(p) for p in ordered[:MAX_ADMIN_PROBLEMS]]
    more = len(problems) - len(shown)
    text = (
        "⚠️ A knowledge base edit was rejected; the bot keeps serving the last good version.\n\n"
        + "\n".join(shown)
        + (f"\n… and {more} more (run: python -m bot check)" if more > 0 else "")
    )
    for admin in admins:
        try:
            await app.bot.send_message(admin, text[:4000])
        except TelegramError as exc:
            logger.warning("could not notify admin %s: %s", admin, exc)


async def keep_retention(store: Store, days: int, every: float = RETENTION_EVERY) -> None:
    """Delete what users wrote once it is older than ``days``: now, then every day."""
    while True:
        try:
            await store.apply_retention(days)
        except Exception:
            logger.exception("retention failed; will try again")
        await asyncio.sleep(every)


def telegram_sender(app: Application):  # type: ignore[no-untyped-def,type-arg]
    """Send a reminder through the application's bot (and so its rate limiter).

    A user who blocked the bot, or whose chat is gone, is reported as BLOCKED so the
    scheduler stops writing to them; any other error is a passing FAILED.
    """
    from handlers.common import NO_PREVIEW
    from handlers.render import render_html, render_keyboard

    async def send(chat_id: int, reply: Reply) -> Outcome:
        chunks = render_html(reply.spans)
        markup = render_keyboard(reply.buttons)
        try:
            for index, chunk in enumerate(chunks):
                await app.bot.send_message(
                    chat_id,
                    chunk,
                    parse_mode=ParseMode.HTML,
                    reply_markup=markup if index == len(chunks) - 1 else None,
                    link_preview_options=NO_PREVIEW,
                )
        except Forbidden:
            return Outcome.BLOCKED
        except BadRequest as exc:
            if "chat not found" in str(exc).lower():
                return Outcome.BLOCKED
            logger.warning("reminder to a chat was refused: %s", exc)
            return Outcome.FAILED
        except TelegramError as exc:
            logger.warning("reminder not sent, will retry: %s", exc)
            return Outcome.FAILED
        return Outcome.SENT

    return send


def build_application(
    settings: Settings,
    *,
    holder: KnowledgeHolder,
    store: Store,
    request: BaseRequest | None = None,
    get_updates_request: BaseRequest | None = None,
    token: str | None = None,
    clock: Clock | None = None,
) -> Application:  # type: ignore[type-arg]
    """Build the PTB application with the engine on bot_data and every handler registered."""
    from handlers import register_all
    from handlers.commands import COMMANDS
    from handlers.common import ENGINE_KEY, TYPING_AFTER_KEY

    tg = settings.telegram
    builder: ApplicationBuilder = Application.builder().token(token or tg.token or "")  # type: ignore[type-arg]
    if tg.base_url:
        builder = builder.base_url(tg.base_url)
    if tg.base_file_url:
        builder = builder.base_file_url(tg.base_file_url)
    if request is not None:
        builder = builder.request(request)
        builder = builder.get_updates_request(get_updates_request or request)
    if tg.rate_limiter and request is None:
        builder = builder.rate_limiter(AIORateLimiter(max_retries=2))
    if tg.concurrent_updates > 1:
        builder = builder.concurrent_updates(tg.concurrent_updates)

    clock = clock or SystemClock()
    staff = Staff(
        store, holder, clock, admins=tg.admins, chat_id=settings.staff.chat_id,
        drafts=settings.staff.drafts_path,
    )
    engine = Engine(holder, store, settings.matching, clock, staff)

    async def post_init(app: Application) -> None:  # type: ignore[type-arg]
        try:
            await app.bot.set_my_commands(list(COMMANDS))
        except TelegramError as exc:  # the menu is a nicety; the bot works without it
            logger.warning("could not set the command list: %s", exc)
        # The learned model trains in seconds: answer at once, and add it when ready.
        holder.keep_learned()
        if settings.storage.retention_days > 0:
            app.bot_data[RETENTION_TASK_KEY] = asyncio.create_task(
                keep_retention(store, settings.storage.retention_days), name="retention"
            )
        reminders = settings.reminders
        if reminders.enabled:
            scheduler = Scheduler(
                store,
                lambda: holder.bundle,
                telegram_sender(app),
                clock,
                send_hour=min(max(reminders.send_hour_utc, 0), 23),
            )
            app.bot_data[REMINDER_TASK_KEY] = asyncio.create_task(
                scheduler.run(max(reminders.check_interval, 1.0)), name="reminders"
            )
        interval = settings.knowledge.reload_interval
        if interval > 0:

            async def report(problems: Sequence[Problem]) -> None:
                await notify_admins(app, tg.admins, problems)

            app.bot_data[WATCH_TASK_KEY] = asyncio.create_task(
                holder.watch(interval, report), name="knowledge-watch"
            )

    async def post_shutdown(app: Application) -> None:  # type: ignore[type-arg]
        for key in (REMINDER_TASK_KEY, RETENTION_TASK_KEY, WATCH_TASK_KEY):
            task = app.bot_data.pop(key, None)
            if task is None:
                continue
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    builder = builder.post_init(post_init).post_shutdown(post_shutdown)
    app = builder.build()
    app.bot_data[ENGINE_KEY] = engine
    app.bot_data[TYPING_AFTER_KEY] = tg.typing_after
    register_all(app)
    return app


def run_bot(settings: Settings) -> int:
    """Run the Telegram bot until stopped; return the exit status."""
    token = settings.telegram.token
    if not token:
        print(
            "No Telegram bot token: set TELEGRAM_BOT_TOKEN (or telegram.token in config.yaml). "
            "To try the bot without Telegram, run: make chat",
            file=sys.stderr,
        )
        return 2
    install_redaction(token)
    bundle, problems = load_bundle(settings.knowledge.path, learned=False)
    if bundle is None:
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"cannot start: the knowledge base at {settings.knowledge.path} has problems",
              file=sys.stderr)
        return 1
    holder = KnowledgeHolder(settings.knowledge.path, bundle)
    tg = settings.telegram
    if tg.mode == "webhook" and not tg.webhook.url:
        print("telegram.webhook.url must be set for webhook mode", file=sys.stderr)
        return 2

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    store = loop.run_until_complete(Store.open(settings.storage.path))
    app = build_application(settings, holder=holder, store=store)
    logger.info(
        "starting: %d topics, mode %s, storage %s",
        len(bundle.kb.topics), tg.mode, settings.storage.path,
    )
    run_kwargs: dict[str, Any] = {"close_loop": False, "drop_pending_updates": False}
    try:
        if tg.mode == "webhook":
            app.run_webhook(
                listen=tg.webhook.listen,
                port=tg.webhook.port,
                url_path=tg.webhook.path,
                webhook_url=f"{tg.webhook.url.rstrip('/')}/{tg.webhook.path}",  # type: ignore[union-attr]
                secret_token=tg.webhook.secret_token,
                **run_kwargs,
            )
        else:
            app.run_polling(**run_kwargs)
    except InvalidToken:
        print("Telegram rejected the bot token; check TELEGRAM_BOT_TOKEN.", file=sys.stderr)
        return 2
    finally:
        loop.run_until_complete(store.close())
        loop.close()
    logger.info("stopped")
    return 0
