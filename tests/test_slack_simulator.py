"""The Slack simulator, driven by the real ``slack_sdk`` clients.

Why these tests: the bot's Slack tests are only as trustworthy as the simulator they run
against. If the simulator accepted a request shape Slack rejects (or answered in a shape the SDK
cannot read), bot tests would pass and production would fail. So every behaviour here is checked
through the same clients the bot uses -- ``WebClient``, ``AsyncWebClient``, the aiohttp
``SocketModeClient`` and ``SignatureVerifier`` -- with real payloads from the shared fixtures.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from tests.servers.slack import (
    SlackSimulator,
    event_envelope,
    load_shared_fixture,
    signed_event_request,
)

TOKEN_A = "xoxb-team-a"
TOKEN_B = "xoxb-team-b"
APP_TOKEN = "xapp-1-test"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
APP_MENTION = "scenario_tests__test_app__app_mention_event_body__L334"
REACTION_ADDED = "scenario_tests__test_events__valid_reaction_added_body__L112"


@pytest.fixture
def sim() -> Iterator[SlackSimulator]:
    """A simulator with two workspaces: T111 in Enterprise Grid org E111, and T222 standalone."""
    with SlackSimulator() as simulator:
        simulator.add_workspace("T111", TOKEN_A, "W111", "B111", "E111", team_name="Acme Support")
        simulator.add_workspace("T222", TOKEN_B, "U222BOT", "B222", team_name="Globex")
        yield simulator


def client(sim: SlackSimulator, token: str = TOKEN_A, **kwargs: Any) -> WebClient:
    return WebClient(token=token, base_url=sim.base_url, **kwargs)


# --------------------------------------------------------------------------- Web API, sync


def test_auth_test_tells_workspaces_apart(sim: SlackSimulator) -> None:
    """Multi-tenant routing depends on auth.test: each token must map to its own team."""
    a = client(sim, TOKEN_A).auth_test()
    b = client(sim, TOKEN_B).auth_test()

    assert (a["team_id"], a["user_id"], a["bot_id"]) == ("T111", "W111", "B111")
    assert a["enterprise_id"] == "E111"
    assert a["url"] == "https://acme-support.slack.com/"
    assert a["team"] == "Acme Support"
    assert (b["team_id"], b["user_id"], b["bot_id"]) == ("T222", "U222BOT", "B222")
    assert "enterprise_id" not in b.data
    calls = sim.calls_to("auth.test")
    assert [c.token for c in calls] == [TOKEN_A, TOKEN_B]
    assert calls[0].headers["authorization"] == f"Bearer {TOKEN_A}"  # the SDK's header auth


def test_thread_reply_is_returned_by_replies_in_order(sim: SlackSimulator) -> None:
    """A bot answering in a thread must find its answer after the user's messages."""
    parent = sim.seed_message("C111", "W222", "How do I reset my password?", ts="1600000000.000100")
    sim.seed_message("C111", "W222", "It says 'expired'", thread_ts=parent["ts"])
    web = client(sim)

    posted = web.chat_postMessage(
        channel="C111",
        text="Go to Settings > Security.",
        thread_ts=parent["ts"],
        blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "Go to *Settings*"}}],
        unfurl_links=False,
    )

    assert posted["ts"] == "1700000000.000200"  # deterministic: the seeded reply took .000100
    assert posted["channel"] == "C111"
    assert posted["message"]["thread_ts"] == parent["ts"]
    assert (posted["message"]["user"], posted["message"]["bot_id"]) == ("W111", "B111")
    args = sim.calls_to("chat.postMessage")[0].args
    assert args["unfurl_links"] is False  # JSON body: types survive

    replies = web.conversations_replies(channel="C111", ts=parent["ts"])
    texts = [m["text"] for m in replies["messages"]]
    assert texts == [
        "How do I reset my password?",
        "It says 'expired'",
        "Go to Settings > Security.",
    ]
    assert replies["has_more"] is False
    assert replies["messages"][0]["reply_count"] == 2
    assert replies["messages"][2]["blocks"][0]["type"] == "section"

    first = web.conversations_replies(channel="C111", ts=parent["ts"], limit=2)
    assert first["has_more"] is True
    cursor = first["response_metadata"]["next_cursor"]
    rest = web.conversations_replies(channel="C111", ts=parent["ts"], limit=2, cursor=cursor)
    assert [m["ts"] for m in first["messages"] + rest["messages"]] == [
        m["ts"] for m in replies["messages"]
    ]
    assert sim.calls_to("conversations.replies")[1].args["limit"] == "2"  # form-encoded


