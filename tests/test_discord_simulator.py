"""The Discord simulator against the real discord.py client, over real HTTP and WebSockets.

Each test runs a real ``discord.Client`` (intents: guilds, guild/DM messages, guild/DM
reactions -- no message content, as the product asks) pointed at
:class:`tests.servers.discord.DiscordSimulator` the way the product does it: REST through
``discord.http.Route.BASE``, the gateway URL from ``GET /gateway/bot``. Real payloads from the
shared fixtures (``shared/data/discord``) are dispatched where the tests need user events.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import io
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import discord
import pytest
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket

from bot.discord import bot_intents
from tests.servers.discord import (
    DiscordSimulator,
    Intent,
    load_shared_fixture,
    rewrite_ids,
)

TOKEN = "sim-token-test"
GUILD_ID = "1000000000000000100"
SUPPORT = "1000000000000000101"
GENERAL = "1000000000000000102"
ALICE = "1000000000000000200"
MINSU = "1000000000000000201"
OUTSIDER = "1000000000000000300"
ALICE_DM = "1000000000000000400"
MINSU_DM = "1000000000000000401"
UNCACHED_MESSAGE = "1000000000000000999"


def product_intents() -> discord.Intents:
    """The intents the product's bot asks for (no privileged MESSAGE_CONTENT)."""
    return bot_intents(message_content=False)


