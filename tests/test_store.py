"""The SQLite store on real files: migrations, concurrency, restarts and kill -9."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bot.store import MIGRATIONS, Store, StoreError

ROOT = Path(__file__).resolve().parent.parent


async def test_a_new_database_is_at_the_latest_schema_in_wal_mode(tmp_path: Path) -> None:
    async with await Store.open(tmp_path / "db.sqlite3") as store:
        assert await store.schema_version() == len(MIGRATIONS)
    with sqlite3.connect(tmp_path / "db.sqlite3") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_an_older_database_is_migrated_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as raw:  # a database written by schema version 1
        raw.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT)")
        raw.executescript(MIGRATIONS[0])
        raw.execute("INSERT INTO schema_version VALUES (1, '2026-01-01')")
        raw.execute("INSERT INTO questions (user_id, text, status, asked_at) "
                    "VALUES (7, 'old question', 'fallback', '2026-01-01')")
    async with await Store.open(path) as store:
        assert await store.schema_version() == len(MIGRATIONS)
        assert [r["text"] for r in await store.unanswered()] == ["old question"]
        await store.save_position(7, "usmle-step1", ["usmle-step1"],
                                  ("usmle-step1", "done", "passed"))
        user = await store.get_user(7)
        assert user.statuses == {"usmle-step1": "done"}
        assert user.choices == {"usmle-step1": "passed"}


async def test_progress_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    async with await Store.open(path) as store:
        await store.save_position(1, "b", ["a", "b"], ("a", "done", "yes"))
        await store.set_status(1, "c", "in_progress")
    async with await Store.open(path) as store:
        user = await store.get_user(1)
        assert user.current_step == "b" and user.trail == ("a", "b")
        assert user.statuses == {"a": "done", "c": "in_progress"}
        history = await store.history(1)
        assert [(h["step_id"], h["status"]) for h in history] == [
            ("a", "done"), ("c", "in_progress")
        ]


async def test_200_users_with_20_concurrent_updates_each_lose_nothing(tmp_path: Path) -> None:
    async with await Store.open(tmp_path / "db.sqlite3") as store:

        async def user_updates(user_id: int) -> None:
            await asyncio.gather(*(
                store.save_position(user_id, f"s{i}", [f"s{i}"], (f"s{i}", "done", "c"))
                for i in range(20)
            ))

        await asyncio.gather(*(user_updates(u) for u in range(200)))
        for user_id in (0, 57, 199):
            user = await store.get_user(user_id)
            assert len(user.statuses) == 20
            assert len(await store.history(user_id)) == 20
    with sqlite3.connect(tmp_path / "db.sqlite3") as raw:
        assert raw.execute("SELECT COUNT(*) FROM progress").fetchone()[0] == 4000
        assert raw.execute("SELECT COUNT(*) FROM progress_history").fetchone()[0] == 4000


def test_a_confirmed_write_survives_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    child = textwrap.dedent(f"""
        import asyncio, sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from bot.store import Store

        async def main():
            store = await Store.open({str(path)!r})
            for i in range(5):
                await store.save_position(42, f"s{{i}}", [f"s{{i}}"], (f"s{{i}}", "done", None))
            print("confirmed", flush=True)
            time.sleep(60)

        asyncio.run(main())
    """)
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "confirmed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL

    async def check() -> None:
        async with await Store.open(path) as store:
            user = await store.get_user(42)
            assert user.current_step == "s4"
            assert len(user.statuses) == 5

    asyncio.run(check())


async def test_forget_deletes_everything_about_one_user_only(store: Store) -> None:
    for user_id in (1, 2):
        await store.log_question(user_id, "q", "fallback", None, None)
        await store.record_feedback(user_id, "usmle-step1", False)
        await store.save_position(user_id, "a", ["a"], ("a", "done", None))
    await store.forget(1)
    gone = await store.export(1)
    assert gone["questions"] == [] and gone["feedback"] == []
    assert gone["pathway"] == {"current_step": None, "statuses": {}, "history": []}
    kept = await store.export(2)
    assert len(kept["questions"]) == 1 and kept["pathway"]["statuses"] == {"a": "done"}


async def test_forget_catches_a_statistics_row_still_on_its_way(store: Store) -> None:
    store.record_asked(1, "answer", "usmle-step1")  # written in the background
    await store.forget(1)  # must not let it land afterwards
    await store.close()
    reopened = await Store.open(store.path)
    try:
        assert (await reopened.export(1))["message_outcomes"] == []
    finally:
        await reopened.close()


async def test_export_is_json_serialisable_and_complete(store: Store) -> None:
    qid = await store.log_question(5, "what is <b>oet</b>?", "ambiguous", "ecfmg-oet", 50.0)
    assert await store.mark_none_of_these(5, qid)
    assert not await store.mark_none_of_these(6, qid)  # another user's question
    await store.record_feedback(5, "ecfmg-oet-medicine", False)
    await store.add_feedback_comment(5, "ecfmg-oet-medicine", "I wanted the OET price")
    data = json.loads(json.dumps(await store.export(5)))
    assert data["questions"][0]["status"] == "none_of_these"
    assert data["feedback"][0]["comment"] == "I wanted the OET price"
    reasons = {r["reason"] for r in await store.unanswered()}
    assert reasons == {"none_of_these", "not_helpful"}


async def test_feedback_double_press_keeps_one_verdict(store: Store) -> None:
    await store.record_feedback(3, "gme-soap", True)
    await store.record_feedback(3, "gme-soap", True)
    await store.record_feedback(3, "gme-soap", False)
    summary = await store.feedback_summary()
    assert summary == [{"topic_id": "gme-soap", "helpful": 0, "not_helpful": 1}]


async def test_huge_text_is_cut_not_refused(store: Store) -> None:
    await store.log_question(9, "x" * 50_000, "fallback", None, None)
    (row,) = await store.unanswered()
    assert len(row["text"]) == 2000


# -- damaged or unusable storage is refused with one clear line ------------------------


async def _database_with_progress(path: Path, users: int = 300) -> None:
    """Write enough rows to span many pages, then close cleanly (WAL checkpointed)."""
    async with await Store.open(path) as store:
        for user in range(users):
            await store.set_status(user, "usmle-step1", "done")
            await store.log_question(user, "a question " * 20, "fallback", None, None)


async def test_a_damaged_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    await _database_with_progress(path)
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 6 * page
    data[3 * page : 5 * page] = b"\xa5" * (2 * page)  # two data pages overwritten
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="damaged") as refused:
        await Store.open(path)
    assert str(path) in str(refused.value) and "restore" in str(refused.value)
    assert path.read_bytes() == bytes(data)  # nothing was written into it


async def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    path.write_bytes(b"this is not sqlite" * 500)
    with pytest.raises(StoreError, match=r"not a usable database|cannot be opened|damaged"):
        await Store.open(path)


async def test_a_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    async with await Store.open(path):
        pass
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO schema_version VALUES (?, '2030-01-01')", (len(MIGRATIONS) + 1,)
        )
    with pytest.raises(StoreError, match="newer version"):
        await Store.open(path)


async def test_a_missing_database_with_its_wal_left_is_reported_not_replaced(
    tmp_path: Path,
) -> None:
    path = tmp_path / "db.sqlite3"
    wal = tmp_path / "db.sqlite3-wal"
    wal.write_bytes(b"\0" * 100)
    with pytest.raises(StoreError, match="-wal remains"):
        await Store.open(path)
    assert not path.exists()


def test_the_command_line_names_the_file_in_one_line_without_a_traceback(
    tmp_path: Path,
) -> None:
    path = tmp_path / "db.sqlite3"
    path.write_bytes(b"this is not sqlite" * 500)
    config = tmp_path / "c.yaml"
    config.write_text(f"storage:\n  path: {path}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "IMG_GUIDE"))}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "unanswered", "--config", str(config)],
        capture_output=True, text=True, timeout=60, check=False, env=env,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert str(path) in result.stderr and len(result.stderr.strip().splitlines()) == 1


# -- backup and restore -------------------------------------------------------------------


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "c.yaml"
    config.write_text(f"storage:\n  path: {tmp_path / 'db.sqlite3'}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "IMG_GUIDE"))}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args, "--config", str(config)],
        capture_output=True, text=True, timeout=60, check=False, env=env,
        cwd=Path(__file__).resolve().parent.parent,
    )


async def test_a_backup_taken_while_the_bot_writes_is_complete_and_restores(
    tmp_path: Path,
) -> None:
    path = tmp_path / "db.sqlite3"
    saved = tmp_path / "saved.sqlite3"
    async with await Store.open(path) as store:  # the bot is running, WAL not checkpointed
        await store.set_status(1, "usmle-step1", "done")
        made = await asyncio.to_thread(_cli, tmp_path, "backup", str(saved))
        assert made.returncode == 0, made.stderr
        await store.set_status(1, "usmle-step2ck", "done")  # after the backup
    async with await Store.open(saved) as copy:
        assert (await copy.get_user(1)).statuses == {"usmle-step1": "done"}

    restored = _cli(tmp_path, "restore", str(saved))
    assert restored.returncode == 0, restored.stderr
    async with await Store.open(path) as store:
        assert (await store.get_user(1)).statuses == {"usmle-step1": "done"}
    kept = tmp_path / "db.sqlite3.before-restore"  # the replaced database is not lost
    async with await Store.open(kept) as previous:
        assert (await previous.get_user(1)).statuses == {
            "usmle-step1": "done", "usmle-step2ck": "done"
        }


def test_a_broken_backup_is_not_restored(tmp_path: Path) -> None:
    broken = tmp_path / "broken.sqlite3"
    broken.write_bytes(b"not a database" * 300)
    result = _cli(tmp_path, "restore", str(broken))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "not a usable backup" in result.stderr
    assert not (tmp_path / "db.sqlite3").exists()


# -- privacy: retention and forgetting without a trace --------------------------------------


async def test_retention_deletes_old_text_and_keeps_progress(tmp_path: Path) -> None:
    import datetime as dt

    async with await Store.open(tmp_path / "db.sqlite3") as store:
        await store.log_question(1, "an old question", "fallback", None, None)
        await store.record_feedback(1, "usmle-step1", False)
        await store.add_feedback_comment(1, "usmle-step1", "an old comment")
        await store.set_status(1, "usmle-step1", "done")
        assert await store.apply_retention(0) == 0  # 0: keep forever
        later = dt.datetime.now(dt.UTC) + dt.timedelta(days=181)
        assert await store.apply_retention(180, now=later) > 0
        data = await store.export(1)
        assert data["questions"] == [] and data["pathway"]["history"] == []
        assert [(f["helpful"], f["comment"]) for f in data["feedback"]] == [(0, None)]
        assert (await store.get_user(1)).statuses == {"usmle-step1": "done"}
        # a day later nothing else is old enough
        await store.log_question(1, "a new question", "fallback", None, None)
        assert await store.apply_retention(180) == 0
        assert [q["text"] for q in (await store.export(1))["questions"]] == ["a new question"]


def _on_disk(path: Path) -> bytes:
    """Return the bytes of a database and its -wal file."""
    wal = Path(f"{path}-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


async def test_forget_leaves_no_copy_of_the_text_in_the_files(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    secret = "my passport number is XQ-4471-SECRET"
    async with await Store.open(path) as store:
        for _ in range(20):
            await store.log_question(5, secret, "fallback", None, None)
        await store.forget(5)
        assert secret.encode() not in _on_disk(path)


async def test_a_read_only_database_is_refused_before_anyone_is_told_progress_is_safe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "db.sqlite3"
    async with await Store.open(path):
        pass
    # As root every file is writable, so the permission check itself is what is faked.
    import bot.store

    monkeypatch.setattr(bot.store.os, "access", lambda target, mode: Path(target) != path)
    with pytest.raises(StoreError, match="read-only") as refused:
        await Store.open(path)
    assert str(path) in str(refused.value)


async def test_statistics_rows_of_a_stream_of_messages_share_one_commit(store: Store) -> None:
    before = store.commits
    for n in range(5):  # messages a few milliseconds apart, as users write
        store.record_asked(n, "answer", "usmle-step1")
        await asyncio.sleep(0.01)
    assert store.commits == before  # gathered, not yet written
    assert (await store.export(3))["message_outcomes"][0]["outcome"] == "answer"
    assert store.commits == before + 1


async def test_a_flood_of_messages_writes_statistics_without_waiting_for_the_timer(
    store: Store,
) -> None:
    from bot.store import ASKED_BATCH

    for n in range(ASKED_BATCH):
        store.record_asked(n, "fallback", None)
    await asyncio.sleep(0.2)  # well under the one-second timer
    rows = await store._rows("SELECT COUNT(*) AS n FROM asked")
    assert rows[0]["n"] == ASKED_BATCH
