"""Syncs triggered by the platforms' own events, where they send them.

The Slack bot already receives ``message`` events for channels it is in; a reply in a thread
(``thread_ts`` set) means the thread's Q&A document may have changed. Calling
:func:`slack_thread_changed` from that handler queues a sync of just that thread for every
Slack source of the workspace that follows the channel, so the answer is searchable within
seconds instead of at the next scheduled sync::

    await slack_thread_changed(app.sync_sources, queue, workspace="acme",
                               channel=event["channel"], thread_ts=event["thread_ts"])
"""

from __future__ import annotations

import asyncio

from sync.models import SourceKind
from sync.queue import SyncQueue
from sync.sources import SourceRepository


async def slack_thread_changed(
    sources: SourceRepository, queue: SyncQueue, *, workspace: str, channel: str, thread_ts: str
) -> list[str]:
    """Queue the thread's sync in every Slack source following ``channel``; returns them."""
    infos = await asyncio.to_thread(sources.list, workspace)
    queued = []
    for info in infos:
        if info.kind == SourceKind.SLACK.value and channel in info.config.get("channels", []):
            await queue.enqueue_documents(
                workspace, info.name, [f"{channel}/{thread_ts}"], trigger="slack-event"
            )
            queued.append(info.name)
    return queued
