"""Handoff to people, without a platform: asking for a person (measured on labelled sets), the
lifecycle, escalation ids, the decisions in a handed-off thread, and the store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from bot.decide import Action, ChannelMode, decide
from bot.handoff import (
    EscalationTarget,
    HandoffError,
    HandoffEvent,
    HandoffReason,
    HandoffStage,
    HandoffTimes,
    ThreadHandoff,
    advance,
    asker_notice,
    asks_for_person,
    check_slack_channel,
    check_slack_usergroup,
    check_snowflake,
    transcript,
)
from bot.message import IncomingMessage
from feedback.errors import FeedbackError
from feedback.handoffs import HandoffStore

DATA = Path(__file__).parent / "data"
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def _labelled(name: str) -> list[dict[str, object]]:
    with (DATA / name).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _scores(rows: list[dict[str, object]]) -> tuple[float, float, list[str]]:
    tp = fp = fn = 0
    wrong = []
    for row in rows:
        said, truth = asks_for_person(str(row["text"])), bool(row["handoff"])
        tp += said and truth
        fp += said and not truth
        fn += truth and not said
        if said != truth:
            wrong.append(str(row["text"]))
    return tp / max(1, tp + fp), tp / max(1, tp + fn), wrong


@pytest.mark.parametrize(
    ("name", "min_precision", "min_recall"),
    [
        # the set the rules were written from
        ("handoff_labelled.jsonl", 0.97, 0.95),
        # written after the rules: first measured 1.00 / 0.67, then the missing kinds were
        # added (see the README); kept as a regression floor, no longer held out
        ("handoff_labelled.holdout.jsonl", 0.95, 0.9),
    ],
)
def test_precision_and_recall_on_the_labelled_sets(
    name: str, min_precision: float, min_recall: float
) -> None:
    rows = _labelled(name)
    assert len(rows) >= 40
    assert {r["lang"] for r in rows} >= {"en", "ko"}
    precision, recall, wrong = _scores(rows)
    assert precision >= min_precision and recall >= min_recall, wrong


def test_the_signals_sets_handoff_requests_are_requests_here_too() -> None:
    """The implicit-feedback sets label asker messages; their handoff requests are requests
    here and nothing else there is (one notion of "asks for a person" in the bot)."""
    for name in ("signals_labelled.jsonl", "signals_labelled.holdout.jsonl"):
        for row in _labelled(name):
            context = row["context"]
            assert isinstance(context, dict)
            if context.get("author") != "asker":
                continue
            said = asks_for_person(str(row["message"]))
            assert said == (row["expected"] == "handoff_request"), row["message"]


@pytest.mark.parametrize(
    "text",
    [
        "talk to a human",
        "can I speak to someone",
        "real person please",
        "agent",
        "사람과 상담",
        "상담원 연결",
        "사람이랑 얘기하고 싶어요",
        "담당자 바꿔 주세요",
        # variants of the kind, not in the sets
        "Please, a HUMAN!",
        "could you connect us with your support staff",
        "직원분이랑 직접 통화 원해요",
    ],
)
def test_asks_for_a_person(text: str) -> None:
    assert asks_for_person(text)


@pytest.mark.parametrize(
    "text",
    [
        "human resources policy",
        "What does an agent do in our CRM?",
        "상담 시간이 언제예요?",
        "",
        "👍",
        # variants of the kind, not in the sets
        "Which agent licence do I need for SSO?",
        "How do I assign a chat to an agent?",
        "상담원 초대 메일이 안 와요",
    ],
)
def test_look_alikes_do_not(text: str) -> None:
    assert not asks_for_person(text)


def test_lifecycle_keeps_first_times_in_order() -> None:
    times = HandoffTimes(requested_at=T0)
    assert times.stage is HandoffStage.REQUESTED and times.open
    times = advance(times, HandoffEvent.NOTIFIED, T0 + timedelta(seconds=2))
    assert times.stage is HandoffStage.NOTIFIED
    times = advance(times, HandoffEvent.HUMAN_REPLIED, T0 + timedelta(minutes=5))
    again = advance(times, HandoffEvent.HUMAN_REPLIED, T0 + timedelta(minutes=9))
    assert again == times and times.seconds_to_first_human_reply == 300
    times = advance(times, HandoffEvent.RESOLVED, T0 + timedelta(hours=1))
    assert times.stage is HandoffStage.RESOLVED and not times.open
    # a platform clock a little behind ours: never before the request
    early = advance(HandoffTimes(requested_at=T0), HandoffEvent.HUMAN_REPLIED, T0 - timedelta(1))
    assert early.first_human_reply_at == T0


def test_escalation_ids_have_their_shapes() -> None:
    assert check_slack_channel("C024BE91L") == "C024BE91L"
    assert check_slack_usergroup("S0614TZR7") == "S0614TZR7"
    assert check_snowflake("1100000000000000001", "role")
    for bad in ("#support", "c024be91l", "D024BE91L", "", "S0614TZR7"):
        with pytest.raises(HandoffError, match="Slack channel id"):
            check_slack_channel(bad)
    with pytest.raises(HandoffError, match="user group id"):
        check_slack_usergroup("@support-team")
    with pytest.raises(HandoffError, match="Discord role id"):
        check_snowflake("<@&1100000000000000001>", "role")


def test_target_is_per_platform() -> None:
    slack_only = EscalationTarget(slack_usergroups=("S0614TZR7",))
    assert slack_only.configured_for("slack") and not slack_only.configured_for("discord")
    assert EscalationTarget().empty
    assert EscalationTarget(discord_role="1100000000000000001").describe("discord") == (
        "@&1100000000000000001"
    )


def test_asker_notice_in_their_language_and_transcript_is_short() -> None:
    assert "@support" in asker_notice("talk to a human", "@support")
    assert "도움을 요청" in asker_notice("상담원 연결", "@지원팀")
    assert "already" in asker_notice("agent please", None)
    lines = transcript([("a", "x" * 1000)] + [("b", f"line {i}") for i in range(20)])
    assert len(lines) == 8 and lines[-1] == ("b", "line 19")
    assert len(transcript([("a", "y" * 1000)])[0][1]) == 300


def _msg(**overrides: object) -> IncomingMessage:
    fields: dict[str, object] = dict(
        platform="slack",
        delivery_id="Ev1",
        team_id="T1",
        channel_id="C1",
        message_id="1700000000.000200",
        user_id="UASKER",
        text="talk to a human",
        thread_id="1700000000.000100",
        in_thread=True,
    )
    fields.update(overrides)
    return IncomingMessage(**fields)  # type: ignore[arg-type]


def test_decide_hands_off_only_where_it_would_answer_and_a_target_exists() -> None:
    mention = _msg(mentions_bot=True, in_thread=False)
    assert decide(mention, can_hand_off=True).action is Action.HANDOFF
    assert decide(mention, can_hand_off=False).action is Action.ANSWER  # never offered
    dm = _msg(is_direct=True, in_thread=False)
    assert decide(dm, can_hand_off=True).action is Action.HANDOFF
    follow_up = _msg()
    assert decide(follow_up, can_hand_off=True, bot_answered_thread=True).action is (Action.HANDOFF)
    assert decide(follow_up, can_hand_off=True).action is Action.IGNORE  # not addressed
    support = _msg(in_thread=False)
    assert (
        decide(support, can_hand_off=True, channel_mode=ChannelMode.ALL_QUESTIONS).action
        is Action.HANDOFF
    )
    look_alike = _msg(mentions_bot=True, text="What does an agent do in our CRM?")
    assert decide(look_alike, can_hand_off=True).action is Action.ANSWER


def test_decide_in_a_handed_off_thread() -> None:
    waiting = ThreadHandoff(by_asker=True, human_replied=False)
    replied = ThreadHandoff(by_asker=True, human_replied=True)
    teammate = ThreadHandoff(by_asker=False, human_replied=False)
    question = _msg(text="and what about refunds?")
    answered = {"bot_answered_thread": True, "can_hand_off": True}
    # nobody has replied yet: the bot still helps
    assert decide(question, handoff=waiting, **answered).action is Action.ANSWER
    # a teammate's message is theirs, read as a teammate's reply, never answered
    assert decide(_msg(user_id="UTEAM"), handoff=teammate, **answered).action is Action.SIGNAL
    # once a teammate replied, the asker's messages are for people, until a mention
    assert decide(question, handoff=replied, **answered).action is Action.IGNORE
    mention = _msg(text="ok bot, what about refunds?", mentions_bot=True)
    assert decide(mention, handoff=replied, **answered).action is Action.ANSWER


@pytest.fixture
def store(engine: Engine) -> HandoffStore:
    clock = iter(T0 + timedelta(seconds=i) for i in range(1000))
    return HandoffStore(engine, user_hash=lambda u: f"h:{u}", clock=lambda: next(clock))


def _open(store: HandoffStore, workspace: str = "acme", **overrides: object) -> int:
    fields: dict[str, object] = dict(
        platform="slack",
        team_id="T1",
        channel_id="C1",
        thread_id="100.1",
        asker_id="slack:T1:UASKER",
        reason=HandoffReason.ASKED,
        target="@S0614TZR7",
    )
    fields.update(overrides)
    return store.request(workspace, **fields).id  # type: ignore[arg-type]


def test_store_targets_per_workspace(store: HandoffStore) -> None:
    target = EscalationTarget(slack_channels=("C024BE91L",), slack_usergroups=("S0614TZR7",))
    store.set_target("acme", target)
    assert store.target("acme") == target
    assert store.target("other").empty
    store.set_target("acme", EscalationTarget())
    assert store.target("acme").empty


def test_store_one_open_handoff_per_thread_and_tenant_isolation(store: HandoffStore) -> None:
    first = store.request(
        "acme",
        platform="slack",
        team_id="T1",
        channel_id="C1",
        thread_id="100.1",
        asker_id="slack:T1:UASKER",
        reason=HandoffReason.BUTTON,
        target="@S0614TZR7",
    )
    again = store.request(
        "acme",
        platform="slack",
        team_id="T1",
        channel_id="C1",
        thread_id="100.1",
        asker_id="slack:T1:UASKER",
        reason=HandoffReason.ASKED,
        target="@S0614TZR7",
    )
    assert first.created and not again.created and again.id == first.id
    where = dict(platform="slack", team_id="T1", channel_id="C1", thread_id="100.1")
    assert store.thread("other", user_id="slack:T1:UASKER", **where) is None
    with pytest.raises(FeedbackError):
        store.mark("other", first.id, HandoffEvent.RESOLVED)
    seen = store.thread("acme", user_id="slack:T1:UASKER", **where)
    assert seen == ThreadHandoff(by_asker=True, human_replied=False)
    # the asker's own message is no human reply; a teammate's is, once
    assert not store.human_replied("acme", user_id="slack:T1:UASKER", **where)
    assert store.human_replied("acme", user_id="slack:T1:UTEAM", **where)
    assert not store.human_replied("acme", user_id="slack:T1:UOTHER", **where)
    assert store.resolve("acme", **where)
    assert store.thread("acme", user_id="slack:T1:UASKER", **where) is None
    # resolved: the thread can be handed off again
    assert store.request("acme", asker_id="slack:T1:UASKER", reason=HandoffReason.ASKED,
                         target="", **where).created  # fmt: skip


def test_store_summary_median_time_to_first_human_reply(store: HandoffStore) -> None:
    waits = [60, 300, 900]
    for n, wait in enumerate(waits):
        handoff_id = _open(store, thread_id=f"{n}.1")
        store.mark("acme", handoff_id, HandoffEvent.NOTIFIED)
        requested = store.handoffs("acme")[-1].requested_at.replace(tzinfo=UTC)
        store.mark(
            "acme",
            handoff_id,
            HandoffEvent.HUMAN_REPLIED,
            at=requested + timedelta(seconds=wait),
        )
    _open(store, thread_id="never.1")
    _open(store, "other", thread_id="x.1")
    summary = store.summary("acme")
    assert (summary.count, summary.replied, summary.resolved) == (4, 3, 0)
    assert summary.median_seconds_to_first_human_reply == 300
    assert store.summary("nobody").median_seconds_to_first_human_reply is None
