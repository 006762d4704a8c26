"""Leased claims: each message is answered by one replica, and a replica that dies mid-answer
has its question answered by another.

A replica claims a message before it acts on it (:meth:`ClaimStore.claim`): one row per
``(platform, key)`` in :class:`~bot.models.ProcessedDelivery`, written by an INSERT that only
one replica can win. The row records the holder (a replica id made at start,
:func:`new_replica_id`), a lease (``lease_s``, 30 s by default) that the holder renews while it
answers (:class:`Lease`), the neutral message to answer again (JSON, never secrets), and the
placeholder the holder posted. Once the answer or notice is shown it is marked done.

- A done claim is never claimed again; a claim under a live lease is refused.
- An unfinished claim whose lease ran out (its replica died, or was stopped mid-answer) may be
  taken over: by a redelivery of the message (a Slack retry) or by any replica's sweeper
  (:mod:`bot.takeover`), with one conditional UPDATE that only one replica can win on SQLite
  and PostgreSQL alike. After ``max_attempts`` holders the sweeper gives up (an apology).

Every write is one small statement by key; times come from the replicas' clocks (keep them in
sync, as for any lease). The happy path costs the claim's INSERT (as before), the "done"
UPDATE, and, for an answer still being made after :data:`PROGRESS_CHECK_S`, one write of its
placeholder id (lease renewals every ``lease_s / 3`` only for answers that take that long).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType

from sqlalchemy import Table, and_, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from bot.message import IncomingMessage
from bot.models import ProcessedDelivery

logger = logging.getLogger(__name__)

DEFAULT_LEASE_S = 30.0
DEFAULT_MAX_ATTEMPTS = 3
# How often a held answer's placeholder id is compared with the one recorded (in memory; a
# write only when it changed): a replica killed this soon after posting one leaves it behind.
PROGRESS_CHECK_S = 1.0

_TABLE: Table = ProcessedDelivery.__table__  # type: ignore[attr-defined]


def new_replica_id() -> str:
    """A fresh id for this process's claims (unique per start, so a restarted replica does not
    mistake its predecessor's claims for its own)."""
    return uuid.uuid4().hex[:16]


def message_json(message: IncomingMessage) -> str:
    """The message as stored with its claim (every field of the neutral message)."""
    return json.dumps(dataclasses.asdict(message), ensure_ascii=False, separators=(",", ":"))


def message_from_json(raw: str) -> IncomingMessage:
    """The message :func:`message_json` stored; ValueError when it is not one."""
    try:
        fields = json.loads(raw)
        return IncomingMessage(**fields)
    except (TypeError, json.JSONDecodeError) as e:
        raise ValueError(f"not a stored message: {e}") from None


@dataclass(frozen=True, slots=True)
class Claim:
    """A claim this replica holds.

    ``attempts``: 1 for the first holder, more after takeovers. ``progress_id``: the
    placeholder (or message) a previous holder had posted, to remove before answering again.
    ``message``: the stored message (None when it was not stored: it cannot be answered again).
    """

    id: int
    platform: str
    key: str
    attempts: int = 1
    progress_id: str | None = None
    message: IncomingMessage | None = None

    @property
    def taken_over(self) -> bool:
        return self.attempts > 1


