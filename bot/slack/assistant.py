"""Slack's AI app surface: the assistant (split) view and the agent messaging view.

Plain bolt listeners, not bolt's ``AsyncAssistant`` middleware: that middleware takes every DM
message with a ``thread_ts`` away from the app's ``message`` listener and hands it to its own,
which would fork the one reply flow (:mod:`bot.reply`) in two. Here a message in an assistant
thread is a DM in a thread, answered by the same flow as any DM; only two things differ, and
:class:`AssistantOutbound` supplies them:

- progress is ``assistant.threads.setStatus`` ("is thinking…", with rotating loading
  messages) while it retrieves and generates, cleared (status ``""``) once the answer or the
  apology is shown (a streamed answer clears it by being posted),
  instead of a placeholder message; where Slack refuses the status (not an assistant thread,
  no scope) the ordinary placeholder is shown;
- the thread gets a title (``assistant.threads.setTitle``) from its first question; the root
  message Slack makes for the thread (subtype ``assistant_app_thread``) is no conversation turn.

Events:

- ``assistant_thread_started``: the user opened a new chat: the workspace's suggested prompts
  (:mod:`bot.slack.prompts`, the defaults in the user's language when it set none) go to that
  thread (``assistant.threads.setSuggestedPrompts``). A team with no workspace, or a workspace
  with no knowledge yet, gets none (each prompt would only get the setup notice).
- ``assistant_thread_context_changed``: the user moved to another channel with the chat open.
  The bot answers from the workspace's knowledge, not from the channel, so nothing changes.
- agent messaging (manifest ``agent_view``): Slack sends ``app_home_opened`` with
  ``tab: "messages"`` instead of ``assistant_thread_started``, and prompts are set without a
  ``thread_ts`` (:meth:`AssistantThreads.offer_prompts` with ``thread_ts=None``, called by
  :mod:`bot.slack.home`).

Every Slack failure here is logged and dropped: a missing title or prompt list never costs an
answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.message import IncomingMessage
from bot.reply import AnswerControls, Recorder
from bot.service import ConversationService
from bot.slack.events import history_from_replies
from bot.slack.home import team_message, user_language
from bot.slack.outbound import SlackOutbound
from bot.slack.prompts import PROMPTS_TITLE, PromptStore, SuggestedPrompt, default_prompts
from retrieval.chain import Answer, Turn
from retrieval.prompts import is_korean
from retrieval.workspaces import WorkspaceInfo

logger = logging.getLogger(__name__)

STATUS = {"en": "is thinking…", "ko": "답변을 찾고 있어요…"}
LOADING_MESSAGES = {
    "en": ["Searching the documentation…", "Reading the best matches…", "Writing the answer…"],
    "ko": ["문서를 찾고 있어요…", "관련 내용을 읽고 있어요…", "답변을 쓰고 있어요…"],
}
TITLE_CHARS = 80
"""A thread title is the first question, cut to this many characters."""
ASSISTANT_ROOT_SUBTYPE = "assistant_app_thread"


def in_assistant_thread(message: IncomingMessage) -> bool:
    """A Slack DM message in a thread: how an assistant thread's messages arrive.

    The same test bolt uses (``is_user_message_event_in_assistant_thread``); a reply in a
    thread of an ordinary DM passes too, and there :class:`AssistantOutbound` falls back to
    the placeholder when Slack refuses the status.
    """
    return message.platform == "slack" and message.is_direct and bool(message.thread_id)


def thread_title(question: str) -> str:
    """The first question on one line, cut at a word to :data:`TITLE_CHARS` characters."""
    line = " ".join(question.split())
    if len(line) <= TITLE_CHARS:
        return line
    cut = line[: TITLE_CHARS - 1].rsplit(" ", 1)[0] or line[: TITLE_CHARS - 1]
    return cut + "…"


def _language(text: str) -> str:
    return "ko" if is_korean(text) else "en"


class AssistantOutbound(SlackOutbound):
    """The Slack outbound of a message in an assistant thread (see the module docstring)."""

    _status_thread: str | None = None

    @asynccontextmanager
    async def progress(self) -> AsyncIterator[object]:
        """``setStatus`` while the answer is made, cleared after; the placeholder if refused."""
        m = self.message
        language = _language(m.text)
        thread_ts = m.thread_id or m.message_id
        try:
            await self.client.assistant_threads_setStatus(
                channel_id=m.channel_id,
                thread_ts=thread_ts,
                status=STATUS[language],
                loading_messages=LOADING_MESSAGES[language],
            )
        except SlackApiError as e:
            logger.info("no assistant status in %s: %s", m.channel_id, e.response.get("error"))
            async with super().progress() as placeholder:
                yield placeholder
            return
        self._status_thread = thread_ts
        yield None  # cleared once the answer (or the apology) is out: see show_answer

    async def show_answer(
        self, answer: Answer, controls: AnswerControls, recorder: Recorder
    ) -> None:
        await super().show_answer(answer, controls, recorder)
        await self._clear_status()

    async def apologize(self, markdown: str) -> None:
        await super().apologize(markdown)
        await self._clear_status()

    async def _clear_status(self) -> None:
        thread_ts, self._status_thread = self._status_thread, None
        if thread_ts is None:
            return
        try:
            await self.client.assistant_threads_setStatus(
                channel_id=self.message.channel_id, thread_ts=thread_ts, status=""
            )
        except SlackApiError as e:  # Slack clears it on the next message or in 2 minutes
            logger.info("could not clear the assistant status: %s", e.response.get("error"))

    async def history(self) -> Sequence[Turn]:
        """Earlier turns of the thread; the first question also names the thread."""
        m = self.message
        thread_ts = m.thread_id or m.message_id
        try:
            response = await self.client.conversations_replies(
                channel=m.channel_id, ts=thread_ts, limit=50
            )
            messages = [
                message
                for message in response.get("messages") or []
                if message.get("subtype") != ASSISTANT_ROOT_SUBTYPE
            ]
        except SlackApiError as e:
            logger.warning("could not read thread history: %s", e.response.get("error"))
            messages = []
        turns = history_from_replies(
            messages, bot_user_id=self._bot_user_id, before_ts=m.message_id
        )
        if not any(turn.role == "user" for turn in turns):
            await self._set_title(thread_ts, thread_title(m.text))
        return turns

    async def _set_title(self, thread_ts: str, title: str) -> None:
        if not title:
            return
        try:
            await self.client.assistant_threads_setTitle(
                channel_id=self.message.channel_id, thread_ts=thread_ts, title=title
            )
        except SlackApiError as e:
            logger.info("could not title the thread: %s", e.response.get("error"))


class AssistantThreads:
    """Listeners for the assistant view's own events (``register`` adds them to an app)."""

    def __init__(self, service: ConversationService, prompts: PromptStore) -> None:
        self._service = service
        self._prompts = prompts

    def register(self, app: AsyncApp) -> None:
        @app.event("assistant_thread_started")
        async def on_thread_started(
            body: dict[str, Any], event: dict[str, Any], client: AsyncWebClient
        ) -> None:
            thread = event.get("assistant_thread") or {}
            channel, thread_ts = thread.get("channel_id"), thread.get("thread_ts")
            if not channel or not thread_ts:
                logger.info("assistant_thread_started without a thread: ignored")
                return
            await self.offer_prompts(
                client, body, str(channel), str(thread_ts), str(thread.get("user_id") or "")
            )

        @app.event("assistant_thread_context_changed")
        async def on_context_changed() -> None:
            # Answers come from the workspace's knowledge, whatever channel the user views.
            return None

    async def offer_prompts(
        self,
        client: AsyncWebClient,
        body: Mapping[str, Any],
        channel_id: str,
        thread_ts: str | None,
        user_id: str,
    ) -> bool:
        """Set the workspace's suggested prompts in a thread (``thread_ts`` None: the agent
        view's DM); False when there is no workspace or Slack refused."""
        workspace = await asyncio.to_thread(self._workspace, body)
        if workspace is None:
            return False
        if not await asyncio.to_thread(self._service.workspace_ready, workspace):
            # Every prompt would get the setup notice: offer none (the first question says
            # what an admin runs, as the Home tab does).
            logger.info("no suggested prompts: workspace %s has no knowledge", workspace.name)
            return False
        prompts: Sequence[SuggestedPrompt] = await asyncio.to_thread(
            self._prompts.get, workspace.name
        )
        language = await user_language(client, user_id) if not prompts else "en"
        if not prompts:
            prompts = default_prompts(language)
        else:
            language = "ko" if any(is_korean(p.title) for p in prompts) else "en"
        arguments: dict[str, Any] = {
            "channel_id": channel_id,
            "prompts": [p.as_slack() for p in prompts],
            "title": PROMPTS_TITLE[language],
        }
        if thread_ts is not None:
            arguments["thread_ts"] = thread_ts
        try:
            await client.assistant_threads_setSuggestedPrompts(**arguments)
        except SlackApiError as e:
            logger.warning("could not set suggested prompts: %s", e.response.get("error"))
            return False
        return True

    def _workspace(self, body: Mapping[str, Any]) -> WorkspaceInfo | None:
        return self._service.workspace_for(team_message(body))
