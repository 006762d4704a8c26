"""The HTTP client every connector uses: budget, retries and token refresh in the transport.

Putting the policy in an ``httpx`` transport means it applies to every request a connector
makes, whether directly (web, Slack, Discord) or through a service's own client library (the
Notion client takes an ``httpx.AsyncClient``), and no connector can forget it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpcore
import httpx

from retrieval.formats.limits import FileLimits
from sync.addresses import AddressPolicy, GuardedBackend
from sync.errors import CredentialsError, FetchLimitError, SourceUnavailableError
from sync.policy import (
    TRANSIENT_STATUSES,
    Clock,
    RequestBudget,
    RetryPolicy,
    Sleep,
    retry_after_seconds,
)

logger = logging.getLogger(__name__)

USER_AGENT = "supportbot-sync/0.1 (+https://github.com/supportbot; knowledge sync)"


@dataclass(frozen=True, slots=True)
class FetchLimits:
    """What a source that downloads pages and files (web) may download."""

    max_response_bytes: int = 20_000_000
    """One page or file, in bytes (``MAX_FILE_MB``)."""
    max_sitemap_bytes: int = 50 * 1024 * 1024
    """One sitemap after decompression, in bytes (the protocol's own limit is 50 MB)."""
    max_sync_bytes: int = 2 * 1024**3
    """Everything one sync run downloads, in bytes (``SYNC_MAX_MB_PER_SYNC``)."""
    file: FileLimits = field(default_factory=FileLimits)
    """Extraction limits per page (time, output), as for ingested files."""


class DownloadBudget:
    """Bytes one sync run has downloaded, against :attr:`FetchLimits.max_sync_bytes`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, size: int) -> None:
        """Count ``size`` more bytes; raises :class:`FetchLimitError` past the limit."""
        self.used += size
        if self.used > self.limit:
            raise FetchLimitError(
                f"this sync downloaded over {self.limit / 1024**2:,.0f} MB, its limit "
                "(SYNC_MAX_MB_PER_SYNC); nothing was removed, and the next sync resumes"
            )


@dataclass(slots=True)
class RequestStats:
    """What a sync's requests cost, for its run record."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    waited_s: float = 0.0


class AuthState:
    """The ``Authorization`` header a source sends, and how to get a new one when it expires.

    ``refresh`` asks the connector's token endpoint for a new token and stores it (encrypted);
    concurrent requests that all get 401 share one refresh.
    """

    def __init__(
        self, header: str | None, refresh: Callable[[], Awaitable[str]] | None = None
    ) -> None:
        self.header = header
        self._refresh = refresh
        self._lock = asyncio.Lock()
        self.generation = 0

    def set_refresh(self, refresh: Callable[[], Awaitable[str]]) -> None:
        self._refresh = refresh

    @property
    def can_refresh(self) -> bool:
        return self._refresh is not None

    async def refresh(self, seen_generation: int) -> None:
        if self._refresh is None:
            raise CredentialsError("the token was rejected and this source cannot refresh it")
        async with self._lock:
            if self.generation != seen_generation:
                return  # another request refreshed it meanwhile
            self.header = await self._refresh()
            self.generation += 1


class PolicyTransport(httpx.AsyncBaseTransport):
    """Wraps a transport with the source's budget, retry policy and token refresh."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        budget: RequestBudget,
        policy: RetryPolicy,
        stats: RequestStats,
        auth: AuthState | None = None,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._inner = inner
        self._budget = budget
        self._policy = policy
        self._stats = stats
        self._auth = auth
        self._clock = clock
        self._sleep = sleep
        self._rand = rand

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        attempt = 0
        rate_limited_s = 0.0
        refreshed = False
        injected = False  # a request that brings its own credentials (OAuth) keeps them
        where = f"{request.method} {request.url.copy_with(query=None)}"
        while True:
            self._stats.waited_s += await self._budget.acquire()
            generation = 0
            if self._auth is not None:
                generation = self._auth.generation
                if self._auth.header and (injected or "authorization" not in request.headers):
                    request.headers["Authorization"] = self._auth.header
                    injected = True
            self._stats.requests += 1
            try:
                response = await self._inner.handle_async_request(request)
            except httpx.UnsupportedProtocol:
                raise  # a redirect to file://, gopher://...: no retry changes that
            except httpx.TransportError as e:
                attempt += 1
                if attempt >= self._policy.max_attempts:
                    raise
                await self._retry_later(self._policy.backoff(attempt, self._rand), where, e)
                continue
            status = response.status_code
            retry_after = retry_after_seconds(response.headers, now=self._clock())
            if status == 429 or (status == 503 and retry_after is not None):
                await response.aclose()
                delay = (
                    retry_after
                    if retry_after is not None
                    else self._policy.backoff(attempt + 1, self._rand)
                )
                rate_limited_s += delay
                if rate_limited_s > self._policy.max_rate_limited_s:
                    raise SourceUnavailableError(
                        f"{where}: still rate limited after waiting {rate_limited_s - delay:.0f}s"
                        f" (Retry-After {delay:.0f}s); the sync resumes on its next run"
                    )
                self._stats.rate_limited += 1
                self._budget.pause(delay)
                await self._retry_later(0.0, where, f"HTTP 429, Retry-After {delay:g}s")
                continue
            if status in TRANSIENT_STATUSES:
                attempt += 1
                if attempt >= self._policy.max_attempts:
                    return response
                await response.aclose()
                await self._retry_later(
                    self._policy.backoff(attempt, self._rand), where, f"HTTP {status}"
                )
                continue
            if status == 401 and injected and self._auth is not None and self._auth.can_refresh:
                if refreshed:
                    return response
                await response.aclose()
                refreshed = True
                await self._auth.refresh(generation)
                continue
            return response

    async def _retry_later(self, delay: float, where: str, reason: object) -> None:
        self._stats.retries += 1
        logger.info("%s: %s; retrying in %.2fs", where, reason, delay)
        if delay > 0:
            self._stats.waited_s += delay
            await self._sleep(delay)

    async def aclose(self) -> None:
        await self._inner.aclose()


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a connection pool whose connections go through
    :class:`~sync.addresses.GuardedBackend` (httpx takes no network backend of its own)."""

    def __init__(self, addresses: AddressPolicy, *, limits: httpx.Limits) -> None:
        super().__init__(limits=limits, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(addresses),
        )


def policy_client(
    *,
    budget: RequestBudget,
    policy: RetryPolicy,
    stats: RequestStats,
    auth: AuthState | None = None,
    timeout_s: float = 30.0,
    sleep: Sleep = asyncio.sleep,
    max_connections: int = 16,
    addresses: AddressPolicy | None = None,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` whose every request goes through the source's policy.

    With ``addresses``, every connection (redirects included) is checked against it; see
    :mod:`sync.addresses`. Without, connections go anywhere (API sources at configured URLs).
    """
    pool_limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=8)
    inner: httpx.AsyncBaseTransport
    if addresses is not None:
        inner = GuardedTransport(addresses, limits=pool_limits)
    else:
        inner = httpx.AsyncHTTPTransport(limits=pool_limits)
    transport = PolicyTransport(
        inner, budget=budget, policy=policy, stats=stats, auth=auth, sleep=sleep
    )
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(timeout_s, connect=10.0),
        headers={"User-Agent": USER_AGENT},
        follow_redirects=True,
    )
