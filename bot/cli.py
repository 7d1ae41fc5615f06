"""The command line: ``python -m bot`` (or ``img-guide``) with its subcommands.

- ``run``: the Telegram bot;
- ``chat``: the same engine in a terminal (no token needed);
- ``check [PATH]``: validate a knowledge directory, print ``file:line: message``;
- ``ask [--kb PATH] [--json] [QUESTION]``: answer one question, or one per line of stdin;
- ``pathway --mermaid``: print the guided pathway as a mermaid diagram;
- ``unanswered``: what users asked that the bot could not answer (for staff);
- ``feedback``: Helpful / Not helpful counts per answer, least helpful first (for staff);
- ``dates [--json] [--on YYYY-MM-DD]``: upcoming events of the season calendar;
- ``reminders --preview [--on YYYY-MM-DD]``: what reminders a day would send (for staff);
- ``stats [--json] [--days N]``: questions, outcomes, feedback, tickets and the pathway
  funnel of the last N days (for staff).

Every subcommand takes ``--config PATH`` (or ``IMG_GUIDE_CONFIG``). This module only
parses arguments, builds objects through :mod:`bot.app` and prints; it holds no
business logic.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import json
import logging
import os
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from bot.config import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from bot.store import Store

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2

Row = dict[str, Any]
T = TypeVar("T")


def _parser() -> argparse.ArgumentParser:
    """Build the argument parser with one sub-parser per subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", metavar="PATH", help="config file (default: $IMG_GUIDE_CONFIG, ./config.yaml)"
    )
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="IMG Guide: a Telegram assistant for international medical graduates.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("run", parents=[common], help="run the Telegram bot")
    chat = sub.add_parser("chat", parents=[common], help="talk to the bot in this terminal")
    chat.add_argument("--kb", metavar="PATH", help="knowledge directory or file to use")
    chat.add_argument("--user", type=int, default=0, help="local user id for the pathway")
    chat.add_argument(
        "--db", metavar="PATH",
        help="database to use (default: the bot's, with .chat in its name, kept apart)",
    )
    check = sub.add_parser("check", parents=[common], help="validate a knowledge directory")
    check.add_argument("path", nargs="?", help="directory or file (default: knowledge.path)")
    ask = sub.add_parser("ask", parents=[common], help="answer questions from the command line")
    ask.add_argument("--kb", metavar="PATH", help="knowledge directory or file to use")
    ask.add_argument("--json", action="store_true", help="one JSON object per answer")
    ask.add_argument("question", nargs="*", help="the question (default: one per stdin line)")
    pathway = sub.add_parser("pathway", parents=[common], help="show the guided pathway")
    pathway.add_argument("--mermaid", action="store_true", help="print a mermaid diagram")
    pathway.add_argument("--kb", metavar="PATH", help="knowledge directory to use")
    unanswered = sub.add_parser(
        "unanswered", parents=[common], help="list questions the bot could not answer"
    )
    unanswered.add_argument("--limit", type=int, default=50, help="how many (default 50)")
    unanswered.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    feedback = sub.add_parser(
        "feedback", parents=[common], help="Helpful / Not helpful counts per answer"
    )
    feedback.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    saving = sub.add_parser(
        "backup", parents=[common], help="copy the database safely, even while the bot runs"
    )
    saving.add_argument("path", help="where to write the copy")
    restoring = sub.add_parser(
        "restore", parents=[common], help="put a backup in place of the database (bot stopped)"
    )
    restoring.add_argument("path", help="the backup to restore")
    dates = sub.add_parser("dates", parents=[common], help="upcoming events of the calendar")
    dates.add_argument("--json", action="store_true", help="a JSON array of events")
    dates.add_argument("--on", metavar="YYYY-MM-DD", type=_day, help="as of this day")
    dates.add_argument("--all", action="store_true", help="past events too")
    dates.add_argument("--kb", metavar="PATH", help="knowledge directory to use")
    reminders = sub.add_parser(
        "reminders", parents=[common], help="what reminders would be sent on a day"
    )
    reminders.add_argument(
        "--preview", action="store_true", help="show the day's reminders without sending"
    )
    reminders.add_argument("--on", metavar="YYYY-MM-DD", type=_day, help="the day (default today)")
    reminders.add_argument("--json", action="store_true", help="a JSON array")
    stats = sub.add_parser(
        "stats", parents=[common], help="questions, outcomes, feedback and the pathway funnel"
    )
    stats.add_argument("--json", action="store_true", help="one JSON object")
    stats.add_argument(
        "--days", type=_days, default=30, metavar="N", help="the last N days (default 30)"
    )
    return parser


