"""Duplicate passages: sent to the model once and quoted once, citing every document.

The threshold of :mod:`retrieval.duplicates` is measured here on the sample knowledge base
(English and Korean): distinct passages of different documents against variants that should
merge. Then real ingests of duplicated documents (Korean and English; whitespace-only edits,
one changed word, a longer superset passage) are asked through the answer chain, extractive and
with a model over real HTTP, and the Sources list shows each document.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.formatting import format_answer
from retrieval.chunking import Chunker
from retrieval.duplicates import NEAR_DUPLICATE_OVERLAP, merge_duplicates, normalise, overlap
from retrieval.loaders import iter_files, load_file
from retrieval.store import SearchResult
from supportbot.app import App
from tests.conftest import SAMPLE_KB, make_settings
from tests.servers.openai_chat import OpenAIChatSimulator, data_blocks

# --- the threshold, measured ------------------------------------------------------------------


def test_threshold_separates_distinct_passages_from_near_identical_ones(embedder) -> None:
    chunker = Chunker(embedder.token_count)
    chunks = [
        (str(path), chunk.text)
        for path in iter_files([SAMPLE_KB / "en", SAMPLE_KB / "ko"])
        for chunk in chunker.split(load_file(path, max_bytes=10_000_000))
    ]
    distinct = [overlap(a, b) for (da, a), (db, b) in itertools.combinations(chunks, 2) if da != db]
    rng = random.Random(7)
    changed_word, spaced, superset = [], [], []
    for _, text in chunks:
        words = list(re.finditer(r"[^\W\d_]{3,}", text))
        for word in rng.sample(words, min(5, len(words))) if len(text) >= 100 else []:
            changed_word.append(
                overlap(text, text[: word.start()] + "changed" + text[word.end() :])
            )
        spaced.append(overlap(text, "  " + re.sub(r"\s+", lambda m: m.group(0) * 2, text) + "\n"))
        superset.append(overlap(text, f"{text}\n\nA further paragraph adds more detail here."))
    print(
        f"\n{len(chunks)} passages: distinct pairs of different documents overlap at most "
        f"{max(distinct):.2f} ({len(distinct)} pairs); one changed word at least "
        f"{min(changed_word):.2f} ({len(changed_word)} variants); whitespace-only "
        f"{min(spaced):.2f}; superset {min(superset):.2f}; threshold {NEAR_DUPLICATE_OVERLAP}"
    )
    assert max(distinct) < NEAR_DUPLICATE_OVERLAP - 0.05
    assert min(changed_word) >= NEAR_DUPLICATE_OVERLAP
    assert min(spaced) == 1.0 and min(superset) == 1.0


# --- merging, on its own ----------------------------------------------------------------------


def _result(doc: str, text: str, title: str = "") -> SearchResult:
    return SearchResult(
        f"c-{doc}", doc, f"{doc}.md", title or doc, "", text, None, "file", 1.0, 0.9
    )


REFUND = (
    "Refunds are paid to the original card within 14 days of approval. Annual plans are "
    "refunded pro rata for the unused months; monthly plans are not refunded."
)
REFUND_KO = (
    "환불은 승인 후 14일 이내에 결제한 카드로 지급됩니다. 연간 요금제는 남은 개월 수만큼 "
    "일할 계산하여 환불하며, 월간 요금제는 환불되지 않습니다."
)


@pytest.mark.parametrize(
    "variant",
    [
        REFUND.replace(" ", "  ").replace("; ", ";\n"),  # whitespace only
        REFUND.upper(),  # case only
        REFUND.replace("original", "same"),  # one changed word
        REFUND + " Contact billing@example.com for exceptions.",  # a longer superset passage
        "Refunds: " + REFUND,
    ],
)
def test_near_identical_passages_become_one_excerpt(variant: str) -> None:
    excerpts = merge_duplicates([_result("a", REFUND), _result("other", "Shipping takes 2 days."),
                                 _result("b", variant)])  # fmt: skip
    assert [e.n for e in excerpts] == [1, 2]
    assert [r.doc_id for r in excerpts[0].results] in (["a", "b"], ["b", "a"])
    longer = len(normalise(variant)) > len(normalise(REFUND))
    assert excerpts[0].text == (variant if longer else REFUND)  # the longer copy is quoted


@pytest.mark.parametrize(
    "variant",
    [
        REFUND.replace("14 days", "30 days"),  # the one changed word is the answer
        REFUND_KO,  # the same in Korean is another passage
        "Refunds are paid to the original card. Gift cards are never refunded.",
        "Shipping is free within Korea for orders over 50,000 won.",
    ],
)
def test_different_passages_stay_apart(variant: str) -> None:
    excerpts = merge_duplicates([_result("a", REFUND), _result("b", variant)])
    assert [len(e.results) for e in excerpts] == [1, 1]


def test_korean_near_duplicates_merge() -> None:
    spaced = REFUND_KO.replace(" ", "  ")
    changed = REFUND_KO.replace("결제한", "사용한")
    excerpts = merge_duplicates(
        [_result("a", REFUND_KO), _result("b", spaced), _result("c", changed)]
    )
    assert len(excerpts) == 1 and len(excerpts[0].results) == 3


# --- real ingest, through the answer chain ----------------------------------------------------

DOCS = {
    "en/refunds.md": f"# Refunds\n\n{REFUND}\n",
    "en/billing-faq.md": f"# Billing FAQ\n\n{REFUND.replace('. ', '.  ')}\n",  # spacing only
    "en/plans.md": f"# Plans\n\n{REFUND.replace('original', 'same')}\n",  # one changed word
    "en/policy.md": f"# Policy\n\n{REFUND} Refund requests are made under Settings > Billing.\n",
    "ko/환불.md": f"# 환불\n\n{REFUND_KO}\n",
    "ko/결제-안내.md": f"# 결제 안내\n\n{REFUND_KO.replace(' ', '  ')}\n",
    "ko/요금제.md": f"# 요금제\n\n{REFUND_KO.replace('결제한', '사용한')}\n",
}


@pytest.fixture(scope="module")
def duplicated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("duplicates")
    for relative, text in DOCS.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text, encoding="utf-8")
    return root


def _names(sources) -> list[str]:
    return sorted(Path(s.source).name for s in sources)


@pytest.mark.parametrize(
    ("question", "language"),
    [("How long do refunds take?", "en"), ("환불은 언제 지급되나요?", "ko")],
)
def test_extractive_answer_quotes_a_duplicated_passage_once_citing_each_document(
    app: App, ws_name: str, duplicated: Path, question: str, language: str
) -> None:
    app.knowledge.create_workspace(ws_name)
    app.knowledge.ingest_paths(ws_name, [duplicated / language])

    answer = app.answer_chain(ws_name).answer(question)

    files = [Path(p).name for p in DOCS if p.startswith(language)]
    titles = [
        text.split("\n")[0].removeprefix("# ") for p, text in DOCS.items() if p.startswith(language)
    ]
    assert answer.mode == "extractive"
    assert answer.text.count("14 days" if language == "en" else "14일 이내") == 1  # quoted once
    assert answer.text.count("[1]") == 1 and "[2]" not in answer.text
    assert _names(answer.sources) == sorted(files)  # citing every copy's document
    assert {s.n for s in answer.sources} == {1}
    shown = format_answer(answer, "discord")
    assert all(title in shown for title in titles)


@pytest.fixture
def llm() -> Iterator[OpenAIChatSimulator]:
    with OpenAIChatSimulator(api_key="k") as server:
        yield server


def test_the_model_gets_a_duplicated_passage_once_and_the_answer_cites_each_source(
    settings, embedder, llm: OpenAIChatSimulator, tmp_path: Path, ws_name: str, duplicated: Path
) -> None:
    configured = make_settings(
        settings.data_dir, tmp_path / "llm.db", llm_model="m", llm_base_url=llm.base_url,
        llm_api_key="k",
    )  # fmt: skip
    with App(configured, local_embedder=embedder) as app:
        app.knowledge.create_workspace(ws_name)
        app.knowledge.ingest_paths(ws_name, [duplicated / "en"])
        answer = app.answer_chain(ws_name).answer("How long do refunds take?")

    [(_, excerpts)] = data_blocks(llm.chat_requests()[-1]["messages"][-1]["content"])
    refund_excerpts = [e for e in excerpts if "14 days" in e["text"]]
    assert len(refund_excerpts) == 1  # four copies, one excerpt
    [excerpt] = refund_excerpts
    assert "Settings > Billing" in excerpt["text"]  # the superset passage is the one quoted
    titles = sorted([excerpt["title"], *(p["title"] for p in excerpt["also_in"])])
    assert titles == ["Billing FAQ", "Plans", "Policy", "Refunds"]
    assert answer.text.endswith(f"[{excerpt['n']}]")
    cited = [s for s in answer.sources if s.n == excerpt["n"]]
    assert _names(cited) == ["billing-faq.md", "plans.md", "policy.md", "refunds.md"]
