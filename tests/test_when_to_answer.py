"""When to answer: the pure decision table and the chatter rules behind it.

End to end (through the Slack and Discord simulators) in tests/test_slack_bot.py and
tests/test_discord_bot.py; here every rule and many wordings of each kind, in Korean and
English.
"""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from bot.chatter import ChatterKind, classify, has_words, prompt_language
from bot.decide import Action, ChannelMode, decide
from bot.message import IncomingMessage
from bot.service import QUESTION_PROMPT, question_prompt
from feedback.errors import FeedbackError
from feedback.store import AnswerRecord, SqlFeedbackStore
from tests.conftest import REPO

CASES = REPO.parent / "shared" / "cases"
EMPTY_QUERIES = (CASES / "empty-meaning-queries" / "queries.txt").read_text(encoding="utf-8")


def _message(text: str, **overrides: object) -> IncomingMessage:
    values: dict[str, object] = {
        "platform": "slack", "delivery_id": "Ev1", "team_id": "T1", "channel_id": "C1",
        "message_id": "1700000000.000100", "user_id": "U1", "text": text,
    }  # fmt: skip
    values.update(overrides)
    return IncomingMessage(**values)  # type: ignore[arg-type]


# --- no words ---------------------------------------------------------------------------------

WORDLESS = [
    *EMPTY_QUERIES.splitlines(),  # the shared case: "🔥🔥🔥" and a blank line
    "", "🔥", "👀👀", "🤔❓", "?!?", "...", "—", "¯\\_(°°)_/¯", ":fire::fire:", ":eyes:",
    ":wave::skin-tone-3:", "1️⃣2️⃣", "🇰🇷🇺🇸", "👩‍💻", "ㅋㅋㅋㅋ", "ㅠㅠ", "^^;;", "\u200b\u00a0\t",
    "❤️🔥", "!!!", "🙃 🙃", "。。。", "？？",
]  # fmt: skip
WORDED = ["a", "2FA", "42", "세금", "SSO?", "🔥 fire", "환불 🙏", "v2", "ｱ", "Ω"]


@pytest.mark.parametrize("text", WORDLESS)
def test_messages_without_letters_or_numbers_have_no_words(text: str):
    assert not has_words(text)


@pytest.mark.parametrize("text", WORDED)
def test_any_letter_or_number_is_a_word(text: str):
    assert has_words(text)


@pytest.mark.parametrize("text", WORDLESS)
@pytest.mark.parametrize("where", [{"is_direct": True}, {"mentions_bot": True}])
def test_a_wordless_dm_or_mention_gets_a_prompt_never_retrieval(
    text: str, where: dict[str, object]
):
    decision = decide(_message(text, **where))
    assert decision.action in (Action.PROMPT, Action.SIGNAL)
    assert decision.action is not Action.ANSWER


@pytest.mark.parametrize("text", ["🔥🔥🔥", "   ", ":eyes:", "ㅋㅋ"])
def test_a_wordless_message_elsewhere_gets_nothing(text: str):
    followed = decide(_message(text, in_thread=True), bot_answered_thread=True)
    support = decide(_message(text), channel_mode=ChannelMode.ALL_QUESTIONS)
    assert followed.action is Action.IGNORE and support.action is Action.IGNORE


def test_mentions_alone_are_no_words():
    """`<@bot> <@U2|ann>`: the decoded text is "@ann", its bare text is empty."""
    message = _message("@ann", bare_text="", mentions_bot=True)
    assert decide(message).action is Action.PROMPT


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("🔥🔥🔥", None),
        (":fire: :eyes:", None),
        ("ㅠㅠ", "ko"),
        ("hi", "en"),
        ("안녕", "ko"),
        ("...", None),
    ],
)
def test_the_prompt_is_in_the_askers_language(text: str, language: str | None):
    assert prompt_language(text) == language
    prompt = question_prompt(text)
    if language is None:  # emoji say no language: both
        assert QUESTION_PROMPT["en"] in prompt and QUESTION_PROMPT["ko"] in prompt
    else:
        assert prompt == QUESTION_PROMPT[language]


# --- acknowledgements and chatter -------------------------------------------------------------

