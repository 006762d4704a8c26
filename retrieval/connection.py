"""One Weaviate client that outlives Weaviate restarts, moves and short outages.

weaviate-client binds a client to one address, and its gRPC calls retry an unreachable server
for about a minute (sleeping 1, 2, 4, 8, 16 and 32 s) before they fail. A bot that held one
client for its whole life hung on every question while Weaviate was down, and never found an
embedded server that came back on new ports. :class:`WeaviateConnection` owns the client:

- Before a call it asks ``locate`` where a healthy server is now (for the embedded server:
  the address recorded in the data directory, checked alive: a file read and a local HTTP
  request, about a millisecond) and builds a new client when the answer changed (new ports,
  or a new process on the old ones). ``fresh_s`` > 0 lets a success vouch for the server for
  that long instead, at the price of calls in that window meeting the client's minute-long
  retries when the server has just died.
- A client whose server is gone is closed at once: a call of another thread sleeping in the
  client's retries then fails at its next attempt instead of after a minute.
- When no server answers, the outage is logged once at WARNING and calls fail at once with
  :class:`WeaviateUnreachableError` instead of hanging; reconnecting is retried on later calls
  with capped exponential back-off, and the first success is logged at INFO.
- A call that failed anyway (the server died after the last check) is reported with
  :meth:`failed`, which re-checks and tells the caller whether a retry on a new client is worth
  it.

Times are seconds from an injected monotonic ``clock``; ``sleep`` waits them (tests pass fakes).
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import httpx
from weaviate import WeaviateClient
from weaviate.exceptions import (
    WeaviateClosedClientError,
    WeaviateConnectionError,
    WeaviateRetryError,
    WeaviateStartUpError,
    WeaviateTimeoutError,
)

from retrieval.errors import WeaviateUnreachableError

logger = logging.getLogger(__name__)

A = TypeVar("A", bound=Hashable)

_CONNECTION_ERRORS = (
    WeaviateClosedClientError,
    WeaviateConnectionError,
    WeaviateRetryError,
    WeaviateStartUpError,
    WeaviateTimeoutError,
    httpx.TransportError,
    ConnectionError,
)


class WeaviateConnection(Generic[A]):
    """The current client of one Weaviate, rebuilt when the server restarts or moves.

    ``locate()`` returns where a healthy server answers now (any hashable address; a new value
    means "build a new client") or None when none does; it must be quick and must not raise
    for an unreachable server. ``connect(address)`` builds a connected client for an address
    (it may raise). ``where`` names the server in messages ("the embedded Weaviate in …").
    Safe to share between threads.
    """

    def __init__(
        self,
        *,
        locate: Callable[[], A | None],
        connect: Callable[[A], WeaviateClient],
        where: str,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        fresh_s: float = 0.0,
        initial_backoff_s: float = 0.25,
        max_backoff_s: float = 5.0,
        grace_s: float = 2.0,
    ) -> None:
        """``fresh_s``: how long a success vouches for the server before the next check.
        ``initial_backoff_s`` … ``max_backoff_s``: the wait between reconnection attempts
        during an outage, doubling. ``grace_s``: how long the call that finds a new outage
        keeps retrying before it fails (a blip shorter than that is never seen by users)."""
        self._locate = locate
        self._connect = connect
        self.where = where
        self._clock = clock
        self._sleep = sleep
        self._fresh_s = fresh_s
        self._initial_backoff_s = initial_backoff_s
        self._max_backoff_s = max_backoff_s
        self._grace_s = grace_s
        self._lock = threading.RLock()
        self._client: WeaviateClient | None = None
        self._address: A | None = None
        self._last_ok = -math.inf
        self._down_since: float | None = None
        self._down_reason = ""
        self._backoff_s = initial_backoff_s
        self._next_attempt = -math.inf
        self._static = False
        self._ever_connected = False
        self._generation = 0  # counts the clients built: a call knows whether its was replaced

    @classmethod
    def fixed(cls, client: WeaviateClient) -> WeaviateConnection[str]:
        """A connection that always hands out ``client`` (tests, one-off scripts)."""
        connection: WeaviateConnection[str] = WeaviateConnection(
            locate=lambda: "fixed", connect=lambda _address: client, where="Weaviate"
        )
        connection._client, connection._address = client, "fixed"
        connection._static = True
        return connection

    @property
    def generation(self) -> int:
        """Which client :meth:`client` hands out now (pass it to :meth:`failed`)."""
        return self._generation

    @property
    def is_down(self) -> bool:
        """True while an outage is known (from its detection until a reconnection succeeds)."""
        return self._down_since is not None

    def client(self) -> WeaviateClient:
        """A client of a server that answered within ``fresh_s``, reconnecting if needed.

        Raises :class:`WeaviateUnreachableError` at once while an outage is known and the next
        reconnection attempt is not due yet.
        """
        with self._lock:
            client = self._client
            if client is not None and (
                self._static
                or (self._down_since is None and self._clock() - self._last_ok < self._fresh_s)
            ):
                return client
            return self._check()

    def mark_alive(self) -> None:
        """A call just succeeded: the server vouches for itself for another ``fresh_s``."""
        self._last_ok = self._clock()

    def failed(self, error: BaseException, *, generation: int | None = None) -> bool:
        """A call raised ``error``: True when a retry on a new client is worth it (the server
        moved or restarted, the client's channel broke, or another thread already replaced
        the client of ``generation``, the :attr:`generation` the call started with).

        Raises :class:`WeaviateUnreachableError` when no server answers; returns False for a
        server that is up and an error of the request itself.
        """
        if self._static:
            return False
        with self._lock:
            before = self._generation if generation is None else generation
            self._last_ok = -math.inf
            self._next_attempt = -math.inf  # check now, whatever the back-off said
            self._check()
            if self._generation != before:
                return True
            if _is_connection_error(error) and self._address is not None:
                logger.info("rebuilding the Weaviate client after: %s", _first_line(error))
                self._replace(self._address)
                return True
            return False

    def close(self) -> None:
        with self._lock:
            if self._client is not None and not self._static:
                _close_quietly(self._client)
            self._client, self._address = None, None

    # --- internals -----------------------------------------------------------------------------

    def _check(self) -> WeaviateClient:
        now = self._clock()
        if self._down_since is not None and now < self._next_attempt:
            raise WeaviateUnreachableError(self._down_message())
        new_outage = self._down_since is None
        deadline = now + (self._grace_s if new_outage and self._client is not None else 0.0)
        delay = self._initial_backoff_s
        while True:
            try:
                address = self._locate()
                if address is None:
                    raise WeaviateUnreachableError(f"{self.where} is not answering")
                if address != self._address or self._client is None:
                    self._replace(address)
                break
            except WeaviateUnreachableError as e:
                if self._clock() + delay > deadline:
                    self._mark_down(str(e))
                    raise WeaviateUnreachableError(self._down_message()) from None
                self._sleep(delay)
                delay = min(delay * 2, self._max_backoff_s)
        self._recovered()
        assert self._client is not None
        return self._client

    def _replace(self, address: A) -> None:
        """Build a client for ``address`` and retire the old one."""
        try:
            client = self._connect(address)
        except Exception as e:
            raise WeaviateUnreachableError(
                f"cannot connect to {self.where}: {_first_line(e)}"
            ) from e
        old, self._client, self._address = self._client, client, address
        self._generation += 1
        if old is not None:
            _close_quietly(old)

    def _mark_down(self, reason: str) -> None:
        now = self._clock()
        if self._down_since is None:
            self._down_since, self._down_reason = now, reason
            self._backoff_s = self._initial_backoff_s
            log = logger.warning if self._ever_connected else logger.debug  # start-up: raised
            log(
                "lost Weaviate: %s; its calls fail until it is back, "
                "reconnecting with back-off (at most %.0f s apart)",
                reason,
                self._max_backoff_s,
            )
        else:
            self._backoff_s = min(self._backoff_s * 2, self._max_backoff_s)
        self._next_attempt = now + self._backoff_s
        if self._client is not None:  # its channels point at a dead server: let them go
            _close_quietly(self._client)
            self._client, self._address = None, None

    def _recovered(self) -> None:
        now = self._clock()
        if self._down_since is not None:
            logger.info(
                "Weaviate is back (%s) after %.1f s; reconnected",
                self.where,
                now - self._down_since,
            )
        self._down_since, self._down_reason = None, ""
        self._backoff_s = self._initial_backoff_s
        self._next_attempt = -math.inf
        self._last_ok = now
        self._ever_connected = True

    def _down_message(self) -> str:
        return f"{self._down_reason}; retrying"


def http_answering(base_url: str, *, timeout_s: float = 2.0) -> bool:
    """True when the Weaviate at ``base_url`` (``http://host:port``) answers (``/live``).

    Not ``/ready``: a node of a cluster reports itself not ready (503) for as long as a peer
    is unreachable (its gossip health score is not 0), yet it serves reads and writes with the
    replicas that are left; a bot that took that for "down" would refuse every question while
    one node of three is lost.
    """
    try:
        response = httpx.get(f"{base_url.rstrip('/')}/v1/.well-known/live", timeout=timeout_s)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def _is_connection_error(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) says the connection, not the request, failed."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _CONNECTION_ERRORS):
            return True
        if "StatusCode.UNAVAILABLE" in str(current):  # a gRPC error the client re-wrapped
            return True
        current = current.__cause__ or current.__context__
    return False


def _close_quietly(client: WeaviateClient) -> None:
    with contextlib.suppress(Exception):
        client.close()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__
