"""Discord sources against the Discord REST simulator over real HTTP (no gateway).

Forum posts and threads of a text channel (active and archived) become Q&A documents; a
thread started from a channel message takes that message as its question; chatter is skipped;
edits and deletions reach search; Discord's 429s (Retry-After) are waited out.
"""

from __future__ import annotations

from typing import Any

from supportbot.app import App
from sync.connectors.discord import DiscordConnector
from tests.servers.discord import DEFAULT_TOKEN, DiscordSimulator

GUILD, TEXT, FORUM = "100", "101", "105"
MESSAGE_CONTENT = 1 << 15  # the privileged intent a bot needs to read message text
CHECK = [{"emoji": {"id": None, "name": "✅"}, "count": 1, "me": False, "burst_count": 0}]


def post(sim: DiscordSimulator, channel: str, author: str, content: str, **extra: Any) -> str:
    message = sim.message_create(channel, author, content, message_id=extra.pop("message_id", None))
    message.update(extra)
    return str(sim.store_message(message)["id"])


def seed(sim: DiscordSimulator) -> dict[str, str]:
    for user_id, name in (("200", "alice"), ("201", "bob"), ("202", "carol")):
        sim.add_user(user_id, name)
    sim.add_user("300", "helperbot", bot=True)
    sim.add_guild(GUILD, "Acme", channels=[(TEXT, "support")], members=["200", "201", "202"])
    sim.add_channel(GUILD, FORUM, "questions", type=15)
    export = sim.add_thread(FORUM, sim.new_id(), "How do I export my data?", owner_id="200")["id"]
    post(sim, export, "200", "I need a CSV of all my orders.", message_id=export)
    post(sim, export, "201", "Settings > Data > Export gives you a CSV.", reactions=CHECK)
    post(sim, export, "202", "thanks, worked for me too")
    # A thread started from a message in the text channel; answered, then archived.
    starter = post(sim, TEXT, "200", "비밀번호를 잊어버렸어요. 어떻게 재설정하나요?")
    password = sim.add_thread(TEXT, starter, "비밀번호 재설정", owner_id="200")["id"]
    post(sim, password, "200", "", type=21)
    post(sim, password, "201", "로그인 화면에서 '비밀번호 찾기'를 누르세요.")
    sim.archive_thread(password)
    chatter = sim.add_thread(FORUM, sim.new_id(), "Friday memes", owner_id="202")["id"]
    post(sim, chatter, "202", "post your memes", message_id=chatter)
    post(sim, chatter, "300", "Here is a meme.")  # a bot: not an answer
    return {"export": export, "password": password}


def add_discord(app: App, workspace: str) -> None:
    app.sync_sources.add(
        workspace,
        "community",
        kind="discord",
        config=DiscordConnector.validate_config(
            {"channels": [TEXT, FORUM], "guild": GUILD, "recent_days": 0}
        ),
        credentials={"token": DEFAULT_TOKEN},
        schedule=None,
        requests_per_second=500,
    )


async def test_forum_posts_and_threads_become_qa_documents(app: App, ws_name: str) -> None:
    async with DiscordSimulator(privileged_intents=MESSAGE_CONTENT) as sim:
        threads = seed(sim)
        app.settings.discord_api_url = sim.api_url
        app.knowledge.create_workspace(ws_name)
        add_discord(app, ws_name)
        sim.rate_limit_next("GET", "/channels/{id}/messages", retry_after=0.5, times=2)

        run = await app.sync_engine.sync(ws_name, "community")
        assert (run.status, run.documents, run.changed) == ("ok", 2, 2)  # chatter skipped
        assert run.retries >= 2
        export = app.knowledge.search(ws_name, "export orders CSV", k=1)[0]
        assert export.text == (
            "Question: How do I export my data?\nI need a CSV of all my orders.\n\n"
            "Answer: Settings > Data > Export gives you a CSV."
        )
        assert export.url == f"https://discord.com/channels/{GUILD}/{threads['export']}"
        password = app.knowledge.search(ws_name, "비밀번호 재설정 방법", k=1)[0]
        assert "비밀번호를 잊어버렸어요" in password.text and "비밀번호 찾기" in password.text
        assert all("meme" not in r.text for r in app.knowledge.search(ws_name, "memes", k=5))

        post(
            sim,
            threads["password"],
            "202",
            "설정 > 보안에서도 재설정할 수 있습니다.",
            reactions=CHECK,
        )
        sim.delete_thread(threads["export"])
        run = await app.sync_engine.sync(ws_name, "community")
        assert (run.changed, run.deleted) == (1, 1)
        password = app.knowledge.search(ws_name, "비밀번호 재설정 방법", k=1)[0]
        assert "설정 > 보안에서도" in password.text
        assert all("CSV" not in r.text for r in app.knowledge.search(ws_name, "export CSV", k=5))
        assert app.sync_sources.info(ws_name, "community").documents == 1


async def test_an_unknown_guild_fails_with_a_clear_error(app: App, ws_name: str) -> None:
    async with DiscordSimulator() as sim:
        seed(sim)
        app.settings.discord_api_url = sim.api_url
        app.knowledge.create_workspace(ws_name)
        app.sync_sources.add(
            ws_name, "community", kind="discord",
            config=DiscordConnector.validate_config({"channels": [TEXT], "guild": "999999"}),
            credentials={"token": DEFAULT_TOKEN}, schedule=None, requests_per_second=50,
        )  # fmt: skip
        run = await app.sync_engine.sync(ws_name, "community")
        assert run.status == "failed"
        assert run.error is not None and "is the bot in that server?" in run.error


async def test_without_the_message_content_intent_the_error_says_so(app: App, ws_name: str) -> None:
    async with DiscordSimulator() as sim:  # the intent is off in the Developer Portal
        seed(sim)
        app.settings.discord_api_url = sim.api_url
        app.knowledge.create_workspace(ws_name)
        add_discord(app, ws_name)
        run = await app.sync_engine.sync(ws_name, "community")
        assert run.status == "failed"
        assert run.error is not None and "Message Content intent" in run.error
