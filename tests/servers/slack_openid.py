"""Sign in with Slack (OpenID Connect) for the Slack simulator (tests/servers/slack.py).

What Slack serves for "Sign in with Slack", enough for a relying party's real client to go
through the whole flow against ``127.0.0.1``:

- ``GET /openid/connect/authorize``: Slack's authorize page. The simulator does not show a
  page: the person the browser is "signed into Slack as" (:meth:`SlackOpenId.sign_in_as`)
  consents at once, and the page redirects (302) to ``redirect_uri`` with a one-time ``code``
  and the ``state`` it was given; ``decline=True`` redirects with ``error=access_denied``.
  Checked as Slack does: ``response_type=code``, the app's ``client_id``, ``scope`` with
  ``openid``; a problem is a 400 page, never a redirect.
- ``openid.connect.token`` (Web API): the app's client id and secret (HTTP Basic, as slack_sdk
  sends them, or form fields), a code issued for this client and not used yet, and the same
  ``redirect_uri`` the authorize request named. Answers an ``access_token`` (``xoxp-``), and an
  ``id_token``: a JWT signed RS256 with the simulator's key, with Slack's claims (``iss``
  ``https://slack.com``, ``sub``, ``aud`` = client id, ``exp``, ``iat``, ``auth_time``,
  ``nonce``, ``https://slack.com/team_id``, ``https://slack.com/user_id``, ``email``,
  ``email_verified``, ``name``, ``locale``, ``https://slack.com/team_name``...).
- ``openid.connect.userInfo`` (Web API, the access token as Bearer): the same person's claims.
- ``GET /openid/connect/keys``: the JWKS with the public key the id_tokens are signed with.

Tests shape what comes back with :meth:`SlackOpenId.sign_in_as` (``claims`` overrides any
claim, e.g. another ``aud``; ``expires_in`` a negative number for an expired token;
``forged`` signs with a key Slack does not publish, under Slack's key id).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ISSUER = "https://slack.com"
AUTHORIZE_PATH = "/openid/connect/authorize"
KEYS_PATH = "/openid/connect/keys"
KEY_ID = "simulator-key-1"


@dataclass
class SlackPerson:
    """Who the browser is signed into Slack as: their id token's claims come from here."""

    user_id: str
    team_id: str
    email: str
    name: str
    team_name: str
    email_verified: bool = True
    expires_in: int = 300
    claims: dict[str, Any] = field(default_factory=dict)
    decline: bool = False
    forged: bool = False