def _days(value: str) -> int:
    """Parse --days: a whole number of days from 1 to 3650."""
    from bot.stats import valid_days

    try:
        days = int(value)
    except ValueError:
        days = 0
    if not valid_days(days):
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of days from 1 to 3650")
    return days


def _day(value: str) -> dt.date:
    """Parse --on; argparse turns the error into a usage message."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date written YYYY-MM-DD") from None


def _today() -> dt.date:
    """The current UTC day (the bot's days are UTC days)."""
    return dt.datetime.now(dt.UTC).date()


def _configure_logging(settings: Settings, command: str) -> None:
    """Send logs to stderr: the configured level for the bot, warnings only for tools."""
    level = settings.logging.level
    if command != "run" and level == "INFO":
        level = "WARNING"  # check/ask/chat output is for people and scripts, not a log
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # httpx logs every request URL at INFO, and a Bot API URL contains the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # At DEBUG the Telegram library prints whole updates (users' texts and names), which
    # /forget could never reach: it logs at INFO at most, whatever the bot's level.
    logging.getLogger("telegram").setLevel(max(logging.INFO, logging.getLogger().level))


def cmd_check(settings: Settings, path_arg: str | None, out: TextIO) -> int:
    """Validate the knowledge base (topics, synonyms, pathway); print every problem."""
    from bot.bundle import load_bundle

    path = Path(path_arg or settings.knowledge.path)
    bundle, problems = load_bundle(path, learned=False)  # the model is not checked
    for problem in problems:
        print(problem, file=out)
    if problems:
        print(f"{len(problems)} problem(s) found in {path}", file=sys.stderr)
        return EXIT_PROBLEMS
    assert bundle is not None
    from bot.calendar import warnings

    # Warnings go to stderr: stdout lists problems only (tools count its lines).
    for warning in sorted(warnings(bundle.calendar, _today()), key=lambda w: w.line):
        print(warning, file=sys.stderr)
    extra = f", a pathway of {len(bundle.pathway.steps)} steps" if bundle.pathway else ""
    extra += f", {len(bundle.calendar.events)} calendar events" if bundle.calendar.events else ""
    print(f"OK: {len(bundle.kb.topics)} topics{extra} in {path}", file=sys.stderr)
    return EXIT_OK


def cmd_ask(
    settings: Settings,
    kb_arg: str | None,
    as_json: bool,
    question: Sequence[str],
    stdin: TextIO,
    out: TextIO,
) -> int:
    """Answer one question, or each line of standard input, one output line each."""
    from bot.engine import answer_record

    path = Path(kb_arg or settings.knowledge.path)
    bundle = _loaded(path, with_pathway=False)
    if bundle is None:
        print(
            f"cannot answer: the knowledge base at {path} has problems "
            f"(run: python -m bot check {path})",
            file=sys.stderr,
        )
        return EXIT_USAGE
    lines = [" ".join(question)] if question else (line.rstrip("\n") for line in stdin)
    for line in lines:
        record = answer_record(bundle, settings.matching, line)
        if as_json:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            topic = record["topic"] or "-"
            out.write(
                f"{record['status']}\t{topic}\t{record['score']:.1f}\t"
                f"{_one_line(str(record['text']))}\n"
            )
        out.flush()
    return EXIT_OK


#: Characters that would act on a terminal rather than show: C0/C1 controls (ESC, BEL,
#: NUL, ...) and the bidirectional overrides that reorder what a reader sees.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """Show control characters of user text as escapes (``\\x1b``), never as actions."""
    return _UNSAFE.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)


def _one_line(text: str, limit: int = 160) -> str:
    """Squash a text onto one safe line for tabular output."""
    flat = printable(" ".join(text.split()))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def cmd_pathway(settings: Settings, kb_arg: str | None, mermaid: bool, out: TextIO) -> int:
    """Print the pathway as a mermaid diagram, or as a list of steps."""
    from bot.knowledge import PATHWAY_FILE
    from bot.pathway import load_pathway, to_mermaid

    path = Path(kb_arg or settings.knowledge.path)
    file = path / PATHWAY_FILE if path.is_dir() else path
    # Loaded on its own, so a broken topic file elsewhere does not stop staff from
    # regenerating the diagram; `check` validates the links to topics.
    pathway, problems = load_pathway(file, None, str(file))
    if pathway is None:
        for problem in problems:
            print(problem, file=sys.stderr)
        return EXIT_PROBLEMS
    if mermaid:
        out.write(to_mermaid(pathway))
        return EXIT_OK
    for step_id in pathway.order:
        out.write(f"{step_id}\t{pathway.steps[step_id].title}\n")
    return EXIT_OK


