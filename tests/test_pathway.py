"""The guided pathway: the real pathway.yaml, its validation, transitions and the diagram."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.pathway import (
    END,
    Pathway,
    Status,
    load_pathway,
    parse_status,
    to_mermaid,
)

ROOT = Path(__file__).resolve().parent.parent
REAL_FILE = ROOT / "knowledge" / "pathway.yaml"
REAL_DIAGRAM = ROOT / "knowledge" / "pathway.mmd"

#: The topic ids the pathway links to: the contract with the content writers.
CONTRACT_TOPICS = frozenset(
    {
        "ecfmg-school-eligibility",
        "ecfmg-wfme-accreditation",
        "ecfmg-myintealth-apply",
        "ecfmg-usmle-id",
        "usmle-step1",
        "usmle-step2ck",
        "usmle-step3",
        "usmle-fsmb-registration",
        "ecfmg-pathways-overview",
        "ecfmg-pathway-1",
        "ecfmg-pathway-2",
        "ecfmg-pathways-3-5",
        "ecfmg-pathway-6",
        "ecfmg-step2cs-discontinued",
        "ecfmg-oet-medicine",
        "ecfmg-credential-verification",
        "ecfmg-certificate-issued",
        "gme-eras-overview",
        "gme-residencycas",
        "gme-nrmp-registration",
        "gme-interviews",
        "gme-rank-order-list",
        "gme-match-week",
        "gme-soap",
        "visa-overview",
        "visa-j1-ecfmg",
        "visa-h1b",
        "gme-start-residency",
        "gme-match-vs-start",
        # added with the 2027-Match review of the pathway (content audit, section 7)
        "intealth-world-directory",
        "ecfmg-identity-verification",
        "ecfmg-application-approval",
        "ecfmg-translations",
        "ecfmg-school-not-responding",
        "ecfmg-name-mismatch",
        "usmle-fsmb-account",
        "usmle-eligibility-period",
        "usmle-attempt-limit",
        "usmle-ck-before-eras",
        "ecfmg-which-pathway",
        "ecfmg-mini-cex",
        "ecfmg-oet-timing",
        "ecfmg-oet-retake",
        "ecfmg-pathways-deadlines",
        "ecfmg-pathways-2027",
        "ecfmg-pathway-validity",
        "ecfmg-pathways-revalidation",
        "ecfmg-match-verification",
        "ecfmg-pathway-rejected",
        "gme-program-requirements",
        "gme-us-clinical-experience",
        "gme-graduation-year-gaps",
        "gme-how-many-programs",
        "gme-letters-of-recommendation",
        "gme-personal-statement",
        "gme-experiences-section",
        "gme-mspe",
        "gme-eras-timeline",
        "gme-apply-before-certified",
        "gme-nrmp-deadline",
        "gme-after-interview-contact",
        "usmle-step3-before-residency",
        "usmle-step3-application",
        "gme-match-commitment",
        "gme-soap-prepare",
        "gme-unmatched-options",
        "gme-after-soap-plan",
        "gme-eras-reapply",
        "ecfmg-certificate-validity",
        "visa-travel-ban",
        "visa-statement-of-need",
        "visa-ds2019",
        "visa-consular-interview",
        "visa-212e",
        "visa-h1b-100k",
        "gme-training-license",
        "lic-first-year",
        "lic-step3-timing",
        "ecfmg-permanent-validation",
        "lic-full-license",
        "visa-waivers",
    }
)

#: Every step id users may have stored before the 2027-Match review. Each must stay a live
#: step or be listed under a successor's `formerly`, so nobody loses their place.
IDS_BEFORE_2027_REVIEW = (
    "school-eligibility",
    "school-not-listed",
    "myintealth-usmle-id",
    "usmle-step1",
    "usmle-step2ck",
    "step2cs-history",
    "choose-pathway",
    "pathway-6",
    "oet-medicine",
    "credential-verification",
    "ecfmg-certificate",
    "residency-application",
    "nrmp-interviews",
    "rank-order-list",
    "match-result",
    "soap",
    "visa-need",
    "visa-j1",
    "visa-h1b",
    "start-residency",
)

# A small valid pathway; the error tests break one thing in a copy of it.
SMALL = """\
version: 1
start: first
steps:
  - id: first
    title: First step
    explain: The first step.
    question: Ready?
    choices:
      - id: go
        label: Go on
        status: done
        next: second
      - id: stop
        label: Stop here
        status: blocked
        next: end
    topics: [topic-a]
  - id: second
    title: Second step
    explain: The second step.
    question: Finished?
    choices:
      - id: done
        label: Finished
        status: done
        next: end
    topics: [topic-b]
