"""The claim sweeper: answers the questions of replicas that died mid-answer.

Each bot process runs one :class:`Sweeper` (``supportbot run``). Every ``interval_s`` it asks
the database for unfinished claims whose lease ran out (:meth:`ClaimStore.expired`), takes
each over with a conditional write that only one replica wins, and answers the stored message
again through the one reply flow (:meth:`ReplyFlow.resume`), with an outbound built for the
message's platform and team (:data:`OutboundFactory`: a Slack client with that team's token).
The flow first removes the dead replica's placeholder, so the thread shows one answer.

A claim taken over more than ``max_attempts`` times (every holder died, or its answer kills
the process) is given up: logged, an apology posted in its thread where possible, and marked
done. A platform without a factory here (Discord, whose messages are resumed only by its own
process) is not swept.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from bot.claims import Claim, ClaimStore
from bot.message import IncomingMessage
from bot.reply import Outbound, ReplyFlow
from bot.service import APOLOGY
from retrieval.prompts import is_korean

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 5.0

# The outbound for a stored message's conversation; None when it cannot be built (the team's
# installation is gone).
OutboundFactory = Callable[[IncomingMessage], Awaitable[Outbound | None]]


class Sweeper:
    """Takes over and answers expired claims on the platforms it has outbounds for."""

    def __init__(
        self,
        flow: ReplyFlow,
        outbounds: Mapping[str, OutboundFactory],
        *,
        claims: ClaimStore | None = None,
        interval_s: float = DEFAULT_INTERVAL_S,
    ) -> None:
        """``flow``: the platform's reply flow (its handlers, controls and placeholder removal).
        ``outbounds``: platform name -> factory. ``claims``: the flow service's by default."""
        self._flow = flow
        self._outbounds = dict(outbounds)
        self._claims = claims or flow.service.claims
        self.interval_s = interval_s
        self.resumed = 0
        self.given_up = 0

    async def run(self) -> None:
        """Sweep every ``interval_s`` until cancelled; a failed sweep is logged, not fatal."""
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.sweep()
            except Exception as e:  # the database is down: next time
                logger.warning("claim sweep failed: %s", e)

    async def sweep(self) -> int:
        """Take over and answer the expired claims now; returns how many this replica took."""
        ids = await asyncio.to_thread(self._claims.expired, list(self._outbounds))
        taken = 0
        for claim_id in ids:
            claim = await asyncio.to_thread(self._claims.take_over, claim_id)
            if claim is None:  # another replica was faster
                continue
            taken += 1
            await self._resume(claim)
        return taken

    async def _resume(self, claim: Claim) -> None:
        message = claim.message
        if message is None:  # nothing stored to answer with: nothing more can be done
            logger.warning("claim %s expired and cannot be answered elsewhere", claim.key)
            await asyncio.to_thread(self._claims.finish, claim)
            return
        try:
            outbound = await self._outbounds[claim.platform](message)
        except Exception as e:
            logger.warning("claim %s: no way to answer in %s: %s", claim.key, message.team_id, e)
            outbound = None
        if outbound is None:
            # Leave it: the lease runs out again and the next holder may manage (attempts).
            if self._claims.exhausted(claim):
                await self._give_up(claim, None)
            return
        if self._claims.exhausted(claim):
            await self._give_up(claim, outbound)
            return
        logger.warning(
            "answering %s again (attempt %s): its replica stopped mid-answer",
            claim.key,
            claim.attempts,
        )
        try:
            await self._flow.resume(claim, outbound)
            self.resumed += 1
        except Exception:
            logger.exception("claim %s: answering again failed", claim.key)

    async def _give_up(self, claim: Claim, outbound: Outbound | None) -> None:
        """Stop retrying: an apology where possible, and the claim done."""
        self.given_up += 1
        logger.error(
            "giving up on %s after %s attempts: sorry posted where possible",
            claim.key,
            claim.attempts - 1,
        )
        if outbound is not None and claim.message is not None:
            if claim.progress_id and self._flow.discard_progress is not None:
                try:
                    await self._flow.discard_progress(outbound, claim.progress_id)
                except Exception as e:
                    logger.warning("could not remove %s's old placeholder: %s", claim.key, e)
            try:
                await outbound.apologize(APOLOGY["ko" if is_korean(claim.message.text) else "en"])
            except Exception as e:
                logger.warning("could not apologize for %s: %s", claim.key, e)
        await asyncio.to_thread(self._claims.finish, claim)
