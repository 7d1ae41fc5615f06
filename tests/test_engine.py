"""The conversation engine without Telegram: answers, dialogue, pathway, personal data."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import textwrap
import threading
from pathlib import Path

import pytest

from bot import actions as act
from bot.bundle import Bundle, KnowledgeHolder, load_bundle
from bot.config import MatchingSettings
from bot.engine import Engine, User
from bot.matching import Matcher, MatchResult, Thresholds
from bot.reply import Reply, Style
from bot.store import Store
from tests.conftest import FAQ_TOPICS, KNOWLEDGE, write_kb

ALICE = User(1001, "Alice")
BOB = User(1002, "Bob")


def actions_of(reply: Reply) -> list[act.Action]:
    """Return the actions behind a reply's buttons."""
    return [b.action for b in reply.all_buttons]


def opened_topics(reply: Reply) -> list[str]:
    """Return the topic ids a reply's buttons open."""
    return [a.topic_id for a in actions_of(reply) if isinstance(a, act.OpenTopic)]


def choice_ids(reply: Reply) -> list[str]:
    """Return the pathway choice ids offered by a step reply."""
    return [a.choice_id for a in actions_of(reply) if isinstance(a, act.PathChoose)]


def engine_for(kb: Path, store: Store) -> Engine:
    """Build an engine over a knowledge directory."""
    bundle, problems = load_bundle(kb)
    assert bundle is not None, problems
    return Engine(KnowledgeHolder(kb, bundle), store, MatchingSettings())


# -- answering -------------------------------------------------------------------------


async def test_a_question_gets_a_sourced_dated_answer(engine: Engine) -> None:
    reply = await engine.handle_text(ALICE, "Is Step 2 CS still required?")
    assert reply.kind == "answer"
    assert reply.topic_id == "ecfmg-step2cs-discontinued"
    links = [s for s in reply.spans if s.style is Style.LINK]
    assert links and all(s.url and s.url.startswith("https://") for s in links)
    assert "Last reviewed" in reply.plain_text
    feedback = [a for a in actions_of(reply) if isinstance(a, act.Feedback)]
    assert {f.helpful for f in feedback} == {True, False}
    assert opened_topics(reply)  # related topics


@pytest.mark.parametrize(
    "message", ["hi", "Hello!!", "thanks", "thank you so much", "ok", "🙂🙂🙂", "are you a bot?",
                "bye", "how are you today?", "what's your name", "thank you, that helped a lot",
                "Thanks a ton for the quick reply!"]
)
async def test_small_talk_gets_a_kind_reply_and_is_never_logged(
    engine: Engine, store: Store, message: str
) -> None:
    reply = await engine.handle_text(ALICE, message)
    assert reply.kind == "smalltalk"
    assert act.Menu("topics") in actions_of(reply)  # a way on
    assert "passed your question" not in reply.plain_text
    assert await store.unanswered() == []


async def test_a_question_with_a_greeting_is_still_a_question(engine: Engine) -> None:
    reply = await engine.handle_text(ALICE, "hi, is step 2 cs still required?")
    assert reply.topic_id == "ecfmg-step2cs-discontinued"
    thanks_and_more = await engine.handle_text(ALICE, "thanks, and is step 2 cs still required")
    assert thanks_and_more.topic_id == "ecfmg-step2cs-discontinued"


@pytest.mark.parametrize(
    ("message", "decline"),
    [("plab 1 dates", "decline-uk-plab"), ("AMC exam australia", "decline-australia-amc")],
)
async def test_out_of_scope_is_said_with_where_to_go_and_not_logged(
    engine: Engine, store: Store, message: str, decline: str
) -> None:
    reply = await engine.handle_text(ALICE, message)
    assert (reply.kind, reply.topic_id) == ("decline", decline)
    assert any(s.url for s in reply.spans)  # where to go instead
    assert await store.unanswered() == []


