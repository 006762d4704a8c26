"""The HTTP endpoint of the Slack bot (``supportbot run --slack-http``), checked before bolt.

bolt's aiohttp adapter parses the body before it checks the signature, so anyone could make it
fail: a non-JSON body, a JSON array or a non-numeric ``X-Slack-Request-Timestamp`` ended in a
500 and a logged traceback. Here every request to the events path is checked in the order that
costs an attacker most and us least:

1. the signature headers are there and well formed (else 401, the body is not read);
2. the body is at most :data:`MAX_BODY_BYTES` (else 413) and is UTF-8 (else 400);
3. the signature and timestamp are valid for this body (else 401);
4. the body parses into the object Slack sends, with the envelope fields bolt's middleware
   reads (``event``, ``actions``, ``team``...) shaped as Slack sends them (else 400);

and only then does bolt see it. Rejections are logged at INFO, one line each, never with a
traceback.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.app.async_server import AsyncSlackAppServer
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier

logger = logging.getLogger(__name__)

# Slack's event and interaction payloads are a few kilobytes; a megabyte leaves ample room.
MAX_BODY_BYTES = 1024 * 1024
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")


def events_web_app(
    app: AsyncApp, *, signing_secret: str, path: str = "/slack/events"
) -> web.Application:
    """The aiohttp application serving ``path`` for ``app`` (and its OAuth pages, if any).

    ``signing_secret``: the app's Signing Secret (Basic Information), the same bolt checks.
    """
    verifier = SignatureVerifier(signing_secret)

    async def handle_events(request: web.Request) -> web.Response:
        problem = _header_problem(request.headers)
        if problem:
            return _reject(401, problem)
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return _reject(413, f"a body of {request.content_length} bytes")
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _reject(413, f"a body over {MAX_BODY_BYTES} bytes")
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            return _reject(400, "a body that is not UTF-8")
        if not verifier.is_valid(
            body,
            request.headers["X-Slack-Request-Timestamp"],
            request.headers["X-Slack-Signature"],
        ):
            return _reject(401, "an invalid or expired signature")
        try:
            bolt_request = AsyncBoltRequest(
                body=body,
                query=request.query_string,
                headers=request.headers,  # type: ignore[arg-type]
            )
        except Exception as e:  # whatever bolt's parser raises: the body is not Slack's
            return _reject(400, f"a malformed body ({type(e).__name__})")
        if not isinstance(bolt_request.body, dict) or not bolt_request.body:
            return _reject(400, "a body that is not a JSON object or form")
        problem = _shape_problem(bolt_request.body)
        if problem:
            return _reject(400, problem)
        response = await app.async_dispatch(bolt_request)
        return await to_aiohttp_response(response)

    web_app = web.Application(client_max_size=MAX_BODY_BYTES)
    routes = [web.post(path, handle_events)]
    flow = app.oauth_flow
    if flow is not None:  # bolt's own install and redirect pages, unchanged
        pages = AsyncSlackAppServer(port=0, path=path, app=app)
        routes += [
            web.get(flow.install_path, pages.handle_get_requests),
            web.get(flow.redirect_uri_path, pages.handle_get_requests),
        ]
    web_app.add_routes(routes)
    return web_app


def _header_problem(headers: Mapping[str, str]) -> str | None:
    """What is wrong with the signature headers (None: well formed, maybe still invalid)."""
    timestamp = headers.get("X-Slack-Request-Timestamp")
    signature = headers.get("X-Slack-Signature")
    if timestamp is None or signature is None:
        return "no signature headers"
    if not _TIMESTAMP.fullmatch(timestamp):
        return "a malformed X-Slack-Request-Timestamp"
    if not _SIGNATURE.fullmatch(signature):
        return "a malformed X-Slack-Signature"
    return None


_OBJECT_OR_ID = ("team", "user", "channel", "enterprise", "container", "view", "message")


def _shape_problem(body: Mapping[str, object]) -> str | None:
    """What is wrong with the envelope fields bolt's own middleware reads before any listener
    (None: as Slack sends them). A signed body with ``"event": "x"`` or ``"actions": "x"``
    otherwise ends in a 500 and a logged traceback inside bolt."""
    event = body.get("event")
    if "event" in body and not (isinstance(event, dict) and isinstance(event.get("type"), str)):
        return "an event that is not an object with a type"
    actions = body.get("actions")
    if "actions" in body and not (
        isinstance(actions, list)
        and all(isinstance(a, dict) and isinstance(a.get("action_id"), str) for a in actions)
    ):
        return "actions that are not a list of objects with an action_id"
    for key in _OBJECT_OR_ID:
        if body.get(key) is not None and not isinstance(body[key], dict | str):
            return f"a {key!r} field that is neither an object nor an id"
    return None


def _reject(status: int, reason: str) -> web.Response:
    logger.info("rejected a request to the Slack events endpoint: %s (%s)", reason, status)
    return web.json_response({"error": reason}, status=status)