class ClaimStore:
    """The claims of one replica (``holder``) in the shared database; thread-safe."""

    def __init__(
        self,
        engine: Engine,
        *,
        holder: str | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if lease_s <= 0:
            raise ValueError(f"a lease must be positive, not {lease_s}")
        self._engine = engine
        self.holder = holder or new_replica_id()
        self.lease_s = lease_s
        self.max_attempts = max_attempts
        self._clock = clock or (lambda: datetime.now(UTC))

    @property
    def renew_s(self) -> float:
        """How often a held lease is renewed: three times per lease."""
        return self.lease_s / 3

    def _until(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.lease_s)

    # --- claiming ------------------------------------------------------------------------------

    def claim_once(self, platform: str, key: str) -> bool:
        """A permanent claim, done at once (a notice sent once per team): True the first time."""
        try:
            with self._engine.begin() as connection:
                connection.execute(
                    insert(_TABLE).values(
                        platform=platform, delivery_id=key, received_at=self._clock(), done=True
                    )
                )
        except IntegrityError:
            return False
        return True

    def claim(
        self, platform: str, key: str, message: IncomingMessage | None = None
    ) -> Claim | None:
        """Claim ``key`` under a lease; None when it is done or another holder's lease is live.

        ``message``: stored so another replica can answer it if this one dies (None: the
        reply cannot be made elsewhere, e.g. an interaction's; the claim is still leased).
        A repeat of an unfinished claim whose lease ran out takes it over (a Slack retry of a
        dead replica's event), unless it had ``max_attempts`` holders already.
        """
        now = self._clock()
        try:
            with self._engine.begin() as connection:
                result = connection.execute(
                    insert(_TABLE).values(
                        platform=platform,
                        delivery_id=key,
                        received_at=now,
                        done=False,
                        holder=self.holder,
                        lease_until=self._until(now),
                        attempts=1,
                        message=message_json(message) if message is not None else None,
                    )
                )
                claim_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        except IntegrityError:
            return self._take_over(
                and_(_TABLE.c.platform == platform, _TABLE.c.delivery_id == key),
                below=self.max_attempts,
            )
        return Claim(claim_id, platform, key, message=message)

    def expired(self, platforms: Collection[str], *, limit: int = 20) -> list[int]:
        """Ids of unfinished claims on ``platforms`` whose lease ran out, oldest first (the
        sweeper's question; answered from the ``(done, lease_until)`` index)."""
        if not platforms:
            return []
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(_TABLE.c.id)
                .where(_TABLE.c.done.is_(False))
                .where(_TABLE.c.lease_until < self._clock())
                .where(_TABLE.c.platform.in_(list(platforms)))
                .order_by(_TABLE.c.lease_until)
                .limit(limit)
            ).all()
        return [int(row[0]) for row in rows]

    def take_over(self, claim_id: int) -> Claim | None:
        """Take over the unfinished claim ``claim_id`` if its lease ran out; None when another
        replica did first, it was finished, or it is held again. The claim may be past its
        ``max_attempts`` (see :meth:`exhausted`): the sweeper then gives up on it."""
        return self._take_over(_TABLE.c.id == claim_id, below=None)

    def _take_over(self, where: object, *, below: int | None) -> Claim | None:
        """One conditional UPDATE: only one replica's can match an expired, unfinished row."""
        now = self._clock()
        condition = and_(
            where,  # type: ignore[arg-type]
            _TABLE.c.done.is_(False),
            _TABLE.c.lease_until < now,
        )
        if below is not None:
            condition = and_(condition, _TABLE.c.attempts < below)
        with self._engine.begin() as connection:
            won = connection.execute(
                update(_TABLE)
                .where(condition)
                .values(
                    holder=self.holder,
                    lease_until=self._until(now),
                    attempts=_TABLE.c.attempts + 1,
                )
            ).rowcount
            if won != 1:
                return None
            row = connection.execute(
                select(
                    _TABLE.c.id,
                    _TABLE.c.platform,
                    _TABLE.c.delivery_id,
                    _TABLE.c.attempts,
                    _TABLE.c.progress_id,
                    _TABLE.c.message,
                ).where(where)  # type: ignore[arg-type]
            ).one()
        message = None
        if row.message is not None:
            try:
                message = message_from_json(row.message)
            except ValueError as e:
                logger.warning("claim %s: the stored message is unreadable (%s)", row.id, e)
        claim = Claim(
            int(row.id),
            str(row.platform),
            str(row.delivery_id),
            attempts=int(row.attempts),
            progress_id=row.progress_id,
            message=message,
        )
        logger.info("took over claim %s (attempt %s)", claim.key, claim.attempts)
        return claim

    def exhausted(self, claim: Claim) -> bool:
        """The claim had more holders than ``max_attempts`` allows: give up on it."""
        return claim.attempts > self.max_attempts

    # --- holding -------------------------------------------------------------------------------

    def renew(self, claim: Claim, *, progress_id: str | None = None) -> bool:
        """Extend the lease (and record ``progress_id`` when given); False when the claim is no
        longer this replica's (taken over after a lapse, or already done)."""
        values: dict[str, object] = {"lease_until": self._until(self._clock())}
        if progress_id is not None:
            values["progress_id"] = progress_id
        with self._engine.begin() as connection:
            return (
                connection.execute(
                    update(_TABLE)
                    .where(_TABLE.c.id == claim.id)
                    .where(_TABLE.c.holder == self.holder)
                    .where(_TABLE.c.done.is_(False))
                    .values(**values)
                ).rowcount
                == 1
            )

    def finish(self, claim: Claim) -> bool:
        """Mark the claim done (the answer or notice is shown); the stored message is dropped.
        False when another replica holds it now (this one's lease had lapsed)."""
        with self._engine.begin() as connection:
            return (
                connection.execute(
                    update(_TABLE)
                    .where(_TABLE.c.id == claim.id)
                    .where(_TABLE.c.holder == self.holder)
                    .values(done=True, message=None, lease_until=None)
                ).rowcount
                == 1
            )


class Lease:
    """Holds a claim while its reply is made: renews the lease every ``store.renew_s``, records
    the placeholder id once it is shown and whenever it changes (checked every
    :data:`PROGRESS_CHECK_S`, written only on a change), and marks the claim done on exit.

    Used as ``async with Lease(store, claim) as lease: ... lease.watch(get_progress_id)``. On
    cancellation (the process is stopping) the claim is left unfinished: another replica takes
    it over when the lease runs out.
    """

    def __init__(self, store: ClaimStore, claim: Claim) -> None:
        self.store = store
        self.claim = claim
        self._progress: Callable[[], str | None] = lambda: None
        self._recorded: str | None = None
        self._task: asyncio.Task[None] | None = None
        self.lost = False

    def watch(self, progress_id: Callable[[], str | None]) -> None:
        """Record what ``progress_id()`` returns (the placeholder's id) while the claim is held."""
        self._progress = progress_id

    async def __aenter__(self) -> Lease:
        self._task = asyncio.create_task(self._keep(), name=f"lease {self.claim.key}")
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if isinstance(error, asyncio.CancelledError):
            return  # stopping: leave it to a takeover
        if error is not None:
            logger.warning("claim %s: the reply failed; not retried", self.claim.key)
        if not await asyncio.to_thread(self.store.finish, self.claim):
            logger.warning("claim %s was taken over by another replica", self.claim.key)

    async def _keep(self) -> None:
        loop = asyncio.get_running_loop()
        renew_at = loop.time() + self.store.renew_s
        while True:
            await asyncio.sleep(min(PROGRESS_CHECK_S, max(0.0, renew_at - loop.time())))
            current = self._progress()
            changed = current is not None and current != self._recorded
            if not changed and loop.time() < renew_at:
                continue
            try:
                held = await asyncio.to_thread(
                    self.store.renew, self.claim, progress_id=current if changed else None
                )
            except Exception as e:  # a database hiccup: try again at the next check
                logger.warning("claim %s: could not renew the lease: %s", self.claim.key, e)
                continue
            if changed:
                self._recorded = current
            renew_at = loop.time() + self.store.renew_s
            if not held and not self.lost:
                self.lost = True
                logger.warning("claim %s: lease lost to another replica", self.claim.key)
