"""Shared fixtures: real knowledge files, a real SQLite store in a temporary directory.

Nothing here (or in any test) reaches beyond loopback: the socket guard below
refuses connections to any other address.
"""

from __future__ import annotations

import ipaddress
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.bundle import Bundle, KnowledgeHolder, load_bundle
from bot.config import Settings
from bot.engine import Engine
from bot.store import Store

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE = ROOT / "knowledge"
DATA = Path(__file__).resolve().parent / "data"

_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: object) -> None:
    """Refuse any connection that is not to this machine."""
    host = address[0] if isinstance(address, tuple) else None
    if host is not None:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        if host != "localhost" and (ip is None or not ip.is_loopback):
            raise OSError(f"tests may only connect to loopback, not {host!r}")
    _real_connect(self, address)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)


@pytest.fixture(scope="session")
def real_bundle() -> Bundle:
    """The project's own knowledge base, loaded once for the whole session."""
    bundle, problems = load_bundle(KNOWLEDGE)
    assert bundle is not None, "\n".join(str(p) for p in problems)
    return bundle


#: A small account FAQ, for tests about the tools rather than the project's content.
FAQ_TOPICS = """\
- id: reset-password
  title: Reset your password
  questions: [How do I reset my password?, forgot my password]
  answer: Use the "Forgot password" link on the sign-in page.
- id: delete-account
  title: Delete your account
  questions: [How do I delete my account?, close my account for good]
  answer: Go to Settings, then Account, then Delete.
"""


def write_kb(directory: Path, topics: str, name: str = "topics.yaml") -> Path:
    """Write a one-file knowledge directory (no pathway) and return it.

    ``topics`` is the YAML list of topics that goes under ``topics:``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text("version: 1\ntopics:\n" + topics, encoding="utf-8")
    return directory


@pytest.fixture
def kb_dir(tmp_path: Path) -> Iterator[Path]:
    """A private copy of the real knowledge directory that a test may edit."""
    target = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, target)
    yield target


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A real SQLite store in a temporary file."""
    opened = await Store.open(tmp_path / "store.sqlite3")
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def settings() -> Settings:
    """Built-in default settings."""
    return Settings()


@pytest.fixture
def engine(real_bundle: Bundle, store: Store, settings: Settings) -> Engine:
    """An engine over the real knowledge base and a fresh store."""
    return Engine(KnowledgeHolder(KNOWLEDGE, real_bundle), store, settings.matching)
