"""The Telegram front end, driven offline through the real PTB Application.

Every test builds the application with ``build_application`` (the same composition
root ``python -m bot run`` uses), feeds real ``Update`` objects through
``Application.process_update`` and reads what the bot sent from the recording
request in :mod:`tests.tg`, which refuses what Telegram would refuse (bad HTML,
over-long text, callback data over 64 bytes). Assertions are on topic ids, callback
data, the store and message structure, not on wording.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import re
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from telegram.ext import CallbackContext

from bot import actions as act
from bot import knowledge
from bot.app import RedactSecrets, install_redaction
from bot.bundle import Bundle, KnowledgeHolder, load_bundle
from bot.config import KnowledgeSettings, Settings, TelegramSettings
from bot.reply import Button, Reply, Span, bold, link
from bot.store import Store
from handlers.common import ENGINE_KEY, send_reply
from handlers.render import MESSAGE_LIMIT
from tests.conftest import write_kb
from tests.tg import (
    GROUP_ID,
    USER_ID,
    BotHarness,
    Call,
    RecordingRequest,
    callback_update,
    command_update,
    group_update,
    make_update,
    photo_update,
    replies,
    text_update,
    utf16_len,
)

KNOWLEDGE = Path(__file__).resolve().parent.parent / "knowledge"
TOKEN = "123456789:AAH-test-token-NEVER-in-logs_0123456789"
ANSWERED = "what OET score do I need"  # -> ecfmg-oet-medicine (python -m bot ask --json)
ANSWERED_ID = "ecfmg-oet-medicine"
AMBIGUOUS = "usmle step"  # a vague question ("did you mean" when this was written)
FALLBACK = "banana bread recipe"


def tg_settings(
    kb: Path = KNOWLEDGE,
    *,
    reload_interval: float = 0.0,
    admins: tuple[int, ...] = (),
    typing_after: float = 0.5,
) -> Settings:
    """Settings for offline tests: sequential updates, no rate limiter, no reload."""
    return Settings(
        telegram=TelegramSettings(
            concurrent_updates=1, rate_limiter=False, admins=admins, typing_after=typing_after
        ),
        knowledge=KnowledgeSettings(path=str(kb), reload_interval=reload_interval),
    )


async def open_harness(
    settings: Settings, holder: KnowledgeHolder, store: Store, *, post_init: bool = False
) -> BotHarness:
    """Build the real application on a recording request and initialise it."""
    from bot.app import build_application

    request = RecordingRequest()
    app = build_application(settings, holder=holder, store=store, request=request, token=TOKEN)
    return await BotHarness(app, request).start(post_init=post_init)


@pytest.fixture
async def tg(real_bundle: Bundle, store: Store) -> AsyncIterator[BotHarness]:
    """The bot over the real knowledge base and a fresh SQLite store."""
    harness = await open_harness(tg_settings(), KnowledgeHolder(KNOWLEDGE, real_bundle), store)
    try:
        yield harness
    finally:
        await harness.stop()


async def custom_harness(directory: Path, store: Store) -> BotHarness:
    """The bot over a small knowledge directory written by the test."""
    bundle, problems = load_bundle(directory)
    assert bundle is not None, "\n".join(map(str, problems))
    return await open_harness(tg_settings(directory), KnowledgeHolder(directory, bundle), store)


def only_reply(calls: list[Call]) -> Call:
    """Return the one message the bot showed in response to an update."""
    shown = replies(calls)
    assert len(shown) == 1, [(c.method, c.text[:60]) for c in shown]
    return shown[0]


def topic_of(call: Call) -> str | None:
    """Return the topic an answer message is about (from its Helpful button)."""
    for data in call.callback_data:
        action = act.decode(data)
        if isinstance(action, act.Feedback) and action.helpful:
            return action.topic_id
    return None


def opened_topics(call: Call) -> list[str]:
    """Return the topic ids of the 'open topic' buttons of a message."""
    actions = map(act.decode, call.callback_data)
    return [a.topic_id for a in actions if isinstance(a, act.OpenTopic)]


def assert_no_refusals(calls: list[Call]) -> None:
    """Fail if Telegram (the strict fake) refused any call."""
    refused = [(c.method, c.error) for c in calls if c.error]
    assert not refused, refused


def assert_answered_once(calls: list[Call]) -> None:
    """A button press must be answered exactly once (or the client spins forever)."""
    assert [c.method for c in calls].count("answerCallbackQuery") == 1, [c.method for c in calls]


# -- commands ------------------------------------------------------------------------------


async def test_post_init_sets_the_command_list(real_bundle: Bundle, store: Store) -> None:
    harness = await open_harness(
        tg_settings(), KnowledgeHolder(KNOWLEDGE, real_bundle), store, post_init=True
    )
    try:
        (call,) = harness.request.of("setMyCommands")
        names = {c["command"] for c in call.params["commands"]}
        assert {"start", "topics", "pathway", "help", "about", "mydata", "forget"} <= names
    finally:
        await harness.stop()


async def test_start_shows_the_main_menu(tg: BotHarness) -> None:
    calls = await tg.say("/start")
    assert_no_refusals(calls)
    menu = only_reply(calls)
    assert menu.method == "sendMessage" and menu.chat_id == USER_ID
    assert menu.params["parse_mode"] == "HTML"
    assert set(menu.callback_data) == {"m:ask", "m:topics", "m:pathway", "m:help"}


async def test_start_with_a_topic_id_opens_that_topic(tg: BotHarness) -> None:
    reply = only_reply(await tg.say("/start usmle-step3"))
    assert topic_of(reply) == "usmle-step3"


async def test_start_with_an_unknown_topic_id_shows_the_menu(tg: BotHarness) -> None:
    reply = only_reply(await tg.say("/start no-such-topic"))
    assert topic_of(reply) is None
    assert "m:ask" in reply.callback_data and "m:topics" in reply.callback_data


async def test_help_and_about(tg: BotHarness, real_bundle: Bundle) -> None:
    help_reply = only_reply(await tg.say("/help"))
    assert "m:ask" in help_reply.callback_data
    # /help lists the commands the bot really has.
    for command in ("/topics", "/pathway", "/progress", "/mydata", "/forget"):
        assert command in help_reply.visible
    about = only_reply(await tg.say("/about"))
    assert about.callback_data == ["m:topics"]
    reviewed = real_bundle.kb.last_reviewed
    assert reviewed is not None
    assert f"{reviewed.day} {reviewed:%B %Y}" in about.visible  # when content was reviewed
    assert str(len(real_bundle.kb.topics)) in about.visible


async def test_an_unknown_command_is_answered_and_not_logged(tg: BotHarness, store: Store) -> None:
    reply = only_reply(await tg.say("/frobnicate"))
    assert reply.chat_id == USER_ID
    assert await store.unanswered() == []


async def test_browsing_categories_pages_and_back(tg: BotHarness, real_bundle: Bundle) -> None:
    kb = real_bundle.kb
    first = only_reply(await tg.say("/topics"))
    assert first.callback_data == [f"b:{act.slug(c)}:0" for c in kb.categories]
    message_id = tg.message_with("b:usmle:0")["message_id"]

    # The biggest area needs several pages.
    category = max(kb.categories, key=lambda c: len(kb.in_category(c)))
    slug = act.slug(category)
    ids = [t.id for t in kb.in_category(category)]
    assert len(ids) > 8

    calls = await tg.press(f"b:{slug}:0")
    assert_answered_once(calls)
    page1 = only_reply(calls)
    assert page1.method == "editMessageText" and page1.params["message_id"] == message_id
    assert opened_topics(page1) == ids[:8]
    assert f"b:{slug}:1" in page1.callback_data and "b::0" in page1.callback_data

    calls = await tg.press(f"b:{slug}:1")
    assert_answered_once(calls)
    page2 = only_reply(calls)
    assert page2.params["message_id"] == message_id
    assert opened_topics(page2) == ids[8:16]
    assert f"b:{slug}:0" in page2.callback_data  # Previous

    calls = await tg.press("b::0")
    assert_answered_once(calls)
    back = only_reply(calls)
    assert back.params["message_id"] == message_id
    assert back.callback_data == first.callback_data

    calls = await tg.press(f"b:{act.slug(kb.categories[0])}:0")
    topic_id = opened_topics(only_reply(calls))[0]
    opened = only_reply(await tg.press(f"t:{topic_id}"))
    assert topic_of(opened) == topic_id


# -- questions -----------------------------------------------------------------------------


async def test_a_question_gets_an_html_answer_with_sources_and_buttons(
    tg: BotHarness, real_bundle: Bundle
) -> None:
    calls = await tg.say(ANSWERED)
    assert_no_refusals(calls)
    assert [c.method for c in calls] == ["sendMessage"]  # instant: no "typing" first
    answer = calls[0]
    assert answer.params["parse_mode"] == "HTML"
    assert topic_of(answer) == ANSWERED_ID
    topic = real_bundle.kb.by_id[ANSWERED_ID]
    assert f"f:0:{ANSWERED_ID}" in answer.callback_data
    assert opened_topics(answer) == list(topic.follow_ups[:3])
    hrefs = re.findall(r'<a href="([^"]+)"', answer.text)
    assert hrefs and all(h.startswith("https://") for h in hrefs)
    assert {html.unescape(h) for h in hrefs} == {s.url for s in topic.sources}
    assert topic.title in answer.visible


FOUR_FEES = "".join(
    f"  - id: exam-fee-{name}\n"
    f"    title: {name.title()} exam fee\n"
    f"    questions: [how much is the {name} exam fee, {name} exam fee]\n"
    f"    answer: The {name} fee.\n"
    for name in ("alpha", "beta", "gamma", "delta")
)


async def test_an_ambiguous_question_offers_topics_and_none_of_these(
    tmp_path: Path, store: Store
) -> None:
    # Four topics equally close to the question (python -m bot ask --kb says "ambiguous").
    harness = await custom_harness(write_kb(tmp_path / "kb", FOUR_FEES), store)
    question = "how much is the exam fee"
    try:
        offer = only_reply(await harness.say(question))
        topics = opened_topics(offer)
        assert len(topics) == 3  # the top three of four
        assert set(topics) < {f"exam-fee-{n}" for n in ("alpha", "beta", "gamma", "delta")}
        none_of_these = [
            d for d in offer.callback_data if isinstance(act.decode(d), act.NoneOfThese)
        ]
        assert len(none_of_these) == 1 and offer.callback_data[-1] == none_of_these[0]
        assert await store.unanswered() == []  # an offer is not (yet) unanswered

        calls = await harness.press(none_of_these[0])
        assert_answered_once(calls)
        logged = await store.unanswered()
        assert [(r["text"], r["reason"]) for r in logged] == [(question, "none_of_these")]

        again = await harness.press(none_of_these[0])  # a double tap logs nothing twice
        assert_answered_once(again)
        assert len(await store.unanswered()) == 1

        picked = only_reply(await harness.press(f"t:{topics[0]}"))
        assert topic_of(picked) == topics[0]
    finally:
        await harness.stop()


async def test_typing_is_shown_only_when_the_work_is_slow(
    real_bundle: Bundle, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness = await open_harness(
        tg_settings(typing_after=0.2), KnowledgeHolder(KNOWLEDGE, real_bundle), store
    )
    try:
        # An instant answer: no "typing" request spent before it.
        assert [c.method for c in await harness.say(ANSWERED)] == ["sendMessage"]

        engine = harness.app.bot_data[ENGINE_KEY]
        original = engine.handle_text

        async def slow(*args: Any) -> Reply:
            await asyncio.sleep(0.6)  # a busy database, say
            return await original(*args)

        monkeypatch.setattr(engine, "handle_text", slow)
        calls = await harness.say(ANSWERED)
        assert [c.method for c in calls] == ["sendChatAction", "sendMessage"]
        assert calls[0].params["action"] == "typing"
        assert topic_of(calls[1]) == ANSWERED_ID
    finally:
        await harness.stop()


async def test_typing_can_be_shown_at_once(real_bundle: Bundle, store: Store) -> None:
    harness = await open_harness(
        tg_settings(typing_after=0), KnowledgeHolder(KNOWLEDGE, real_bundle), store
    )
    try:
        calls = await harness.say(ANSWERED)
        assert [c.method for c in calls] == ["sendChatAction", "sendMessage"]
    finally:
        await harness.stop()


async def test_a_fallback_is_logged_for_staff(tg: BotHarness, store: Store) -> None:
    reply = only_reply(await tg.say(FALLBACK))
    assert topic_of(reply) is None
    assert "m:topics" in reply.callback_data  # a way on: browse
    logged = await store.unanswered()
    assert [(r["text"], r["reason"]) for r in logged] == [(FALLBACK, "fallback")]


async def test_feedback_is_recorded_and_the_comment_is_not_taken_as_a_question(
    tg: BotHarness, store: Store
) -> None:
    await tg.say(ANSWERED)
    calls = await tg.press(f"f:1:{ANSWERED_ID}")
    assert_answered_once(calls)
    assert replies(calls) == []  # a toast is enough
    feedback = (await store.export(USER_ID))["feedback"]
    assert [(f["topic_id"], f["helpful"]) for f in feedback] == [(ANSWERED_ID, 1)]

    calls = await tg.press(f"f:0:{ANSWERED_ID}")
    assert_answered_once(calls)
    assert len(replies(calls)) == 1  # asks what they were looking for

    # The next message is the answer to that question, even though it reads like a
    # question the catch-all handler would answer (and would log as a fallback).
    comment = FALLBACK
    calls = await tg.say(comment)
    assert_no_refusals(calls)
    data = await store.export(USER_ID)
    assert [(f["topic_id"], f["helpful"], f["comment"]) for f in data["feedback"]] == [
        (ANSWERED_ID, 0, comment)
    ]
    assert [(q["text"], q["status"]) for q in data["questions"]] == [(comment, "not_helpful")]

    # ... and only that one message: the next one is a question again.
    await tg.say(FALLBACK)
    statuses = [q["status"] for q in (await store.export(USER_ID))["questions"]]
    assert statuses == ["not_helpful", "fallback"]


async def test_a_comment_asked_for_in_a_group_does_not_swallow_a_private_question(
    tg: BotHarness, store: Store
) -> None:
    await tg.feed(group_update(tg.bot, ANSWERED, mention=True))
    group_answer = tg.message_with(f"f:0:{ANSWERED_ID}", chat_id=GROUP_ID)
    calls = await tg.feed(callback_update(tg.bot, f"f:0:{ANSWERED_ID}", message=group_answer))
    assert [c.chat_id for c in replies(calls)] == [GROUP_ID]  # "what were you looking for?"

    # The same person then asks the bot something in private: that is a question.
    answer = only_reply(await tg.say(ANSWERED))
    assert topic_of(answer) == ANSWERED_ID
    assert (await store.export(USER_ID))["feedback"][0]["comment"] is None

    # Their reply in the group is still taken as the comment asked for there.
    bot_message = tg.message_with(f"f:1:{ANSWERED_ID}", chat_id=GROUP_ID)
    await tg.feed(group_update(tg.bot, FALLBACK, reply_to=bot_message))
    assert (await store.export(USER_ID))["feedback"][0]["comment"] == FALLBACK


async def test_skip_cancels_the_pending_comment(tg: BotHarness, store: Store) -> None:
    await tg.say(ANSWERED)
    await tg.press(f"f:0:{ANSWERED_ID}")
    await tg.say("/skip")
    answer = only_reply(await tg.say(ANSWERED))
    assert topic_of(answer) == ANSWERED_ID
    assert (await store.export(USER_ID))["feedback"][0]["comment"] is None


# -- buttons: stale, forged, always answered -----------------------------------------------

FORGED = [
    "t:no-such-topic",
    "zz",
    "x" * 70,
    "t:" + "é" * 40,
    "p:no-such-step:choice",
    "q:back:no-such-step",
    "s:4:no-such-step",
    "s:9:school-eligibility",
    "f:1:no-such-topic",
    "b:no-such-area:0",
    "b:usmle:99999",
    "n:999999",
    "n:" + "9" * 62,  # beyond SQLite's integer: once an OverflowError and "Sorry"
    "n:²",
    "b:usmle:٣",
    "s:١:school-eligibility",
    "c:forget:",
    "c:forget:01",
    "c:forget:2",
    "m:../../etc",
]


@pytest.mark.parametrize("data", FORGED)
async def test_stale_or_forged_buttons_get_a_polite_answer(
    tg: BotHarness, store: Store, data: str, caplog: pytest.LogCaptureFixture
) -> None:
    await tg.say("/pathway")
    before = await store.get_user(USER_ID)
    with caplog.at_level(logging.ERROR):
        calls = await tg.press_forged(data)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert_no_refusals(calls)
    assert_answered_once(calls)
    toast = tg.request.of("answerCallbackQuery")[-1].params.get("text")
    assert replies(calls) or toast, "the user must see something"
    after = await store.get_user(USER_ID)
    assert (after.current_step, after.statuses) == (before.current_step, before.statuses)


async def test_a_button_on_a_deleted_message_still_gets_a_reply(tg: BotHarness) -> None:
    await tg.say("/topics")
    tg.request.fail_once["editMessageText"] = "Bad Request: message to edit not found"
    calls = await tg.press("b:usmle:0")
    assert_answered_once(calls)
    shown = replies(calls)
    assert [c.method for c in shown] == ["sendMessage"]  # sent anew instead of edited
    assert "b::0" in shown[0].callback_data


async def test_pressing_the_same_browse_button_twice_is_harmless(tg: BotHarness) -> None:
    await tg.say("/topics")
    message = tg.message_with("b:usmle:0")
    first = await tg.feed(callback_update(tg.bot, "b:usmle:0", message=message))
    second = await tg.feed(callback_update(tg.bot, "b:usmle:0", message=message))
    assert_answered_once(first)
    assert_answered_once(second)
    assert [c.method for c in replies(first)] == ["editMessageText"]
    # Telegram refuses an edit that changes nothing; the bot must not send a duplicate.
    assert [(c.method, bool(c.error)) for c in second if c.method != "answerCallbackQuery"] == [
        ("editMessageText", True)
    ]


async def test_every_keyboard_fits_64_bytes_and_decodes(tg: BotHarness) -> None:
    """Walk every screen a user can reach and check every button the bot showed."""
    await tg.say("/start")
    await tg.say("/help")
    await tg.say("/about")
    await tg.say("/topics")
    for data in list(replies(tg.request.calls)[-1].callback_data):
        page = replies(await tg.press(data))[-1]
        for topic_data in page.callback_data:
            if topic_data.startswith("t:"):
                await tg.press(topic_data)
        await tg.press("b::0")  # back to all areas
    await tg.say(ANSWERED)
    await tg.say(AMBIGUOUS)
    await tg.say(FALLBACK)
    await tg.say("/pathway")
    await tg.press("p:school-eligibility:listed")
    await tg.say("/progress")
    await tg.press("q:edit:school-eligibility")
    await tg.say("/reset")
    await tg.say("/forget")
    assert_no_refusals(tg.request.calls)
    seen = {d for c in tg.request.calls for d in c.callback_data}
    assert len(seen) > 150
    for data in seen:
        assert len(data.encode("utf-8")) <= 64, data
        assert act.decode(data) is not None, data
    answered = [c.params["callback_query_id"] for c in tg.request.of("answerCallbackQuery")]
    assert len(answered) == len(set(answered)) > 60  # each press answered, exactly once


# -- long messages and escaping ------------------------------------------------------------


async def test_a_long_answer_is_split_into_valid_messages(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `check` keeps staff answers within one message; lift that limit to see how a reply
    # longer than Telegram allows (an intro plus an answer, a long export) is split.
    monkeypatch.setattr(knowledge, "TELEGRAM_MESSAGE_LIMIT", 20_000)
    paragraphs = [
        f"Paragraph {n}: " + " ".join(["residency applications need care"] * 11)
        for n in range(10)
    ]
    answer = "\n\n".join(paragraphs)
    assert 3700 < len(answer) < 3900
    sources = "".join(
        f"      - title: Official page number {n} with a fairly long title\n"
        f"        url: https://example.org/very/long/path/to/page/{n}?a=1&b=2\n"
        for n in range(3)
    )
    topics = (
        "  - id: long-topic\n"
        "    title: A long topic\n"
        "    questions: [tell me the long topic]\n"
        "    answer: |\n" + textwrap.indent(answer, "      ") + "\n"
        "    sources:\n" + sources + "    reviewed: 2026-01-15\n"
    )
    harness = await custom_harness(write_kb(tmp_path / "kb", topics), store)
    try:
        calls = await harness.say("/start long-topic")
        assert_no_refusals(calls)
        shown = replies(calls)
        assert len(shown) >= 2
        for call in shown:
            assert utf16_len(call.visible) <= 4096
            assert call.params["parse_mode"] == "HTML"
        assert [bool(c.keyboard) for c in shown] == [False] * (len(shown) - 1) + [True]
        assert topic_of(shown[-1]) == "long-topic"
        everything = "\n".join(c.visible for c in shown)
        for paragraph in paragraphs:
            assert paragraph in everything
        assert everything.count("https://") == 0  # links are tags, not visible text
        assert sum(c.text.count("<a href=") for c in shown) == 3
    finally:
        await harness.stop()


async def test_send_reply_splits_any_long_reply(tg: BotHarness) -> None:
    spans: list[Span] = []
    for n in range(40):
        spans += [bold(f"Heading {n} é😀"), Span("\n" + "word & <tag> " * 30 + "\n")]
        spans.append(link(f"source {n}", f"https://example.org/{n}?x=1&y=2"))
        spans.append(Span("\n\n"))
    reply = Reply(tuple(spans), ((Button("Browse", act.Browse()),),))
    update = text_update(tg.bot, "anything")
    context = CallbackContext.from_update(update, tg.app)
    await send_reply(update, context, reply)
    shown = replies(tg.request.calls)
    assert_no_refusals(tg.request.calls)
    assert len(shown) >= 4
    assert all(utf16_len(c.visible) <= MESSAGE_LIMIT for c in shown)
    assert [c.callback_data for c in shown][-1] == ["b::0"]
    everything = "".join(c.visible for c in shown)
    assert everything.count("word & <tag>") == 40 * 30
    assert sum(c.text.count("<a href=") for c in shown) == 40


async def test_markup_characters_in_content_are_escaped(tmp_path: Path, store: Store) -> None:
    title = "Fees < $100 & \"more\" > less"
    topics = textwrap.dedent(
        """\
          - id: escaping
            title: 'Fees < $100 & "more" > less'
            questions: [what about escaping]
            answer: |
              Use <b>no tags</b> & never </i> or <script>alert(1)</script>; AT&T &amp; 5 > 3.
            sources:
              - title: A & B <c>
                url: https://example.org/a?b=1&c=<2>
            reviewed: 2026-01-15
        """
    )
    harness = await custom_harness(write_kb(tmp_path / "kb", textwrap.indent(topics, "")), store)
    try:
        calls = await harness.say("what about escaping")
        assert_no_refusals(calls)
        answer = only_reply(calls)
        assert topic_of(answer) == "escaping"
        assert title in answer.visible
        assert "Use <b>no tags</b> & never </i> or <script>alert(1)</script>; AT&T &amp; 5 > 3."\
            in answer.visible
        assert "A & B <c>" in answer.visible
        (href,) = re.findall(r'<a href="([^"]+)"', answer.text)
        assert html.unescape(href) == "https://example.org/a?b=1&c=<2>"
    finally:
        await harness.stop()


# -- groups and other message kinds --------------------------------------------------------


async def test_group_messages_are_answered_only_when_addressed(tg: BotHarness) -> None:
    assert await tg.feed(group_update(tg.bot, ANSWERED)) == []  # people talking: silence

    calls = await tg.feed(group_update(tg.bot, ANSWERED, mention=True))
    answer = only_reply(calls)
    assert answer.chat_id == GROUP_ID and topic_of(answer) == ANSWERED_ID

    bot_message = tg.message_with(f"f:1:{ANSWERED_ID}", chat_id=GROUP_ID)
    calls = await tg.feed(group_update(tg.bot, "visa", reply_to=bot_message))
    assert only_reply(calls).chat_id == GROUP_ID

    other_user = {
        "message_id": 5,
        "date": int(time.time()),
        "chat": bot_message["chat"],
        "from": {"id": 999, "is_bot": False, "first_name": "Someone"},
        "text": "hi",
    }
    assert await tg.feed(group_update(tg.bot, ANSWERED, reply_to=other_user)) == []
    mentions_other = group_update(tg.bot, f"@someone_else {ANSWERED}")
    assert await tg.feed(mentions_other) == []


async def test_personal_commands_are_declined_in_groups(tg: BotHarness, store: Store) -> None:
    await tg.say(FALLBACK)
    for command in ("/mydata", "/forget", "/pathway"):
        calls = await tg.feed(command_update(tg.bot, command, chat_id=GROUP_ID))
        reply = only_reply(calls)
        assert reply.method == "sendMessage" and reply.chat_id == GROUP_ID
        assert reply.callback_data == []
    assert tg.request.of("sendDocument") == []
    assert len((await store.export(USER_ID))["questions"]) == 1


async def test_a_photo_gets_the_text_only_reply(tg: BotHarness, store: Store) -> None:
    calls = await tg.feed(photo_update(tg.bot))
    reply = only_reply(calls)
    assert reply.chat_id == USER_ID and reply.callback_data == []
    assert await store.unanswered() == []
    assert await tg.feed(photo_update(tg.bot, chat_id=GROUP_ID)) == []  # silence in groups


PERSONAL_IN_GROUP = ["m:pathway", "m:progress", "p:school-eligibility:listed",
                     "q:edit:school-eligibility", "s:2:school-eligibility", "c:forget:1"]


@pytest.mark.parametrize("data", PERSONAL_IN_GROUP)
async def test_personal_buttons_are_declined_in_groups(
    tg: BotHarness, store: Store, data: str
) -> None:
    """A button is a command by other means: it must not show or change personal data there."""
    await tg.say(FALLBACK)  # something stored about the user, in private
    await tg.feed(command_update(tg.bot, "/start", chat_id=GROUP_ID))
    group_message = tg.message_with("m:pathway", chat_id=GROUP_ID)
    calls = await tg.feed(callback_update(tg.bot, data, message=group_message))
    assert_answered_once(calls)
    shown = replies(calls)
    assert all(c.chat_id == GROUP_ID for c in shown)
    steps = {"p", "q", "s"}
    assert not [d for c in shown for d in c.callback_data if d[0] in steps], "pathway shown"
    state = await store.get_user(USER_ID)
    assert (state.current_step, state.statuses) == (None, {})
    assert len((await store.export(USER_ID))["questions"]) == 1


async def test_a_start_link_to_the_pathway_is_declined_in_groups(tg: BotHarness) -> None:
    calls = await tg.feed(command_update(tg.bot, "/start pathway", chat_id=GROUP_ID))
    assert not [d for c in replies(calls) for d in c.callback_data if d.startswith("p:")]


# -- the pathway through Telegram -----------------------------------------------------------


async def test_pathway_choices_back_double_press_explain_and_stop(
    tg: BotHarness, store: Store
) -> None:
    first = only_reply(await tg.say("/pathway"))
    assert "p:school-eligibility:listed" in first.callback_data
    step_message = tg.message_with("p:school-eligibility:listed")
    message_id = step_message["message_id"]

    calls = await tg.press("p:school-eligibility:listed")
    assert_answered_once(calls)
    moved = only_reply(calls)
    assert moved.method == "editMessageText" and moved.params["message_id"] == message_id
    assert any(d.startswith("p:myintealth-usmle-id:") for d in moved.callback_data)
    state = await store.get_user(USER_ID)
    assert state.current_step == "myintealth-usmle-id"
    assert state.statuses == {"school-eligibility": "done"}

    # A double tap: the second press arrives with the message as it was before the edit.
    calls = await tg.feed(callback_update(tg.bot, "p:school-eligibility:listed",
                                          message=step_message))
    assert_answered_once(calls)
    state = await store.get_user(USER_ID)
    assert state.current_step == "myintealth-usmle-id"
    assert len(await store.history(USER_ID)) == 1

    # Two taps processed at the same time (production runs updates concurrently).
    current = tg.message_with("p:myintealth-usmle-id:done")
    taps = [
        callback_update(tg.bot, "p:myintealth-usmle-id:done", message=current)
        for _ in range(2)
    ]
    await asyncio.gather(*(tg.app.process_update(t) for t in taps))
    state = await store.get_user(USER_ID)
    assert len(await store.history(USER_ID)) == 2  # one more step, recorded once
    assert state.statuses["myintealth-usmle-id"] == "done"
    await tg.press(f"q:back:{state.current_step}")
    assert (await store.get_user(USER_ID)).current_step == "myintealth-usmle-id"

    calls = await tg.press("q:back:myintealth-usmle-id")
    assert_answered_once(calls)
    assert (await store.get_user(USER_ID)).current_step == "school-eligibility"
    assert "p:school-eligibility:listed" in only_reply(calls).callback_data

    explained = only_reply(await tg.press("q:explain:school-eligibility"))
    assert topic_of(explained) == "ecfmg-school-eligibility"
    assert "m:pathway" in explained.callback_data

    calls = await tg.press("q:stop:school-eligibility")
    assert_answered_once(calls)
    paused = only_reply(calls)
    assert paused.method == "editMessageText" and paused.keyboard == []
    assert (await store.get_user(USER_ID)).current_step == "school-eligibility"

    resumed = only_reply(await tg.say("/pathway"))
    assert "p:school-eligibility:listed" in resumed.callback_data


async def test_progress_lets_the_user_set_a_status(tg: BotHarness, store: Store) -> None:
    await tg.say("/pathway")
    await tg.press("p:school-eligibility:checking")
    progress = only_reply(await tg.say("/progress"))
    assert "m:pathway" in progress.callback_data
    assert "q:edit:school-eligibility" in progress.callback_data
    menu = only_reply(await tg.press("q:edit:school-eligibility"))
    done = act.encode(act.SetStatus("school-eligibility", "done"))
    assert done in menu.callback_data
    calls = await tg.press(done)
    assert_answered_once(calls)
    assert (await store.get_user(USER_ID)).statuses["school-eligibility"] == "done"


async def test_a_question_inside_the_pathway_keeps_the_position(
    tg: BotHarness, store: Store
) -> None:
    await tg.say("/pathway")
    await tg.press("p:school-eligibility:listed")
    answer = only_reply(await tg.say(ANSWERED))
    assert topic_of(answer) == ANSWERED_ID
    assert (await store.get_user(USER_ID)).current_step == "myintealth-usmle-id"
    resumed = only_reply(await tg.say("/pathway"))
    assert any(d.startswith("p:myintealth-usmle-id:") for d in resumed.callback_data)


async def test_reset_asks_first_and_clears_progress(tg: BotHarness, store: Store) -> None:
    await tg.say("/pathway")
    await tg.press("p:school-eligibility:listed")
    confirm = only_reply(await tg.say("/reset"))
    assert set(confirm.callback_data) == {"c:reset:1", "c:reset:0"}
    assert (await store.get_user(USER_ID)).statuses  # nothing cleared before confirming

    assert_answered_once(await tg.press("c:reset:0"))
    assert (await store.get_user(USER_ID)).statuses == {"school-eligibility": "done"}

    await tg.say("/reset")
    assert_answered_once(await tg.press("c:reset:1"))
    state = await store.get_user(USER_ID)
    assert (state.current_step, state.statuses) == (None, {})


async def test_forget_really_deletes_everything(tg: BotHarness, store: Store) -> None:
    await tg.say(FALLBACK)
    await tg.say(ANSWERED)
    await tg.press(f"f:1:{ANSWERED_ID}")
    await tg.say("/pathway")
    await tg.press("p:school-eligibility:listed")
    confirm = only_reply(await tg.say("/forget"))
    assert set(confirm.callback_data) == {"c:forget:1", "c:forget:0"}
    data = await store.export(USER_ID)
    assert data["questions"] and data["feedback"] and data["pathway"]["statuses"]

    assert_answered_once(await tg.press("c:forget:1"))
    data = await store.export(USER_ID)
    assert data["questions"] == [] and data["feedback"] == []
    assert data["pathway"] == {"current_step": None, "statuses": {}, "history": []}
    assert await store.unanswered() == []


@pytest.mark.parametrize("command", ["/mydata", "/forget", "/reset", "/start", "/nosuch"])
async def test_an_edited_command_is_not_run_again(tg: BotHarness, command: str) -> None:
    await tg.say(FALLBACK)
    payload = command_update(tg.bot, command).to_dict()
    message = payload.pop("message")
    message["edit_date"] = message["date"] + 5
    payload.pop("update_id", None)
    calls = await tg.feed(make_update(tg.bot, {"edited_message": message}))
    assert replies(calls) == []


async def test_mydata_sends_a_readable_message_and_a_json_file(
    tg: BotHarness, store: Store
) -> None:
    odd = "is <b>bold</b> & AT&T > all? 😀"
    await tg.say(FALLBACK)
    await tg.say(odd)
    await tg.say("/pathway")
    await tg.press("p:school-eligibility:listed")
    calls = await tg.say("/mydata")
    assert_no_refusals(calls)
    message, document = replies(calls)
    assert message.method == "sendMessage" and document.method == "sendDocument"
    assert FALLBACK in message.visible and odd in message.visible
    upload = document.files["document"]
    assert upload.filename.endswith(".json")
    data = json.loads(upload.content.decode("utf-8"))
    assert data["user_id"] == USER_ID
    assert [q["text"] for q in data["questions"]] == [FALLBACK, odd]
    assert data["pathway"]["statuses"] == {"school-eligibility": "done"}


# -- errors and secrets --------------------------------------------------------------------


async def test_an_error_in_a_handler_gets_a_kind_reply_and_is_logged(
    tg: BotHarness, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    await store.close()  # every store call now fails
    with caplog.at_level(logging.INFO):
        calls = await tg.say(FALLBACK)
        press = await tg.press_forged(f"f:1:{ANSWERED_ID}")
    sorry = replies(calls)
    assert len(sorry) == 1 and sorry[0].chat_id == USER_ID and sorry[0].keyboard == []
    assert_answered_once(press)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2 and all(r.exc_info for r in errors)
    assert all(r.name == "handlers.errors" for r in errors)
    assert TOKEN not in caplog.text


async def test_the_token_never_reaches_the_log(
    tg: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    # A network failure whose message quotes the request URL (which holds the token).
    url = f"https://api.telegram.org/bot{TOKEN}/sendMessage"
    tg.request.raise_once["sendMessage"] = OSError(f"connection reset while posting to {url}")
    install_redaction(TOKEN)  # what run_bot does at start-up
    try:
        with caplog.at_level(logging.DEBUG):
            calls = await tg.say(ANSWERED)
        assert len(replies(calls)) == 1  # the kind reply after the failed answer
        assert "error handling update" in caplog.text
        assert TOKEN not in caplog.text
        assert "[REDACTED]" in caplog.text
    finally:
        for handler in logging.getLogger().handlers:
            for f in [f for f in handler.filters if isinstance(f, RedactSecrets)]:
                handler.removeFilter(f)


# -- live reload ---------------------------------------------------------------------------


async def _wait_for(predicate: Any, within: float = 5.0) -> None:
    """Poll an async predicate until it holds or ``within`` seconds pass."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {within} s")