class SimClient(discord.Client):
    """A discord.Client set up for quick tests, connecting as the product's adapter must.

    ``setup_hook`` takes the gateway URL from ``GET /gateway/bot`` (plain ``discord.Client``
    otherwise connects to ``DiscordWebSocket.DEFAULT_GATEWAY``); ``before_identify_hook`` skips
    discord.py's 5 s pause before a re-IDENTIFY. Every dispatched event is queued, so tests can
    await ``next_event("message")`` and check that nothing else arrived.
    """

    def __init__(self, *, intents: discord.Intents | None = None) -> None:
        super().__init__(intents=intents or product_intents(), guild_ready_timeout=0.05)
        self.queues: collections.defaultdict[str, asyncio.Queue[tuple[Any, ...]]] = (
            collections.defaultdict(asyncio.Queue)
        )
        self.task: asyncio.Task[None] | None = None

    async def setup_hook(self) -> None:
        _shards, url, _limits = await self.http.get_bot_gateway()
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None

    def dispatch(self, event: str, /, *args: Any, **kwargs: Any) -> None:
        super().dispatch(event, *args, **kwargs)
        self.queues[event].put_nowait(args)

    async def next_event(self, event: str, timeout: float = 3.0) -> tuple[Any, ...]:
        """The next queued ``event``; fails at once if the client's task has died."""
        getter = asyncio.ensure_future(self.queues[event].get())
        waiting: set[asyncio.Future[Any]] = {getter}
        if self.task is not None:
            waiting.add(self.task)
        done, _pending = await asyncio.wait(
            waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if getter in done:
            return getter.result()
        getter.cancel()
        if self.task is not None and self.task.done():
            raise AssertionError(f"client stopped: {self.task.exception()!r}")
        raise TimeoutError(f"no {event!r} event within {timeout}s")

    async def next_message(self, timeout: float = 3.0) -> discord.Message:
        (message,) = await self.next_event("message", timeout)
        assert isinstance(message, discord.Message)
        return message


@pytest.fixture
async def sim() -> AsyncIterator[DiscordSimulator]:
    simulator = DiscordSimulator(token=TOKEN, heartbeat_interval_ms=250)
    simulator.add_user(ALICE, "alice", global_name="Alice")
    simulator.add_user(MINSU, "minsu", global_name="김민수")
    simulator.add_user(OUTSIDER, "outsider")
    simulator.add_guild(
        GUILD_ID,
        "Acme",
        channels=[(SUPPORT, "support"), (GENERAL, "general")],
        members=[ALICE, MINSU],
    )
    simulator.add_dm_channel(ALICE, channel_id=ALICE_DM)
    simulator.add_dm_channel(MINSU, channel_id=MINSU_DM)
    async with simulator:
        yield simulator


@pytest.fixture
def discord_py_at_sim(sim: DiscordSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point discord.py's process-wide endpoints at the simulator, restored after the test."""
    monkeypatch.setattr(discord.http.Route, "BASE", sim.api_url)
    # SimClient.setup_hook sets the gateway from GET /gateway/bot; restore it afterwards.
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", DiscordWebSocket.DEFAULT_GATEWAY)


Connect = Callable[..., Awaitable[SimClient]]


@pytest.fixture
async def connect(discord_py_at_sim: None) -> AsyncIterator[Connect]:
    """Start clients until ``on_ready``; every one is closed (and its task awaited) after."""
    started: list[tuple[SimClient, asyncio.Task[None]]] = []

    async def _connect(client: SimClient | None = None, token: str = TOKEN) -> SimClient:
        client = client or SimClient()
        task = client.task = asyncio.create_task(client.start(token))
        started.append((client, task))
        ready = asyncio.create_task(client.wait_until_ready())
        done, _pending = await asyncio.wait(
            {ready, task}, timeout=5, return_when=asyncio.FIRST_COMPLETED
        )
        if ready not in done:
            ready.cancel()
            if task.done():
                task.result()  # raises the client's error
            raise TimeoutError("the client did not become ready")
        return client

    yield _connect
    for client, task in started:
        await client.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)


def fixture_event(name: str) -> dict[str, Any]:
    """The ``d`` of a shared gateway fixture."""
    data = load_shared_fixture(name)["d"]
    assert isinstance(data, dict)
    return data


# --------------------------------------------------------------------------- connecting


async def test_client_logs_in_connects_and_becomes_ready(
    sim: DiscordSimulator, connect: Connect
) -> None:
    client = await connect()

    assert client.user is not None and client.user.id == int(sim.bot_id)
    (identify,) = sim.identifies
    assert identify.accepted and identify.token == TOKEN
    assert identify.intents == product_intents().value == sim.intents
    assert not identify.intents & Intent.MESSAGE_CONTENT
    assert identify.properties["browser"] == "discord.py"
    for path in ("/users/@me", "/gateway/bot"):
        (call,) = sim.calls("GET", path)
        assert call.status == 200 and call.headers["authorization"] == f"Bot {TOKEN}"
    (conn,) = sim.connections()
    assert conn.path == "/gateway" and conn.query["v"] == "10" and conn.query["encoding"] == "json"
    assert conn.compression == conn.query["compress"]  # answered zstd/zlib in kind

    guild = client.get_guild(int(GUILD_ID))
    assert guild is not None and guild.name == "Acme"
    assert sorted(c.name for c in guild.text_channels) == ["general", "support"]
    ready = next(f for f in sim.frames("out") if f.t == "READY")
    assert ready.d["resume_gateway_url"] == sim.resume_gateway_url
    assert ready.d["guilds"] == [{"id": GUILD_ID, "unavailable": True}]

    app_info = await client.application_info()
    assert app_info.id == int(sim.application_id) and app_info.bot_public

    await sim.wait_for_heartbeats(2)  # one at HELLO, then every 250 ms
    assert client.latency < 1.0  # heartbeats are ACKed
    assert sim.unknown_calls() == []


async def test_wrong_token_is_refused_by_rest_and_gateway(
    sim: DiscordSimulator, discord_py_at_sim: None
) -> None:
    client = SimClient()
    try:
        with pytest.raises(discord.LoginFailure):
            await client.login("not-the-token")
    finally:
        await client.close()
    assert sim.calls("GET", "/users/@me")[0].status == 401

    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{sim.gateway_url}?v=10&encoding=json") as ws,
    ):
        hello = await ws.receive_json()
        assert hello["op"] == 10 and hello["d"]["heartbeat_interval"] == 250
        await ws.send_json({"op": 2, "d": {"token": "wrong", "intents": 513, "properties": {}}})
        closing = await ws.receive()
    assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 4004
    assert sim.identifies[-1].close_code == 4004 and not sim.identifies[-1].accepted


async def test_privileged_intent_not_enabled_is_closed_with_4014(
    sim: DiscordSimulator, connect: Connect
) -> None:
    intents = product_intents()
    intents.message_content = True
    with pytest.raises(discord.PrivilegedIntentsRequired):
        await connect(SimClient(intents=intents))
    assert sim.identifies[-1].close_code == 4014


async def test_zlib_stream_is_one_compressed_stream_per_connection(sim: DiscordSimulator) -> None:
    url = f"{sim.gateway_url}?v=10&encoding=json&compress=zlib-stream"
    inflate = zlib.decompressobj()
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        hello = await ws.receive_bytes()
        assert hello.endswith(b"\x00\x00\xff\xff")
        assert b'"op":10' in inflate.decompress(hello)
        await ws.send_json({"op": 1, "d": None})
        ack = await ws.receive_bytes()
        assert inflate.decompress(ack).startswith(b'{"op":11')  # same zlib context
    assert sim.connections()[0].compression == "zlib-stream"