"""


def write(tmp_path: Path, text: str) -> Path:
    """Write a pathway file into the temporary directory."""
    path = tmp_path / "pathway.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def line_of(text: str, marker: str = "# <-") -> int:
    """Return the 1-based line of the marker comment in a YAML text."""
    return next(n for n, line in enumerate(text.splitlines(), 1) if marker in line)


def problems_of(tmp_path: Path, text: str, topic_ids: frozenset[str] | None = None) -> list[str]:
    """Load a pathway text and return its problems as printed, asserting it was rejected."""
    pathway, problems = load_pathway(write(tmp_path, text), topic_ids, "pathway.yaml")
    assert pathway is None
    assert problems
    return [str(p) for p in problems]


def has(problems: list[str], line: int, *words: str) -> bool:
    """Return True if one problem is at ``pathway.yaml:line`` and mentions every word."""
    prefix = f"pathway.yaml:{line}: "
    return any(p.startswith(prefix) and all(w in p for w in words) for p in problems)


@pytest.fixture(scope="module")
def real() -> Pathway:
    """Return the project's own pathway, which must load without problems."""
    pathway, problems = load_pathway(REAL_FILE, CONTRACT_TOPICS, "knowledge/pathway.yaml")
    assert problems == []
    assert pathway is not None
    return pathway


# --- the real file --------------------------------------------------------------------


def test_real_file_loads_cleanly_with_the_contract_topics(real: Pathway) -> None:
    assert real.start == "school-eligibility"
    assert len(real.order) == len(real.steps) >= 15
    for step in real.steps.values():
        assert step.topics, f"{step.id} has no topic for 'Explain this step'"
        assert step.choices


def test_small_file_loads_and_keeps_file_order_and_lines(tmp_path: Path) -> None:
    pathway, problems = load_pathway(write(tmp_path, SMALL), {"topic-a", "topic-b"})
    assert problems == []
    assert pathway is not None
    assert pathway.order == ("first", "second")
    assert pathway.steps["second"].line == line_of(SMALL, "- id: second")
    with pytest.raises(TypeError):
        pathway.steps["third"] = pathway.steps["first"]  # type: ignore[index]


def test_real_file_follows_the_current_rules(real: Pathway) -> None:
    explained = {s.id: s.explain for s in real.steps.values()}
    assert "discontinued" in explained["step2cs-history"]
    assert "discontinued" in explained["usmle-step2ck"]
    assert "Sponsor Note" in explained["school-eligibility"]
    assert "FSMB" in explained["myintealth-usmle-id"]
    assert "MyIntealth" in explained["myintealth-usmle-id"]
    assert "Step 3" in explained["visa-h1b"]
    assert "usmle-step3" in real.steps["visa-h1b"].topics
    assert "Step 3" in explained["h1b-step3"]
    assert "usmle-step3-before-residency" in real.steps["h1b-step3"].topics
    assert "OET" in explained["oet-medicine"]
    assert "ResidencyCAS" in explained["residency-application"]
    # FSMB opens the exam application only after ECFMG approved the Application (P04).
    assert "approved" in explained["ecfmg-application"]
    assert "FSMB" in explained["ecfmg-application"]
    assert "approved your Application" in explained["fsmb-registration"]
    assert "Revalidation" in explained["pathway-deadline"]
    assert "Statement of Need" in explained["statement-of-need"]


def test_main_road_runs_from_start_to_end(real: Pathway) -> None:
    visited = []
    current = real.start
    while current != END:
        visited.append(current)
        nxt = real.skip(current)
        assert nxt is not None
        current = nxt
    assert visited == MAIN_ROAD


MAIN_ROAD = [
    "school-eligibility",
    "myintealth-usmle-id",
    "ecfmg-application",
    "credential-verification",
    "fsmb-registration",
    "usmle-step1",
    "usmle-step2ck",
    "step2cs-history",
    "which-pathway",
    "oet-medicine",
    "pathway-deadline",
    "pathway-accepted",
    "program-research",
    "application-documents",
    "residency-application",
    "nrmp-registration",
    "nrmp-interviews",
    "h1b-step3",
    "rank-order-list",
    "match-result",
    "match-contract",
    "ecfmg-certificate",
    "visa-need",
    "statement-of-need",
    "visa-j1",
    "training-license",
    "start-residency",
    "after-start",
]


# --- transitions and branches -----------------------------------------------------------


def test_choice_records_status_and_leads_on(real: Pathway) -> None:
    t = real.choose("usmle-step1", "passed")
    assert t is not None
    assert (t.step_id, t.choice_id, t.status, t.next) == (
        "usmle-step1",
        "passed",
        Status.DONE,
        "usmle-step2ck",
    )
    assert not t.is_end
    t = real.choose("usmle-step1", "preparing")
    assert t is not None and t.status is Status.IN_PROGRESS


def test_school_not_listed_stops_honestly(real: Pathway) -> None:
    t = real.choose("school-eligibility", "not-listed")
    assert t is not None
    assert t.status is Status.BLOCKED
    assert t.next == "school-not-listed"
    stop = real.choose("school-not-listed", "stop")
    assert stop is not None
    assert stop.status is Status.BLOCKED
    assert stop.is_end
    again = real.choose("school-not-listed", "recheck")
    assert again is not None and again.next == "school-eligibility"