async def test_a_question_in_another_language_is_answered_in_english_and_says_so(
    engine: Engine,
) -> None:
    reply = await engine.handle_text(ALICE, "cuanto cuesta el step 1")
    assert reply.kind == "answer" and reply.plain_text.startswith("(I answer in English")
    english = await engine.handle_text(ALICE, "how much does step 1 cost")
    assert english.topic_id == reply.topic_id
    assert "I answer in English" not in english.plain_text


def test_the_learned_model_is_added_after_a_fast_start(tmp_path: Path) -> None:
    bundle, problems = load_bundle(KNOWLEDGE, learned=False)
    assert bundle is not None, problems
    holder = KnowledgeHolder(KNOWLEDGE, bundle)
    assert not holder.bundle.matcher.learned
    assert holder.learn() is True
    assert holder.bundle.matcher.learned and holder.bundle.kb is bundle.kb
    assert holder.learn() is False  # already there


async def test_after_a_reload_the_learned_model_follows_in_the_background(
    tmp_path: Path,
) -> None:
    kb = write_kb(tmp_path / "kb", FAQ_TOPICS)
    bundle, problems = load_bundle(kb)
    assert bundle is not None and bundle.matcher.learned, problems
    holder = KnowledgeHolder(kb, bundle)
    assert holder.keep_learned() is None  # nothing to do
    write_kb(tmp_path / "kb", FAQ_TOPICS + textwrap.dedent("""\
        - id: change-email
          title: Change your email address
          questions: [How do I change my email address?]
          answer: Go to Settings, then Profile, then Email.
    """))
    reloaded, _ = holder.reload_if_changed()
    assert reloaded and not holder.bundle.matcher.learned  # served at once, lexical
    training = holder.keep_learned()
    assert training is not None
    # One at a time: asked again, it returns the running training, never a second one
    # (or nothing, if that training has already finished: three topics train fast).
    again = holder.keep_learned()
    assert again is training or (again is None and holder.bundle.matcher.learned)
    await asyncio.to_thread(training.join, 120)
    assert holder.bundle.matcher.learned and "change-email" in holder.bundle.kb.by_id


class _HeldMatcher:
    """The real matcher, except that one question waits until the test lets it go."""

    def __init__(self, real: Matcher) -> None:
        self.real = real
        self.started = threading.Event()
        self.release = threading.Event()
        self.held_until_released = False  # False: the wait ran out before the test let go

    def match(self, query: str, thresholds: Thresholds, limit: int = 5) -> MatchResult:
        if "slow" in query:
            self.started.set()
            self.held_until_released = self.release.wait(timeout=5)
        return self.real.match(query, thresholds, limit)


async def test_a_slow_question_does_not_hold_up_another_user(
    real_bundle: Bundle, store: Store
) -> None:
    held = _HeldMatcher(real_bundle.matcher)
    bundle = dataclasses.replace(real_bundle, matcher=held)
    engine = Engine(KnowledgeHolder(KNOWLEDGE, bundle), store, MatchingSettings())
    # A long question (a story with the question at the end) is matched on a worker
    # thread; short ones are understood on the event loop, within a few milliseconds.
    story = "I graduated abroad some years ago and I am worried, " * 5
    slow = asyncio.create_task(engine.handle_text(ALICE, story + "slow question: step 2 cs?"))
    try:
        await asyncio.to_thread(held.started.wait, 10)
        # Alice's question is still being matched; Bob is answered meanwhile.
        reply = await asyncio.wait_for(
            engine.handle_text(BOB, "Is Step 2 CS still required?"), timeout=10
        )
        assert reply.topic_id == "ecfmg-step2cs-discontinued"
        assert not slow.done()
    finally:
        held.release.set()
    assert (await slow).kind in ("answer", "ambiguous", "fallback")
    # Bob was answered while Alice's question was still held: nothing waited for it.
    assert held.held_until_released


