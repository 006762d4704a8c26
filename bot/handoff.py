"""Handing a conversation to people: whether a message asks for one, and a handoff's lifecycle.

Pure logic, no platform and no database (storage is :mod:`feedback.handoffs`, the
notifications :mod:`bot.slack.handoff` and :mod:`bot.discord.handoff`).

**Asking for a person** (:func:`asks_for_person`) is read as a *request frame* around a
*person*, in English and Korean, not as a list of phrases:

- a person: "a human", "someone", "an agent", "a real person", "your support team",
  "상담원", "사람", "담당자", "직원분" (with Korean particles);
- a frame that asks for them: talking to them ("talk/speak/chat to…", "얘기/통화/상담"),
  being put through ("connect/transfer/put me to…", "연결/바꿔/불러"), wanting one
  ("I need a person", "get me a human"), the person alone ("agent", "real person please",
  "상담원이요"), or refusing the bot ("not a bot", "봇 말고").

A word of the kind inside a product question is no request: "human resources policy", "What
does an agent do in our CRM?", "How many agent seats…", "상담 시간이 언제예요?", "상담원 계정은
어떻게 추가하나요?", "상담원 연결 기능 설정 방법". Those are ruled out by the frame (asking *about*
agents is not asking *for* one) and by product nouns after the person ("agent seats", "상담원
연결 기능"). Precision and recall on the labelled sets (``tests/data/handoff_labelled*.jsonl``)
are in the README and checked by ``tests/test_handoff.py``.

**The lifecycle** of one handoff: requested → notified (the escalation target was told) →
first human reply (a teammate wrote in the thread) → resolved (✅ or the *Resolved* button).
:class:`HandoffTimes` keeps when each step happened (timezone-aware datetimes from an injected
clock); :func:`advance` applies one event, keeping the first time of each step.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from bot.message import IncomingMessage
from bot.signals import fold


class HandoffError(ValueError):
    """A value of this domain is malformed (an escalation id of the wrong shape)."""


class HandoffReason(StrEnum):
    """Why the conversation was handed off."""

    ASKED = "asked"  # the asker asked for a person in words
    NOT_FOUND = "not_found"  # the bot found no answer in the knowledge
    BUTTON = "button"  # the asker pressed "Talk to a human"


class HandoffStage(StrEnum):
    REQUESTED = "requested"
    NOTIFIED = "notified"
    HUMAN_REPLIED = "human_replied"
    RESOLVED = "resolved"


class HandoffEvent(StrEnum):
    NOTIFIED = "notified"
    HUMAN_REPLIED = "human_replied"
    RESOLVED = "resolved"


# --- asking for a person -------------------------------------------------------------------------

# Words after a person noun that make it a product thing ("agent seats", "human resources").
_PRODUCT_NOUN = (
    r"resources?|error|errors|seats?|licen[cs]es?|accounts?|roles?|apps?|application|dashboard|"
    r"fields?|settings?|permissions?|status|view|panel|console|detection|counts?|limits?|"
    r"profiles?|names?|ids?|mode|reports?|plans?|pricing|tier|module|api|sdk|hours|schedule|"
    r"widget|inbox|queue|portal|management|-in-the-loop|in the loop|review"
)
_NOT_PRODUCT = rf"(?![\w-]|\s+(?:{_PRODUCT_NOUN})\b)"

_EN_PERSON = (
    r"(?:(?:a|an|the|some|your|one of your|any|real|actual|live|human|"
    r"support|customer (?:service|support|care)|help ?desk|billing|sales|tech(?:nical)?)\s+)*"
    r"(?:human(?: being)?|humans|person|people|someone|somebody|anyone|anybody|agent|agents|"
    r"representative|rep|operator|staff|team(?:mate)?|manager|supervisor|employee|engineer|"
    r"상담원|상담사|사람|담당자|직원)"
)
_PERSON_EN = rf"{_EN_PERSON}{_NOT_PRODUCT}"

_EN_RULES = (
    # talking to a person: "talk to a human", "can I speak with someone from support"
    rf"\b(?:talk|speak|chat|get in touch|reach)\s+(?:to|with)?\s*{_PERSON_EN}",
    rf"\breach\s+{_PERSON_EN}",
    # being put through: "connect me with an agent", "transfer me to customer service"
    rf"\b(?:connect|transfer|put|forward|pass|hand|send|escalate|route)\s+"
    rf"(?:me|us|this|it|my (?:issue|case|ticket|question|problem|request|chat))"
    rf"(?:\s+(?:through|over|on))?\s+(?:to|with)\s+"
    rf"(?!another\b|other\b){_PERSON_EN}",
    r"\btransfer me\b|\bescalate (?:this|it|my)\b(?!.*\bhow\b)",
    rf"\b(?:put|get)\s+(?:me|us)\s+in touch\b|\bin touch with\s+{_PERSON_EN}",
    # a person taking it: "let a human handle this", "have someone look at my account"
    r"\b(?:let|have)\s+(?:a|an|some|your)?\s*(?:real |actual |live )?(?:human|person|agent|"
    r"someone|somebody|staff|team)\s+(?:handle|take|look|check|see|review|deal)\b",
    # being called back: "a call back from your team"
    r"\b(?:call ?back|callback|phone call|a call)\s+from\s+(?:your|the|a|an|some)\b",
    # wanting one: "get me a human", "I need a real person", "I'd rather have an agent"
    rf"\b(?:get|give|find|bring|need|want|like|prefer|request|have)\s+(?:me\s+)?"
    rf"(?:(?:a|an|some)\s+(?:(?:real|actual|live|human|support|customer service|sales|billing|"
    rf"tech(?:nical)?)\s+)*"
    rf"(?:human|person|agent|representative|rep|operator|manager|supervisor|staff member|"
    rf"employee)|somebody|someone){_NOT_PRODUCT}"
    rf"(?!\s+(?:to (?:help|fix|reset|change|show|explain)\b))",
    # a person the asker could talk to: "is there someone from support I can talk to?"
    r"\b(?:someone|somebody|anyone|a person|a human|an agent)\b.{0,40}\b(?:i|we) (?:can|could)"
    r" (?:talk|speak|chat)\b",
    rf"\b(?:real|actual|live)\s+(?:human|person|people|agent|representative|support|"
    rf"operator){_NOT_PRODUCT}",
    # a person who would call or check: "can someone from your team call me"
    r"\b(?:someone|somebody|anyone|a person|a human|an agent)\b.{0,30}\b(?:call|phone|ring|"
    r"contact|email|reach out to)\s+me\b",
    r"\b(?:someone|somebody|anyone|anybody)\s+(?:from|on|at|in)\s+(?:your|the)\s+(?:team|support|"
    r"company|staff|office)\b",
    # refusing the bot: "not a bot", "no more bots", "I don't want a bot"
    r"\bnot (?:a|the|this|some|your) bot\b|\bno more bots?\b|\binstead of (?:a|the|this) bot\b|"
    r"\b(?:don'?t|do not) want (?:to (?:talk|speak|chat) (?:to|with) )?(?:a|the|this|some|your)"
    r" (?:bot|machine|ai)\b|\bstop the bot\b",
)

# The person alone, as the whole message: "agent", "real person please", "human!"
_EN_BARE = re.compile(
    r"^(?:(?:please|pls|plz|i want|i need|give me|get me)[,\s]+)?"
    r"(?:a |an )?(?:real |actual |live |human )?"
    r"(?:human|person|agent|representative|rep|operator|customer service|support staff)"
    r"(?:,? (?:please|pls|plz|now|asap))?[\s.!?]*$"
)

_KO_PERSON = (
    r"(?:사람|상담원|상담사|상담 ?직원|직원|담당자|담당 ?직원|매니저|엔지니어|운영자|"
    r"실제 ?사람|진짜 ?사람|human|person|agent|staff)"
)
_KO_PARTICLE = (
    r"(?:\s?(?:분|님))?"
    r"(?:과|와|이랑|랑|하고|한테|에게|께|께서|을|를|이|가|은|는|으로|로|이요|요|좀|도)?"
)
# Product things after the request word: "상담원 연결 기능", "상담 시간", "연결 방법"
_KO_NOT_PRODUCT = (
    r"(?!\s?(?:기능|설정|방법|메뉴|버튼|화면|위젯|api|로그|내역|기록|시간|비용|요금|권한|"
    r"계정|옵션|정책))"
)
_KO_RULES = (
    # a person and a way of reaching them: "상담원 연결", "사람이랑 얘기", "담당자 바꿔"
    rf"{_KO_PERSON}{_KO_PARTICLE}\s?(?:좀\s?|직접\s?|바로\s?)?"
    rf"(?:연결|상담|통화|얘기|이야기|대화|채팅|바꿔|불러|부탁|연락|전화|말하|말할|"
    rf"물어[보볼봐]|여쭤|여쭙|문의하고|확인해 ?주|talk|speak|chat|"
    # handing it over: "담당자분께 전달 부탁드려요", "상담원에게 넘겨 주세요"
    rf"전달 ?(?:부탁|해 ?주|해줘|바랍|드려)|넘겨 ?(?:주|줘|드려))"
    rf"{_KO_NOT_PRODUCT}",
    # asking for consultation itself: "전화 상담 원해요", "1:1 상담", "상담 받고 싶어요"
    rf"(?:1:1|일대일|전화|유선|채팅) ?상담(?:을|이|은|도)?{_KO_NOT_PRODUCT}"
    rf"(?:\s?(?:원|가능|받|요청|부탁|하고|할 수|해 ?주|신청하고))",
    r"상담(?:을|좀)? ?(?:받고 ?싶|받을래|원해|요청합니다|요청해요|부탁)",
    # whether a person is there: "상담사 분 계신가요?", "상담원 있나요?"
    # or is not: "진짜 사람 없어요?", "상담원 없나요"
    rf"{_KO_PERSON}(?:\s?(?:분|님))?(?:이|가|은|는)?\s?(?:계신가요|계세요|계십니까|있나요|있어요\?|"
    rf"안 ?계세요|안 ?계신가요|없나요|없어요|없어\?|없습니까|없니)",
    # refusing the bot: "봇 말고", "봇 아니고 사람"
    r"(?:봇|bot|챗봇|ai) ?(?:말고|아니고|대신|아닌)",
)
_KO_BARE = re.compile(
    rf"^{_KO_PERSON}(?:분|님)?(?:이요|요|이|님)?(?:\s?(?:불러|연결|바꿔)\S*)?[\s.!?~]*$"
)

_RULES = re.compile("|".join(f"(?:{r})" for r in (*_EN_RULES, *_KO_RULES)))
# Asking how to do something with agents in the product is no request, even with a frame
# word: "how do I transfer a chat to an agent", "how can agents talk to customers".
_PRODUCT_HOWTO = re.compile(
    r"^(?:how|what|where|can|do|does|is|are)\b.{0,40}\b(?:agents?|reps?|operators?|"
    r"representatives?)\s+(?:see|talk|chat|speak|reply|transfer|assign|handle|view|edit)\b|"
    r"\bhow (?:do|can|to|should) (?:i|we|you)\s+(?:transfer|assign|route|escalate|forward|hand)\b"
)


# Chat shorthand read as the words it stands for.
_SHORTHAND = ((re.compile(r"\bw/\s*"), "with "), (re.compile(r"\bppl\b"), "people"))


def asks_for_person(text: str) -> bool:
    """Whether ``text`` (plain message text, any case) asks to talk to a person.

    Errors: none; an empty text asks for nothing.
    """
    folded = fold(text)
    for pattern, words in _SHORTHAND:
        folded = pattern.sub(words, folded)
    if not folded:
        return False
    if _EN_BARE.match(folded) or _KO_BARE.match(folded):
        return True
    if _PRODUCT_HOWTO.search(folded):
        return False
    return _RULES.search(folded) is not None


# --- escalation targets --------------------------------------------------------------------------

_SLACK_CHANNEL = re.compile(r"^[CG][A-Z0-9]{6,}$")
_SLACK_USERGROUP = re.compile(r"^S[A-Z0-9]{6,}$")
_SNOWFLAKE = re.compile(r"^[1-9][0-9]{15,20}$")


def check_slack_channel(value: str) -> str:
    """A Slack channel id (``C…`` public, ``G…`` private); raises :class:`HandoffError`."""
    if not _SLACK_CHANNEL.match(value):
        raise HandoffError(
            f"{value!r} is no Slack channel id: expected C or G and capitals/digits, "
            "e.g. C024BE91L (a channel's id, not its #name)"
        )
    return value


def check_slack_usergroup(value: str) -> str:
    """A Slack user group id (``S…``); raises :class:`HandoffError`."""
    if not _SLACK_USERGROUP.match(value):
        raise HandoffError(
            f"{value!r} is no Slack user group id: expected S and capitals/digits, "
            "e.g. S0614TZR7 (the group's id, not its @handle)"
        )
    return value


def check_snowflake(value: str, what: str) -> str:
    """A Discord id (a snowflake: 16 to 21 digits); raises :class:`HandoffError`."""
    if not _SNOWFLAKE.match(value):
        raise HandoffError(
            f"{value!r} is no Discord {what} id: expected 16-21 digits "
            "(Developer Mode → right-click → Copy ID)"
        )
    return value


@dataclass(frozen=True, slots=True)
class EscalationTarget:
    """Who a workspace's handoffs go to, per platform. Empty tuples / None: not configured.

    Slack: a post in each of ``slack_channels`` mentioning ``slack_usergroups`` (a user group
    alone is mentioned where the conversation is). Discord: a post in ``discord_channel``
    mentioning ``discord_role`` (a role alone: a private thread with the role's members is
    not possible without a channel, so the role is mentioned where the conversation is).
    """

    slack_channels: tuple[str, ...] = ()
    slack_usergroups: tuple[str, ...] = ()
    discord_channel: str | None = None
    discord_role: str | None = None

    def configured_for(self, platform: str) -> bool:
        """Whether a handoff on ``platform`` ("slack"/"discord") has someone to go to."""
        if platform == "slack":
            return bool(self.slack_channels or self.slack_usergroups)
        if platform == "discord":
            return bool(self.discord_channel or self.discord_role)
        return False

    @property
    def empty(self) -> bool:
        return not (self.configured_for("slack") or self.configured_for("discord"))

    def describe(self, platform: str) -> str:
        """A one-line description for the stored handoff and the logs (ids, no names)."""
        if platform == "slack":
            parts = [f"#{c}" for c in self.slack_channels] + [
                f"@{g}" for g in self.slack_usergroups
            ]
        else:
            parts = ([f"#{self.discord_channel}"] if self.discord_channel else []) + (
                [f"@&{self.discord_role}"] if self.discord_role else []
            )
        return ", ".join(parts)


# --- the lifecycle -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HandoffTimes:
    """When each step of one handoff happened (timezone-aware; None: not yet)."""

    requested_at: datetime
    notified_at: datetime | None = None
    first_human_reply_at: datetime | None = None
    resolved_at: datetime | None = None

    @property
    def stage(self) -> HandoffStage:
        if self.resolved_at is not None:
            return HandoffStage.RESOLVED
        if self.first_human_reply_at is not None:
            return HandoffStage.HUMAN_REPLIED
        if self.notified_at is not None:
            return HandoffStage.NOTIFIED
        return HandoffStage.REQUESTED

    @property
    def open(self) -> bool:
        return self.resolved_at is None

    @property
    def seconds_to_first_human_reply(self) -> float | None:
        """From the request to the first human reply, in seconds; None before one."""
        if self.first_human_reply_at is None:
            return None
        return max(0.0, (self.first_human_reply_at - self.requested_at).total_seconds())


def advance(times: HandoffTimes, event: HandoffEvent, at: datetime) -> HandoffTimes:
    """``times`` after ``event`` at ``at``: each step keeps its first time (a repeat changes
    nothing), and no step is earlier than the request. A human may reply, or the thread be
    resolved, before the notification is confirmed: steps are not forced into order."""
    at = max(at, times.requested_at)
    if event is HandoffEvent.NOTIFIED and times.notified_at is None:
        return replace(times, notified_at=at)
    if event is HandoffEvent.HUMAN_REPLIED and times.first_human_reply_at is None:
        return replace(times, first_human_reply_at=at)
    if event is HandoffEvent.RESOLVED and times.resolved_at is None:
        return replace(times, resolved_at=at)
    return times


# --- what the bot does in a handed-off thread ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class ThreadHandoff:
    """An open handoff of the thread a message is in, as :func:`bot.decide.decide` sees it.

    ``by_asker``: the message's author is who asked for the handoff; ``human_replied``: a
    teammate has written in the thread since the handoff.
    """

    by_asker: bool
    human_replied: bool


def quiet_reason(handoff: ThreadHandoff | None, *, mentions_bot: bool) -> str | None:
    """Why the bot says nothing to a message in a handed-off thread, or None to carry on.

    A teammate's message there is theirs to answer (it is recorded as the first human reply);
    once a teammate has replied, the asker's messages are for the people too, until the asker
    mentions the bot again. A mention is always answered.
    """
    if handoff is None or mentions_bot:
        return None
    if not handoff.by_asker:
        return "a teammate's message in a handed-off thread"
    if handoff.human_replied:
        return "handed off to people who have replied; not mentioned"
    return None


# --- notifying -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HandoffTicket:
    """One handoff as the platform notifiers see it.

    ``message``: the message that led to it (the request, the unanswered question, or the
    question whose answer had the button); ``thread_id``: the conversation handed off;
    ``new``: False when the thread's handoff was already open (nobody is called again).
    """

    handoff_id: int
    workspace: str
    reason: HandoffReason
    message: IncomingMessage
    thread_id: str
    target: EscalationTarget
    new: bool


class EscalationFailed(Exception):
    """The platform refused to call the target (the bot is not in the staff channel, lacks a
    permission, the channel is gone); the message is one line naming where and why."""


class HandoffNotifier(Protocol):
    """A platform's way of calling people (:mod:`bot.slack.handoff`, :mod:`bot.discord.handoff`)."""

    async def escalate(self, ticket: HandoffTicket) -> str:
        """Call the target (the one deliberate ping); who was called, for the asker (names or
        handles as plain text, pinging nobody). Raises on a platform error."""
        ...

    async def tell_asker(self, ticket: HandoffTicket, called: str | None) -> str:
        """Tell the asker in the thread who was called (``None``: already called before);
        the id of that message (it carries the *Resolved* button)."""
        ...

    async def tell_unreachable(self, ticket: HandoffTicket) -> None:
        """Tell the asker that nobody could be called (:func:`unreachable_notice`), where
        :meth:`tell_asker` would have; no *Resolved* button (nothing is open)."""
        ...


