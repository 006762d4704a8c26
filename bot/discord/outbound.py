"""The Discord side of the reply flow (:mod:`bot.reply`).

:class:`DiscordOutbound` answers a message (a reply in a server, a plain message in a DM),
shows the typing indicator while the answer is made, and with streaming on shows the answer
as it is written by throttled edits (:class:`DiscordAnswerStream`): at most one edit per
message per :data:`~bot.reply.partial.EDIT_INTERVAL_S`, a new message part when the text
passes 2,000 characters, and at the end exactly the non-streamed parts. discord.py waits out
any 429, but the pace keeps the bot from provoking them.

:class:`InteractionOutbound` answers ``/ask`` through the interaction's follow-ups (private
when asked), never streamed.

Every send carries ``allowed_mentions`` none and suppresses embeds.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import discord

from bot.discord.components import answer_view
from bot.discord.handoff import with_handoff
from bot.formatting import answer_parts, render_notice
from bot.message import IncomingMessage, Platform
from bot.reply import AnswerControls, Recorder
from bot.reply.partial import Flusher, Throttle, partial_parts
from retrieval.chain import Answer, Turn

logger = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()

# How often the text so far is rendered again to see what changed (seconds).
RENDER_INTERVAL_S = 0.25

HistoryReader = Callable[[], Awaitable[Sequence[Turn]]]


def control_view(controls: AnswerControls) -> discord.ui.View | None:
    """The components that carry an answer's controls (None: only reactions).

    The place for Discord buttons (👍/👎 components, *Solved*, "Talk to a human"): the flow
    passes the :class:`AnswerControls`, this draws them.
    """
    view = answer_view(feedback=controls.feedback, solved=controls.solved)
    return with_handoff(view) if controls.handoff else view


def _notice(markdown: str) -> str:
    return render_notice(markdown, "discord")


async def _send_safely(sending: Awaitable[Any]) -> Any:
    try:
        return await sending
    except discord.HTTPException as e:
        logger.error("could not send to Discord: %s", e)
        return None


class DiscordOutbound:
    """One message's conversation (see :class:`bot.reply.Outbound`)."""

    platform: Platform = "discord"
    must_reply = False

    def __init__(
        self,
        message: discord.Message,
        incoming: IncomingMessage,
        *,
        history: HistoryReader,
        streaming: bool = False,
    ) -> None:
        self.message = message
        self.incoming = incoming
        self._history = history
        self._streaming = streaming

    @property
    def thread_id(self) -> str:
        return self.incoming.thread_id or self.incoming.message_id

    def send(self, text: str, *, first: bool, view: discord.ui.View | None = None) -> Any:
        """Send ``text`` (rendered): the first part answers the message, the rest follow."""
        extra: dict[str, Any] = {"view": view} if view is not None else {}
        if first and not self.incoming.is_direct:
            return self.message.reply(
                text,
                mention_author=False,
                allowed_mentions=NO_MENTIONS,
                suppress_embeds=True,
                **extra,
            )
        return self.message.channel.send(
            text, allowed_mentions=NO_MENTIONS, suppress_embeds=True, **extra
        )

    async def notice(self, markdown: str) -> None:
        await _send_safely(self.send(_notice(markdown), first=True))

    @asynccontextmanager
    async def progress(self) -> AsyncIterator[object]:
        async with self.message.channel.typing():
            yield None

    async def history(self) -> Sequence[Turn]:
        return await self._history()

    def stream(self) -> DiscordAnswerStream | None:
        return DiscordAnswerStream(self) if self._streaming else None

    async def show_answer(
        self, answer: Answer, controls: AnswerControls, recorder: Recorder
    ) -> None:
        parts = answer_parts(answer, "discord")
        view = control_view(controls)
        first = await self.send(parts[0], first=True, view=view if len(parts) == 1 else None)
        await recorder.first(str(first.id), self.thread_id)
        for index, part in enumerate(parts[1:], start=1):
            last = index == len(parts) - 1
            sent = await self.send(part, first=False, view=view if last else None)
            await recorder.part(str(sent.id))

    async def apologize(self, markdown: str) -> None:
        await _send_safely(self.send(_notice(markdown), first=True))


