"""The staff loop through the real application: hand-off, tickets, answers, knowledge edits.

Users and admins are played with real PTB updates against the strict offline Bot API of
``tests/tg.py``; tickets live in a real SQLite file and knowledge edits land in a real
copy of the knowledge directory, reloaded by the real holder.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot import actions as act
from bot.bundle import KnowledgeHolder, load_bundle
from bot.config import Settings, StaffSettings
from bot.store import Store
from tests.test_handlers import TOKEN, only_reply, tg_settings
from tests.tg import (
    USER_ID,
    BotHarness,
    Call,
    RecordingRequest,
    callback_update,
    command_update,
    document_update,
    group_update,
    replies,
    text_update,
)

ADMIN = 900
OTHER_ADMIN = 901
STAFF_CHAT = -100777
UNANSWERABLE = "zxq flibbertigibbet wombat casserole"


def staff_settings(kb: Path, tmp_path: Path, *, chat: int | None = STAFF_CHAT) -> Settings:
    base = tg_settings(kb, admins=(ADMIN, OTHER_ADMIN))
    return dataclasses.replace(
        base, staff=StaffSettings(chat_id=chat, drafts_path=str(tmp_path / "drafts"))
    )


async def open_staff(kb: Path, store: Store, tmp_path: Path, **kw: Any) -> BotHarness:
    from bot.app import build_application

    bundle, problems = load_bundle(kb, learned=False)
    assert bundle is not None, problems
    request = RecordingRequest()
    app = build_application(
        staff_settings(kb, tmp_path, **kw), holder=KnowledgeHolder(kb, bundle), store=store,
        request=request, token=TOKEN,
    )
    return await BotHarness(app, request).start()


@pytest.fixture
async def staff(kb_dir: Path, store: Store, tmp_path: Path) -> AsyncIterator[BotHarness]:
    harness = await open_staff(kb_dir, store, tmp_path)
    try:
        yield harness
    finally:
        await harness.stop()


def in_chat(calls: list[Call], chat_id: int) -> list[Call]:
    return [c for c in replies(calls) if c.chat_id == chat_id]


async def staff_press(tg: BotHarness, data: str, user_id: int = ADMIN) -> list[Call]:
    message = tg.message_with(data, chat_id=STAFF_CHAT)
    return await tg.feed(callback_update(tg.bot, data, message=message, user_id=user_id))


async def reply_in_staff_chat(
    tg: BotHarness, to: Call, text: str, user_id: int = ADMIN
) -> list[Call]:
    message = tg.request.messages[(STAFF_CHAT, int(to.result["message_id"]))]
    return await tg.feed(
        group_update(tg.bot, text, reply_to=message, user_id=user_id, chat_id=STAFF_CHAT)
    )


async def open_ticket(tg: BotHarness, question: str = UNANSWERABLE,
                      user_id: int = USER_ID) -> Call:
    """A user's question the bot cannot answer, handed to the team; the staff message."""
    (fallback,) = replies(await tg.say(question, user_id=user_id))
    handoff = next(d for d in fallback.callback_data if d.startswith("h:"))
    calls = await tg.feed(callback_update(
        tg.bot, handoff, message=tg.message_with(handoff, chat_id=user_id), user_id=user_id))
    (ticket,) = in_chat(calls, STAFF_CHAT)
    return ticket


# -- hand-off ---------------------------------------------------------------------------------


async def test_a_question_the_bot_cannot_answer_becomes_a_ticket_for_the_team(
    staff: BotHarness, store: Store
) -> None:
    (fallback,) = replies(await staff.say(UNANSWERABLE))
    assert "Ask the team" in fallback.visible
    handoff = next(d for d in fallback.callback_data if d.startswith("h:"))
    calls = await staff.press(handoff)
    (told,) = in_chat(calls, USER_ID)
    assert "sent your question to the IMG Guide team" in told.visible
    assert "ticket #1" in told.visible and "in this chat" in told.visible
    (ticket,) = in_chat(calls, STAFF_CHAT)
    assert ticket.visible.startswith("🎫 Ticket #1 · Amina")
    assert UNANSWERABLE in ticket.visible and "best guesses" in ticket.visible
    assert set(ticket.callback_data) == {"k:a:1", "k:c:1"}
    row = await store.ticket(1)
    assert row is not None and row["state"] == "open" and row["question"] == UNANSWERABLE