@pytest.mark.parametrize("message", ["", "   ", "\n\n"])
async def test_empty_messages_get_a_hint_and_nothing_is_logged(
    engine: Engine, store: Store, message: str
) -> None:
    reply = await engine.handle_text(ALICE, message)
    assert reply.kind == "empty"
    assert await store.unanswered() == []


@pytest.mark.parametrize(
    "message", ["asdkjh qwpoeiru zmxncb", "what's the best pizza in rome"]
)
async def test_off_topic_falls_back_honestly_and_is_logged(
    engine: Engine, store: Store, message: str
) -> None:
    reply = await engine.handle_text(ALICE, message)
    assert reply.kind == "fallback"
    assert act.Menu("topics") in actions_of(reply)
    assert [r["text"] for r in await store.unanswered()] == [message]


async def test_a_huge_message_is_answered_and_logged_cut(engine: Engine, store: Store) -> None:
    reply = await engine.handle_text(ALICE, "blorp " * 2000)
    assert reply.kind in {"fallback", "ambiguous", "answer"}
    for row in await store.unanswered():
        assert len(row["text"]) <= 2000


async def test_ambiguous_offers_three_and_none_of_these(tmp_path: Path, store: Store) -> None:
    kb = write_kb(tmp_path / "kb", textwrap.dedent("""\
          - id: oet-score
            questions: [What OET score do I need?]
            answer: 350 and 300.
          - id: oet-retake
            questions: [Can I retake the OET?]
            answer: Yes.
          - id: oet-validity
            questions: [How long is an OET result valid?]
            answer: It depends on the season.
          - id: oet-booking
            questions: [How do I book the OET?]
            answer: On the OET website.
        """))
    engine = engine_for(kb, store)
    reply = await engine.handle_text(ALICE, "oet")
    assert reply.kind == "ambiguous"
    offered = opened_topics(reply)
    assert 1 <= len(offered) <= 3 and set(offered) <= {
        "oet-score", "oet-retake", "oet-validity", "oet-booking"
    }
    (none,) = [a for a in actions_of(reply) if isinstance(a, act.NoneOfThese)]
    assert await store.unanswered() == []
    after = await engine.handle_action(ALICE, none)
    assert after.kind == "none_of_these"
    assert [r["reason"] for r in await store.unanswered()] == ["none_of_these"]
    again = await engine.handle_action(ALICE, none)  # a double press logs nothing more
    assert again.kind == "info" and len(await store.unanswered()) == 1
    other = await engine.handle_action(BOB, none)  # someone else's question id
    assert other.kind == "info"


async def test_deep_link_opens_a_topic_and_an_unknown_one_shows_the_menu(engine: Engine) -> None:
    reply = await engine.start(ALICE, "visa-j1-ecfmg")
    assert reply.topic_id == "visa-j1-ecfmg"
    unknown = await engine.start(ALICE, "no-such-topic")
    assert unknown.kind == "welcome" and "no longer have" in unknown.plain_text


async def test_browsing_categories_pages_and_back(engine: Engine) -> None:
    categories = engine.browse()
    browse_actions = [a for a in actions_of(categories) if isinstance(a, act.Browse)]
    assert len(browse_actions) == len(engine.bundle.kb.categories) >= 6
    biggest = max(engine.bundle.kb.categories, key=lambda c: len(engine.bundle.kb.in_category(c)))
    first = await engine.handle_action(ALICE, act.Browse(act.slug(biggest), 0))
    assert first.edit and 1 <= len(opened_topics(first)) <= 8
    pages = [a for a in actions_of(first) if isinstance(a, act.Browse) and a.category]
    if len(engine.bundle.kb.in_category(biggest)) > 8:
        second = await engine.handle_action(ALICE, pages[0])
        assert set(opened_topics(second)).isdisjoint(opened_topics(first))
    assert act.Browse() in actions_of(first)  # back to all areas
    stale = await engine.handle_action(ALICE, act.Browse("no-such-area", 0))
    assert stale.kind == "categories"


