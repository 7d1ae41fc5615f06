"""Settings: one frozen object built at start-up from the config file and the environment.

Where the config comes from: ``--config PATH``, else ``IMG_GUIDE_CONFIG``, else
``config.yaml`` in the working directory if present, else the built-in defaults
(documented in ``config.example.yaml``). The environment overrides secrets and
addresses: ``TELEGRAM_BOT_TOKEN``, ``TELEGRAM_BASE_URL``, ``TELEGRAM_BASE_FILE_URL``.
An unknown key or a value of the wrong type stops start-up with a message that names
the key and the file. Nothing here reads files after start-up.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.matching import Thresholds
from bot.yamlio import LineDict, YamlSyntaxError, load_yaml

CONFIG_ENV = "IMG_GUIDE_CONFIG"
DEFAULT_CONFIG_FILE = "config.yaml"


class ConfigError(Exception):
    """A config file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class WebhookSettings:
    """Webhook mode: where the bot listens and what Telegram is told."""

    listen: str = "127.0.0.1"
    port: int = 8443
    url: str | None = None
    path: str = "telegram"
    secret_token: str | None = None


@dataclass(frozen=True)
class TelegramSettings:
    """How the bot talks to the Bot API."""

    token: str | None = field(default=None, repr=False)
    base_url: str | None = None
    base_file_url: str | None = None
    mode: str = "polling"
    webhook: WebhookSettings = field(default_factory=WebhookSettings)
    admins: tuple[int, ...] = ()
    rate_limiter: bool = True
    concurrent_updates: int = 16
    typing_after: float = 0.5


@dataclass(frozen=True)
class KnowledgeSettings:
    """Where the knowledge base lives and how often edits are looked for."""

    path: str = "knowledge"
    reload_interval: float = 2.0


@dataclass(frozen=True)
class StorageSettings:
    """The SQLite file, and how long what users wrote is kept."""

    path: str = "data/img-guide.sqlite3"
    #: Days after which logged questions, comments and step history are deleted (0: never).
    retention_days: int = 180


@dataclass(frozen=True)
class MatchingSettings:
    """Thresholds of the matcher's decision (scores are in [0, 100])."""

    answer: float = Thresholds.answer
    suggest: float = Thresholds.suggest
    margin: float = Thresholds.margin
    max_suggestions: int = Thresholds.max_suggestions


@dataclass(frozen=True)
class StaffSettings:
    """Where tickets go and where drafts made from answers are kept."""

    #: The staff group (or one admin's private chat) that gets tickets; None: no hand-off.
    chat_id: int | None = None
    #: Drafts of new topics made from answered tickets; never read as live knowledge.
    drafts_path: str = "data/drafts"


@dataclass(frozen=True)
class ReminderSettings:
    """The reminder scheduler: on or off, when in the day it sends, how often it looks."""

    enabled: bool = True
    #: Hour of the day (UTC, 0-23) from which a day's reminders go out (14 = 9 a.m. ET).
    send_hour_utc: int = 14
    #: Seconds between two looks at the due reminders.
    check_interval: float = 60.0


@dataclass(frozen=True)
class LoggingSettings:
    """Log verbosity."""

    level: str = "INFO"


