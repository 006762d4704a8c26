"""Sync jobs on a real job queue: arq on Redis, or the same jobs in-process without Redis.

With ``REDIS_URL`` set, jobs go to arq's Redis queue and every worker process on every machine
(``supportbot worker``, ``supportbot run``) takes jobs from it. A source's job id is fixed
(``sync:<workspace>:<source>``), so a source already queued or running is not queued twice; the
engine's Redis lock keeps one workspace's sources from syncing at once on different workers (a
job that finds its workspace busy is deferred and retried). A worker killed mid-sync leaves its
job marked in progress; arq hands it to another worker once ``SYNC_JOB_TIMEOUT_S`` (+10 s)
has passed, and the engine resumes it from the last checkpoint.

Without Redis the same job function runs as a task of the process that queued it, with the
same dedup by source and the same workspace lock (a lock file).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from arq import Retry, Worker
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.worker import func

from sync.engine import SyncEngine
from sync.errors import SyncBusyError, UnknownSourceError

logger = logging.getLogger(__name__)

JOB_SYNC_SOURCE = "sync_source"
JOB_SYNC_DOCUMENTS = "sync_documents"
QUEUE_NAME = "supportbot:sync"
BUSY_RETRY_S = 2.0


def job_id(workspace: str, source: str) -> str:
    return f"sync:{workspace}:{source}"


class SyncQueue(Protocol):
    async def enqueue(
        self, workspace: str, source: str, *, full: bool = False, trigger: str = "schedule"
    ) -> bool:
        """Queue a sync of the source; False when one is already queued or running."""
        ...

    async def enqueue_documents(
        self, workspace: str, source: str, ids: Sequence[str], *, trigger: str = "event"
    ) -> bool:
        """Queue a sync of some documents of the source (an event said they changed)."""
        ...

    async def aclose(self) -> None: ...


# --- the job functions (the same in both queues) ----------------------------------------------


async def run_sync_source(
    engine: SyncEngine,
    workspace: str,
    source: str,
    *,
    full: bool,
    trigger: str,
    wait_s: float | None,
) -> dict[str, Any] | None:
    """One sync job; raises :class:`SyncBusyError` when the workspace stays locked."""
    try:
        run = await engine.sync(workspace, source, full=full, trigger=trigger, lock_wait_s=wait_s)
    except UnknownSourceError as e:
        logger.warning("dropping a sync job: %s", e)  # removed since it was queued
        return None
    return run.model_dump(mode="json")


async def run_sync_documents(
    engine: SyncEngine,
    workspace: str,
    source: str,
    ids: list[str],
    *,
    trigger: str,
    wait_s: float | None,
) -> dict[str, Any] | None:
    try:
        run = await engine.sync_documents(
            workspace, source, ids, trigger=trigger, lock_wait_s=wait_s
        )
    except UnknownSourceError as e:
        logger.warning("dropping a sync job: %s", e)
        return None
    return run.model_dump(mode="json")


# --- in-process ----------------------------------------------------------------------------


class InProcessQueue:
    """Runs sync jobs as tasks of this process, at most ``max_jobs`` at once."""

    def __init__(self, engine: SyncEngine, *, max_jobs: int = 4) -> None:
        self._engine = engine
        self._slots = asyncio.Semaphore(max_jobs)
        self._jobs: dict[str, asyncio.Task[None]] = {}

    async def enqueue(
        self, workspace: str, source: str, *, full: bool = False, trigger: str = "schedule"
    ) -> bool:
        return self._start(
            job_id(workspace, source),
            lambda: run_sync_source(
                self._engine, workspace, source, full=full, trigger=trigger, wait_s=None
            ),
        )

    async def enqueue_documents(
        self, workspace: str, source: str, ids: Sequence[str], *, trigger: str = "event"
    ) -> bool:
        key = f"{job_id(workspace, source)}:{','.join(ids)}"
        return self._start(
            key,
            lambda: run_sync_documents(
                self._engine, workspace, source, list(ids), trigger=trigger, wait_s=None
            ),
        )

    def _start(self, key: str, job: Callable[[], Awaitable[Any]]) -> bool:
        running = self._jobs.get(key)
        if running is not None and not running.done():
            return False
        self._jobs[key] = asyncio.create_task(self._run(key, job), name=key)
        return True

    async def _run(self, key: str, job: Callable[[], Awaitable[Any]]) -> None:
        async with self._slots:
            try:
                await job()
            except Exception:  # a job's failure is in its run record; the queue goes on
                logger.exception("sync job %s failed", key)

    async def join(self) -> None:
        """Wait for every queued job (tests, and a graceful stop)."""
        while any(not t.done() for t in self._jobs.values()):
            await asyncio.gather(*self._jobs.values(), return_exceptions=True)

    async def aclose(self) -> None:
        for task in self._jobs.values():
            task.cancel()
        await asyncio.gather(*self._jobs.values(), return_exceptions=True)


# --- Redis (arq) -----------------------------------------------------------------------------


class RedisQueue:
    """Queues sync jobs in Redis for any worker to run."""

    def __init__(self, pool: ArqRedis) -> None:
        self._pool = pool

    @classmethod
    async def connect(cls, redis_url: str) -> RedisQueue:
        settings = RedisSettings.from_dsn(redis_url)
        return cls(await create_pool(settings, default_queue_name=QUEUE_NAME))

    @property
    def redis(self) -> ArqRedis:
        return self._pool

    async def enqueue(
        self, workspace: str, source: str, *, full: bool = False, trigger: str = "schedule"
    ) -> bool:
        job = await self._pool.enqueue_job(
            JOB_SYNC_SOURCE, workspace, source, full, trigger, _job_id=job_id(workspace, source)
        )
        return job is not None

    async def enqueue_documents(
        self, workspace: str, source: str, ids: Sequence[str], *, trigger: str = "event"
    ) -> bool:
        key = f"{job_id(workspace, source)}:{','.join(ids)}"
        job = await self._pool.enqueue_job(
            JOB_SYNC_DOCUMENTS, workspace, source, list(ids), trigger, _job_id=key
        )
        return job is not None

    async def aclose(self) -> None:
        await self._pool.aclose()


async def _sync_source_job(
    ctx: dict[str, Any], workspace: str, source: str, full: bool = False, trigger: str = "queue"
) -> dict[str, Any] | None:
    try:
        return await run_sync_source(
            ctx["engine"], workspace, source, full=full, trigger=trigger, wait_s=0
        )
    except SyncBusyError:
        raise Retry(defer=BUSY_RETRY_S) from None


async def _sync_documents_job(
    ctx: dict[str, Any], workspace: str, source: str, ids: list[str], trigger: str = "event"
) -> dict[str, Any] | None:
    try:
        return await run_sync_documents(
            ctx["engine"], workspace, source, ids, trigger=trigger, wait_s=0
        )
    except SyncBusyError:
        raise Retry(defer=BUSY_RETRY_S) from None


def build_worker(
    redis_url: str,
    make_engine: Callable[[ArqRedis], SyncEngine],
    *,
    max_jobs: int,
    job_timeout_s: float,
    burst: bool = False,
    handle_signals: bool = True,
) -> Worker:
    """An arq worker for the sync jobs; ``make_engine`` gets the worker's Redis (for locks)."""

    async def startup(ctx: dict[str, Any]) -> None:
        ctx["engine"] = make_engine(ctx["redis"])

    # keep_result=0: a finished job leaves nothing behind that would refuse the next enqueue
    # of the same source; max_tries is high because "workspace busy" retries count as tries.
    options: dict[str, Any] = {"timeout": job_timeout_s, "keep_result": 0, "max_tries": 10_000}
    return Worker(
        functions=[
            func(_sync_source_job, name=JOB_SYNC_SOURCE, **options),
            func(_sync_documents_job, name=JOB_SYNC_DOCUMENTS, **options),
        ],
        queue_name=QUEUE_NAME,
        redis_settings=RedisSettings.from_dsn(redis_url),
        on_startup=startup,
        max_jobs=max_jobs,
        job_timeout=job_timeout_s,
        keep_result=0,
        burst=burst,
        handle_signals=handle_signals,
        poll_delay=0.2,
    )
