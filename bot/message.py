"""The one message type every platform event becomes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Platform = Literal["slack", "discord"]


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A user's message as the core sees it, whatever the platform.

    ``delivery_id`` identifies the delivery (Slack's ``event_id``, Discord's message id);
    ``message_id`` the platform message (Slack ``ts``, a Discord message id), the same for
    every delivery and every edit of one message. ``thread_id`` is the conversation the reply
    belongs in (Slack ``thread_ts`` or the message's own ts, a Discord thread or reply chain
    root), ``None`` for a DM without one. ``reply_to``: the message this one replies to, when
    the platform says (a Discord reply).

    ``text`` is plain text, decoded once by the adapter (:mod:`bot.markup`): no platform
    escaping or markup, NFC, the bot's own mention removed. ``bare_text``: the same without
    mentions, channel references and custom emoji (what says whether the message has words);
    None when it equals ``text``. ``edited``: the platform re-sent the message after an edit.

    ``starts_post``: the message opens a post in a Discord forum (the thread's starter
    message); ``parent_channel_id``: for a message in a thread, the channel the thread is in
    (a post's forum), whose mode applies to a new post (:attr:`mode_channel_id`).
    """

    platform: Platform
    delivery_id: str
    team_id: str
    channel_id: str
    message_id: str
    user_id: str
    text: str
    thread_id: str | None = None
    enterprise_id: str | None = None
    is_direct: bool = False
    mentions_bot: bool = False
    from_bot: bool = False
    in_thread: bool = False
    bare_text: str | None = None
    reply_to: str | None = None
    edited: bool = False
    starts_post: bool = False
    parent_channel_id: str | None = None

    @property
    def mode_channel_id(self) -> str:
        """The channel whose mode (mention only, or all questions) applies: a new post's
        forum, else the message's own channel."""
        if self.starts_post and self.parent_channel_id:
            return self.parent_channel_id
        return self.channel_id

    @property
    def words(self) -> str:
        """The text without mentions and the like: what :mod:`bot.chatter` judges."""
        return self.text if self.bare_text is None else self.bare_text

    @property
    def identity(self) -> str:
        """The platform message, whatever delivered it: ``team:channel:message``.

        A retry, a second replica's copy and an edit's re-sent event all share it, so
        claiming it makes one answer per message.
        """
        return f"{self.team_id}:{self.channel_id}:{self.message_id}"
