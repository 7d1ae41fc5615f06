"""Persistence: one aiosqlite connection in WAL mode, parameterised SQL, migrations.

The store keeps what the engine must remember between messages and restarts:
each user's pathway position and step statuses with their history, logged
questions (the unanswered ones are what staff review), feedback on answers, and a
pending dialogue step ("tell us what you were looking for"). It holds no business
rules. Writes run one transaction at a time under a lock, commit before the
method returns (so what a user was told is on disk), and never block the event
loop: aiosqlite runs SQLite in its own thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import aiosqlite

logger = logging.getLogger(__name__)

MAX_TEXT = 2000  # characters of a logged message kept; the rest is cut
ASKED_EVERY = 1.0  # seconds statistics rows are gathered before one write
ASKED_BATCH = 500  # ... or this many rows, whichever comes first

MIGRATIONS: Sequence[str] = (
    # 1: the question log and feedback.
    """
    CREATE TABLE questions (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL,
        text TEXT NOT NULL,
        status TEXT NOT NULL,
        topic_id TEXT,
        score REAL,
        asked_at TEXT NOT NULL
    );
    CREATE INDEX questions_status ON questions (status, asked_at);
    CREATE INDEX questions_user ON questions (user_id);
    CREATE TABLE feedback (
        user_id INTEGER NOT NULL,
        topic_id TEXT NOT NULL,
        helpful INTEGER NOT NULL,
        comment TEXT,
        given_at TEXT NOT NULL,
        PRIMARY KEY (user_id, topic_id)
    );
    """,
    # 2: the guided pathway.
    """
    CREATE TABLE users (
        user_id INTEGER PRIMARY KEY,
        current_step TEXT,
        trail TEXT NOT NULL DEFAULT '[]',
        awaiting TEXT,
        awaiting_since TEXT,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE progress (
        user_id INTEGER NOT NULL,
        step_id TEXT NOT NULL,
        status TEXT NOT NULL,
        choice TEXT,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (user_id, step_id)
    );
    CREATE TABLE progress_history (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL,
        step_id TEXT NOT NULL,
        status TEXT NOT NULL,
        changed_at TEXT NOT NULL
    );
    CREATE INDEX progress_history_user ON progress_history (user_id, id);
    CREATE TRIGGER progress_history_on_insert AFTER INSERT ON progress BEGIN
        INSERT INTO progress_history (user_id, step_id, status, changed_at)
        VALUES (NEW.user_id, NEW.step_id, NEW.status, NEW.updated_at);
    END;
    CREATE TRIGGER progress_history_on_update AFTER UPDATE ON progress BEGIN
        INSERT INTO progress_history (user_id, step_id, status, changed_at)
        VALUES (NEW.user_id, NEW.step_id, NEW.status, NEW.updated_at);
    END;
    """,
    # 3: reminders: who wants which kind, and every reminder planned, sent or dropped.
    """
    CREATE TABLE reminder_settings (
        user_id INTEGER PRIMARY KEY,
        chat_id INTEGER NOT NULL,
        deadlines INTEGER NOT NULL DEFAULT 0,
        milestones INTEGER NOT NULL DEFAULT 0,
        blocked_at TEXT,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE reminders (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        days_before INTEGER NOT NULL,
        kind TEXT NOT NULL,
        due_on TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'due',
        reason TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        done_at TEXT,
        UNIQUE (user_id, event_id, days_before)
    );
    CREATE INDEX reminders_due ON reminders (state, due_on);
    CREATE TABLE scheduler_state (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 4: the staff loop: tickets handed to a person, and one row per message for statistics
    # (what the bot did with it, never the text).
    """
    CREATE TABLE tickets (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL,
        chat_id INTEGER NOT NULL,
        first_name TEXT,
        question TEXT NOT NULL,
        guesses TEXT NOT NULL DEFAULT '[]',
        state TEXT NOT NULL DEFAULT 'open',
        answer TEXT,
        answered_by INTEGER,
        answered_by_name TEXT,
        created_at TEXT NOT NULL,
        answered_at TEXT,
        closed_at TEXT
    );
    CREATE INDEX tickets_state ON tickets (state, created_at);
    CREATE INDEX tickets_user ON tickets (user_id, state);
    CREATE TABLE asked (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        topic_id TEXT,
        asked_at TEXT NOT NULL
    );
    CREATE INDEX asked_time ON asked (asked_at);
    CREATE INDEX asked_user ON asked (user_id);
    """,
)

#: What a reminder row can be: waiting for its day, handed to Telegram, or finished.
REMINDER_KINDS = ("deadlines", "milestones")
FINISHED_STATUSES = ("done", "not_applicable")

UNANSWERED_STATUSES = ("fallback", "none_of_these", "not_helpful")


def _statements(script: str) -> list[str]:
    """Split a migration script into complete statements (triggers included)."""
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements


def _now() -> str:
    """Return the current UTC time as ISO 8601 text."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class StoreError(Exception):
    """The database cannot be used safely; the message names the file and what to do."""


def _check_files(path: str) -> None:
    """Refuse a missing database whose -wal remains, and files the bot cannot write."""
    db = Path(path)
    wal = Path(path + "-wal")
    if not db.exists() and wal.exists():
        raise StoreError(
            f"{db} is missing but {wal} remains: restore the database file from a backup "
            f"(python -m bot restore), or move {wal.name} away to start with an empty database"
        )
    for target in (db, db.parent):
        if target.exists() and not os.access(target, os.W_OK):
            raise StoreError(
                f"{target} is read-only: the bot could not save anyone's progress; "
                "make it writable for the user running the bot"
            )


def backup(database: str | Path, target: str | Path) -> None:
    """Copy the database to ``target`` with SQLite's online backup API.

    The copy is consistent even while the bot runs and writes: SQLite copies a snapshot
    page by page. An existing ``target`` is replaced only once the copy is complete.
    """
    source_path, target_path = Path(database), Path(target)
    if not source_path.exists():
        raise StoreError(f"{source_path} does not exist: nothing to back up")
    partial = target_path.with_name(target_path.name + ".partial")
    partial.unlink(missing_ok=True)
    with contextlib.closing(sqlite3.connect(source_path)) as source, contextlib.closing(
        sqlite3.connect(partial)
    ) as copy:
        source.backup(copy)
    os.replace(partial, target_path)


def restore(saved: str | Path, database: str | Path) -> Path | None:
    """Put a backup in place of the database (stop the bot first); return the set-aside file.

    The backup is checked first (integrity and schema version). The current database,
    if any, is kept beside it as ``<name>.before-restore``, never deleted.
    """
    saved_path, target = Path(saved), Path(database)
    if not saved_path.is_file():
        raise StoreError(f"{saved_path} does not exist")
    try:
        with contextlib.closing(sqlite3.connect(f"file:{saved_path}?mode=ro", uri=True)) as db:
            check = [row[0] for row in db.execute("PRAGMA quick_check")]
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            version = (
                db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
                if "schema_version" in tables else None
            )
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{saved_path} is not a usable backup ({exc})") from exc
    if check != ["ok"] or version is None:
        raise StoreError(f"{saved_path} is not a usable backup of this bot's database")
    if int(version) > len(MIGRATIONS):
        raise StoreError(f"{saved_path} was written by a newer version of the bot")
    kept: Path | None = None
    if target.exists():
        kept = target.with_name(target.name + ".before-restore")
        backup(target, kept)
    for leftover in (Path(f"{target}-wal"), Path(f"{target}-shm")):
        leftover.unlink(missing_ok=True)
    backup(saved_path, target)
    return kept


@dataclass(frozen=True)
class UserState:
    """Where a user stands in the pathway (the pending dialogue is :meth:`Store.awaiting`)."""

    user_id: int
    current_step: str | None = None
    trail: tuple[str, ...] = ()
    statuses: dict[str, str] = field(default_factory=dict)
    choices: dict[str, str] = field(default_factory=dict)


class Store:
    """The narrow async interface the engine uses to remember things."""

    def __init__(self, conn: aiosqlite.Connection, path: str) -> None:
        self._conn = conn
        self.path = path
        self._write_lock = asyncio.Lock()
        self._pending: list[tuple[Sequence[tuple[str, Sequence[Any]]], asyncio.Future[int | None]]]
        self._pending = []
        self._flusher: asyncio.Future[None] | None = None
        self.commits = 0  # transactions committed by this process (writes are grouped)
        self._background: set[asyncio.Future[int | None]] = set()
        self._asked: list[tuple[int, str, str | None, str]] = []
        self._asked_timer: asyncio.TimerHandle | None = None
        # Users who may have a pending dialogue step. Most messages are plain questions
        # from users with none, and this spares them a query. A superset is harmless (the
        # database has the last word); this process is the only writer of the column.
        self._maybe_awaiting: set[int] = set()

    @classmethod
    async def open(cls, path: str | Path) -> Store:
        """Open (creating if needed) the database and bring its schema up to date."""
        path = str(path)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            _check_files(path)
        try:
            conn = await aiosqlite.connect(path, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"{path} cannot be opened ({exc})") from exc
        conn.row_factory = aiosqlite.Row
        try:
            await cls._check_integrity(conn, path)
            await conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is on disk before the user is told it happened.
            await conn.execute("PRAGMA synchronous=FULL")
            await conn.execute("PRAGMA foreign_keys=ON")
            await conn.execute("PRAGMA busy_timeout=5000")
            # Deleted text is overwritten, not left in free pages (see forget()).
            await conn.execute("PRAGMA secure_delete=ON")
            store = cls(conn, path)
            await store._migrate()
            rows = await store._rows("SELECT user_id FROM users WHERE awaiting IS NOT NULL")
            store._maybe_awaiting.update(int(row["user_id"]) for row in rows)
        except sqlite3.DatabaseError as exc:  # "file is not a database" and the like
            await conn.close()
            raise StoreError(
                f"{path} is not a usable database ({exc}): restore a backup "
                "(python -m bot restore) or move the file away to start empty"
            ) from exc
        except BaseException:
            await conn.close()
            raise
        return store

    @staticmethod
    async def _check_integrity(conn: aiosqlite.Connection, path: str) -> None:
        """Run SQLite's quick check; refuse a damaged file instead of writing into it."""
        async with conn.execute("PRAGMA quick_check") as cur:
            found = [str(row[0]) for row in await cur.fetchall()]
        if found != ["ok"]:
            raise StoreError(
                f"{path} is damaged (SQLite quick_check: {found[0][:120]}): restore a backup "
                "(python -m bot restore); the damaged file was left untouched"
            )

    async def close(self) -> None:
        """Finish pending writes, then close the connection."""
        await self._drain()
        if self._flusher is not None and not self._flusher.done():
            await self._flusher
        await self._conn.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def schema_version(self) -> int:
        """Return the schema version the database is at."""
        async with self._conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name='schema_version'"
        ) as cur:
            if await cur.fetchone() is None:
                return 0
        async with self._conn.execute("SELECT MAX(version) FROM schema_version") as cur:
            row = await cur.fetchone()
        return int(row[0] or 0) if row else 0

    async def _migrate(self) -> None:
        """Apply every migration newer than the database, each in its own transaction."""
        await self._conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
            "applied_at TEXT NOT NULL)"
        )
        current = await self.schema_version()
        if current > len(MIGRATIONS):
            raise StoreError(
                f"{self.path} was written by a newer version of the bot (schema {current}; "
                f"this version knows {len(MIGRATIONS)}): run the newer version, or restore "
                "a backup made by this one"
            )
        for version, script in enumerate(MIGRATIONS, start=1):
            if version <= current:
                continue
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _statements(script):
                    await self._conn.execute(statement)
                await self._conn.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                    (version, _now()),
                )
                await self._conn.execute("COMMIT")
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            logger.info("database %s migrated to schema version %d", self.path, version)

    async def _write(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> int | None:
        """Run statements atomically and durably; return the last row id.

        Writes that arrive while a commit is in progress are grouped into the next
        transaction (group commit): one fsync serves them all, and each caller is
        released only after the commit that holds its write, so durability is kept.
        Each write runs in its own savepoint, so a failing one does not undo the others.
        """
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._pending.append((statements, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())
        return await future

    async def _flush(self) -> None:
        """Commit pending writes in batches until none are left."""
        async with self._write_lock:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    results = await self._transaction([statements for statements, _ in batch])
                except Exception:
                    if len(batch) == 1:
                        results = None
                    else:  # find the write that failed: retry each on its own
                        for statements, future in batch:
                            await self._settle(future, [statements])
                        continue
                if results is None:
                    await self._settle(batch[0][1], [batch[0][0]])
                    continue
                for (_, future), last in zip(batch, results, strict=True):
                    if not future.done():  # done: the caller gave up waiting
                        future.set_result(last)

    async def _settle(
        self, future: asyncio.Future[int | None], writes: list[Sequence[tuple[str, Sequence[Any]]]]
    ) -> None:
        """Run writes in one transaction and settle ``future`` with the outcome."""
        try:
            (last,) = await self._transaction(writes)
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():
            future.set_result(last)

    async def _transaction(
        self, writes: list[Sequence[tuple[str, Sequence[Any]]]]
    ) -> list[int | None]:
        """Run several writes in one committed transaction; return each one's last row id."""
        await self._conn.execute("BEGIN IMMEDIATE")
        try:
            results: list[int | None] = []
            for statements in writes:
                last: int | None = None
                for sql, params in statements:
                    # One hop to the database thread: the statement and its row id.
                    row = await self._conn.execute_insert(sql, params)
                    last = int(row[0]) if row else None
                results.append(last)
            await self._conn.execute("COMMIT")
            self.commits += 1
        except BaseException:
            with contextlib.suppress(Exception):
                await self._conn.execute("ROLLBACK")
            raise
        return results

    async def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run a query and return its rows as dictionaries."""
        # One hop to SQLite's thread (execute, fetch, close), not three.
        return [dict(row) for row in await self._conn.execute_fetchall(sql, params)]

    # -- questions and feedback -------------------------------------------------------

    async def log_question(
        self, user_id: int, text: str, status: str, topic_id: str | None, score: float | None
    ) -> int:
        """Log a question with what the bot did with it; return its id."""
        row_id = await self._write(
            [
                (
                    "INSERT INTO questions (user_id, text, status, topic_id, score, asked_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (user_id, text[:MAX_TEXT], status, topic_id, score, _now()),
                )
            ]
        )
        assert row_id is not None
        return row_id

    # -- tickets: questions handed to a person ------------------------------------------

    async def open_tickets_of(self, user_id: int) -> int:
        """How many open tickets a user has."""
        rows = await self._rows(
            "SELECT COUNT(*) AS n FROM tickets WHERE user_id = ? AND state = 'open'", (user_id,)
        )
        return int(rows[0]["n"])

    async def create_ticket(
        self, user_id: int, chat_id: int, first_name: str | None, question: str,
        guesses: Sequence[str],
    ) -> int:
        """Store a new open ticket; return its id."""
        row_id = await self._write(
            [
                (
                    "INSERT INTO tickets (user_id, chat_id, first_name, question, guesses, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (user_id, chat_id, first_name, question, json.dumps(list(guesses)), _now()),
                )
            ]
        )
        assert row_id is not None
        return row_id

    async def ticket(self, ticket_id: int) -> dict[str, Any] | None:
        """One ticket, or None."""
        rows = await self._rows("SELECT * FROM tickets WHERE id = ?", (ticket_id,))
        return rows[0] if rows else None

    async def answer_ticket(
        self, ticket_id: int, answer: str, by: int, by_name: str | None
    ) -> bool:
        """Record the answer of an open ticket; False if it was not open (someone was first)."""
        before = self._conn.total_changes
        await self._write(
            [
                (
                    "UPDATE tickets SET state = 'answered', answer = ?, answered_by = ?, "
                    "answered_by_name = ?, answered_at = ? WHERE id = ? AND state = 'open'",
                    (answer, by, by_name, _now(), ticket_id),
                )
            ]
        )
        return self._conn.total_changes > before

    async def close_ticket(self, ticket_id: int) -> bool:
        """Close a ticket that is not closed yet; False if there was nothing to close."""
        before = self._conn.total_changes
        await self._write(
            [
                (
                    "UPDATE tickets SET state = 'closed', closed_at = ? "
                    "WHERE id = ? AND state != 'closed'",
                    (_now(), ticket_id),
                )
            ]
        )
        return self._conn.total_changes > before

    async def open_tickets(self, limit: int = 10) -> tuple[list[dict[str, Any]], int]:
        """The newest open tickets, and how many are open in all."""
        rows = await self._rows(
            "SELECT * FROM tickets WHERE state = 'open' ORDER BY id DESC LIMIT ?", (limit,)
        )
        total = await self._rows("SELECT COUNT(*) AS n FROM tickets WHERE state = 'open'")
        return rows, int(total[0]["n"])

    async def question(self, question_id: int) -> dict[str, Any] | None:
        """One logged question, or None."""
        rows = await self._rows("SELECT * FROM questions WHERE id = ?", (question_id,))
        return rows[0] if rows else None

    async def set_question_status(self, ids: Sequence[int], status: str) -> None:
        """Mark logged questions as handled by staff (e.g. added as a phrasing, ignored)."""
        if not ids:
            return
        marks = ",".join("?" * len(ids))
        await self._write(
            [(f"UPDATE questions SET status = ? WHERE id IN ({marks})", (status, *ids))]
        )

    def record_asked(self, user_id: int, outcome: str, topic_id: str | None) -> None:
        """Count one message's outcome for statistics, without holding up the reply.

        Rows (no text) are gathered for up to :data:`ASKED_EVERY` seconds and written in
        one transaction, so a stream of messages costs one commit a second, not one each;
        export, forget and close write what is gathered first. A killed process loses at
        most that last second of statistics, never anything a user was told was saved.
        """
        self._asked.append((user_id, outcome, topic_id, _now()))
        if len(self._asked) >= ASKED_BATCH:  # a flood: write now, memory stays bounded
            if self._asked_timer is not None:
                self._asked_timer.cancel()
            self._flush_asked()
        elif self._asked_timer is None:
            loop = asyncio.get_running_loop()
            self._asked_timer = loop.call_later(ASKED_EVERY, self._flush_asked)

    def _flush_asked(self) -> None:
        """Start writing the gathered statistics rows in one transaction."""
        self._asked_timer = None
        rows, self._asked = self._asked, []
        if not rows:
            return
        future = asyncio.ensure_future(
            self._write(
                [
                    (
                        "INSERT INTO asked (user_id, outcome, topic_id, asked_at) "
                        "VALUES (?, ?, ?, ?)",
                        row,
                    )
                    for row in rows
                ]
            )
        )
        self._background.add(future)
        future.add_done_callback(self._settled)

    def _settled(self, future: asyncio.Future[int | None]) -> None:
        self._background.discard(future)
        if not future.cancelled() and future.exception() is not None:
            logger.warning("a statistics row was not written: %s", future.exception())

    async def mark_none_of_these(self, user_id: int, question_id: int) -> bool:
        """Turn the user's ambiguous question into an unanswered one; False if not theirs."""
        rows = await self._rows(
            "SELECT status FROM questions WHERE id = ? AND user_id = ?", (question_id, user_id)
        )
        if not rows or rows[0]["status"] != "ambiguous":
            return False
        await self._write(
            [
                (
                    "UPDATE questions SET status = 'none_of_these' WHERE id = ? AND user_id = ? "
                    "AND status = 'ambiguous'",
                    (question_id, user_id),
                )
            ]
        )
        return True

    async def unanswered(self, limit: int = 50) -> list[dict[str, Any]]:
        """Return the newest questions the bot could not answer, for staff."""
        marks = ",".join("?" for _ in UNANSWERED_STATUSES)
        rows = await self._rows(
            f"SELECT id, text, status AS reason, topic_id, asked_at FROM questions "
            f"WHERE status IN ({marks}) ORDER BY id DESC LIMIT ?",
            (*UNANSWERED_STATUSES, max(1, limit)),
        )
        return rows

    async def record_feedback(self, user_id: int, topic_id: str, helpful: bool) -> None:
        """Record (or change) a user's verdict on a topic's answer."""
        await self._write(
            [
                (
                    "INSERT INTO feedback (user_id, topic_id, helpful, given_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (user_id, topic_id) DO UPDATE SET "
                    "helpful = excluded.helpful, given_at = excluded.given_at",
                    (user_id, topic_id, int(helpful), _now()),
                )
            ]
        )

    async def add_feedback_comment(self, user_id: int, topic_id: str, comment: str) -> None:
        """Attach what the user was looking for to their 'not helpful' and log it for staff."""
        now = _now()
        await self._write(
            [
                (
                    "UPDATE feedback SET comment = ? WHERE user_id = ? AND topic_id = ?",
                    (comment[:MAX_TEXT], user_id, topic_id),
                ),
                (
                    "INSERT INTO questions (user_id, text, status, topic_id, score, asked_at) "
                    "VALUES (?, ?, 'not_helpful', ?, NULL, ?)",
                    (user_id, comment[:MAX_TEXT], topic_id, now),
                ),
            ]
        )

    async def feedback_summary(self) -> list[dict[str, Any]]:
        """Return helpful / not helpful counts per topic."""
        return await self._rows(
            "SELECT topic_id, SUM(helpful) AS helpful, SUM(1 - helpful) AS not_helpful "
            "FROM feedback GROUP BY topic_id ORDER BY not_helpful DESC, topic_id"
        )

    # -- users and the pathway ----------------------------------------------------------

    async def awaiting(self, user_id: int) -> tuple[str | None, str | None]:
        """Return what free text the bot expects from a user, and since when."""
        if user_id not in self._maybe_awaiting:
            return None, None
        rows = await self._rows(
            "SELECT awaiting, awaiting_since FROM users WHERE user_id = ? "
            "AND awaiting IS NOT NULL",
            (user_id,),
        )
        return (rows[0]["awaiting"], rows[0]["awaiting_since"]) if rows else (None, None)

    async def get_user(self, user_id: int) -> UserState:
        """Return a user's pathway position, statuses and pending dialogue step."""
        rows = await self._rows(
            "SELECT current_step, trail FROM users WHERE user_id = ?",
            (user_id,),
        )
        progress = await self._rows(
            "SELECT step_id, status, choice FROM progress WHERE user_id = ?", (user_id,)
        )
        statuses = {row["step_id"]: row["status"] for row in progress}
        choices = {row["step_id"]: row["choice"] for row in progress if row["choice"]}
        if not rows:
            return UserState(user_id, statuses=statuses, choices=choices)
        row = rows[0]
        try:
            trail = tuple(str(s) for s in json.loads(row["trail"] or "[]"))
        except (ValueError, TypeError):
            trail = ()
        return UserState(
            user_id,
            current_step=row["current_step"],
            trail=trail,
            statuses=statuses,
            choices=choices,
        )

    @staticmethod
    def _upsert_user(
        user_id: int, current_step: str | None, trail: Sequence[str], now: str
    ) -> tuple[str, Sequence[Any]]:
        return (
            "INSERT INTO users (user_id, current_step, trail, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (user_id) DO UPDATE SET current_step = excluded.current_step, "
            "trail = excluded.trail, updated_at = excluded.updated_at",
            (user_id, current_step, json.dumps(list(trail)[-50:]), now),
        )

    async def save_position(
        self,
        user_id: int,
        current_step: str | None,
        trail: Sequence[str],
        status_change: tuple[str, str, str | None] | None = None,
    ) -> None:
        """Move a user in the pathway, recording (step, status, choice) in one transaction."""
        now = _now()
        statements: list[tuple[str, Sequence[Any]]] = [
            self._upsert_user(user_id, current_step, trail, now)
        ]
        if status_change is not None:
            statements.extend(self._status_statements(user_id, *status_change, now))
        await self._write(statements)

    @staticmethod
    def _status_statements(
        user_id: int, step_id: str, status: str, choice: str | None, now: str
    ) -> list[tuple[str, Sequence[Any]]]:
        return [
            (
                "INSERT INTO progress (user_id, step_id, status, choice, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id, step_id) DO UPDATE SET "
                "status = excluded.status, choice = excluded.choice, "
                "updated_at = excluded.updated_at",
                (user_id, step_id, status, choice, now),
            ),
            # progress_history gets its row from a trigger, in the same transaction.
        ]

    async def set_status(self, user_id: int, step_id: str, status: str) -> None:
        """Record one step's status (and its history) without moving the user."""
        await self._write(self._status_statements(user_id, step_id, status, None, _now()))

    async def set_awaiting(self, user_id: int, awaiting: str | None) -> None:
        """Remember (or clear) what free text the bot expects next from this user."""
        now = _now()
        if awaiting:
            self._maybe_awaiting.add(user_id)
        await self._write(
            [
                (
                    "INSERT INTO users (user_id, awaiting, awaiting_since, updated_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET "
                    "awaiting = excluded.awaiting, awaiting_since = excluded.awaiting_since, "
                    "updated_at = excluded.updated_at",
                    (user_id, awaiting, now if awaiting else None, now),
                )
            ]
        )
        if not awaiting:
            self._maybe_awaiting.discard(user_id)

    async def reset_progress(self, user_id: int) -> None:
        """Clear a user's pathway position and statuses (history is kept)."""
        now = _now()
        await self._write(
            [
                ("DELETE FROM progress WHERE user_id = ?", (user_id,)),
                (
                    "UPDATE users SET current_step = NULL, trail = '[]', updated_at = ? "
                    "WHERE user_id = ?",
                    (now, user_id),
                ),
            ]
        )

    async def history(self, user_id: int) -> list[dict[str, Any]]:
        """Return every status change of a user, oldest first."""
        return await self._rows(
            "SELECT step_id, status, changed_at FROM progress_history WHERE user_id = ? "
            "ORDER BY id",
            (user_id,),
        )

    async def _drain(self) -> None:
        """Write the gathered statistics rows now and wait for them."""
        if self._asked_timer is not None:
            self._asked_timer.cancel()
        self._flush_asked()
        if self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    async def export(self, user_id: int) -> dict[str, Any]:
        """Return everything stored about a user, as plain data."""
        await self._drain()  # a row still on its way is theirs too
        user = await self.get_user(user_id)
        return {
            "user_id": user_id,
            "exported_at": _now(),
            "pathway": {
                "current_step": user.current_step,
                "statuses": dict(sorted(user.statuses.items())),
                "history": await self.history(user_id),
            },
            "questions": await self._rows(
                "SELECT text, status, topic_id, asked_at FROM questions WHERE user_id = ? "
                "ORDER BY id",
                (user_id,),
            ),
            "feedback": await self._rows(
                "SELECT topic_id, helpful, comment, given_at FROM feedback WHERE user_id = ? "
                "ORDER BY given_at",
                (user_id,),
            ),
            "tickets": await self._rows(
                "SELECT id, question, state, answer, created_at, answered_at FROM tickets "
                "WHERE user_id = ? ORDER BY id",
                (user_id,),
            ),
            # What the bot did with each message, for statistics (never the text).
            "message_outcomes": await self._rows(
                "SELECT outcome, topic_id, asked_at FROM asked WHERE user_id = ? ORDER BY id",
                (user_id,),
            ),
            "reminders": {
                "settings": next(
                    iter(
                        await self._rows(
                            "SELECT deadlines, milestones, blocked_at, updated_at "
                            "FROM reminder_settings WHERE user_id = ?",
                            (user_id,),
                        )
                    ),
                    None,
                ),
                "planned": await self._rows(
                    "SELECT event_id, days_before, due_on, state, reason, done_at "
                    "FROM reminders WHERE user_id = ? ORDER BY due_on, id",
                    (user_id,),
                ),
            },
        }

    async def forget(self, user_id: int) -> None:
        """Delete everything stored about a user, leaving no copy of their text behind.

        ``secure_delete`` overwrites the freed pages; the checkpoint then truncates the
        -wal file, which would otherwise still hold the old pages for a while.
        """
        await self._drain()  # else a row still on its way would land after the delete
        await self._write(
            [
                (f"DELETE FROM {table} WHERE user_id = ?", (user_id,))
                for table in (
                    "questions", "feedback", "progress", "progress_history", "users",
                    "reminders", "reminder_settings", "tickets", "asked",
                )
            ]
        )
        self._maybe_awaiting.discard(user_id)
        await self._checkpoint()

    async def _checkpoint(self) -> None:
        """Copy the -wal file into the database and truncate it."""
        async with self._write_lock:
            await self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    async def apply_retention(self, days: int, *, now: dt.datetime | None = None) -> int:
        """Delete what users wrote that is older than ``days`` (0: keep); return rows touched.

        Logged questions and step history go; feedback keeps its verdict but loses the
        comment. Pathway progress (the user's own record) is not touched.
        """
        if days <= 0:
            return 0
        cutoff = ((now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=days)).isoformat(
            timespec="seconds"
        )
        before = self._conn.total_changes
        await self._write(
            [
                ("DELETE FROM questions WHERE asked_at < ?", (cutoff,)),
                ("DELETE FROM progress_history WHERE changed_at < ?", (cutoff,)),
                ("DELETE FROM reminders WHERE done_at < ?", (cutoff,)),
                ("DELETE FROM asked WHERE asked_at < ?", (cutoff,)),
                (
                    "DELETE FROM tickets WHERE state != 'open' AND "
                    "COALESCE(closed_at, answered_at, created_at) < ?",
                    (cutoff,),
                ),
                (
                    "UPDATE feedback SET comment = NULL "
                    "WHERE comment IS NOT NULL AND given_at < ?",
                    (cutoff,),
                ),
            ]
        )
        touched = self._conn.total_changes - before
        if touched:
            await self._checkpoint()
            logger.info("retention: %d old rows deleted or cleared", touched)
        return touched

    # -- reminders ----------------------------------------------------------------------

    async def reminder_settings(self, user_id: int) -> dict[str, Any]:
        """Return a user's reminder switches (both off when never set)."""
        rows = await self._rows(
            "SELECT deadlines, milestones, blocked_at FROM reminder_settings WHERE user_id = ?",
            (user_id,),
        )
        if not rows:
            return {"deadlines": False, "milestones": False, "blocked_at": None}
        row = rows[0]
        return {
            "deadlines": bool(row["deadlines"]),
            "milestones": bool(row["milestones"]),
            "blocked_at": row["blocked_at"],
        }

    async def set_reminders(self, user_id: int, chat_id: int, kind: str, on: bool) -> None:
        """Turn one kind of reminder on or off; writing to the bot again unblocks it."""
        if kind not in REMINDER_KINDS:
            raise ValueError(f"unknown reminder kind {kind!r}")
        now = _now()
        statements: list[tuple[str, Sequence[Any]]] = [
            (
                f"INSERT INTO reminder_settings (user_id, chat_id, {kind}, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET "
                f"chat_id = excluded.chat_id, {kind} = excluded.{kind}, blocked_at = NULL, "
                "updated_at = excluded.updated_at",
                (user_id, chat_id, int(on), now),
            )
        ]
        if not on:  # what was planned of that kind will not be sent
            statements.append(
                (
                    "UPDATE reminders SET state = 'dropped', reason = 'turned off', done_at = ? "
                    "WHERE user_id = ? AND kind = ? AND state = 'due'",
                    (now, user_id, kind),
                )
            )
        await self._write(statements)

    @staticmethod
    def _wanting(
        kind: str, finished: Sequence[str], done: Sequence[str]
    ) -> tuple[str, tuple[Any, ...]]:
        """The users (``s``) who want ``kind``, finished none of ``finished`` (done or not
        applicable) and marked none of ``done`` as done."""
        if kind not in REMINDER_KINDS:
            raise ValueError(f"unknown reminder kind {kind!r}")
        where = f"FROM reminder_settings s WHERE s.{kind} = 1 AND s.blocked_at IS NULL"
        params: list[Any] = []
        for steps, statuses in ((finished, FINISHED_STATUSES), (done, ("done",))):
            if not steps:
                continue
            where += (
                " AND NOT EXISTS (SELECT 1 FROM progress p WHERE p.user_id = s.user_id "
                f"AND p.step_id IN ({','.join('?' * len(steps))}) "
                f"AND p.status IN ({','.join('?' * len(statuses))}))"
            )
            params += [*steps, *statuses]
        return where, tuple(params)

    async def plan_reminders(
        self,
        event_id: str,
        days_before: int,
        kind: str,
        due_on: dt.date,
        finished: Sequence[str] = (),
        done: Sequence[str] = (),
    ) -> int:
        """Plan one reminder for every user :meth:`_wanting` selects; return how many
        were added (a user gets each reminder once, however often a day is planned)."""
        where, params = self._wanting(kind, finished, done)
        before = self._conn.total_changes
        await self._write(
            [
                (
                    "INSERT OR IGNORE INTO reminders "
                    "(user_id, event_id, days_before, kind, due_on, created_at) "
                    f"SELECT s.user_id, ?, ?, ?, ?, ? {where}",
                    (event_id, days_before, kind, due_on.isoformat(), _now(), *params),
                )
            ]
        )
        return self._conn.total_changes - before

    async def count_reminder_users(
        self, kind: str, finished: Sequence[str] = (), done: Sequence[str] = ()
    ) -> int:
        """How many users planning a reminder of ``kind`` would reach (for previews)."""
        where, params = self._wanting(kind, finished, done)
        rows = await self._rows(f"SELECT COUNT(*) AS n {where}", params)
        return int(rows[0]["n"])

    async def due_reminders(
        self, day: dt.date, limit: int, *, after: int = 0
    ) -> list[dict[str, Any]]:
        """Reminders due on or before ``day``, not yet sent, with ids above ``after``."""
        return await self._rows(
            "SELECT r.id, r.user_id, r.event_id, r.days_before, r.kind, r.due_on, r.attempts, "
            "s.chat_id, s.deadlines, s.milestones, s.blocked_at "
            "FROM reminders r JOIN reminder_settings s USING (user_id) "
            "WHERE r.state = 'due' AND r.due_on <= ? AND r.id > ? ORDER BY r.id LIMIT ?",
            (day.isoformat(), after, limit),
        )

    async def step_statuses(self, user_id: int) -> dict[str, str]:
        """Every step status a user recorded, by step id."""
        rows = await self._rows(
            "SELECT step_id, status FROM progress WHERE user_id = ?", (user_id,)
        )
        return {row["step_id"]: row["status"] for row in rows}

    async def mark_reminders(
        self, ids: Sequence[int], state: str, reason: str | None = None
    ) -> None:
        """Move reminders to ``state`` (sending, sent, dropped, blocked or due again)."""
        if not ids:
            return
        marks = ",".join("?" * len(ids))
        done = None if state in ("due", "sending") else _now()
        bump = ", attempts = attempts + 1" if state == "sending" else ""
        await self._write(
            [
                (
                    f"UPDATE reminders SET state = ?, reason = ?, done_at = ?{bump} "
                    f"WHERE id IN ({marks})",
                    (state, reason, done, *ids),
                )
            ]
        )

    async def mark_blocked(self, user_id: int) -> None:
        """Record that the user blocked the bot: nothing more is planned or sent to them."""
        now = _now()
        await self._write(
            [
                (
                    "UPDATE reminder_settings SET blocked_at = ?, updated_at = ? "
                    "WHERE user_id = ?",
                    (now, now, user_id),
                ),
                (
                    "UPDATE reminders SET state = 'blocked', reason = 'user blocked the bot', "
                    "done_at = ? WHERE user_id = ? AND state IN ('due', 'sending')",
                    (now, user_id),
                ),
            ]
        )

    async def interrupted_reminders(self) -> int:
        """Settle reminders a stopped process left half-sent; return how many.

        Telegram cannot say whether the message went out, and a reminder must never
        arrive twice, so they are recorded as dropped ("interrupted"), not sent again.
        """
        before = self._conn.total_changes
        await self._write(
            [
                (
                    "UPDATE reminders SET state = 'dropped', "
                    "reason = 'interrupted while sending', done_at = ? WHERE state = 'sending'",
                    (_now(),),
                )
            ]
        )
        return self._conn.total_changes - before

    async def reminder_counts(self) -> dict[str, int]:
        """How many reminders are in each state (for staff)."""
        rows = await self._rows("SELECT state, COUNT(*) AS n FROM reminders GROUP BY state")
        return {row["state"]: int(row["n"]) for row in rows}

    async def scheduler_value(self, name: str) -> str | None:
        """Read one value the scheduler keeps between runs."""
        rows = await self._rows("SELECT value FROM scheduler_state WHERE name = ?", (name,))
        return str(rows[0]["value"]) if rows else None

    async def set_scheduler_value(self, name: str, value: str) -> None:
        """Remember one value for the scheduler's next run."""
        await self._write(
            [
                (
                    "INSERT INTO scheduler_state (name, value) VALUES (?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    (name, value),
                )
            ]
        )

    # -- statistics ---------------------------------------------------------------------
    # Read-only figures for staff (bot/stats.py puts them together). Each takes the window
    # as two aware datetimes, [start, end], compared as the ISO text every row is written in.

    async def outcomes_per_day(
        self, start: dt.datetime, end: dt.datetime
    ) -> list[dict[str, Any]]:
        """How many messages had each outcome, per UTC day of the window."""
        return await self._rows(
            "SELECT date(asked_at) AS day, outcome, COUNT(*) AS n FROM asked "
            "WHERE asked_at >= ? AND asked_at <= ? GROUP BY day, outcome ORDER BY day, outcome",
            _window(start, end),
        )

    async def top_answered_topics(
        self, start: dt.datetime, end: dt.datetime, limit: int = 10
    ) -> list[dict[str, Any]]:
        """The topics answered most often in the window, with their counts."""
        return await self._rows(
            "SELECT topic_id, COUNT(*) AS n FROM asked WHERE outcome = 'answer' "
            "AND topic_id IS NOT NULL AND asked_at >= ? AND asked_at <= ? "
            "GROUP BY topic_id ORDER BY n DESC, topic_id LIMIT ?",
            (*_window(start, end), max(1, limit)),
        )

    async def feedback_counts(self, start: dt.datetime, end: dt.datetime) -> dict[str, int]:
        """Helpful and Not helpful verdicts given (or last changed) in the window."""
        rows = await self._rows(
            "SELECT COALESCE(SUM(helpful), 0) AS helpful, "
            "COALESCE(SUM(1 - helpful), 0) AS not_helpful FROM feedback "
            "WHERE given_at >= ? AND given_at <= ?",
            _window(start, end),
        )
        return {"helpful": int(rows[0]["helpful"]), "not_helpful": int(rows[0]["not_helpful"])}

    async def unanswered_between(
        self, start: dt.datetime, end: dt.datetime, limit: int = 500
    ) -> list[dict[str, Any]]:
        """The newest questions of the window the bot could not answer (at most ``limit``)."""
        marks = ",".join("?" for _ in UNANSWERED_STATUSES)
        return await self._rows(
            f"SELECT id, text, status AS reason, asked_at FROM questions "
            f"WHERE status IN ({marks}) AND asked_at >= ? AND asked_at <= ? "
            f"ORDER BY asked_at DESC, id DESC LIMIT ?",
            (*UNANSWERED_STATUSES, *_window(start, end), max(1, limit)),
        )

    async def ticket_figures(self, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
        """Open tickets now; tickets answered in the window and their median minutes."""
        rows = await self._rows(
            "WITH waits AS (SELECT (julianday(answered_at) - julianday(created_at)) * 1440.0 "
            "AS minutes FROM tickets WHERE answered_at IS NOT NULL "
            "AND answered_at >= ? AND answered_at <= ?), "
            "counted AS (SELECT COUNT(*) AS n FROM waits) "
            "SELECT (SELECT COUNT(*) FROM tickets WHERE state = 'open') AS open, "
            "(SELECT n FROM counted) AS answered, "
            # the median: the middle row, or the mean of the middle two
            "(SELECT AVG(minutes) FROM (SELECT minutes FROM waits ORDER BY minutes "
            "LIMIT 2 - (SELECT n FROM counted) % 2 "
            "OFFSET ((SELECT n FROM counted) - 1) / 2)) AS median_minutes",
            _window(start, end),
        )
        row = rows[0]
        median = row["median_minutes"]
        return {
            "open": int(row["open"]),
            "answered": int(row["answered"]),
            "median_minutes_to_answer": None if median is None else round(float(median), 1),
        }

    async def active_users_per_week(
        self, start: dt.datetime, end: dt.datetime
    ) -> list[dict[str, Any]]:
        """Distinct users who wrote to the bot, per week (keyed by its Monday, UTC)."""
        # 'weekday 0' moves to the coming Sunday (or stays), six days back is the Monday.
        return await self._rows(
            "SELECT date(asked_at, 'weekday 0', '-6 days') AS week_start, "
            "COUNT(DISTINCT user_id) AS users FROM asked "
            "WHERE asked_at >= ? AND asked_at <= ? GROUP BY week_start ORDER BY week_start",
            _window(start, end),
        )

    async def step_reach(self, aliases: Mapping[str, str]) -> dict[str, int]:
        """How many distinct users recorded a status other than not_started on each step.

        ``aliases`` maps every step id that may be stored (live ids and former ones) to
        the live step it counts for, so a user counts once per live step.
        """
        if not aliases:
            return {}
        pairs = ",".join("(?, ?)" for _ in aliases)
        rows = await self._rows(
            f"WITH alias (step_id, live) AS (VALUES {pairs}) "
            "SELECT a.live AS step_id, COUNT(DISTINCT p.user_id) AS users "
            "FROM progress p JOIN alias a ON a.step_id = p.step_id "
            "WHERE p.status != 'not_started' GROUP BY a.live",
            [value for pair in aliases.items() for value in pair],
        )
        return {row["step_id"]: int(row["users"]) for row in rows}


def _window(start: dt.datetime, end: dt.datetime) -> tuple[str, str]:
    """Turn a window into the ISO text (UTC, seconds) that rows are stamped with."""
    return (
        start.astimezone(dt.UTC).isoformat(timespec="seconds"),
        end.astimezone(dt.UTC).isoformat(timespec="seconds"),
    )
