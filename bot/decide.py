"""Whether and how the bot answers a message: a pure function of the message and what is known.

Kept apart from the adapters so the rules users rely on are one readable table, tested without
a platform:

1. never a bot's message;
2. only messages addressed to the bot: DMs, mentions, follow-ups in threads it answered, new
   questions in a support channel, new posts in a support forum (a Discord forum channel in
   that mode: its posts are threads, whose first message is the question); everything else is
   ignored and writes nothing;
3. an acknowledgement ("thanks 👍", "고마워요") or a lone 👍/👎 is no question: it is recorded
   as a signal about the previous answer (:data:`Action.SIGNAL`), never answered;
4. a message without words (emoji, punctuation, blank, mentions only) or a bare greeting gets
   no retrieved answer: a DM, a mention or a new post in a support forum gets a short prompt
   to ask a question (:data:`Action.PROMPT`), anything else nothing;
5. a question for a team without knowledge gets the setup notice; the rest is answered.

Handoff to people (:mod:`bot.handoff`): where the bot would answer, a message that asks for a
person (:func:`bot.handoff.asks_for_person`) is handed off (:data:`Action.HANDOFF`), but only
when the workspace has an escalation target for the platform (``can_hand_off``): with none, the
bot never offers what it cannot do and the message is treated as any other. In a thread whose
handoff is open (``handoff``), a teammate's message is theirs (:data:`Action.SIGNAL`: read as
a teammate's reply, never answered), and once a teammate has replied the asker's messages are
not answered either, until the asker mentions the bot again.

One answer per platform message is the delivery claim's job (:meth:`IncomingMessage.identity`,
claimed by the service): an edit Slack re-sends as a new event shares the message's identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.chatter import Chatter, ChatterKind, classify, has_words
from bot.handoff import ThreadHandoff, asks_for_person, quiet_reason
from bot.message import IncomingMessage


class Action(StrEnum):
    ANSWER = "answer"
    IGNORE = "ignore"
    SETUP_NEEDED = "setup_needed"
    # No words, or only a greeting: ask the user for a question instead of retrieving.
    PROMPT = "prompt"
    # An acknowledgement or a lone 👍/👎: record it about the previous answer, say nothing.
    SIGNAL = "signal"
    # The asker asked for a person: hand the conversation to the escalation target.
    HANDOFF = "handoff"


class ChannelMode(StrEnum):
    """Per-channel setting: answer only when mentioned (default), or every new question."""

    MENTION = "mention"
    ALL_QUESTIONS = "all_questions"


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do, why (for the logs), and for a :data:`Action.SIGNAL` what it says."""

    action: Action
    reason: str
    chatter: Chatter | None = None


def decide(
    message: IncomingMessage,
    *,
    channel_mode: ChannelMode = ChannelMode.MENTION,
    bot_answered_thread: bool = False,
    workspace_ready: bool = True,
    can_hand_off: bool = False,
    handoff: ThreadHandoff | None = None,
) -> Decision:
    """What to do with ``message`` (the module's rules, in order).

    ``bot_answered_thread``: the bot already answered in this message's thread, so a
    follow-up needs no new mention. ``workspace_ready``: the team maps to a workspace that has
    knowledge; if not, an addressed question gets the setup notice instead of an answer.
    ``can_hand_off``: the workspace has an escalation target on this platform; ``handoff``:
    the open handoff of the message's thread, if any (see the module doc).
    """
    if message.from_bot:
        return Decision(Action.IGNORE, "sent by a bot")
    quiet = quiet_reason(handoff, mentions_bot=message.mentions_bot or message.is_direct)
    if quiet is not None:
        teammate = handoff is not None and not handoff.by_asker
        return Decision(Action.SIGNAL if teammate else Action.IGNORE, quiet)
    spoken_to = message.is_direct or message.mentions_bot
    if message.is_direct:
        addressed = "direct message"
    elif message.mentions_bot:
        addressed = "mention"
    elif message.in_thread and bot_answered_thread:
        addressed = "follow-up in a thread the bot answered"
    elif channel_mode is ChannelMode.ALL_QUESTIONS and message.starts_post:
        addressed = "new post in a support forum"
    elif channel_mode is ChannelMode.ALL_QUESTIONS and not message.in_thread:
        addressed = "new question in a support channel"
    else:
        return Decision(Action.IGNORE, "not addressed to the bot")
    follows_answer = spoken_to or (message.in_thread and bot_answered_thread)
    if can_hand_off and asks_for_person(message.words):
        return Decision(Action.HANDOFF, f"{addressed}: asks for a person")
    chatter = classify(message.words)
    if chatter is not None and chatter.weight != 0:
        if follows_answer:
            return Decision(Action.SIGNAL, f"{addressed}: {chatter.kind}", chatter)
        return Decision(Action.IGNORE, f"{addressed}: {chatter.kind}, no answer to judge")
    if not has_words(message.words) or (
        chatter is not None and chatter.kind is ChatterKind.GREETING
    ):
        what = "a greeting" if chatter is not None else "no words"
        # A new post in a support forum is a question to it (often a screenshot under a
        # title like "???"): silence would leave the asker waiting, so it gets the prompt.
        if spoken_to or addressed == "new post in a support forum":
            return Decision(Action.PROMPT, f"{addressed} with {what}", chatter)
        return Decision(Action.IGNORE, f"{addressed} with {what}")
    if not workspace_ready:
        return Decision(Action.SETUP_NEEDED, f"{addressed}, but no knowledge is configured")
    return Decision(Action.ANSWER, addressed)