ACKNOWLEDGEMENTS = [
    # the shared case and the examples
    "thanks 👍", "thanks", "ok 👍", "고마워요", "감사합니다", "확인했습니다", "네 알겠습니다",
    "got it, cheers",
    # English variants
    "Thanks!", "THANK YOU", "thank you so much!!", "Thank you very much for the help.", "thx",
    "ty", "tysm", "many thanks", "Cheers :)", "ok", "okay.", "OK thanks", "k", "kk",
    "got it", "Gotcha 👌", "understood", "makes sense, thanks", "perfect, thank you!",
    "great, that worked", "awesome thx", "cool cool", "that did the trick!", "it works now",
    "That's it, thanks a lot", "Appreciate it 🙏", "much appreciated", "sounds good",
    "all good now, thanks", "yes that fixed it", "Noted, will do", "thanks again team",
    "ok great thanks", "It’s working now thank you", "thank u :pray:", "thanks!! :+1:",
    # Korean variants
    "감사합니다!", "감사해요~", "정말 감사합니다 ^^", "고맙습니다", "고마워", "땡큐",
    "빠른 답변 감사드립니다", "답변 감사합니다 ㅎㅎ", "확인했어요", "확인 완료",
    "넵 감사합니다", "네네 알겠습니다!", "네알겠습니다", "알겠어요", "알겠습니다 👍",
    "해결됐어요 감사합니다", "이제 잘 되네요", "도움이 많이 됐습니다", "오케이", "넵",
    "수고하세요", "네 확인했습니다 감사합니다", "아하 그렇군요 감사합니다",
    # emoji that approve
    "👍", "👍🏽", "🙏", ":+1:", ":thumbsup::skin-tone-2:", "✅", "👌👌",
    # initial-consonant abbreviations (ㄱㅅ, ㄳ: 감사; ㅇㅋ: 오케이) and emoticons
    "ㄱㅅ", "ㄳ", "ㄱㅅㄱㅅ", "ㄳㄳ!", "ㅇㅋ", "ㅇㅋㅇㅋ", "넵 ㄱㅅ!", "ㅇㅋ 감사합니다",
    "ㄱㅅ ㅎㅎ", "ㄱㅅㅎㄴㄷ", "thanks :D", "tysm <3", "ty xD", ":)", ":D", "<3", "^^",
    "감사합니다 ^^;", "ok :P", "thanks a million", "much obliged", "감솨", "감사링", "ok, fine",
]  # fmt: skip
QUESTIONS = [
    "thanks, but how do I reset my password?",
    "thanks but how do I reset my password",
    "Thanks! What about SSO",
    "ok so where is the invoice",
    "ok?",
    "got it. and refunds?",
    "thanks in advance: can I export my data",
    "감사합니다. 그런데 환불은 어떻게 하나요?",
    "네 그러면 비밀번호는요",
    "확인 부탁드립니다",
    "알겠습니다 근데 세금계산서는 언제 나와요",
    "thanksgiving hours",
    "OK button does nothing",
    "great, how do I enable 2FA",
    "👍 how long is the reset link valid",
    "it doesn't work",
    "not helpful",
    "cool feature, is it on the free plan",
    "ㄱㅅ 근데 환불은",
    "ㅇㅋ 그럼 세금계산서는",
    "thanks :D but the export still fails",
    "고마워요 근데 환불은요?",
    "ok but it still fails",
]


@pytest.mark.parametrize("text", ACKNOWLEDGEMENTS)
def test_acknowledgements_are_recognised(text: str):
    chatter = classify(text)
    assert chatter is not None and chatter.kind is ChatterKind.ACKNOWLEDGEMENT
    assert chatter.weight == 1.0


@pytest.mark.parametrize("text", QUESTIONS)
def test_an_acknowledgement_with_a_question_is_a_question(text: str):
    assert classify(text) is None


@pytest.mark.parametrize("text", ["👎", "👎🏻👎", ":-1:", "😞", ":(", "T_T"])
def test_a_lone_thumbs_down_is_a_disapproval(text: str):
    chatter = classify(text)
    assert chatter is not None and chatter.kind is ChatterKind.DISAPPROVAL and chatter.weight < 0


@pytest.mark.parametrize("text", ["hi", "Hello!", "hey there", "안녕하세요", "좋은 아침입니다"])
def test_greetings_are_chatter_without_a_signal(text: str):
    chatter = classify(text)
    assert chatter is not None and chatter.kind is ChatterKind.GREETING and chatter.weight == 0