def test_failed_step2cs_leads_to_pathway6(real: Pathway) -> None:
    failed = real.choose("step2cs-history", "failed")
    never = real.choose("step2cs-history", "never-took")
    passed = real.choose("step2cs-history", "valid-pass")
    expired = real.choose("step2cs-history", "expired-pass")
    assert failed is not None and failed.next == "pathway-6-mini-cex"
    assert never is not None and never.next == "which-pathway"
    # A pass that no longer counts for certification needs a Pathway like everyone else.
    assert expired is not None and expired.next == "which-pathway"
    # A Step 2 CS pass still valid for certification needs no Pathway and no OET.
    assert passed is not None and passed.next == "program-research"
    for choice in real.steps["pathway-6-mini-cex"].choices:
        assert choice.next == "oet-medicine"


@pytest.mark.parametrize(
    ("choice_id", "status", "target"),
    [
        ("j1", Status.DONE, "statement-of-need"),
        ("h1b", Status.DONE, "visa-h1b"),
        ("none", Status.NOT_APPLICABLE, "training-license"),
    ],
)
def test_visa_branches(real: Pathway, choice_id: str, status: Status, target: str) -> None:
    t = real.choose("visa-need", choice_id)
    assert t is not None
    assert (t.status, t.next) == (status, target)


def test_unmatched_goes_to_soap_and_soap_leads_on(real: Pathway) -> None:
    t = real.choose("match-result", "unmatched")
    assert t is not None and t.next == "soap"
    t = real.choose("soap", "no-position")
    assert t is not None and not t.is_end and t.next == "reapply"
    t = real.choose("soap", "accepted")
    assert t is not None and t.next == "match-contract"


def test_last_step_ends_the_road(real: Pathway) -> None:
    t = real.choose("start-residency", "started")
    assert t is not None and t.next == "after-start" and t.status is Status.DONE
    t = real.choose("after-start", "passed")
    assert t is not None and t.is_end and t.status is Status.DONE


@pytest.mark.parametrize(
    ("step_id", "choice_id"),
    [
        ("no-such-step", "passed"),
        ("usmle-step1", "forged"),
        (END, "passed"),
        ("", ""),
        ("usmle-step1", "failed"),  # a real choice id, but of another step
    ],
)
def test_stale_or_forged_buttons_are_refused(real: Pathway, step_id: str, choice_id: str) -> None:
    assert real.choose(step_id, choice_id) is None


def test_skip_of_unknown_step_is_none(real: Pathway) -> None:
    assert real.skip("no-such-step") is None
    assert real.step("no-such-step") is None
    assert real.step(END) is None


def test_back_goes_to_the_previous_visited_step(real: Pathway) -> None:
    history = ["school-eligibility", "myintealth-usmle-id", "usmle-step1"]
    assert real.previous(history) == (
        "myintealth-usmle-id",
        ("school-eligibility", "myintealth-usmle-id"),
    )
    assert real.previous(["school-eligibility"]) is None
    assert real.previous([]) is None
    # Repeats collapse, and ids removed from the file are skipped.
    assert real.previous(["usmle-step1", "gone-step", "usmle-step1", "usmle-step2ck"]) == (
        "usmle-step1",
        ("usmle-step1",),
    )
    assert real.previous(["usmle-step1", "usmle-step1"]) is None


# --- where a user stands ---------------------------------------------------------------

RENAMED = SMALL.replace(
    "  - id: second\n", "  - id: second-step\n    formerly: [second]\n"
).replace("next: second\n", "next: second-step\n")


def test_resolve_keeps_a_live_step_and_end(real: Pathway) -> None:
    assert real.resolve("usmle-step1", {}) == ("usmle-step1", None)
    assert real.resolve(END, {}) == (END, None)
    assert real.resolve(None, {}) == (real.start, None)


def test_resolve_follows_a_renamed_step(tmp_path: Path) -> None:
    pathway, problems = load_pathway(write(tmp_path, RENAMED))
    assert problems == []
    assert pathway is not None
    step_id, note = pathway.resolve("second", {"first": "done"})
    assert step_id == "second-step"
    assert note is not None and "Second step" in note
    assert pathway.live_statuses({"second": "in_progress"}) == {"second-step": Status.IN_PROGRESS}
    assert pathway.previous(["first", "second"]) == ("first", ("first",))


def test_resolve_moves_a_user_off_a_removed_step(real: Pathway) -> None:
    statuses = {
        "school-eligibility": "done",
        "myintealth-usmle-id": "done",
        "ecfmg-application": "done",
        "credential-verification": "done",
        "fsmb-registration": "done",
        "usmle-step1": "in_progress",
    }
    step_id, note = real.resolve("usmle-step-one-old", statuses)
    assert step_id == "usmle-step1"
    assert note is not None and real.steps["usmle-step1"].title in note
    step_id, note = real.resolve("gone", {})
    assert step_id == real.start
    assert note is not None