def _read_store(settings: Settings, query: Callable[[Store], Awaitable[T]]) -> T:
    """Open the configured database, run one read and close it again."""

    from bot.store import Store  # only the staff reports need the database

    async def fetch() -> T:
        store = await Store.open(settings.storage.path)
        try:
            return await query(store)
        finally:
            await store.close()

    return asyncio.run(fetch())


def _write_rows(rows: list[Row], as_json: bool, columns: Sequence[str], out: TextIO) -> None:
    """Print rows as JSON lines or as tab-separated columns."""
    for row in rows:
        if as_json:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            out.write("\t".join(_one_line(str(row[c]), 200) for c in columns) + "\n")


def cmd_unanswered(settings: Settings, limit: int, as_json: bool, out: TextIO) -> int:
    """Print the most recent questions the bot could not answer."""
    rows = _read_store(settings, lambda store: store.unanswered(limit=limit))
    if not rows and not as_json:
        out.write("No unanswered questions logged.\n")
    _write_rows(rows, as_json, ("asked_at", "reason", "text"), out)
    return EXIT_OK


def cmd_feedback(settings: Settings, as_json: bool, out: TextIO) -> int:
    """Print Helpful / Not helpful counts per topic, the least helpful first."""
    rows = _read_store(settings, lambda store: store.feedback_summary())
    if not as_json:
        if not rows:
            out.write("No feedback recorded yet.\n")
        else:
            out.write("not_helpful\thelpful\ttopic\n")
    _write_rows(rows, as_json, ("not_helpful", "helpful", "topic_id"), out)
    return EXIT_OK


def cmd_stats(settings: Settings, days: int, as_json: bool, out: TextIO) -> int:
    """Print the statistics of the last ``days`` days: one JSON object, or a report."""
    from bot.stats import collect, text_report

    bundle = _loaded(Path(settings.knowledge.path), learned=False)
    if bundle is None:
        return EXIT_PROBLEMS
    figures = _read_store(settings, lambda store: collect(store, bundle.pathway, days))
    out.write(json.dumps(figures, ensure_ascii=False) + "\n" if as_json else text_report(figures))
    return EXIT_OK


def cmd_backup_restore(settings: Settings, command: str, path: str, out: TextIO) -> int:
    """Back the database up to ``path``, or restore it from ``path``."""
    from bot.store import backup, restore

    database = settings.storage.path
    if command == "backup":
        backup(database, path)
        out.write(f"Backed up {database} to {path}.\n")
        return EXIT_OK
    kept = restore(path, database)
    out.write(f"Restored {database} from {path}.")
    out.write(f" The previous database is kept as {kept}.\n" if kept else "\n")
    return EXIT_OK


def event_record(event: Any, day: dt.date) -> Row:
    """One event as the ``dates --json`` contract describes it."""
    return {
        "id": event.id,
        "title": event.title,
        "date": event.date.isoformat(),
        "end": event.end.isoformat() if event.end else None,
        "time": event.time or None,
        "confirmed": event.confirmed,
        "season": event.season,
        "kind": event.kind,
        "source": event.source,
        "steps": list(event.steps),
        "status": event.relative(day),
    }


def _loaded(path: Path, **options: bool) -> Any:
    """Load the knowledge bundle at ``path``, or print its problems and return None."""
    from bot.bundle import load_bundle

    bundle, problems = load_bundle(path, **options)
    for problem in problems:
        print(problem, file=sys.stderr)
    return bundle


