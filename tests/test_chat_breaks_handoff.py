"""Handoffs attacked as real users would: requests in new words (Korean and English, polite and
rude), asked twice, targets the bot cannot post to (Slack ``not_in_channel``, Discord 403),
DM handoffs closed by ✅ or *Resolved*. The real bolt app over HTTP and the real discord.py
client against the simulators (the fixtures of ``tests/test_slack_bot.py`` and
``tests/discord_harness.py``).
"""

# ruff: noqa: F811  (fixtures imported from other test modules)
from __future__ import annotations

import copy
import logging

import pytest

from bot.handoff import EscalationTarget, asks_for_person, unreachable_notice
from feedback.handoffs import Handoff
from supportbot.app import App
from tests.servers.slack import SlackSimulator, load_shared_fixture
from tests.test_slack_bot import (  # noqa: F401
    BOT_USER,
    HttpBot,
    _eventually,
    http_bot,
    kb_app,
    llm,
    llm_server,
    mention,
    message,
    slack,
)

# --- asking for a person in words nobody wrote down before ------------------------------------

ASKS = [
    "Could you connect me with a real person, please?",
    "I want to speak with a live agent",
    "this bot is useless, get me a human NOW",
    "is there an actual human I can chat with?",
    "escalate this to your support staff please",
    "pls transfer me to customer service",
    "i need to talk to someone who works there",
    "human please",
    "상담원 연결해 주세요",
    "사람이랑 얘기하고 싶어요",
    "직원분이랑 통화할 수 있을까요?",
    "봇 말고 사람 불러줘",
    "매니저 바꿔",
    "사람 좀 불러 주실래요?",
    # found missing here, with their kind: whether a person is there at all, handing it over
    "진짜 사람 없어요?",
    "상담원 없나요",
    "사람 안 계세요?",
    "담당자분께 전달 부탁드려요",
    "상담원에게 넘겨 주세요",
    "직원분한테 전달해 주세요",
]
NOT_ASKS = [
    "How do I add a human-readable name to my API key?",
    "Can someone on my team reset their own password?",
    "How many agents can I add to my plan?",
    "사람 수 제한이 있나요?",
    "담당자 지정은 어떻게 하나요?",
    "상담원 기능은 어떤 요금제에서 쓰나요?",
    "알림이 담당자에게 전달되나요?",
    "직원 계정이 없어요",
    "권한이 없어요",
    "사람에게 전달되는 메일 형식",
    "상담원 전달 기능 설정",
]


@pytest.mark.parametrize("text", ASKS)
def test_new_phrasings_ask_for_a_person(text: str) -> None:
    assert asks_for_person(text)


@pytest.mark.parametrize("text", NOT_ASKS)
def test_product_questions_with_person_words_do_not(text: str) -> None:
    assert not asks_for_person(text)


# --- Slack ------------------------------------------------------------------------------------

STAFF, STAFF2, GROUP = "C0BRKSTF1", "C0BRKSTF2", "S0BRK0001"


def _handoffs(app: App) -> list[Handoff]:
    return app.conversations.handoffs.handoffs("acme")


def _target(app: App, target: EscalationTarget) -> None:
    app.conversations.handoffs.set_target("acme", target)


def _thread_texts(slack: SlackSimulator, root: str) -> list[str]:
    return [str(m.get("text") or "") for m in slack.thread("C111", root)]


@pytest.mark.slow
async def test_slack_staff_channel_the_bot_is_not_in_tells_the_truth_and_logs_one_line(
    http_bot: HttpBot, slack: SlackSimulator, kb_app: App, caplog: pytest.LogCaptureFixture
) -> None:
    slack.add_channel(STAFF, name="support-staff", is_member=False)
    slack.add_usergroup("T111", GROUP, "support-team", users=["U900"])
    _target(kb_app, EscalationTarget(slack_channels=(STAFF,), slack_usergroups=(GROUP,)))
    before = len(_handoffs(kb_app))
    try:
        root = "1700019000.000100"
        text = "사람이랑 얘기하고 싶어요"
        slack.seed_message("C111", "U222", f"<@{BOT_USER}> {text}", ts=root)
        with caplog.at_level(logging.WARNING):
            await http_bot.post(mention(text, ts=root))
            await _eventually(lambda: unreachable_notice(text) in _thread_texts(slack, root))
        [refused] = slack.calls_to("chat.postMessage")[:1]
        assert refused.args["channel"] == STAFF and refused.error == "not_in_channel"
        lines = [r.getMessage() for r in caplog.records if "nobody was called" in r.getMessage()]
        assert len(lines) == 1 and "not_in_channel" in lines[0] and "/invite" in lines[0]
        assert "Traceback" not in caplog.text
        # nothing claims a person is on it: no Resolved button, no open handoff, no ping
        assert "handoff_resolved" not in str(slack.thread("C111", root))
        assert len(_handoffs(kb_app)) == before
        assert slack.pings(STAFF) == []

        # once the bot is invited, asking again in the same thread calls the team
        slack.add_channel(STAFF, name="support-staff", is_member=True)
        await http_bot.post(mention("please get me a human", thread_ts=root))
        await _eventually(lambda: bool(slack.pings(STAFF)))
        await _eventually(lambda: len(_handoffs(kb_app)) == before + 1)
    finally:
        _target(kb_app, EscalationTarget())


