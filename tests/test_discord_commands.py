"""Slash-command registration: a failure (an error status, a malformed body) is logged and
retried with backoff; it never stops the bot, which answers meanwhile, and the commands are
registered once Discord recovers. The real discord.py client against the Discord simulator."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import discord
import pytest
from discord import app_commands

from bot.discord.registration import Backoff, CommandRegistration, describe_failure
from supportbot.app import App
from tests.discord_harness import (
    GENERAL,
    QUESTION,
    TOKEN,
    StartBot,
    eventually,
    interaction_of,
    interrupt,
    kb_app,
    sim,
    start_bot,
    take_ctrl_c,
)
from tests.servers.discord import COMMAND_REGISTRATION_FAILURES, DiscordSimulator

__all__ = ["kb_app", "sim", "start_bot"]  # fixtures used here

FAST = Backoff(first_s=0.05, factor=2.0, max_s=0.2, jitter=0.0)
MALFORMED = ("not_json", "wrong_shape", "missing_fields")
REFUSED = ("invalid_form", "forbidden", "unavailable")


@pytest.fixture
async def client(
    sim: DiscordSimulator, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[discord.Client]:
    """A discord.py client logged in to the simulator over REST (no gateway needed)."""
    monkeypatch.setattr(discord.http.Route, "BASE", sim.api_url)
    client = discord.Client(intents=discord.Intents.none())
    await client.login(TOKEN)
    yield client
    await client.close()


def tree_of(client: discord.Client) -> app_commands.CommandTree[discord.Client]:
    tree = app_commands.CommandTree(client)

    @tree.command(name="ask", description="Ask a question")
    async def ask(interaction: discord.Interaction, question: str) -> None: ...

    @tree.command(name="workspace", description="Choose a workspace")
    async def workspace(interaction: discord.Interaction) -> None: ...

    return tree


@pytest.mark.parametrize("failure", MALFORMED)
async def test_discord_py_fails_on_a_malformed_answer_with_no_http_error(
    client: discord.Client, sim: DiscordSimulator, failure: str
):
    """What took `supportbot run` down: a 2xx body that is not the list of commands makes
    discord.py raise TypeError/KeyError, which a handler for HTTPException lets through."""
    sim.command_registration_failure = failure
    with pytest.raises(Exception) as raised:
        await tree_of(client).sync()
    assert not isinstance(raised.value, discord.HTTPException)
    assert isinstance(raised.value, (TypeError, KeyError, ValueError))


@pytest.mark.parametrize("failure", MALFORMED + REFUSED)
async def test_a_failed_registration_is_logged_and_retried_until_discord_accepts_it(
    client: discord.Client,
    sim: DiscordSimulator,
    failure: str,
    caplog: pytest.LogCaptureFixture,
):
    sim.command_registration_failure = failure
    registration = CommandRegistration(tree_of(client), backoff=FAST)
    task = registration.start()
    # The 4th attempt has started, so 3 have failed (and were logged) before Discord recovers.
    await eventually(lambda: registration.attempts >= 4)
    assert not task.done(), "the registration gave up or raised"
    assert sim.commands() == []
    assert registration.last_error is not None and "\n" not in registration.last_error

    sim.command_registration_failure = None  # Discord recovers
    await asyncio.wait_for(registration.registered.wait(), timeout=5)
    await task
    assert sorted(c["name"] for c in sim.commands()) == ["ask", "workspace"]
    assert registration.last_error is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) >= 3
    assert all("could not register the slash commands" in r.getMessage() for r in warnings)
    assert not any(r.exc_info for r in caplog.records), "a traceback was logged"
    assert TOKEN not in caplog.text


async def test_a_server_error_is_retried_by_discord_py_then_by_the_registration(
    client: discord.Client, sim: DiscordSimulator
):
    # 500 twice: discord.py itself retries a 500 after 1 s, 3 s..., then gives up (raising
    # DiscordServerError); our retry comes after that.
    sim.fail_next("PUT", "/applications/{app}/commands", status=500, times=2)
    registration = CommandRegistration(tree_of(client), backoff=FAST)
    await asyncio.wait_for(registration.start(), timeout=15)
    assert registration.registered.is_set()
    assert sorted(c["name"] for c in sim.commands()) == ["ask", "workspace"]


async def test_an_answer_without_every_command_is_not_taken_for_a_registration(
    client: discord.Client, sim: DiscordSimulator
):
    sim.fail_next("PUT", "/applications/{app}/commands", status=200, body=[], times=2)
    registration = CommandRegistration(tree_of(client), backoff=FAST)
    await asyncio.wait_for(registration.start(), timeout=5)
    assert registration.attempts == 3
    assert sorted(c["name"] for c in sim.commands()) == ["ask", "workspace"]


async def test_stop_ends_the_retries_quietly(client: discord.Client, sim: DiscordSimulator):
    sim.command_registration_failure = "unavailable"
    registration = CommandRegistration(tree_of(client), backoff=FAST)
    task = registration.start()
    await eventually(lambda: registration.attempts >= 2)
    await registration.stop()
    assert task.cancelled()
    attempts = registration.attempts
    await asyncio.sleep(0.3)
    assert registration.attempts == attempts


def test_backoff_grows_to_its_cap_with_jitter():
    delays = Backoff(first_s=10, factor=2, max_s=60, jitter=0.1).delays(rng=lambda: 1.0)
    # The jitter never takes a delay past the cap (the README promises at most max_s).
    assert [round(next(delays), 1) for _ in range(5)] == [11.0, 22.0, 44.0, 60.0, 60.0]
    low = Backoff(first_s=10, jitter=0.1).delays(rng=lambda: 0.0)
    assert round(next(low), 1) == 9.0


def test_failures_are_described_in_one_line_by_kind():
    assert "was not the list of commands (KeyError" in describe_failure(KeyError("id"))
    assert "TypeError" in describe_failure(TypeError("string indices must be integers"))
    assert set(COMMAND_REGISTRATION_FAILURES) >= set(MALFORMED + REFUSED)


# --- the bot itself ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("failure", ["not_json", "invalid_form"])
async def test_the_bot_answers_while_registration_fails_and_registers_once_discord_recovers(
    kb_app: App, start_bot: StartBot, sim: DiscordSimulator, failure: str
):
    sim.command_registration_failure = failure
    bot = await start_bot(command_backoff=FAST)  # ready: the gateway is not held up

    question = sim.message_create(GENERAL, "3000000000000001001", QUESTION, mention_bot=True)
    await sim.dispatch("MESSAGE_CREATE", question)
    [answer] = await eventually(lambda: sim.sent_messages(GENERAL), timeout=20)
    assert "30 minutes" in answer["content"]
    await eventually(lambda: interaction_of(kb_app, question["id"]) is not None)
    assert sim.commands() == []
    assert bot.commands.attempts >= 1 and not bot.commands.registered.is_set()

    sim.command_registration_failure = None
    await asyncio.wait_for(bot.commands.registered.wait(), timeout=5)
    assert sorted(c["name"] for c in sim.commands()) == ["ask", "workspace"]
    assert not bot.client.is_closed()


SUPPORTBOT = Path(sys.executable).with_name("supportbot")


@pytest.mark.slow
async def test_supportbot_run_keeps_answering_through_a_malformed_registration_answer(
    kb_app: App, sim: DiscordSimulator, tmp_path: Path
):
    """The case that ended `supportbot run` with a traceback: Discord's answer to the command
    registration is not JSON. Now: one warning line, the bot answers, and the commands are
    registered at the next attempt once Discord answers properly."""
    sim.command_registration_failure = "not_json"
    keep = ("PATH", "HOME", "LANG", "TMPDIR", "PYTHONPATH")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env.update(
        SUPPORTBOT_DATA_DIR=str(kb_app.settings.data_dir),
        DATABASE_URL=str(kb_app.settings.database_url),
        SUPPORTBOT_SECRET_KEY="test-secret",
        PYTHONUTF8="1",
        PYTHONFAULTHANDLER="1",
        DISCORD_BOT_TOKEN=TOKEN,
        DISCORD_API_URL=sim.api_url,
    )
    process = await asyncio.create_subprocess_exec(
        str(SUPPORTBOT), "run", env=env, cwd=tmp_path, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, preexec_fn=take_ctrl_c,
    )  # fmt: skip
    try:
        await sim.wait_for_live_session(timeout=90)
        question = sim.message_create(GENERAL, "3000000000000001001", QUESTION, mention_bot=True)
        await sim.dispatch("MESSAGE_CREATE", question)
        answer = await sim.wait_for_sent_message(GENERAL, timeout=60)
        assert "30 minutes" in answer["content"]
        assert sim.commands() == []
        sim.command_registration_failure = None
        await eventually(lambda: len(sim.commands()) == 2, timeout=30)  # first retry: ~10 s
        assert process.returncode is None, "supportbot run stopped"
    finally:
        stderr = await interrupt(process)
    log = stderr.decode()
    assert "could not register the slash commands (attempt 1): Discord's answer was not" in log
    assert "Traceback" not in log, log[-2000:]
