"""Scrubbing personal data and secrets out of text that leaves the product (fine-tuning
exports, ``feedback review``).

Support conversations carry what people paste: their e-mail address, a phone number, a
resident registration number, a card number, an API key, a mention of a colleague. None of
that belongs in a training set, which may leave the company. Each kind is replaced by a
placeholder that keeps the sentence readable ("mail [EMAIL]", "주민번호 [RRN]"), so the
model still learns that something went there. The rules are listed in the export's manifest.

- :mod:`feedback.pii.rules`: the default rules, in priority order;
- :mod:`feedback.pii.numbers`: identity, card and account numbers (checksums by python-stdnum);
- :mod:`feedback.pii.context`: the keywords around a number;
- :mod:`feedback.pii.scrubber`: :class:`Scrubber`, which applies them.
"""

from feedback.pii.rule import Rule
from feedback.pii.rules import RULES
from feedback.pii.scrubber import Found, Scrubber

__all__ = ["RULES", "Found", "Rule", "Scrubber"]