def cmd_dates(
    settings: Settings, kb_arg: str | None, as_json: bool, on: dt.date | None, show_all: bool,
    out: TextIO,
) -> int:
    """Print the upcoming events of the season calendar as of today (or ``on``)."""
    bundle = _loaded(Path(kb_arg or settings.knowledge.path), learned=False)
    if bundle is None:
        return EXIT_PROBLEMS
    day = on or _today()
    calendar = bundle.calendar
    events = list(calendar.events) if show_all else calendar.upcoming(day)
    if as_json:
        out.write(json.dumps([event_record(e, day) for e in events], ensure_ascii=False) + "\n")
        return EXIT_OK
    if not events:
        out.write(f"No upcoming events as of {day} (python -m bot dates --all lists past ones).\n")
    for event in events:
        flag = "" if event.confirmed else "  [not confirmed]"
        out.write(
            f"{event.date}\t{event.id}\t{event.when()} ({event.relative(day)}){flag}\t"
            f"{event.source}\n"
        )
    for event in calendar.stale(day):
        if not show_all:
            flag = "" if event.confirmed else ", not confirmed"
            out.write(f"not listed yet\t{event.series}\tlast: {event.when()} "
                      f"({event.season} Match{flag})\t{event.source}\n")
    return EXIT_OK


def cmd_reminders(
    settings: Settings, on: dt.date | None, as_json: bool, out: TextIO
) -> int:
    """Preview the reminders a day would send: event, days before, users, message."""
    from bot.chat import render_plain
    from bot.reminders import describe_plan, preview
    from bot.store import Store

    bundle = _loaded(Path(settings.knowledge.path), learned=False)
    if bundle is None:
        return EXIT_PROBLEMS
    day = on or _today()

    async def plan() -> tuple[list[Any], dict[str, int]]:
        store = await Store.open(settings.storage.path)
        try:
            return await preview(store, bundle, day), await store.reminder_counts()
        finally:
            await store.close()

    planned, counts = asyncio.run(plan())
    if as_json:
        out.write(json.dumps([
            {"event": p.event.id, "days_before": p.days_before, "kind": p.kind,
             "users": p.users, "text": render_plain(p.reply)}
            for p in planned
        ], ensure_ascii=False) + "\n")
        return EXIT_OK
    out.write(f"Reminders planned for {day} (nothing is sent by this command):\n")
    if not planned:
        out.write("none: no calendar event has a reminder due that day.\n")
    for item in planned:
        out.write(f"\n{describe_plan(item)}\n")
        out.write("  " + render_plain(item.reply).replace("\n", "\n  ") + "\n")
    if counts:
        out.write("\nIn the database: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
                  + "\n")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    try:
        return _run(argv)
    except BrokenPipeError:
        # The reader went away (`... | head`): stop quietly, without a traceback, and
        # keep Python from failing again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PROBLEMS


def _run(argv: Sequence[str] | None) -> int:
    """Parse the arguments and run one subcommand."""
    args = _parser().parse_args(argv)
    if isinstance(sys.stdin, io.TextIOWrapper):
        # Piped text in another encoding must not end the run: undecodable bytes become
        # U+FFFD and the remaining lines are still read.
        sys.stdin.reconfigure(errors="replace")
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    command = args.command
    _configure_logging(settings, command)
    from bot.store import StoreError

    try:
        return _dispatch(args, settings)
    except StoreError as exc:  # one clear line, no traceback
        print(f"cannot use the database: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    """Run the chosen subcommand."""
    command = args.command
    if command == "check":
        return cmd_check(settings, args.path, sys.stdout)
    if command == "ask":
        return cmd_ask(settings, args.kb, args.json, args.question, sys.stdin, sys.stdout)
    if command == "pathway":
        return cmd_pathway(settings, args.kb, args.mermaid, sys.stdout)
    if command == "unanswered":
        return cmd_unanswered(settings, args.limit, args.json, sys.stdout)
    if command == "feedback":
        return cmd_feedback(settings, args.json, sys.stdout)
    if command == "dates":
        return cmd_dates(settings, args.kb, args.json, args.on, args.all, sys.stdout)
    if command == "reminders":
        if not args.preview:
            print("reminders are sent by the running bot; use --preview to see a day's plan",
                  file=sys.stderr)
            return EXIT_USAGE
        return cmd_reminders(settings, args.on, args.json, sys.stdout)
    if command == "stats":
        return cmd_stats(settings, args.days, args.json, sys.stdout)
    if command in ("backup", "restore"):
        return cmd_backup_restore(settings, command, args.path, sys.stdout)
    if command == "chat":
        from bot.chat import run_chat

        return run_chat(settings, kb_path=args.kb, user_id=args.user, db_path=args.db)
    if command == "run":
        from bot.app import run_bot

        return run_bot(settings)
    return EXIT_USAGE  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
