"""Plans each source's syncs on its schedule and queues them when due.

Several processes may run a scheduler over one database (replicas of ``supportbot run``, many
workers): a source queued twice is queued once (job ids are per source), so no leader election
is needed. Folder sources are also watched, and queued a moment after their files change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sync.errors import SyncError
from sync.models import SourceInfo, SourceKind
from sync.queue import SyncQueue
from sync.schedule import parse_schedule
from sync.sources import SourceRepository

logger = logging.getLogger(__name__)


class Scheduler:
    def __init__(
        self,
        sources: SourceRepository,
        queue: SyncQueue,
        *,
        clock: Callable[[], datetime] | None = None,
        watch_folders: bool = True,
    ) -> None:
        self._sources = sources
        self._queue = queue
        self._clock = clock or (lambda: datetime.now(UTC))
        self._watch_folders = watch_folders
        self._watchers: dict[tuple[str, str], tuple[str, asyncio.Task[None]]] = {}

    async def tick(self) -> list[tuple[str, str]]:
        """Queue every source whose planned time has come; returns those queued."""
        now = self._clock()
        queued: list[tuple[str, str]] = []
        infos = await asyncio.to_thread(self._sources.list)
        for info in infos:
            try:
                schedule = parse_schedule(info.schedule)
            except SyncError as e:
                logger.warning("%s/%s: %s", info.workspace, info.name, e)
                continue
            if schedule is None:
                continue
            planned = info.next_run_at
            if planned is None:
                # Never synced: now. Otherwise the next time after the last start.
                last = info.last_started_at
                planned = now if last is None else schedule.next_after(last)
            if planned <= now:
                if await self._queue.enqueue(info.workspace, info.name, trigger="schedule"):
                    await asyncio.to_thread(self._sources.mark_queued, info.id)
                    queued.append((info.workspace, info.name))
                await asyncio.to_thread(
                    self._sources.set_next_run, info.id, schedule.next_after(now)
                )
            elif info.next_run_at is None:
                await asyncio.to_thread(self._sources.set_next_run, info.id, planned)
        if self._watch_folders:
            self._reconcile_watchers(infos)
        return queued

    async def run(self, *, tick_s: float = 5.0) -> None:
        """Tick until cancelled; a failing tick (database down) is logged and retried."""
        try:
            while True:
                try:
                    await self.tick()
                except Exception:
                    logger.exception("sync scheduler tick failed; retrying")
                await asyncio.sleep(tick_s)
        finally:
            await self.stop_watchers()

    # --- folder watching -------------------------------------------------------------------

    def _reconcile_watchers(self, infos: list[SourceInfo]) -> None:
        wanted = {
            (i.workspace, i.name): str(i.config.get("path", ""))
            for i in infos
            if i.kind == SourceKind.FOLDER.value and i.config.get("path")
        }
        for key, (path, task) in list(self._watchers.items()):
            if wanted.get(key) != path or task.done():
                task.cancel()
                del self._watchers[key]
        for key, path in wanted.items():
            if key not in self._watchers and Path(path).is_dir():
                task = asyncio.create_task(self._watch(key[0], key[1], path))
                self._watchers[key] = (path, task)

    async def _watch(self, workspace: str, name: str, path: str) -> None:
        from watchfiles import awatch

        try:
            async for _changes in awatch(path, debounce=1000, recursive=True):
                logger.info("%s/%s: files changed under %s", workspace, name, path)
                await self._queue.enqueue(workspace, name, trigger="watch")
        except Exception:
            logger.exception("watching %s stopped", path)

    async def stop_watchers(self) -> None:
        tasks = [task for _, task in self._watchers.values()]
        self._watchers.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
