"""Discord support forums: every new post answered, and a solved post tagged as the forum says.

A forum channel (type 15, or a media channel, 16) holds posts: each post is a public thread whose
parent is the forum, opened by its starter message (same id as the thread). The channel mode is
set on the forum (``supportbot channel mode FORUM all_questions --discord-guild G``), while the
messages arrive in the posts: :func:`bot.discord.events.incoming_from_message` marks a starter
message (``starts_post``, ``parent_channel_id``) so that the core reads the forum's mode; the
asker's follow-ups are answered as in any thread the bot answered.

Solved: the asker's ✅ (on any message of the post) or the *Solved* button on an answer applies
the forum's own "solved" tag (whatever its case, emoji or language: :func:`solved_tag`), keeping
the post's other tags and Discord's limit of 5. Only the asker, or a member who may manage
threads, may mark a post solved. A forum without such a tag gets no tag; the resolution is
recorded either way (``ConversationService.resolve``: the asker's only). The bot needs the
Manage Threads permission to tag other people's posts; without it the refusal is logged.
"""

from __future__ import annotations

import asyncio
import logging
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import replace
from enum import StrEnum

import discord

from bot.reply import AnswerControls, Reply
from bot.service import ConversationService
from retrieval.chain import Answer

logger = logging.getLogger(__name__)

MAX_APPLIED_TAGS = 5  # Discord's limit of tags on one post
ControlsFor = Callable[[Reply, Answer], AnswerControls]

# Tag names that mean "solved", as moderators name them, compared without case, emoji,
# punctuation or spaces; the first kind found wins (a forum with "Solved" and "Answered" gets
# "Solved"). Exact names only: "Unsolved", "미해결" or "Not answered" are not solved.
_SOLVED_KINDS: tuple[frozenset[str], ...] = (
    frozenset({"solved", "resolved", "해결", "해결됨", "해결완료", "解決", "解決済み", "已解决"}),
    frozenset({"answered", "답변완료", "답변됨", "回答済み", "已回答"}),
    frozenset({"fixed", "done", "closed", "완료", "종료"}),
)  # fmt: skip
_CHECK_MARKS = frozenset({"✅", "✔", "☑", "✓"})
_NOT_WORD = re.compile(r"[\W_]+")


def _normalise(name: str) -> str:
    """Case-folded letters and digits only: "✅ Solved!" and "SOLVED" are both "solved"."""
    return _NOT_WORD.sub("", unicodedata.normalize("NFKC", name).casefold())


def _is_check_mark(text: str) -> bool:
    return text.replace("\ufe0f", "").strip() in _CHECK_MARKS


def solved_tag(tags: Sequence[discord.ForumTag]) -> discord.ForumTag | None:
    """The forum's tag that means "solved": by name (see the kinds above), else a tag that is
    only a check mark (its name or its emoji with a name of no letters); None when none."""
    names = [(tag, _normalise(tag.name)) for tag in tags]
    for kind in _SOLVED_KINDS:
        for tag, name in names:
            if name in kind:
                return tag
    for tag, name in names:
        emoji = tag.emoji.name if tag.emoji is not None and tag.emoji.id is None else ""
        if _is_check_mark(tag.name) or (not name and _is_check_mark(emoji or "")):
            return tag
    return None


class Tagging(StrEnum):
    """What marking a post solved did to its tags."""

    APPLIED = "applied"
    ALREADY = "already"  # the post has the tag
    NO_TAG = "no_tag"  # the forum has no "solved" tag
    FULL = "full"  # the post already has 5 tags: none removed to make room
    REFUSED = "refused"  # Discord refused the change (e.g. no Manage Threads): logged
    NOT_A_POST = "not_a_post"


def tags_with(applied: Sequence[int], tag_id: int) -> list[int] | None:
    """The post's tag ids with ``tag_id`` added (existing ones kept, in order); None when it is
    there already or the post has no room left (Discord's limit of 5)."""
    if tag_id in applied or len(applied) >= MAX_APPLIED_TAGS:
        return None
    return [*applied, tag_id]


def is_forum_post(channel: object) -> bool:
    """A thread in a forum or media channel (a post), as opposed to a text channel's thread."""
    return isinstance(channel, discord.Thread) and isinstance(
        channel.parent, (discord.ForumChannel,)
    )


