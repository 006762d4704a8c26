"""The App Home tab: the workspace's knowledge sources, how fresh they are, and how to ask.

``app_home_opened`` (``tab: "home"``) → ``views.publish`` of a ``home`` view for that user.
The view is built by :func:`home_view`, a pure function of what is known (tested without
Slack): the sources of the team's workspace (:mod:`sync`: kind, name, last successful sync,
status), each marked fresh or stale, and the ways to use the bot (mention, DM, ``/ask``,
reactions). A team with no workspace, or one with no knowledge yet, gets a "not set up" view
that says what an admin runs. Text is English or Korean: the user's Slack locale when
``users.info`` gives it (``include_locale``; needs ``users:read``), else English.

``tab: "messages"`` is the agent messaging view's "a user opened the DM": the workspace's
suggested prompts are offered there (:meth:`bot.slack.assistant.AssistantThreads.offer_prompts`).

Nothing a source's owner typed reaches the view but its name (letters, digits, ``-_.``), and
a sync's error text is never shown (it can name hosts or paths): only its status.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.message import IncomingMessage
from bot.service import ConversationService
from retrieval.workspaces import Workspace
from sync.models import SyncSource

if TYPE_CHECKING:
    from bot.slack.assistant import AssistantThreads

logger = logging.getLogger(__name__)

MAX_BLOCKS = 100
"""Slack's limit of blocks in a view."""
MAX_LISTED_SOURCES = 40
STALE_AFTER = timedelta(days=7)
"""A source whose last successful sync is older than this is shown as stale."""

_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Support knowledge",
        "workspace": "Answers come from the *{name}* knowledge base.",
        "sources": "Knowledge sources",
        "no_sources": "Knowledge was added by an admin (`supportbot ingest`); "
        "no sources sync automatically.",
        "more": "…and {n} more sources, {fresh} of them fresh (failed and stale sources are "
        "listed first). `supportbot source list -w {workspace}` shows them all.",
        "never": "never synced",
        "synced": "last synced {when}",
        "fresh": ":large_green_circle: fresh",
        "stale": ":warning: stale",
        "failing": ":red_circle: last sync failed",
        "running": ":arrows_counterclockwise: syncing now",
        "queued": ":hourglass: sync queued",
        "how": "How to ask",
        "how_text": "• *Mention* me in a channel: `@supportbot how do I reset my password?`\n"
        "• *Message* me directly, or open a new chat in the AI app view.\n"
        "• `/ask your question`: a private answer only you see, with a button to share it.\n"
        "• Rate answers with 👍 / 👎 (the buttons or reactions): it improves them.",
        "unset_title": "Not set up yet",
        "unset": "I'm not set up for this Slack workspace yet: no knowledge has been added. "
        "An admin can add it with `supportbot workspace create` and `supportbot ingest` "
        "or `supportbot source add` (see the README).",
        "minutes": "{n} min ago",
        "hours": "{n} h ago",
        "days": "{n} days ago",
        "now": "just now",
    },
    "ko": {
        "title": "지원 지식",
        "workspace": "답변은 *{name}* 지식 베이스에서 찾습니다.",
        "sources": "지식 출처",
        "no_sources": "관리자가 추가한 지식으로 답합니다(`supportbot ingest`). "
        "자동으로 동기화되는 출처는 없습니다.",
        "more": "…외 {n}개 출처, 그중 {fresh}개 최신(실패하거나 오래된 출처를 먼저 보여 "
        "줍니다). 전체 목록: `supportbot source list -w {workspace}`",
        "never": "동기화된 적 없음",
        "synced": "마지막 동기화 {when}",
        "fresh": ":large_green_circle: 최신",
        "stale": ":warning: 오래됨",
        "failing": ":red_circle: 마지막 동기화 실패",
        "running": ":arrows_counterclockwise: 동기화 중",
        "queued": ":hourglass: 동기화 대기 중",
        "how": "질문하는 방법",
        "how_text": "• 채널에서 *멘션*하세요: `@supportbot 비밀번호는 어떻게 재설정하나요?`\n"
        "• 저에게 *DM*을 보내거나 AI 앱 화면에서 새 대화를 여세요.\n"
        "• `/ask 질문`: 나만 보는 답변을 받고, 버튼으로 채널에 공유할 수 있어요.\n"
        "• 답변에 👍 / 👎 (버튼이나 리액션)로 평가해 주세요. 답변이 좋아집니다.",
        "unset_title": "아직 설정되지 않았습니다",
        "unset": "이 Slack 워크스페이스에는 아직 지식이 추가되지 않았습니다. 관리자가 "
        "`supportbot workspace create`와 `supportbot ingest` 또는 `supportbot source add`로 "
        "추가할 수 있습니다(README 참고).",
        "minutes": "{n}분 전",
        "hours": "{n}시간 전",
        "days": "{n}일 전",
        "now": "방금",
    },
}


