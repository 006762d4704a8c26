"""Discord channels and forums: threads turned into question-and-answer documents, over REST.

Plain HTTPS against ``DISCORD_API_URL`` (no gateway): the guild's active threads
(``/guilds/{id}/threads/active``) and each channel's archived public threads
(``/channels/{id}/threads/archived/public``) whose parent is a configured channel (a text
channel's threads or a forum's posts), then each thread's messages. The question is the
thread's title and first message; the answer is the reply with a ✅ reaction, else the
most-reacted reply, else the last one, by someone other than the asker and never by a bot.
A thread is read again when its last message changed or it was active in the last
``recent_days``; deleted threads are removed.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sync.connectors.base import (
    Checkpoint,
    Connector,
    Document,
    Item,
    Planned,
    SyncContext,
    Unchanged,
    require_list,
)
from sync.errors import CredentialsError, SourceConfigError, SourceUnavailableError
from sync.models import SourceKind

DEFAULT_API_URL = "https://discord.com/api/v10"
DISCORD_EPOCH_MS = 1_420_070_400_000
ACCEPTED_EMOJI = frozenset({"✅", "☑️", "✔️", "white_check_mark", "heavy_check_mark"})
THREAD_TYPES = frozenset({10, 11, 12})
STARTER_MESSAGE = 21
_SNOWFLAKE = re.compile(r"^\d{1,20}$")
_MENTION = re.compile(r"<@!?(\d+)>")
_CHANNEL_MENTION = re.compile(r"<#(\d+)>")


class DiscordConnector(Connector):
    kind = SourceKind.DISCORD
    needs_credentials = True

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        channels = require_list(config, "channels")
        guild = config.get("guild")
        if not channels:
            raise SourceConfigError("a discord source needs --channel ID (repeatable)")
        if not isinstance(guild, str) or not _SNOWFLAKE.match(guild):
            raise SourceConfigError("a discord source needs --guild ID (the server's id)")
        bad = [c for c in channels if not _SNOWFLAKE.match(c)]
        if bad:
            raise SourceConfigError(f"not a Discord channel id: {bad[0]!r}")
        recent = int(config.get("recent_days", 7))
        return {"channels": list(dict.fromkeys(channels)), "guild": guild, "recent_days": recent}

    def authorization(self, credentials: Mapping[str, Any]) -> str | None:
        token = credentials.get("token")
        return f"Bot {token}" if token else None

    @property
    def _base(self) -> str:
        return (self.api_url or DEFAULT_API_URL).rstrip("/")

    async def _get(self, ctx: SyncContext, path: str, **params: Any) -> Any:
        response = await ctx.http.get(self._base + path, params=params or None)
        if response.status_code == 200:
            return response.json()
        try:
            body = response.json()
        except ValueError:
            body = {}
        message = body.get("message", "") if isinstance(body, dict) else ""
        if response.status_code == 401:
            raise CredentialsError(
                "Discord refused the source's bot token (401); add the source again with a "
                "valid token (--replace)"
            )
        if response.status_code in (403, 404):
            raise _NotVisible(f"Discord {path}: HTTP {response.status_code} {message}".strip())
        raise SourceUnavailableError(f"Discord {path}: HTTP {response.status_code} {message}")

    async def stream(self, ctx: SyncContext) -> AsyncIterator[Item]:
        threads = await self._threads(ctx)
        yield Planned(len(threads))
        now = datetime.now(UTC).timestamp()
        recent_s = float(self.config.get("recent_days", 7)) * 86400
        for n, thread in enumerate(threads, start=1):
            thread_id = str(thread["id"])
            version = f"{thread.get('last_message_id')}|{thread.get('message_count')}"
            last = _snowflake_time(str(thread.get("last_message_id") or thread_id))
            if ctx.version_of(thread_id) == version and now - last > recent_s:
                yield Unchanged(thread_id)
            else:
                yield await self._document(ctx, thread, version)
            if n % 50 == 0:
                yield Checkpoint(None)

    async def fetch(self, ctx: SyncContext, ids: Sequence[str]) -> AsyncIterator[Item]:
        for thread_id in ids:
            try:
                thread = await self._get(ctx, f"/channels/{thread_id}")
            except _NotVisible:
                yield Document(id=thread_id, deleted=True)
                continue
            if thread.get("parent_id") in self.config["channels"]:
                version = f"{thread.get('last_message_id')}|{thread.get('message_count')}"
                yield await self._document(ctx, thread, version)

    async def _threads(self, ctx: SyncContext) -> list[dict[str, Any]]:
        channels = set(self.config["channels"])
        found: dict[str, dict[str, Any]] = {}
        try:
            active = await self._get(ctx, f"/guilds/{self.config['guild']}/threads/active")
        except _NotVisible as e:
            raise SourceUnavailableError(f"{e}; is the bot in that server?") from e
        for thread in active.get("threads", []):
            if thread.get("parent_id") in channels and thread.get("type") in THREAD_TYPES:
                found[str(thread["id"])] = thread
        for channel in self.config["channels"]:
            before: str | None = None
            while True:
                params: dict[str, Any] = {"limit": 100}
                if before:
                    params["before"] = before
                try:
                    page = await self._get(
                        ctx, f"/channels/{channel}/threads/archived/public", **params
                    )
                except _NotVisible as e:
                    raise SourceUnavailableError(
                        f"{e}; check the channel id and the bot's Read Message History permission"
                    ) from e
                threads = page.get("threads", [])
                for thread in threads:
                    found.setdefault(str(thread["id"]), thread)
                if not page.get("has_more") or not threads:
                    break
                before = str(threads[-1]["thread_metadata"]["archive_timestamp"])
        return sorted(found.values(), key=lambda t: int(t["id"]))

    async def _messages(self, ctx: SyncContext, channel_id: str) -> list[dict[str, Any]]:
        """Every message of a thread, oldest first."""
        messages: list[dict[str, Any]] = []
        before: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 100}
            if before:
                params["before"] = before
            page = await self._get(ctx, f"/channels/{channel_id}/messages", **params)
            messages.extend(page)
            if len(page) < 100:
                break
            before = str(page[-1]["id"])
        return sorted(messages, key=lambda m: int(m["id"]))

    async def _document(self, ctx: SyncContext, thread: Mapping[str, Any], version: str) -> Item:
        thread_id = str(thread["id"])
        try:
            messages = await self._messages(ctx, thread_id)
        except _NotVisible:
            return Document(id=thread_id, deleted=True)
        readable = [m for m in messages if m.get("type") != STARTER_MESSAGE]
        if readable and not any(m.get("content") or m.get("attachments") for m in readable):
            raise SourceUnavailableError(
                "Discord sends the messages without their text: switch on the Message Content "
                "intent (Developer Portal > Bot > Privileged Gateway Intents)"
            )
        starter = messages[0] if messages else None
        if starter is not None and starter.get("type") == STARTER_MESSAGE:
            # A thread started from a channel message: the question is that message.
            try:
                starter = await self._get(
                    ctx, f"/channels/{thread.get('parent_id')}/messages/{thread_id}"
                )
            except _NotVisible:
                starter = None
        messages = messages[1:]
        asker = str((starter or {}).get("author", {}).get("id") or thread.get("owner_id"))
        title = " ".join(str(thread.get("name") or "").split())
        body = clean_discord_text(str((starter or {}).get("content") or ""))
        answer = accepted_answer(asker, messages)
        if not (title or body) or answer is None:
            return Document(id=thread_id, deleted=True, version=version)  # no Q&A (yet)
        question = title if not body or body == title else f"{title}\n{body}"
        return Document(
            id=thread_id,
            title=title or body.splitlines()[0][:100],
            text=f"Question: {question}\n\nAnswer: {clean_discord_text(str(answer['content']))}",
            url=f"https://discord.com/channels/{self.config['guild']}/{thread_id}",
            updated_at=datetime.fromtimestamp(_snowflake_time(str(answer["id"])), UTC),
            version=version,
        )


class _NotVisible(SourceUnavailableError):
    """403/404: the bot cannot see it (gone, or no permission)."""


def accepted_answer(asker: str, replies: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    candidates = [
        m
        for m in replies
        if not (m.get("author") or {}).get("bot")
        and str((m.get("author") or {}).get("id")) != asker
        and m.get("type", 0) in (0, 19)
        and clean_discord_text(str(m.get("content") or ""))
    ]
    if not candidates:
        return None
    for message in candidates:
        for reaction in message.get("reactions") or []:
            if (reaction.get("emoji") or {}).get("name") in ACCEPTED_EMOJI:
                return message
    votes = [sum(int(r.get("count") or 0) for r in m.get("reactions") or []) for m in candidates]
    if max(votes) > 0:
        return candidates[votes.index(max(votes))]
    return candidates[-1]


def clean_discord_text(text: str) -> str:
    text = _MENTION.sub("@user", text)
    text = _CHANNEL_MENTION.sub("#channel", text)
    return text.strip()


def _snowflake_time(snowflake: str) -> float:
    try:
        return ((int(snowflake) >> 22) + DISCORD_EPOCH_MS) / 1000
    except ValueError:
        return 0.0
