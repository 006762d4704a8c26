"""Keeping knowledge fresh in the background: the scheduler and the sync jobs of a process.

``supportbot run`` (next to the bots) and ``supportbot worker`` both run
:func:`run_background_sync`. With ``REDIS_URL`` set, the process is one arq worker of the shared
queue (any number of them, on any machines) and also schedules; without it, sync jobs run
in-process.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from supportbot.app import App

if TYPE_CHECKING:
    from sync.queue import SyncQueue

logger = logging.getLogger(__name__)


class EventSyncs:
    """Where the bots hand the platforms' change events to the sync (see :mod:`sync.events`).

    The queue exists only while the background sync runs; until then (or while it restarts)
    an event is skipped and the source's schedule picks the change up instead.
    """

    def __init__(self, application: App) -> None:
        self._application = application
        self.queue: SyncQueue | None = None

    async def slack_thread_replied(self, workspace: str, channel: str, thread_ts: str) -> None:
        if self.queue is None:
            return
        from sync.events import slack_thread_changed

        await slack_thread_changed(
            self._application.sync_sources,
            self.queue,
            workspace=workspace,
            channel=channel,
            thread_ts=thread_ts,
        )


async def run_background_sync(
    application: App, *, schedule: bool = True, events: EventSyncs | None = None
) -> None:
    """Schedule and run sync jobs until cancelled; ``events`` gets the queue while it runs."""
    from sync.engine import SyncEngine
    from sync.locks import RedisWorkspaceLocks
    from sync.queue import InProcessQueue, RedisQueue, build_worker
    from sync.scheduler import Scheduler

    s = application.settings
    sources = application.sync_sources
    queue: SyncQueue
    if s.redis_url is None:
        queue = InProcessQueue(application.sync_engine, max_jobs=s.sync_max_jobs)
        logger.warning("knowledge sync: in-process jobs (set REDIS_URL to share a queue)")
        if events is not None:
            events.queue = queue
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(Scheduler(sources, queue).run())
                if schedule:
                    tasks.create_task(application.tenant_activity.run())
        finally:
            if events is not None:
                events.queue = None
            await queue.aclose()
        return
    url = s.redis_url.get_secret_value()
    knowledge = application.knowledge
    worker = build_worker(
        url,
        lambda redis: SyncEngine(
            sources,
            knowledge,
            RedisWorkspaceLocks(redis, ttl_s=s.sync_lock_ttl_s),
            api_urls=application.sync_api_urls,
            options=application.sync_engine_options,
            after_change=application.after_knowledge_change,
        ),
        max_jobs=s.sync_max_jobs,
        job_timeout_s=s.sync_job_timeout_s,
        handle_signals=False,
    )
    queue = await RedisQueue.connect(url)
    logger.warning("knowledge sync: worker of the Redis queue (%d jobs at once)", s.sync_max_jobs)
    if events is not None:
        events.queue = queue
    try:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(worker.async_run())
            if schedule:
                tasks.create_task(Scheduler(sources, queue).run())
                # Idle workspaces' tenants go cold (retrieval.tenant_activity); every
                # scheduling process does it, which is idempotent.
                tasks.create_task(application.tenant_activity.run())
    finally:
        if events is not None:
            events.queue = None
        await worker.close()
        await queue.aclose()


async def sync_alongside_bots(
    application: App, *, retry_s: float = 30.0, events: EventSyncs | None = None
) -> None:
    """:func:`run_background_sync` for ``supportbot run``: a failure (Redis down, a database
    hiccup) is logged and retried, never raised into the bots' task group."""
    while True:
        try:
            await run_background_sync(application, events=events)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("knowledge sync stopped; restarting in %.0fs", retry_s)
        await asyncio.sleep(retry_s)