# --------------------------------------------------------------------------- messages


async def test_real_message_create_reaches_on_message_with_content_rules(
    sim: DiscordSimulator, connect: Connect
) -> None:
    client = await connect()
    fixture = fixture_event("MessageCreate.Type0")
    payload = rewrite_ids(
        fixture,
        {
            fixture["guild_id"]: GUILD_ID,
            fixture["channel_id"]: SUPPORT,
            "562268917771413264": ALICE,
        },
    )
    first_seq = await sim.dispatch("MESSAGE_CREATE", payload)

    message = await client.next_message()
    assert message.id == int(fixture["id"]) and message.channel.id == int(SUPPORT)
    assert message.guild is not None and message.guild.id == int(GUILD_ID)
    assert message.author.id == int(ALICE)
    # No MESSAGE_CONTENT intent and no mention of the bot: Discord withholds the content...
    assert message.content == ""
    # ...but it exists, and the simulator's history has it.
    assert sim.history(SUPPORT)[-1]["content"] == ".ping"

    mentioned = sim.message_create(SUPPORT, MINSU, "환불은 어떻게 하나요?", mention_bot=True)
    second_seq = await sim.dispatch("MESSAGE_CREATE", mentioned)
    message = await client.next_message()
    assert message.content == f"<@{sim.bot_id}> 환불은 어떻게 하나요?"
    assert client.user in message.mentions

    direct = sim.message_create(ALICE_DM, ALICE, "DM으로 질문합니다")
    await sim.dispatch("MESSAGE_CREATE", direct)
    message = await client.next_message()
    assert message.guild is None and isinstance(message.channel, discord.DMChannel)
    assert message.content == "DM으로 질문합니다"  # DMs keep their content
    assert first_seq is not None and second_seq == first_seq + 1


async def test_reply_with_reference_is_recorded_and_echoed(
    sim: DiscordSimulator, connect: Connect
) -> None:
    client = await connect()
    question = sim.message_create(SUPPORT, ALICE, "How do refunds work?", mention_bot=True)
    await sim.dispatch("MESSAGE_CREATE", question)
    message = await client.next_message()

    sent = await message.channel.send("환불은 7일 안에 가능합니다.", reference=message)

    call = sim.calls("POST", "/channels/{id}/messages")[-1]
    assert call.path == f"/channels/{SUPPORT}/messages"
    assert call.body["content"] == "환불은 7일 안에 가능합니다."
    # discord.py sends snowflakes in bodies as JSON integers.
    assert call.body["message_reference"]["message_id"] == int(question["id"])
    assert call.response["type"] == 19 and call.response["author"]["id"] == sim.bot_id
    assert sent.reference is not None and sent.reference.message_id == message.id
    assert [m.id for m in sent.mentions] == [int(ALICE)]  # replies ping the author by default
    (stored,) = sim.sent_messages(SUPPORT)
    assert stored["id"] == str(sent.id) and stored["referenced_message"]["id"] == question["id"]
    # Discord sends the bot its own message back; the adapter must ignore it.
    echo = await client.next_message()
    assert echo.id == sent.id and echo.author == client.user

    quiet = await message.channel.send(
        "no ping", reference=message, allowed_mentions=discord.AllowedMentions.none()
    )
    assert quiet.mentions == []
    body = sim.calls("POST", "/channels/{id}/messages")[-1].body
    assert not body["allowed_mentions"].get("replied_user")


async def test_reply_to_an_unknown_message_and_overlong_content_are_rejected(
    sim: DiscordSimulator, connect: Connect
) -> None:
    client = await connect()
    channel = client.get_channel(int(SUPPORT))
    assert isinstance(channel, discord.TextChannel)

    with pytest.raises(discord.HTTPException) as too_long:
        await channel.send("가" * 2001)
    assert too_long.value.status == 400 and too_long.value.code == 50035
    assert "2000 or fewer" in str(too_long.value)
    await channel.send("가" * 2000)  # Discord counts characters, not bytes

    ghost = channel.get_partial_message(int(UNCACHED_MESSAGE))
    with pytest.raises(discord.HTTPException) as unknown:
        await channel.send("reply", reference=ghost)
    assert unknown.value.code == 50035 and "message_reference" in str(unknown.value)
    assert len(sim.sent_messages(SUPPORT)) == 1


