"""The product's Discord bot against the Discord simulator, for the forum, component and
command-registration tests: one server (Acme) with a support forum, a text channel and a
thread, its knowledge from one short document, and an extractive answer (no chat model).

Import the fixtures into a test module (``from tests.discord_harness import *``-free: name
them) and call ``await start_bot()``; ids are unique per test (the module shares a database).
"""

from __future__ import annotations

import asyncio
import itertools
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import discord
import pytest
from discord.gateway import DiscordWebSocket
from sqlmodel import Session, select

from bot.channels import ChannelSettings
from bot.decide import ChannelMode
from bot.discord import DiscordBot
from feedback.models import Interaction, Rating, RatingEvent
from feedback.models import Signal as MessageSignal
from retrieval.workspaces import IdentityKind
from supportbot.app import App
from tests.conftest import make_settings
from tests.servers.discord import DiscordSimulator

TOKEN = "discord-forum-token"
GUILD, GENERAL, FORUM, PLAIN_FORUM, QUIET_FORUM = (
    "3000000000000000100",
    "3000000000000000101",
    "3000000000000000102",  # support forum (all questions) with a Solved tag
    "3000000000000000103",  # all questions, no solved tag
    "3000000000000000104",  # mode not set: mentions only
)
ALICE, BOB, MOD = "3000000000000001001", "3000000000000001002", "3000000000000001003"
MOD_ROLE, BOT_ROLE = "3000000000000000900", "3000000000000000901"
MANAGE_THREADS = 1 << 34
# The support forum's tags: "✅ Solved" is the one the bot applies.
TAG_BUG, TAG_QUESTION, TAG_SOLVED = (
    "3000000000000000501",
    "3000000000000000502",
    "3000000000000000503",
)
DOC = (
    "# Password reset\n\nA password reset link is valid for 30 minutes. Request a new link "
    "from the sign-in page if yours expired.\n"
)
QUESTION = "How long is the password reset link valid?"


def forum_tag(tag_id: str, name: str, emoji: str | None = None) -> dict[str, Any]:
    """A forum tag as Discord sends it (ForumTagResponse)."""
    return {
        "id": tag_id,
        "name": name,
        "moderated": False,
        "emoji_id": None,
        "emoji_name": emoji,
    }


OTHER_TAGS = [f"300000000000000051{n}" for n in range(4)]
SUPPORT_TAGS = [
    forum_tag(TAG_BUG, "Bug", "🐛"),
    forum_tag(TAG_QUESTION, "Question"),
    forum_tag(TAG_SOLVED, "Solved", "✅"),
    *(forum_tag(t, f"Area {n}") for n, t in enumerate(OTHER_TAGS)),
]


@pytest.fixture(scope="module")
def kb_app(
    weaviate_data_dir: Path, tmp_path_factory: pytest.TempPathFactory, embedder: Any
) -> Iterator[App]:
    folder = tmp_path_factory.mktemp("discord-forums")
    settings = make_settings(weaviate_data_dir, folder / "db.sqlite")
    doc = folder / "password.md"
    doc.write_text(DOC, encoding="utf-8")
    name = f"dforum{next(_workspaces)}"
    with App(settings, local_embedder=embedder) as application:
        application.knowledge.create_workspace(name, [(IdentityKind.DISCORD_GUILD, GUILD)])
        application.knowledge.ingest_paths(name, [doc])
        ChannelSettings(application.engine).set_mode(
            "discord", GUILD, FORUM, ChannelMode.ALL_QUESTIONS
        )
        ChannelSettings(application.engine).set_mode(
            "discord", GUILD, PLAIN_FORUM, ChannelMode.ALL_QUESTIONS
        )
        yield application


_workspaces = itertools.count(1)
# Each simulator's snowflakes start at a different moment: ids stay unique in the database.
_clock_starts = itertools.count(1_760_000_000_000, 10_000_000)


def make_simulator() -> DiscordSimulator:
    sim = DiscordSimulator(
        token=TOKEN,
        heartbeat_interval_ms=500,
        clock_start_ms=next(_clock_starts),
        privileged_intents=1 << 15,  # Message Content is on in the portal
    )
    sim.add_user(ALICE, "alice")
    sim.add_user(BOB, "bob")
    sim.add_user(MOD, "mod")
    sim.add_guild(
        GUILD,
        "Acme",
        channels=[(GENERAL, "general")],
        members=[ALICE, BOB],
        roles=[
            {"id": MOD_ROLE, "name": "Moderators", "permissions": str(MANAGE_THREADS)},
            {"id": BOT_ROLE, "name": "supportbot", "permissions": str(MANAGE_THREADS)},
        ],
    )
    sim.add_member(GUILD, MOD, roles=[MOD_ROLE])
    sim.add_member(GUILD, sim.bot_id, roles=[BOT_ROLE])  # invited with Manage Threads
    sim.add_forum(GUILD, FORUM, "support", tags=SUPPORT_TAGS)
    sim.add_forum(GUILD, PLAIN_FORUM, "ideas", tags=[forum_tag("3000000000000000601", "Idea")])
    sim.add_forum(GUILD, QUIET_FORUM, "lounge", tags=SUPPORT_TAGS)
    return sim


