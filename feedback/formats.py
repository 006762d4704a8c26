"""The rows of each export format, exactly as the trainers document them.

TRL (conversational form, https://huggingface.co/docs/trl/dataset_formats):

- ``sft``: language modeling, ``{"messages": [...]}``;
- ``kto``: unpaired preference, ``{"prompt": [...], "completion": [...], "label": bool}``;
- ``dpo``: preference with explicit prompt, ``{"prompt": [...], "chosen": [...], "rejected":
  [...]}``.

OpenAI fine-tuning JSONL:

- ``openai-sft``: chat, ``{"messages": [...]}``;
- ``openai-dpo``: ``{"input": {"messages": [...]}, "preferred_output": [...],
  "non_preferred_output": [...]}``.

Every message is ``{"role", "content"}`` with a string content. The prompt is the one the model
was sent (system prompt with the numbered retrieved context, earlier turns, the question); for
an answer no model wrote (extractive, or "not found"), the same template is filled with the
retrieved context stored with it, so every prompt carries what was retrieved.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from feedback.answers import RatedAnswer
from retrieval.prompts import answer_messages, number_results
from retrieval.store import SearchResult

Message = dict[str, str]
Row = dict[str, Any]
Scrub = Callable[[str], str]

_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


def prompt_of(answer: RatedAnswer) -> tuple[list[Message], bool]:
    """The prompt messages of ``answer``, and whether they are the ones recorded."""
    if answer.prompt_messages:
        return [
            {"role": str(m["role"]), "content": str(m["content"])} for m in answer.prompt_messages
        ], True
    # Rebuilt in the live prompt's shape; the delimiter is derived, so exports are repeatable.
    nonce = hashlib.sha256(answer.question.encode()).hexdigest()[:16]
    excerpts = number_results([_result(chunk) for chunk in answer.retrieved])
    rebuilt = answer_messages(answer.question, excerpts, nonce=nonce)
    return [{"role": _ROLES.get(m.type, m.type), "content": m.text} for m in rebuilt], False


def _result(chunk: dict[str, object]) -> SearchResult:
    def text(key: str) -> str:
        value = chunk.get(key)
        return "" if value is None else str(value)

    return SearchResult(
        chunk_id=text("chunk_id"),
        doc_id=text("doc_id"),
        source=text("source"),
        title=text("title"),
        heading=text("heading"),
        text=text("text"),
        url=text("url") or None,
        origin="",
        score=0.0,
        similarity=0.0,
    )


def _scrubbed(messages: list[Message], scrub: Scrub) -> list[Message]:
    return [{"role": m["role"], "content": scrub(m["content"])} for m in messages]


def _assistant(text: str, scrub: Scrub) -> list[Message]:
    return [{"role": "assistant", "content": scrub(text)}]


def sft_row(prompt: list[Message], answer: str, scrub: Scrub) -> Row:
    return {"messages": _scrubbed(prompt, scrub) + _assistant(answer, scrub)}


def kto_row(prompt: list[Message], answer: str, liked: bool, scrub: Scrub) -> Row:
    return {
        "prompt": _scrubbed(prompt, scrub),
        "completion": _assistant(answer, scrub),
        "label": liked,
    }


def dpo_row(prompt: list[Message], chosen: str, rejected: str, scrub: Scrub) -> Row:
    return {
        "prompt": _scrubbed(prompt, scrub),
        "chosen": _assistant(chosen, scrub),
        "rejected": _assistant(rejected, scrub),
    }


def openai_dpo_row(prompt: list[Message], chosen: str, rejected: str, scrub: Scrub) -> Row:
    return {
        "input": {"messages": _scrubbed(prompt, scrub)},
        "preferred_output": _assistant(chosen, scrub),
        "non_preferred_output": _assistant(rejected, scrub),
    }
