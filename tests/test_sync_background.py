"""Background sync as ``supportbot run`` and ``supportbot worker`` run it (no Redis: in-process).

A folder source is synced by the scheduler as soon as it is added, then again by the folder
watcher a moment after its files change: new, edited and deleted files reach search without
anyone running a command. ``supportbot run`` itself (the Slack bot over HTTP, against the Slack
simulator) keeps a web source fresh alongside the bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from supportbot.app import App
from supportbot.background_sync import run_background_sync, sync_alongside_bots
from sync.connectors.folder import FolderConnector
from sync.connectors.web import WebConnector
from tests.conftest import make_settings
from tests.servers.slack import SlackSimulator
from tests.servers.website import Website
from tests.test_cli import SUPPORTBOT, cli_env


async def eventually(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await asyncio.to_thread(check):  # type: ignore[arg-type]
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def found(app: App, workspace: str, query: str, text: str) -> bool:
    return any(text in r.text for r in app.knowledge.search(workspace, query, k=3))


async def test_scheduler_and_folder_watcher_keep_a_folder_fresh(
    app: App, ws_name: str, tmp_path: Path
) -> None:
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "refunds.md").write_text("# Refunds\n\nRefunds take 14 days.\n", encoding="utf-8")
    (folder / "old.md").write_text("# Legacy plan\n\nThe legacy plan ends in May.\n")
    app.knowledge.create_workspace(ws_name)
    app.sync_sources.add(
        ws_name, "kb", kind="folder", config=FolderConnector.validate_config({"path": str(folder)}),
        credentials=None, schedule="1h", requests_per_second=10,
    )  # fmt: skip
    task = asyncio.create_task(run_background_sync(app))
    try:
        await eventually(lambda: found(app, ws_name, "refund days", "14 days"), 30, "first sync")
        info = app.sync_sources.info(ws_name, "kb")
        assert info.next_run_at is not None and info.last_success_at is not None
        assert info.next_run_at > info.last_success_at  # planned an hour on

        (folder / "refunds.md").write_text("# Refunds\n\nRefunds take 3 days now.\n")
        (folder / "faq-ko.md").write_text("# 배송\n\n배송은 2일 걸립니다.\n", encoding="utf-8")
        (folder / "old.md").unlink()
        await eventually(
            lambda: (
                found(app, ws_name, "refund days", "3 days now")
                and found(app, ws_name, "배송 기간", "2일")
                and not found(app, ws_name, "legacy plan", "legacy plan ends")
            ),
            30,
            "the watcher's sync",
        )
        runs = app.sync_sources.runs(ws_name, "kb", limit=10)
        assert runs[-1].trigger == "schedule" and "watch" in {r.trigger for r in runs}
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_sync_alongside_bots_survives_a_broken_queue(app: App) -> None:
    """A Redis that is down must not take the bots down with it: logged, retried."""
    app.settings.redis_url = "redis://127.0.0.1:1/0"  # type: ignore[assignment]
    task = asyncio.create_task(sync_alongside_bots(app, retry_s=0.1))
    await asyncio.sleep(1.5)
    assert not task.done()  # still retrying, nothing raised
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.mark.slow
def test_supportbot_run_keeps_a_web_source_fresh_beside_the_slack_bot(
    weaviate_data_dir: Path, tmp_path: Path, ws_name: str
) -> None:
    with Website() as site, SlackSimulator() as slack:
        slack.add_workspace("T0ACME", "xoxb-run", team_name="Acme")
        site.set_page("help/refunds", "Refunds", "<p>Refunds take 14 days.</p>")
        # The site is on loopback, which web sources fetch only when opened (SSRF guard).
        env = cli_env(
            weaviate_data_dir,
            tmp_path / "run.db",
            SYNC_ALLOWED_PRIVATE_HOSTS=f"127.0.0.1:{site.port}",
        )
        env.pop("REDIS_URL", None)
        settings = make_settings(weaviate_data_dir, tmp_path / "run.db")
        with App(settings) as app:
            app.knowledge.create_workspace(ws_name, [])
            app.sync_sources.add(
                ws_name, "site", kind="web",
                config=WebConnector.validate_config({"urls": [site.page_url("help/refunds")]}),
                credentials=None, schedule="10s", requests_per_second=50,
            )  # fmt: skip
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            process = subprocess.Popen(
                [str(SUPPORTBOT), "run", "--slack-http", "--port", str(port),
                 "--host", "127.0.0.1"],
                env={**env, "SLACK_BOT_TOKEN": "xoxb-run", "SLACK_SIGNING_SECRET": "s3cret",
                     "SLACK_API_URL": slack.base_url},
                cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )  # fmt: skip
            try:
                deadline = time.monotonic() + 60
                while (
                    time.monotonic() < deadline and not app.sync_sources.list(ws_name)[0].documents
                ):
                    assert process.poll() is None, (
                        process.stderr.read().decode() if process.stderr else ""
                    )
                    time.sleep(0.3)
                assert found(app, ws_name, "refund days", "14 days")
                site.set_page("help/refunds", "Refunds", "<p>Refunds take 2 days since March.</p>")
                while time.monotonic() < deadline + 30 and not found(
                    app, ws_name, "refund days", "2 days since March"
                ):
                    time.sleep(0.5)
                assert found(app, ws_name, "refund days", "2 days since March")
            finally:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
