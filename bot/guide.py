"""The guided pathway as a conversation: show a step, record a choice, move on.

:mod:`bot.pathway` defines the steps and their transitions as pure data; this
module turns a user's position (kept by the :class:`~bot.store.Store`) and a
button action into the next :class:`~bot.reply.Reply`. Every change is saved
before the reply is returned. Buttons from old messages and repeated presses are
checked against where the user actually stands, so they cannot corrupt it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bot import actions as act
from bot import views
from bot.bundle import Bundle
from bot.clock import Clock, SystemClock, today
from bot.pathway import END, Pathway, Status, Step
from bot.reply import Button, Reply, Span, bold, italic, text
from bot.store import Store, UserState

logger = logging.getLogger(__name__)

OTHER_STEP = "That button was for another step; here is where you are now."


class Guide:
    """Walks one user at a time through the pathway; the engine serialises calls per user."""

    def __init__(self, store: Store, clock: Clock | None = None) -> None:
        self.store = store
        self.clock: Clock = clock or SystemClock()

    async def _position(self, user_id: int, pathway: Pathway) -> tuple[UserState, str, str | None]:
        """Load the user and resolve where they stand, saving a move if staff moved the step."""
        state = await self.store.get_user(user_id)
        step_id, note = pathway.resolve(state.current_step, state.statuses)
        if step_id != state.current_step:
            trail = [*_live_trail(pathway, state.trail), step_id]
            await self.store.save_position(user_id, step_id, trail)
            state = await self.store.get_user(user_id)
        return state, step_id, note

    async def resume(self, user_id: int, bundle: Bundle, *, edit: bool = False) -> Reply:
        """Show the step the user stands on (the first step for a newcomer)."""
        assert bundle.pathway is not None
        state, step_id, note = await self._position(user_id, bundle.pathway)
        return self._render(bundle, state, step_id, note=note, edit=edit)

    async def act(self, user_id: int, bundle: Bundle, action: act.Action) -> Reply:
        """Carry out a pathway button press."""
        pathway = bundle.pathway
        assert pathway is not None
        state, current, _ = await self._position(user_id, pathway)
        match action:
            case act.PathChoose(step_id, choice_id):
                if pathway.live_id(step_id) != current:
                    return self._render(
                        bundle,
                        state,
                        current,
                        edit=True,
                        notice=OTHER_STEP,
                    )
                transition = pathway.choose(current, choice_id)
                if transition is None:
                    return self._render(
                        bundle, state, current, edit=True, notice="That choice no longer exists."
                    )
                trail = [*_live_trail(pathway, state.trail), transition.next]
                await self.store.save_position(
                    user_id,
                    transition.next,
                    trail,
                    (transition.step_id, str(transition.status), transition.choice_id),
                )
                state = await self.store.get_user(user_id)
                return self._render(
                    bundle,
                    state,
                    transition.next,
                    edit=True,
                    notice=f"Saved: {transition.status.label}",
                )
            case act.PathNav(verb, step_id):
                return await self._navigate(user_id, bundle, state, current, verb, step_id)
            case act.SetStatus(step_id, status):
                live = pathway.live_id(step_id)
                if live is None:
                    return await self.progress(
                        user_id, bundle, edit=True, notice="That step no longer exists."
                    )
                await self.store.set_status(user_id, live, status)
                return await self.progress(
                    user_id, bundle, edit=True, notice=f"Saved: {Status(status).label}"
                )
        return self._render(bundle, state, current, edit=True)

    async def _navigate(
        self,
        user_id: int,
        bundle: Bundle,
        state: UserState,
        current: str,
        verb: str,
        step_id: str,
    ) -> Reply:
        """Handle Back, Skip, Explain, Stop, Go and Edit."""
        pathway = bundle.pathway
        assert pathway is not None
        live = pathway.live_id(step_id)
        if verb in ("go", "edit"):
            if live is None:
                return await self.progress(
                    user_id, bundle, edit=True, notice="That step no longer exists."
                )
            if verb == "edit":
                return self._status_menu(pathway, state, pathway.steps[live])
            trail = [*_live_trail(pathway, state.trail), live]
            await self.store.save_position(user_id, live, trail)
            state = await self.store.get_user(user_id)
            return self._render(bundle, state, live, edit=True)
        if live != current:
            return self._render(
                bundle,
                state,
                current,
                edit=True,
                notice=OTHER_STEP,
            )
        if verb == "back":
            previous = pathway.previous(_live_trail(pathway, state.trail) or [current])
            if previous is None:
                return self._render(
                    bundle, state, current, edit=True, notice="This is the first step."
                )
            target, kept = previous
            await self.store.save_position(user_id, target, kept)
            state = await self.store.get_user(user_id)
            return self._render(bundle, state, target, edit=True)
        if verb == "skip":
            target = pathway.skip(current) or END
            await self.store.save_position(
                user_id, target, [*_live_trail(pathway, state.trail), target]
            )
            state = await self.store.get_user(user_id)
            return self._render(bundle, state, target, edit=True, notice="Skipped for now.")
        if verb == "explain":
            step = pathway.steps[current]
            topics = [bundle.kb.by_id[t] for t in step.topics if t in bundle.kb.by_id]
            if not topics:
                return Reply(
                    text(step.explain),
                    kind="explain",
                    buttons=((Button("🧭 Back to the pathway", act.Menu("pathway")),),),
                )
            reply = views.topic_reply(bundle, topics[0], today=today(self.clock))
            more = tuple((Button(f"➡ {t.title}", act.OpenTopic(t.id)),) for t in topics[1:3])
            back = ((Button("🧭 Back to the pathway", act.Menu("pathway")),),)
            return Reply(
                reply.spans, more + reply.buttons + back, kind="explain", topic_id=reply.topic_id
            )
        # stop
        return Reply(
            text(
                "Paused. Your progress is saved: /pathway picks up right here, and /progress "
                "shows every step. You can ask me questions any time."
            ),
            kind="paused",
            edit=True,
        )

    def _render(
        self,
        bundle: Bundle,
        state: UserState,
        step_id: str,
        *,
        note: str | None = None,
        edit: bool = False,
        notice: str | None = None,
    ) -> Reply:
        """Show one step with its choices and the navigation buttons."""
        pathway = bundle.pathway
        assert pathway is not None
        day = today(self.clock)
        spans: list[Span] = []
        if note:
            spans.append(italic(note + "\n\n"))
        if step_id == END:
            spans += [
                bold("🎉 You have reached the end of the pathway."),
                Span(
                    "\n\nEvery step you answered is saved. /progress shows them all and lets "
                    "you change any of them. Good luck with residency!\n\n"
                    "Want a nudge before the deadlines that concern your next steps? Turn "
                    "on reminders."
                ),
            ]
            return Reply(
                tuple(spans),
                (
                    (Button("🔔 Remind me of deadlines", act.Menu("reminders")),),
                    (Button("📋 My progress", act.Menu("progress")),),
                ),
                kind="pathway_end",
                edit=edit,
                notice=notice,
            )
        step = pathway.steps[step_id]
        road = pathway.route(state.statuses, state.choices)
        counter = (
            f"🧭 Step {road.index(step_id) + 1} of {len(road)}\n" if step_id in road else "🧭 "
        )
        status = _status(state, step_id)
        spans += [
            Span(counter),
            bold(step.title),
            Span("\n\n" + bundle.calendar.render(step.explain.strip(), day) + "\n\n"),
        ]
        event = bundle.calendar.next_for_steps([step.id], day)
        if event is not None and not (status is not None and status.finished):
            spans.append(Span(f"📅 {event.title}: {event.describe(day)}\n\n"))
        if status is not None:
            spans.append(italic(f"Your status: {status.label}\n\n"))
        spans.append(bold(step.question))
        rows: list[tuple[Button, ...]] = [
            (Button(c.label, act.PathChoose(step.id, c.id)),) for c in step.choices
        ]
        rows.append(
            (
                Button("⬅ Back", act.PathNav("back", step.id)),
                Button("Skip ➡", act.PathNav("skip", step.id)),
            )
        )
        rows.append(
            (
                Button("📖 Explain this step", act.PathNav("explain", step.id)),
                Button("⏸ Stop", act.PathNav("stop", step.id)),
            )
        )
        return Reply(tuple(spans), tuple(rows), kind="pathway_step", edit=edit, notice=notice)

    async def progress(
        self, user_id: int, bundle: Bundle, *, edit: bool = False, notice: str | None = None
    ) -> Reply:
        """List every step with its status, the current step and what to do next."""
        pathway = bundle.pathway
        assert pathway is not None
        state, current, note = await self._position(user_id, pathway)
        live = pathway.live_statuses(state.statuses)
        lines: list[Span] = [bold("Your pathway progress"), Span("\n\n")]
        if note:
            lines.insert(0, italic(note + "\n\n"))
        shown = pathway.progress_steps(state.statuses, state.choices)
        for step_id in shown:
            step = pathway.steps[step_id]
            status = live.get(step_id, Status.NOT_STARTED)
            marker = "  👈 you are here" if step_id == current else ""
            lines.append(Span(f"{status.symbol} {step.title}: {status.word}{marker}\n"))
        todo = pathway.next_to_do(state.statuses, state.choices)
        lines.append(Span("\n"))
        if todo is None:
            lines.append(bold("Everything on your road is done. Congratulations!"))
        else:
            lines.append(bold("Next to do: "))
            lines.append(Span(pathway.steps[todo].title))
        lines.append(Span("\n\nTap a step below to change its status."))
        rows: list[tuple[Button, ...]] = [(Button("▶ Continue the pathway", act.Menu("pathway")),)]
        steps = [pathway.steps[s] for s in shown]
        for pair in _pairs(steps):
            rows.append(
                tuple(
                    Button(
                        f"{live.get(s.id, Status.NOT_STARTED).symbol} {s.title}",
                        act.PathNav("edit", s.id),
                    )
                    for s in pair
                )
            )
        return Reply(tuple(lines), tuple(rows), kind="progress", edit=edit, notice=notice)

    def _status_menu(self, pathway: Pathway, state: UserState, step: Step) -> Reply:
        """Offer every status for one step, plus opening it in the pathway."""
        current = _status(state, step.id) or Status.NOT_STARTED
        rows: list[tuple[Button, ...]] = [
            (Button(("• " if s is current else "") + s.label, act.SetStatus(step.id, s.value)),)
            for s in Status
        ]
        rows.append((Button("🧭 Open this step", act.PathNav("go", step.id)),))
        rows.append((Button("⬅ Back to progress", act.Menu("progress")),))
        return Reply(
            text(bold(step.title), f"\nNow: {current.label}\n\nWhat is its status?"),
            tuple(rows),
            kind="status_menu",
            edit=True,
        )


def _status(state: UserState, step_id: str) -> Status | None:
    """Return the recorded status of a step, if any."""
    value = state.statuses.get(step_id)
    try:
        return Status(value) if value else None
    except ValueError:
        return None


def _live_trail(pathway: Pathway, trail: Sequence[str]) -> list[str]:
    """Keep the visited steps that still exist (renamed ones under their new id)."""
    result: list[str] = []
    for step_id in trail:
        live = END if step_id == END else pathway.live_id(step_id)
        if live is not None and (not result or result[-1] != live):
            result.append(live)
    return result


def _pairs(items: Sequence[Step]) -> list[Sequence[Step]]:
    """Split a list into rows of two."""
    return [items[i : i + 2] for i in range(0, len(items), 2)]
