"""Hot and cold tenants: idle workspaces leave Weaviate's memory, and come back when used.

Weaviate keeps an ACTIVE (hot) tenant's indexes in memory and an INACTIVE (cold) one's only on
disk. One node holds thousands of workspaces only if the idle ones are cold, so:

- every question, sync and ingest of a workspace goes through :meth:`TenantActivity.use`, which
  records the last use in the workspace's registry row (at most once a minute per workspace
  and process, so a busy workspace costs no database write per question) and makes the tenant
  hot first when it is cold, timing that (the reactivation cost, kept in the row);
- :meth:`TenantActivity.cool_idle`, run periodically by the background sync of every
  ``supportbot run`` and ``supportbot worker`` (:meth:`run`), sets cold the tenants of
  workspaces unused for ``WORKSPACE_COLD_AFTER``.

Nothing is ever lost: cold is Weaviate's INACTIVE status (the data stays on disk), only tenants
of registered workspaces idle past the limit are touched, and a failure to set one cold is
logged, never raised. Races between processes are harmless: activating or deactivating twice
is idempotent, and the collection keeps Weaviate's ``auto_tenant_activation`` on, so a search
that meets a tenant another process set cold a moment ago still answers (Weaviate loads it).
The explicit activation here is what makes the cost visible; the automatic one is the net.

Status per tenant is asked from Weaviate at most once a minute per process (a cheap REST call);
in between, a tenant seen hot is trusted, which the ten-minute floor on ``WORKSPACE_COLD_AFTER``
keeps safe: a workspace used in the last minute has a last use recorded in the last two.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from weaviate.classes.tenants import TenantActivityStatus

from retrieval.errors import RetrievalError
from retrieval.store import KnowledgeStore
from retrieval.workspaces import Workspace

logger = logging.getLogger(__name__)

RECORD_EVERY = timedelta(minutes=1)
CHECK_EVERY = timedelta(minutes=1)
_HOT = {TenantActivityStatus.ACTIVE, TenantActivityStatus.HOT}


class TenantState(StrEnum):
    """What ``workspace list`` shows, read from Weaviate itself."""

    HOT = "hot"  # ACTIVE: in memory
    COLD = "cold"  # INACTIVE (or offloaded): on disk only
    MISSING = "missing"  # the registry names a tenant Weaviate does not have


@dataclass(frozen=True, slots=True)
class TenantActivityInfo:
    """One workspace's tenant activity. Times are UTC; ``reactivation_ms`` is the wall time
    of the last cold-to-hot switch, in milliseconds (None: never reactivated)."""

    workspace: str
    tenant: str
    state: TenantState
    last_used_at: datetime | None
    deactivated_at: datetime | None
    reactivated_at: datetime | None
    reactivation_ms: float | None


def _utc(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes (they were written in UTC)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def state_of(status: TenantActivityStatus | None) -> TenantState:
    if status is None:
        return TenantState.MISSING
    return TenantState.HOT if status in _HOT else TenantState.COLD


class TenantActivity:
    """Records workspace use and moves tenants between hot and cold (see the module doc).

    ``cold_after``: idle time after which a tenant is set cold (None: never). ``clock`` gives
    aware UTC datetimes (tests inject one); ``timer`` measures reactivations in seconds.
    Thread-safe: the bots call :meth:`use` from worker threads.
    """

    def __init__(
        self,
        engine: Engine,
        store: KnowledgeStore,
        *,
        cold_after: timedelta | None,
        clock: Callable[[], datetime] | None = None,
        timer: Callable[[], float] = time.perf_counter,
        record_every: timedelta = RECORD_EVERY,
        check_every: timedelta = CHECK_EVERY,
    ) -> None:
        self._engine = engine
        self._store = store
        self._cold_after = cold_after
        self._clock = clock or (lambda: datetime.now(UTC))
        self._timer = timer
        self._record_every = record_every
        self._check_every = check_every
        self._lock = threading.Lock()
        self._recorded: dict[str, datetime] = {}  # tenant -> last use written to the database
        self._seen_hot: dict[str, datetime] = {}  # tenant -> when Weaviate last said ACTIVE

    # --- use ---------------------------------------------------------------------------------

    def use(self, tenant: str) -> float | None:
        """Before a question, sync or ingest touches ``tenant``: make it hot, note the use.

        Returns the reactivation time in ms when the tenant was cold, else None. Never raises
        for a status it cannot read (the store call that follows reports the real problem).
        """
        now = self._clock()
        reactivation = self._ensure_hot(tenant, now)
        with self._lock:
            last = self._recorded.get(tenant)
            due = last is None or now - last >= self._record_every
            if due:
                self._recorded[tenant] = now
        if due:
            try:
                with Session(self._engine) as session:
                    session.execute(
                        update(Workspace)
                        .where(col(Workspace.tenant) == tenant)
                        .values(last_used_at=now)
                    )
                    session.commit()
            except Exception:  # a database hiccup must not cost the user the answer
                logger.warning("could not record the use of tenant %s", tenant, exc_info=True)
                with self._lock:
                    self._recorded.pop(tenant, None)
        return reactivation

    def _ensure_hot(self, tenant: str, now: datetime) -> float | None:
        with self._lock:
            seen = self._seen_hot.get(tenant)
        if seen is not None and now - seen < self._check_every:
            return None
        try:
            status = self._store.tenant_activity([tenant]).get(tenant)
        except RetrievalError as e:
            logger.warning("could not read the activity of tenant %s: %s", tenant, e)
            return None
        if status is None:
            return None  # no such tenant: the store call that follows says so
        elapsed_ms: float | None = None
        if status not in _HOT:
            started = self._timer()
            self._store.set_tenant_active(tenant=tenant, active=True)
            elapsed_ms = (self._timer() - started) * 1000.0
            logger.info("tenant %s reactivated in %.0f ms", tenant, elapsed_ms)
            self._record_reactivation(tenant, now, elapsed_ms)
        with self._lock:
            self._seen_hot[tenant] = now
        return elapsed_ms

    def is_cold(self, tenant: str) -> bool:
        """True when Weaviate says ``tenant`` is cold, asked without waking it.

        For checks that only look (is the workspace set up?): any read of a cold tenant's
        objects, even a count, makes Weaviate load it (``auto_tenant_activation``), untimed and
        unrecorded, and every message in a channel the bot is in is such a check. A tenant
        seen hot in the last minute is not asked about again; False when the status cannot be
        read (the caller's own store call then says what is wrong).
        """
        with self._lock:
            seen = self._seen_hot.get(tenant)
        if seen is not None and self._clock() - seen < self._check_every:
            return False
        try:
            status = self._store.tenant_activity([tenant]).get(tenant)
        except RetrievalError as e:  # not logged as a warning: a check runs per message
            logger.debug("could not read the activity of tenant %s: %s", tenant, e)
            return False
        return status is not None and status not in _HOT

    def _record_reactivation(self, tenant: str, now: datetime, elapsed_ms: float) -> None:
        try:
            with Session(self._engine) as session:
                session.execute(
                    update(Workspace)
                    .where(col(Workspace.tenant) == tenant)
                    .values(reactivated_at=now, reactivation_ms=elapsed_ms)
                )
                session.commit()
        except Exception:
            logger.warning("could not record the reactivation of %s", tenant, exc_info=True)

    # --- going cold --------------------------------------------------------------------------

    def idle_workspaces(self) -> list[tuple[str, str]]:
        """``(name, tenant)`` of the workspaces unused for ``cold_after`` (none when never)."""
        if self._cold_after is None:
            return []
        cutoff = self._clock() - self._cold_after
        with Session(self._engine) as session:
            rows = session.exec(
                select(
                    Workspace.name, Workspace.tenant, Workspace.created_at, Workspace.last_used_at
                )
            ).all()
        idle = []
        for name, tenant, created_at, last_used_at in rows:
            last = _utc(last_used_at) or _utc(created_at)
            if last is not None and last < cutoff:
                idle.append((name, tenant))
        return idle

    def cool_idle(self) -> list[str]:
        """Set cold the hot tenants of workspaces idle past ``cold_after``; their names.

        Each is checked idle again just before (another process may have used it since the
        list was read). A tenant that cannot be set cold is logged and skipped. A tenant with
        no chunks is left hot (it costs next to no memory), so a cold tenant always has
        knowledge: :meth:`is_cold` is enough to tell that its workspace is set up.
        """
        idle = self.idle_workspaces()
        if not idle:
            return []
        statuses = self._store.tenant_activity([tenant for _, tenant in idle])
        cooled = []
        for name, tenant in idle:
            if statuses.get(tenant) not in _HOT or not self._still_idle(tenant):
                continue
            try:
                if self._store.count(tenant=tenant) == 0:
                    continue
            except RetrievalError as e:
                logger.warning("could not count the chunks of workspace %r (kept hot): %s", name, e)
                continue
            try:
                self._store.set_tenant_active(tenant=tenant, active=False)
            except Exception as e:
                logger.warning("could not set workspace %r cold (kept hot): %s", name, e)
                continue
            with self._lock:
                self._seen_hot.pop(tenant, None)
            now = self._clock()
            with Session(self._engine) as session:
                session.execute(
                    update(Workspace)
                    .where(col(Workspace.tenant) == tenant)
                    .values(deactivated_at=now)
                )
                session.commit()
            logger.info("workspace %r idle since before %s: tenant set cold", name, now)
            cooled.append(name)
        return cooled

    def _still_idle(self, tenant: str) -> bool:
        assert self._cold_after is not None
        with Session(self._engine) as session:
            row = session.exec(
                select(Workspace.created_at, Workspace.last_used_at).where(
                    col(Workspace.tenant) == tenant
                )
            ).first()
        if row is None:
            return False  # deleted meanwhile: nothing to cool
        last = _utc(row[1]) or _utc(row[0])
        return last is not None and last < self._clock() - self._cold_after

    async def run(self, *, every_s: float = 300.0) -> None:
        """Cool idle tenants every ``every_s`` seconds until cancelled; failures are logged."""
        if self._cold_after is None:
            return
        while True:
            try:
                await asyncio.to_thread(self.cool_idle)
            except Exception:
                logger.exception("setting idle tenants cold failed; retrying later")
            await asyncio.sleep(every_s)

    # --- report ------------------------------------------------------------------------------

    def report(self) -> list[TenantActivityInfo]:
        """Every workspace's tenant state (asked from Weaviate) and recorded activity."""
        with Session(self._engine) as session:
            rows = session.exec(select(Workspace).order_by(col(Workspace.name))).all()
        statuses = self._store.tenant_activity([row.tenant for row in rows])
        return [
            TenantActivityInfo(
                workspace=row.name,
                tenant=row.tenant,
                state=state_of(statuses.get(row.tenant)),
                last_used_at=_utc(row.last_used_at),
                deactivated_at=_utc(row.deactivated_at),
                reactivated_at=_utc(row.reactivated_at),
                reactivation_ms=row.reactivation_ms,
            )
            for row in rows
        ]