def test_update_delete_react_and_lookups(sim: SlackSimulator) -> None:
    """The calls a support bot makes around one answer: edit it, react, look people up."""
    web = client(sim)
    ts = web.chat_postMessage(channel="C111", text="Thinking…")["ts"]

    updated = web.chat_update(channel="C111", ts=ts, text="Here is the answer.")
    assert updated["text"] == "Here is the answer."
    assert sim.message("C111", ts)["text"] == "Here is the answer."  # type: ignore[index]

    web.reactions_add(channel="C111", name="white_check_mark", timestamp=ts)
    with pytest.raises(SlackApiError) as again:
        web.reactions_add(channel="C111", name="white_check_mark", timestamp=ts)
    assert again.value.response["error"] == "already_reacted"

    seeded = sim.seed_message("C111", "W222", "a human message")
    with pytest.raises(SlackApiError) as foreign:
        web.chat_update(channel="C111", ts=seeded["ts"], text="hijack")
    assert foreign.value.response["error"] == "cant_update_message"

    assert web.users_info(user="W111")["user"]["is_bot"] is True
    assert web.users_info(user="W222")["user"]["is_bot"] is False
    assert web.bots_info(bot="B111")["bot"]["user_id"] == "W111"
    im = web.conversations_info(channel="D111")["channel"]
    assert (im["is_im"], im["is_channel"], im["is_private"]) == (True, False, False)

    web.chat_delete(channel="C111", ts=ts)
    assert sim.message("C111", ts) is None
    history = web.conversations_history(channel="C111")
    assert [m["text"] for m in history["messages"]] == ["a human message"]


def test_bad_tokens_raise_slack_api_error(sim: SlackSimulator) -> None:
    """The bot must see invalid and revoked tokens as the errors Slack names them by."""
    with pytest.raises(SlackApiError) as unknown:
        client(sim, "xoxb-nobody").auth_test()
    assert unknown.value.response["error"] == "invalid_auth"
    assert unknown.value.response.status_code == 200  # Slack reports errors with HTTP 200

    sim.revoke(TOKEN_B)
    with pytest.raises(SlackApiError) as revoked:
        client(sim, TOKEN_B).chat_postMessage(channel="C111", text="hi")
    assert revoked.value.response["error"] == "token_revoked"
    assert client(sim, TOKEN_A).auth_test()["ok"] is True  # the other tenant is unaffected

    with pytest.raises(SlackApiError) as unknown_method:
        client(sim).api_call("chat.frobnicate")
    assert unknown_method.value.response["error"] == "unknown_method"


def test_rate_limit_is_retried_after_retry_after(sim: SlackSimulator) -> None:
    """RateLimitErrorRetryHandler must wait Retry-After seconds, then succeed."""
    sim.rate_limit("chat.postMessage", times=1, retry_after=1)
    web = client(sim, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)])

    response = web.chat_postMessage(channel="C111", text="hello")

    assert response["ok"] is True
    first, second = sim.calls_to("chat.postMessage")
    assert (first.status, first.error, second.status) == (429, "ratelimited", 200)
    assert second.received_at - first.received_at >= 1.0
    assert len(sim.messages("C111")) == 1  # the rate-limited attempt had no effect


def test_rate_limit_without_handler_raises_with_header(sim: SlackSimulator) -> None:
    """Without a retry handler the 429 surfaces, with the header the bot may honour itself."""
    sim.rate_limit("chat.postMessage", times=1, retry_after=7)

    with pytest.raises(SlackApiError) as raised:
        client(sim).chat_postMessage(channel="C111", text="hello")

    response = raised.value.response
    assert response.status_code == 429
    assert response["error"] == "ratelimited"
    assert response.headers["Retry-After"] == "7"
    assert len(sim.calls_to("chat.postMessage")) == 1