def test_resolve_of_removed_step_when_everything_is_done(real: Pathway) -> None:
    done = {step_id: "done" for step_id in real.route({})}
    step_id, note = real.resolve("gone", done)
    assert step_id == real.start
    assert note is not None


# --- progress ---------------------------------------------------------------------------


def test_next_to_do_for_a_new_user_is_the_start(real: Pathway) -> None:
    assert real.next_to_do({}) == "school-eligibility"


def test_next_to_do_skips_finished_steps(real: Pathway) -> None:
    statuses = {
        "school-eligibility": Status.DONE,
        "myintealth-usmle-id": Status.DONE,
        "usmle-step1": Status.IN_PROGRESS,
        "usmle-step2ck": Status.DONE,
    }
    assert real.next_to_do(statuses) == "ecfmg-application"
    for step_id in ("ecfmg-application", "credential-verification", "fsmb-registration"):
        statuses[step_id] = Status.DONE
    assert real.next_to_do(statuses) == "usmle-step1"
    statuses["usmle-step1"] = Status.DONE
    assert real.next_to_do(statuses) == "step2cs-history"


def test_next_to_do_follows_the_pathway6_branch(real: Pathway) -> None:
    statuses = {sid: "done" for sid in MAIN_ROAD[: MAIN_ROAD.index("step2cs-history") + 1]}
    statuses["pathway-6-mini-cex"] = "in_progress"
    choices = {"step2cs-history": "failed"}
    # which-pathway is off this user's road: it must not be what they are told to do.
    assert real.next_to_do(statuses, choices) == "pathway-6-mini-cex"
    road = real.route(statuses, choices)
    assert "which-pathway" not in road
    # The Pathway 6 branch rejoins the main road at OET, before the Pathway decision.
    assert road.index("pathway-6-mini-cex") < road.index("oet-medicine")
    assert road.index("oet-medicine") < road.index("pathway-accepted")


def test_next_to_do_uses_the_recorded_choice_when_given(real: Pathway) -> None:
    road = real.route({})
    statuses = {sid: "done" for sid in road[: road.index("visa-need") + 1]}
    assert real.next_to_do(statuses) == "statement-of-need"
    assert real.next_to_do(statuses, {"visa-need": "h1b"}) == "visa-h1b"
    statuses["visa-need"] = "not_applicable"
    assert real.next_to_do(statuses) == "training-license"


def test_next_to_do_is_none_when_the_road_is_done(real: Pathway) -> None:
    statuses = {sid: "done" for sid in real.route({})}
    assert real.next_to_do(statuses) is None


def test_blocked_school_keeps_the_user_at_eligibility(real: Pathway) -> None:
    statuses = {"school-eligibility": "blocked", "school-not-listed": "blocked"}
    assert real.route(statuses) == ("school-eligibility", "school-not-listed")
    assert real.next_to_do(statuses) == "school-eligibility"


def test_unknown_stored_statuses_and_ids_are_ignored(real: Pathway) -> None:
    statuses = {"school-eligibility": "finished", "gone-step": "done"}
    assert real.live_statuses(statuses) == {}
    assert real.next_to_do(statuses) == "school-eligibility"


def test_status_text_symbols_and_words() -> None:
    assert [s.value for s in Status] == [
        "not_started",
        "in_progress",
        "done",
        "not_applicable",
        "blocked",
    ]
    assert Status.DONE.label == "✅ done"
    assert Status.IN_PROGRESS.label == "⏳ in progress"
    assert Status.NOT_STARTED.label == "⬜ not started"
    assert Status.NOT_APPLICABLE.label == "➖ not applicable"
    assert Status.BLOCKED.label == "⛔ blocked"
    assert parse_status("done") is Status.DONE
    assert parse_status("nonsense") is None
    assert parse_status(None) is None
    assert Status.NOT_APPLICABLE.finished and not Status.BLOCKED.finished


# --- validation: every problem at file:line ----------------------------------------------


def test_yaml_syntax_error_has_its_line(tmp_path: Path) -> None:
    text = SMALL.replace("    question: Ready?\n", "    question: Ready?\n   bad: [\n")
    problems = problems_of(tmp_path, text)
    assert len(problems) == 1
    assert problems[0].startswith("pathway.yaml:")
    assert "YAML syntax error" in problems[0]


def test_missing_and_empty_files(tmp_path: Path) -> None:
    pathway, problems = load_pathway(tmp_path / "nope.yaml", None, "pathway.yaml")
    assert pathway is None
    assert len(problems) == 1
    assert str(problems[0]).startswith("pathway.yaml:1: ")
    assert has(problems_of(tmp_path, ""), 1, "empty")
    assert has(problems_of(tmp_path, "- a\n- b\n"), 1, "mapping")


