"""Secrets never reach a log line, at any level.

The SDKs log more than they should at DEBUG: slack_sdk logs the body of ``oauth.v2.access``
(with the new bot token), HTTP clients log headers. :class:`SecretRedactor` is a logging
filter that rewrites every record passing through a handler: the configured secrets by value,
and whatever looks like a token by pattern (tokens learned at run time, such as an installed
workspace's bot token or a Notion source's token, are in no setting). Installed on the
handlers, not on loggers: a logger's filter sees only records logged on that very logger, not
those of its children (``slack_sdk.web.base_client``), while a handler sees every record it
writes.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable

REDACTED = "[redacted]"
# Secrets shorter than this are not replaced by value (a 3-letter "key" would blank out words).
MIN_SECRET_LENGTH = 6

# Loggers of the libraries that see credentials; their own handlers (if any) get the filter too.
SDK_LOGGERS = (
    "slack_sdk",
    "slack_bolt",
    "discord",
    "httpx",
    "httpcore",
    "notion_client",
    "weaviate",
    "weaviate-client",
    "aiohttp",
    "openai",
)

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Slack: bot, user, app, refresh, rotated (xoxe.xoxb-) and config tokens.
    (re.compile(r"\bxox[a-z](?:\.xox[a-z])?-[A-Za-z0-9-]{6,}"), REDACTED),
    (re.compile(r"\bxapp-[A-Za-z0-9-]{6,}"), REDACTED),
    # Discord bot token: base64 user id . timestamp . HMAC.
    (re.compile(r"\b[A-Za-z0-9_-]{23,30}\.[A-Za-z0-9_-]{5,7}\.[A-Za-z0-9_-]{25,}"), REDACTED),
    # Notion integration tokens (old and new prefixes), OpenAI-style keys.
    (re.compile(r"\b(?:secret_|ntn_)[A-Za-z0-9]{10,}"), REDACTED),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), REDACTED),
    # Authorization headers (any scheme), and bearer tokens wherever they are written.
    (
        re.compile(
            r"(?i)([\"']?\bauthorization[\"']?\s*[:=]\s*[\"']?)(?:(?:bearer|bot|basic)\s+)?"
            r"[^\"'\s,{}\[\]]+"
        ),
        rf"\1{REDACTED}",
    ),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{6,}"), rf"\1{REDACTED}"),
    # A password in a URL's user info (DATABASE_URL, a proxy in LLM_BASE_URL...).
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/?#@]*:)[^\s/?#@]+(@)"), rf"\1{REDACTED}\2"),
    # "token": "…", access_token=…, client_secret: …, api-key: … (JSON, repr, form, headers).
    (
        re.compile(
            r"(?i)([\"']?\b[a-z_-]*(?:token|secret|secret_key|password|api[_-]?key)"
            r"[\"']?\s*[:=]\s*[\"']?)([^\"'\s,&{}\[\]]{6,})"
        ),
        rf"\1{REDACTED}",
    ),
]


class SecretRedactor(logging.Filter):
    """Rewrites each record's message, traceback and stack so no secret is left in them.

    ``secrets``: values to replace wherever they appear (the configured tokens and keys);
    more can be added later with :meth:`add` (e.g. a credential decrypted at run time).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: list[str] = []
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        """Also replace ``secret`` (ignored when shorter than :data:`MIN_SECRET_LENGTH`)."""
        secret = secret.strip()
        if len(secret) < MIN_SECRET_LENGTH:
            return
        with self._lock:
            if secret not in self._secrets:
                # Longest first, so a secret containing another is replaced whole.
                self._secrets = sorted([*self._secrets, secret], key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: logging would report it; keep it safe
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def install_redaction(secrets: Iterable[str] = ()) -> SecretRedactor:
    """Put one :class:`SecretRedactor` on every handler of the root logger and the SDKs.

    Call after the handlers are configured (``logging.basicConfig``); returns the filter, so
    a secret learned later can be added. Installing twice replaces the earlier filter.
    """
    redactor = SecretRedactor(secrets)
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in SDK_LOGGERS)]
    for logger in loggers:
        for handler in logger.handlers:
            for old in [f for f in handler.filters if isinstance(f, SecretRedactor)]:
                handler.removeFilter(old)
            handler.addFilter(redactor)
    return redactor
