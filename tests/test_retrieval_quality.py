"""Korean and English retrieval on the sample knowledge base: the right page comes first."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from supportbot.app import App
from tests.conftest import SAMPLE_KB, make_settings

WORKSPACE = "quality"

QUESTIONS = [
    ("How long is the password reset link valid?", "en/password-and-sso.md"),
    ("What is the API rate limit and what happens when I exceed it?", "en/api-and-limits.md"),
    ("Which DNS records do I need to add for DKIM?", "en/troubleshooting.html"),
    ("How do I invite teammates to my workspace?", "en/getting-started.md"),
    ("Can I get a refund after 10 days?", "en/billing-and-refunds.md"),
    ("세금계산서는 언제 발행되나요?", "ko/결제-및-환불.md"),
    ("워크스페이스를 삭제하면 데이터는 며칠 동안 보관되나요?", "ko/데이터-내보내기-및-삭제.md"),
    ("휴대폰으로 푸시 알림이 오지 않아요. 무엇을 확인해야 하나요?", "ko/모바일-앱-알림.md"),
    ("데이터는 어느 리전에 저장되나요?", "ko/데이터-내보내기-및-삭제.md"),
    ("팀원을 초대하려면 어떻게 하나요?", "ko/시작하기.md"),
]


@pytest.fixture(scope="module")
def quality_app(weaviate_data_dir: Path, tmp_path_factory, embedder) -> Iterator[App]:
    folder = tmp_path_factory.mktemp("quality")
    settings = make_settings(weaviate_data_dir, folder / "db.sqlite")
    with App(settings, local_embedder=embedder) as application:
        application.knowledge.create_workspace(WORKSPACE)
        application.knowledge.ingest_paths(WORKSPACE, [SAMPLE_KB / "en", SAMPLE_KB / "ko"])
        yield application


@pytest.mark.parametrize(("question", "expected"), QUESTIONS)
def test_hybrid_search_ranks_the_answering_page_first(
    quality_app: App, question: str, expected: str
):
    results = quality_app.knowledge.search(WORKSPACE, question, k=5)
    assert results[0].source == str((SAMPLE_KB / expected).resolve())


def test_keyword_search_uses_korean_morphology(quality_app: App):
    # "환불하려면" ("to get a refund") never appears in the documents as one word; kagome_kr
    # splits it into 환불 + 하 + 려면, so the keyword index still finds the refund page.
    results = quality_app.knowledge.search(WORKSPACE, "환불하려면", k=3, mode="keyword")
    assert results and results[0].source.endswith("결제-및-환불.md")


def test_keyword_search_ignores_english_case(quality_app: App):
    results = quality_app.knowledge.search(WORKSPACE, "DKIM SPF", k=3, mode="keyword")
    lower = quality_app.knowledge.search(WORKSPACE, "dkim spf", k=3, mode="keyword")
    assert results and results[0].source.endswith("troubleshooting.html")
    assert [r.chunk_id for r in results] == [r.chunk_id for r in lower]