class SlackOpenId:
    """The OpenID Connect provider half of the simulator (state is guarded by ``lock``)."""

    def __init__(self, lock: threading.RLock) -> None:
        self.lock = lock
        self.client_id: str | None = None
        self.client_secret: str | None = None
        self.person: SlackPerson | None = None
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._key_id = KEY_ID
        # Not published: what a forger signs with (``forged=True``), under Slack's key id.
        self._forger_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._codes: dict[str, dict[str, Any]] = {}
        self._used: set[str] = set()
        self._access_tokens: dict[str, dict[str, Any]] = {}
        self.authorize_requests: list[dict[str, str]] = []

    def sign_in_as(
        self,
        user_id: str,
        team_id: str,
        *,
        email: str,
        name: str | None = None,
        team_name: str | None = None,
        email_verified: bool = True,
        expires_in: int = 300,
        claims: dict[str, Any] | None = None,
        decline: bool = False,
        forged: bool = False,
    ) -> None:
        """The person who consents on the authorize page from now on (None: nobody)."""
        with self.lock:
            self.person = SlackPerson(
                user_id=user_id,
                team_id=team_id,
                email=email,
                name=name or email.split("@")[0],
                team_name=team_name or f"Workspace {team_id}",
                email_verified=email_verified,
                expires_in=expires_in,
                claims=dict(claims or {}),
                decline=decline,
                forged=forged,
            )

    # -- HTTP pages ---------------------------------------------------------------------------

    async def handle_authorize(self, request: web.Request) -> web.StreamResponse:
        query = dict(request.query)
        with self.lock:
            self.authorize_requests.append(query)
            person = self.person
            problem = self._authorize_problem(query)
            if problem is None and person is None:
                problem = "nobody is signed into Slack in this browser (sign_in_as)"
            if problem is not None:
                return web.Response(status=400, text=f"Sign in with Slack: {problem}")
            assert person is not None
            target = query["redirect_uri"]
            state = {"state": query["state"]} if "state" in query else {}
            if person.decline:
                params = {"error": "access_denied", **state}
            else:
                code = f"oidc-{secrets.token_hex(12)}"
                self._codes[code] = {
                    "client_id": query["client_id"],
                    "redirect_uri": target,
                    "nonce": query.get("nonce"),
                    "person": person,
                }
                params = {"code": code, **state}
        joiner = "&" if urlsplit(target).query else "?"
        raise web.HTTPFound(target + joiner + urlencode(params))

    def _authorize_problem(self, query: dict[str, str]) -> str | None:
        if query.get("response_type") != "code":
            return "response_type must be code"
        if self.client_id is None or query.get("client_id") != self.client_id:
            return "invalid client_id"
        if "openid" not in query.get("scope", "").replace(",", " ").split():
            return "the scope must include openid"
        target = query.get("redirect_uri", "")
        if urlsplit(target).scheme not in ("http", "https"):
            return "a redirect_uri is required"
        return None

    async def handle_keys(self, request: web.Request) -> web.StreamResponse:
        public = json.loads(RSAAlgorithm.to_jwk(self._key.public_key()))
        public.update({"kid": self._key_id, "alg": "RS256", "use": "sig"})
        return web.json_response({"keys": [public]})

    # -- Web API methods (called by the simulator with its lock held) --------------------------

    def token(self, args: dict[str, Any], client: tuple[str | None, str | None]) -> dict[str, Any]:
        """``openid.connect.token``: ``client`` is (client id, secret) as sent."""
        client_id, client_secret = client
        if self.client_id is None or client_id != self.client_id:
            return {"ok": False, "error": "invalid_client_id"}
        if client_secret != self.client_secret:
            return {"ok": False, "error": "bad_client_secret"}
        code = str(args.get("code") or "")
        if not code:
            return {"ok": False, "error": "invalid_code"}
        if code in self._used:
            return {"ok": False, "error": "code_already_used"}
        grant = self._codes.pop(code, None)
        if grant is None or grant["client_id"] != client_id:
            return {"ok": False, "error": "invalid_code"}
        self._used.add(code)
        if str(args.get("redirect_uri") or "") != grant["redirect_uri"]:
            return {"ok": False, "error": "bad_redirect_uri"}
        person: SlackPerson = grant["person"]
        access_token = f"xoxp-{person.team_id}-{person.user_id}-{secrets.token_hex(8)}"
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": person.user_id,
            "aud": client_id,
            "exp": now + person.expires_in,
            "iat": now,
            "auth_time": now,
            "at_hash": _at_hash(access_token),
            **self._profile(person),
        }
        if grant["nonce"] is not None:
            claims["nonce"] = grant["nonce"]
        claims.update(person.claims)
        self._access_tokens[access_token] = self._profile(person)
        key = self._forger_key if person.forged else self._key
        id_token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": self._key_id})
        return {
            "ok": True,
            "access_token": access_token,
            "token_type": "Bearer",
            "id_token": id_token,
        }

    def user_info(self, token: str | None) -> dict[str, Any]:
        """``openid.connect.userInfo`` for the access token ``token`` (Bearer)."""
        if not token:
            return {"ok": False, "error": "not_authed"}
        profile = self._access_tokens.get(token)
        if profile is None:
            return {"ok": False, "error": "invalid_auth"}
        return {"ok": True, **profile}

    @staticmethod
    def _profile(person: SlackPerson) -> dict[str, Any]:
        return {
            "sub": person.user_id,
            "https://slack.com/user_id": person.user_id,
            "https://slack.com/team_id": person.team_id,
            "https://slack.com/team_name": person.team_name,
            "https://slack.com/team_domain": person.team_name.lower().replace(" ", "-"),
            "email": person.email,
            "email_verified": person.email_verified,
            "name": person.name,
            "locale": "en-US",
        }


def _at_hash(access_token: str) -> str:
    """OpenID Connect's at_hash: the left half of SHA-256 of the token, base64url."""
    digest = hashlib.sha256(access_token.encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