async def test_without_a_staff_chat_no_hand_off_is_offered(
    kb_dir: Path, store: Store, tmp_path: Path
) -> None:
    tg = await open_staff(kb_dir, store, tmp_path, chat=None)
    try:
        (fallback,) = replies(await tg.say(UNANSWERABLE))
        assert not any(d.startswith("h:") for d in fallback.callback_data)
        (human,) = replies(await tg.say("/human"))
        assert "isn't set up" in human.visible
    finally:
        await tg.stop()


async def test_human_turns_the_next_message_into_a_ticket(staff: BotHarness) -> None:
    (prompt,) = replies(await staff.say("/human"))
    assert "Write your question for the team" in prompt.visible
    calls = await staff.say("Can my ERAS photo be a selfie?")
    (ticket,) = in_chat(calls, STAFF_CHAT)
    assert "Can my ERAS photo be a selfie?" in ticket.visible


async def test_a_user_has_at_most_three_open_tickets_and_a_ticket_is_cut(
    staff: BotHarness, store: Store
) -> None:
    for n in range(3):
        await open_ticket(staff, f"{UNANSWERABLE} {'q' * 1200 if n == 0 else n}")
    assert len(str((await store.ticket(1))["question"])) == 1000  # type: ignore[index]
    (fallback,) = replies(await staff.say(UNANSWERABLE + " four"))
    handoff = next(d for d in fallback.callback_data if d.startswith("h:"))
    calls = await staff.press(handoff)
    assert in_chat(calls, STAFF_CHAT) == []
    assert "3 questions waiting for the team" in only_reply(calls).visible


async def test_nobody_can_hand_off_someone_elses_question(staff: BotHarness) -> None:
    (fallback,) = replies(await staff.say(UNANSWERABLE))
    handoff = next(d for d in fallback.callback_data if d.startswith("h:"))
    calls = await staff.feed(callback_update(staff.bot, handoff, user_id=555))
    assert in_chat(calls, STAFF_CHAT) == []
    assert "no longer works" in only_reply(calls).visible


# -- answering ----------------------------------------------------------------------------------


async def test_an_admin_answers_by_replying_and_the_user_gets_it(
    staff: BotHarness, store: Store
) -> None:
    ticket = await open_ticket(staff)
    calls = await reply_in_staff_chat(staff, ticket, "Yes: see the AAMC photo rules.")
    (to_user,) = in_chat(calls, USER_ID)
    assert to_user.visible.startswith("💬 From the IMG Guide team")
    assert "Yes: see the AAMC photo rules." in to_user.visible
    (confirm,) = in_chat(calls, STAFF_CHAT)
    assert "your answer was sent to Amina" in confirm.visible
    assert set(confirm.callback_data) == {"k:d:1", "k:c:1"}
    row = await store.ticket(1)
    assert row["state"] == "answered" and row["answered_by"] == ADMIN  # type: ignore[index]
    # A second admin pressing Answer is told who answered.
    (taken,) = replies(await staff_press(staff, "k:a:1", user_id=OTHER_ADMIN))
    assert "already answered by Amina" in taken.visible


async def test_answer_button_asks_for_a_reply_that_is_relayed(staff: BotHarness) -> None:
    ticket = await open_ticket(staff)
    assert ticket.result is not None
    (prompt,) = in_chat(await staff_press(staff, "k:a:1"), STAFF_CHAT)
    assert "Ticket #1" in prompt.visible
    assert prompt.params["reply_markup"]["force_reply"] is True
    calls = await reply_in_staff_chat(staff, prompt, "Use a passport-style photo.")
    assert "Use a passport-style photo." in in_chat(calls, USER_ID)[0].visible


async def test_a_non_admin_cannot_answer_close_or_list_tickets(
    staff: BotHarness, store: Store
) -> None:
    ticket = await open_ticket(staff)
    calls = await reply_in_staff_chat(staff, ticket, "I am not staff", user_id=555)
    assert in_chat(calls, USER_ID) == []  # nothing relayed
    (stale,) = replies(await staff_press(staff, "k:c:1", user_id=555))
    assert "no longer works" in stale.visible
    assert (await store.ticket(1))["state"] == "open"  # type: ignore[index]
    (unknown,) = replies(await staff.say("/tickets", user_id=555))
    assert "don't know that command" in unknown.visible and "Ticket" not in unknown.visible
    # An admin removed from the list loses access at once, even to buttons made for them.
    staff.app.bot_data["engine"].staff.admins = frozenset({OTHER_ADMIN})
    (gone,) = replies(await staff_press(staff, "k:c:1", user_id=ADMIN))
    assert "no longer works" in gone.visible


