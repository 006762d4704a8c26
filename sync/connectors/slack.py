"""Slack channels: threads turned into question-and-answer documents.

``conversations.history`` lists a channel's messages; a message with replies is a question, and
``conversations.replies`` gives its thread. The answer is the reply marked accepted (a ✅
``white_check_mark`` reaction, or ``heavy_check_mark``), else the most-reacted reply, else the
last reply, always by someone other than the asker and never by a bot (the support bot's own
answers must not become its knowledge). Chatter (no replies, no human answer, joins and other
system messages) is skipped. Each document links to the thread (Slack's permalink form).

Incremental: a thread is fetched again only when its reply count or latest reply changed, or
when it was active in the last ``recent_days`` (reactions and edits change no counter). A
thread that disappears from the history is removed. Tokens that Slack expired (token rotation:
``token_expired``) are refreshed with the stored refresh token through ``oauth.v2.access``.
"""

from __future__ import annotations

import html
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

DEFAULT_API_URL = "https://slack.com/api/"
ACCEPTED_REACTIONS = frozenset({"white_check_mark", "heavy_check_mark", "ballot_box_with_check"})
SKIPPED_SUBTYPES = frozenset(
    {"channel_join", "channel_leave", "channel_topic", "channel_purpose", "channel_name",
     "bot_message", "tombstone", "pinned_item", "channel_archive", "channel_unarchive"}
)  # fmt: skip
_CHANNEL = re.compile(r"^[CG][A-Z0-9]{2,}$")
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|([^>]+))?>")
_CHANNEL_REF = re.compile(r"<#([CG][A-Z0-9]+)(?:\|([^>]*))?>")
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]+))?>")
_SPECIAL = re.compile(r"<!(\w+)(?:\|([^>]+))?>")


class SlackApiError(SourceUnavailableError):
    def __init__(self, method: str, error: str) -> None:
        super().__init__(f"Slack {method}: {error}")
        self.error = error


