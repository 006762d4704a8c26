"""Scrubbing personal data and secrets out of exported text.

Support conversations carry what people paste: their e-mail address, a phone number, an API
key, a mention of a colleague. None of that belongs in a training set, which may leave the
company. Each kind is replaced by a placeholder that keeps the sentence readable ("mail
[EMAIL]"), so the model still learns that an address went there. The patterns are listed in
the export's manifest.

Order matters: secrets first (a Bearer token or an e-mail-like key must not be half-replaced),
then e-mail addresses, mentions, and phone numbers last (digits inside a secret are gone by
then).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    placeholder: str
    pattern: re.Pattern[str]


def _rule(name: str, placeholder: str, pattern: str, flags: int = 0) -> Rule:
    return Rule(name, placeholder, re.compile(pattern, flags))


RULES: tuple[Rule, ...] = (
    # --- secrets ---------------------------------------------------------------------------
    _rule("private_key", "[SECRET]", r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),  # noqa: E501
    _rule("bearer_token", "Bearer [SECRET]", r"\bBearer\s+[A-Za-z0-9._~+/=-]{8,}", re.I),
    _rule("slack_token", "[SECRET]", r"\bx(?:ox[abposre]|app)-[A-Za-z0-9-]{8,}"),
    _rule("openai_key", "[SECRET]", r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{16,}"),
    _rule("github_token", "[SECRET]", r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})"),  # noqa: E501
    _rule("aws_access_key", "[SECRET]", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    _rule("google_api_key", "[SECRET]", r"\bAIza[0-9A-Za-z_-]{35}"),
    _rule("jwt", "[SECRET]", r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    # "password: hunter2!" and "token=abc123": a value with a digit or symbol after the name.
    _rule("secret_assignment", r"\1[SECRET]", r"\b((?:api[_-]?key|secret|token|password|passwd|비밀번호)\s*[:=]\s*)[\"']?(?=[^\s\"']*[\d!#$%^&*])[^\s\"']{6,}[\"']?", re.I),  # noqa: E501
    # Long random-looking strings: 32+ hex digits, or 40+ base64 characters mixing cases and
    # digits (words and ordinary identifiers never do both at that length).
    _rule("hex_secret", "[SECRET]", r"\b[0-9a-fA-F]{32,}\b"),
    _rule("base64_secret", "[SECRET]", r"(?<![A-Za-z0-9+/_-])(?=[A-Za-z0-9+/_-]*[0-9])(?=[A-Za-z0-9+/_-]*[a-z])(?=[A-Za-z0-9+/_-]*[A-Z])[A-Za-z0-9+/_-]{40,}={0,2}"),  # noqa: E501
    # --- people ------------------------------------------------------------------------------
    # Internationalised addresses too (\w is Unicode: help@회사.com).
    _rule("email", "[EMAIL]", r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}"),
    # Slack <@U123|name>, <@W123>, user groups <!subteam^S123|@team>; Discord <@123>, <@!123>,
    # roles <@&123>.
    _rule("platform_mention", "[USER]", r"<@[!&]?[A-Za-z0-9]+(?:\|[^>]*)?>|<!subteam\^[A-Za-z0-9]+(?:\|[^>]*)?>"),  # noqa: E501
    _rule("at_mention", "[USER]", r"(?<![\w.@/])@[\w][\w.-]{1,31}(?<![.-])"),
    # --- phone numbers -----------------------------------------------------------------------
    # Korean mobile (010-1234-5678, 01012345678, +82 10-1234-5678) and landline (02-123-4567,
    # 031-1234-5678) numbers; international numbers written with +; North American numbers.
    _rule("phone_kr", "[PHONE]", r"(?<![\d-])(?:\+82[-.\s]?|0)(?:1[016789]|2|[3-6][1-5]|70)[-.\s)]?\d{3,4}[-.\s]?\d{4}(?![\d-])"),  # noqa: E501
    _rule("phone_international", "[PHONE]", r"(?<![\w+])\+\d{1,3}(?:[-.\s]?\(?\d{1,4}\)?){2,5}(?!\d)"),  # noqa: E501
    _rule("phone_nanp", "[PHONE]", r"(?<![\d-])\(?\d{3}\)?[-.\s]\d{3}[-.\s]\d{4}(?![\d-])"),
)  # fmt: skip


class Scrubber:
    """Replaces every match of its rules; ``enabled=False`` passes text through unchanged."""

    def __init__(self, *, enabled: bool = True, rules: tuple[Rule, ...] = RULES) -> None:
        self.enabled = enabled
        self._rules = rules

    def __call__(self, text: str) -> str:
        if not self.enabled:
            return text
        for rule in self._rules:
            text = rule.pattern.sub(rule.placeholder, text)
        return text

    def describe(self) -> dict[str, object]:
        """The rules as the manifest records them."""
        return {
            "enabled": self.enabled,
            "rules": [
                {"name": r.name, "placeholder": r.placeholder, "pattern": r.pattern.pattern}
                for r in self._rules
            ]
            if self.enabled
            else [],
        }