def test_wrong_and_missing_version(tmp_path: Path) -> None:
    text = SMALL.replace("version: 1", "version: 2  # <-")
    assert has(problems_of(tmp_path, text), 1, "version", "1")
    text = SMALL.replace("version: 1\n", "")
    assert has(problems_of(tmp_path, text), 1, "version")


def test_unknown_fields_with_suggestions(tmp_path: Path) -> None:
    text = SMALL.replace("    title: Second step\n", "    titel: Second step  # <-\n")
    problems = problems_of(tmp_path, text)
    assert has(problems, line_of(text), "unknown field `titel`", "title")
    # ...and the step now lacks a title, reported at the step.
    assert has(problems, line_of(text, "- id: second"), "no `title`")
    text = SMALL.replace("start: first\n", "start: first\nextra: 1  # <-\n")
    assert has(problems_of(tmp_path, text), line_of(text), "unknown field `extra`")
    text = SMALL.replace(
        "        status: done\n        next: end",
        "        status: done\n        nxt: end  # <-\n        next: end",
        1,
    )
    assert has(problems_of(tmp_path, text), line_of(text), "`nxt`", "next")


def test_missing_field_is_reported_at_the_step(tmp_path: Path) -> None:
    text = SMALL.replace("    question: Ready?\n", "")
    problems = problems_of(tmp_path, text)
    assert has(problems, line_of(text, "- id: first"), "step 'first'", "no `question`")


def test_wrong_types_say_to_quote(tmp_path: Path) -> None:
    # `label: Yes` is a boolean in YAML, a classic trap.
    text = SMALL.replace("label: Go on", "label: Yes  # <-")
    problems = problems_of(tmp_path, text)
    assert has(problems, line_of(text), "`label`", "must be text", "quotes")
    text = SMALL.replace("title: First step", "title: 42  # <-")
    assert has(problems_of(tmp_path, text), line_of(text), "`title`", "number")
    text = SMALL.replace("topics: [topic-b]", "topics: topic-b  # <-")
    assert has(problems_of(tmp_path, text), line_of(text), "`topics`", "list")
    text = SMALL.replace(
        "    choices:\n      - id: done", "    choices: none  # <-\n    x:\n      - id: done"
    )
    assert has(problems_of(tmp_path, text), line_of(text), "`choices`", "non-empty list")


def test_empty_text_is_reported(tmp_path: Path) -> None:
    text = SMALL.replace("explain: The second step.", 'explain: ""  # <-')
    assert has(problems_of(tmp_path, text), line_of(text), "`explain`", "empty")


def test_duplicate_step_ids(tmp_path: Path) -> None:
    text = SMALL.replace("  - id: second\n", "  - id: first  # <-\n").replace(
        "next: second", "next: end"
    )
    problems = problems_of(tmp_path, text)
    assert has(problems, line_of(text), "duplicate step id 'first'", "line 4")


def test_duplicate_choice_ids(tmp_path: Path) -> None:
    text = SMALL.replace("      - id: stop\n", "      - id: go  # <-\n")
    problems = problems_of(tmp_path, text)
    assert has(problems, line_of(text), "duplicate choice id 'go'")


def test_duplicate_labels_in_one_step(tmp_path: Path) -> None:
    text = SMALL.replace("label: Stop here", "label: Go on  # <-")
    assert has(problems_of(tmp_path, text), line_of(text), "Go on", "cannot tell them apart")


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    text = SMALL.replace(
        "    explain: The first step.\n",
        "    explain: The first step.\n    explain: Again.  # <-\n",
    )
    assert has(problems_of(tmp_path, text), line_of(text), "`explain` appears twice")


def test_unknown_next_target_with_suggestion(tmp_path: Path) -> None:
    text = SMALL.replace("next: second", "next: secnd  # <-")
    problems = problems_of(tmp_path, text)
    assert has(problems, line_of(text), "`next: secnd`", "names no step", "'second'")


def test_next_to_an_old_id_names_the_new_one(tmp_path: Path) -> None:
    text = RENAMED.replace("next: second-step", "next: second  # <-")
    problems = problems_of(tmp_path, text)
    assert has(problems, line_of(text), "old id of step 'second-step'")


def test_unreachable_step(tmp_path: Path) -> None:
    text = SMALL + (
        "  - id: island  # <-\n"
        "    title: Island\n"
        "    explain: Nobody comes here.\n"
        "    question: Alone?\n"
        "    choices:\n"
        "      - {id: leave, label: Leave, status: done, next: end}\n"
    )
    problems = problems_of(tmp_path, text)
    assert len(problems) == 1
    assert has(problems, line_of(text), "'island'", "cannot be reached")