# What the asker is told (Markdown; the caller renders it). {who}: plain names, no pings.
_CALLED = {
    "en": "I've asked {who} to help. A teammate will reply in this thread; mention me if you "
    "want me back. React with ✅ or press *Resolved* when you're done.",
    "ko": "{who}에게 도움을 요청했습니다. 담당자가 이 스레드에 답할 예정입니다. 제 도움이 다시 "
    "필요하시면 저를 멘션해 주세요. 해결되면 ✅ 반응을 남기거나 *해결됨*을 눌러 주세요.",
}
_ALREADY = {
    "en": "I've already asked a teammate to help here; they'll reply in this thread.",
    "ko": "이미 담당자에게 도움을 요청했습니다. 이 스레드에서 답변드릴 예정입니다.",
}
# Where no thread is shared with the people (a DM, a private command): they contact the asker.
_CALLED_DIRECT = {
    "en": "I've asked {who} to help. A teammate will contact you directly. Press *Resolved* "
    "when you're done.",
    "ko": "{who}에게 도움을 요청했습니다. 담당자가 직접 연락드릴 예정입니다. 해결되면 *해결됨*을 "
    "눌러 주세요.",
}
_ALREADY_DIRECT = {
    "en": "I've already asked a teammate to help; they'll contact you directly.",
    "ko": "이미 담당자에게 도움을 요청했습니다. 직접 연락드릴 예정입니다.",
}
# The target could not be called (the bot cannot post where the people are called).
_UNREACHABLE = {
    "en": "I couldn't reach the support team just now, so nobody has been called yet. Please "
    "ask again in a little while, or contact the team another way.",
    "ko": "지금은 지원팀에 연락하지 못해 아직 아무도 호출되지 않았습니다. 잠시 후 다시 "
    "요청하시거나 다른 방법으로 팀에 문의해 주세요.",
}
_HANGUL = re.compile(r"[\uac00-\ud7a3]")


