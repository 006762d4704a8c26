"""Slash-command registration that never takes the bot down.

Registering the commands (one bulk overwrite, ``PUT /applications/{id}/commands``) is a
nice-to-have: mentions, DMs, forum posts, reactions and buttons all work without it. So it runs
as a background task beside the gateway, never in its way, and any failure is logged in one line
and tried again later, with exponential backoff, until Discord accepts it:

- Discord answers an error (4xx, 5xx after discord.py's own retries): ``discord.HTTPException``;
- Discord (or a proxy in front of it) answers 2xx with a body that is not the list of commands:
  discord.py then fails while reading it, with ``TypeError`` (a text or a JSON object),
  ``KeyError`` (objects without ``id``/``name``...), ``ValueError`` (invalid JSON);
- the answer parses but does not name every command sent: not registered either.

A 429 is waited out by discord.py itself. Cancelling the task (the bot closing) stops it at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import discord
from discord import app_commands

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Seconds to wait before each new attempt: ``first_s``, then times ``factor`` up to
    ``max_s``, each spread by ±``jitter`` (a fraction) so that many bots do not retry at once.
    The spread never takes a delay past ``max_s``: the cap is what the README promises."""

    first_s: float = 10.0
    factor: float = 2.0
    max_s: float = 1800.0
    jitter: float = 0.1

    def delays(self, rng: Callable[[], float] = random.random) -> Iterator[float]:
        delay = self.first_s
        while True:
            yield min(self.max_s, delay * (1 + self.jitter * (2 * rng() - 1)))
            delay = min(self.max_s, delay * self.factor)


def describe_failure(error: BaseException) -> str:
    """One line saying why a registration failed, without the request (no token in it)."""
    if isinstance(error, discord.HTTPException):
        detail = " ".join((error.text or "").split())[:200]
        code = f", code {error.code}" if error.code else ""
        return f"Discord answered {error.status}{code}: {detail or error.response.reason}"
    if isinstance(error, (TypeError, KeyError, ValueError, AttributeError)):
        return f"Discord's answer was not the list of commands ({type(error).__name__}: {error})"
    return f"{type(error).__name__}: {error}"


class CommandRegistration:
    """Registers a :class:`~discord.app_commands.CommandTree`'s commands, retrying until done.

    ``sync`` defaults to ``tree.sync`` (global commands). ``sleep`` is injectable for tests.
    State for callers and tests: :attr:`registered` (an event set once Discord accepted them),
    :attr:`attempts`, :attr:`last_error` (the one-line reason of the last failure).
    """

    def __init__(
        self,
        tree: app_commands.CommandTree[Any],
        *,
        backoff: Backoff | None = None,
        sync: Callable[[], Awaitable[list[app_commands.AppCommand]]] | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self._tree = tree
        self._backoff = backoff or Backoff()
        self._sync = sync or tree.sync
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None
        self.registered = asyncio.Event()
        self.attempts = 0
        self.last_error: str | None = None

    def start(self) -> asyncio.Task[None]:
        """Start registering in the background (once: a second call returns the same task)."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="discord-command-registration")
        return self._task

    async def stop(self) -> None:
        """Stop trying (the bot is closing); nothing is raised."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def run(self) -> None:
        """Try until Discord accepts the commands; never raises (but lets cancellation through)."""
        delays = self._backoff.delays()
        while True:
            self.attempts += 1
            try:
                synced = await self._sync()
                self._check(synced)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # any failure: the bot keeps answering without the commands
                self.last_error = describe_failure(e)
                delay = next(delays)
                logger.warning(
                    "could not register the slash commands (attempt %d): %s; retrying in %.0f s",
                    self.attempts,
                    self.last_error,
                    delay,
                )
                await self._sleep(delay)
                continue
            self.last_error = None
            self.registered.set()
            logger.info(
                "registered %d slash commands: %s",
                len(synced),
                ", ".join(sorted(c.name for c in synced)),
            )
            return

    def _check(self, synced: Any) -> None:
        """Raise ``ValueError`` when the answer does not name every command that was sent."""
        if not isinstance(synced, list):
            raise ValueError(f"expected a list, got {type(synced).__name__}")
        sent = {c.name for c in self._tree.get_commands()}
        named = {getattr(c, "name", None) for c in synced}
        missing = sorted(sent - named)
        if missing:
            raise ValueError(f"the answer does not list {', '.join(missing)}")
