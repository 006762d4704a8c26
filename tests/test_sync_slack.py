"""Slack sources against the Slack Web API simulator over real HTTP.

Threads become Q&A documents (accepted answer by ✅, else the last human answer), chatter is
skipped, edits and deletions reach search, an expired rotating token is refreshed through
``oauth.v2.access`` and stored encrypted, 429s are waited out, and a new thread reply
queues a sync of that thread alone.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from supportbot.app import App
from sync.connectors.slack import SlackConnector, clean_slack_text
from sync.events import slack_thread_changed
from sync.queue import InProcessQueue
from tests.servers.slack import SlackSimulator

TOKEN = "xoxe.xoxb-old"
CHANNEL = "C0SUPPORT"


@pytest.fixture
def slack() -> Iterator[SlackSimulator]:
    with SlackSimulator() as sim:
        sim.add_workspace("T0ACME", TOKEN, team_name="Acme", domain="acme")
        sim.add_channel(CHANNEL, name="support")
        yield sim


def seed_threads(sim: SlackSimulator) -> dict[str, str]:
    """Two answered questions and some chatter; returns the question timestamps."""
    q1 = sim.seed_message(CHANNEL, "U1ASKER", "How do I reset my password?")["ts"]
    sim.seed_message(
        CHANNEL, "U2AGENT",
        "Use the *Forgot password* link on <https://acme.test/login|the sign-in page>.",
        thread_ts=q1, reactions=[{"name": "white_check_mark", "users": ["U1ASKER"], "count": 1}],
    )  # fmt: skip
    sim.seed_message(CHANNEL, "U3OTHER", "same problem here, thanks <@U2AGENT>", thread_ts=q1)
    q2 = sim.seed_message(CHANNEL, "U1ASKER", "환불은 어떻게 받나요?")["ts"]
    sim.seed_message(CHANNEL, "U1ASKER", "아무도 없나요?", thread_ts=q2)
    sim.seed_message(
        CHANNEL, "U4AGENT", "설정 > 결제 > 환불 요청을 누르면 5일 안에 환불됩니다.", thread_ts=q2
    )
    sim.seed_message(CHANNEL, "U5", "good morning everyone")  # no replies: chatter
    sim.seed_message(CHANNEL, "U6", "joined", subtype="channel_join")
    lonely = sim.seed_message(CHANNEL, "U7", "Is the API down?")["ts"]
    sim.seed_message(CHANNEL, "U7", "never mind, it's back", thread_ts=lonely)  # asker only
    botq = sim.seed_message(CHANNEL, "U8", "Where are invoices?")["ts"]
    sim.seed_message(
        CHANNEL, "U0BOT", "Invoices are under Billing.", thread_ts=botq, bot_id="B0BOT"
    )
    return {"password": q1, "refund": q2}


def add_slack(app: App, workspace: str, credentials: dict[str, str]) -> None:
    app.sync_sources.add(
        workspace,
        "support",
        kind="slack",
        config=SlackConnector.validate_config({"channels": [CHANNEL], "recent_days": 0}),
        credentials=credentials,
        schedule=None,
        requests_per_second=200,
    )


@pytest.fixture
def slack_app(app: App, slack: SlackSimulator) -> App:
    app.settings.slack_api_url = slack.base_url
    return app


async def test_threads_become_qa_documents_and_follow_edits_and_deletions(
    slack_app: App, slack: SlackSimulator, ws_name: str
) -> None:
    app = slack_app
    threads = seed_threads(slack)
    app.knowledge.create_workspace(ws_name)
    add_slack(app, ws_name, {"token": TOKEN})

    run = await app.sync_engine.sync(ws_name, "support")
    assert (run.status, run.documents, run.changed) == ("ok", 2, 2)
    top = app.knowledge.search(ws_name, "reset my password", k=1)[0]
    assert top.text.startswith("Question: How do I reset my password?")
    assert (
        "Answer: Use the *Forgot password* link on the sign-in page (https://acme.test/login)"
        in top.text
    )
    assert (
        top.url
        == f"https://acme.slack.com/archives/{CHANNEL}/p{threads['password'].replace('.', '')}"
    )
    refund = app.knowledge.search(ws_name, "환불 받는 방법", k=1)[0]
    assert "5일 안에 환불됩니다" in refund.text and "아무도" not in refund.text
    texts = " ".join(r.text for r in app.knowledge.search(ws_name, "invoices API down", k=5))
    assert "Invoices are under Billing" not in texts and "back" not in texts

    # A better answer is accepted in the refund thread; the password question is deleted.
    slack.seed_message(
        CHANNEL, "U9LEAD", "환불은 설정 > 결제에서 요청하면 3일 안에 처리됩니다.",
        thread_ts=threads["refund"],
        reactions=[{"name": "white_check_mark", "users": ["U1ASKER"], "count": 1}],
    )  # fmt: skip
    slack.delete_message(CHANNEL, threads["password"])
    slack.clear_calls()
    run = await app.sync_engine.sync(ws_name, "support")
    assert (run.changed, run.deleted) == (1, 1)
    assert [c.args["ts"] for c in slack.calls_to("conversations.replies")] == [threads["refund"]]
    refund = app.knowledge.search(ws_name, "환불 받는 방법", k=1)[0]
    assert "3일 안에 처리됩니다" in refund.text
    assert all("password" not in r.text for r in app.knowledge.search(ws_name, "password", k=5))
    assert app.sync_sources.info(ws_name, "support").documents == 1


async def test_expired_token_is_refreshed_and_stored_encrypted(
    slack_app: App, slack: SlackSimulator, ws_name: str
) -> None:
    app = slack_app
    seed_threads(slack)
    app.knowledge.create_workspace(ws_name)
    add_slack(
        app, ws_name,
        {"token": TOKEN, "refresh_token": "xoxe-1-refresh", "client_id": "1.2",
         "client_secret": "s"},
    )  # fmt: skip
    slack.add_refresh_token("xoxe-1-refresh", team_id="T0ACME", new_token="xoxe.xoxb-new")
    slack.expire(TOKEN)
    slack.rate_limit("conversations.replies", times=2, retry_after=1)

    run = await app.sync_engine.sync(ws_name, "support")
    assert (run.status, run.documents) == ("ok", 2)
    assert run.retries >= 2
    refresh = slack.calls_to("oauth.v2.access")
    assert len(refresh) == 1 and refresh[0].args["grant_type"] == "refresh_token"
    record = app.sync_sources.get(ws_name, "support")
    assert app.sync_sources.credentials(record)["token"] == "xoxe.xoxb-new"
    assert record.credentials_encrypted and "xoxe" not in record.credentials_encrypted
    assert slack.calls_to("conversations.history")[-1].token == "xoxe.xoxb-new"


async def test_a_revoked_token_fails_the_source_with_a_clear_error(
    slack_app: App, slack: SlackSimulator, ws_name: str
) -> None:
    app = slack_app
    app.knowledge.create_workspace(ws_name)
    add_slack(app, ws_name, {"token": TOKEN})
    slack.revoke(TOKEN)
    run = await app.sync_engine.sync(ws_name, "support")
    assert run.status == "failed"
    assert run.error is not None and "token_revoked" in run.error
    assert "--replace" in (app.sync_sources.info(ws_name, "support").last_error or "")


async def test_a_new_reply_queues_a_sync_of_that_thread_only(
    slack_app: App, slack: SlackSimulator, ws_name: str
) -> None:
    app = slack_app
    threads = seed_threads(slack)
    app.knowledge.create_workspace(ws_name)
    add_slack(app, ws_name, {"token": TOKEN})
    await app.sync_engine.sync(ws_name, "support")
    reply = slack.seed_message(
        CHANNEL, "U9LEAD", "앱에서도 설정 > 결제 > 환불 요청으로 바로 환불할 수 있습니다.",
        thread_ts=threads["refund"],
    )  # fmt: skip
    slack.clear_calls()
    queue = InProcessQueue(app.sync_engine)
    queued = await slack_thread_changed(
        app.sync_sources, queue, workspace=ws_name, channel=CHANNEL, thread_ts=reply["thread_ts"]
    )
    await queue.join()
    assert queued == ["support"]
    assert slack.calls_to("conversations.history") == []  # no channel scan
    assert [c.args["ts"] for c in slack.calls_to("conversations.replies")] == [threads["refund"]]
    run = app.sync_sources.runs(ws_name, "support")[0]
    assert (run.trigger, run.status, run.changed) == ("slack-event", "ok", 1)
    # No ✅ in that thread: the latest human answer is the answer now.
    top = app.knowledge.search(ws_name, "환불 받는 방법", k=1)[0]
    assert "앱에서도" in top.text
    assert app.sync_sources.info(ws_name, "support").documents == 2


def test_slack_markup_becomes_plain_text() -> None:
    assert clean_slack_text(
        "hi <@U123|maria> see <#C1|general> &amp; <https://x.test|docs> <!here>"
    ) == ("hi @maria see #general & docs (https://x.test) @here")