class SlackConnector(Connector):
    kind = SourceKind.SLACK
    needs_credentials = True

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        channels = require_list(config, "channels")
        if not channels:
            raise SourceConfigError("a slack source needs --channel C... (repeatable)")
        bad = [c for c in channels if not _CHANNEL.match(c)]
        if bad:
            raise SourceConfigError(f"not a Slack channel id: {bad[0]!r} (ids look like C0123ABC)")
        recent = int(config.get("recent_days", 7))
        return {"channels": list(dict.fromkeys(channels)), "recent_days": max(0, recent)}

    def authorization(self, credentials: Mapping[str, Any]) -> str | None:
        token = credentials.get("token")
        return f"Bearer {token}" if token else None

    @property
    def _base(self) -> str:
        base = self.api_url or DEFAULT_API_URL
        return base if base.endswith("/") else base + "/"

    async def _call(self, ctx: SyncContext, method: str, **params: Any) -> dict[str, Any]:
        """One Web API call; an expired token is refreshed once and the call repeated."""
        for attempt in (1, 2):
            response = await ctx.http.post(self._base + method, data=params)
            try:
                body = response.json()
            except ValueError:
                raise SourceUnavailableError(
                    f"Slack {method}: HTTP {response.status_code}, not JSON"
                ) from None
            if body.get("ok"):
                return dict(body)
            error = str(body.get("error") or f"HTTP {response.status_code}")
            if error == "token_expired" and attempt == 1 and ctx.refresh_credentials:
                await ctx.refresh_credentials()
                continue
            if error in ("invalid_auth", "token_revoked", "account_inactive", "token_expired"):
                raise CredentialsError(
                    f"Slack refused the source's token ({error}); add the source again with a "
                    "valid token (--replace)"
                )
            raise SlackApiError(method, error)
        raise AssertionError("unreachable")

    async def refresh_credentials(
        self, credentials: Mapping[str, Any], http: Any
    ) -> dict[str, Any]:
        refresh = credentials.get("refresh_token")
        if not refresh:
            return await super().refresh_credentials(credentials, http)
        response = await http.post(
            self._base + "oauth.v2.access",
            data={
                "grant_type": "refresh_token",
                "refresh_token": refresh,
                "client_id": credentials.get("client_id", ""),
                "client_secret": credentials.get("client_secret", ""),
            },
        )
        body = response.json()
        if not body.get("ok") or not body.get("access_token"):
            raise CredentialsError(
                f"Slack refused to refresh the token ({body.get('error', 'no token')}); "
                "add the source again with a new token"
            )
        fresh = dict(credentials)
        fresh["token"] = body["access_token"]
        fresh["refresh_token"] = body.get("refresh_token") or refresh
        return fresh

    # --- listing ---------------------------------------------------------------------------

    async def stream(self, ctx: SyncContext) -> AsyncIterator[Item]:
        team_url = await self._team_url(ctx)
        now = datetime.now(UTC).timestamp()
        recent_s = float(self.config.get("recent_days", 7)) * 86400
        for channel in self.config["channels"]:
            parents = await self._threads(ctx, channel)
            yield Planned(len(parents))
            for parent in parents:
                doc_id = f"{channel}/{parent['ts']}"
                version = _thread_version(parent)
                latest = float(parent.get("latest_reply") or parent["ts"])
                if ctx.version_of(doc_id) == version and now - latest > recent_s:
                    yield Unchanged(doc_id)
                    continue
                thread = await self._replies(ctx, channel, parent["ts"])
                yield self._document(channel, thread, team_url, version)
            yield Checkpoint(None)

    async def fetch(self, ctx: SyncContext, ids: Sequence[str]) -> AsyncIterator[Item]:
        team_url = await self._team_url(ctx)
        for doc_id in ids:
            channel, _, ts = doc_id.partition("/")
            if channel not in self.config["channels"] or not ts:
                continue
            try:
                thread = await self._replies(ctx, channel, ts)
            except SlackApiError as e:
                if e.error in ("thread_not_found", "message_not_found"):
                    yield Document(id=doc_id, deleted=True)
                    continue
                raise
            yield self._document(channel, thread, team_url, _thread_version(thread[0]))

    async def _team_url(self, ctx: SyncContext) -> str:
        body = await self._call(ctx, "auth.test")
        url = str(body.get("url") or "https://slack.com/")
        return url if url.endswith("/") else url + "/"

    async def _threads(self, ctx: SyncContext, channel: str) -> list[dict[str, Any]]:
        """The channel's thread parents with replies (oldest first)."""
        parents: list[dict[str, Any]] = []
        cursor = ""
        while True:
            params: dict[str, Any] = {"channel": channel, "limit": 200}
            if cursor:
                params["cursor"] = cursor
            try:
                body = await self._call(ctx, "conversations.history", **params)
            except SlackApiError as e:
                if e.error in ("channel_not_found", "not_in_channel"):
                    raise SourceUnavailableError(
                        f"Slack channel {channel}: {e.error}; invite the bot to the channel "
                        "(/invite @bot) or check the channel id"
                    ) from e
                raise
            for message in body.get("messages", []):
                if int(message.get("reply_count") or 0) > 0 and _is_human(message):
                    parents.append(message)
            cursor = str((body.get("response_metadata") or {}).get("next_cursor") or "")
            if not body.get("has_more") or not cursor:
                break
        parents.sort(key=lambda m: float(m["ts"]))
        return parents

    async def _replies(self, ctx: SyncContext, channel: str, ts: str) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        cursor = ""
        while True:
            params: dict[str, Any] = {"channel": channel, "ts": ts, "limit": 200}
            if cursor:
                params["cursor"] = cursor
            body = await self._call(ctx, "conversations.replies", **params)
            messages.extend(body.get("messages", []))
            cursor = str((body.get("response_metadata") or {}).get("next_cursor") or "")
            if not body.get("has_more") or not cursor:
                return messages

    def _document(
        self, channel: str, thread: list[dict[str, Any]], team_url: str, version: str
    ) -> Document:
        parent = thread[0]
        doc_id = f"{channel}/{parent['ts']}"
        question = clean_slack_text(str(parent.get("text") or ""))
        answer = accepted_answer(parent, thread[1:])
        if not question or answer is None:
            # Chatter, or no answer (any more): not a document, but its version is kept so an
            # unchanged thread is not fetched again.
            return Document(id=doc_id, deleted=True, version=version)
        latest = float(parent.get("latest_reply") or answer.get("ts") or parent["ts"])
        title = question.splitlines()[0][:100]
        text = f"Question: {question}\n\nAnswer: {clean_slack_text(str(answer.get('text') or ''))}"
        return Document(
            id=doc_id,
            title=title,
            text=text,
            url=f"{team_url}archives/{channel}/p{str(parent['ts']).replace('.', '')}",
            updated_at=datetime.fromtimestamp(latest, UTC),
            version=version,
        )


def accepted_answer(
    parent: Mapping[str, Any], replies: Sequence[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """The reply that answers the question, or None (chatter)."""
    asker = parent.get("user")
    candidates = [
        r
        for r in replies
        if _is_human(r) and r.get("user") != asker and clean_slack_text(str(r.get("text") or ""))
    ]
    if not candidates:
        return None
    for reply in candidates:
        if any(x.get("name") in ACCEPTED_REACTIONS for x in reply.get("reactions") or []):
            return reply
    votes = [sum(int(x.get("count") or 0) for x in r.get("reactions") or []) for r in candidates]
    if max(votes) > 0:
        return candidates[votes.index(max(votes))]
    return candidates[-1]


def clean_slack_text(text: str) -> str:
    """Slack's markup as plain text: mentions, channel links, links, entities."""
    text = _MENTION.sub(lambda m: f"@{m.group(2) or m.group(1)}", text)
    text = _CHANNEL_REF.sub(lambda m: f"#{m.group(2) or m.group(1)}", text)
    text = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})" if m.group(2) else m.group(1), text)
    text = _SPECIAL.sub(lambda m: f"@{m.group(2) or m.group(1)}", text)
    return html.unescape(text).strip()


def _is_human(message: Mapping[str, Any]) -> bool:
    if message.get("bot_id") or message.get("subtype") in SKIPPED_SUBTYPES:
        return False
    return message.get("subtype") in (None, "thread_broadcast")


def _thread_version(parent: Mapping[str, Any]) -> str:
    edited = (parent.get("edited") or {}).get("ts", "")
    return f"{parent.get('reply_count', 0)}|{parent.get('latest_reply', '')}|{edited}"
