"""Notion sources: the official notion-client against a local Notion API over real HTTP.

Pages shared with the integration (search), a page tree (child pages) and a database's entries
become documents; edits, trashing and unsharing reach search; an expired OAuth token is
refreshed through /v1/oauth/token and stored encrypted; rate limits are waited out.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from supportbot.app import App
from sync.connectors.notion import NotionConnector
from tests.servers.notion import NotionSimulator, bullet, heading, notion_id, paragraph

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