async def test_tickets_lists_open_ones_newest_first_and_close_works(
    staff: BotHarness, store: Store
) -> None:
    await open_ticket(staff, UNANSWERABLE + " one")
    await open_ticket(staff, UNANSWERABLE + " two")
    (listing,) = replies(await staff.feed(command_update(staff.bot, "/tickets",
                                                         user_id=ADMIN, chat_id=STAFF_CHAT)))
    text = listing.visible
    assert "Open tickets: 2" in text
    assert text.index("Ticket #2") < text.index("Ticket #1")
    assert "0 min" in text
    assert {"k:a:1", "k:c:1", "k:a:2", "k:c:2"} <= set(listing.callback_data)
    (closed,) = replies(await staff_press(staff, "k:c:2"))
    assert "Ticket #2 closed" in closed.visible
    assert (await store.ticket(2))["state"] == "closed"  # type: ignore[index]


async def test_an_answer_to_a_user_who_blocked_the_bot_is_reported(staff: BotHarness) -> None:
    ticket = await open_ticket(staff)
    staff.request.refuse_chat[USER_ID] = "Forbidden: bot was blocked by the user"
    calls = await reply_in_staff_chat(staff, ticket, "Here is your answer.")
    shown = [c.visible for c in in_chat(calls, STAFF_CHAT)]
    assert any("could not be delivered" in s for s in shown)


async def test_tickets_are_in_mydata_and_gone_after_forget(
    staff: BotHarness, store: Store
) -> None:
    await open_ticket(staff)
    assert (await store.export(USER_ID))["tickets"][0]["question"] == UNANSWERABLE
    await staff.say("/forget")
    await staff.press("c:forget:1")
    assert await store.ticket(1) is None


# -- from an answer to the knowledge base -----------------------------------------------------


async def test_an_answered_ticket_becomes_a_checked_draft_not_a_live_topic(
    staff: BotHarness, tmp_path: Path, kb_dir: Path
) -> None:
    ticket = await open_ticket(staff, UNANSWERABLE + " selfie")
    await reply_in_staff_chat(staff, ticket, "Yes, if it meets the AAMC photo rules.")
    calls = await staff_press(staff, "k:d:1")
    (message, document) = in_chat(calls, STAFF_CHAT)
    assert "Draft topic" in message.visible
    assert "'url' of source 1" in message.visible  # the empty source must be filled in
    name = document.files["document"].filename
    content = document.files["document"].content.decode()
    assert UNANSWERABLE + " selfie" in content
    assert "Yes, if it meets the AAMC photo rules." in content
    assert (tmp_path / "drafts" / name).read_text() == content
    assert not (kb_dir / name).exists()


VALID_UPLOAD = """\
version: 1
topics:
  - id: staff-photo-rules
    title: ERAS photo rules
    questions: [Can my ERAS photo be a selfie zxq?]
    answer: Yes, if it meets the AAMC photo rules.
    sources:
      - title: AAMC ERAS
        url: https://students-residents.aamc.org/eras
    reviewed: 2026-12-01
"""


async def upload(tg: BotHarness, name: str, content: str, user_id: int = ADMIN) -> list[Call]:
    return await tg.feed(document_update(tg.bot, tg.request, name, content.encode(),
                                         user_id=user_id, chat_id=STAFF_CHAT))


async def test_a_clean_upload_goes_live_and_rollback_takes_it_back(
    staff: BotHarness, kb_dir: Path
) -> None:
    engine = staff.app.bot_data["engine"]
    (done,) = replies(await upload(staff, "photo.yaml", VALID_UPLOAD))
    assert "photo.yaml is live" in done.visible and "Added (1): staff-photo-rules" in done.visible
    assert "staff-photo-rules" in engine.bundle.kb.by_id
    (answer,) = replies(await staff.say("Can my ERAS photo be a selfie zxq?"))
    assert "ERAS photo rules" in answer.visible
    (back,) = replies(await staff.feed(command_update(staff.bot, "/rollback", user_id=ADMIN,
                                                     chat_id=STAFF_CHAT)))
    assert "Removed (1): staff-photo-rules" in back.visible
    assert not (kb_dir / "photo.yaml").exists()
    assert "staff-photo-rules" not in engine.bundle.kb.by_id


