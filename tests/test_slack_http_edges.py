"""Malformed and unsigned requests to ``/slack/events`` get a 4xx, quietly.

The product's HTTP endpoint (bot.slack.http, what ``supportbot run --slack-http`` serves) in
front of the real bolt app, over real HTTP. Before, bolt parsed the body before checking the
signature: a non-JSON body, a JSON array or a non-numeric timestamp header was a 500 with a
logged traceback. Every request here must get its 4xx and leave no ERROR and no traceback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bot.slack.app import SlackBot, slack_web_client
from bot.slack.http import MAX_BODY_BYTES, events_asgi_app
from supportbot.app import App
from tests.asgi_server import serving
from tests.servers.slack import sign_request, signed_event_request

pytestmark = pytest.mark.slow  # each test serves the real bot over HTTP

SECRET = "edge-signing-secret"
# Unsigned cases only: a signed request takes the time it is signed at (a suite runs for
# longer than the five minutes a signature stays fresh).
NOW = str(int(time.time()))
WELL_FORMED_BUT_WRONG = "v0=" + "0" * 64


@pytest.fixture
async def events_url(app: App) -> AsyncIterator[str]:
    bot = SlackBot(
        app.conversations,
        client=slack_web_client(token="xoxb-edge", api_url="http://127.0.0.1:9/api/"),
        signing_secret=SECRET,
    )
    async with serving(events_asgi_app(bot.app, signing_secret=SECRET)) as base:
        yield f"{base}/slack/events"


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def assert_quiet(caplog: pytest.LogCaptureFixture) -> None:
    loud = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert loud == [], [f"{r.name}: {r.getMessage()}" for r in loud]
    assert "Traceback" not in caplog.text


def signed(raw: bytes, content_type: str = "application/json") -> dict[str, str]:
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": str(now := int(time.time())),
        "X-Slack-Signature": sign_request(raw, SECRET, now),
    }


async def post(url: str, content: Any, headers: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(url, content=content, headers=headers)


UNSIGNED = [
    pytest.param(
        b"not json at all", {"Content-Type": "application/json"}, id="non-json-no-headers"
    ),
    pytest.param(b"[1, 2, 3]", {"Content-Type": "application/json"}, id="json-array-no-headers"),
    pytest.param(
        b"payload=%7Bbroken",
        {"Content-Type": "application/x-www-form-urlencoded"},
        id="broken-form-payload-no-headers",
    ),
    pytest.param(
        b'{"type": "event_callback"}',
        {"X-Slack-Request-Timestamp": "not-a-number", "X-Slack-Signature": WELL_FORMED_BUT_WRONG},
        id="non-numeric-timestamp",
    ),
    pytest.param(
        b"[]",
        {"X-Slack-Request-Timestamp": "1e9", "X-Slack-Signature": WELL_FORMED_BUT_WRONG},
        id="float-timestamp-json-array",
    ),
    pytest.param(
        b"{}",
        {
            "X-Slack-Request-Timestamp": "١٧٠٠٠٠٠٠٠٠".encode(),
            "X-Slack-Signature": WELL_FORMED_BUT_WRONG,
        },
        id="non-ascii-digit-timestamp",
    ),
    pytest.param(
        b"{}", {"X-Slack-Request-Timestamp": "", "X-Slack-Signature": ""}, id="empty-headers"
    ),
    pytest.param(b"{}", {"X-Slack-Signature": WELL_FORMED_BUT_WRONG}, id="no-timestamp"),
    pytest.param(b"{}", {"X-Slack-Request-Timestamp": NOW}, id="no-signature"),
    pytest.param(
        b"{}",
        {"X-Slack-Request-Timestamp": NOW, "X-Slack-Signature": "v0=zz"},
        id="malformed-signature",
    ),
    pytest.param(
        b"not json",
        {"X-Slack-Request-Timestamp": NOW, "X-Slack-Signature": WELL_FORMED_BUT_WRONG},
        id="non-json-wrong-signature",
    ),
    pytest.param(
        b"\xff\xfe\x00junk",
        {"X-Slack-Request-Timestamp": NOW, "X-Slack-Signature": WELL_FORMED_BUT_WRONG},
        id="binary-wrong-signature",
    ),
]


@pytest.mark.parametrize(("body", "headers"), UNSIGNED)
async def test_unsigned_malformed_requests_get_401_quietly(
    events_url: str, all_logs: pytest.LogCaptureFixture, body: bytes, headers: dict[str, Any]
):
    response = await post(events_url, body, headers)

    assert response.status_code in (400, 401), response.text
    assert_quiet(all_logs)


SIGNED_MALFORMED = [
    pytest.param(b"not json at all", "application/json", id="non-json"),
    pytest.param(b"[1, 2, 3]", "application/json", id="json-array"),
    pytest.param(b"null", "application/json", id="json-null"),
    pytest.param(b'"a string"', "application/json", id="json-string"),
    pytest.param(b"payload=%7Bbroken", "application/x-www-form-urlencoded", id="broken-payload"),
    pytest.param(b"payload=%5B1%5D", "application/x-www-form-urlencoded", id="payload-array"),
    pytest.param(b"payload=1", "application/x-www-form-urlencoded", id="payload-number"),
    pytest.param(b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "application/json", id="deep"),
    pytest.param(b'\xef\xbb\xbf{"type": "url_verification"}', "application/json", id="bom"),
    # well-formed JSON, but not shaped as Slack sends it: bolt's middleware used to crash
    pytest.param(b'{"type": "event_callback", "event": "x"}', "application/json", id="event-str"),
    pytest.param(b'{"type": "event_callback", "event": {}}', "application/json", id="no-type"),
    pytest.param(
        b"payload=%7B%22type%22%3A%22block_actions%22%2C%22actions%22%3A%22x%22%7D",
        "application/x-www-form-urlencoded",
        id="actions-str",
    ),
    pytest.param(
        b"payload=%7B%22type%22%3A%22block_actions%22%2C%22actions%22%3A%5B%7B%7D%5D%7D",
        "application/x-www-form-urlencoded",
        id="action-without-id",
    ),
    pytest.param(
        b'{"type": "event_callback", "team": ["T1"], "event": {"type": "message"}}',
        "application/json",
        id="team-list",
    ),
    pytest.param(b"\xff\xfe\x00junk", "application/json", id="not-utf8"),
]


@pytest.mark.parametrize(("body", "content_type"), SIGNED_MALFORMED)
async def test_signed_but_malformed_bodies_get_400_quietly(
    events_url: str, all_logs: pytest.LogCaptureFixture, body: bytes, content_type: str
):
    response = await post(events_url, body, signed(body, content_type))

    assert response.status_code == 400, response.text
    assert_quiet(all_logs)


async def test_a_huge_body_is_refused_without_being_read(
    events_url: str, all_logs: pytest.LogCaptureFixture
):
    huge = b"[" + b"1," * MAX_BODY_BYTES + b"1]"
    declared = await post(events_url, huge, signed(b"{}"))

    async def stream() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        for _ in range(3):
            yield b" " * (MAX_BODY_BYTES // 2)

    chunked = await post(events_url, stream(), signed(b"{}"))

    assert declared.status_code == 413 and chunked.status_code == 413
    assert_quiet(all_logs)


async def test_a_stale_or_forged_signature_on_a_valid_event_gets_401(
    events_url: str, all_logs: pytest.LogCaptureFixture
):
    challenge = {"type": "url_verification", "challenge": "abc", "token": "t"}
    raw, stale = signed_event_request(challenge, SECRET, timestamp=int(time.time()) - 600)
    _, forged = signed_event_request(challenge, "another-secret")

    assert (await post(events_url, raw, stale)).status_code == 401
    assert (await post(events_url, raw, forged)).status_code == 401
    assert_quiet(all_logs)


async def test_a_signed_well_formed_request_still_reaches_bolt(events_url: str):
    raw, headers = signed_event_request(
        {"type": "url_verification", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7"},
        SECRET,
    )

    response = await post(events_url, raw, headers)

    assert response.status_code == 200
    assert response.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7"}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(b"ssl_check=1&token=x", "application/x-www-form-urlencoded", id="ssl-check"),
        pytest.param(b'{"type": "url_verification"}', "application/json", id="no-challenge"),
    ],
)
async def test_signed_checks_slack_sends_get_200_quietly(
    events_url: str, all_logs: pytest.LogCaptureFixture, body: bytes, content_type: str
):
    response = await post(events_url, body, signed(body, content_type))

    assert response.status_code == 200, response.text
    assert_quiet(all_logs)


async def test_duplicated_signature_headers_get_401_quietly(
    events_url: str, all_logs: pytest.LogCaptureFixture
):
    """A valid signature next to a wrong one, in either order: refused (the first value is the
    one checked, and bolt checks again with its own)."""
    body = b'{"type": "url_verification", "challenge": "x"}'
    fresh = signed(body)
    good = fresh["X-Slack-Signature"]
    for first, second in ((good, WELL_FORMED_BUT_WRONG), (WELL_FORMED_BUT_WRONG, good)):
        headers = [
            ("Content-Type", "application/json"),
            ("X-Slack-Request-Timestamp", fresh["X-Slack-Request-Timestamp"]),
            ("X-Slack-Request-Timestamp", "1"),
            ("X-Slack-Signature", first),
            ("X-Slack-Signature", second),
        ]
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(events_url, content=body, headers=headers)
        assert response.status_code == 401, response.text
    assert_quiet(all_logs)
