"""``/ask``: a private answer by default, with a button to share it in the channel.

Slack gives a slash command 3 seconds for its ack, so the ack is immediate: an ephemeral
"Looking that up…" (or, for a DM or an empty question, the one-line reason at once). The
answer then replaces it through the command's ``response_url`` (``replace_original``), still
ephemeral: only the asker sees it, with the sources and a *Share in channel* button. Errors
found after the ack (no workspace for the team, a workspace with no knowledge, a failure while
answering) replace it the same way, as one line.

The answer goes through the one reply flow (:class:`bot.reply.ReplyFlow`) with a
:class:`ResponseUrlOutbound`: the same triage, claim, setup notice, question prompt, apology
and recording as every other answer. The flow is the command's own: a private answer is not
escalated to people (asking for a person with ``/ask`` gets an answer like any question; a
handoff starts from a public conversation), and it has no feedback buttons until shared.

The answer is stored as an interaction when it is given (it is an answer to a real question,
and knowledge-gap reports should see it), and remembered under a private id that no Slack
message has, so nothing can rate it while only the asker sees it. *Share in channel* posts it
publicly (the question as context, the answer, the native feedback buttons), remembers that
message as the answer's reply, so buttons and reactions on it rate the same interaction and
replies in its thread are follow-ups, and deletes the private copy (``delete_original``). The
button carries only the interaction's id; a click is honoured only from the same team's
workspace and the same channel the answer was given in.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.decide import Action
from bot.formatting import render_notice, slack_messages
from bot.markup.slack import decode
from bot.message import IncomingMessage, Platform
from bot.reply import AnswerControls, Recorder, ReplyFlow
from bot.service import APOLOGY, ConversationService
from bot.slack.blocks import SHARE_ACTION_ID, feedback_block, section_blocks, share_block
from bot.slack.home import team_message
from feedback.models import Interaction
from retrieval.chain import Answer, Source, Turn
from retrieval.prompts import is_korean

logger = logging.getLogger(__name__)

COMMAND = "/ask"
PRIVATE_PREFIX = "ask:"
"""Reply ids of private answers: no Slack ``ts`` looks like this."""

_TEXT = {
    "en": {
        "looking": ":hourglass_flowing_sand: Looking that up… (only you can see this)",
        "empty": "Type your question after the command, e.g. `/ask how do I reset my password?`",
        "dm": "In a direct message, just send me your question: no need for /ask.",
        "no_workspace": "I'm not connected to a knowledge base for this Slack workspace yet: "
        "ask an admin to run `supportbot workspace create`.",
        "expired": "I can't share this answer any more: ask again with /ask.",
        "not_in_channel": "I can't post in this channel: invite me first (`/invite @supportbot`).",
        "shared_from": "Shared from /ask: {question}",
        "archived": "I can't share this answer: the channel is archived.",
        "restricted": "I can't share this answer: only some members may post in this channel.",
    },
    "ko": {
        "looking": ":hourglass_flowing_sand: 찾고 있어요… (나만 볼 수 있어요)",
        "empty": "명령어 뒤에 질문을 적어 주세요. 예: `/ask 비밀번호는 어떻게 재설정하나요?`",
        "dm": "DM에서는 /ask 없이 질문을 바로 보내 주세요.",
        "no_workspace": "이 Slack 워크스페이스는 아직 지식 베이스에 연결되지 않았습니다. "
        "관리자에게 `supportbot workspace create` 실행을 요청하세요.",
        "expired": "이 답변은 더 이상 공유할 수 없습니다. /ask로 다시 질문해 주세요.",
        "not_in_channel": "이 채널에 글을 쓸 수 없습니다. 먼저 저를 초대해 주세요"
        "(`/invite @supportbot`).",
        "shared_from": "/ask로 받은 답변 공유: {question}",
        "archived": "보관된 채널이라 이 답변을 공유할 수 없습니다.",
        "restricted": "이 채널은 일부 멤버만 글을 쓸 수 있어 답변을 공유할 수 없습니다.",
    },
}
_SHARE_ERRORS = {
    "not_in_channel": "not_in_channel",
    "channel_not_found": "not_in_channel",  # a private channel the bot is not in
    "is_archived": "archived",
    "restricted_action": "restricted",
}
"""Slack's refusals of the shared post, and the private line that says what to do."""
_QUESTION_CHARS = 1000
_MAX_BLOCKS = 50


def _language(text: str) -> str:
    return "ko" if is_korean(text) else "en"


def _is_direct(command: Mapping[str, Any]) -> bool:
    return str(command.get("channel_id") or "").startswith("D") or (
        command.get("channel_name") == "directmessage"
    )