async def test_raw_reactions_reach_the_client_for_uncached_messages(
    sim: DiscordSimulator, connect: Connect
) -> None:
    client = await connect()
    # The fixtures use one id for both the reacting user and the guild; map it to the user
    # and set the guild afterwards.
    ids = {"123456789012345678": ALICE, "185949590652977152": SUPPORT}
    ids["679003565884440580"] = UNCACHED_MESSAGE
    added = rewrite_ids(fixture_event("MessageReactionAdd"), ids) | {"guild_id": GUILD_ID}
    # The 2020 capture predates member "flags", which Discord now always sends and discord.py
    # 2.7 requires (without it the client's gateway task dies with KeyError).
    added["member"]["flags"] = 0
    removed = rewrite_ids(fixture_event("MessageReactionRemove"), ids) | {"guild_id": GUILD_ID}

    await sim.dispatch("MESSAGE_REACTION_ADD", added)
    (event,) = await client.next_event("raw_reaction_add")
    assert isinstance(event, discord.RawReactionActionEvent)
    assert event.message_id == int(UNCACHED_MESSAGE) and event.user_id == int(ALICE)
    assert event.channel_id == int(SUPPORT) and event.guild_id == int(GUILD_ID)
    assert str(event.emoji) == "😊" and event.member is not None
    assert discord.utils.get(client.cached_messages, id=int(UNCACHED_MESSAGE)) is None

    await sim.dispatch("MESSAGE_REACTION_REMOVE", removed)
    (event,) = await client.next_event("raw_reaction_remove")
    assert event.message_id == int(UNCACHED_MESSAGE) and str(event.emoji) == "🤔"

    # The builders give the same events for DMs (no guild, no member).
    question = sim.message_create(ALICE_DM, ALICE, "thanks")
    await sim.dispatch("MESSAGE_CREATE", question)
    await client.next_message()
    await sim.dispatch("MESSAGE_REACTION_ADD", sim.reaction_add(ALICE_DM, question["id"], ALICE))
    (event,) = await client.next_event("raw_reaction_add")
    assert event.guild_id is None and event.member is None and str(event.emoji) == "👍"
    assert sim.message(question["id"])["reactions"][0]["count"] == 1


async def test_bot_reactions_typing_and_edits_go_through_rest(
    sim: DiscordSimulator, connect: Connect
) -> None:
    client = await connect()
    await sim.dispatch(
        "MESSAGE_CREATE", sim.message_create(SUPPORT, ALICE, "help", mention_bot=True)
    )
    message = await client.next_message()

    await message.add_reaction("👀")
    (put,) = sim.calls("PUT", "/channels/{c}/messages/{m}/reactions/{emoji}/@me")
    assert put.params["emoji"] == "👀" and put.status == 204
    (event,) = await client.next_event("raw_reaction_add")  # Discord echoes the bot's reaction
    assert event.user_id == client.user.id if client.user else False
    assert sim.message(str(message.id))["reactions"][0]["me"] is True
    await message.remove_reaction("👀", client.user)  # type: ignore[arg-type]
    assert sim.calls("DELETE", "/channels/{c}/messages/{m}/reactions/{emoji}/@me")[0].ok
    assert "reactions" not in sim.message(str(message.id))

    async with message.channel.typing():
        pass
    assert sim.calls("POST", f"/channels/{SUPPORT}/typing")[0].status == 204

    draft = await message.channel.send("thinking…")
    edited = await draft.edit(content="Here is the answer.")
    assert edited.edited_at is not None
    assert sim.sent_messages(SUPPORT)[-1]["content"] == "Here is the answer."
    with pytest.raises(discord.Forbidden) as forbidden:
        await message.edit(content="not mine")
    assert forbidden.value.code == 50005


# --------------------------------------------------------------------------- rate limits, faults


