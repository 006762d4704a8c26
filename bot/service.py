"""The platform-free side of answering: routing, memory, answers and ratings.

Adapters call these methods (from a worker thread: they block on the database, Weaviate and
the chat model) and keep only the platform's I/O for themselves. Every read and write is keyed
by platform and team, and the workspace is found from the team, never from the message text,
so one customer's event can only ever reach that customer's tenant.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.channels import ChannelSettings
from bot.chatter import prompt_language
from bot.claims import Claim, ClaimStore
from bot.decide import Action, ChannelMode, Decision, decide
from bot.handoff import (
    EscalationFailed,
    EscalationTarget,
    HandoffEvent,
    HandoffNotifier,
    HandoffReason,
    HandoffTicket,
    ThreadHandoff,
)
from bot.message import IncomingMessage
from bot.models import BotReply, DirectMessageChoice
from bot.routing import DmRoute, route_direct_message
from bot.signals import Detected, SignalDetector, SignalKind, resolved_weight
from feedback.errors import FeedbackError
from feedback.handoffs import HandoffStore
from feedback.models import Interaction
from feedback.store import FeedbackSink, RateOutcome, answer_record
from retrieval.chain import Answer, AnswerChain, Turn
from retrieval.errors import RetrievalError, StoreUnavailableError, WeaviateUnreachableError
from retrieval.knowledge import KnowledgeBase
from retrieval.workspaces import IdentityKind, WorkspaceInfo, WorkspaceRegistry

logger = logging.getLogger(__name__)

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

# Asked of a message without words ("🔥🔥🔥") or a bare greeting, instead of retrieving.
QUESTION_PROMPT = {
    "en": "What would you like to know? Ask me a question in words and I'll look it up.",
    "ko": "무엇이 궁금하신가요? 질문을 글로 적어 주시면 찾아 드릴게요.",
}


def question_prompt(text: str) -> str:
    """The prompt in the asker's language: the message's own, else both (emoji say none)."""
    language = prompt_language(text)
    if language is None:
        return f"{QUESTION_PROMPT['en']}\n{QUESTION_PROMPT['ko']}"
    return QUESTION_PROMPT[language]


def log_answer_failure(log: logging.Logger, error: BaseException, what: str) -> None:
    """Log why an answer failed (the user gets :data:`APOLOGY`).

    A Weaviate outage is logged once, at WARNING, by its connection (and its end at INFO), so
    each question it fails is only a DEBUG line here; anything else is an ERROR with its
    traceback. ``what``: "answering <delivery id>", for the message.
    """
    if isinstance(error, WeaviateUnreachableError):
        log.debug("%s failed: %s", what, error)
    else:
        log.error("%s failed", what, exc_info=error)


# The identity a platform's team (a Slack workspace, a Discord server) is registered under.
_TEAM_KIND = {"slack": IdentityKind.SLACK_TEAM, "discord": IdentityKind.DISCORD_GUILD}


@dataclass(frozen=True, slots=True)
class Situation:
    """What :func:`bot.decide.decide` needs to know about a message beyond the message."""

    workspace: WorkspaceInfo | None
    workspace_ready: bool
    bot_answered_thread: bool
    channel_mode: ChannelMode
    # The workspace has an escalation target on this platform; the thread's open handoff.
    can_hand_off: bool = False
    handoff: ThreadHandoff | None = None


@dataclass(frozen=True, slots=True)
class Triage:
    """What was known, what was decided, and whether this replica owns the delivery."""

    situation: Situation
    decision: Decision
    # False for a repeat delivery (a retry, or another replica got it first): do nothing.
    first_delivery: bool
    # The leased claim this replica holds on the message (see bot.claims), when it acts.
    claim: Claim | None = None


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
        ready_ttl_s: float = 30.0,
        signals: SignalDetector | None = None,
        handoffs: HandoffStore | None = None,
        claims: ClaimStore | None = None,
    ) -> None:
        """``signals``: reads implicit feedback from messages after an answer (rules only
        when not given; the app gives it the bundled embedder). ``handoffs``: escalation
        targets and handoffs (made over ``engine`` with the feedback store's user hash when
        not given)."""
        self._engine = engine
        # Leased claims on messages (bot.claims): this replica's id and lease.
        self.claims = claims or ClaimStore(engine, clock=clock)
        self.handoffs = handoffs or HandoffStore(
            engine, user_hash=getattr(feedback, "user_hash", _plain_hash), clock=clock
        )
        self._signals = signals or SignalDetector()
        self._registry = registry
        self._knowledge = knowledge
        self._chain_for = chain_for
        self._feedback = feedback
        self._channels = ChannelSettings(engine)
        self._clock = clock or (lambda: datetime.now(UTC))
        # workspace name -> when it was last seen with knowledge. Only "ready" is remembered:
        # knowledge is rarely removed, and a workspace that just got some answers at once.
        self._ready_ttl = timedelta(seconds=ready_ttl_s)
        self._ready_seen: dict[str, datetime] = {}

    @property
    def engine(self) -> Engine:
        """The database it keeps its rows in (Slack's prompts and /ask answers share it)."""
        return self._engine

    # --- routing -----------------------------------------------------------------------------

    def claim_delivery(self, platform: str, delivery_id: str) -> bool:
        """True for the first claim of a delivery, False for every repeat (any replica).

        A permanent claim, done at once (a notice sent once); messages are claimed with a
        lease instead (:meth:`claim_message`)."""
        return self.claims.claim_once(platform, delivery_id)

    def claim_message(self, message: IncomingMessage, *, resumable: bool = True) -> Claim | None:
        """The leased claim on a platform message, whatever delivered it; None for a repeat
        (done, or held by a live replica). See :mod:`bot.claims`.

        Claimed by the message's identity (team, channel, message id), not the delivery id:
        Slack re-sends an edited mention as a new event (new ``event_id``, same ``ts``), and
        that must not become a second answer. ``resumable``: the message is stored so that
        another replica can answer it if this one dies (False for an interaction, whose reply
        only this process can send).
        """
        return self.claims.claim(
            message.platform, f"message:{message.identity}", message if resumable else None
        )

    def triage(
        self,
        message: IncomingMessage,
        *,
        workspace: WorkspaceInfo | None = None,
        resumable: bool = True,
        claimed: Claim | None = None,
    ) -> Triage:
        """Gather, decide and claim in one call (one worker-thread trip per event).

        The decision itself is :func:`bot.decide.decide`, a pure function; the message is
        claimed only when the bot acts on it, so chatter writes nothing. A signal (an
        acknowledgement of the previous answer) is recorded here, on its first delivery.
        ``resumable``: see :meth:`claim_message`. ``claimed``: a claim taken over from a
        replica that died (:mod:`bot.takeover`): decided again, not claimed or recorded again.
        """
        situation = self.situation(message, workspace=workspace)
        decision = decide(
            message,
            channel_mode=situation.channel_mode,
            bot_answered_thread=situation.bot_answered_thread,
            workspace_ready=situation.workspace_ready,
            can_hand_off=situation.can_hand_off,
            handoff=situation.handoff,
        )
        if claimed is not None:  # its first holder recorded what there was to record
            if decision.action is not Action.IGNORE and situation.workspace is not None:
                decision, _ = self._implicit(message, situation, decision)
            return Triage(situation, decision, True, claimed)
        if situation.handoff is not None and situation.workspace is not None:
            self._human_reply(message, situation.workspace, situation.handoff)
        implicit: tuple[int, Detected | None] | None = None
        if decision.action is not Action.IGNORE and situation.workspace is not None:
            decision, implicit = self._implicit(message, situation, decision)
        claim = None
        if decision.action is not Action.IGNORE:
            claim = self.claim_message(message, resumable=resumable)
        first = claim is not None
        if first and situation.workspace is not None:
            if implicit is not None:
                interaction_id, found = implicit
                if found is not None:
                    self._record_implicit(message, situation.workspace, interaction_id, found)
            elif decision.action is Action.SIGNAL:
                self.record_signal(message, situation.workspace, decision)
        return Triage(situation, decision, first, claim)

    def _implicit(
        self, message: IncomingMessage, situation: Situation, decision: Decision
    ) -> tuple[Decision, tuple[int, Detected | None] | None]:
        """Read implicit feedback (:mod:`bot.signals`) from a message after an answer.

        In a thread the bot answered, a reply by someone other than the asker that does not
        mention the bot is a teammate's: never answered, kept as a reference answer when it
        answers. The asker's message is read for frustration, a handoff request, a rephrase
        or thanks; thanks is not answered, the rest is (the signal is recorded as well).
        Returns the decision (maybe changed) and the answer and signal to record, if any.
        """
        follows = message.is_direct or (message.in_thread and situation.bot_answered_thread)
        if not follows:
            return decision, None
        interaction_id = self.previous_answer(message)
        if interaction_id is None:
            return decision, None
        context = self._feedback.answer_context(
            interaction_id, user_id=f"{message.platform}:{message.team_id}:{message.user_id}"
        )
        if context is None:
            return decision, None
        if not context.by_asker:
            if message.is_direct or message.mentions_bot:
                return decision, None  # addressed to the bot: a question of their own
            found = self._signals.from_teammate(message.text)
            teammate = Decision(Action.SIGNAL, "a teammate's reply in a thread the bot answered")
            return teammate, (interaction_id, found)
        if decision.action not in (Action.ANSWER, Action.HANDOFF):
            return decision, None  # chatter: recorded as before (acknowledgement, 👎)
        seconds = (_message_time(message) or self._clock()) - context.answered_at
        found = self._signals.from_asker(
            message.words,
            previous_question=context.question,
            # The platform's clock and ours may disagree a little: never "before the answer".
            seconds_since=max(0.0, seconds.total_seconds()),
        )
        if (
            found is not None
            and found.kind is SignalKind.ACKNOWLEDGEMENT
            and decision.action is Action.ANSWER
        ):
            decision = Decision(Action.SIGNAL, f"{decision.reason}: {found.reason}")
        return decision, (interaction_id, found)

    def _record_implicit(
        self,
        message: IncomingMessage,
        workspace: WorkspaceInfo,
        interaction_id: int,
        found: Detected,
    ) -> None:
        event_id = f"{message.platform}:{message.identity}"
        user_id = f"{message.platform}:{message.team_id}:{message.user_id}"
        event_at = _message_time(message) or self._clock()
        try:
            if found.kind in (SignalKind.TEAMMATE_ANSWER, SignalKind.TEAMMATE_AGREED):
                self._feedback.record_reference(
                    interaction_id,
                    workspace=workspace.name,
                    text=message.text,
                    agrees=found.kind is SignalKind.TEAMMATE_AGREED,
                    platform=message.platform,
                    event_id=event_id,
                    event_at=event_at,
                    author_id=user_id,
                )
            self._feedback.record_signal(
                interaction_id,
                workspace=workspace.name,
                kind=found.kind.value,
                weight=found.weight,
                platform=message.platform,
                event_id=event_id,
                user_id=user_id,
                event_at=event_at,
            )
        except FeedbackError as e:
            logger.warning("signal of %s not recorded: %s", message.delivery_id, e)

    def resolve(
        self,
        *,
        platform: str,
        team_id: str,
        channel_id: str,
        message_id: str,
        user_id: str,
        event_at: datetime | None = None,
    ) -> bool:
        """Record the asker's ✅ on an answer (or on their own question) as ``resolved``.

        Only the asker's ✅ counts, once per answer and user; its weight is +1 when no
        teammate answered in the thread, else 0 (a person resolved it). False when the
        message is no answer or question of the bot's, or the user is not the asker.

        A ✅ (by anyone) on a message of a handed-off thread (the question, an answer or the
        bot's handoff notice) also closes the handoff; True then as well.
        """
        closed = self.close_handoff(
            platform=platform,
            team_id=team_id,
            channel_id=channel_id,
            message_id=message_id,
            at=event_at,
        )
        interaction_id = self._reacted_answer(platform, team_id, channel_id, message_id)
        if interaction_id is None:
            return closed
        user = f"{platform}:{team_id}:{user_id}"
        context = self._feedback.answer_context(interaction_id, user_id=user)
        if context is None or not context.by_asker:
            return closed
        try:
            return closed | self._feedback.record_signal(
                interaction_id,
                workspace=context.workspace,
                kind=SignalKind.RESOLVED.value,
                weight=resolved_weight(human_replied=context.human_replied),
                platform=platform,
                event_id=f"{platform}:resolved:{team_id}:{channel_id}:{message_id}:{user_id}",
                user_id=user,
                event_at=event_at or self._clock(),
            )
        except FeedbackError as e:
            logger.warning("resolution of %s not recorded: %s", message_id, e)
            return closed

    def _reacted_answer(
        self, platform: str, team_id: str, channel_id: str, message_id: str
    ) -> int | None:
        """The answer a reaction is on: the answer's own message, else the question's."""
        with Session(self._engine) as session:
            found = session.exec(
                select(BotReply.interaction_id)
                .where(BotReply.platform == platform)
                .where(BotReply.team_id == team_id)
                .where(BotReply.channel_id == channel_id)
                .where(BotReply.reply_message_id == message_id)
            ).first()
            if found is not None:
                return found
            workspace = self._registry.resolve(_TEAM_KIND[platform], team_id) if team_id else None
            if workspace is None:
                return None
            return session.exec(
                select(Interaction.id)
                .where(Interaction.workspace == workspace.name)
                .where(Interaction.platform == platform)
                .where(Interaction.channel_id == channel_id)
                .where(Interaction.message_id == message_id)
            ).first()

    def situation(
        self, message: IncomingMessage, *, workspace: WorkspaceInfo | None = None
    ) -> Situation:
        """The workspace, its readiness, thread memory and channel mode for ``message``.

        ``workspace``: already routed by the adapter (a Discord DM has no server to route by).
        """
        workspace = workspace or self.workspace_for(message)
        answered = message.in_thread and self.bot_answered_thread(
            message.platform, message.team_id, message.channel_id, message.thread_id or ""
        )
        handoff = None
        if workspace is not None and message.thread_id and not message.from_bot:
            handoff = self.handoffs.thread(
                workspace.name,
                platform=message.platform,
                team_id=message.team_id,
                channel_id=message.channel_id,
                thread_id=message.thread_id,
                user_id=_user(message),
            )
        return Situation(
            workspace=workspace,
            workspace_ready=self.workspace_ready(workspace),
            bot_answered_thread=answered,
            channel_mode=self.channel_mode(
                message.platform, message.team_id, message.mode_channel_id
            ),
            can_hand_off=self.can_hand_off(workspace, message.platform),
            handoff=handoff,
        )

    def workspace_for(self, message: IncomingMessage) -> WorkspaceInfo | None:
        """The workspace a message's team belongs to, else (a DM: no team, or one routed to
        another workspace) the workspace of the bot's earlier answer in that conversation;
        None when neither is known."""
        if message.platform == "slack" and message.enterprise_id:
            found = self._registry.resolve(IdentityKind.SLACK_ENTERPRISE, message.enterprise_id)
            if found:
                return found
        if message.team_id:
            found = self._registry.resolve(_TEAM_KIND[message.platform], message.team_id)
            if found is not None or not message.is_direct:
                return found
        interaction_id = self.previous_answer(message)
        if interaction_id is None:
            return None
        with Session(self._engine) as session:
            row = session.get(Interaction, interaction_id)
        if row is None:
            return None
        try:
            return self._registry.get(row.workspace)
        except RetrievalError:  # deleted since
            return None

    def route_direct_message(
        self,
        platform: str,
        user_id: str,
        shared_team_ids: Sequence[str],
        public_workspace: str | None,
    ) -> DmRoute:
        """Route a DM by the servers the user shares with the bot (see :mod:`bot.routing`).

        ``shared_team_ids``: the servers the adapter found the user to be a member of;
        ``public_workspace``: the workspace open to DMs from anyone (a setting), else the one
        marked ``--discord-dm-default``.
        """
        shared = self._answering_workspaces(platform, shared_team_ids)
        public = (
            self._registry.get(public_workspace)
            if public_workspace
            else self._registry.resolve(IdentityKind.DISCORD_DM_DEFAULT, "default")
        )
        return route_direct_message(
            shared, chosen=self.direct_message_choice(platform, user_id), public=public
        )

    def mapped_teams(self, platform: str, team_ids: Sequence[str]) -> list[str]:
        """Those of ``team_ids`` (a bot's servers) that map to a workspace."""
        kind = _TEAM_KIND[platform]
        return [t for t in team_ids if self._registry.resolve(kind, t) is not None]

    def workspaces_of_teams(self, platform: str, team_ids: Sequence[str]) -> list[str]:
        """The workspaces (with knowledge) ``team_ids`` map to: a DM user's choices, sorted."""
        return sorted({w.name for w in self._answering_workspaces(platform, team_ids)})

    def _answering_workspaces(self, platform: str, team_ids: Sequence[str]) -> list[WorkspaceInfo]:
        """Workspaces of ``team_ids`` that can answer: one with no knowledge is no choice."""
        kind = _TEAM_KIND[platform]
        found = [w for t in team_ids if (w := self._registry.resolve(kind, t))]
        return [w for w in found if self.workspace_ready(w)]

    def direct_message_choice(self, platform: str, user_id: str) -> str | None:
        with Session(self._engine) as session:
            return session.exec(
                select(DirectMessageChoice.workspace)
                .where(DirectMessageChoice.platform == platform)
                .where(DirectMessageChoice.user_id == user_id)
            ).first()

    def choose_direct_message_workspace(self, platform: str, user_id: str, workspace: str) -> None:
        """Remember the user's choice (the caller checked it is one of their shared servers)."""
        with Session(self._engine) as session:
            row = session.exec(
                select(DirectMessageChoice)
                .where(DirectMessageChoice.platform == platform)
                .where(DirectMessageChoice.user_id == user_id)
            ).first()
            if row is None:
                row = DirectMessageChoice(
                    platform=platform, user_id=user_id, workspace=workspace, chosen_at=self._clock()
                )
            else:
                row.workspace, row.chosen_at = workspace, self._clock()
            session.add(row)
            try:
                session.commit()
            except IntegrityError:  # the same user chose twice at once: the other write stands
                session.rollback()

    def workspace_ready(self, workspace: WorkspaceInfo | None) -> bool:
        """False only when ``workspace`` is known to have no knowledge (the setup notice).

        When the store cannot tell (Weaviate down, restarting, unreachable), the workspace
        counts as ready: the question then goes to the answer path, whose failure is an
        apology, never a false "not set up" caused by the infrastructure.
        """
        if workspace is None:
            return False
        now = self._clock()
        seen = self._ready_seen.get(workspace.name)
        if seen is not None and now - seen < self._ready_ttl:
            return True
        try:
            ready = self._knowledge.has_knowledge(workspace.name)
        except StoreUnavailableError:
            return True
        except RetrievalError:  # the workspace (its tenant) is gone: nothing to answer from
            return False
        if ready:
            self._ready_seen[workspace.name] = now
        return ready

    def channel_mode(self, platform: str, team_id: str, channel_id: str) -> ChannelMode:
        return self._channels.mode(platform, team_id, channel_id)

    def any_channel_answering_all(self, platform: str) -> bool:
        return self._channels.any_answering_all(platform)

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

    def previous_answer(self, message: IncomingMessage) -> int | None:
        """The interaction of the answer ``message`` follows: the one it replies to, else the
        latest in its thread, else (a DM outside threads) the latest in the DM."""
        query = (
            select(BotReply.interaction_id)
            .where(BotReply.platform == message.platform)
            .where(BotReply.team_id == message.team_id)
            .where(BotReply.channel_id == message.channel_id)
            .where(col(BotReply.interaction_id).is_not(None))
            .order_by(col(BotReply.id).desc())
        )
        with Session(self._engine) as session:
            if message.reply_to:
                found = session.exec(
                    query.where(BotReply.reply_message_id == message.reply_to)
                ).first()
                if found is not None:
                    return found
            if message.in_thread or not message.is_direct:
                return session.exec(query.where(BotReply.thread_id == message.thread_id)).first()
            return session.exec(query).first()

    def record_signal(
        self, message: IncomingMessage, workspace: WorkspaceInfo, decision: Decision
    ) -> bool:
        """Record what ``message`` says about the previous answer; False when there is none
        (or the message was recorded before)."""
        chatter = decision.chatter
        interaction_id = self.previous_answer(message)
        if chatter is None or interaction_id is None:
            return False
        try:
            return self._feedback.record_signal(
                interaction_id,
                workspace=workspace.name,
                kind=chatter.kind.value,
                weight=chatter.weight,
                platform=message.platform,
                event_id=f"{message.platform}:{message.identity}",
                user_id=f"{message.platform}:{message.team_id}:{message.user_id}",
                event_at=_message_time(message) or self._clock(),
            )
        except FeedbackError as e:  # e.g. the team was moved to another workspace since
            logger.warning("signal of %s not recorded: %s", message.delivery_id, e)
            return False

    # --- handoff to people ---------------------------------------------------------------------

    def escalation_target(self, workspace: WorkspaceInfo | None) -> EscalationTarget:
        """Who the workspace's handoffs go to (empty when none is set)."""
        if workspace is None:
            return EscalationTarget()
        return self.handoffs.target(workspace.name)

    def can_hand_off(self, workspace: WorkspaceInfo | None, platform: str) -> bool:
        """Whether a handoff on ``platform`` has someone to go to: only then is one offered."""
        return self.escalation_target(workspace).configured_for(platform)

    def _human_reply(
        self, message: IncomingMessage, workspace: WorkspaceInfo, handoff: ThreadHandoff
    ) -> None:
        """A person other than the asker wrote in a handed-off thread: its first human reply."""
        if handoff.by_asker or handoff.human_replied or message.from_bot:
            return
        self.handoffs.human_replied(
            workspace.name,
            platform=message.platform,
            team_id=message.team_id,
            channel_id=message.channel_id,
            thread_id=message.thread_id or "",
            user_id=_user(message),
            at=_message_time(message) or self._clock(),
        )

    async def hand_off(
        self,
        message: IncomingMessage,
        workspace: WorkspaceInfo,
        *,
        reason: HandoffReason,
        thread_id: str,
        notifier: HandoffNotifier,
        interaction_id: int | None = None,
    ) -> HandoffTicket | None:
        """Hand the conversation of ``message`` (in ``thread_id``) to the escalation target.

        Opens the thread's handoff (or finds the open one), has ``notifier`` call the target
        (only for a new handoff: nobody is called twice for one thread) and tell the asker who
        was called, then records the notification time and remembers the bot's notice in the
        thread (so follow-ups there reach the bot, and its Resolved button finds the handoff).
        None, with nothing done, when the workspace has no target on the platform. When nobody
        could be called (:class:`~bot.handoff.EscalationFailed`: one warning line naming
        where and why) the request is withdrawn, the asker is told so, and None returned.
        """
        target = await asyncio.to_thread(self.escalation_target, workspace)
        if not target.configured_for(message.platform):
            return None
        opened = await asyncio.to_thread(
            self.handoffs.request,
            workspace.name,
            platform=message.platform,
            team_id=message.team_id,
            channel_id=message.channel_id,
            thread_id=thread_id,
            asker_id=_user(message),
            reason=reason,
            target=target.describe(message.platform),
            interaction_id=interaction_id,
            at=self._clock(),
        )
        ticket = HandoffTicket(
            handoff_id=opened.id,
            workspace=workspace.name,
            reason=reason,
            message=message,
            thread_id=thread_id,
            target=target,
            new=opened.created,
        )
        try:
            called = await notifier.escalate(ticket) if opened.created else None
        except Exception as e:
            # Nobody was called: the request is withdrawn (asking again tries again, and
            # nothing claims a person is on it) and the asker is told so.
            if isinstance(e, EscalationFailed):
                logger.warning("handoff in %s: nobody was called: %s", workspace.name, e)
            else:
                logger.exception("handoff in %s: nobody was called", workspace.name)
            await asyncio.to_thread(self.handoffs.withdraw, workspace.name, opened.id)
            try:
                await notifier.tell_unreachable(ticket)
            except Exception as told:
                logger.warning("handoff in %s: could not tell the asker: %s", workspace.name, told)
            return None
        try:
            notice_id = await notifier.tell_asker(ticket, called)
        except Exception:
            logger.exception("handoff %s: the asker was not told", opened.id)
            return ticket
        await asyncio.to_thread(
            self.handoffs.mark,
            workspace.name,
            opened.id,
            HandoffEvent.NOTIFIED,
            notice_message_id=notice_id or None,
        )
        if notice_id:
            self.remember_reply(
                message.platform,
                message.team_id,
                message.channel_id,
                thread_id,
                notice_id,
                interaction_id,
            )
        return ticket

    def close_handoff(
        self,
        *,
        platform: str,
        team_id: str,
        channel_id: str,
        message_id: str,
        at: datetime | None = None,
    ) -> bool:
        """Resolve the open handoff of the thread ``message_id`` belongs to (the thread's
        question, an answer or the bot's notice in it, or the notice with the *Resolved*
        button); False when there is none."""
        # Found by its place alone (platform, team, channel, thread: one conversation): a DM
        # has no team naming its workspace (a Discord DM has no guild), and a DM may be
        # routed to a workspace other than its team's.
        with Session(self._engine) as session:
            thread = session.exec(
                select(BotReply.thread_id)
                .where(BotReply.platform == platform)
                .where(BotReply.team_id == team_id)
                .where(BotReply.channel_id == channel_id)
                .where(BotReply.reply_message_id == message_id)
            ).first()
        places = [(channel_id, thread or message_id)]
        if platform == "discord":
            # A Discord thread is a channel keyed by its own id (a message in it), and a thread
            # opened on a message has that message's id (the question, in the parent channel;
            # an answer there is remembered under its question's id).
            opened = thread or message_id
            places += [(channel_id, channel_id), (opened, opened)]
        return any(
            self.handoffs.resolve(
                None,
                platform=platform,
                team_id=team_id,
                channel_id=channel,
                thread_id=thread_id,
                at=at or self._clock(),
            )
            for channel, thread_id in places
        )

    # --- answering ---------------------------------------------------------------------------

    async def answer(
        self,
        workspace: WorkspaceInfo,
        question: str,
        history: Sequence[Turn],
        *,
        handoff: bool = False,
    ) -> Answer:
        """The answer from the workspace's own knowledge (awaits the model, holds no thread).

        ``handoff``: a person can be called in here (:meth:`can_hand_off`); only then does an
        answer that found nothing say a person can help."""
        chain = await asyncio.to_thread(self._chain_for, workspace.name)
        return await chain.aanswer(question, history, handoff=handoff)

    async def answer_stream(
        self,
        workspace: WorkspaceInfo,
        question: str,
        history: Sequence[Turn],
        *,
        handoff: bool = False,
    ) -> tuple[bool, AsyncIterator[str | Answer]]:
        """The answer as it is written: whether a chat model writes it (only then is it worth
        streaming), and text deltas then the :class:`Answer` (see ``AnswerChain.astream``)."""
        chain = await asyncio.to_thread(self._chain_for, workspace.name)
        return chain.mode == "llm", chain.astream(question, history, handoff=handoff)

    def record_reply(
        self,
        message: IncomingMessage,
        workspace: WorkspaceInfo,
        answer: Answer,
        *,
        thread_id: str,
        reply_message_id: str,
    ) -> int | None:
        """Store the answer as an interaction and remember where it was posted.

        None, with nothing stored or remembered, when ``workspace`` was deleted while the
        answer was being made (even if a workspace of the same name exists again: the check is
        by its never-reused tenant, see :class:`feedback.store.AnswerRecord`).
        """
        interaction_id = self._feedback.record_answer(
            answer_record(
                answer,
                workspace=workspace.name,
                tenant=workspace.tenant,
                platform=message.platform,
                question=message.text,
                user_id=f"{message.platform}:{message.team_id}:{message.user_id}",
                channel_id=message.channel_id,
                thread_id=thread_id,
                message_id=message.message_id,
            )
        )
        if interaction_id is None:
            return None
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
        event_id: str | None = None,
        event_at: datetime | None = None,
        withdrawn: int | None = None,
    ) -> RateOutcome | None:
        """Rate the answer posted as ``reply_message_id``: what the rating did (truthy), or None
        when the message is not an answer (see :meth:`SqlFeedbackStore.rate` for the rules).

        ``event_id`` / ``event_at``: the platform's id and time of the user's action, when it
        gives them, so a redelivered event counts once and a late one cannot undo a newer one.
        """
        with Session(self._engine) as session:
            row = session.exec(
                select(BotReply)
                .where(BotReply.platform == platform)
                .where(BotReply.team_id == team_id)
                .where(BotReply.channel_id == channel_id)
                .where(BotReply.reply_message_id == reply_message_id)
            ).first()
        if row is None or row.interaction_id is None:
            return None
        return self._feedback.rate(
            row.interaction_id,
            user_id=f"{platform}:{team_id}:{user_id}",
            value=value,
            source=source,
            event_id=f"{platform}:{event_id}" if event_id else None,
            event_at=event_at,
            withdrawn=withdrawn,
        )


_DISCORD_EPOCH_MS = 1_420_070_400_000


def _user(message: IncomingMessage) -> str:
    """How answers and handoffs key a user: ``platform:team:user``."""
    return f"{message.platform}:{message.team_id}:{message.user_id}"


def _plain_hash(user_id: str) -> str:
    """The user key as is, for a feedback sink that does not hash (tests' fakes)."""
    return user_id


def _message_time(message: IncomingMessage) -> datetime | None:
    """When the platform says the message was sent: a Slack ``ts`` is seconds since the epoch,
    a Discord id a snowflake with milliseconds since 2015 in its top bits. None when the id
    is neither (a slash command's)."""
    try:
        if message.platform == "slack":
            return datetime.fromtimestamp(float(message.message_id), tz=UTC)
        return datetime.fromtimestamp(
            ((int(message.message_id) >> 22) + _DISCORD_EPOCH_MS) / 1000, tz=UTC
        )
    except (ValueError, OverflowError):
        return None