NEW_TOPIC = """
  - id: zz-live-reload
    title: The zebra protocol
    category: Common questions
    questions: [what is the zebra protocol]
    answer: A test topic added while the bot runs.
    reviewed: 2026-01-15
"""


async def test_live_reload_serves_good_edits_and_reports_broken_ones(
    kb_dir: Path, store: Store
) -> None:
    bundle, _ = load_bundle(kb_dir)
    assert bundle is not None
    admin = 4242
    harness = await open_harness(
        tg_settings(kb_dir, reload_interval=0.2, admins=(admin,)),
        KnowledgeHolder(kb_dir, bundle),
        store,
        post_init=True,
    )
    try:
        question = "what is the zebra protocol"
        assert topic_of(only_reply(await harness.say(question))) is None
        general = kb_dir / "general.yaml"
        general.write_text(general.read_text(encoding="utf-8") + NEW_TOPIC, encoding="utf-8")

        async def answers_new_topic() -> bool:
            reply = replies(await harness.say(question))
            return bool(reply) and topic_of(reply[-1]) == "zz-live-reload"

        started = time.monotonic()
        await _wait_for(answers_new_topic, within=5.0)
        assert time.monotonic() - started < 5.0

        broken = kb_dir / "visas.yaml"
        lines = broken.read_text(encoding="utf-8").splitlines()
        answer_line = next(i for i, line in enumerate(lines) if line.strip().startswith("answer:"))
        del lines[answer_line]  # a topic without its answer; later lines may dangle too
        broken.write_text("\n".join(lines) + "\n", encoding="utf-8")

        async def admin_told() -> bool:
            return any(c.chat_id == admin for c in harness.request.of("sendMessage"))

        await _wait_for(admin_told, within=5.0)
        (report,) = [c for c in harness.request.of("sendMessage") if c.chat_id == admin]
        assert re.search(r"visas\.yaml:\d+", report.text), report.text
        # The last good knowledge base keeps serving, new topic included.
        assert await answers_new_topic()
        visa = only_reply(await harness.say("j1 waiver"))
        assert topic_of(visa) == "visa-waivers"
        # The same broken state is reported once, not every 0.2 s.
        await asyncio.sleep(0.6)
        assert len([c for c in harness.request.of("sendMessage") if c.chat_id == admin]) == 1
    finally:
        await harness.stop()
    assert "knowledge_watch_task" not in harness.app.bot_data