def test_injected_failures_and_server_errors(sim: SlackSimulator) -> None:
    """fail() gives Slack-style errors (HTTP 200) and outages (5xx), one call each."""
    sim.fail("chat.postMessage", error="fatal_error")
    sim.fail("chat.postMessage", error="service_unavailable", status=503)
    web = client(sim)

    with pytest.raises(SlackApiError) as soft:
        web.chat_postMessage(channel="C111", text="1")
    with pytest.raises(SlackApiError) as outage:
        web.chat_postMessage(channel="C111", text="2")
    assert (soft.value.response.status_code, soft.value.response["error"]) == (200, "fatal_error")
    assert outage.value.response.status_code == 503
    assert web.chat_postMessage(channel="C111", text="3")["ok"] is True
    assert [m["text"] for m in sim.messages("C111")] == ["3"]


def test_oauth_install_registers_the_workspace(sim: SlackSimulator) -> None:
    """The OAuth exchange returns Slack's v2 shape and makes the new token usable, once."""
    sim.client_id, sim.client_secret = "111.222", "shh"
    sim.add_oauth_code(
        "code-1", team_id="T333", bot_token="xoxb-t333", bot_user_id="U333", bot_id="B333"
    )
    anonymous = WebClient(base_url=sim.base_url)

    install = anonymous.oauth_v2_access(client_id="111.222", client_secret="shh", code="code-1")

    assert install["access_token"] == "xoxb-t333"
    assert install["token_type"] == "bot"
    assert install["team"] == {"id": "T333", "name": "Workspace T333"}
    assert install["enterprise"] is None
    assert client(sim, "xoxb-t333").auth_test()["team_id"] == "T333"
    with pytest.raises(SlackApiError) as reused:
        anonymous.oauth_v2_access(client_id="111.222", client_secret="shh", code="code-1")
    assert reused.value.response["error"] == "code_already_used"
    with pytest.raises(SlackApiError) as wrong_secret:
        anonymous.oauth_v2_access(client_id="111.222", client_secret="nope", code="code-1")
    assert wrong_secret.value.response["error"] == "bad_client_secret"


# --------------------------------------------------------------------------- Web API, async


async def test_async_web_client(sim: SlackSimulator) -> None:
    """AsyncWebClient sends GET methods as query strings; the simulator must read those too."""
    sim.rate_limit("auth.test", times=1, retry_after=1)
    web = AsyncWebClient(
        token=TOKEN_B,
        base_url=sim.base_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )

    auth = await web.auth_test()
    posted = await web.chat_postMessage(channel="C222", text="async hello")
    replies = await web.conversations_replies(channel="C222", ts=posted["ts"])

    assert auth["team_id"] == "T222"
    first, second = await sim.async_wait_for("auth.test", count=2)
    assert (first.status, second.status) == (429, 200)
    assert second.received_at - first.received_at >= 1.0
    assert [m["text"] for m in replies["messages"]] == ["async hello"]
    replies_call = sim.calls_to("conversations.replies")[0]
    assert replies_call.http_method == "GET"
    assert replies_call.args == {"channel": "C222", "ts": posted["ts"]}

    with pytest.raises(SlackApiError) as bad:
        await AsyncWebClient(token="xoxb-bad", base_url=sim.base_url).auth_test()
    assert bad.value.response["error"] == "invalid_auth"


async def test_sync_waits_refuse_to_block_a_running_loop(sim: SlackSimulator) -> None:
    """A sync wait inside an async test would freeze the client it waits for: fail fast."""
    with pytest.raises(RuntimeError, match="async_wait_for"):
        sim.wait_for("chat.postMessage", timeout=5.0)


# --------------------------------------------------------------------------- Socket Mode