def test_step_with_no_way_out(tmp_path: Path) -> None:
    text = SMALL.replace(
        "        next: end\n    topics: [topic-b]", "        next: second\n    topics: [topic-b]"
    )
    problems = problems_of(tmp_path, text)
    assert has(problems, line_of(text, "- id: second"), "'second'", "no way out")
    # `first` can still reach the end through its Stop choice.
    assert not any("'first' has no way out" in p for p in problems)


def test_unknown_status_with_suggestion(tmp_path: Path) -> None:
    text = SMALL.replace("status: blocked", "status: blokced  # <-")
    problems = problems_of(tmp_path, text)
    assert has(problems, line_of(text), "unknown status 'blokced'", "'blocked'", "not_started")
    text = SMALL.replace("        status: blocked\n", "")
    assert has(problems_of(tmp_path, text), line_of(text, "- id: stop"), "no `status:`")


def test_unknown_topics_only_when_topic_ids_are_given(tmp_path: Path) -> None:
    text = SMALL.replace("topics: [topic-b]", "topics: [topic-c]  # <-")
    problems = problems_of(tmp_path, text, frozenset({"topic-a", "topic-b"}))
    assert has(problems, line_of(text), "unknown topic 'topic-c'", "Did you mean")
    pathway, problems2 = load_pathway(write(tmp_path, text))
    assert pathway is not None and problems2 == []


def test_formerly_must_not_name_a_live_step(tmp_path: Path) -> None:
    text = SMALL.replace("  - id: second\n", "  - id: second  # <-\n    formerly: [first]\n")
    problems = problems_of(tmp_path, text)
    assert has(problems, line_of(text), "'first'", "`formerly`", "live step")


def test_formerly_must_not_be_claimed_twice(tmp_path: Path) -> None:
    text = SMALL.replace("  - id: first\n", "  - id: first\n    formerly: [old]\n").replace(
        "  - id: second\n", "  - id: second  # <-\n    formerly: [old]\n"
    )
    assert has(problems_of(tmp_path, text), line_of(text), "'old'", "so does step 'first'")


def test_lengths_that_do_not_fit_buttons(tmp_path: Path) -> None:
    text = SMALL.replace("title: First step", "title: " + "T" * 41 + "  # <-")
    assert has(problems_of(tmp_path, text), line_of(text), "`title`", "41 characters", "40")
    text = SMALL.replace("label: Stop here", "label: " + "L" * 31 + "  # <-")
    assert has(problems_of(tmp_path, text), line_of(text), "`label`", "31 characters", "30")
    text = SMALL.replace("explain: The first step.", "explain: " + "e" * 601 + "  # <-")
    assert has(problems_of(tmp_path, text), line_of(text), "`explain`", "601")


def test_ids_must_be_short_kebab_case(tmp_path: Path) -> None:
    long_id = "a" * 25
    text = SMALL.replace("- id: second", f"- id: {long_id}  # <-").replace(
        "next: second", f"next: {long_id}"
    )
    assert has(problems_of(tmp_path, text), line_of(text), long_id, "at most 24")
    text = SMALL.replace("- id: go", "- id: Go_On  # <-")
    assert has(problems_of(tmp_path, text), line_of(text), "'Go_On'", "lowercase")


def test_start_must_name_a_step(tmp_path: Path) -> None:
    text = SMALL.replace("start: first", "start: frist  # <-")
    assert has(problems_of(tmp_path, text), line_of(text), "`start: frist`", "'first'")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = (
        SMALL.replace("version: 1", "version: 3  # <-1")
        .replace("status: blocked", "status: stuck  # <-2")
        .replace("next: second", "next: nowhere  # <-3")
    )
    problems = problems_of(tmp_path, text)
    for marker in ("# <-1", "# <-2", "# <-3"):
        assert any(p.startswith(f"pathway.yaml:{line_of(text, marker)}: ") for p in problems)
    lines = [int(p.split(":")[1]) for p in problems]
    assert lines == sorted(lines)


# --- the diagram ------------------------------------------------------------------------


def test_mermaid_draws_every_step_and_the_end(real: Pathway) -> None:
    diagram = to_mermaid(real)
    assert diagram.startswith("flowchart TD\n")
    for step in real.steps.values():
        node = step.id.replace("-", "_")
        assert f'{node}["{step.title}"]' in diagram
    assert "END([End])" in diagram
    assert '-.->|"No, it is not listed"| school_not_listed' in diagram
    assert '-->|"I failed it at least once"| pathway_6_mini_cex' in diagram
    assert '-.->|"No position this year"| reapply' in diagram


def test_mermaid_file_is_up_to_date(real: Pathway) -> None:
    assert REAL_DIAGRAM.read_text(encoding="utf-8") == to_mermaid(real), (
        "knowledge/pathway.mmd is stale: run "
        "`python -m bot pathway --mermaid > knowledge/pathway.mmd`"
    )


