"""Telegram adapters: each module translates updates into engine calls and renders replies.

:func:`register_all` adds them in the order that matters: staff commands first (ahead
of the catch-all for unknown commands), then commands, then button presses, then free
text (a catch-all that must not shadow the others).
"""

from __future__ import annotations

from telegram.ext import Application

from handlers import callbacks, commands, errors, messages


def register_all(app: Application) -> None:  # type: ignore[type-arg]
    """Register every handler module on the application."""
    commands.register(app)
    callbacks.register(app)
    messages.register(app)
    errors.register(app)