async def test_socket_mode_event_ack_and_reconnects(sim: SlackSimulator) -> None:
    """The real SocketModeClient connects, acks events, and survives refreshes and drops."""
    sim.add_app_token(APP_TOKEN, app_id="A111")
    requests: asyncio.Queue[SocketModeRequest] = asyncio.Queue()
    hellos: list[dict[str, Any]] = []

    async def on_request(client: AsyncBaseSocketModeClient, request: SocketModeRequest) -> None:
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))
        await requests.put(request)

    async def on_message(
        client: AsyncBaseSocketModeClient, message: dict[str, Any], raw: str | None
    ) -> None:
        if message.get("type") == "hello":
            hellos.append(message)

    socket_client = SocketModeClient(
        app_token=APP_TOKEN, web_client=AsyncWebClient(base_url=sim.base_url)
    )
    socket_client.socket_mode_request_listeners.append(on_request)
    socket_client.message_listeners.append(on_message)
    try:
        await socket_client.connect()
        await sim.async_wait_for_connections(1)
        open_call = sim.calls_to("apps.connections.open")[0]
        assert open_call.token == APP_TOKEN
        assert open_call.response["url"].startswith(sim.socket_url + "?ticket=")  # type: ignore[index]

        payload = load_shared_fixture(APP_MENTION)
        await sim.async_push_event(payload, envelope_id="env-1")
        request = await asyncio.wait_for(requests.get(), 5)
        assert (request.type, request.envelope_id) == ("events_api", "env-1")
        assert request.payload == payload
        assert (request.retry_attempt, request.retry_reason) == (0, "")
        ack = await sim.async_wait_for_ack("env-1")
        assert (ack.known, ack.connection_id, ack.payload) == (True, 1, None)
        assert hellos[0]["connection_info"] == {"app_id": "A111"}
        assert hellos[0]["num_connections"] == 1

        # Slack recycles the link: the client must fetch a new URL and reconnect.
        assert sim.send_disconnect("refresh_requested") == 1
        await sim.async_wait_for_connections(2)
        assert len(sim.calls_to("apps.connections.open")) == 2
        redelivered = load_shared_fixture(REACTION_ADDED)
        await sim.async_push_event(
            redelivered, envelope_id="env-2", retry_attempt=1, retry_reason="timeout"
        )
        request = await asyncio.wait_for(requests.get(), 5)
        assert (request.envelope_id, request.retry_attempt, request.retry_reason) == (
            "env-2",
            1,
            "timeout",
        )
        assert (await sim.async_wait_for_ack("env-2")).connection_id == 2

        # The link drops without notice: the client notices the close and reconnects too.
        assert sim.disconnect_all() == 1
        await sim.async_wait_for_connections(3)
        click = {"type": "block_actions", "actions": [{"action_id": "helpful", "value": "yes"}]}
        await sim.async_push_interactive(click, envelope_id="env-3")
        request = await asyncio.wait_for(requests.get(), 5)
        assert (request.type, request.payload) == ("interactive", click)
        assert (await sim.async_wait_for_ack("env-3")).connection_id == 3
        assert [e.envelope_id for e in sim.envelopes] == ["env-1", "env-2", "env-3"]
        assert [c.id for c in sim.connections if c.open] == [3]
    finally:
        await socket_client.close()


async def test_apps_connections_open_needs_an_app_token(sim: SlackSimulator) -> None:
    """A bot token cannot open a socket: Slack says not_allowed_token_type."""
    with pytest.raises(SlackApiError) as raised:
        await AsyncWebClient(base_url=sim.base_url).apps_connections_open(app_token=TOKEN_A)
    assert raised.value.response["error"] == "not_allowed_token_type"


# --------------------------------------------------------------------------- signed HTTP events


def test_signed_event_request_matches_signature_verifier() -> None:
    """The helper must sign exactly as Slack does, or request-URL tests prove nothing."""
    verifier = SignatureVerifier(SECRET)
    inner = load_shared_fixture(APP_MENTION)["event"]
    envelope = event_envelope(
        inner, team_id="T111", event_id="Ev111", enterprise_id="E111", bot_user_id="W111"
    )
    body, headers = signed_event_request(envelope, SECRET, retry_num=1, retry_reason="http_timeout")

    assert verifier.is_valid_request(body, headers)
    assert headers["Content-Type"] == "application/json"
    assert (headers["X-Slack-Retry-Num"], headers["X-Slack-Retry-Reason"]) == ("1", "http_timeout")
    assert envelope["event_time"] == 1595926230  # from the event's ts, so reproducible
    assert envelope["authorizations"][0]["user_id"] == "W111"

    tampered = body.replace(b"Hi there!", b"Hi there?")
    assert not verifier.is_valid_request(tampered, headers)
    old_body, old_headers = signed_event_request(envelope, SECRET, timestamp=int(time.time()) - 600)
    assert not verifier.is_valid_request(old_body, old_headers)
    assert not SignatureVerifier("other-secret").is_valid_request(body, headers)


def test_load_shared_fixture_explains_what_is_missing() -> None:
    """A missing fixture must say where it looked, not fail with a bare KeyError."""
    with pytest.raises(FileNotFoundError, match=r"no shared Slack fixture 'nope\.json'"):
        load_shared_fixture("nope")