def unreachable_notice(text: str) -> str:
    """What the asker is told when nobody could be called, in the language of ``text``."""
    return _UNREACHABLE["ko" if _HANGUL.search(text) else "en"]


def asker_notice(text: str, called: str | None, *, in_thread: bool = True) -> str:
    """What the asker is told, in the language of ``text`` (their message): who was called,
    or (``called`` None) that a teammate was already called. ``in_thread``: the people reply
    in the conversation's thread; False: they contact the asker (a DM, a private command)."""
    language = "ko" if _HANGUL.search(text) else "en"
    if called is None:
        return (_ALREADY if in_thread else _ALREADY_DIRECT)[language]
    return (_CALLED if in_thread else _CALLED_DIRECT)[language].format(who=called)


def transcript(
    lines: Sequence[tuple[str, str]], *, max_lines: int = 8, max_chars: int = 300
) -> list[tuple[str, str]]:
    """The last ``max_lines`` of a conversation as (who, text), each text cut to ``max_chars``
    characters (with an ellipsis): a short transcript for the people called. The platform
    renders it safe (no pings, no links unfurled)."""
    kept = [(who, " ".join(text.split())) for who, text in lines if text.strip()]
    return [
        (who, text if len(text) <= max_chars else text[: max_chars - 1].rstrip() + "…")
        for who, text in kept[-max_lines:]
    ]