async def test_a_broken_upload_is_refused_with_its_lines_and_nothing_changes(
    staff: BotHarness, kb_dir: Path
) -> None:
    broken = VALID_UPLOAD.replace("    answer: Yes", "    anwser: Yes")
    (refused,) = replies(await upload(staff, "photo.yaml", broken))
    assert "Not changed" in refused.visible
    assert "knowledge/photo.yaml:6: topic 'staff-photo-rules' has an unknown field 'anwser'" in (
        refused.visible
    )
    assert not (kb_dir / "photo.yaml").exists()
    # Replacing a file that others link to: the uploaded file's own problems come first.
    before = (kb_dir / "usmle.yaml").read_text()
    (cut,) = replies(await upload(staff, "usmle.yaml", broken))
    assert cut.visible.split("\n\n", 1)[1].startswith("knowledge/usmle.yaml:")
    assert (kb_dir / "usmle.yaml").read_text() == before
    (bad_yaml,) = replies(await upload(staff, "new.yaml", "version: 1\ntopics: [\n"))
    assert "YAML syntax error" in bad_yaml.visible and not (kb_dir / "new.yaml").exists()


async def test_a_replacing_upload_says_what_changed_and_rollback_restores_it(
    staff: BotHarness, kb_dir: Path
) -> None:
    original = (kb_dir / "more.yaml").read_text()
    first_id = original.split("- id: ", 1)[1].split("\n", 1)[0].strip()
    changed = original.replace("reviewed: 2026", "reviewed: 2025", 1)
    (done,) = replies(await upload(staff, "more.yaml", changed))
    assert f"Changed (1): {first_id}" in done.visible
    await staff.feed(command_update(staff.bot, "/rollback", user_id=ADMIN, chat_id=STAFF_CHAT))
    assert (kb_dir / "more.yaml").read_text() == original
    (again,) = replies(await staff.feed(command_update(staff.bot, "/rollback", user_id=ADMIN,
                                                      chat_id=STAFF_CHAT)))
    assert "already a rollback" in again.visible


async def test_documents_from_non_admins_are_not_read(staff: BotHarness, kb_dir: Path) -> None:
    calls = await staff.feed(document_update(staff.bot, staff.request, "photo.yaml",
                                             VALID_UPLOAD.encode()))
    assert [c.method for c in calls if c.method in ("getFile", "downloadFile")] == []
    assert "only read text" in only_reply(calls).visible
    assert not (kb_dir / "photo.yaml").exists()


# -- triage -------------------------------------------------------------------------------------


async def test_unanswered_groups_similar_questions_and_adds_a_phrasing(
    staff: BotHarness, store: Store, kb_dir: Path
) -> None:
    # Logged as the bot logs what it could not answer (the matching is tested elsewhere).
    for words in ("how do I retake OET medicine after failing twice",
                  "how do i retake oet medicine after failing it twice?",
                  "flibbertigibbet casserole recipe"):
        await store.log_question(USER_ID, words, "fallback", None, None)
    calls = await staff.feed(command_update(staff.bot, "/unanswered", user_id=ADMIN,
                                            chat_id=STAFF_CHAT))
    shown = in_chat(calls, STAFF_CHAT)
    assert "2 group(s)" in shown[0].visible
    groups = {c.visible.split("\n", 1)[1]: c for c in shown[1:]}
    oet = next(c for text, c in groups.items() if "retake" in text.lower())
    assert oet.visible.startswith("❓ Asked 2 times")
    add = next(d for d in oet.callback_data if d.startswith("x:"))
    decoded = act.decode(add)
    assert isinstance(decoded, act.AddPhrasing)
    (added,) = replies(await staff_press(staff, add))
    assert "It is live now" in added.visible
    engine = staff.app.bot_data["engine"]
    topic = engine.bundle.kb.by_id[decoded.topic_id]
    assert topic.questions[-1] == "how do i retake oet medicine after failing it twice?"
    casserole = next(c for text, c in groups.items() if "casserole" in text)
    assert casserole.visible.startswith("❓ Asked once")
    ignore = next(d for d in casserole.callback_data if d.startswith("i:"))
    (ignored,) = replies(await staff_press(staff, ignore))
    assert "Ignored" in ignored.visible
    rest = [r["text"] for r in await store.unanswered()]
    assert "flibbertigibbet casserole recipe" not in rest  # ignored
    assert "how do i retake oet medicine after failing it twice?" not in rest  # now a phrasing


