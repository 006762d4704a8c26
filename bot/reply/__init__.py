"""One reply flow for every platform: triage → progress → answer (streamed or not) → record →
show → remember, written once; adapters only convert.

An adapter turns a platform event into an :class:`~bot.message.IncomingMessage`, builds an
:class:`Outbound` for that one conversation (what "post", "show progress", "stream" mean on
its platform) and calls :meth:`ReplyFlow.handle`. The flow decides (through
:meth:`ConversationService.triage`) and sequences; the outbound renders and sends.

Extension points (kept small on purpose; other features plug in here, not in the adapters):

- :attr:`ReplyFlow.handlers` — a ``dict[Action, Handler]`` from :class:`bot.decide.Action` to an
  ``async def handler(reply: Reply) -> None``. A new action is one entry:
  ``flow.handlers[Action.HANDOFF] = my_handler`` (or :meth:`ReplyFlow.register`). An action
  with no handler is logged and dropped. The handler gets the message, the triage and the
  conversation's outbound in a :class:`Reply`.
- :class:`AnswerControls` — which controls go with a shown answer (feedback buttons, a
  "Talk to a human" button, a *Solved* button). The flow makes it with
  :attr:`ReplyFlow.controls_for` (``(Reply, Answer) -> AnswerControls``, replaceable) and hands
  it to :meth:`Outbound.show_answer` / :meth:`AnswerStream.finish`; each platform's outbound
  turns it into its own buttons or components (``bot.slack.outbound.control_blocks``,
  ``bot.discord.outbound.control_view``), so the flow never changes for a new button.
- :meth:`Outbound.progress` — an async context manager held while the answer is made: a
  Slack placeholder message, Discord's typing indicator, or (Slack assistant threads)
  ``assistant.threads.setStatus`` "thinking…".
- :attr:`Outbound.must_reply` — an interaction that must get a reply (Discord ``/ask``, a
  Slack slash command): the setup notice is sent every time, not once per team, and a lone
  signal gets the question prompt.

Behaviour kept from the adapters: one answer per message (the triage's claim), the setup
notice once per team (claim ``setup:{team or channel}``), the question prompt, recorded
signals, the apology on any failure after a question was accepted (never streamed), the
answer recorded before it is shown with its controls, later split parts remembered, and every
message rendered through :mod:`bot.render` (no pings, no unfurls or embeds).

Streaming: only with a chat model and when the outbound offers an :class:`AnswerStream`. The
flow feeds it the whole text so far after each model delta (:meth:`AnswerStream.update`);
the stream throttles and renders (:mod:`bot.reply.partial`), and :meth:`AnswerStream.finish`
leaves exactly the non-streamed rendering of the answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from bot.claims import Claim, Lease
from bot.decide import Action
from bot.message import IncomingMessage, Platform
from bot.service import (
    APOLOGY,
    SETUP_MESSAGE,
    ConversationService,
    Triage,
    log_answer_failure,
    question_prompt,
)
from retrieval.chain import Answer, Turn
from retrieval.prompts import is_korean
from retrieval.workspaces import WorkspaceInfo

logger = logging.getLogger(__name__)

__all__ = [
    "AnswerControls",
    "AnswerStream",
    "Handler",
    "Outbound",
    "Recorder",
    "Reply",
    "ReplyFlow",
    "ThreadMessageHook",
]


@dataclass(frozen=True, slots=True)
class AnswerControls:
    """The controls shown with an answer; each platform's outbound draws its own.

    ``feedback``: 👍/👎 buttons (Slack) or components (Discord), only for a found answer.
    ``handoff``: a "Talk to a human" button (only where an escalation target exists).
    ``solved``: a *Solved* button (a Discord forum post).
    """

    feedback: bool
    handoff: bool = False
    solved: bool = False


class Recorder(Protocol):
    """Stores the answer where it was shown; the outbound calls it at the right moments."""

    async def first(self, message_id: str, thread_id: str) -> int | None:
        """Record the answer as shown in ``message_id`` (call before its controls appear).

        ``thread_id``: the conversation later replies belong to. Returns the interaction id,
        or None when nothing was stored (the workspace was deleted meanwhile)."""
        ...

    async def part(self, message_id: str) -> None:
        """Remember a later part of the same answer (reactions on it rate the answer)."""
        ...


class AnswerStream(Protocol):
    """An answer shown while it is written (one per answer, made by :meth:`Outbound.stream`)."""

    async def update(self, text: str) -> None:
        """The model's whole text so far (Markdown, unrendered); shown at the stream's pace."""
        ...

    async def finish(self, answer: Answer, controls: AnswerControls, recorder: Recorder) -> None:
        """Leave the final answer exactly as :meth:`Outbound.show_answer` would show it."""
        ...

    async def fail(self, markdown: str) -> None:
        """Replace whatever was streamed with the apology ``markdown``."""
        ...


class Outbound(Protocol):
    """What the flow may do in one conversation on one platform. Texts given are Markdown the
    outbound renders (:func:`bot.formatting.render_notice` / ``answer_parts``)."""

    platform: Platform
    must_reply: bool

    async def notice(self, markdown: str) -> None:
        """Post one of the bot's own short messages (question prompt, setup notice)."""
        ...

    def progress(self) -> AbstractAsyncContextManager[object]:
        """Held while the answer is made: placeholder, typing indicator or assistant status."""
        ...

    async def history(self) -> Sequence[Turn]:
        """The conversation before the message ([] where there is none to read)."""
        ...

    def stream(self) -> AnswerStream | None:
        """A stream for this answer, or None where answers are not streamed here."""
        ...

    async def show_answer(
        self, answer: Answer, controls: AnswerControls, recorder: Recorder
    ) -> None:
        """Show the finished answer (calling ``recorder.first`` before its controls show)."""
        ...

    async def apologize(self, markdown: str) -> None:
        """Show the apology where the answer would have gone."""
        ...


