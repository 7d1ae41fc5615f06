"""``python -m bot run`` as a real process against a fake Bot API server on loopback.

The test starts a small HTTP server that speaks just enough of the Bot API (getMe,
deleteWebhook, setMyCommands, getUpdates with long polling, sendMessage,
sendChatAction, answerCallbackQuery, editMessageText), points the bot at it with
``TELEGRAM_BASE_URL``, plays a user (a question, then a press on a button of the
bot's answer), and stops the bot with SIGTERM. This proves start-up, the real HTTP
wiring (httpx, JSON, long polling) and a clean shutdown, which offline tests cannot.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.tg import BOT_USER

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE = ROOT / "knowledge"
TOKEN = "123:fake"
USER = {"id": 555, "is_bot": False, "first_name": "Ravi", "language_code": "en"}
LONG_POLL_CAP = 1.0  # seconds a getUpdates call may hang here, whatever the bot asks


class FakeBotApi:
    """A loopback Bot API: queued updates out, every call recorded."""

    def __init__(self) -> None:
        self.updates: queue.Queue[dict[str, Any]] = queue.Queue()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self._next_update = 1
        self._next_message = 500
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """Return the TELEGRAM_BASE_URL for this server (PTB appends the token)."""
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/bot"

    def push(self, kind: str, payload: dict[str, Any]) -> None:
        """Queue an update for the bot's next getUpdates."""
        with self.lock:
            update = {"update_id": self._next_update, kind: payload}
            self._next_update += 1
        self.updates.put(update)

    def wait_for(
        self, predicate: Callable[[str, dict[str, Any]], bool], timeout: float = 10.0
    ) -> dict[str, Any]:
        """Wait until a recorded call matches; return its parameters."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for method, params in self.calls:
                    if predicate(method, params):
                        return params
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [m for m, _ in self.calls]
                    raise AssertionError(f"no matching Bot API call within {timeout} s: {seen}")
                self.changed.wait(left)

    def _answer(self, method: str, params: dict[str, Any]) -> Any:
        """Return the result of one Bot API call."""
        if method == "getMe":
            return {**BOT_USER, "can_join_groups": True, "can_read_all_group_messages": False,
                    "supports_inline_queries": False}
        if method == "getUpdates":
            wait = min(float(params.get("timeout") or 0), LONG_POLL_CAP)
            offset = int(params.get("offset") or 0)
            try:
                update = self.updates.get(timeout=wait) if wait > 0 else self.updates.get_nowait()
            except queue.Empty:
                return []
            if update["update_id"] < offset:  # already confirmed by the bot
                return []
            return [update]
        if method in ("sendMessage", "editMessageText"):
            with self.lock:
                self._next_message += 1
                message_id = int(params.get("message_id") or self._next_message)
            chat_id = int(params["chat_id"])
            message = {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private", "first_name": "Ravi"},
                "from": BOT_USER,
                "text": params.get("text", ""),
            }
            if params.get("reply_markup"):
                markup = params["reply_markup"]
                message["reply_markup"] = json.loads(markup) if isinstance(markup, str) else markup
            return message
        return True  # deleteWebhook, setMyCommands, sendChatAction, answerCallbackQuery, ...

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                params = _decode(self.headers.get("Content-Type", ""), body)
                token_and_method = self.path.split("/bot", 1)[-1]
                token, _, method = token_and_method.partition("/")
                if token != TOKEN:
                    self._send(401, {"ok": False, "error_code": 401,
                                     "description": "Unauthorized"})
                    return
                result = api._answer(method, params)
                with api.changed:
                    api.calls.append((method, params))
                    api.changed.notify_all()
                self._send(200, {"ok": True, "result": result})

            do_GET = do_POST

            def _send(self, code: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                """Keep the test output quiet."""

        return Handler

    def __enter__(self) -> FakeBotApi:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _decode(content_type: str, body: bytes) -> dict[str, Any]:
    """Decode Bot API parameters: PTB posts form fields whose values are JSON."""
    if content_type.startswith("application/json"):
        return dict(json.loads(body or b"{}"))
    fields = urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True)
    params: dict[str, Any] = {}
    for name, (value, *_) in fields.items():
        try:
            params[name] = json.loads(value)
        except ValueError:
            params[name] = value
    return params


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """An environment for the bot process: a private config, no inherited bot settings."""
    config = tmp_path / "config.yaml"
    config.write_text(
        "telegram:\n"
        "  rate_limiter: false\n"
        "  typing_after: 0\n"  # show "typing" at once, so the test sees it on the wire
        "knowledge:\n"
        f"  path: {json.dumps(str(KNOWLEDGE))}\n"
        "  reload_interval: 0\n"
        "storage:\n"
        f"  path: {json.dumps(str(tmp_path / 'bot.sqlite3'))}\n"
        "logging:\n"
        "  level: DEBUG\n",
        encoding="utf-8",
    )
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("TELEGRAM_", "IMG_GUIDE_")) and k != "PYTHONPATH"
    }
    env.update(IMG_GUIDE_CONFIG=str(config), PYTHONPATH=str(ROOT), **extra)
    return env


@pytest.fixture
def fake_api() -> Iterator[FakeBotApi]:
    with FakeBotApi() as api:
        yield api


def test_the_bot_runs_answers_and_stops_cleanly(tmp_path: Path, fake_api: FakeBotApi) -> None:
    env = _env(tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_BASE_URL=fake_api.base_url)
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        fake_api.wait_for(lambda m, _: m == "setMyCommands", timeout=10)
        fake_api.push(
            "message",
            {
                "message_id": 1,
                "date": int(time.time()),
                "chat": {"id": USER["id"], "type": "private", "first_name": "Ravi"},
                "from": USER,
                "text": "what OET score do I need",
            },
        )
        answer = fake_api.wait_for(
            lambda m, p: m == "sendMessage" and p.get("chat_id") == USER["id"]
        )
        methods = [m for m, _ in fake_api.calls]
        assert methods.index("sendChatAction") < methods.index("sendMessage")
        assert answer["parse_mode"] == "HTML"
        buttons = [b["callback_data"] for row in answer["reply_markup"]["inline_keyboard"]
                   for b in row]
        assert "f:1:ecfmg-oet-medicine" in buttons
        related = next(b for b in buttons if b.startswith("t:"))

        message = {
            "message_id": 501,
            "date": int(time.time()),
            "chat": {"id": USER["id"], "type": "private", "first_name": "Ravi"},
            "from": BOT_USER,
            "text": "OET Medicine score for ECFMG",
            "reply_markup": answer["reply_markup"],
        }
        fake_api.push(
            "callback_query",
            {"id": "press-1", "from": USER, "chat_instance": "ci-555", "message": message,
             "data": related},
        )
        fake_api.wait_for(
            lambda m, p: m == "answerCallbackQuery" and p.get("callback_query_id") == "press-1"
        )
        opened = fake_api.wait_for(
            lambda m, p: m == "sendMessage"
            and f"f:1:{related[2:]}" in json.dumps(p.get("reply_markup"))
        )
        assert opened["chat_id"] == USER["id"]

        process.send_signal(signal.SIGTERM)
        try:
            _, stderr = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail("the bot did not stop within 10 s of SIGTERM")
        assert process.returncode == 0, stderr[-2000:]
        assert TOKEN not in stderr
        assert "Traceback" not in stderr, stderr[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=5)


def test_run_without_a_token_says_how_to_set_it(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "TELEGRAM_BOT_TOKEN" in lines[0] and "make chat" in lines[0]
