"""The command-line contract that staff and outside tools rely on."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.store import Store
from tests.conftest import FAQ_TOPICS, write_kb

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, stdin: str | None = None, cwd: Path = ROOT,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m bot`` as a user would."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "IMG_GUIDE"))}
    base["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], input=stdin, capture_output=True, text=True,
        cwd=cwd, env={**base, **(env or {})}, timeout=60, check=False,
    )


def small_kb(tmp_path: Path) -> Path:
    """Write a two-topic knowledge directory."""
    return write_kb(tmp_path / "kb", FAQ_TOPICS, name="faq.yaml")


def test_check_passes_on_the_project_knowledge() -> None:
    result = run("check", "knowledge")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    assert "OK:" in result.stderr


def test_check_fails_with_file_line_messages(tmp_path: Path) -> None:
    kb = small_kb(tmp_path)
    (kb / "bad.yaml").write_text("version: 1\ntopics:\n  - id: x\n    questions: []\n")
    result = run("check", str(kb))
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert lines and all(line.split(":", 2)[1].isdigit() for line in lines)
    assert any("bad.yaml:3:" in line and "answer" in line for line in lines)


def test_ask_json_fields(tmp_path: Path) -> None:
    result = run("ask", "--kb", str(small_kb(tmp_path)), "--json", "i forgot my password")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert set(record) == {"status", "topic", "score", "text", "candidates"}
    assert record["status"] == "answer"
    assert record["topic"] == "reset-password"
    assert 0 <= record["score"] <= 100
    assert "Forgot password" in record["text"]
    assert record["candidates"][0] == {
        "topic": "reset-password", "title": "Reset your password", "score": record["score"]
    }


def test_ask_batch_mode_answers_one_line_per_question(tmp_path: Path) -> None:
    questions = "how do i delete my account\n\nwhat is the capital of peru\n🙂\nforgot password\n"
    result = run("ask", "--kb", str(small_kb(tmp_path)), "--json", stdin=questions)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 5
    assert [r["status"] for r in records][1:4] == ["fallback", "fallback", "smalltalk"]
    assert records[0]["topic"] == "delete-account"
    assert records[4]["topic"] == "reset-password"
    assert records[2]["topic"] is None and records[2]["text"] == ""


def test_ask_plain_output_is_one_line_per_question(tmp_path: Path) -> None:
    result = run("ask", "--kb", str(small_kb(tmp_path)), stdin="delete my account\nxyzzy\n")
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("answer\tdelete-account\t")
    assert lines[1].startswith("fallback\t-\t")


def test_ask_on_a_broken_knowledge_base_exits_non_zero(tmp_path: Path) -> None:
    kb = small_kb(tmp_path)
    (kb / "faq.yaml").write_text("version: 1\ntopics: [")
    result = run("ask", "--kb", str(kb), "anything")
    assert result.returncode == 2
    assert "faq.yaml:" in result.stderr


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("knowledge:\n  paht: x\n")
    result = run("check", "--config", str(config))
    assert result.returncode == 2
    assert "knowledge.paht" in result.stderr and "c.yaml:2" in result.stderr


def test_pathway_mermaid_is_up_to_date() -> None:
    result = run("pathway", "--mermaid")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("flowchart")
    assert result.stdout == (ROOT / "knowledge" / "pathway.mmd").read_text(encoding="utf-8")
    staff_guide = (ROOT / "knowledge" / "README.md").read_text(encoding="utf-8")
    assert "```mermaid\n" + result.stdout in staff_guide


def test_chat_reads_standard_input_line_by_line(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"storage:\n  path: {tmp_path / 'db.sqlite3'}\n")
    script = "Is Step 2 CS still required?\n/pathway\n1\n/progress\nqwertyuiop asdf\n/quit\n"
    result = run("chat", "--config", str(config), stdin=script)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "> Is Step 2 CS still required?" in out
    assert "[1]" in out  # numbered buttons
    assert "👈 you are here" in out  # the progress view after one pathway choice
    assert "I don't have an answer" in out  # the gibberish line fell back
    # A terminal trial keeps to its own database: staff's list stays clean ...
    listed = run("unanswered", "--config", str(config), "--json")
    assert listed.returncode == 0 and listed.stdout == ""
    # ... and the trial's own log is there to read.
    trial = tmp_path / "c-trial.yaml"
    trial.write_text(f"storage:\n  path: {tmp_path / 'db.chat.sqlite3'}\n")
    rows = [json.loads(x) for x in run("unanswered", "--config", str(trial), "--json")
            .stdout.splitlines()]
    assert [r["text"] for r in rows] == ["qwertyuiop asdf"]


def test_feedback_lists_the_least_helpful_answers_first(tmp_path: Path) -> None:
    database = tmp_path / "db.sqlite3"
    config = tmp_path / "c.yaml"
    config.write_text(f"storage:\n  path: {database}\n")
    empty = run("feedback", "--config", str(config))
    assert empty.returncode == 0 and "No feedback" in empty.stdout

    async def give_feedback() -> None:
        async with await Store.open(database) as store:
            await store.record_feedback(1, "usmle-step1", True)
            await store.record_feedback(2, "usmle-step1", True)
            await store.record_feedback(1, "ecfmg-oet-medicine", False)
            await store.record_feedback(3, "ecfmg-oet-medicine", False)
            await store.record_feedback(2, "ecfmg-oet-medicine", True)

    asyncio.run(give_feedback())
    table = run("feedback", "--config", str(config))
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[1:] == ["2\t1\tecfmg-oet-medicine", "0\t2\tusmle-step1"]
    listed = run("feedback", "--config", str(config), "--json")
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert rows[0] == {"topic_id": "ecfmg-oet-medicine", "helpful": 1, "not_helpful": 2}


def test_a_closed_pipe_stops_the_output_quietly(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"storage:\n  path: {tmp_path / 'db.sqlite3'}\n")
    questions = tmp_path / "questions.txt"
    questions.write_text("what OET score do I need\n" * 200, encoding="utf-8")
    with questions.open("rb") as stdin:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "chat", "--config", str(config)],
            cwd=ROOT, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert process.stdout is not None and process.stderr is not None
        process.stdout.readline()  # read the banner, then stop reading, as `| head -1` does
        process.stdout.close()
        errors = process.stderr.read().decode()
        process.stderr.close()
        assert process.wait(timeout=60) == 1
    assert "Traceback" not in errors, errors


def test_run_without_a_token_explains_and_exits_non_zero(tmp_path: Path) -> None:
    result = run("run", cwd=tmp_path)
    assert result.returncode != 0
    assert "TELEGRAM_BOT_TOKEN" in result.stderr and "make chat" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def write_config(tmp_path: Path) -> Path:
    """Write a config whose database lives in ``tmp_path``."""
    config = tmp_path / "c.yaml"
    config.write_text(f"storage:\n  path: {tmp_path / 'db.sqlite3'}\n")
    return config


@pytest.mark.parametrize("command", ["ask", "chat"])
def test_piped_text_in_another_encoding_does_not_end_the_run(
    tmp_path: Path, command: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "IMG_GUIDE"))}
    env.update(PYTHONPATH=str(ROOT), PYTHONIOENCODING="utf-8",
               IMG_GUIDE_CONFIG=str(write_config(tmp_path)))
    result = subprocess.run(
        [sys.executable, "-m", "bot", command, "--kb", str(small_kb(tmp_path))],
        input="caf\xe9 account\nforgot my password\n".encode("latin-1"),
        capture_output=True, cwd=ROOT, env=env, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert b"Forgot password" in result.stdout  # the line after the bad byte is answered


def test_staff_output_shows_control_characters_instead_of_obeying_them(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    hostile = "zebra\x1b]0;pwned\x07 \x1b[2J\x00 \u202egnp.exe"
    chat = run("chat", "--config", str(config), "--db", str(tmp_path / "db.sqlite3"),
               stdin=hostile + "\n/quit\n")
    assert chat.returncode == 0, chat.stderr
    rows = run("unanswered", "--config", str(config))
    assert rows.returncode == 0, rows.stderr
    assert not any(c in rows.stdout for c in "\x1b\x07\x00\u202e")
    assert "zebra\\x1b]0;pwned\\x07" in rows.stdout


def test_make_refuses_an_old_python_before_creating_the_venv(tmp_path: Path) -> None:
    old = tmp_path / "python3.10"
    old.write_text('#!/bin/sh\n[ "$1" = "-V" ] && echo "Python 3.10.12" && exit 0\nexit 1\n')
    old.chmod(0o755)
    venv = tmp_path / "venv"
    result = subprocess.run(
        ["make", "-C", str(ROOT), "install", f"PYTHON={old}", f"VENV={venv}"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode != 0
    assert "Python 3.11 or newer" in result.stderr and "3.10.12" in result.stderr
    assert not venv.exists()  # no broken environment left for later runs