@dataclass(frozen=True, slots=True)
class Reply:
    """What a handler gets: the message, what the triage found, and where to answer."""

    message: IncomingMessage
    outbound: Outbound
    triage: Triage
    # The lease held on the message's claim while the handler runs (bot.claims), if any.
    lease: Lease | None = None

    @property
    def workspace(self) -> WorkspaceInfo | None:
        return self.triage.situation.workspace


Handler = Callable[[Reply], Awaitable[None]]
# (outbound, progress id): remove a placeholder a dead replica posted (bot.takeover).
ProgressDiscarder = Callable[[Outbound, str], Awaitable[None]]
# (workspace name, message): a message arrived in a thread of a known workspace.
ThreadMessageHook = Callable[[str, IncomingMessage], Awaitable[object]]


class _ServiceRecorder:
    """:class:`Recorder` over the service's ``record_reply`` / ``remember_reply``."""

    def __init__(
        self,
        service: ConversationService,
        message: IncomingMessage,
        workspace: WorkspaceInfo,
        answer: Answer,
    ) -> None:
        self._service = service
        self._message = message
        self._workspace = workspace
        self._answer = answer
        self._thread_id = ""
        self.interaction_id: int | None = None

    async def first(self, message_id: str, thread_id: str) -> int | None:
        self._thread_id = thread_id
        self.interaction_id = await asyncio.to_thread(
            self._service.record_reply,
            self._message,
            self._workspace,
            self._answer,
            thread_id=thread_id,
            reply_message_id=message_id,
        )
        return self.interaction_id

    async def part(self, message_id: str) -> None:
        m = self._message
        await asyncio.to_thread(
            self._service.remember_reply,
            m.platform,
            m.team_id,
            m.channel_id,
            self._thread_id,
            message_id,
            self.interaction_id,
        )


def default_controls(reply: Reply, answer: Answer) -> AnswerControls:
    """Feedback buttons on a found answer; nothing else until a feature turns it on."""
    return AnswerControls(feedback=answer.found)


