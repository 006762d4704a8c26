"""One sync per workspace at a time, across processes and machines.

Two syncs writing the same tenant at once would race on its documents and their state. With
Redis (several workers) the lock is a Redis lock with a time-to-live that a holder keeps
extending: a worker killed mid-sync stops extending, and the lock frees itself shortly after.
Without Redis the processes are on one machine and share a data directory, so a lock file in
it does the same job (the OS releases it when the process dies).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

from filelock import FileLock
from filelock import Timeout as FileLockTimeout
from redis.asyncio import Redis
from redis.exceptions import LockError

from sync.errors import SyncBusyError

logger = logging.getLogger(__name__)


class WorkspaceLocks(Protocol):
    def hold(
        self, workspace: str, *, wait_s: float | None
    ) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold the workspace's lock; wait up to ``wait_s`` (None: as long as it takes)."""
        ...


class FileWorkspaceLocks:
    """Lock files under ``<data dir>/sync-locks`` (processes of one machine)."""

    def __init__(self, directory: Path, *, poll_s: float = 0.2) -> None:
        self._dir = directory
        self._poll_s = poll_s

    @contextlib.asynccontextmanager
    async def hold(self, workspace: str, *, wait_s: float | None) -> AsyncIterator[None]:
        self._dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self._dir / f"{workspace}.lock"), thread_local=False)
        loop = asyncio.get_running_loop()
        deadline = None if wait_s is None else loop.time() + wait_s
        while True:
            try:
                lock.acquire(timeout=0)
                break
            except FileLockTimeout:
                if deadline is not None and loop.time() >= deadline:
                    raise SyncBusyError(
                        f"another sync of workspace {workspace!r} is running"
                    ) from None
                await asyncio.sleep(self._poll_s)
        try:
            yield
        finally:
            lock.release()


class RedisWorkspaceLocks:
    """Redis locks with a TTL, extended while the sync runs (shared by every worker)."""

    def __init__(self, redis: Redis, *, ttl_s: float = 30.0, poll_s: float = 0.2) -> None:
        self._redis = redis
        self._ttl_s = ttl_s
        self._poll_s = poll_s

    @contextlib.asynccontextmanager
    async def hold(self, workspace: str, *, wait_s: float | None) -> AsyncIterator[None]:
        lock = self._redis.lock(
            f"supportbot:sync-lock:{workspace}",
            timeout=self._ttl_s,
            sleep=self._poll_s,
            blocking=True,
            blocking_timeout=wait_s if wait_s is None or wait_s > 0 else 0.001,
        )
        if not await lock.acquire():
            raise SyncBusyError(f"another sync of workspace {workspace!r} is running")
        keeper = asyncio.create_task(self._keep(lock, workspace))
        try:
            yield
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            with contextlib.suppress(LockError):
                await lock.release()

    async def _keep(self, lock: object, workspace: str) -> None:
        """Extend the TTL at a third of it, so a live holder never loses the lock."""
        from redis.asyncio.lock import Lock

        assert isinstance(lock, Lock)
        while True:
            await asyncio.sleep(self._ttl_s / 3)
            try:
                await lock.reacquire()
            except LockError:
                logger.error("lost the sync lock of workspace %s (paused too long?)", workspace)
                return