class DiscordAnswerStream:
    """Throttled edits of the answer's messages as the text grows (see the module).

    The model's text goes to a :class:`~bot.reply.partial.Flusher` that renders and sends in
    the background (at most every :data:`RENDER_INTERVAL_S`): the model never waits for
    Discord, and a part held back by its edit pace is sent once the pace allows.
    """

    def __init__(self, out: DiscordOutbound) -> None:
        self._out = out
        self._sent: list[discord.Message] = []
        self._texts: list[str] = []
        self._throttles: list[Throttle] = []
        self._flusher = Flusher(self._show, RENDER_INTERVAL_S)

    async def update(self, text: str) -> None:
        self._flusher.offer(text)

    async def _show(self, text: str) -> bool:
        """Render ``text`` and send what changed; True when Discord was called."""
        parts = partial_parts(text, "discord")
        called = held = False
        for index, part in enumerate(parts):
            if index < len(self._sent):
                if part == self._texts[index]:
                    continue
                if self._throttles[index].ready():
                    await self._edit(index, part)
                    called = True
                else:
                    held = True
            elif index == len(self._sent):
                await self._send(part)
                called = True
        if held:  # try again at the next go, unless newer text comes first
            self._flusher.again(text)
        return called or held

    async def _settle(self) -> None:
        error = await self._flusher.close()
        if error is not None:
            logger.warning("a streamed edit failed: %s", error)

    async def _send(self, text: str, view: discord.ui.View | None = None) -> discord.Message:
        message = await self._out.send(text, first=not self._sent, view=view)
        throttle = Throttle()
        throttle.mark()
        self._sent.append(message)
        self._texts.append(text)
        self._throttles.append(throttle)
        return message

    async def _edit(self, index: int, text: str, view: discord.ui.View | None = None) -> None:
        extra: dict[str, Any] = {"view": view} if view is not None else {}
        await self._sent[index].edit(content=text, allowed_mentions=NO_MENTIONS, **extra)
        self._texts[index] = text
        self._throttles[index].mark()

    async def finish(self, answer: Answer, controls: AnswerControls, recorder: Recorder) -> None:
        await self._settle()
        if not self._sent:
            await self._out.show_answer(answer, controls, recorder)
            return
        parts = answer_parts(answer, "discord")
        view = control_view(controls)
        await recorder.first(str(self._sent[0].id), self._out.thread_id)
        for index, part in enumerate(parts):
            last_view = view if index == len(parts) - 1 else None
            if index < len(self._sent):
                if part != self._texts[index] or last_view is not None:
                    await self._edit(index, part, last_view)
            else:
                await self._send(part, last_view)
            if index > 0:
                await recorder.part(str(self._sent[index].id))
        for extra in self._sent[len(parts) :]:  # the final cut needs fewer parts
            with contextlib.suppress(discord.HTTPException):
                await extra.delete()
        del self._sent[len(parts) :]

    async def fail(self, markdown: str) -> None:
        await self._settle()
        if not self._sent:
            await self._out.apologize(markdown)
            return
        for extra in self._sent[1:]:
            with contextlib.suppress(discord.HTTPException):
                await extra.delete()
        try:
            await self._edit(0, _notice(markdown))
        except discord.HTTPException as e:
            logger.error("could not show the apology: %s", e)


class InteractionOutbound:
    """``/ask``: follow-ups of a deferred interaction, private when ``private``."""

    platform: Platform = "discord"
    must_reply = True

    def __init__(
        self, interaction: discord.Interaction, incoming: IncomingMessage, *, private: bool
    ) -> None:
        self.interaction = interaction
        self.incoming = incoming
        self.private = private

    def _send(self, text: str, *, ephemeral: bool, **extra: Any) -> Any:
        return self.interaction.followup.send(
            text,
            ephemeral=ephemeral,
            allowed_mentions=NO_MENTIONS,
            suppress_embeds=True,
            **extra,
        )

    async def notice(self, markdown: str) -> None:
        await _send_safely(self._send(_notice(markdown), ephemeral=True))

    @asynccontextmanager
    async def progress(self) -> AsyncIterator[object]:
        yield None  # the deferred response already shows "thinking…"

    async def history(self) -> Sequence[Turn]:
        return []

    def stream(self) -> None:
        return None

    async def show_answer(
        self, answer: Answer, controls: AnswerControls, recorder: Recorder
    ) -> None:
        parts = answer_parts(answer, "discord")
        view = control_view(controls) if not self.private else None
        first = await self._send(
            parts[0],
            ephemeral=self.private,
            wait=True,
            **({"view": view} if view is not None and len(parts) == 1 else {}),
        )
        for index, part in enumerate(parts[1:], start=1):
            last = index == len(parts) - 1
            await self._send(
                part,
                ephemeral=self.private,
                **({"view": view} if view is not None and last else {}),
            )
        if not self.private:  # an ephemeral answer takes no reactions
            await recorder.first(str(first.id), self.incoming.thread_id or "")

    async def apologize(self, markdown: str) -> None:
        await _send_safely(self._send(_notice(markdown), ephemeral=self.private))
