"""Settings: one frozen object; unknown keys and wrong types stop start-up by name."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None, environ={})
    assert settings == Settings()
    assert settings.knowledge.path == "knowledge"
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.knowledge = None  # type: ignore[misc, assignment]


def test_the_example_file_documents_the_defaults() -> None:
    settings = load_settings(str(ROOT / "config.example.yaml"), environ={})
    assert dataclasses.replace(settings, source="built-in defaults") == Settings()


def test_environment_supplies_secrets_and_addresses(tmp_path: Path) -> None:
    env = {"TELEGRAM_BOT_TOKEN": "123:abc", "TELEGRAM_BASE_URL": "http://127.0.0.1:9/bot"}
    settings = load_settings(None, environ={**env, "IMG_GUIDE_CONFIG": ""})
    assert settings.telegram.token == "123:abc"
    assert settings.telegram.base_url == "http://127.0.0.1:9/bot"
    assert "123:abc" not in repr(settings)


def test_config_file_from_environment_variable(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("storage:\n  path: /tmp/x.sqlite3\ntelegram:\n  admins: [42, 43]\n")
    settings = load_settings(None, environ={"IMG_GUIDE_CONFIG": str(path)})
    assert settings.storage.path == "/tmp/x.sqlite3"
    assert settings.telegram.admins == (42, 43)
    assert settings.source == str(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("storage:\n  pth: x\n", "c.yaml:2: unknown setting 'storage.pth'"),
        ("nonsense: 1\n", "c.yaml:1: unknown setting 'nonsense'"),
        ("telegram:\n  admins: [me]\n", "'telegram.admins' must be a list of a whole numbers"),
        ("knowledge:\n  reload_interval: soon\n", "'knowledge.reload_interval' must be a number"),
        ("telegram:\n  mode: carrier-pigeon\n", "'telegram.mode' must be one of polling, webhook"),
        ("telegram:\n  rate_limiter: 3\n", "'telegram.rate_limiter' must be true or false"),
        ("matching:\n  answer: 30\n  suggest: 50\n", "suggest <= answer"),
        ("storage: [1]\n", "'storage' must be a section"),
        ("storage:\n  path: [unclosed\n", "YAML syntax error"),
    ],
)
def test_bad_settings_name_the_key_and_the_file(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(str(path), environ={})
    assert expected in str(caught.value)
    assert "c.yaml" in str(caught.value)


def test_a_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(str(tmp_path / "missing.yaml"), environ={})