@dataclass(frozen=True, slots=True)
class SourceState:
    """What the Home tab shows of a sync source (``status``: :class:`sync.models.SyncStatus`)."""

    name: str
    kind: str
    status: str
    last_success_at: datetime | None


SourceLister = Callable[[str], list[SourceState]]
"""The sources of a workspace by name, in name order."""


def sources_in(engine: Engine) -> SourceLister:
    """A :data:`SourceLister` reading the sync tables (only the workspace's own rows)."""

    def sources(workspace: str) -> list[SourceState]:
        with Session(engine) as session:
            rows = session.exec(
                select(SyncSource)
                .join(Workspace, col(Workspace.id) == col(SyncSource.workspace_id))
                .where(col(Workspace.name) == workspace)
                .order_by(col(SyncSource.name))
            ).all()
            return [SourceState(r.name, r.kind, r.status, r.last_success_at) for r in rows]

    return sources


def language_of_locale(locale: str | None) -> str:
    """ "ko" for a Korean Slack locale ("ko-KR"), else "en"."""
    return "ko" if (locale or "").lower().startswith("ko") else "en"


async def user_language(client: AsyncWebClient, user_id: str) -> str:
    """The user's language from their Slack locale; English when Slack does not say."""
    if not user_id:
        return "en"
    try:
        response = await client.users_info(user=user_id, include_locale=True)
    except SlackApiError as e:  # e.g. missing_scope without users:read
        logger.info("no locale for %s: %s", user_id, e.response.get("error"))
        return "en"
    user = response.get("user") or {}
    return language_of_locale(user.get("locale"))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _ago(moment: datetime, now: datetime, text: Mapping[str, str]) -> str:
    seconds = max(0.0, (now - moment).total_seconds())
    if seconds < 60:
        return text["now"]
    if seconds < 3600:
        return text["minutes"].format(n=int(seconds // 60))
    if seconds < 86400:
        return text["hours"].format(n=int(seconds // 3600))
    return text["days"].format(n=int(seconds // 86400))


def source_line(source: SourceState, now: datetime, language: str = "en") -> str:
    """One source as mrkdwn: name, kind, last successful sync, and its freshness/status."""
    text = _TEXT[language]
    last = source.last_success_at
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    when = text["synced"].format(when=_ago(last, now, text)) if last else text["never"]
    if source.status == "running":
        state = text["running"]
    elif source.status == "queued":
        state = text["queued"]
    elif source.status == "failed":
        state = text["failing"]
    elif last is not None and now - last <= STALE_AFTER:
        state = text["fresh"]
    else:
        state = text["stale"]
    return f"*{_escape(source.name)}* ({_escape(source.kind)}) · {when} · {state}"


_FRESH = 3


def _attention(source: SourceState, now: datetime) -> tuple[int, str]:
    """Sort key: failed (0), stale or never synced (1), syncing or queued (2), fresh (3),
    then by name."""
    last = source.last_success_at
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    if source.status == "failed":
        rank = 0
    elif source.status in ("running", "queued"):
        rank = 2
    elif last is None or now - last > STALE_AFTER:
        rank = 1
    else:
        rank = _FRESH
    return rank, source.name


def _section(mrkdwn: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}}


def home_view(
    workspace: str | None,
    sources: Sequence[SourceState],
    *,
    ready: bool,
    language: str = "en",
    now: datetime | None = None,
) -> dict[str, Any]:
    """The ``home`` view for a team's workspace (``None``: the team maps to none).

    ``ready``: the workspace has knowledge to answer from; with neither knowledge nor
    sources it shows as not set up. At most :data:`MAX_BLOCKS` blocks, whatever the number
    of sources (the rest are counted, not listed).
    """
    text = _TEXT["ko" if language == "ko" else "en"]
    now = now or datetime.now(UTC)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": text["title"]}}
    ]
    if workspace is None or (not ready and not sources):
        blocks += [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"*{text['unset_title']}*\n{text['unset']}"},
            },
            {"type": "divider"},
        ]
    else:
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": text["workspace"].format(name=_escape(workspace)),
                },
            }
        )
        blocks.append({"type": "header", "text": {"type": "plain_text", "text": text["sources"]}})
        if not sources:
            blocks.append(
                {"type": "section", "text": {"type": "mrkdwn", "text": text["no_sources"]}}
            )
        # Too many to list: those needing attention first, so a cut never hides a failure.
        ordered = list(sources)
        if len(sources) > MAX_LISTED_SOURCES:
            ordered.sort(key=lambda s: _attention(s, now))
        for source in ordered[:MAX_LISTED_SOURCES]:
            line = source_line(source, now, "ko" if language == "ko" else "en")
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": line}})
        if len(sources) > MAX_LISTED_SOURCES:
            hidden = ordered[MAX_LISTED_SOURCES:]
            fresh = sum(1 for s in hidden if _attention(s, now)[0] == _FRESH)
            more = text["more"].format(n=len(hidden), fresh=fresh, workspace=workspace)
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]})
        blocks.append({"type": "divider"})
    blocks += [
        {"type": "header", "text": {"type": "plain_text", "text": text["how"]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": text["how_text"]}},
    ]
    assert len(blocks) <= MAX_BLOCKS
    return {"type": "home", "blocks": blocks}


class AppHome:
    """The ``app_home_opened`` listener (``register`` adds it to an app)."""

    def __init__(
        self,
        service: ConversationService,
        sources: SourceLister,
        *,
        assistant: AssistantThreads | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._service = service
        self._sources = sources
        self._assistant = assistant
        self._clock = clock or (lambda: datetime.now(UTC))

    def register(self, app: AsyncApp) -> None:
        @app.event("app_home_opened")
        async def on_home_opened(
            body: dict[str, Any], event: dict[str, Any], client: AsyncWebClient
        ) -> None:
            user = str(event.get("user") or "")
            if event.get("tab") == "messages":
                if self._assistant is not None and event.get("channel"):
                    await self._assistant.offer_prompts(
                        client, body, str(event["channel"]), None, user
                    )
                return
            if not user:
                return
            await self.publish(client, body, user)

    async def publish(self, client: AsyncWebClient, body: Mapping[str, Any], user: str) -> None:
        """Build the user's home view and ``views.publish`` it (a failure is logged)."""
        language = await user_language(client, user)
        view = await asyncio.to_thread(self.view_for, body, language)
        try:
            await client.views_publish(user_id=user, view=view)
        except SlackApiError as e:
            logger.warning("could not publish the home tab: %s", e.response.get("error"))

    def view_for(self, body: Mapping[str, Any], language: str) -> dict[str, Any]:
        """The view for the payload's team (blocking: the database and the store)."""
        workspace = self._service.workspace_for(team_message(body))
        if workspace is None:
            return home_view(None, [], ready=False, language=language, now=self._clock())
        sources = self._sources(workspace.name)
        ready = self._service.workspace_ready(workspace)
        return home_view(workspace.name, sources, ready=ready, language=language, now=self._clock())


def team_message(body: Mapping[str, Any]) -> IncomingMessage:
    """A stand-in message that carries only a payload's team and org: what routing needs."""
    event = body.get("event") or {}
    team = body.get("team_id") or (body.get("team") or {}).get("id") or event.get("team")
    enterprise = body.get("enterprise_id") or (body.get("enterprise") or {}).get("id")
    return IncomingMessage(
        platform="slack",
        delivery_id="",
        team_id=str(team or ""),
        channel_id="",
        message_id="",
        user_id="",
        text="",
        enterprise_id=str(enterprise) if enterprise else None,
    )
