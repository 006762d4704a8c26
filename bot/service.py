"""The platform-free side of answering: routing, memory, answers and ratings.

Adapters call these methods (from a worker thread: they block on the database, Weaviate and
the chat model) and keep only the platform's I/O for themselves. Every read and write is keyed
by platform and team, and the workspace is found from the team, never from the message text,
so one customer's event can only ever reach that customer's tenant.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from bot.channels import ChannelSettings
from bot.decide import ChannelMode
from bot.message import IncomingMessage
from bot.models import BotReply, ProcessedDelivery
from feedback.store import AnswerRecord, FeedbackSink, retrieved_snapshot
from retrieval.chain import Answer, AnswerChain, Turn
from retrieval.errors import RetrievalError
from retrieval.knowledge import KnowledgeBase
from retrieval.workspaces import IdentityKind, WorkspaceInfo, WorkspaceRegistry

SETUP_MESSAGE = (
    "Hi! I'm not set up for this workspace yet: no knowledge has been added. An admin can add "
    "it with `supportbot workspace create` and `supportbot ingest` (see the README)."
)
APOLOGY = {
    "en": "Sorry, I couldn't answer that just now because of a technical problem. "
    "Please try again in a minute, or ask a teammate.",
    "ko": "죄송합니다. 일시적인 문제로 지금은 답변할 수 없습니다. 잠시 후 다시 시도하시거나 "
    "담당자에게 문의해 주세요.",
}


@dataclass(frozen=True, slots=True)
class Situation:
    """What :func:`bot.decide.decide` needs to know about a message beyond the message."""

    workspace: WorkspaceInfo | None
    workspace_ready: bool
    bot_answered_thread: bool
    channel_mode: ChannelMode


@dataclass(frozen=True, slots=True)
class RatedReply:
    interaction_id: int
    workspace: str


class ConversationService:
    """Shared by the Slack and Discord adapters; safe to use from several threads."""

    def __init__(
        self,
        *,
        engine: Engine,
        registry: WorkspaceRegistry,
        knowledge: KnowledgeBase,
        chain_for: Callable[[str], AnswerChain],
        feedback: FeedbackSink,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._engine = engine
        self._registry = registry
        self._knowledge = knowledge
        self._chain_for = chain_for
        self._feedback = feedback
        self._channels = ChannelSettings(engine)
        self._clock = clock or (lambda: datetime.now(UTC))

    # --- routing -----------------------------------------------------------------------------

    def claim_delivery(self, platform: str, delivery_id: str) -> bool:
        """True for the first claim of a delivery, False for every repeat (any replica)."""
        with Session(self._engine) as session:
            session.add(
                ProcessedDelivery(
                    platform=platform, delivery_id=delivery_id, received_at=self._clock()
                )
            )
            try:
                session.commit()
            except IntegrityError:
                return False
            return True

    def situation(self, message: IncomingMessage) -> Situation:
        """The workspace, its readiness, thread memory and channel mode for ``message``."""
        workspace = self.workspace_for(message)
        answered = message.in_thread and self.bot_answered_thread(
            message.platform, message.team_id, message.channel_id, message.thread_id or ""
        )
        return Situation(
            workspace=workspace,
            workspace_ready=self.workspace_ready(workspace),
            bot_answered_thread=answered,
            channel_mode=self.channel_mode(message.platform, message.team_id, message.channel_id),
        )

    def workspace_for(self, message: IncomingMessage) -> WorkspaceInfo | None:
        """The workspace a message's team belongs to, or None when it maps to none."""
        if message.platform == "slack":
            if message.enterprise_id:
                found = self._registry.resolve(IdentityKind.SLACK_ENTERPRISE, message.enterprise_id)
                if found:
                    return found
            return self._registry.resolve(IdentityKind.SLACK_TEAM, message.team_id)
        if message.team_id:
            return self._registry.resolve(IdentityKind.DISCORD_GUILD, message.team_id)
        return None

    def workspace_ready(self, workspace: WorkspaceInfo | None) -> bool:
        if workspace is None:
            return False
        try:
            return self._knowledge.chunk_count(workspace.name) > 0
        except RetrievalError:
            return False

    def channel_mode(self, platform: str, team_id: str, channel_id: str) -> ChannelMode:
        return self._channels.mode(platform, team_id, channel_id)

    def bot_answered_thread(
        self, platform: str, team_id: str, channel_id: str, thread_id: str
    ) -> bool:
        with Session(self._engine) as session:
            return (
                session.exec(
                    select(BotReply.id)
                    .where(BotReply.platform == platform)
                    .where(BotReply.team_id == team_id)
                    .where(BotReply.channel_id == channel_id)
                    .where(BotReply.thread_id == thread_id)
                ).first()
                is not None
            )

    # --- answering ---------------------------------------------------------------------------

    async def answer(
        self, workspace: WorkspaceInfo, question: str, history: Sequence[Turn]
    ) -> Answer:
        """The answer from the workspace's own knowledge (awaits the model, holds no thread)."""
        chain = await asyncio.to_thread(self._chain_for, workspace.name)
        return await chain.aanswer(question, history)

    def record_reply(
        self,
        message: IncomingMessage,
        workspace: WorkspaceInfo,
        answer: Answer,
        *,
        thread_id: str,
        reply_message_id: str,
    ) -> int:
        """Store the answer as an interaction and remember where it was posted."""
        interaction_id = self._feedback.record_answer(
            AnswerRecord(
                workspace=workspace.name,
                platform=message.platform,
                question=message.text,
                standalone_question=answer.standalone_question,
                answer=answer.text,
                mode=answer.mode,
                retrieved=retrieved_snapshot(answer.retrieved),
                user_id=f"{message.platform}:{message.team_id}:{message.user_id}",
                channel_id=message.channel_id,
                thread_id=thread_id,
                message_id=message.message_id,
                model=answer.model,
                latency_ms=answer.latency_ms,
            )
        )
        self.remember_reply(
            message.platform,
            message.team_id,
            message.channel_id,
            thread_id,
            reply_message_id,
            interaction_id,
        )
        return interaction_id

    def remember_reply(
        self,
        platform: str,
        team_id: str,
        channel_id: str,
        thread_id: str,
        reply_message_id: str,
        interaction_id: int | None = None,
    ) -> None:
        with Session(self._engine) as session:
            session.add(
                BotReply(
                    platform=platform,
                    team_id=team_id,
                    channel_id=channel_id,
                    thread_id=thread_id,
                    reply_message_id=reply_message_id,
                    interaction_id=interaction_id,
                    created_at=self._clock(),
                )
            )
            try:
                session.commit()
            except IntegrityError:
                session.rollback()

    # --- feedback ----------------------------------------------------------------------------

    def rate(
        self,
        *,
        platform: str,
        team_id: str,
        channel_id: str,
        reply_message_id: str,
        user_id: str,
        value: int,
        source: str,
    ) -> bool:
        """Rate the answer posted as ``reply_message_id``; False when it is not an answer."""
        with Session(self._engine) as session:
            row = session.exec(
                select(BotReply)
                .where(BotReply.platform == platform)
                .where(BotReply.team_id == team_id)
                .where(BotReply.channel_id == channel_id)
                .where(BotReply.reply_message_id == reply_message_id)
            ).first()
        if row is None or row.interaction_id is None:
            return False
        self._feedback.rate(
            row.interaction_id,
            user_id=f"{platform}:{team_id}:{user_id}",
            value=value,
            source=source,
        )
        return True
