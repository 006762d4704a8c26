"""Notion sources: the official notion-client against a local Notion API over real HTTP.

Pages shared with the integration (search), a page tree (child pages) and a database's entries
become documents; edits, trashing and unsharing reach search; an expired OAuth token is
refreshed through /v1/oauth/token and stored encrypted; rate limits are waited out.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator

import pytest

from supportbot.app import App
from sync.connectors.notion import NotionConnector
from tests.conftest import REPO
from tests.servers.notion import (
    NotionSimulator,
    block,
    bullet,
    heading,
    notion_id,
    paragraph,
    rich,
)

TOKEN = "secret_notion_old"


@pytest.fixture
def notion() -> Iterator[NotionSimulator]:
    with NotionSimulator(page_size_cap=2) as sim:  # small pages: pagination is exercised
        sim.tokens.add(TOKEN)
        yield sim


@pytest.fixture
def notion_app(app: App, notion: NotionSimulator) -> App:
    app.settings.notion_api_url = notion.url
    return app


def add_notion(app: App, workspace: str, credentials: dict[str, str], **config: object) -> None:
    app.sync_sources.add(
        workspace,
        "wiki",
        kind="notion",
        config=NotionConnector.validate_config(config),
        credentials=credentials,
        schedule=None,
        requests_per_second=500,
    )


def seed(sim: NotionSimulator) -> None:
    sim.add_page("handbook", "Support handbook", [paragraph("How the support team works.")])
    sim.add_page(
        "refunds", "Refund policy",
        [heading("Refunds"), paragraph("Refunds are paid within 14 days."),
         bullet("Card payments", [bullet("go back to the card")])],
        parent="handbook",
    )  # fmt: skip
    sim.add_page(
        "shipping", "배송 안내", [paragraph("주문 후 2일 안에 출고됩니다.")], parent="handbook"
    )
    sim.add_database("faq", "FAQ")
    sim.add_page(
        "faq-1", "Can I change my plan?", [paragraph("Yes, under Billing > Plan.")], database="faq"
    )
    sim.add_page(
        "faq-2", "Is there an API?", [paragraph("Yes, see the developer docs.")], database="faq"
    )
    sim.add_page("other", "Unrelated page", [paragraph("Team lunch menu.")])


def top(app: App, workspace: str, query: str) -> str:
    results = app.knowledge.search(workspace, query, k=1)
    return results[0].text if results else ""


async def test_pages_subpages_and_database_entries_follow_edits_and_removals(
    notion_app: App, notion: NotionSimulator, ws_name: str
) -> None:
    app = notion_app
    seed(notion)
    app.knowledge.create_workspace(ws_name)
    add_notion(
        app, ws_name, {"token": TOKEN}, pages=[notion_id("handbook")], databases=[notion_id("faq")]
    )

    run = await app.sync_engine.sync(ws_name, "wiki")
    assert (run.status, run.documents, run.changed) == ("ok", 5, 5)  # not the unrelated page
    assert "14 days" in top(app, ws_name, "refund policy days")
    assert "- Card payments\n  - go back to the card" in top(app, ws_name, "refund card payments")
    assert "2일 안에 출고" in top(app, ws_name, "배송 출고")
    assert "Billing > Plan" in top(app, ws_name, "change my plan")
    assert "lunch" not in " ".join(r.text for r in app.knowledge.search(ws_name, "lunch menu", k=5))
    result = app.knowledge.search(ws_name, "refund policy days", k=1)[0]
    assert result.url == f"https://www.notion.so/{notion_id('refunds').replace('-', '')}"

    notion.edit_page("refunds", [paragraph("Refunds are paid within 5 days now.")])
    notion.trash_page("faq-2")
    notion.clear_requests()
    run = await app.sync_engine.sync(ws_name, "wiki")
    assert (run.changed, run.unchanged, run.deleted) == (1, 3, 1)
    fetched = {r.path for r in notion.requests if r.path.endswith("/children")}
    # The page tree is walked for child pages, but unchanged pages' contents are not read.
    assert f"/v1/blocks/{notion_id('refunds')}/children" in fetched
    assert f"/v1/blocks/{notion_id('faq-1')}/children" not in fetched
    assert "5 days now" in top(app, ws_name, "refund policy days")
    assert "developer docs" not in " ".join(
        r.text for r in app.knowledge.search(ws_name, "API docs", k=5)
    )


async def test_everything_shared_by_default_and_an_expired_token_is_refreshed(
    notion_app: App, notion: NotionSimulator, ws_name: str
) -> None:
    app = notion_app
    seed(notion)
    notion.clients["client-1"] = "client-secret"
    notion.refresh_tokens["refresh-1"] = "secret_notion_new"
    notion.expired.add(TOKEN)
    notion.rate_limit(times=2, retry_after="1")
    app.knowledge.create_workspace(ws_name)
    credentials = {
        "token": TOKEN, "refresh_token": "refresh-1", "client_id": "client-1",
        "client_secret": "client-secret",
    }  # fmt: skip
    add_notion(app, ws_name, credentials)

    run = await app.sync_engine.sync(ws_name, "wiki")
    assert (run.status, run.documents) == ("ok", 6)  # every page search finds
    assert run.retries >= 2
    record = app.sync_sources.get(ws_name, "wiki")
    stored = app.sync_sources.credentials(record)
    assert (stored["token"], stored["refresh_token"]) == (
        "secret_notion_new",
        "secret_notion_new-refresh",
    )
    assert record.credentials_encrypted and "secret_notion" not in record.credentials_encrypted
    assert len(notion.requests_to("/v1/oauth/token")) == 1
    last = notion.requests[-1]
    assert last.headers["authorization"] == "Bearer secret_notion_new"
    assert last.headers["notion-version"] == "2025-09-03"


async def test_a_rejected_token_without_refresh_fails_clearly(
    notion_app: App, notion: NotionSimulator, ws_name: str
) -> None:
    app = notion_app
    app.knowledge.create_workspace(ws_name)
    add_notion(app, ws_name, {"token": "secret_wrong"})
    run = await app.sync_engine.sync(ws_name, "wiki")
    assert run.status == "failed"
    assert run.error is not None and "no refresh token is stored" in run.error


# --- Every block type that carries text ----------------------------------------------------------

CASE = REPO.parent / "shared" / "cases" / "notion-table" / "notion_blocks.json"


async def test_table_case_rows_are_indexed_as_markdown_table_rows(
    notion_app: App, notion: NotionSimulator, ws_name: str
) -> None:
    app = notion_app
    case = json.loads(CASE.read_text(encoding="utf-8"))
    page_id = notion.add_page("pricing", "Plans and prices", [])
    notion.set_raw_blocks(page_id, case["page"])
    table = next(b for b in case["page"] if b["type"] == "table")
    notion.set_raw_blocks(table["id"], case["table_rows"])
    app.knowledge.create_workspace(ws_name)
    add_notion(app, ws_name, {"token": TOKEN})

    run = await app.sync_engine.sync(ws_name, "wiki")

    assert (run.status, run.documents, run.error) == ("ok", 1, None)
    text = top(app, ws_name, "Zephyrine Enterprise monthly price")
    assert "Our plans and their monthly prices are listed below." in text
    assert (
        "| Plan | Monthly price | Seats |\n| --- | --- | --- |\n| Starter | 19 USD | 3 |\n"
        "| Zephyrine Enterprise | 749 USD | unlimited |"
    ) in text


def _row(*cells: str) -> dict[str, object]:
    return block("table_row", {"cells": [rich(cell) for cell in cells]})


async def test_every_text_block_type_is_indexed_and_skipped_ones_are_counted(
    notion_app: App, notion: NotionSimulator, ws_name: str
) -> None:
    app = notion_app
    text = lambda value: {"rich_text": rich(value)}  # noqa: E731
    blocks = [
        block("toggle", text("환불 규정 펼치기"), [paragraph("토글 안: 14일 안에 환불됩니다.")]),
        block("callout", {**text("점검 중에는 결제가 멈춥니다."), "icon": {"emoji": "⚠️"}}),
        block("quote", text("고객의 말: 빠른 환불 감사합니다.")),
        block("to_do", {**text("카드사 확인"), "checked": True}),
        block("code", {**text("curl -X POST /refunds"), "language": "bash", "caption": []}),
        block("equation", {"expression": "refund = price - fee"}),
        block("heading_2", {**text("접히는 제목"), "is_toggleable": True},
              [paragraph("제목 속 본문")]),
        block(
            "column_list", {},
            [block("column", {}, [paragraph("왼쪽 칸: 카드 결제")]),
             block("column", {}, [paragraph("오른쪽 칸: 계좌 이체")])],
        ),
        block("synced_block", {"synced_from": None}, [paragraph("동기화 원본 문단")],
              name="synced-original"),
        block("synced_block", {"synced_from": {"type": "block_id",
                                               "block_id": notion_id("synced-original")}}),
        block("bookmark", {"url": "https://help.example/refunds", "caption": rich("환불 도움말")}),
        block("embed", {"url": "https://status.example", "caption": rich("상태 페이지")}),
        block("table", {"table_width": 2, "has_column_header": False, "has_row_header": False},
              [_row("은행", "영업일"), _row("국민", "2일")]),
        block("divider", {}),
        block("unsupported", {}),
        block("ai_block", {"prompt": "?"}),
    ]  # fmt: skip
    notion.add_page("blocks", "Block kinds", blocks)
    notion.add_page("child", "하위 페이지 제목", [paragraph("하위 페이지 본문")], parent="blocks")
    app.knowledge.create_workspace(ws_name)
    add_notion(app, ws_name, {"token": TOKEN}, pages=[notion_id("blocks")])

    run = await app.sync_engine.sync(ws_name, "wiki")

    assert (run.status, run.documents, run.errors) == ("ok", 2, 0)
    assert run.error == "not indexed: 1 Notion ai_block block(s), 1 Notion unsupported block(s)"
    page = next(
        f"{r.heading}\n{r.text}"
        for r in app.knowledge.search(ws_name, "환불", k=20, mode="keyword")
        if r.doc_id.endswith(notion_id("blocks"))
    )
    texts = " ".join(
        f"{r.heading}\n{r.text}"
        for r in app.knowledge.search(ws_name, "환불 결제 제목 동기화 은행", k=20)
        if r.doc_id.endswith(notion_id("blocks"))
    )
    for expected in (
        "환불 규정 펼치기", "토글 안: 14일 안에 환불됩니다.", "> ⚠️ 점검 중에는 결제가 멈춥니다.",
        "> 고객의 말: 빠른 환불 감사합니다.", "- [x] 카드사 확인",
        "```bash\ncurl -X POST /refunds\n```", "refund = price - fee",
        "접히는 제목\n제목 속 본문", "왼쪽 칸: 카드 결제",
        "오른쪽 칸: 계좌 이체", "환불 도움말 https://help.example/refunds",
        "상태 페이지 https://status.example", "| 은행 | 영업일 |\n| --- | --- |\n| 국민 | 2일 |",
        "하위 페이지 제목",
    ):  # fmt: skip
        assert expected in page + texts, expected
    # The original synced block's text, and once more through the reference to it.
    assert (page + texts).count("동기화 원본 문단") >= 2


async def test_decomposed_notion_titles_and_text_are_stored_in_nfc(
    notion_app: App, notion: NotionSimulator, ws_name: str
) -> None:
    app = notion_app
    nfd = lambda value: unicodedata.normalize("NFD", value)  # noqa: E731
    notion.add_page("dormant", nfd("휴면계정 해제"), [paragraph(nfd("본인 인증 후 해제됩니다."))])
    app.knowledge.create_workspace(ws_name)
    add_notion(app, ws_name, {"token": TOKEN})

    await app.sync_engine.sync(ws_name, "wiki")

    hit = app.knowledge.search(ws_name, "휴면계정", k=1, mode="keyword")[0]
    assert hit.title == "휴면계정 해제" and "본인 인증 후 해제됩니다." in hit.text