@pytest.mark.parametrize("data", [None, "", "zz", "t:no-such-topic", "x" * 70, "p:nope:nope"])
async def test_stale_or_forged_buttons_get_a_polite_reply(engine: Engine, data: str) -> None:
    reply = await engine.handle_action(ALICE, act.decode(data))
    assert reply.kind in {"stale", "pathway_step"}
    assert reply.notice


def test_every_action_round_trips_within_64_bytes() -> None:
    long_id = "a" * 40
    for action in (
        act.OpenTopic(long_id), act.Browse(long_id, 999), act.Feedback(long_id, False),
        act.NoneOfThese(10**12), act.Menu("progress"), act.PathChoose("b" * 24, "c" * 24),
        act.PathNav("explain", "d" * 24), act.SetStatus("e" * 24, "not_applicable"),
        act.Confirm("forget", True),
    ):
        data = act.encode(action)
        assert len(data.encode()) <= 64
        assert act.decode(data) == action


# -- the "what were you looking for?" dialogue -----------------------------------------


async def test_not_helpful_takes_the_next_message_as_a_comment(
    engine: Engine, store: Store
) -> None:
    asked = await engine.handle_action(ALICE, act.Feedback("usmle-step1", False))
    assert asked.kind == "ask_comment"
    reply = await engine.handle_text(ALICE, "the fee for step 1 in my country")
    assert reply.kind in {"thanks", "answer"}
    data = await store.export(ALICE.id)
    assert data["feedback"][0]["comment"] == "the fee for step 1 in my country"
    assert [r["reason"] for r in await store.unanswered()] == ["not_helpful"]
    # the dialogue is over: the next message is a question again
    follow = await engine.handle_text(ALICE, "Is Step 2 CS still required?")
    assert follow.topic_id == "ecfmg-step2cs-discontinued"


async def test_a_pending_comment_survives_a_restart(
    real_bundle: Bundle, tmp_path: Path
) -> None:
    path = tmp_path / "restart.sqlite3"
    async with await Store.open(path) as store:
        engine = Engine(KnowledgeHolder(KNOWLEDGE, real_bundle), store, MatchingSettings())
        await engine.handle_action(ALICE, act.Feedback("usmle-step1", False))
    async with await Store.open(path) as store:  # the process was restarted
        engine = Engine(KnowledgeHolder(KNOWLEDGE, real_bundle), store, MatchingSettings())
        reply = await engine.handle_text(ALICE, "the fee for step 1 in my country")
        assert reply.kind in {"thanks", "answer"}
        comment = (await store.export(ALICE.id))["feedback"][0]["comment"]
        assert comment == "the fee for step 1 in my country"
        # someone who was never asked anything still gets an answer, not a "thanks"
        other = await engine.handle_text(User(2002, "Bo"), "Is Step 2 CS still required?")
        assert other.topic_id == "ecfmg-step2cs-discontinued"


async def test_skip_ends_the_dialogue(engine: Engine, store: Store) -> None:
    await engine.handle_action(ALICE, act.Feedback("usmle-step1", False))
    skipped = await engine.skip(ALICE)
    assert "Skipped" in skipped.plain_text
    reply = await engine.handle_text(ALICE, "Is Step 2 CS still required?")
    assert reply.topic_id == "ecfmg-step2cs-discontinued"
    assert (await store.export(ALICE.id))["feedback"][0]["comment"] is None


async def test_helpful_only_thanks(engine: Engine, store: Store) -> None:
    reply = await engine.handle_action(ALICE, act.Feedback("usmle-step1", True))
    assert reply.spans == () and reply.notice
    assert (await store.export(ALICE.id))["feedback"][0]["helpful"] == 1


# -- pathway ---------------------------------------------------------------------------


