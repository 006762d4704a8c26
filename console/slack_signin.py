"""Sign in with Slack (OpenID Connect): the state, the code exchange and the id_token checks.

The flow (console/pages/auth.py serves the two URLs):

1. ``/login/slack`` redirects to Slack's authorize page (``/openid/connect/authorize`` on the
   host of ``SLACK_API_URL``: https://slack.com in production) with ``scope=openid email
   profile``, a ``state`` and a ``nonce``. The state is signed with the console's key and bound
   to this browser (its CSRF token, itself tied to an HTTP-only cookie), carries the page to
   return to and the time it was made; the nonce is derived from the state, so neither needs
   storing on the server.
2. Slack sends the person back to ``/login/slack/callback?code=…&state=…``. The state must be
   this browser's, signed by us and at most :data:`STATE_TTL_S` old; the code is exchanged with
   ``openid.connect.token`` (slack_sdk, client id and secret); Slack answers each code once.
3. The ``id_token`` is verified: its RS256 signature against Slack's published keys (the JWKS
   at ``/openid/connect/keys``, fetched once and cached), ``iss`` = ``https://slack.com``,
   ``aud`` = our client id, ``exp``/``iat`` (60 s leeway), our ``nonce``, and the
   ``https://slack.com/team_id`` claim. The signature check is what OpenID Connect asks of a
   relying party; the token comes straight from Slack's token endpoint over TLS, which the
   standard also accepts in its place (Core §3.1.3.7), but the keys are one more request to
   the host we already talk to, so we check both.

Errors are :class:`SlackSignInError`, whose message is one line for the person signing in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urljoin

import aiohttp
import jwt
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from starlette.concurrency import run_in_threadpool

from console.errors import ConsoleError

ISSUER = "https://slack.com"
SCOPE = "openid email profile"
TEAM_CLAIM = "https://slack.com/team_id"
# How long a person may take on Slack's page, between /login/slack and the callback.
STATE_TTL_S = 600
LEEWAY_S = 60
_TIMEOUT_S = 15


class SlackSignInError(ConsoleError):
    """Sign in with Slack failed; the message is one line for the person (English: the page
    translates it). ``attack`` marks failures an honest browser does not cause (a forged or
    stale state, a bad token): those count toward the failed sign-in limit."""

    def __init__(self, message: str, *, attack: bool = False) -> None:
        super().__init__(message)
        self.attack = attack


@dataclass(frozen=True, slots=True)
class SlackIdentity:
    """Who signed in: their Slack user id (``sub``), team id, email and name."""

    user_id: str
    team_id: str
    email: str
    email_verified: bool
    name: str


class SlackSignIn:
    """Sign in with Slack for the app ``client_id`` / ``client_secret``.

    ``api_url``: Slack's Web API base (``SLACK_API_URL``, ``https://slack.com/api/``); the
    authorize page and the keys are on the same host. ``key``: the console's signing key.
    """

    def __init__(self, *, client_id: str, client_secret: str, api_url: str, key: bytes) -> None:
        self.client_id = client_id
        self._client_secret = client_secret
        self.api_url = api_url if api_url.endswith("/") else api_url + "/"
        self._key = key
        self.authorize_endpoint = urljoin(self.api_url, "/openid/connect/authorize")
        self._jwks = jwt.PyJWKClient(
            urljoin(self.api_url, "/openid/connect/keys"), cache_keys=True, timeout=_TIMEOUT_S
        )

    # --- 1. the way out -------------------------------------------------------------------------
    def authorize_url(self, *, browser: str, next_path: str, redirect_uri: str) -> str:
        """Slack's authorize URL for this browser (``browser``: its CSRF token)."""
        state = self.new_state(browser=browser, next_path=next_path)
        query = {
            "response_type": "code",
            "scope": SCOPE,
            "client_id": self.client_id,
            "state": state,
            "nonce": self.nonce_for(state),
            "redirect_uri": redirect_uri,
        }
        return f"{self.authorize_endpoint}?{urlencode(query)}"

    def new_state(self, *, browser: str, next_path: str, now: float | None = None) -> str:
        payload = json.dumps(
            {"t": int(time.time() if now is None else now), "n": next_path}, separators=(",", ":")
        )
        body = base64.urlsafe_b64encode(payload.encode()).rstrip(b"=").decode()
        return f"{body}.{self._mac('state', body, browser)}"

    def nonce_for(self, state: str) -> str:
        return self._mac("nonce", state)

    def _mac(self, purpose: str, *parts: str) -> str:
        message = "\n".join((f"slack-signin-{purpose}", *parts)).encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    # --- 2. the way back ------------------------------------------------------------------------
    def check_state(self, state: str, *, browser: str, now: float | None = None) -> str:
        """The page to return to, once ``state`` is this browser's, ours and fresh."""
        body, _, mac = state.partition(".")
        if not body or not hmac.compare_digest(mac, self._mac("state", body, browser)):
            raise SlackSignInError(
                "The Slack sign-in did not start in this browser: sign in again.", attack=True
            )
        try:
            payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            issued, next_path = int(payload["t"]), str(payload["n"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise SlackSignInError("The Slack sign-in is malformed.", attack=True) from None
        age = (time.time() if now is None else now) - issued
        if not 0 <= age <= STATE_TTL_S:
            raise SlackSignInError("The Slack sign-in took too long: sign in again.")
        return next_path

    async def identity(self, *, code: str, redirect_uri: str, state: str) -> SlackIdentity:
        """Exchange ``code`` and verify the id_token (its nonce must be ``state``'s)."""
        client = AsyncWebClient(base_url=self.api_url, timeout=_TIMEOUT_S)
        try:
            answer = await client.openid_connect_token(
                client_id=self.client_id,
                client_secret=self._client_secret,
                code=code,
                redirect_uri=redirect_uri,
                grant_type="authorization_code",
            )
        except SlackApiError as e:
            error = e.response.get("error", "unknown") if e.response is not None else "unknown"
            raise SlackSignInError(
                f"Slack refused the sign-in ({error}): sign in again.", attack=True
            ) from None
        except (TimeoutError, aiohttp.ClientError, OSError):
            raise SlackSignInError("Slack could not be reached: try again in a moment.") from None
        id_token = answer.get("id_token")
        if not isinstance(id_token, str):
            raise SlackSignInError("Slack's answer had no id_token.", attack=True)
        claims = await run_in_threadpool(self.verified_claims, id_token, self.nonce_for(state))
        return _identity_of(claims)

    def verified_claims(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The id_token's claims once its signature, issuer, audience, times and nonce hold."""
        try:
            signing_key = self._jwks.get_signing_key_from_jwt(id_token)
        except jwt.PyJWKClientConnectionError:
            raise SlackSignInError(
                "Slack's signing keys could not be fetched: try again."
            ) from None
        except (jwt.PyJWKClientError, jwt.InvalidTokenError):
            raise SlackSignInError(
                "Slack's id_token is not signed with Slack's keys.", attack=True
            ) from None
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                signing_key.key,
                algorithms=["RS256"],
                audience=self.client_id,
                issuer=ISSUER,
                leeway=LEEWAY_S,
                options={"require": ["iss", "aud", "exp", "iat", "sub", "nonce", TEAM_CLAIM]},
            )
        except jwt.ExpiredSignatureError:
            raise SlackSignInError("The Slack sign-in expired: sign in again.") from None
        except jwt.InvalidTokenError as e:
            raise SlackSignInError(
                f"Slack's id_token was refused ({_reason(e)}).", attack=True
            ) from None
        if not hmac.compare_digest(str(claims["nonce"]), nonce):
            raise SlackSignInError("Slack's id_token was refused (wrong nonce).", attack=True)
        return claims


def _reason(error: jwt.InvalidTokenError) -> str:
    names = {
        jwt.InvalidAudienceError: "issued to another app",
        jwt.InvalidIssuerError: "not issued by Slack",
        jwt.ImmatureSignatureError: "issued in the future",
        jwt.MissingRequiredClaimError: "a claim is missing",
        jwt.InvalidSignatureError: "bad signature",
    }
    for kind, reason in names.items():
        if isinstance(error, kind):
            return reason
    return "malformed"


def _identity_of(claims: dict[str, Any]) -> SlackIdentity:
    user_id, team_id, email = claims.get("sub"), claims.get(TEAM_CLAIM), claims.get("email")
    if not (isinstance(user_id, str) and isinstance(team_id, str) and user_id and team_id):
        raise SlackSignInError("Slack's id_token names no user or team.", attack=True)
    if not isinstance(email, str) or "@" not in email:
        raise SlackSignInError(
            "Slack did not share your email address: the app needs the email scope."
        )
    name = claims.get("name")
    return SlackIdentity(
        user_id=user_id,
        team_id=team_id,
        email=email,
        email_verified=claims.get("email_verified") is True,
        name=name if isinstance(name, str) else email,
    )