@pytest.mark.parametrize("global_", [False, True])
async def test_429_is_waited_out_and_retried(
    sim: DiscordSimulator, connect: Connect, global_: bool
) -> None:
    client = await connect()
    channel = client.get_channel(int(SUPPORT))
    assert isinstance(channel, discord.TextChannel)
    sim.rate_limit_next("POST", "/channels/{id}/messages", retry_after=0.3, global_=global_)

    loop = asyncio.get_running_loop()
    started = loop.time()
    await channel.send("hello after the limit")

    assert loop.time() - started >= 0.3
    limited, accepted = sim.calls("POST", f"/channels/{SUPPORT}/messages")
    assert (limited.status, accepted.status) == (429, 200)
    assert limited.response == {
        "message": "You are being rate limited.",
        "retry_after": 0.3,
        "global": global_,
    }
    assert limited.response_headers["retry-after"] == "1"
    assert limited.response_headers["x-ratelimit-scope"] == ("global" if global_ else "user")
    assert accepted.response_headers["x-ratelimit-remaining"].isdigit()
    assert accepted.response_headers["x-ratelimit-bucket"]
    assert len(sim.sent_messages(SUPPORT)) == 1


async def test_injected_failures_raise_and_the_next_call_succeeds(
    sim: DiscordSimulator, connect: Connect
) -> None:
    client = await connect()
    channel = client.get_channel(int(SUPPORT))
    assert isinstance(channel, discord.TextChannel)

    sim.fail_next("POST", "/channels/{id}/messages", status=503)
    with pytest.raises(discord.DiscordServerError):
        await channel.send("during an outage")
    sim.fail_next(
        "POST", "/channels/{id}/messages", status=403, code=50013, message="Missing Permissions"
    )
    with pytest.raises(discord.Forbidden) as forbidden:
        await channel.send("without permission")
    assert forbidden.value.code == 50013

    await channel.send("recovered")
    statuses = [c.status for c in sim.calls("POST", "/channels/{id}/messages")]
    assert statuses == [503, 403, 200]
    assert [m["content"] for m in sim.sent_messages()] == ["recovered"]


async def test_unknown_routes_are_404_and_recorded(sim: DiscordSimulator, connect: Connect) -> None:
    client = await connect()
    with pytest.raises(discord.NotFound) as not_found:
        await client.http.request(
            discord.http.Route("GET", "/guilds/{guild_id}/bans", guild_id=GUILD_ID)
        )
    assert not_found.value.text == "404: Not Found"
    (unknown,) = sim.unknown_calls()
    assert unknown.method == "GET" and unknown.path == f"/guilds/{GUILD_ID}/bans"


async def test_file_uploads_are_parsed_and_served(sim: DiscordSimulator, connect: Connect) -> None:
    client = await connect()
    channel = client.get_channel(int(SUPPORT))
    assert isinstance(channel, discord.TextChannel)

    sent = await channel.send(
        "첨부합니다", file=discord.File(io.BytesIO(b"refund policy"), "정책.txt")
    )

    call = sim.calls("POST", "/channels/{id}/messages")[-1]
    assert call.body["content"] == "첨부합니다"  # parsed from payload_json
    (upload,) = call.files
    assert (upload.field, upload.filename, upload.data) == (
        "files[0]",
        "정책.txt",
        b"refund policy",
    )
    (attachment,) = sent.attachments
    assert attachment.filename == "정책.txt" and attachment.size == len(b"refund policy")
    assert await attachment.read() == b"refund policy"  # served by the simulator


async def test_rate_limit_headers_make_discord_py_wait_for_the_bucket(
    sim: DiscordSimulator, connect: Connect
) -> None:
    client = await connect()
    channel = client.get_channel(int(SUPPORT))
    assert isinstance(channel, discord.TextChannel)
    sim.bucket_limit, sim.bucket_reset_after = 2, 0.4

    loop = asyncio.get_running_loop()
    started = loop.time()
    for n in range(3):
        await channel.send(f"burst {n}")

    # The second answer says "Remaining: 0", so discord.py holds the third until the reset.
    assert loop.time() - started >= 0.35
    calls = sim.calls("POST", f"/channels/{SUPPORT}/messages")
    assert [c.status for c in calls] == [200, 200, 200]
    assert [c.response_headers["x-ratelimit-remaining"] for c in calls] == ["1", "0", "1"]


# --------------------------------------------------------------------------- gateway recovery


