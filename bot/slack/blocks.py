"""Block Kit pieces of the bot's Slack messages: native feedback buttons and the /ask share.

Feedback uses Slack's own ``feedback_buttons`` element inside a ``context_actions`` block (the
👍/👎 pair Slack draws under AI answers). A click arrives as ``block_actions`` whose action has
``type: "feedback_buttons"``, our ``action_id`` and the clicked button's ``value``
(:data:`POSITIVE` / :data:`NEGATIVE`). Answers posted before this carried two plain buttons,
``feedback_helpful`` / ``feedback_not_helpful``; :func:`rating_of` still reads those, so old
answers keep taking ratings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

FEEDBACK_ACTION_ID = "answer_feedback"
POSITIVE = "helpful"
NEGATIVE = "not_helpful"
# The ids of the plain buttons of older answers, and what they meant.
LEGACY_FEEDBACK_ACTIONS = {"feedback_helpful": 1, "feedback_not_helpful": -1}
FEEDBACK_ACTIONS = re.compile(rf"^(?:{FEEDBACK_ACTION_ID}|feedback_helpful|feedback_not_helpful)$")
"""Every action id that rates an answer (for ``app.action(...)``)."""

SHARE_ACTION_ID = "ask_share"

_LABELS = {
    "en": ("Helpful", "Not helpful", "Share in channel"),
    "ko": ("도움이 됐어요", "도움이 안 됐어요", "채널에 공유"),
}


def feedback_block(language: str = "en") -> dict[str, Any]:
    """The ``context_actions`` block with the native 👍/👎 ``feedback_buttons`` element.

    ``language``: "ko" or English, for the screen-reader labels (the buttons show thumbs).
    """
    positive, negative, _ = _LABELS["ko" if language == "ko" else "en"]
    return {
        "type": "context_actions",
        "elements": [
            {
                "type": "feedback_buttons",
                "action_id": FEEDBACK_ACTION_ID,
                "positive_button": {
                    "text": {"type": "plain_text", "text": "👍"},
                    "value": POSITIVE,
                    "accessibility_label": positive,
                },
                "negative_button": {
                    "text": {"type": "plain_text", "text": "👎"},
                    "value": NEGATIVE,
                    "accessibility_label": negative,
                },
            }
        ],
    }


def rating_of(action: Mapping[str, Any]) -> int | None:
    """+1 / -1 for a feedback click (native or legacy button), None for anything else."""
    action_id = str(action.get("action_id") or "")
    if action_id in LEGACY_FEEDBACK_ACTIONS:
        return LEGACY_FEEDBACK_ACTIONS[action_id]
    if action_id == FEEDBACK_ACTION_ID:
        return {POSITIVE: 1, NEGATIVE: -1}.get(str(action.get("value") or ""))
    return None


def share_block(value: str, language: str = "en") -> dict[str, Any]:
    """The "Share in channel" button under a private /ask answer; ``value`` says which."""
    label = _LABELS["ko" if language == "ko" else "en"][2]
    return {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "action_id": SHARE_ACTION_ID,
                "text": {"type": "plain_text", "text": label},
                "style": "primary",
                "value": value,
            }
        ],
    }


def section_blocks(sections: list[str]) -> list[dict[str, Any]]:
    """One mrkdwn section per rendered part (``verbatim``: Slack adds no links or mentions)."""
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": True}}
        for text in sections
    ]
