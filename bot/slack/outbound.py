"""The Slack side of the reply flow (:mod:`bot.reply`): one :class:`SlackOutbound` per message.

Progress is a placeholder message in the reply's thread that becomes the answer. With a chat
model and streaming on, the answer is streamed with ``chat.startStream`` /
``chat.appendStream`` / ``chat.stopStream`` (a reply in the question's thread, for the asker:
``recipient_team_id`` / ``recipient_user_id``); the sources and controls come when the stream
stops, and the message is then set to exactly the non-streamed rendering (``chat.update``).
Where Slack refuses streaming (a plan or scope without it, an older workspace, a method it
does not know) the team is remembered as refusing for :data:`REFUSAL_TTL_S` and the answer is
shown by throttled ``chat.update`` of the placeholder instead. A top-level DM answer is not a
thread reply, so it is shown by edits as well.

Every message goes out with unfurling off and rendered by :mod:`bot.render` (no pings).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.formatting import LIMITS, SLACK_MESSAGE_CHARS, render_notice, slack_messages
from bot.message import IncomingMessage, Platform
from bot.reply import AnswerControls, Recorder
from bot.reply.partial import AppendOnly, Flusher, partial_parts
from bot.slack.blocks import feedback_block
from bot.slack.events import history_from_replies
from bot.slack.handoff import handoff_button
from retrieval.chain import Answer, Turn

logger = logging.getLogger(__name__)

PLACEHOLDER = ":hourglass_flowing_sand: Looking that up…"
# How long a team that refused streaming is not asked again (seconds).
REFUSAL_TTL_S = 3600.0
# Errors that say the workspace (not this one call) cannot stream.
STREAMING_REFUSED = frozenset(
    {
        "not_allowed",
        "not_allowed_token_type",
        "missing_scope",
        "no_permission",
        "unknown_method",
        "method_deprecated",
        "deprecated_endpoint",
        "feature_not_enabled",
        "access_denied",
        "enterprise_is_restricted",
        "team_not_allowed",
    }
)
# Slack's streaming calls are Tier 4 (100+ a minute): about two a second per stream is fine.
STREAM_INTERVAL_S = 0.5
# chat.update is Tier 3 (50+ a minute) per workspace: one a second per answer.
UPDATE_INTERVAL_S = 1.0


class StreamingRefusals:
    """Teams whose Slack refused streaming lately (shared by every conversation of a bot)."""

    def __init__(
        self, *, ttl_s: float = REFUSAL_TTL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl_s
        self._clock = clock
        self._until: dict[str, float] = {}

    def refused(self, team_id: str) -> bool:
        until = self._until.get(team_id)
        return until is not None and self._clock() < until

    def remember(self, team_id: str, error: str) -> None:
        logger.info("Slack refused streaming in %s (%s): edits for a while", team_id, error)
        self._until[team_id] = self._clock() + self._ttl


def control_blocks(controls: AnswerControls) -> list[dict[str, Any]]:
    """The blocks that carry an answer's controls (after its last section).

    The place for new buttons (native feedback buttons, "Talk to a human"): the flow passes
    the :class:`AnswerControls`, this draws them.
    """
    blocks: list[dict[str, Any]] = []
    if controls.feedback:
        blocks.append(feedback_block())  # Slack's native 👍/👎 (feedback_buttons)
    if controls.handoff:
        blocks.append({"type": "actions", "elements": [handoff_button()]})
    return blocks


def section_blocks(sections: Sequence[str]) -> list[dict[str, Any]]:
    """One section per part (each within Slack's 3,000 characters).

    ``verbatim``: Slack adds no links or mentions of its own to text already rendered safe.
    """
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": True}}
        for text in sections
    ]


def answer_messages(answer: Answer, controls: AnswerControls) -> list[tuple[str, list[Any]]]:
    """The answer as Slack messages: (notification text, blocks); controls on the last."""
    messages = slack_messages(answer)
    shown = []
    for index, part in enumerate(messages):
        blocks = section_blocks(part.sections)
        if index == len(messages) - 1:
            blocks += control_blocks(controls)
        shown.append((part.text, blocks))
    return shown


class SlackOutbound:
    """One conversation's outbound (see :class:`bot.reply.Outbound`)."""

    platform: Platform = "slack"
    must_reply = False

    def __init__(
        self,
        client: AsyncWebClient,
        message: IncomingMessage,
        *,
        bot_user_id: str | None,
        refusals: StreamingRefusals | None = None,
    ) -> None:
        """``refusals``: streaming on (with who refused it); None: answers are never streamed."""
        self.client = client
        self.message = message
        self._bot_user_id = bot_user_id
        self._refusals = refusals
        # A DM's top-level message is answered at top level; everything else in its thread.
        self.thread_ts = message.thread_id if not message.is_direct or message.in_thread else None
        self.placeholder_ts: str | None = None

    @property
    def reply_thread(self) -> str:
        """The thread the answer belongs to (its own ts for a top-level DM answer)."""
        return self.thread_ts or self.placeholder_ts or self.message.message_id

    async def post(self, text: str, blocks: list[Any] | None = None) -> str:
        response = await self.client.chat_postMessage(
            channel=self.message.channel_id,
            thread_ts=self.thread_ts or self.placeholder_ts,
            text=text,
            blocks=blocks,
            unfurl_links=False,
            unfurl_media=False,
        )
        return str(response["ts"])

    async def update(self, ts: str, text: str, blocks: list[Any] | None = None) -> None:
        await self.client.chat_update(
            channel=self.message.channel_id,
            ts=ts,
            text=text,
            blocks=blocks if blocks is not None else [],
            unfurl_links=False,
            unfurl_media=False,
        )

    # --- Outbound ----------------------------------------------------------------------------

    async def notice(self, markdown: str) -> None:
        await self.client.chat_postMessage(
            channel=self.message.channel_id,
            thread_ts=self.thread_ts,
            text=render_notice(markdown, "slack"),
            unfurl_links=False,
            unfurl_media=False,
        )

    @asynccontextmanager
    async def progress(self) -> AsyncIterator[object]:
        """The placeholder, posted where the answer goes; it becomes the answer."""
        if self.placeholder_ts is None:
            self.placeholder_ts = await self.post(PLACEHOLDER)
        yield self.placeholder_ts

    async def history(self) -> Sequence[Turn]:
        m = self.message
        if not m.in_thread:
            return []
        try:
            response = await self.client.conversations_replies(
                channel=m.channel_id, ts=m.thread_id or m.message_id, limit=50
            )
        except SlackApiError as e:
            logger.warning("could not read thread history: %s", e.response.get("error"))
            return []
        return history_from_replies(
            list(response.get("messages") or []),
            bot_user_id=self._bot_user_id,
            before_ts=m.message_id,
        )

    def stream(self) -> SlackAnswerStream | None:
        if self._refusals is None:
            return None
        native = self.thread_ts is not None and not self._refusals.refused(self.message.team_id)
        return SlackAnswerStream(self, native=native, refusals=self._refusals)

    async def show_answer(
        self, answer: Answer, controls: AnswerControls, recorder: Recorder
    ) -> None:
        """The placeholder becomes the first message; later ones follow in the thread.

        Recorded before it is shown, so a reaction on the answer always finds it.
        """
        messages = answer_messages(answer, controls)
        first_ts = self.placeholder_ts
        if first_ts is None:  # no progress was shown: post the first message now
            first_ts = await self.post(PLACEHOLDER)
            self.placeholder_ts = first_ts
        await recorder.first(first_ts, self.reply_thread)
        await self.update(first_ts, *messages[0])
        for text, blocks in messages[1:]:
            await recorder.part(await self.post(text, blocks))

    async def apologize(self, markdown: str) -> None:
        text = render_notice(markdown, "slack")
        if self.placeholder_ts is None:
            await self.post(text)
        else:
            await self.update(self.placeholder_ts, text)


class SlackAnswerStream:
    """An answer streamed into Slack: native streaming, else throttled placeholder updates.

    The model's text is handed to a :class:`~bot.reply.partial.Flusher`, which makes the
    Slack calls in the background at the pace allowed: the model is never kept waiting.
    """

    def __init__(self, out: SlackOutbound, *, native: bool, refusals: StreamingRefusals) -> None:
        self._out = out
        self._native = native
        self._refusals = refusals
        self._appends = AppendOnly(max_chars=SLACK_MESSAGE_CHARS)
        self._stream_ts: str | None = None
        self._flusher = Flusher(self._show, STREAM_INTERVAL_S if native else UPDATE_INTERVAL_S)
        self._shown = ""

    @property
    def streaming(self) -> bool:
        """A Slack stream was started (and not stopped yet)."""
        return self._stream_ts is not None

    async def update(self, text: str) -> None:
        self._flusher.offer(text)

    async def _show(self, text: str) -> bool:
        """Show ``text`` (the answer so far); False when there was nothing new to send."""
        if self._native:
            delta = self._appends.next_delta(text)
            if not delta:
                return False
            if await self._append(delta):
                return True
            # refused: the placeholder is still there; show the text by edits from now on
            self._flusher.throttle.interval_s = UPDATE_INTERVAL_S
        return await self._edit(text)

    async def _settle(self) -> None:
        """Stop sending partial text (waiting for a call in flight) before the last calls."""
        error = await self._flusher.close()
        if error is not None:
            logger.warning("a streamed update failed: %s", error)

    async def _append(self, delta: str) -> bool:
        """Send ``delta`` by the streaming methods; False when Slack refused streaming."""
        out, m = self._out, self._out.message
        try:
            if self._stream_ts is None:
                response = await out.client.chat_startStream(
                    channel=m.channel_id,
                    thread_ts=out.reply_thread,
                    markdown_text=delta,
                    recipient_team_id=m.team_id,
                    recipient_user_id=m.user_id,
                )
                self._stream_ts = str(response["ts"])
                await self._drop_placeholder()
            else:
                await out.client.chat_appendStream(
                    channel=m.channel_id, ts=self._stream_ts, markdown_text=delta
                )
            return True
        except SlackApiError as e:
            error = str(e.response.get("error") or "")
            if self._stream_ts is not None:
                # Slack ended or refused a started stream (stream expired, rate limit, the
                # feature turned off): the answer itself is fine, so nothing more is appended
                # and finish() shows it whole in the streamed message.
                logger.warning(
                    "Slack refused appending to the stream in %s (%s): the answer shows "
                    "when complete",
                    m.team_id,
                    error,
                )
                if error in STREAMING_REFUSED:
                    self._refusals.remember(m.team_id, error)
                self._appends.stalled = True
                return True
            if error in STREAMING_REFUSED:
                self._refusals.remember(m.team_id, error)
            else:
                logger.warning("could not start a stream in %s: %s", m.team_id, error)
            self._native = False
            return False

    async def _drop_placeholder(self) -> None:
        out = self._out
        if out.placeholder_ts is None:
            return
        ts, out.placeholder_ts = out.placeholder_ts, None
        try:
            await out.client.chat_delete(channel=out.message.channel_id, ts=ts)
        except SlackApiError as e:  # a stray placeholder is untidy, not a failure
            logger.warning("could not delete the placeholder: %s", e.response.get("error"))
        out.placeholder_ts = self._stream_ts

    async def _edit(self, text: str) -> bool:
        """``chat.update`` of the placeholder with the text so far (its first part)."""
        parts = partial_parts(text, "slack", LIMITS["slack"])
        if not parts or parts[0] == self._shown or self._out.placeholder_ts is None:
            return False
        self._shown = parts[0]
        await self._out.update(self._out.placeholder_ts, parts[0], section_blocks(parts[:1]))
        return True

    async def finish(self, answer: Answer, controls: AnswerControls, recorder: Recorder) -> None:
        await self._settle()
        out = self._out
        if self._stream_ts is None:
            await out.show_answer(answer, controls, recorder)
            return
        messages = answer_messages(answer, controls)
        await recorder.first(self._stream_ts, out.reply_thread)
        try:
            await out.client.chat_stopStream(
                channel=out.message.channel_id,
                ts=self._stream_ts,
                blocks=control_blocks(controls) or None,
            )
        except SlackApiError as e:  # already ended by Slack: the update below still shows it
            logger.warning("could not stop the stream: %s", e.response.get("error"))
        ts, self._stream_ts = self._stream_ts, None
        # The streamed Markdown becomes exactly the non-streamed rendering, sources included.
        await out.update(ts, *messages[0])
        for text, blocks in messages[1:]:
            await recorder.part(await out.post(text, blocks))

    async def fail(self, markdown: str) -> None:
        await self._settle()
        out = self._out
        if self._stream_ts is not None:
            ts, self._stream_ts = self._stream_ts, None
            try:
                await out.client.chat_stopStream(channel=out.message.channel_id, ts=ts)
            except SlackApiError as e:
                logger.warning("could not stop the stream: %s", e.response.get("error"))
            await out.update(ts, render_notice(markdown, "slack"))
            return
        await out.apologize(markdown)
