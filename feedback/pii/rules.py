"""The default rules, in priority order: where two rules' spans overlap, the earlier rule's
span wins (a Bearer token or an e-mail-like key is not half-replaced by a later rule; the
digits of a resident registration number are not taken for a phone number).

Patterns run on NFKC-normalised text (full-width ０１０ reads as 010), so they use ``[0-9]``
for digits.
"""

from __future__ import annotations

import re

from feedback.pii import numbers
from feedback.pii.rule import Rule, rule

RULES: tuple[Rule, ...] = (
    # --- secrets ---------------------------------------------------------------------------
    rule("private_key", "secret", "[SECRET]", r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),  # noqa: E501
    rule("bearer_token", "secret", "[SECRET]", r"\bBearer\s+(?P<pii>[A-Za-z0-9._~+/=-]{8,})", re.I),
    rule("slack_token", "secret", "[SECRET]", r"\bx(?:ox[abposre]|app)-[A-Za-z0-9-]{8,}"),
    rule("openai_key", "secret", "[SECRET]", r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{16,}"),
    rule("github_token", "secret", "[SECRET]", r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})"),  # noqa: E501
    rule("aws_access_key", "secret", "[SECRET]", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    rule("google_api_key", "secret", "[SECRET]", r"\bAIza[0-9A-Za-z_-]{35}"),
    rule("jwt", "secret", "[SECRET]", r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),  # noqa: E501
    # "password: hunter2!" and "token=abc123": a value with a digit or symbol after the name.
    rule("secret_assignment", "secret", "[SECRET]", r"\b(?:api[_-]?key|secret|token|password|passwd|비밀번호)\s*[:=]\s*(?P<pii>[\"']?(?=[^\s\"']*[0-9!#$%^&*])[^\s\"']{6,}[\"']?)", re.I),  # noqa: E501
    # Long random-looking strings: 32+ hex digits, or 40+ base64 characters mixing cases and
    # digits (words and ordinary identifiers never do both at that length).
    rule("hex_secret", "secret", "[SECRET]", r"\b[0-9a-fA-F]{32,}\b"),
    rule("base64_secret", "secret", "[SECRET]", r"(?<![A-Za-z0-9+/_-])(?=[A-Za-z0-9+/_-]*[0-9])(?=[A-Za-z0-9+/_-]*[a-z])(?=[A-Za-z0-9+/_-]*[A-Z])[A-Za-z0-9+/_-]{40,}={0,2}"),  # noqa: E501
    # --- people ------------------------------------------------------------------------------
    # Internationalised addresses too (\w is Unicode: help@회사.com).
    rule("email", "email", "[EMAIL]", r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}"),
    # Slack <@U123|name>, <@W123>, user groups <!subteam^S123|@team>; Discord <@123>, <@!123>,
    # roles <@&123>.
    rule("platform_mention", "user", "[USER]", r"<@[!&]?[A-Za-z0-9]+(?:\|[^>]*)?>|<!subteam\^[A-Za-z0-9]+(?:\|[^>]*)?>"),  # noqa: E501
    rule("at_mention", "user", "[USER]", r"(?<![\w.@/])@[\w][\w.-]{1,31}(?<![.-])"),
    # --- identity, card and account numbers (see feedback.pii.numbers) -------------------------
    rule("kr_resident_registration", "rrn", "[RRN]", numbers.DIGIT_RUN,
         check=numbers.resident_numbers,
         checked="YYMMDD-GNNNNNN: a real birth date and gender digit 1-4; 13 bare digits need "
                 "the stdnum.kr.rrn check digit or an identity keyword before them"),
    rule("kr_foreigner_registration", "frn", "[FRN]", numbers.DIGIT_RUN,
         check=numbers.foreigner_numbers,
         checked="as kr_resident_registration, gender digit 5-8"),
    rule("kr_resident_registration_halves", "rrn", "[RRN]", numbers.HALVES,
         check=numbers.resident_halves,
         checked="front and back written apart (앞자리 900101 뒷자리 1234567) after an "
                 "identity keyword"),
    rule("kr_foreigner_registration_halves", "frn", "[FRN]", numbers.HALVES,
         check=numbers.foreigner_halves, checked="as kr_resident_registration_halves"),
    rule("card_number", "card", "[CARD]", numbers.DIGIT_RUN, check=numbers.card_numbers,
         checked="13-19 digits in consistently separated groups, Luhn-valid (stdnum.luhn), "
                 "an issuer prefix, not after an order/tracking keyword"),
    rule("iban", "account", "[ACCOUNT]", numbers.IBAN_CANDIDATE, check=numbers.iban_numbers,
         checked="stdnum.iban check digits"),
    # --- phone numbers -----------------------------------------------------------------------
    # Korean mobile (010-1234-5678, 01012345678, 010 1234 5678, +82 10-1234-5678, +821012345678,
    # +82 (0)10…) and landline (02-123-4567, 031-1234-5678) numbers; international numbers
    # written with +; North American numbers.
    rule("phone_kr", "phone", "[PHONE]", r"(?<![0-9-])(?:\+82[-.\s]?(?:\(0\)[-.\s]?|0)?(?:1[016789]|2|[3-6][1-5]|70)|(?<!\+)82[-.\s]?0?1[016789]|0(?:1[016789]|2|[3-6][1-5]|70))[-.\s)]{0,2}[0-9]{3,4}[-.\s]?[0-9]{4}(?![0-9]|-[0-9])", check=numbers.phone_numbers),  # noqa: E501
    rule("phone_international", "phone", "[PHONE]", r"(?<![\w+])\+[0-9]{1,3}(?:[-.\s]?\(?[0-9]{1,4}\)?){2,5}(?![0-9])", check=numbers.international_numbers),  # noqa: E501
    rule("phone_nanp", "phone", "[PHONE]", r"(?<![0-9-])(?:\+?1[-.\s]?)?\(?[2-9][0-9]{2}\)?[-.\s]{1,2}[0-9]{3}[-.\s][0-9]{4}(?![0-9]|-[0-9])", check=numbers.phone_numbers),  # noqa: E501
    # --- bank accounts, after phones (a phone number next to a bank name stays a phone) ------
    rule("bank_account", "account", "[ACCOUNT]", numbers.DIGIT_RUN, check=numbers.account_numbers,
         checked="8-16 digits after 계좌/account number, or 10-16 digits next to a bank name; "
                 "not a date, not nearer to an order/ticket/business keyword"),
)  # fmt: skip