@pytest.mark.slow
async def test_slack_one_of_two_staff_channels_refusing_still_calls_the_other(
    http_bot: HttpBot, slack: SlackSimulator, kb_app: App, caplog: pytest.LogCaptureFixture
) -> None:
    slack.add_channel(STAFF, name="support-staff", is_member=False)
    slack.add_channel(STAFF2, name="support-oncall")
    slack.add_usergroup("T111", GROUP, "support-team", users=["U900"])
    _target(kb_app, EscalationTarget(slack_channels=(STAFF, STAFF2), slack_usergroups=(GROUP,)))
    try:
        root = "1700019500.000100"
        text = "Could you connect me with a real person, please?"
        slack.seed_message("C111", "U222", f"<@{BOT_USER}> {text}", ts=root)
        with caplog.at_level(logging.WARNING):
            await http_bot.post(mention(text, ts=root))
            await _eventually(lambda: "handoff_resolved" in str(slack.thread("C111", root)))
        assert [p[2] for p in slack.pings(STAFF2)] == [[f"subteam^{GROUP}"]]
        assert any("not_in_channel" in r.getMessage() for r in caplog.records)
        # asked a second time in the same thread (rudely): nobody is called twice
        await http_bot.post(mention("this bot is useless, get me a human NOW", thread_ts=root))
        await _eventually(
            lambda: any("already asked" in t for t in _thread_texts(slack, root)), timeout=20
        )
        assert len(slack.pings(STAFF2)) == 1
    finally:
        _target(kb_app, EscalationTarget())


@pytest.mark.slow
async def test_slack_dm_handoff_says_the_team_will_contact_the_asker_and_resolves(
    http_bot: HttpBot, slack: SlackSimulator, kb_app: App
) -> None:
    """In a DM teammates cannot reply in the thread: the asker is told they will be contacted,
    the staff post names the asker without pinging them, and ✅ closes it."""
    slack.add_channel(STAFF, name="support-staff")
    slack.add_usergroup("T111", GROUP, "support-team", users=["U900"])
    slack.add_user("U0DMASK", team_id="T111", name="minsu")
    _target(kb_app, EscalationTarget(slack_channels=(STAFF,), slack_usergroups=(GROUP,)))
    before = len(_handoffs(kb_app))
    try:
        ts = "1700019700.000100"
        await http_bot.post(
            message("상담원 연결해 주세요", channel="D0BRKDM1", channel_type="im", ts=ts,
                    user="U0DMASK")
        )  # fmt: skip
        posts = await slack.async_wait_for("chat.postMessage", count=2, timeout=20)
        staff = next(p for p in posts if p.args["channel"] == STAFF)
        notice = next(p for p in posts if p.args["channel"] == "D0BRKDM1")
        assert "직접 연락" in notice.args["text"]  # not "reply in this thread"
        assert "U0DMASK" in staff.args["text"] and "<@U0DMASK>" not in staff.args["text"]
        assert [p[2] for p in slack.pings(STAFF)] == [[f"subteam^{GROUP}"]]
        await _eventually(lambda: len(_handoffs(kb_app)) == before + 1)
        await _eventually(lambda: _handoffs(kb_app)[before].notified_at is not None)

        reaction = copy.deepcopy(
            load_shared_fixture("scenario_tests__test_events__valid_reaction_added_body__L112")
        )
        reaction.update({"team_id": "T111", "event_id": "EvBrkDmDone"})
        reaction["event"].update(
            {
                "reaction": "white_check_mark",
                "user": "U0DMASK",
                "item": {"type": "message", "channel": "D0BRKDM1", "ts": notice.response["ts"]},
            }
        )
        await http_bot.post(reaction)
        await _eventually(lambda: _handoffs(kb_app)[before].resolved_at is not None)
    finally:
        _target(kb_app, EscalationTarget())