class ReplyFlow:
    """The one reply flow, shared by every adapter; see the module docstring."""

    def __init__(
        self,
        service: ConversationService,
        *,
        on_thread_message: ThreadMessageHook | None = None,
    ) -> None:
        self.service = service
        self._on_thread_message = on_thread_message
        self.handlers: dict[Action, Handler] = {
            Action.IGNORE: _nothing,
            Action.SIGNAL: self.signal,
            Action.PROMPT: self.prompt,
            Action.SETUP_NEEDED: self.setup_notice,
            Action.ANSWER: self.answer,
        }
        self.controls_for: Callable[[Reply, Answer], AnswerControls] = default_controls
        # Removes the placeholder of a replica that died mid-answer before a takeover answers
        # again (set per platform, see bot.takeover); None: it is left where it is.
        self.discard_progress: ProgressDiscarder | None = None

    def register(self, action: Action, handler: Handler) -> None:
        """Handle ``action`` with ``handler`` (replacing any handler it had)."""
        self.handlers[action] = handler

    async def handle(
        self,
        message: IncomingMessage,
        outbound: Outbound,
        *,
        workspace: WorkspaceInfo | None = None,
    ) -> Triage:
        """Triage ``message`` and act on it through ``outbound``; returns the triage.

        ``workspace``: already routed by the adapter (a DM has no team to route by).
        """
        # Another replica can answer it again only if it needs no routing or interaction here.
        resumable = workspace is None and not outbound.must_reply
        triage = await asyncio.to_thread(
            self.service.triage, message, workspace=workspace, resumable=resumable
        )
        decision, found = triage.decision, triage.situation.workspace
        logger.debug("message %s: %s (%s)", message.message_id, decision.action, decision.reason)
        if message.in_thread and not message.from_bot and found is not None:
            await self._thread_message(found.name, message)
        await self._act(message, outbound, triage)
        return triage

    async def resume(self, claim: Claim, outbound: Outbound) -> Triage:
        """Answer the message of a claim taken over from a replica that died mid-answer
        (:mod:`bot.takeover`): decided again, its placeholder removed, answered once."""
        if claim.message is None:
            raise ValueError(f"claim {claim.key} has no stored message to answer")
        message = claim.message
        triage = await asyncio.to_thread(self.service.triage, message, claimed=claim)
        await self._act(message, outbound, triage)
        return triage

    async def _act(self, message: IncomingMessage, outbound: Outbound, triage: Triage) -> None:
        """Run the decision's handler, holding the claim's lease while it runs."""
        decision, claim = triage.decision, triage.claim
        if not triage.first_delivery:
            if decision.action is not Action.IGNORE:
                logger.info(
                    "message %s seen before: %s ignored", message.identity, message.delivery_id
                )
            return
        if claim is None:  # claimed elsewhere (a test's triage)
            await self._run(Reply(message, outbound, triage))
            return
        if claim.progress_id and self.discard_progress is not None:
            try:  # the dead replica's placeholder: the thread shows one answer
                await self.discard_progress(outbound, claim.progress_id)
            except Exception as e:
                logger.warning("could not remove %s's old placeholder: %s", claim.key, e)
        async with Lease(self.service.claims, claim) as lease:
            lease.watch(lambda: _progress_id(outbound))
            await self._run(Reply(message, outbound, triage, lease))

    async def _run(self, reply: Reply) -> None:
        action = reply.triage.decision.action
        if action is Action.IGNORE:
            return
        handler = self.handlers.get(action)
        if handler is None:
            logger.warning("no handler for %s: message %s dropped", action, reply.message.identity)
            return
        await handler(reply)

    async def _thread_message(self, workspace: str, message: IncomingMessage) -> None:
        if self._on_thread_message is None or not message.thread_id:
            return
        try:
            await self._on_thread_message(workspace, message)
        except Exception:  # the answer matters more than a faster sync
            logger.exception("could not queue the sync of thread %s", message.thread_id)

    # --- the default handlers ------------------------------------------------------------------

    async def signal(self, reply: Reply) -> None:
        """Recorded by the triage; nothing to say (an interaction still needs a reply)."""
        if reply.outbound.must_reply:
            await self.prompt(reply)

    async def prompt(self, reply: Reply) -> None:
        await reply.outbound.notice(question_prompt(reply.message.words))

    async def setup_notice(self, reply: Reply) -> None:
        """The setup notice, once per team (every time for an interaction, which needs one)."""
        m = reply.message
        if not reply.outbound.must_reply:
            key = f"setup:{m.team_id or m.channel_id}"
            if not await asyncio.to_thread(self.service.claim_delivery, m.platform, key):
                return
        await reply.outbound.notice(SETUP_MESSAGE)

    async def answer(self, reply: Reply) -> None:
        """Answer from the workspace's knowledge: streamed when a chat model writes it and the
        outbound streams, else shown whole; any failure ends in the apology."""
        message, out, workspace = reply.message, reply.outbound, reply.workspace
        if workspace is None:  # decide() answers only a ready workspace; be safe anyway
            await self.setup_notice(reply)
            return
        stream: AnswerStream | None = None
        try:
            async with out.progress():
                history = await out.history()
                stream = out.stream()
                handoff = reply.triage.situation.can_hand_off  # a person can be called in
                if stream is None:
                    answer = await self.service.answer(
                        workspace, message.text, history, handoff=handoff
                    )
                else:
                    answer, streamed = await self._streamed(
                        workspace, message, history, stream, handoff=handoff
                    )
                    if not streamed:
                        stream = None
        except Exception as e:
            log_answer_failure(logger, e, f"answering {message.delivery_id} in {message.team_id}")
            apology = APOLOGY["ko" if is_korean(message.text) else "en"]
            if stream is not None:
                await stream.fail(apology)
            else:
                await out.apologize(apology)
            return
        controls = self.controls_for(reply, answer)
        recorder = _ServiceRecorder(self.service, message, workspace, answer)
        if stream is not None:
            await stream.finish(answer, controls, recorder)
        else:
            await out.show_answer(answer, controls, recorder)

    async def _streamed(
        self,
        workspace: WorkspaceInfo,
        message: IncomingMessage,
        history: Sequence[Turn],
        stream: AnswerStream,
        *,
        handoff: bool = False,
    ) -> tuple[Answer, bool]:
        """The answer, fed to ``stream`` as it comes; whether anything went to the stream."""
        writes, items = await self.service.answer_stream(
            workspace, message.text, history, handoff=handoff
        )
        text = ""
        final: Answer | None = None
        async for item in items:
            if isinstance(item, Answer):
                final = item
            elif writes:
                text += item
                await stream.update(text)
        if final is None:  # an iterator of the chain always ends with the answer
            raise RuntimeError("the answer stream ended without an answer")
        return final, writes and bool(text)


async def _nothing(reply: Reply) -> None:
    return None


def _progress_id(outbound: Outbound) -> str | None:
    """The message an outbound shows progress in, when it posts one (Slack's placeholder, which
    becomes the answer or the stream): what a takeover removes if this replica dies."""
    value = getattr(outbound, "placeholder_ts", None)
    return value if isinstance(value, str) else None
