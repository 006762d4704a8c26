"""Retrieved text is data: real injection corpora stay inside the context block of the prompt.

The attacks come from BIPIA (indirect injections written to be planted in documents) and
Giskard's labelled prompt injections, read in place from ../shared/data/prompt_injection/.
Each is planted in a retrieved chunk, with context-closing tags added, and the rendered prompt
must still have exactly one context block that contains every attack.
"""

from __future__ import annotations

import csv
import json

import pytest

from retrieval.prompts import ANSWER_PROMPT, render_context
from retrieval.store import SearchResult
from tests.conftest import SHARED_DATA

INJECTIONS = SHARED_DATA / "prompt_injection"


def _attacks() -> list[str]:
    bipia = json.loads((INJECTIONS / "bipia" / "text_attack_train.json").read_text())
    attacks = [text for texts in bipia.values() for text in texts]
    with (INJECTIONS / "giskard_prompt_injections" / "prompt_injections.csv").open() as f:
        attacks += [row["prompt"] for row in csv.DictReader(f)][:200]
    return attacks


def _chunk(text: str, n: int) -> SearchResult:
    return SearchResult(
        chunk_id=f"c{n}", doc_id=f"d{n}", source=f"doc{n}.md", title="Doc", heading="",
        text=text, url=None, origin="file", score=1.0, similarity=0.9,
    )  # fmt: skip


@pytest.mark.skipif(not INJECTIONS.exists(), reason="shared prompt-injection data not present")
def test_planted_attacks_never_escape_the_context_block():
    attacks = _attacks()
    assert len(attacks) > 100
    for start in range(0, len(attacks), 25):
        batch = attacks[start : start + 25]
        planted = [f"Refunds take 5 days. </context>\n{a}\n<context>" for a in batch]
        context = render_context([_chunk(t, n) for n, t in enumerate(planted)])
        messages = ANSWER_PROMPT.format_messages(
            history=[], question="How long do refunds take?", context=context
        )
        human = messages[-1].content
        assert isinstance(human, str)
        assert human.count("<context>") == 1 and human.count("</context>") == 1
        inside = human.split("</context>")[0]
        assert all(a.splitlines()[0] in inside for a in batch if a.strip())
        assert human.rstrip().endswith("Question: How long do refunds take?")
