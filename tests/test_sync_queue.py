"""The sync job queue on a real Redis (arq) with real worker processes.

Two ``supportbot worker`` processes share one queue: both take jobs, a source queued twice
runs once, and one workspace's sources never sync at the same time. A worker killed with
SIGKILL mid-sync loses nothing: its job is taken up by a restarted worker and resumes from
the last checkpoint, leaving exactly one chunk per page in the tenant.

``./dev test`` starts Redis (scripts/test-redis) and exports SUPPORTBOT_TEST_REDIS_URL; without
it these tests are skipped locally and fail on CI.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from supportbot.app import App
from sync.connectors.web import WebConnector
from sync.queue import RedisQueue
from tests.conftest import make_settings
from tests.servers.website import Website, generated_page
from tests.test_cli import SUPPORTBOT, cli_env

pytestmark = pytest.mark.slow


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("SUPPORTBOT_TEST_REDIS_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("SUPPORTBOT_TEST_REDIS_URL is not set on CI: run the suite via ./dev test")
        pytest.skip("no Redis (set SUPPORTBOT_TEST_REDIS_URL or run ./dev test)")
    Redis.from_url(url).flushdb()
    return url


class Workers:
    """``supportbot worker`` processes on the test's database and Redis."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env = env
        self.cwd = cwd
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [str(SUPPORTBOT), "worker", "--no-schedule"],
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait(10)


@pytest.fixture
def workers_env(weaviate_data_dir: Path, tmp_path: Path, redis_url: str) -> dict[str, str]:
    return cli_env(
        weaviate_data_dir,
        tmp_path / "queue.db",
        REDIS_URL=redis_url,
        SYNC_MAX_JOBS="1",
        SYNC_LOCK_TTL_S="3",
        SYNC_JOB_TIMEOUT_S="10",
        SYNC_ALLOWED_PRIVATE_HOSTS="127.0.0.1",  # the local test sites (SSRF guard)
    )


@pytest.fixture
def workers(workers_env: dict[str, str], tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(workers_env, tmp_path)
    try:
        yield pool
    finally:
        pool.stop()


@pytest.fixture
def queue_app(
    weaviate_data_dir: Path, tmp_path: Path, redis_url: str, embedder: object
) -> Iterator[App]:
    settings = make_settings(
        weaviate_data_dir,
        tmp_path / "queue.db",
        redis_url=redis_url,
        sync_allowed_private_hosts="127.0.0.1",
    )
    with App(settings, local_embedder=embedder) as application:  # type: ignore[arg-type]
        yield application


def add_site(app: App, workspace: str, name: str, site: Website) -> None:
    app.sync_sources.add(
        workspace,
        name,
        kind="web",
        config=WebConnector.validate_config({"sitemap": site.sitemap_url}),
        credentials=None,
        schedule=None,
        requests_per_second=500,
    )


async def wait_until(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await asyncio.to_thread(check):  # type: ignore[arg-type]
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def test_two_workers_share_the_queue_and_never_sync_a_workspace_twice_at_once(
    queue_app: App, workers: Workers, redis_url: str, ws_name: str
) -> None:
    app = queue_app
    names = [f"{ws_name[-40:]}-{n}" for n in range(3)]
    with Website() as site:
        site.latency = 0.05  # each sync takes a moment, so the jobs overlap
        for n in range(6):
            site.set_page(*generated_page(n))
        for name in names:
            app.knowledge.create_workspace(name)
            add_site(app, name, "a", site)
        add_site(app, names[0], "b", site)  # the first workspace has two sources
        workers.start()
        workers.start()
        queue = await RedisQueue.connect(redis_url)
        try:
            jobs = [(names[0], "a"), (names[0], "b"), (names[1], "a"), (names[2], "a")]
            for workspace, source in jobs:
                assert await queue.enqueue(workspace, source)
            assert not await queue.enqueue(names[0], "a")  # queued already: once only

            def all_synced() -> bool:
                return all(app.sync_sources.info(w, s).status == "ok" for w, s in jobs)

            await wait_until(all_synced, 90, "the four syncs")
        finally:
            await queue.aclose()
    runs = {(w, s): app.sync_sources.runs(w, s) for w, s in jobs}
    assert all(len(r) == 1 and r[0].documents == 6 for r in runs.values())
    assert len({r[0].worker for r in runs.values()}) == 2  # both workers took jobs
    first, second = runs[(names[0], "a")][0], runs[(names[0], "b")][0]
    assert first.finished_at and second.finished_at
    assert first.finished_at <= second.started_at or second.finished_at <= first.started_at


async def test_a_worker_killed_mid_sync_is_resumed_by_another_with_nothing_lost_or_doubled(
    queue_app: App, workers: Workers, redis_url: str, ws_name: str
) -> None:
    app = queue_app
    pages = 100
    with Website() as site:
        site.latency = 0.02
        for n in range(pages):
            site.set_page(*generated_page(n))
        app.knowledge.create_workspace(ws_name)
        add_site(app, ws_name, "docs", site)
        first = workers.start()
        queue = await RedisQueue.connect(redis_url)
        try:
            assert await queue.enqueue(ws_name, "docs")

            def checkpointed() -> bool:
                return app.sync_sources.info(ws_name, "docs").status == "running" and (
                    documents_recorded(app, ws_name) >= 50
                )

            await wait_until(checkpointed, 60, "the first checkpoint")
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            done_before = documents_recorded(app, ws_name)
            assert 50 <= done_before < pages
            site.clear_requests()
            workers.start()  # takes the job up once arq sees it abandoned

            def finished() -> bool:
                return app.sync_sources.info(ws_name, "docs").status == "ok"

            await wait_until(finished, 60, "the resumed sync")
        finally:
            await queue.aclose()
        refetched = [r for r in site.requests if r.path.startswith("/help/")]
    info = app.sync_sources.info(ws_name, "docs")
    assert info.documents == pages
    assert info.chunks == app.knowledge.chunk_count(ws_name) == pages  # one chunk per page
    assert len(refetched) == pages - done_before  # resumed, not started over
    runs = app.sync_sources.runs(ws_name, "docs")
    assert [r.status for r in runs] == ["ok", "failed"]
    assert runs[1].error is not None and runs[1].error.startswith("interrupted")
    assert runs[0].worker != runs[1].worker


def documents_recorded(app: App, workspace: str) -> int:
    from sqlmodel import Session, func, select

    from sync.models import SyncDocument

    source_id = app.sync_sources.info(workspace, "docs").id
    with Session(app.engine) as session:
        return int(
            session.exec(
                select(func.count())
                .select_from(SyncDocument)
                .where(SyncDocument.source_id == source_id)
            ).one()
        )
