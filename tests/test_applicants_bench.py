"""The applicant benchmark's arithmetic, on a three-topic fixture (not the project knowledge)."""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import pytest

from benchmarks.applicants import main
from tests.conftest import FAQ_TOPICS, write_kb

TOPICS = FAQ_TOPICS + textwrap.dedent("""\
  - id: change-email
    title: Change your email address
    questions: [How do I change my email address?, update the email on my profile]
    answer: Go to Settings, then Profile, then Email.
""")
IN_SCOPE = [  # (question, area, lang): what the fixture matcher does
    ("How do I reset my password?", "a", "en"),  # answer reset-password
    ("How do I delete my account?", "a", "en"),  # answer delete-account
    ("How do I change my email address?", "b", "es"),  # answer change-email
    ("password account email", "b", "es"),  # ambiguous, reset-password first
    ("zzqx blorf", "b", "en"),  # fallback
    ("forgot my password", "a", "en"),  # answer reset-password
    ("qwerty asdf", "a", "en"),  # fallback
]
LABELS = """\
0: [reset-password]
1: [change-email, delete-account]
2: [reset-password]
3: [reset-password]
4: [delete-account]
6: []
"""
OFF_TOPIC = [
    ("what is the capital of peru", "far"),  # fallback
    ("How do I reset my password?", "near"),  # answer
    ("hello there", "smalltalk"),  # fallback
    ("password account email", "near"),  # ambiguous
]


def write_sets(directory: Path, name: str, *, labels: bool = True) -> Path:
    """Write one question set (and its labels) the way benchmarks/applicants holds them."""
    directory.mkdir(parents=True, exist_ok=True)
    in_scope = [
        {"q": q, "area": a, "lang": lang, "style": "short", "intent": "x"}
        for q, a, lang in IN_SCOPE
    ]
    off = [{"q": q, "kind": k, "lang": "en"} for q, k in OFF_TOPIC]
    (directory / f"{name}_in_scope.yaml").write_text(json.dumps(in_scope), encoding="utf-8")
    (directory / f"{name}_off_topic.yaml").write_text(json.dumps(off), encoding="utf-8")
    if labels:
        (directory / f"labels_{name}.yaml").write_text(LABELS, encoding="utf-8")
    return directory


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the benchmark's main and return its exit code, stdout and stderr."""
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_metrics_on_the_fixture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kb = write_kb(tmp_path / "kb", TOPICS)
    sets = write_sets(tmp_path / "sets", "dev")
    code, out, _ = run(capsys, "--kb", str(kb), "--dir", str(sets), "--json", "--errors", "9")
    # (With three topics, the learned model's extra candidates put every topic in the top 3.)
    assert code == 0
    report = json.loads(out)
    assert report["in_scope"]["overall"] == {
        "n": 5, "answered_right": 40.0, "first_right": 60.0, "top3_right": 100.0,
        "wrong_answer": 20.0, "declined": 20.0,
    }
    assert report["in_scope"]["by_area"]["a"]["n"] == 2
    assert report["in_scope"]["by_area"]["a"]["answered_right"] == 100.0
    assert report["in_scope"]["by_area"]["b"] == {
        "n": 3, "answered_right": 0.0, "first_right": 33.3, "top3_right": 100.0,
        "wrong_answer": 33.3, "declined": 33.3,
    }
    assert report["in_scope"]["by_lang"]["es"] == {
        "n": 2, "answered_right": 0.0, "first_right": 50.0, "top3_right": 100.0,
        "wrong_answer": 50.0, "declined": 0.0,
    }
    assert report["unlabelled"] == {"n": 2, "declined": 50.0}
    assert report["off_topic"]["overall"] == {"n": 4, "declined": 50.0, "answered": 25.0}
    assert report["off_topic"]["by_kind"]["near"] == {"n": 2, "declined": 0.0, "answered": 50.0}
    assert report["off_topic"]["by_kind"]["far"] == {"n": 1, "declined": 100.0, "answered": 0.0}
    assert report["timing_ms"]["p95"] >= report["timing_ms"]["p50"] > 0
    errors = report["errors"]
    assert len(errors) == 6  # 2 labelled misses, 1 wrong answer, 1 unlabelled, 2 off-topic
    assert {e["rank"] for e in errors[:3]} == {0}  # the wrong direct answers come first
    code, out, _ = run(capsys, "--kb", str(kb), "--dir", str(sets))  # the text report runs too
    assert code == 0 and "area=b" in out and "smalltalk" in out


def test_missing_labels_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kb = write_kb(tmp_path / "kb", TOPICS)
    sets = write_sets(tmp_path / "sets", "dev", labels=False)
    code, _, err = run(capsys, "--kb", str(kb), "--dir", str(sets))
    assert code == 2 and "labels_dev.yaml" in err


def test_locked_set_checksum_and_hidden_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kb = write_kb(tmp_path / "kb", TOPICS)
    sets = write_sets(tmp_path / "sets", "locked")
    sums = "".join(
        f"{hashlib.sha256((sets / f).read_bytes()).hexdigest()}  benchmarks/applicants/{f}\n"
        for f in ("locked_in_scope.yaml", "locked_off_topic.yaml")
    )
    (sets / "LOCKED.sha256").write_text(sums, encoding="utf-8")
    args = ("--set", "locked", "--kb", str(kb), "--dir", str(sets), "--errors", "5")
    code, out, err = run(capsys, *args)
    assert code == 0 and "must not be used for tuning" in err
    assert "misses" not in out
    code, out, _ = run(capsys, *args, "--show-locked-errors")
    assert code == 0 and "misses" in out
    with (sets / "locked_off_topic.yaml").open("a", encoding="utf-8") as f:
        f.write("\n")
    code, out, err = run(capsys, *args)
    assert code == 3 and "locked_off_topic.yaml" in err and out == ""
