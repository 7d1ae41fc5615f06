"""The knowledge schema and validator: every kind of problem, reported at file:line."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

from bot.knowledge import KnowledgeBase, Topic, load_knowledge, valid_url

GOOD_TOPIC = """\
  - id: {id}
    title: {title}
    category: Testing
    questions:
      - {question}
      - another way to ask about {id}
    answer: A short answer about {id}.
    sources:
      - title: Official page
        url: https://www.ecfmg.org/
    reviewed: 2026-11-01
"""


def write(directory: Path, name: str, text: str) -> Path:
    """Write a knowledge file and return its path."""
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def topic(id: str, question: str | None = None, title: str = "A title") -> str:
    """Return the YAML of one valid topic."""
    return GOOD_TOPIC.format(id=id, title=title, question=question or f"what is {id}")


def messages(problems: list) -> list[str]:  # type: ignore[type-arg]
    """Render problems as the strings staff see."""
    return [str(p) for p in problems]


def test_a_valid_directory_loads_into_frozen_typed_topics(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "version: 1\ntopics:\n" + topic("alpha") + topic("beta"))
    kb, problems = load_knowledge(tmp_path)
    assert problems == []
    assert isinstance(kb, KnowledgeBase)
    alpha = kb.by_id["alpha"]
    assert isinstance(alpha, Topic)
    assert alpha.questions[0] == "what is alpha"
    assert alpha.reviewed == dt.date(2026, 11, 1)
    assert alpha.sources[0].url == "https://www.ecfmg.org/"
    assert alpha.file.endswith("a.yaml") and alpha.line == 3
    assert kb.categories == ("Testing",)


def test_minimal_topic_needs_only_id_questions_answer(tmp_path: Path) -> None:
    write(tmp_path, "min.yaml", """\
        version: 1
        topics:
          - id: bare
            questions: [How do I reset my password?]
            answer: Use the reset link.
        """)
    kb, problems = load_knowledge(tmp_path)
    assert problems == [] and kb is not None
    assert kb.by_id["bare"].title == "How do I reset my password?"


def test_a_single_file_can_be_loaded(tmp_path: Path) -> None:
    path = write(tmp_path, "one.yaml", "version: 1\ntopics:\n" + topic("solo"))
    kb, problems = load_knowledge(path)
    assert problems == [] and kb is not None and list(kb.by_id) == ["solo"]


def test_yaml_syntax_error_is_reported_with_its_line(tmp_path: Path) -> None:
    write(tmp_path, "broken.yaml", "version: 1\ntopics:\n  - id: x\n    questions: [a, b\n")
    kb, problems = load_knowledge(tmp_path)
    assert kb is None
    assert len(problems) == 1
    assert problems[0].file.endswith("broken.yaml")
    assert problems[0].line >= 4
    assert "YAML syntax error" in problems[0].message


def test_every_problem_is_reported_at_once_with_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", """\
        version: 1
        topics:
          - id: Bad Id
            questions: [first]
            answer: fine
          - id: no-answer
            questions: [second question]
          - id: typo-field
            questions: [third question]
            answer: fine
            folow_ups: [x]
          - id: wrong-types
            questions: just one string
            answer: [not, text]
          - id: empty
            questions: ["   "]
            answer: "  "
        """)
    kb, problems = load_knowledge(tmp_path)
    assert kb is None
    found = {(p.line, p.message.split(" ")[0]) for p in problems}
    text = "\n".join(messages(problems))
    assert any(p.line == 3 and "lowercase letters" in p.message for p in problems), text
    assert any(p.line == 6 and "missing the required field 'answer'" in p.message
               for p in problems), text
    assert any(p.line == 11 and "unknown field 'folow_ups'" in p.message
               and "did you mean 'follow_ups'" in p.message for p in problems), text
    assert any(p.line == 13 and "must be a list" in p.message for p in problems), text
    assert any(p.line == 14 and "must be text" in p.message for p in problems), text
    assert any(p.line == 16 and "empty" in p.message for p in problems), text
    assert any(p.line == 17 and "empty" in p.message for p in problems), text
    assert all(str(p).startswith(p.file + ":") for p in problems)
    assert len(found) >= 7


def test_duplicate_ids_across_files_name_both_places(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "version: 1\ntopics:\n" + topic("same", "first question"))
    write(tmp_path, "b.yaml", "version: 1\ntopics:\n" + topic("same", "second question"))
    kb, problems = load_knowledge(tmp_path)
    assert kb is None
    (problem,) = [p for p in problems if "duplicate id" in p.message]
    assert problem.file.endswith("b.yaml") and problem.line == 3
    assert "a.yaml:3" in problem.message


def test_the_same_question_under_two_topics_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "version: 1\ntopics:\n"
          + topic("one", "What is the OET?") + topic("two", "what is the  OET"))
    kb, problems = load_knowledge(tmp_path)
    assert kb is None
    assert any("also a question of topic 'one'" in p.message for p in problems)


def test_follow_ups_must_name_existing_topics(tmp_path: Path) -> None:
    text = "version: 1\ntopics:\n" + topic("one") + "    follow_ups: [tow, one]\n" + topic("two")
    write(tmp_path, "a.yaml", text)
    kb, problems = load_knowledge(tmp_path)
    assert kb is None
    msgs = messages(problems)
    assert any("follow-up 'tow'" in m and "did you mean 'two'" in m for m in msgs), msgs
    assert any("lists itself" in m for m in msgs), msgs


def test_pathway_is_a_follow_up_that_is_not_a_topic(tmp_path: Path) -> None:
    follow = "    follow_ups: [pathway, two]\n"
    write(tmp_path, "a.yaml", "version: 1\ntopics:\n" + topic("one") + follow + topic("two"))
    kb, problems = load_knowledge(tmp_path)
    assert kb is not None, messages(problems)
    assert kb.by_id["one"].follow_ups == ("pathway", "two")


def test_malformed_urls_and_dates_are_reported(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", """\
        version: 1
        topics:
          - id: links
            questions: [where is the page]
            answer: here
            sources:
              - title: Broken
                url: www.ecfmg.org/no-scheme
              - title: Spaces
                url: https://ecfmg .org
              - url: https://www.usmle.org/
            reviewed: last week
          - id: future
            questions: [when was this checked]
            answer: soon
            reviewed: 2999-01-01
        """)
    kb, problems = load_knowledge(tmp_path)
    assert kb is None
    msgs = messages(problems)
    assert any(":8:" in m and "not a valid web address" in m for m in msgs), msgs
    assert any(":10:" in m and "not a valid web address" in m for m in msgs), msgs
    assert any(":11:" in m and "'title'" in m for m in msgs), msgs
    assert any(":12:" in m and "YYYY-MM-DD" in m for m in msgs), msgs
    assert any(":16:" in m and "in the future" in m for m in msgs), msgs


def test_an_answer_too_long_for_one_telegram_message_is_refused(tmp_path: Path) -> None:
    long_answer = "word " * 900
    write(tmp_path, "a.yaml", f"""\
        version: 1
        topics:
          - id: long
            questions: [tell me everything]
            answer: {long_answer}
        """)
    kb, problems = load_knowledge(tmp_path)
    assert kb is None
    assert any("over the 4000 that fit" in p.message and "split" in p.message for p in problems)


def test_duplicate_yaml_keys_and_missing_version_are_reported(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", """\
        topics:
          - id: twice
            questions: [one question]
            answer: first
            answer: second
        extra: 1
        """)
    kb, problems = load_knowledge(tmp_path)
    assert kb is None
    msgs = messages(problems)
    assert any("'version: 1'" in m for m in msgs), msgs
    assert any(":5:" in m and "'answer' twice" in m for m in msgs), msgs
    assert any(":6:" in m and "unknown top-level field 'extra'" in m for m in msgs), msgs


def test_an_empty_file_and_a_list_file_are_explained(tmp_path: Path) -> None:
    write(tmp_path, "empty.yaml", "")
    write(tmp_path, "list.yaml", "- id: x\n")
    kb, problems = load_knowledge(tmp_path)
    assert kb is None
    assert {p.file.rsplit("/", 1)[-1] for p in problems} == {"empty.yaml", "list.yaml"}
    assert all("mapping with 'version: 1'" in p.message for p in problems)


def test_synonym_loops_and_conflicts_are_reported(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "version: 1\ntopics:\n" + topic("one"))
    write(tmp_path, "synonyms.yaml", """\
        version: 1
        synonyms:
          - canonical: j-1 visa
            variants: [j1, exchange visa]
          - canonical: exchange visa
            variants: [j-1 visa]
          - canonical: step 2 ck
            variants: [ck, j1]
        """)
    kb, problems = load_knowledge(tmp_path)
    assert kb is None
    msgs = messages(problems)
    assert any("synonym a loop" in m or "loop" in m for m in msgs), msgs
    assert any(":8:" in m and "also a variant of 'j 1 visa'" in m for m in msgs), msgs


def test_missing_directory_is_a_clear_problem(tmp_path: Path) -> None:
    kb, problems = load_knowledge(tmp_path / "nope")
    assert kb is None and "no such file or directory" in problems[0].message


def test_url_validation() -> None:
    assert valid_url("https://www.ecfmg.org/certification/")
    assert not valid_url("ecfmg.org")
    assert not valid_url("https://localhost")
    assert not valid_url("javascript:alert(1)")


def test_the_project_knowledge_base_is_clean(real_bundle) -> None:  # type: ignore[no-untyped-def]
    assert len(real_bundle.kb.topics) >= 120
    assert real_bundle.pathway is not None