_NAMES = re.compile(r"(?<!\S)@\S+")
_WORDS = re.compile(r"\w")


def command_question(text: str) -> str:
    """The question of ``/ask TEXT`` as a person reads it; "" when it asks nothing.

    Slack sends a command's text with ``&``, ``<``, ``>`` escaped, and mentions and links as
    ``<...>`` markup (``should_escape: true``) or as plain ``@name`` (``false``, the manifest's
    choice): decoded like every message (:func:`bot.markup.slack.decode`). A text of nothing
    but mentions, names and punctuation (``/ask @supportbot``) is no question.
    """
    decoded = decode(text)
    if not _WORDS.search(_NAMES.sub(" ", decoded.bare)):
        return ""
    return decoded.text


def stored_answer(row: Interaction) -> Answer:
    """The answer as it was given, rebuilt from its stored interaction (for rendering)."""
    sources = [
        Source(
            n=int(str(s.get("n") or 0)),
            doc_id=str(s.get("doc_id") or ""),
            source=str(s.get("source") or ""),
            title=str(s.get("title") or ""),
            url=str(s["url"]) if s.get("url") else None,
        )
        for s in row.sources or []
    ]
    return Answer(
        text=row.answer,
        sources=sources,
        mode="llm" if row.mode == "llm" else "extractive",
        standalone_question=row.standalone_question,
        found=row.found,
    )


async def _respond(respond: AsyncRespond, **message: Any) -> bool:
    response = await respond(unfurl_links=False, unfurl_media=False, **message)
    if response.status_code != 200:
        logger.warning("response_url answered %s: %s", response.status_code, response.body)
        return False
    return True


async def _say(respond: AsyncRespond, markdown: str) -> None:
    """One private line in place of "Looking that up…"."""
    await _respond(
        respond,
        text=render_notice(markdown, "slack"),
        response_type="ephemeral",
        replace_original=True,
    )


class ResponseUrlOutbound:
    """The reply flow's outbound for ``/ask`` (see :class:`bot.reply.Outbound`): everything
    goes through the command's ``response_url``, ephemeral, replacing "Looking that up…".

    The answer is recorded under the message's private id before it is shown, and its last
    part carries the *Share in channel* button (the interaction's id) in place of the
    controls of a public answer. Not streamed; no history (a command has no thread).
    """

    platform: Platform = "slack"
    must_reply = True

    def __init__(self, respond: AsyncRespond, message: IncomingMessage) -> None:
        self.respond = respond
        self.message = message
        self.language = _language(message.text)

    async def notice(self, markdown: str) -> None:
        await _say(self.respond, markdown)

    @asynccontextmanager
    async def progress(self) -> AsyncIterator[object]:
        yield None  # the ack already says "Looking that up…"

    async def history(self) -> Sequence[Turn]:
        return []

    def stream(self) -> None:
        return None

    async def show_answer(
        self, answer: Answer, controls: AnswerControls, recorder: Recorder
    ) -> None:
        private_id = self.message.message_id
        interaction_id = await recorder.first(private_id, private_id)
        parts = slack_messages(answer)
        for index, part in enumerate(parts):
            blocks = section_blocks(part.sections)
            if index == len(parts) - 1 and interaction_id is not None:
                blocks.append(share_block(str(interaction_id), self.language))
            await _respond(
                self.respond,
                text=part.text,
                blocks=blocks,
                response_type="ephemeral",
                replace_original=index == 0,
            )

    async def apologize(self, markdown: str) -> None:
        await _say(self.respond, markdown)


