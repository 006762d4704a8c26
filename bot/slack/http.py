"""The HTTP endpoint of the Slack bot (``supportbot run --slack-http``), checked before bolt.

Starlette routes (ASGI), so that one server (uvicorn) serves them next to the web console on
the same port: :func:`events_routes`, or :func:`events_asgi_app` on their own.

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

from slack_bolt.adapter.starlette.async_handler import (
    AsyncSlackRequestHandler,
    to_starlette_response,
)
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

logger = logging.getLogger(__name__)

# Slack's event and interaction payloads are a few kilobytes; a megabyte leaves ample room.
MAX_BODY_BYTES = 1024 * 1024
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")


def events_routes(
    app: AsyncApp, *, signing_secret: str, path: str = "/slack/events"
) -> list[BaseRoute]:
    """The Starlette routes serving ``path`` for ``app`` (and its OAuth pages, if any).

    ``signing_secret``: the app's Signing Secret (Basic Information), the same bolt checks.
    Served by any ASGI server: ``supportbot run --slack-http`` runs them with the web console
    in one uvicorn server (:func:`supportbot.run.slack_http_app`).
    """
    verifier = SignatureVerifier(signing_secret)

    async def handle_events(request: Request) -> Response:
        problem = _header_problem(request.headers)
        if problem:
            return _reject(401, problem)
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return _reject(413, f"a body of {declared} bytes")
        raw = await _read_at_most(request, MAX_BODY_BYTES)
        if raw is None:
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
                query=request.url.query,
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
        return to_starlette_response(response)

    routes: list[BaseRoute] = [Route(path, handle_events, methods=["POST"])]
    flow = app.oauth_flow
    if flow is not None:  # bolt's own install and redirect pages, unchanged
        pages = AsyncSlackRequestHandler(app)
        routes += [
            Route(flow.install_path, pages.handle, methods=["GET"]),
            Route(flow.redirect_uri_path, pages.handle, methods=["GET"]),
        ]
    return routes


def events_asgi_app(
    app: AsyncApp, *, signing_secret: str, path: str = "/slack/events"
) -> Starlette:
    """:func:`events_routes` as an ASGI application of their own."""
    return Starlette(routes=events_routes(app, signing_secret=signing_secret, path=path))


async def _read_at_most(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it grows past ``limit`` (a chunked body has no length
    to refuse up front: it is not read further)."""
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
    except ClientDisconnect:
        return b""
    return b"".join(chunks)


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


def _reject(status: int, reason: str) -> Response:
    logger.info("rejected a request to the Slack events endpoint: %s (%s)", reason, status)
    return JSONResponse({"error": reason}, status_code=status)