async def test_pathway_walk_back_skip_and_resume(engine: Engine, store: Store) -> None:
    first = await engine.pathway(ALICE)
    assert first.kind == "pathway_step" and "Step 1 of" in first.plain_text
    assert choice_ids(first) == ["listed", "checking", "not-listed"]
    second = await engine.handle_action(ALICE, act.PathChoose("school-eligibility", "listed"))
    assert second.edit and "Step 2 of" in second.plain_text
    user = await store.get_user(ALICE.id)
    assert user.current_step == "myintealth-usmle-id"
    assert user.statuses == {"school-eligibility": "done"}
    back = await engine.handle_action(ALICE, act.PathNav("back", "myintealth-usmle-id"))
    assert "Step 1 of" in back.plain_text
    assert (await store.get_user(ALICE.id)).current_step == "school-eligibility"
    await engine.handle_action(ALICE, act.PathNav("skip", "school-eligibility"))
    resumed = await engine.pathway(ALICE)  # months later: same place
    assert (await store.get_user(ALICE.id)).current_step == "myintealth-usmle-id"
    assert "Step 2 of" in resumed.plain_text


async def test_school_not_listed_stops_honestly(engine: Engine, store: Store) -> None:
    await engine.pathway(ALICE)
    reply = await engine.handle_action(ALICE, act.PathChoose("school-eligibility", "not-listed"))
    assert (await store.get_user(ALICE.id)).current_step == "school-not-listed"
    assert (await store.get_user(ALICE.id)).statuses["school-eligibility"] == "blocked"
    stop = act.PathChoose("school-not-listed", choice_ids(reply)[0])
    end = await engine.handle_action(ALICE, stop)
    assert end.kind == "pathway_end"


async def test_a_double_press_does_not_advance_twice(engine: Engine, store: Store) -> None:
    await engine.pathway(ALICE)
    press = act.PathChoose("school-eligibility", "listed")
    _, second = await asyncio.gather(
        engine.handle_action(ALICE, press), engine.handle_action(ALICE, press)
    )
    user = await store.get_user(ALICE.id)
    assert user.current_step == "myintealth-usmle-id"
    assert len(await store.history(ALICE.id)) == 1
    assert second.notice and "another step" in second.notice


async def test_a_question_in_the_middle_of_the_pathway_keeps_the_position(
    engine: Engine, store: Store
) -> None:
    await engine.pathway(ALICE)
    await engine.handle_action(ALICE, act.PathChoose("school-eligibility", "listed"))
    answer = await engine.handle_text(ALICE, "what OET score do I need")
    assert answer.kind == "answer"
    assert (await store.get_user(ALICE.id)).current_step == "myintealth-usmle-id"
    assert "Step 2 of" in (await engine.pathway(ALICE)).plain_text


async def test_explain_opens_the_linked_topic(engine: Engine) -> None:
    await engine.pathway(ALICE)
    reply = await engine.handle_action(ALICE, act.PathNav("explain", "school-eligibility"))
    assert reply.topic_id == "ecfmg-school-eligibility"
    assert act.Menu("pathway") in actions_of(reply)


async def test_progress_shows_statuses_and_lets_a_status_change(
    engine: Engine, store: Store
) -> None:
    await engine.pathway(ALICE)
    await engine.handle_action(ALICE, act.PathChoose("school-eligibility", "listed"))
    progress = await engine.progress(ALICE)
    assert "✅" in progress.plain_text and "done" in progress.plain_text
    assert "Next to do" in progress.plain_text
    menu = await engine.handle_action(ALICE, act.PathNav("edit", "usmle-step1"))
    assert act.SetStatus("usmle-step1", "done") in actions_of(menu)
    after = await engine.handle_action(ALICE, act.SetStatus("usmle-step1", "done"))
    assert after.kind == "progress"
    assert (await store.get_user(ALICE.id)).statuses["usmle-step1"] == "done"


async def test_the_visa_branch_follows_the_users_choice(engine: Engine, store: Store) -> None:
    await store.save_position(ALICE.id, "visa-need", ["visa-need"])
    step = await engine.pathway(ALICE)
    h1b = [c for c in choice_ids(step) if "h1b" in c or "h-1b" in c]
    assert h1b, choice_ids(step)
    await engine.handle_action(ALICE, act.PathChoose("visa-need", h1b[0]))
    assert (await store.get_user(ALICE.id)).current_step == "visa-h1b"