@pytest.mark.parametrize("close_code", [None, 4000])
async def test_dropped_connection_resumes_and_replays_missed_events_once(
    sim: DiscordSimulator, connect: Connect, close_code: int | None
) -> None:
    client = await connect()
    session_id = sim.session_id
    missed = [sim.message_create(SUPPORT, ALICE, f"missed {n}", mention_bot=True) for n in (1, 2)]

    async with sim.gateway_paused():  # the client can only get these by RESUME replay
        await sim.drop_connection(code=close_code)
        for payload in missed:
            assert await sim.dispatch("MESSAGE_CREATE", payload) is not None
        await client.next_event("disconnect")

    resume = await sim.wait_for_resume()
    await client.next_event("resumed")
    after = sim.message_create(SUPPORT, ALICE, "after resume", mention_bot=True)
    await sim.dispatch("MESSAGE_CREATE", after)

    received = [(await client.next_message()).id for _ in range(3)]
    assert received == [int(p["id"]) for p in [*missed, after]]
    assert client.queues["message"].empty()  # nothing delivered twice
    assert resume.accepted and resume.session_id == session_id and resume.replayed == 2
    assert (sim.identify_count, sim.resume_count) == (1, 1)
    first, second = sim.connections()
    assert second.path == "/gateway/resume" and second.resumed  # READY's resume_gateway_url
    assert not first.open
    replays = [f.d["id"] for f in sim.frames("out") if f.replay]
    assert replays == [p["id"] for p in missed]


async def test_reconnect_opcode_makes_the_client_resume(
    sim: DiscordSimulator, connect: Connect
) -> None:
    client = await connect()
    await sim.send_reconnect()
    resume = await sim.wait_for_resume()
    await client.next_event("resumed")
    assert resume.accepted and sim.identify_count == 1

    await sim.dispatch("MESSAGE_CREATE", sim.message_create(ALICE_DM, ALICE, "still there?"))
    assert (await client.next_message()).content == "still there?"


async def test_non_resumable_invalid_session_makes_the_client_identify_again(
    sim: DiscordSimulator, connect: Connect
) -> None:
    client = await connect()
    old_session = sim.session_id

    await sim.invalidate_session(resumable=False)
    second = await sim.wait_for_identify(2)
    new_session = await sim.wait_for_live_session()

    assert second.accepted and second.intents == product_intents().value
    assert new_session != old_session and sim.resume_count == 0
    # discord.py goes back to DEFAULT_GATEWAY, which the product took from /gateway/bot.
    assert sim.connections()[-1].path == "/gateway"
    await sim.dispatch("MESSAGE_CREATE", sim.message_create(ALICE_DM, ALICE, "new session"))
    assert (await client.next_message()).content == "new session"


async def test_resumable_invalid_session_makes_the_client_resume(
    sim: DiscordSimulator, connect: Connect
) -> None:
    await connect()
    session_id = sim.session_id
    await sim.invalidate_session(resumable=True)
    resume = await sim.wait_for_resume()
    assert resume.accepted and resume.session_id == session_id and sim.identify_count == 1


# --------------------------------------------------------------------------- guilds, DMs, threads


async def test_member_lookup_answers_404_10007_for_non_members(
    sim: DiscordSimulator, connect: Connect
) -> None:
    client = await connect()
    guild = client.get_guild(int(GUILD_ID))
    assert guild is not None

    member = await guild.fetch_member(int(MINSU))
    assert member.display_name == "김민수"
    with pytest.raises(discord.NotFound) as not_found:
        await guild.fetch_member(int(OUTSIDER))
    assert not_found.value.code == 10007
    call = sim.calls("GET", f"/guilds/{GUILD_ID}/members/{OUTSIDER}")[0]
    assert call.response == {"message": "Unknown Member", "code": 10007}


async def test_direct_messages_open_send_and_refuse(
    sim: DiscordSimulator, connect: Connect
) -> None:
    client = await connect()
    alice = await client.fetch_user(int(ALICE))
    dm = await alice.create_dm()
    assert dm.id == int(ALICE_DM)
    assert sim.calls("POST", "/users/@me/channels")[0].body == {"recipient_id": int(ALICE)}
    await dm.send("안녕하세요, 무엇을 도와드릴까요?")
    assert sim.sent_messages(ALICE_DM)[0]["content"] == "안녕하세요, 무엇을 도와드릴까요?"
    fetched = await client.fetch_channel(int(ALICE_DM))
    assert isinstance(fetched, discord.DMChannel) and fetched.recipient == alice

    sim.refuse_dms(MINSU)
    minsu = await client.fetch_user(int(MINSU))
    with pytest.raises(discord.Forbidden) as refused:
        await minsu.send("hello")
    assert refused.value.code == 50007