class AskCommand:
    """The ``/ask`` command and its *Share in channel* button (``register`` adds both)."""

    def __init__(self, service: ConversationService, engine: Engine) -> None:
        self._service = service
        self._engine = engine
        self.flow = ReplyFlow(service)
        self.flow.register(Action.HANDOFF, self.flow.answer)  # private: answered, see module

    def register(self, app: AsyncApp) -> None:
        @app.command(COMMAND)
        async def on_ask(ack: Any, command: dict[str, Any], respond: AsyncRespond) -> None:
            question = command_question(str(command.get("text") or ""))
            text = _TEXT[_language(question)]
            if not question:
                await ack(text=text["empty"], response_type="ephemeral")
                return
            if _is_direct(command):
                await ack(text=text["dm"], response_type="ephemeral")
                return
            await ack(text=text["looking"], response_type="ephemeral")
            await self.answer(command, question, respond)

        @app.action(SHARE_ACTION_ID)
        async def on_share(
            ack: Any,
            body: dict[str, Any],
            action: dict[str, Any],
            client: AsyncWebClient,
            respond: AsyncRespond,
        ) -> None:
            await ack()
            await self.share(body, action, client, respond)

    # --- the private answer ----------------------------------------------------------------

    async def answer(
        self, command: Mapping[str, Any], question: str, respond: AsyncRespond
    ) -> None:
        """Answer ``question`` privately through ``respond`` (the command's response_url)."""
        team = str(command.get("team_id") or "")
        private_id = PRIVATE_PREFIX + str(command.get("trigger_id") or command.get("user_id"))
        message = IncomingMessage(
            platform="slack",
            delivery_id=private_id,
            team_id=team,
            channel_id=str(command.get("channel_id") or ""),
            message_id=private_id,
            user_id=str(command.get("user_id") or ""),
            text=question,
            thread_id=private_id,
            enterprise_id=str(command["enterprise_id"]) if command.get("enterprise_id") else None,
            mentions_bot=True,  # a command is addressed to the bot
        )
        workspace = await asyncio.to_thread(self._service.workspace_for, message)
        if workspace is None:
            await _say(respond, _TEXT[_language(question)]["no_workspace"])
            return
        await self.flow.handle(message, ResponseUrlOutbound(respond, message), workspace=workspace)

    # --- sharing ---------------------------------------------------------------------------

    async def share(
        self,
        body: Mapping[str, Any],
        action: Mapping[str, Any],
        client: AsyncWebClient,
        respond: AsyncRespond,
    ) -> None:
        """Post the private answer in its channel, make it rateable, delete the private copy."""
        channel = str((body.get("channel") or {}).get("id") or "")
        team = str((body.get("team") or {}).get("id") or "")
        row = await asyncio.to_thread(self._shareable, body, channel, str(action.get("value")))
        language = _language(row.question) if row is not None else "en"
        text = _TEXT[language]
        if row is None or row.id is None:
            await _respond(respond, text=text["expired"], response_type="ephemeral")
            return
        answer = stored_answer(row)
        parts = slack_messages(answer)
        question = render_notice(row.question[:_QUESTION_CHARS], "slack")
        context = {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": text["shared_from"].format(question=question)}],
        }
        try:
            first_blocks = section_blocks(parts[0].sections)
            if len(first_blocks) + 2 <= _MAX_BLOCKS:
                first_blocks = [context, *first_blocks]
            # Posted without controls, remembered, then the controls: a click finds it.
            posted = await client.chat_postMessage(
                channel=channel,
                text=parts[0].text,
                blocks=first_blocks,
                unfurl_links=False,
                unfurl_media=False,
            )
        except SlackApiError as e:
            error = str(e.response.get("error") or "")
            logger.info("could not share an /ask answer in %s: %s", channel, error)
            notice = text[_SHARE_ERRORS[error]] if error in _SHARE_ERRORS else APOLOGY[language]
            await _respond(respond, text=render_notice(notice, "slack"), response_type="ephemeral")
            return
        ts = str(posted["ts"])
        remember = self._service.remember_reply
        await asyncio.to_thread(remember, "slack", team, channel, ts, ts, row.id)
        last_ts, last_blocks, last_text = ts, first_blocks, parts[0].text
        for part in parts[1:]:
            blocks = section_blocks(part.sections)
            reply = await client.chat_postMessage(
                channel=channel,
                thread_ts=ts,
                text=part.text,
                blocks=blocks,
                unfurl_links=False,
                unfurl_media=False,
            )
            last_ts, last_blocks, last_text = str(reply["ts"]), blocks, part.text
            await asyncio.to_thread(remember, "slack", team, channel, ts, last_ts, row.id)
        if answer.found:
            await client.chat_update(
                channel=channel,
                ts=last_ts,
                text=last_text,
                blocks=[*last_blocks, feedback_block(language)],
                unfurl_links=False,
                unfurl_media=False,
            )
        await _respond(respond, delete_original=True)

    def _shareable(self, body: Mapping[str, Any], channel: str, value: str) -> Interaction | None:
        """The interaction the button names, if this team's workspace gave it in ``channel``."""
        try:
            interaction_id = int(value)
        except ValueError:
            return None
        workspace = self._service.workspace_for(team_message(body))
        if workspace is None:
            return None
        with Session(self._engine) as session:
            row = session.get(Interaction, interaction_id)
        if row is None or row.workspace != workspace.name or row.platform != "slack":
            return None
        if row.channel_id != channel or not row.message_id.startswith(PRIVATE_PREFIX):
            return None
        return row
