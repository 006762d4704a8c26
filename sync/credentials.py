"""Source credentials at rest: one Fernet-encrypted JSON object per source.

The approach of the Slack installation store (``bot/slack/installations.py``): a Fernet key
derived with HKDF from the installation's secret, under a context label of its own so the same
secret gives this use an independent key. A database dump alone cannot read a source's tokens.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sync.errors import CredentialsError

_KEY_CONTEXT = b"supportbot/sync-source-credentials/v1"


class CredentialCipher:
    """Encrypts a source's credentials (a JSON object) for the database."""

    def __init__(self, secret_key: bytes) -> None:
        if not secret_key:
            raise ValueError("the secret key is empty")
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_CONTEXT).derive(
            secret_key
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def encrypt(self, credentials: dict[str, Any]) -> str:
        payload = json.dumps(credentials, sort_keys=True).encode()
        return self._fernet.encrypt(payload).decode("ascii")

    def decrypt(self, token: str) -> dict[str, Any]:
        try:
            value = json.loads(self._fernet.decrypt(token.encode("ascii")))
        except (InvalidToken, UnicodeError, ValueError):
            raise CredentialsError(
                "cannot decrypt the source's stored credentials: SUPPORTBOT_SECRET_KEY changed "
                "since the source was added; restore the key or add the source's token again "
                "with `supportbot source add ... --replace`"
            ) from None
        if not isinstance(value, dict):
            raise CredentialsError("the source's stored credentials are not a JSON object")
        return value