async def test_threads_created_by_users_and_by_the_bot(
    sim: DiscordSimulator, connect: Connect
) -> None:
    client = await connect()
    opened = sim.thread_create(SUPPORT, "환불 문의", ALICE)
    await sim.dispatch("THREAD_CREATE", opened)
    (thread,) = await client.next_event("thread_create")
    assert isinstance(thread, discord.Thread) and thread.parent_id == int(SUPPORT)
    await thread.send("스레드에서 답변드릴게요.")
    assert sim.sent_messages(opened["id"])[0]["content"] == "스레드에서 답변드릴게요."
    assert (await client.next_message()).author == client.user  # the echo of our own message

    await sim.dispatch(
        "MESSAGE_CREATE", sim.message_create(SUPPORT, ALICE, "question", mention_bot=True)
    )
    message = await client.next_message()
    started = await message.create_thread(name="Answer")
    assert started.id == message.id  # a thread started from a message has its id
    assert sim.channel(str(started.id))["parent_id"] == SUPPORT
    (echo,) = await client.next_event("thread_create")
    assert echo.id == started.id


async def test_channel_history_pages_newest_first(sim: DiscordSimulator, connect: Connect) -> None:
    client = await connect()
    for n in range(3):
        sim.store_message(sim.message_create(GENERAL, ALICE, f"old {n}", mention_bot=True))
    channel = client.get_channel(int(GENERAL))
    assert isinstance(channel, discord.TextChannel)

    newest = [m async for m in channel.history(limit=2)]
    assert [m.content.split()[-1] for m in newest] == ["2", "1"]
    older = [m async for m in channel.history(limit=5, before=newest[-1])]
    assert [m.content.split()[-1] for m in older] == ["0"]
    assert sim.calls("GET", f"/channels/{GENERAL}/messages")[0].query["limit"] == "2"

    fetched = await channel.fetch_message(newest[0].id)
    assert fetched.content == newest[0].content
    with pytest.raises(discord.NotFound) as unknown:
        await channel.fetch_message(int(UNCACHED_MESSAGE))
    assert unknown.value.code == 10008

    sim.store_message(sim.message_create(GENERAL, ALICE, "no mention"))
    (latest,) = [m async for m in channel.history(limit=1)]
    assert latest.content == ""  # REST reads withhold content too without MESSAGE_CONTENT


# --------------------------------------------------------------------------- slash commands