def test_mermaid_escapes_quotes_and_reserved_words(tmp_path: Path) -> None:
    text = SMALL.replace("- id: second", "- id: style").replace("next: second", "next: style")
    text = text.replace("title: First step", "title: 'The \"first\" step'")
    pathway, problems = load_pathway(write(tmp_path, text))
    assert problems == [] and pathway is not None
    diagram = to_mermaid(pathway)
    assert '"The #quot;first#quot; step"' in diagram
    assert "style_[" in diagram


def test_progress_lists_the_road_and_answered_steps_only(real: Pathway) -> None:
    new_user = real.progress_steps({})
    for off_road in ("school-not-listed", "pathway-6-mini-cex", "soap", "reapply", "visa-h1b"):
        assert off_road not in new_user
    assert new_user[0] == "school-eligibility" and new_user[-1] == "after-start"
    h1b_user = real.progress_steps({"visa-need": "done"}, {"visa-need": "h1b"})
    assert "visa-h1b" in h1b_user and "visa-j1" not in h1b_user
    # A step the user answered stays listed even after they changed branch.
    assert "visa-j1" in real.progress_steps(
        {"visa-j1": "in_progress", "visa-need": "done"}, {"visa-need": "h1b"}
    )


def test_a_broken_next_does_not_cascade(tmp_path: Path) -> None:
    text = SMALL.replace(
        "        status: done\n        next: end\n    topics: [topic-b]",
        "        status: done\n        next: Nowhere  # <-\n    topics: [topic-b]",
    )
    problems = problems_of(tmp_path, text)
    assert has(problems, line_of(text), "'Nowhere'", "lowercase")
    assert len(problems) == 1


def test_real_file_links_only_to_topics_of_the_real_knowledge_base(project: Pathway) -> None:
    # The fixture loads it with the real topic ids and asserts there are no problems.
    assert project.steps


# --- the 2027-Match review (content audit, section 7), on the project's own knowledge ----


@pytest.fixture(scope="module")
def project() -> Pathway:
    """Return the pathway loaded with the topic ids of the project's real knowledge base."""
    from bot.knowledge import load_knowledge

    kb, _ = load_knowledge(ROOT / "knowledge")
    if kb is None:
        pytest.skip("the knowledge base does not load; its own tests report why")
    pathway, problems = load_pathway(REAL_FILE, set(kb.by_id), "knowledge/pathway.yaml")
    assert [str(p) for p in problems] == []
    assert pathway is not None
    return pathway


def main_road(p: Pathway) -> list[str]:
    """Return the steps Skip walks through from the start (every step's first choice)."""
    road: list[str] = []
    current = p.start
    while current != END and current not in road:
        road.append(current)
        nxt = p.skip(current)
        assert nxt is not None
        current = nxt
    return road


def reaches(p: Pathway, source: str, target: str) -> bool:
    """Return True if some sequence of choices leads from ``source`` to ``target``."""
    seen = {source}
    queue = [source]
    while queue:
        step = p.steps[queue.pop()]
        for choice in step.choices:
            if choice.next == target:
                return True
            if choice.next != END and choice.next not in seen:
                seen.add(choice.next)
                queue.append(choice.next)
    return False


@pytest.mark.parametrize(
    ("before", "after"),
    [
        # OET scores are part of the Pathway application: pass OET before the decision.
        ("oet-medicine", "pathway-accepted"),
        ("oet-medicine", "pathway-deadline"),
        ("which-pathway", "oet-medicine"),
        ("pathway-deadline", "pathway-accepted"),
        # FSMB opens the exam application only after ECFMG approved the Application.
        ("myintealth-usmle-id", "ecfmg-application"),
        ("ecfmg-application", "fsmb-registration"),
        ("fsmb-registration", "usmle-step1"),
        # Diploma verification starts early, not after the Pathway.
        ("credential-verification", "usmle-step1"),
        ("credential-verification", "which-pathway"),
        # Program research and documents come before the application.
        ("program-research", "residency-application"),
        ("application-documents", "residency-application"),
        ("residency-application", "nrmp-registration"),
        ("nrmp-registration", "rank-order-list"),
        # Step 3 for an H-1B has to be planned before ranking, not after Match Week.
        ("h1b-step3", "rank-order-list"),
        ("h1b-step3", "match-result"),
        # After matching: contract, certificate, Statement of Need, visa, licence, start.
        ("match-result", "match-contract"),
        ("match-contract", "ecfmg-certificate"),
        ("ecfmg-certificate", "visa-need"),
        ("statement-of-need", "visa-j1"),
        ("visa-j1", "training-license"),
        ("training-license", "start-residency"),
        ("start-residency", "after-start"),
    ],
)
def test_order_fixes_hold_on_the_main_road(project: Pathway, before: str, after: str) -> None:
    road = main_road(project)
    assert road.index(before) < road.index(after), f"{before} must come before {after}"