def may_mark_solved(thread: discord.Thread, user_id: int, permissions: discord.Permissions) -> bool:
    """The post's author, or someone who may manage its threads (a moderator)."""
    return user_id == thread.owner_id or permissions.manage_threads


async def mark_solved(thread: discord.Thread) -> Tagging:
    """Apply the forum's "solved" tag to the post ``thread``, keeping its other tags.

    Reads the post afresh (its tags may have changed since it was cached) and writes the whole
    tag list, as Discord's API does (``PATCH /channels/{thread}`` with ``applied_tags``).
    """
    forum = thread.parent
    if not isinstance(forum, discord.ForumChannel):
        return Tagging.NOT_A_POST
    tag = solved_tag(forum.available_tags)
    if tag is None:
        return Tagging.NO_TAG
    try:
        fresh = await thread.guild.fetch_channel(thread.id)
        applied = [t.id for t in fresh.applied_tags] if isinstance(fresh, discord.Thread) else []
        wanted = tags_with(applied, tag.id)
        if wanted is None:
            return Tagging.ALREADY if tag.id in applied else Tagging.FULL
        tags = [forum.get_tag(i) for i in wanted]
        await thread.edit(applied_tags=[t for t in tags if t is not None])
    except discord.HTTPException as e:
        logger.warning("could not tag post %s solved: %s", thread.id, e)
        return Tagging.REFUSED
    logger.info("post %s tagged %r", thread.id, tag.name)
    return Tagging.APPLIED


class ForumSupport:
    """The forum side of the Discord bot: marking posts solved from a ✅ or the button."""

    def __init__(self, service: ConversationService, client: discord.Client) -> None:
        self._service = service
        self._client = client

    def is_post(self, channel_id: str) -> bool:
        """Whether the channel (a known thread) is a forum post; from the cache, no call."""
        try:
            return is_forum_post(self._client.get_channel(int(channel_id)))
        except ValueError:
            return False

    def with_solved(self, controls_for: ControlsFor) -> ControlsFor:
        """``controls_for`` (the reply flow's) with the *Solved* button on every answer in a
        forum post: ``flow.controls_for = forums.with_solved(flow.controls_for)``."""

        def controls(reply: Reply, answer: Answer) -> AnswerControls:
            chosen = controls_for(reply, answer)
            message = reply.message
            if (
                message.platform == "discord"
                and message.in_thread
                and not chosen.solved
                and self.is_post(message.channel_id)
            ):
                return replace(chosen, solved=True)
            return chosen

        return controls

    async def post_of(self, channel_id: int) -> discord.Thread | None:
        """The forum post with this id (from the cache, else fetched), or None."""
        channel = self._client.get_channel(channel_id)
        if channel is None:
            try:
                channel = await self._client.fetch_channel(channel_id)
            except discord.HTTPException as e:
                logger.warning("could not read channel %s: %s", channel_id, e)
                return None
        return channel if isinstance(channel, discord.Thread) and is_forum_post(channel) else None

    async def answered_post(self, channel_id: int) -> discord.Thread | None:
        """The post, when it is one the bot answered (a post in someone else's care is not
        the bot's to tag)."""
        post = await self.post_of(channel_id)
        if post is None:
            return None
        answered = await asyncio.to_thread(
            self._service.bot_answered_thread,
            "discord",
            str(post.guild.id),
            str(post.id),
            str(post.id),
        )
        return post if answered else None

    async def on_solved_reaction(self, payload: discord.RawReactionActionEvent) -> Tagging | None:
        """A ✅ in a post the bot answered: tagged when the reactor may mark it solved.

        The resolution itself is recorded by the caller (``service.resolve``), as for any ✅.
        None when the reaction is not about a post, or not by someone who may mark it.
        """
        if payload.guild_id is None:
            return None
        post = await self.answered_post(payload.channel_id)
        if post is None:
            return None
        member = payload.member
        permissions = post.permissions_for(member) if member is not None else discord.Permissions()
        if not may_mark_solved(post, payload.user_id, permissions):
            return None
        return await mark_solved(post)
