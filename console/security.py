"""CSRF protection for every unsafe request, and the response headers every page carries.

Double-submit, signed: each browser gets a random ``supportbot_csrf`` cookie (HTTP-only), and
a form or htmx request must send ``HMAC(key, cookie)`` back, as the ``csrf_token`` form field
or the ``X-CSRF-Token`` header. Another site can make the browser send the cookie but can
neither read it nor compute the token; a subdomain that plants its own cookie still cannot
sign it. The check runs here, for every POST/PUT/PATCH/DELETE, before any route: a route
cannot forget it. The body of every unsafe request is read once, at most
:data:`MAX_FORM_BYTES` (a bigger one is refused with 413 before any route sees it), and replayed
to the route.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from http.cookies import SimpleCookie

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSRF_COOKIE = "supportbot_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
# The console's biggest form (a 20,000-character answer, percent-encoded) is far below this.
MAX_FORM_BYTES = 1024 * 1024
TOO_LARGE = "The form is too large (more than 1 MB): shorten what you entered and try again."
INSECURE_HTTP = (
    "Sign-in cannot work here: this page came over plain HTTP, so the browser drops the "
    "console's Secure cookies. Open the console over HTTPS (behind a TLS proxy) or at "
    "http://localhost, or set CONSOLE_SECURE_COOKIES=false on the server (trusted networks only)."
)
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}


def csrf_token(key: bytes, cookie_value: str) -> str:
    return hmac.new(key, b"csrf:" + cookie_value.encode(), hashlib.sha256).hexdigest()


def cookie_value(scope: Scope, name: str) -> str | None:
    for header, value in scope.get("headers", []):
        if header == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed Cookie header: as if absent
                continue
            if name in jar:
                return jar[name].value
    return None


class CsrfMiddleware:
    """Refuses unsafe requests without a valid token (403) and gives each browser its cookie.

    ``scope["console.csrf_token"]`` is the token for this browser, for templates.
    """

    def __init__(self, app: ASGIApp, *, key: bytes, secure: bool) -> None:
        self.app = app
        self.key = key
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        value = cookie_value(scope, CSRF_COOKIE)
        new_cookie = value is None or len(value) != 43
        if new_cookie:
            value = secrets.token_urlsafe(32)
        assert value is not None
        expected = csrf_token(self.key, value)
        scope["console.csrf_token"] = expected
        if scope["method"] in _UNSAFE:
            sender = self._sender(send, value if new_cookie else None)
            body = await _read_body(scope, receive)
            if body is None:
                await PlainTextResponse(TOO_LARGE, status_code=413)(scope, receive, sender)
                return
            ok = not new_cookie and await self._submitted_ok(scope, body, expected)
            if not ok:
                response = PlainTextResponse(
                    INSECURE_HTTP
                    if new_cookie and self.secure and _cookies_dropped(scope)
                    else "The form expired or did not come from this console (CSRF check): "
                    "reload the page and try again.",
                    status_code=403,
                )
                await response(scope, receive, sender)
                return
            receive = _replay(body, receive)  # handed on as it came
        await self.app(scope, receive, self._sender(send, value if new_cookie else None))

    async def _submitted_ok(self, scope: Scope, body: bytes, expected: str) -> bool:
        """Whether the token sent (header, else form field) is right."""
        for header, raw in scope.get("headers", []):
            if header == b"x-csrf-token":
                return hmac.compare_digest(raw.decode("latin-1"), expected)
        try:
            form = await Request(scope, _replay(body)).form()
        except Exception:  # not a form at all
            return False
        submitted = form.get(CSRF_FIELD)
        await form.close()
        return isinstance(submitted, str) and hmac.compare_digest(submitted, expected)

    def _sender(self, send: Send, new_value: str | None) -> Send:
        async def sender(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, header_value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = header_value
                if new_value is not None:
                    flags = "; Path=/; HttpOnly; SameSite=Lax" + ("; Secure" if self.secure else "")
                    headers.append("set-cookie", f"{CSRF_COOKIE}={new_value}{flags}")
            await send(message)

        return sender


def _cookies_dropped(scope: Scope) -> bool:
    """Whether browsers drop ``Secure`` cookies of this request's page: plain HTTP to a host
    other than localhost (browsers keep them only over HTTPS and on localhost). Without this,
    signing in over plain HTTP from another machine fails with a CSRF message that reloading
    never cures."""
    if scope.get("scheme") != "http":
        return False
    host = Request(scope).url.hostname or ""
    return host.strip("[]") not in _LOOPBACK and not host.endswith(".localhost")


async def _read_body(scope: Scope, receive: Receive) -> bytes | None:
    """The whole body, or None when it is (or says it is) over :data:`MAX_FORM_BYTES`; empty
    when the client left mid-body (nobody is there to read the answer)."""
    for header, raw in scope.get("headers", []):
        if header == b"content-length" and raw.strip().isdigit() and int(raw) > MAX_FORM_BYTES:
            return None
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return None
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def _replay(body: bytes, then: Receive | None = None) -> Receive:
    """A receive that hands over ``body`` once, then waits on ``then`` (the client's own,
    for its disconnect: a streamed download must not be cut short)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive
