"""The bot as it runs: a real process over HTTP on loopback, beside a bare echo bot.

Run from the repository root::

    .venv/bin/python -m benchmarks.live [--messages N] [--rounds R]

A small fake Bot API server (this file, on 127.0.0.1) feeds both programs the same
messages through ``getUpdates`` and counts their ``sendMessage`` replies. Both are real
processes started the way staff start them: ``python -m bot run`` (with its defaults:
the rate limiter on, the real knowledge base, a SQLite file in a temporary directory)
and a bare python-telegram-bot echo bot (``--echo``), plus the same echo bot replying
with an answer's weight (about 1,100 characters of HTML with links, five buttons:
``--echo-sized``), which separates the bot's own work from the size of what it sends.
For each it reports

- start-up: spawn to the first ``getUpdates`` (the bot answers from then on);
- CPU per reply: the process's user + system CPU time (``/proc/PID/stat``, all
  threads) spent from the first message sent until the last reply arrived, divided by
  the replies; and the ratio of the two, which is what means something on a noisy
  machine.

Each message comes from its own user (the rate limiter allows one message per second
per chat), with a question mix like real traffic, sent at ``--rate`` messages per second
(default 20, as users write, under Telegram's 30 a second); ``--rate 0`` sends them all at
once, which lets the echo bot read the burst in a few polls and answer it unthrottled
while the bot's rate limiter (on by default) spreads its replies over ten seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = (
    "Is Step 2 CS still required?", "how many attempts for step 1", "oet score for ecfmg",
    "j1 waiver", "when is the nrmp rank order list deadline", "what is soap",
    "i graduated in india in 2019 what do i need to do", "hi", "thanks",
    "what's the best pizza in rome", "cuanto cuesta el step 1", "eras token",
)
CLK_TCK = os.sysconf("SC_CLK_TCK")


class FakeTelegram:
    """Just enough of the Bot API for getUpdates / sendMessage, per token."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.updates: dict[str, list[dict[str, Any]]] = {}
        self.replies: dict[str, int] = {}
        self.first_poll: dict[str, float] = {}
        self.next_id = 1
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/bot"

    def send(self, token: str, user: int, text: str) -> None:
        """Queue a private text message from ``user``."""
        with self.lock:
            message = {
                "message_id": self.next_id, "date": int(time.time()),
                "chat": {"id": user, "type": "private", "first_name": "U"},
                "from": {"id": user, "is_bot": False, "first_name": "U"}, "text": text,
            }
            self.updates.setdefault(token, []).append(
                {"update_id": self.next_id, "message": message}
            )
            self.next_id += 1
            self.lock.notify_all()

    def call(self, token: str, method: str, params: dict[str, Any]) -> Any:
        """Answer one Bot API call."""
        if method == "getMe":
            return {"id": 1, "is_bot": True, "first_name": "Bench", "username": "bench_bot",
                    "can_join_groups": True, "can_read_all_group_messages": False,
                    "supports_inline_queries": False}
        if method == "getUpdates":
            offset = int(params.get("offset") or 0)
            deadline = time.monotonic() + min(float(params.get("timeout") or 0), 1.0)
            with self.lock:
                self.first_poll.setdefault(token, time.monotonic())
                while True:
                    pending = [u for u in self.updates.get(token, []) if u["update_id"] >= offset]
                    self.updates[token] = pending
                    if pending or time.monotonic() >= deadline:
                        return pending[:100]
                    self.lock.wait(deadline - time.monotonic())
        if method in ("sendMessage", "editMessageText"):
            with self.lock:
                self.replies[token] = self.replies.get(token, 0) + 1
                self.lock.notify_all()
            chat = int(params.get("chat_id") or 0)
            return {"message_id": 1, "date": int(time.time()), "text": "x",
                    "chat": {"id": chat, "type": "private"}}
        return True

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                _, _, rest = self.path.partition("/bot")
                token, _, method = rest.rpartition("/")
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                params: dict[str, Any] = {}
                if body:
                    try:
                        params = json.loads(body)
                    except ValueError:
                        params = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                payload = json.dumps({"ok": True, "result": fake.call(token, method, params)})
                data = payload.encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the program stopped while polling

            do_GET = do_POST

        return Handler


