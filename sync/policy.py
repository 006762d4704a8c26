"""How a source talks to a busy service: a request budget, and a retry policy.

Each source gets its own :class:`RequestBudget` (a token bucket), so a source that is being
rate limited slows itself down without taking turns from any other source. The
:class:`RetryPolicy` says how long to wait: a 429's ``Retry-After`` exactly (seconds or an
HTTP date), other transient failures exponentially longer with jitter, so that many clients
failing together do not retry together. Time is injected (``clock``, ``sleep``, ``rand``):
tests run the policy without waiting.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

# Statuses worth another try: the service is overloaded or restarting, not refusing us.
TRANSIENT_STATUSES = frozenset({500, 502, 503, 504, 520, 522, 524})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retry limits; the defaults suit a background sync that may wait but should not hang."""

    max_attempts: int = 6
    """Tries of one request for transient errors (5xx, resets, timeouts), the first included."""
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_rate_limited_s: float = 900.0
    """Total ``Retry-After`` one request may wait; past it the sync fails and resumes later."""

    def backoff(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Delay before try ``attempt + 1`` (``attempt`` >= 1): exponential, "equal jitter".

        Half the exponential delay is fixed and half is random: retries spread out, yet never
        come back at once.
        """
        ceiling = min(self.max_delay_s, self.base_delay_s * (2 ** max(0, attempt - 1)))
        return ceiling / 2 + rand() * ceiling / 2


def retry_after_seconds(headers: Mapping[str, str], *, now: float) -> float | None:
    """``Retry-After`` as seconds from ``now`` (epoch seconds); ``None`` when absent or bad.

    Services send whole seconds, fractions (Discord) or an HTTP date.
    """
    value = headers.get("retry-after") or headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, moment.timestamp() - now)


class RequestBudget:
    """A token bucket: at most ``rate`` requests a second on average, bursts of ``burst``.

    :meth:`pause` empties it for a while: after a 429 every request of the source waits out
    the ``Retry-After``, not only the one that got it.
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: int | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.rate = rate
        self.burst = float(burst if burst is not None else max(1, round(rate)))
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._updated = clock()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> float:
        """Take one request's token, waiting as needed; returns the seconds waited."""
        waited = 0.0
        async with self._lock:  # first come, first served
            while True:
                now = self._clock()
                if now < self._paused_until:
                    delay = self._paused_until - now
                else:
                    self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
                    self._updated = now
                    if self._tokens >= 1 - 1e-9:  # float dust must not cause a tiny wait
                        self._tokens = max(0.0, self._tokens - 1)
                        return waited
                    delay = (1 - self._tokens) / self.rate
                await self._sleep(delay)
                waited += delay

    def pause(self, seconds: float) -> None:
        """No request of this source before ``seconds`` from now."""
        until = self._clock() + seconds
        if until > self._paused_until:
            self._paused_until = until
            self._tokens = 1.0  # one request when the pause ends, then the usual rate
            self._updated = until