async def test_staff_work_never_shows_in_another_group(staff: BotHarness) -> None:
    await open_ticket(staff)
    elsewhere = -100999
    assert replies(await staff.feed(command_update(staff.bot, "/tickets", user_id=ADMIN,
                                                   chat_id=elsewhere))) == []
    calls = await staff.feed(document_update(staff.bot, staff.request, "photo.yaml",
                                             VALID_UPLOAD.encode(), user_id=ADMIN,
                                             chat_id=elsewhere))
    assert replies(calls) == [] and not any(c.method == "getFile" for c in calls)
    (mine,) = replies(await staff.say("/tickets", user_id=ADMIN))  # the admin's own chat
    assert "Ticket #1" in mine.visible


async def test_feedback_for_admins_lists_the_least_helpful(
    staff: BotHarness, store: Store
) -> None:
    await store.record_feedback(USER_ID, "usmle-attempt-limit", False)
    (report,) = replies(await staff.feed(command_update(staff.bot, "/feedback", user_id=ADMIN,
                                                       chat_id=STAFF_CHAT)))
    assert "Least helpful answers" in report.visible and "1 / 0" in report.visible
    assert replies(await staff.feed(command_update(staff.bot, "/feedback", user_id=555,
                                                   chat_id=STAFF_CHAT))) == []


def test_staff_buttons_decode_and_reject_forgeries() -> None:
    for action in (act.Handoff(12), act.Ticket("answer", 3), act.Ticket("draft", 3),
                   act.AddPhrasing(99, "usmle-step1"), act.Ignore(7)):
        assert act.decode(act.encode(action)) == action
    for forged in ("k:z:1", "k:a:" + "9" * 40, "x:1:BAD ID", "h:-1", "i:"):
        assert act.decode(forged) is None


async def test_text_update_reply_helper_is_used(staff: BotHarness) -> None:
    # A plain private message that replies to a bot message without a ticket is a question.
    (menu,) = replies(await staff.say("/start"))
    message = staff.request.messages[(USER_ID, int(menu.result["message_id"]))]
    calls = await staff.feed(text_update(staff.bot, "oet score", reply_to=message))
    assert "OET" in only_reply(calls).visible


async def test_after_answer_the_admins_next_message_in_a_private_staff_chat_is_the_answer(
    kb_dir: Path, store: Store, tmp_path: Path
) -> None:
    tg = await open_staff(kb_dir, store, tmp_path, chat=ADMIN)  # one admin's private chat
    try:
        (fallback,) = replies(await tg.say(UNANSWERABLE))
        handoff = next(d for d in fallback.callback_data if d.startswith("h:"))
        calls = await tg.press(handoff)
        assert [c.chat_id for c in replies(calls)] == [USER_ID, ADMIN]
        await tg.press("k:a:1", user_id=ADMIN)
        calls = await tg.say("Plain message, no reply needed.", user_id=ADMIN)
        (to_user,) = in_chat(calls, USER_ID)
        assert "Plain message, no reply needed." in to_user.visible
        # The next message is a question again, not another answer.
        calls = await tg.say("oet score", user_id=ADMIN)
        assert in_chat(calls, USER_ID) == []
    finally:
        await tg.stop()


async def test_none_of_these_offers_the_team_and_hands_the_question_over(
    tmp_path: Path, store: Store
) -> None:
    from tests.conftest import write_kb
    from tests.test_handlers import FOUR_FEES

    kb = write_kb(tmp_path / "kb", FOUR_FEES)
    tg = await open_staff(kb, store, tmp_path)
    try:
        offer = only_reply(await tg.say("how much is the exam fee"))
        none_of_these = next(d for d in offer.callback_data if d.startswith("n:"))
        (sorry,) = replies(await tg.press(none_of_these))
        handoff = next(d for d in sorry.callback_data if d.startswith("h:"))
        (ticket,) = in_chat(await tg.press(handoff), STAFF_CHAT)
        assert "how much is the exam fee" in ticket.visible
        assert "exam-fee" not in ticket.visible  # guesses are shown by title, not id
    finally:
        await tg.stop()


async def test_help_mentions_human_only_when_a_person_can_answer(
    staff: BotHarness, kb_dir: Path, store: Store, tmp_path: Path
) -> None:
    (with_staff,) = replies(await staff.say("/help"))
    assert "/human" in with_staff.visible
    tg = await open_staff(kb_dir, store, tmp_path, chat=None)
    try:
        (without,) = replies(await tg.say("/help"))
        assert "/human" not in without.visible
    finally:
        await tg.stop()