async def test_users_on_a_renamed_or_removed_step_are_not_stranded(
    kb_dir: Path, store: Store
) -> None:
    text = (kb_dir / "pathway.yaml").read_text(encoding="utf-8")
    text = text.replace("  - id: usmle-step1\n", "  - id: step-one\n    formerly: [usmle-step1]\n")
    text = text.replace("next: usmle-step1\n", "next: step-one\n")
    (kb_dir / "pathway.yaml").write_text(text, encoding="utf-8")
    engine = engine_for(kb_dir, store)
    await store.save_position(ALICE.id, "usmle-step1", ["usmle-step1"])
    renamed = await engine.pathway(ALICE)
    assert "now called" in renamed.plain_text
    assert (await store.get_user(ALICE.id)).current_step == "step-one"
    await store.save_position(BOB.id, "a-step-staff-deleted", ["a-step-staff-deleted"])
    moved = await engine.pathway(BOB)
    assert "removed" in moved.plain_text
    assert (await store.get_user(BOB.id)).current_step == "school-eligibility"


async def test_many_users_at_once_keep_their_own_state(engine: Engine, store: Store) -> None:
    users = [User(5000 + i) for i in range(50)]
    await asyncio.gather(*(engine.pathway(u) for u in users))
    await asyncio.gather(*(
        engine.handle_action(u, act.PathChoose("school-eligibility", "listed")) for u in users
    ))
    for user in users[:5]:
        state = await store.get_user(user.id)
        assert state.current_step == "myintealth-usmle-id"
        assert state.statuses == {"school-eligibility": "done"}


# -- personal data ---------------------------------------------------------------------


async def test_reset_needs_confirmation(engine: Engine, store: Store) -> None:
    await engine.pathway(ALICE)
    await engine.handle_action(ALICE, act.PathChoose("school-eligibility", "listed"))
    ask = await engine.reset(ALICE)
    assert act.Confirm("reset", True) in actions_of(ask)
    await engine.handle_action(ALICE, act.Confirm("reset", False))
    assert (await store.get_user(ALICE.id)).statuses
    await engine.handle_action(ALICE, act.Confirm("reset", True))
    user = await store.get_user(ALICE.id)
    assert user.statuses == {} and user.current_step is None


async def test_mydata_and_forget(engine: Engine, store: Store) -> None:
    await engine.handle_text(ALICE, "zzzz qqqq")
    await engine.pathway(ALICE)
    await engine.handle_action(ALICE, act.PathChoose("school-eligibility", "listed"))
    mine = await engine.mydata(ALICE)
    assert mine.attachment is not None
    data = json.loads(mine.attachment.content)
    assert data["questions"][0]["text"] == "zzzz qqqq"
    assert [r["outcome"] for r in data["message_outcomes"]] == ["fallback"]
    assert data["pathway"]["statuses"] == {"school-eligibility": "done"}
    assert "Is your medical school eligible?" in mine.plain_text
    confirm = await engine.forget(ALICE)
    assert act.Confirm("forget", True) in actions_of(confirm)
    await engine.handle_action(ALICE, act.Confirm("forget", True))
    empty = json.loads((await engine.mydata(ALICE)).attachment.content)  # type: ignore[union-attr]
    assert empty["questions"] == [] and empty["pathway"]["statuses"] == {}
    assert empty["message_outcomes"] == []


async def test_the_roadmap_answer_offers_the_guided_pathway(engine: Engine) -> None:
    reply = await engine.handle_text(ALICE, "I graduated abroad, what do I do, in what order?")
    assert reply.topic_id == "roadmap-img-graduate"
    assert act.Menu("pathway") in actions_of(reply)
    step = await engine.handle_action(ALICE, act.Menu("pathway"))
    assert choice_ids(step)  # the first step of the pathway, with its choices