@pytest.fixture
async def sim() -> AsyncIterator[DiscordSimulator]:
    async with make_simulator() as simulator:
        yield simulator


StartBot = Callable[..., Awaitable[DiscordBot]]


@pytest.fixture
async def start_bot(
    kb_app: App, sim: DiscordSimulator, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[StartBot]:
    """Start the product's DiscordBot against ``sim``; closed after the test."""
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", DiscordWebSocket.DEFAULT_GATEWAY)
    running: list[tuple[DiscordBot, asyncio.Task[None]]] = []

    async def start(*, wait_ready: bool = True, **options: Any) -> DiscordBot:
        options.setdefault("public_dm_workspace", None)
        options.setdefault("message_content", True)
        bot = DiscordBot(
            kb_app.conversations, api_url=sim.api_url, guild_ready_timeout_s=0.05, **options
        )

        async def no_identify_pause(shard_id: int | None, *, initial: bool = False) -> None:
            return None

        bot.client.before_identify_hook = no_identify_pause  # type: ignore[method-assign]
        task = asyncio.create_task(bot.start(TOKEN))
        running.append((bot, task))
        if wait_ready:
            ready = asyncio.create_task(bot.client.wait_until_ready())
            done, _ = await asyncio.wait(
                {ready, task}, timeout=10, return_when=asyncio.FIRST_COMPLETED
            )
            if ready not in done:
                ready.cancel()
                raise AssertionError(
                    f"bot did not become ready: {task.exception() if task.done() else 'timeout'}"
                )
            await sim.wait_for_live_session()
        return bot

    yield start
    for bot, task in running:
        await bot.close()
        await asyncio.wait({task}, timeout=5)


async def new_post(
    sim: DiscordSimulator,
    forum: str,
    author: str,
    title: str,
    content: str,
    *,
    tags: list[str] | None = None,
) -> dict[str, Any]:
    """A user opens a post in ``forum``: THREAD_CREATE then MESSAGE_CREATE, as Discord sends
    them; returns the starter message (its id is the post's id)."""
    thread, starter = sim.forum_post(forum, author, title, content, applied_tags=tags or [])
    await sim.dispatch("THREAD_CREATE", thread)
    await sim.dispatch("MESSAGE_CREATE", starter)
    return starter


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (result := check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
    return result


def interaction_of(app: App, question_id: str) -> Interaction | None:
    with Session(app.engine) as session:
        return session.exec(
            select(Interaction).where(Interaction.message_id == question_id)
        ).first()


def ratings_of(app: App, interaction_id: int | None) -> list[Rating]:
    with Session(app.engine) as session:
        return list(session.exec(select(Rating).where(Rating.interaction_id == interaction_id)))


def rating_events_of(app: App, interaction_id: int | None) -> list[RatingEvent]:
    with Session(app.engine) as session:
        return list(
            session.exec(select(RatingEvent).where(RatingEvent.interaction_id == interaction_id))
        )


def signals_of(app: App, interaction_id: int | None) -> list[MessageSignal]:
    with Session(app.engine) as session:
        return list(
            session.exec(
                select(MessageSignal).where(MessageSignal.interaction_id == interaction_id)
            )
        )


async def quiet(seconds: float = 0.5) -> None:
    """Give a wrongly sent message time to show up before asserting there is none."""
    await asyncio.sleep(seconds)


def take_ctrl_c() -> None:
    """``preexec_fn`` of a ``supportbot run`` the test will stop with SIGINT: a suite started
    as a background job (``cmd &`` in a script) ignores SIGINT, and an ignored signal stays
    ignored across exec, so the child would never see the interrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


async def interrupt(process: asyncio.subprocess.Process, *, timeout_s: float = 60.0) -> bytes:
    """Stop a ``supportbot run`` as Ctrl-C does and return its stderr.

    If it has not exited after ``timeout_s`` (it usually takes well under a second), it is sent
    SIGABRT: started with ``PYTHONFAULTHANDLER=1``, it then writes every thread's stack to
    stderr, and the test fails showing where the shutdown hung.
    """
    process.send_signal(signal.SIGINT)
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=timeout_s)
    except TimeoutError:
        process.send_signal(signal.SIGABRT)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
        pytest.fail(
            f"supportbot run did not stop within {timeout_s:.0f} s of SIGINT; its threads:\n"
            + stderr.decode(errors="replace")[-6000:]
        )
    return stderr