@pytest.mark.parametrize("text", [*ACKNOWLEDGEMENTS[:8], "👍", "감사합니다 🙏"])
@pytest.mark.parametrize(
    ("where", "context"),
    [
        ({"in_thread": True}, {"bot_answered_thread": True}),
        ({"is_direct": True}, {}),
        ({"mentions_bot": True, "in_thread": True}, {}),
    ],
)
def test_an_acknowledgement_after_an_answer_is_a_signal_not_an_answer(
    text: str, where: dict[str, object], context: dict[str, object]
):
    decision = decide(_message(text, **where), **context)  # type: ignore[arg-type]
    assert decision.action is Action.SIGNAL
    assert decision.chatter is not None and decision.chatter.weight == 1.0


@pytest.mark.parametrize("text", ["thanks 👍", "고마워요", "hi"])
def test_chatter_in_a_support_channel_is_ignored(text: str):
    decision = decide(_message(text), channel_mode=ChannelMode.ALL_QUESTIONS)
    assert decision.action is Action.IGNORE


@pytest.mark.parametrize("text", QUESTIONS[:4] + QUESTIONS[7:9])
def test_a_question_in_a_followed_thread_is_answered(text: str):
    decision = decide(_message(text, in_thread=True), bot_answered_thread=True)
    assert decision.action is Action.ANSWER


@pytest.mark.parametrize("text", ["hi", "안녕하세요"])
def test_a_greeting_to_the_bot_gets_the_prompt(text: str):
    assert decide(_message(text, is_direct=True)).action is Action.PROMPT


# --- the table --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "context", "action"),
    [
        ({"is_direct": True}, {}, Action.ANSWER),
        ({"mentions_bot": True}, {}, Action.ANSWER),
        ({}, {}, Action.IGNORE),
        ({"from_bot": True, "is_direct": True, "text": "thanks"}, {}, Action.IGNORE),
        ({"text": "thanks"}, {}, Action.IGNORE),  # not addressed: writes nothing
        ({"mentions_bot": True, "text": "🔥"}, {"workspace_ready": False}, Action.PROMPT),
        ({"mentions_bot": True}, {"workspace_ready": False}, Action.SETUP_NEEDED),
        ({"in_thread": True, "text": "thanks"}, {}, Action.IGNORE),  # a thread it never answered
    ],
)
def test_decide(overrides: dict[str, object], context: dict[str, object], action: Action):
    text = str(overrides.pop("text", "How do refunds work?"))
    assert decide(_message(text, **overrides), **context).action is action  # type: ignore[arg-type]


def test_an_edit_is_the_same_message_to_claim():
    original = _message("how long is the pasword reset link valid?", delivery_id="Ev1")
    edited = _message("how long is the password reset link valid?", delivery_id="Ev2", edited=True)
    other_channel = _message("x", channel_id="C2")
    assert original.identity == edited.identity
    assert other_channel.identity != original.identity


# --- signals in the feedback store ------------------------------------------------------------


def test_signals_are_stored_once_per_message_and_never_across_workspaces(engine: Engine):
    store = SqlFeedbackStore(engine, user_hash_key=b"k")
    answered = store.record_answer(
        AnswerRecord(
            workspace="acme", platform="slack", question="q?", standalone_question="q?",
            answer="a", mode="llm", message_id="1.0", channel_id="C1",
        )
    )  # fmt: skip

    def record(workspace: str, event_id: str = "slack:T1:C1:2.0") -> bool:
        return store.record_signal(
            answered, workspace=workspace, kind="acknowledgement", weight=1.0,
            platform="slack", event_id=event_id, user_id="slack:T1:U1",
        )  # fmt: skip

    assert record("acme") is True
    assert record("acme") is False  # redelivered
    with pytest.raises(FeedbackError):
        record("globex", event_id="other")

    [row] = store.signals(answered)
    assert (row.workspace, row.kind, row.weight, row.platform) == (
        "acme",
        "acknowledgement",
        1.0,
        "slack",
    )
    assert row.user_hash == store.user_hash("slack:T1:U1") and "U1" not in row.user_hash
    assert store.ratings(answered) == []  # kept apart from ratings