def cpu_seconds(pid: int) -> float:
    """Return a process's user + system CPU time, all threads (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def settle(pid: int, quiet: float = 0.02, limit: float = 120.0) -> None:
    """Wait until the process spends under ``quiet`` s of CPU per half second."""
    deadline = time.monotonic() + limit
    last = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = cpu_seconds(pid)
        if now - last < quiet:
            return
        last = now


def measure(fake: FakeTelegram, name: str, command: list[str], env: dict[str, str],
            messages: int, first_user: int, cwd: Path = ROOT,
            rate: float = 0.0) -> dict[str, float]:
    """Start one program, wait for its first poll, send messages, measure, stop it."""
    token = f"{first_user}:{name}"
    env = {**env, "TELEGRAM_BOT_TOKEN": token, "TELEGRAM_BASE_URL": fake.base_url}
    started = time.monotonic()
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    try:
        while token not in fake.first_poll:
            if process.poll() is not None:
                raise SystemExit(f"{name} exited: {process.stderr.read().decode()[-2000:]}")
            time.sleep(0.005)
        startup = fake.first_poll[token] - started
        settle(process.pid)  # start-up work (training in the background) is not a reply's
        cpu0, wall0 = cpu_seconds(process.pid), time.monotonic()
        for i in range(messages):
            fake.send(token, first_user + i, QUESTIONS[i % len(QUESTIONS)])
            if rate > 0:  # as users write: one at a time, not a burst read in one poll
                time.sleep(1 / rate)
        with fake.lock:
            while fake.replies.get(token, 0) < messages:
                if not fake.lock.wait(60):
                    raise SystemExit(f"{name}: only {fake.replies.get(token, 0)} replies")
        cpu, wall = cpu_seconds(process.pid) - cpu0, time.monotonic() - wall0
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
    return {"startup_s": startup, "cpu_ms_per_reply": 1000 * cpu / messages, "wall_s": wall}


def echo_bot(sized: bool = False) -> None:
    """A bare python-telegram-bot echo bot: the baseline.

    ``sized``: instead of the user's text, reply with what an answer weighs (an HTML text
    of about 1,100 characters with links, and five buttons), so that the difference to the
    bot is the bot's own work, not the size of what it sends.
    """
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
    from telegram.ext import Application, ContextTypes, MessageHandler, filters

    body = "<b>A topic title</b>\n\n" + "An answer sentence of ordinary length. " * 24
    body += '\n\n<i>Official sources: <a href="https://www.ecfmg.org/">ECFMG</a> · '
    body += '<a href="https://www.nrmp.org/">NRMP</a></i>\n<i>Last reviewed 2 December 2026.</i>'
    keyboard = InlineKeyboardMarkup(
        [[InlineKeyboardButton(f"➡ Related topic {i}", callback_data=f"o:topic-{i}")]
         for i in range(3)]
        + [[InlineKeyboardButton("👍 Helpful", callback_data="f:t:1"),
            InlineKeyboardButton("👎 Not helpful", callback_data="f:t:0")]]
    )

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message and message.text:
            if sized:
                await message.reply_html(body, reply_markup=keyboard)
            else:
                await message.reply_text(message.text)

    app = (Application.builder().token(os.environ["TELEGRAM_BOT_TOKEN"])
           .base_url(os.environ["TELEGRAM_BASE_URL"]).build())
    app.add_handler(MessageHandler(filters.TEXT, echo))
    app.run_polling()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--echo", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--echo-sized", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--rate", type=float, default=20.0,
        help="messages per second, as users send them (default 20, under Telegram's 30/s "
        "limit); 0 sends them all at once (a burst)",
    )
    parser.add_argument(
        "--bot-dir", type=Path, default=ROOT,
        help="run the bot of another checkout (an A/B against an older version)",
    )
    args = parser.parse_args()
    if args.echo or args.echo_sized:
        echo_bot(sized=args.echo_sized)
        return
    fake = FakeTelegram()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "IMG_GUIDE"))}
    results: dict[str, list[dict[str, float]]] = {"echo": [], "echo-sized": [], "bot": []}
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(
            f"storage:\n  path: {Path(tmp) / 'bench.sqlite3'}\n"
            f"knowledge:\n  path: {args.bot_dir / 'knowledge'}\n"
        )
        programs = {
            "echo": [sys.executable, "-m", "benchmarks.live", "--echo"],
            "echo-sized": [sys.executable, "-m", "benchmarks.live", "--echo-sized"],
            "bot": [sys.executable, "-m", "bot", "run", "--config", str(config)],
        }
        for round_ in range(args.rounds):
            for name, command in programs.items():  # alternate, so both see the same noise
                user = 10_000_000 * (round_ + 1) + 3_000_000 * list(programs).index(name)
                cwd = args.bot_dir if name == "bot" else ROOT
                results[name].append(
                    measure(fake, name, command, base, args.messages, user, cwd, args.rate)
                )
    summary = {
        name: {key: statistics.median(r[key] for r in rows) for key in rows[0]}
        for name, rows in results.items()
    }
    ratio = summary["bot"]["cpu_ms_per_reply"] / summary["echo"]["cpu_ms_per_reply"]
    sized_ratio = summary["bot"]["cpu_ms_per_reply"] / summary["echo-sized"]["cpu_ms_per_reply"]
    startup_ratio = summary["bot"]["startup_s"] / summary["echo"]["startup_s"]
    if args.json:
        print(json.dumps({"median": summary, "cpu_ratio": ratio, "cpu_ratio_sized": sized_ratio,
                          "startup_ratio": startup_ratio,
                          "rounds": results}, indent=2))
        return
    pace = f"{args.rate:g} per second" if args.rate > 0 else "all at once"
    print(f"{args.messages} messages ({pace}), {args.rounds} rounds (medians)")
    print(f"{'program':10} {'start-up s':>10} {'CPU ms/reply':>13} {'wall s':>7}")
    for name, row in summary.items():
        print(f"{name:10} {row['startup_s']:10.2f} {row['cpu_ms_per_reply']:13.2f}"
              f" {row['wall_s']:7.2f}")
    print(f"\nCPU per reply: bot / echo = {ratio:.2f}x; bot / echo-sized (replies as long as "
          f"answers, with buttons) = {sized_ratio:.2f}x; start-up: bot / echo = "
          f"{startup_ratio:.2f}x")


if __name__ == "__main__":
    main()