def test_the_main_road_reaches_the_end_through_every_new_step(project: Pathway) -> None:
    road = main_road(project)
    assert road == MAIN_ROAD
    assert project.skip(road[-1]) == END


def test_pathway6_and_expired_cs_pass_also_take_oet_before_the_decision(
    project: Pathway,
) -> None:
    for choice_id in ("failed", "expired-pass", "never-took"):
        statuses = {sid: "done" for sid in MAIN_ROAD[: MAIN_ROAD.index("step2cs-history") + 1]}
        road = project.route(statuses, {"step2cs-history": choice_id})
        assert road.index("oet-medicine") < road.index("pathway-accepted"), choice_id
    valid = project.route({}, {"step2cs-history": "valid-pass"})
    assert "oet-medicine" not in valid and "pathway-accepted" not in valid
    assert "program-research" in valid


def test_h1b_user_meets_step3_before_ranking(project: Pathway) -> None:
    road = project.route({}, {"visa-need": "h1b"})
    assert road.index("h1b-step3") < road.index("rank-order-list") < road.index("visa-h1b")
    assert "usmle-step3" in project.steps["h1b-step3"].topics


def test_unsuccessful_soap_is_not_a_dead_end(project: Pathway) -> None:
    t = project.choose("soap", "no-position")
    assert t is not None and not t.is_end
    plan = project.steps[t.next]
    # The plan leads back into next season's application, not only to the end.
    leads_on = [c for c in plan.choices if c.next != END]
    assert leads_on, f"{plan.id} only ends the road"
    assert plan.choices[0].next != END  # Skip follows a real road too
    assert reaches(project, plan.id, "residency-application")
    assert reaches(project, plan.id, "pathway-deadline")  # Pathway validity / Revalidation
    assert reaches(project, plan.id, "match-contract")  # a post-SOAP position
    assert {"gme-after-soap-plan", "gme-eras-reapply"} <= set(plan.topics)


def test_no_step_id_from_before_the_review_is_dropped(project: Pathway) -> None:
    renamed = project.renamed()
    for old in IDS_BEFORE_2027_REVIEW:
        assert old in project.steps or old in renamed, f"users on '{old}' would be lost"


@pytest.mark.parametrize("old", ["choose-pathway", "pathway-6"])
def test_a_user_on_a_renamed_step_keeps_their_place(project: Pathway, old: str) -> None:
    earlier = {sid: "done" for sid in MAIN_ROAD[: MAIN_ROAD.index("step2cs-history") + 1]}
    statuses = earlier | {old: "in_progress"}
    step_id, note = project.resolve(old, statuses)
    assert step_id == "pathway-accepted"
    assert note is not None and project.steps["pathway-accepted"].title in note
    # The old question was "Has ECFMG accepted your Pathway (6) application?": same step.
    assert "accepted" in project.steps["pathway-accepted"].question
    assert project.live_statuses(statuses)["pathway-accepted"] is Status.IN_PROGRESS
    # Their stored choice ids still mean the same on the new step.
    for choice_id in ("accepted", "applied", "not-yet"):
        t = project.choose("pathway-accepted", choice_id)
        assert t is not None and not t.is_end
    assert project.previous([*MAIN_ROAD[:3], old]) == (MAIN_ROAD[2], tuple(MAIN_ROAD[:3]))


def test_the_rest_of_the_old_road_keeps_its_ids(project: Pathway) -> None:
    # Users who answered before the review: their statuses still count, by the same id.
    old_statuses = {sid: "done" for sid in IDS_BEFORE_2027_REVIEW if sid != "school-not-listed"}
    live = project.live_statuses(old_statuses)
    assert live["pathway-accepted"] is Status.DONE
    assert live["credential-verification"] is Status.DONE
    assert project.resolve("oet-medicine", old_statuses) == ("oet-medicine", None)


def test_buttons_fit_and_steps_explain_with_topics(project: Pathway) -> None:
    for step in project.steps.values():
        assert len(step.title) <= 40, step.id
        assert step.topics, step.id
        for choice in step.choices:
            assert len(choice.label) <= 30, (step.id, choice.id)


def test_no_season_dates_typed_into_the_steps(project: Pathway) -> None:
    season = re.compile(r"\b(20\d\d) Match\b|\b2027\b|\bin 20\d\d Match Week\b")
    for step in project.steps.values():
        text = " ".join([step.title, step.explain, step.question])
        assert not season.search(text), f"{step.id}: link a topic instead of typing the date"
    # Deadline steps send users to their Match year's date, given by a linked topic.
    for step_id, topic in [
        ("pathway-deadline", "ecfmg-pathways-deadlines"),
        ("nrmp-registration", "gme-nrmp-deadline"),
        ("rank-order-list", "gme-rank-order-list"),
    ]:
        step = project.steps[step_id]
        assert "for your Match year" in step.explain, step_id
        assert topic in step.topics, step_id