@dataclass(frozen=True)
class Settings:
    """Every setting of the bot; built once, never changed."""

    telegram: TelegramSettings = field(default_factory=TelegramSettings)
    knowledge: KnowledgeSettings = field(default_factory=KnowledgeSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    matching: MatchingSettings = field(default_factory=MatchingSettings)
    reminders: ReminderSettings = field(default_factory=ReminderSettings)
    staff: StaffSettings = field(default_factory=StaffSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    source: str = "built-in defaults"


_CHOICES: dict[str, tuple[str, ...]] = {
    "telegram.mode": ("polling", "webhook"),
    "logging.level": ("DEBUG", "INFO", "WARNING", "ERROR"),
}


def _type_name(tp: Any) -> str:
    """Describe an annotation in words."""
    names = {str: "text", int: "a whole number", float: "a number", bool: "true or false"}
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(_type_name(a) for a in inner) + " (or empty)"
    if origin is tuple:
        return f"a list of {_type_name(typing.get_args(tp)[0])}s"
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _coerce(tp: Any, value: Any) -> tuple[bool, Any]:
    """Check ``value`` against annotation ``tp``; return (ok, converted value)."""
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        if value is None:
            return True, None
        for arg in typing.get_args(tp):
            if arg is not type(None):
                ok, converted = _coerce(arg, value)
                if ok:
                    return True, converted
        return False, None
    if origin is tuple:
        if not isinstance(value, list):
            return False, None
        (item_type, _) = typing.get_args(tp)
        converted_items = []
        for item in value:
            ok, converted = _coerce(item_type, item)
            if not ok:
                return False, None
            converted_items.append(converted)
        return True, tuple(converted_items)
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return ok, float(value) if ok else None
    if tp is str:
        ok = isinstance(value, str | int | float) and not isinstance(value, bool)
        return ok, str(value) if ok else None
    return False, None


def _build(cls: type[Any], raw: Mapping[str, Any], prefix: str, filename: str) -> Any:
    """Build settings dataclass ``cls`` from ``raw``, refusing unknown keys and bad types."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        line = raw.line_of(key) if isinstance(raw, LineDict) else 0
        where = f"{filename}:{line}" if line else filename
        if key not in fields:
            known = ", ".join(f"{prefix}{k}" for k in fields)
            raise ConfigError(f"{where}: unknown setting '{dotted}'; known settings: {known}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            if value is None:
                continue
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}: '{dotted}' must be a section of settings")
            values[key] = _build(tp, value, f"{dotted}.", filename)  # type: ignore[arg-type]
            continue
        ok, converted = _coerce(tp, value)
        if not ok:
            raise ConfigError(f"{where}: '{dotted}' must be {_type_name(tp)}, not {value!r}")
        allowed = _CHOICES.get(dotted)
        if allowed and str(converted).upper() not in {a.upper() for a in allowed}:
            raise ConfigError(f"{where}: '{dotted}' must be one of {', '.join(allowed)}")
        values[key] = converted
    return cls(**values)


def _env(name: str, environ: Mapping[str, str]) -> str | None:
    """Return a non-empty environment variable, or None."""
    value = environ.get(name, "").strip()
    return value or None


def config_path(explicit: str | None, environ: Mapping[str, str]) -> Path | None:
    """Decide which config file to read, if any."""
    if explicit:
        return Path(explicit)
    from_env = _env(CONFIG_ENV, environ)
    if from_env:
        return Path(from_env)
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def load_settings(
    explicit: str | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Load settings from the chosen config file and the environment; raise ConfigError."""
    environ = os.environ if environ is None else environ
    path = config_path(explicit, environ)
    settings = Settings()
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        try:
            raw = load_yaml(path)
        except YamlSyntaxError as exc:
            raise ConfigError(str(exc.problem)) from exc
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{path}:1: the config file must be a mapping of sections")
        settings = _build(Settings, raw, "", str(path))
        settings = dataclasses.replace(settings, source=str(path))
        if settings.logging.level.upper() != settings.logging.level:
            settings = dataclasses.replace(
                settings, logging=LoggingSettings(settings.logging.level.upper())
            )
    overrides: dict[str, Any] = {}
    for attr, var in (
        ("token", "TELEGRAM_BOT_TOKEN"),
        ("base_url", "TELEGRAM_BASE_URL"),
        ("base_file_url", "TELEGRAM_BASE_FILE_URL"),
    ):
        value = _env(var, environ)
        if value is not None:
            overrides[attr] = value
    if overrides:
        settings = dataclasses.replace(
            settings, telegram=dataclasses.replace(settings.telegram, **overrides)
        )
    m = settings.matching
    if not 0 <= m.suggest <= m.answer <= 100:
        raise ConfigError(
            f"{settings.source}: matching thresholds must satisfy 0 <= suggest <= answer <= 100"
        )
    return settings
