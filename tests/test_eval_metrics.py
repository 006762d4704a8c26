"""Pure pieces of the evaluation gate: ranks, hit@k, MRR@k, run comparison, the question file."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedback.errors import FeedbackError
from feedback.evaluation import (
    EvalQuestion,
    cosine,
    distinct_documents,
    drop_on_shared,
    evaluate,
    first_rank,
    hit_at,
    mrr_at,
    read_questions,
    sample,
)
from retrieval.store import SearchResult


def _hit(doc_id: str) -> SearchResult:
    return SearchResult(
        chunk_id=f"{doc_id}-c", doc_id=doc_id, source=doc_id, title="", heading="", text="",
        url=None, origin="file", score=1.0, similarity=0.9,
    )  # fmt: skip


def test_rank_counts_distinct_documents_not_chunks():
    docs = distinct_documents([_hit("a"), _hit("a"), _hit("b"), _hit("a"), _hit("c")])
    assert docs == ["a", "b", "c"]
    assert first_rank(docs, ["c", "z"]) == 3
    assert first_rank(docs, ["b", "c"]) == 2  # the first expected one found
    assert first_rank(docs, ["z"]) is None


def test_hit_and_mrr_at_k():
    ranks = [1, 2, None, 6]
    assert hit_at(ranks, 5) == 0.5
    assert hit_at(ranks, 10) == 0.75
    assert mrr_at(ranks, 10) == pytest.approx((1 + 1 / 2 + 1 / 6) / 4)
    assert mrr_at(ranks, 5) == pytest.approx((1 + 1 / 2) / 4)  # beyond k counts 0
    assert hit_at([], 5) is None and mrr_at([], 10) is None


def test_drop_is_measured_on_shared_questions_only():
    before = [{"key": "a", "rank": 1}, {"key": "b", "rank": 2}]
    after = [{"key": "a", "rank": None}, {"key": "b", "rank": 3}, {"key": "new", "rank": None}]
    assert drop_on_shared(before, after) == 0.5  # "new" is not held against the change
    assert drop_on_shared(after, before) == -0.5
    assert drop_on_shared(before, [{"key": "x", "rank": None}]) == 0.0


def test_sample_is_bounded_and_stable_as_the_set_grows():
    questions = [EvalQuestion(f"question {n}", ("d",)) for n in range(30)]
    first = sample(questions, 10)
    assert len(first) == 10
    grown = sample([*questions, EvalQuestion("question 99", ("d",))], 10)
    assert len({q.question for q in first} & {q.question for q in grown}) >= 9
    assert sample(questions[:3], 10) == questions[:3]


def test_cosine():
    assert cosine([1.0, 0.0], [1.0, 0.0]) == pytest.approx(1.0)
    assert cosine([1.0, 0.0], [0.0, 2.0]) == pytest.approx(0.0)
    assert cosine([0.0, 0.0], [1.0, 1.0]) == 0.0


def test_evaluate_with_answers_reports_agreement():
    questions = [
        EvalQuestion("q1", ("a",), "thirty minutes", "file"),
        EvalQuestion("q2", ("z",), None, "file"),
        EvalQuestion("q3", (), "anything", "file"),  # answer only: not in retrieval figures
    ]
    vectors = {"thirty minutes": [1.0, 0.0], "30 minutes": [1.0, 0.0], "anything": [1.0, 0.0]}
    result = evaluate(
        "w",
        questions,
        search=lambda qs: [[_hit("a"), _hit("b")] for _ in qs],
        answer=lambda q: "30 minutes" if q == "q1" else "no idea",
        embed=lambda texts: [vectors.get(t, [0.0, 1.0]) for t in texts],
        judge=lambda q, expected, given: given == "30 minutes",
    )
    assert result.questions == 3
    assert (result.hit_at_5, result.mrr_at_10) == (0.5, 0.5)
    assert result.answer_agreement == pytest.approx(0.5)  # q1 agrees (1.0), q3 does not (0.0)
    assert result.judge_agreement == 0.5
    assert result.as_dict()["retrieval_questions"] == 2


def test_question_file_errors_name_the_line(tmp_path: Path):
    good = tmp_path / "q.jsonl"
    good.write_text(
        '{"question": "How long is the link valid?", "expected_doc_ids": ["a"]}\n\n'
        '{"question": "환불 되나요?", "expected_answer": "14일 이내 전액 환불"}\n',
        encoding="utf-8",
    )
    items = read_questions(good)
    assert [(q.question, q.expected_doc_ids, q.expected_answer) for q in items] == [
        ("How long is the link valid?", ("a",), None),
        ("환불 되나요?", (), "14일 이내 전액 환불"),
    ]
    for line in ('{"question": ""}', '{"question": "q", "expected_doc_ids": "a"}', "[1]", "{"):
        bad = tmp_path / "bad.jsonl"
        bad.write_text('{"question": "ok"}\n' + line + "\n", encoding="utf-8")
        with pytest.raises(FeedbackError, match=r"bad.jsonl:2: "):
            read_questions(bad)
    with pytest.raises(FeedbackError, match="cannot read"):
        read_questions(tmp_path / "missing.jsonl")