async def test_slash_command_reaches_the_command_tree_and_its_response_is_recorded(
    sim: DiscordSimulator, connect: Connect
) -> None:
    client = SimClient()
    tree = app_commands.CommandTree(client)
    locales: list[discord.Locale] = []

    @tree.command(name="ask", description="Ask the support bot")
    async def ask(interaction: discord.Interaction, question: str) -> None:
        locales.append(interaction.locale)
        await interaction.response.send_message(f"Q: {question}")

    @tree.command(name="slow", description="Answer after thinking")
    async def slow(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        await interaction.edit_original_response(content="done thinking")
        await interaction.followup.send("only you can see this", ephemeral=True)

    await connect(client)
    synced = await tree.sync()
    assert sorted(c.name for c in synced) == ["ask", "slow"]
    assert sorted(c["name"] for c in sim.commands()) == ["ask", "slow"]

    payload = sim.interaction(
        "ask", user=MINSU, channel_id=SUPPORT, options={"question": "환불 정책?"}, locale="ko"
    )
    await sim.dispatch("INTERACTION_CREATE", payload)
    call = await sim.wait_for_call("POST", "/interactions/{id}/{token}/callback")
    assert call.path == f"/interactions/{payload['id']}/{payload['token']}/callback"
    assert call.body["type"] == 4 and call.body["data"]["content"] == "Q: 환불 정책?"
    assert "authorization" not in call.headers  # the token in the path authorises it
    (reply,) = sim.interaction_replies(payload["id"])
    assert reply.kind == "callback" and reply.message is not None
    assert reply.message["type"] == 20 and reply.message["interaction_metadata"]["name"] == "ask"
    assert locales == [discord.Locale.korean]
    echo = await client.next_message()  # the response comes back as a MESSAGE_CREATE
    assert echo.interaction_metadata is not None
    assert echo.interaction_metadata.id == int(payload["id"])

    deferred = sim.interaction("slow", user=ALICE, channel_id=SUPPORT)
    await sim.dispatch("INTERACTION_CREATE", deferred)
    await sim.wait_for_call("PATCH", "/webhooks/{app}/{token}/messages/@original")
    followup = await sim.wait_for_call("POST", "/webhooks/{app}/{token}")
    assert followup.body["flags"] == 64 and followup.path.endswith(deferred["token"])
    kinds = [(r.kind, r.type) for r in sim.interaction_replies(deferred["id"])]
    assert kinds == [("callback", 5), ("edit", None), ("followup", None)]
    original = sim.original_response(deferred["id"])
    assert original is not None and original["content"] == "done thinking"
    assert original["flags"] & 128 == 0  # no longer "thinking"
    # Ephemeral followups are recorded but stay out of the channel's history.
    assert sim.sent_messages(SUPPORT)[-1]["content"] == "only you can see this"
    assert "only you can see this" not in [m["content"] for m in sim.history(SUPPORT)]

    in_dm = sim.interaction("ask", user=ALICE, channel_id=ALICE_DM, options={"question": "DM"})
    await sim.dispatch("INTERACTION_CREATE", in_dm)
    await sim.wait_for_call("POST", "/interactions/{id}/{token}/callback", count=3)
    assert sim.sent_messages(ALICE_DM)[-1]["content"] == "Q: DM"


async def test_interaction_answered_too_late_is_unknown(
    sim: DiscordSimulator, connect: Connect
) -> None:
    client = SimClient()
    tree = app_commands.CommandTree(client)
    errors: list[int | None] = []

    @tree.command(name="late", description="Answers after the deadline")
    async def late(interaction: discord.Interaction) -> None:
        await asyncio.sleep(0.2)
        try:
            await interaction.response.send_message("too late")
        except discord.NotFound as error:
            errors.append(error.code)

    await connect(client)
    await tree.sync()
    sim.interaction_deadline = 0.05
    await sim.dispatch(
        "INTERACTION_CREATE", sim.interaction("late", user=ALICE, channel_id=SUPPORT)
    )
    await sim.wait_for_call("POST", "/interactions/{id}/{token}/callback")
    await asyncio.sleep(0)
    assert errors == [10062]


# --------------------------------------------------------------------------- payload shapes


async def test_builders_have_the_shape_of_the_real_payloads(sim: DiscordSimulator) -> None:
    """Every field of the real captured payloads is present in the builders' payloads."""

    def missing(real: dict[str, Any], built: dict[str, Any]) -> set[str]:
        return set(real) - set(built)

    guild_message = sim.message_create(SUPPORT, ALICE, "hi")
    assert missing(fixture_event("MessageCreate.Type0"), guild_message) == set()
    assert missing(fixture_event("MessageCreate.Type0")["member"], guild_message["member"]) <= {
        "hoisted_role"
    }
    dm_message = sim.message_create(ALICE_DM, ALICE, "hi")
    assert "guild_id" not in dm_message and "member" not in dm_message
    assert missing(load_shared_fixture("message__01__Example_Message"), dm_message) == {
        "reactions"  # only present once someone reacted
    }
    sim.store_message(guild_message)
    assert (
        missing(
            fixture_event("MessageReactionAdd"),
            sim.reaction_add(SUPPORT, guild_message["id"], ALICE),
        )
        == set()
    )
    assert (
        missing(
            fixture_event("MessageReactionRemove"),
            sim.reaction_remove(SUPPORT, guild_message["id"], ALICE),
        )
        == set()
    )
    interaction = sim.interaction("ask", user=ALICE, channel_id=SUPPORT, options={"q": "x"})
    assert missing(fixture_event("InteractionCreate"), interaction) == set()
    assert missing(fixture_event("GuildCreate"), sim.guild_create(GUILD_ID)) == set()
    assert (
        missing(load_shared_fixture("channel__03__Example_DM_Channel"), sim.channel(ALICE_DM))
        == set()
    )
    thread = sim.add_thread(SUPPORT, "1000000000000000500", "help")
    assert missing(load_shared_fixture("channel__06__Example_Thread_Channel"), thread) == set()


async def test_ready_has_the_shape_of_the_real_ready(
    sim: DiscordSimulator, connect: Connect
) -> None:
    await connect()
    ready = next(f for f in sim.frames("out") if f.t == "READY").d
    # "shard" is only sent back when IDENTIFY asked for one (discord.Client does not).
    assert set(fixture_event("Ready")) - set(ready) == {"shard"}


def test_load_shared_fixture_explains_what_is_missing() -> None:
    with pytest.raises(FileNotFoundError, match=r"no shared Discord fixture 'nope\.json'"):
        load_shared_fixture("nope")
