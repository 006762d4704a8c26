"""The case ``pii-korean`` through the real paths out of the product: answers stored with the
feedback store, exported by :func:`feedback.export.export_dataset` (the default, scrubbed
export) and listed by :func:`feedback.review.disliked_answers`. Korean identity numbers,
card numbers, accounts and mobile numbers do not come out; order numbers, dates, prices and
versions do."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from feedback.export import ExportOptions, export_dataset
from feedback.pii import Scrubber
from feedback.review import disliked_answers
from feedback.store import AnswerRecord, SqlFeedbackStore
from retrieval.embeddings import LocalE5Embeddings
from tests.conftest import REPO

CASE = REPO.parent / "shared" / "cases" / "pii-korean" / "inputs.txt"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

# Variants of the case's kind, written for this test: (question, the personal data in it).
VARIANTS = [
    ("주민번호 9207212057988 로 본인인증이 안 돼요", ["9207212057988"]),
    ("외국인등록번호 ９２０１０１－６２３４５６７ 로 가입했어요", ["９２０１０１－６２３４５６７"]),
    ("Please refund card 5537.8657.9754.3235 or Amex 3455 597971 14716",
     ["5537.8657.9754.3235", "3455 597971 14716"]),
    ("환불은 신한 110-123-456789 로, 연락은 01012345678 로 주세요",
     ["110-123-456789", "01012345678"]),
    ("account number 12345678901 at Woori, call +821012345678",
     ["12345678901", "+821012345678"]),
]  # fmt: skip
# What must survive: the answer (and the retrieved context) hold ordinary numbers.
ANSWER = (
    "주문번호 2024-123456 건은 2024-03-15에 ₩1,234,567 환불되었습니다. "
    "앱 v1.2.3 이상에서 확인하세요 [1]."
)
CONTEXT = "환불은 영업일 기준 3일 안에 처리됩니다. 문의: 주문번호와 결제일을 알려주세요."
KEPT = ["2024-123456", "2024-03-15", "₩1,234,567", "v1.2.3"]


def _cases() -> list[tuple[str, list[str]]]:
    rrn_line, card_line = CASE.read_text(encoding="utf-8").splitlines()[:2]
    return [
        (rrn_line, ["900101-1234567"]),
        (card_line, ["4111 1111 1111 1111"]),
        *VARIANTS,
    ]


def _plant(engine: Engine, questions: list[str], vote: int) -> None:
    ticks = iter(range(10_000))
    store = SqlFeedbackStore(
        engine, user_hash_key=b"k", clock=lambda: NOW - timedelta(minutes=1000 - next(ticks))
    )
    for n, question in enumerate(questions):
        chunk: dict[str, object] = {
            "chunk_id": f"c{n}", "doc_id": "refunds.md", "source": "refunds.md",
            "title": "Refunds", "heading": "", "url": None, "text": CONTEXT, "similarity": 0.9,
        }  # fmt: skip
        interaction = store.record_answer(
            AnswerRecord(
                workspace="acme", platform="slack", question=question,
                standalone_question=question, answer=ANSWER, mode="llm", retrieved=[chunk],
                channel_id="C1", thread_id=f"t{n}", message_id=f"m{n}", found=True,
                user_id="U0",
                prompt_messages=[
                    {"role": "system", "content": "Answer from the context."},
                    {"role": "user", "content": f"<context>\n[1] (Refunds)\n{CONTEXT}\n"
                                                f"</context>\n\nQuestion: {question}"},
                ],
            )
        )  # fmt: skip
        store.rate(interaction, user_id="U1", value=vote, source="reaction")


def _digits(text: str) -> str:
    return re.sub(r"[^0-9]", "", text)


def _export_text(engine: Engine, embedder: LocalE5Embeddings, out: Path, **options: object) -> str:
    export_dataset(
        engine, "acme", out, ExportOptions(format="sft", **options),  # type: ignore[arg-type]
        embed=embedder.embed_queries, clock=lambda: NOW, known_workspaces={"acme"},
    )  # fmt: skip
    contents = []
    for path in sorted(out.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            contents += [m["content"] for m in json.loads(line)["messages"]]
    return "\n".join(contents)


def test_the_default_export_keeps_no_identity_card_account_or_phone_number(
    engine: Engine, embedder: LocalE5Embeddings, tmp_path: Path
):
    cases = _cases()
    _plant(engine, [question for question, _ in cases], vote=1)

    scrubbed = _export_text(engine, embedder, tmp_path / "scrubbed")
    raw = _export_text(engine, embedder, tmp_path / "raw", scrub=False)

    scrubbed_digits = [_digits(line) for line in scrubbed.splitlines()]
    for _, personal in cases:
        for value in personal:
            assert value in raw, value  # the export path carries the question
            assert value not in scrubbed, value
            # nor in another writing of it (spaces or hyphens dropped, full-width digits)
            digits = _digits(value.translate(str.maketrans("０１２３４５６７８９", "0123456789")))
            assert not any(digits in line for line in scrubbed_digits), value
    for placeholder in ("[RRN]", "[FRN]", "[CARD]", "[ACCOUNT]", "[PHONE]"):
        assert placeholder in scrubbed, placeholder
    assert "exp 12/29" in scrubbed and "환불 계좌로 보내주세요" in scrubbed
    for ordinary in KEPT:
        assert ordinary in scrubbed, ordinary


def test_the_export_manifest_names_the_checks(
    engine: Engine, embedder: LocalE5Embeddings, tmp_path: Path
):
    _plant(engine, [_cases()[0][0]], vote=1)

    manifest = export_dataset(
        engine, "acme", tmp_path / "out", ExportOptions(format="kto"),
        embed=embedder.embed_queries, clock=lambda: NOW, known_workspaces={"acme"},
    )  # fmt: skip

    rules = {r["name"]: r for r in manifest["rules"]["pii"]["rules"]}
    assert "stdnum.kr.rrn" in rules["kr_resident_registration"]["check"]
    assert rules["card_number"]["placeholder"] == "[CARD]"


@pytest.mark.parametrize("scrub", [None, Scrubber(enabled=False)])
def test_review_scrubs_by_default(engine: Engine, scrub: Scrubber | None):
    cases = _cases()
    _plant(engine, [question for question, _ in cases], vote=-1)

    items = disliked_answers(
        engine, "acme", min_relevance=0.5, known_workspaces={"acme"}, scrub=scrub
    )

    shown = json.dumps([i.as_dict() for i in items], ensure_ascii=False)
    assert len(items) == len(cases)
    for _, personal in cases:
        for value in personal:
            assert (value in shown) is (scrub is not None), value
    assert all(ordinary in shown for ordinary in KEPT)
