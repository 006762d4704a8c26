"""Breaking the Discord forum and button surface as real users would (issue 12's features,
attacked; the Slack half and the pure rules are in ``tests/test_surface_breaks.py``, which
cannot share a module with these: both harnesses name their app fixture ``kb_app``).

The real discord.py client against the Discord simulator, the real store, embedder and a local
chat model (the fixtures of ``tests/discord_harness.py``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest

from supportbot.app import App
from tests.discord_harness import (
    ALICE,
    BOB,
    FORUM,
    MANAGE_THREADS,
    PLAIN_FORUM,
    QUESTION,
    SUPPORT_TAGS,
    StartBot,
    eventually,
    interaction_of,
    kb_app,
    quiet,
    ratings_of,
    signals_of,
    sim,
    start_bot,
)
from tests.servers.discord import DiscordSimulator

__all__ = ["kb_app", "sim", "start_bot"]  # fixtures used here


# --- end to end on Discord: the real discord.py client against the simulator ----------------

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00"
    b"\x00\x00\x00IEND\xaeB`\x82"
)


async def _post(
    sim: DiscordSimulator,
    forum: str,
    title: str,
    content: str = "",
    *,
    image: bool = False,
    author: str = ALICE,
) -> dict[str, Any]:
    """A new post whose starter message may carry only an image (no words)."""
    thread, starter = sim.forum_post(forum, author, title, content)
    if image:
        starter = sim.message_create(
            thread["id"], author, content, attachments=[("screen.png", PNG, "image/png")],
            message_id=thread["id"],
        )  # fmt: skip
    await sim.dispatch("THREAD_CREATE", thread)
    await sim.dispatch("MESSAGE_CREATE", starter)
    return starter


@pytest.mark.slow
@pytest.mark.parametrize(
    ("title", "image"),
    [
        (QUESTION, False),  # the question in the title, the body empty
        (QUESTION, True),  # the question in the title, a screenshot as the body
        ("비밀번호 재설정 링크는 얼마나 유효한가요?", False),
    ],
)
async def test_a_post_whose_title_is_the_question_is_answered(
    kb_app: App, start_bot: StartBot, sim: DiscordSimulator, title: str, image: bool
):
    await start_bot()
    post = await _post(sim, FORUM, title, image=image)
    sent = await eventually(lambda: sim.sent_messages(post["id"]), timeout=20)
    if title == QUESTION:  # the harness's knowledge is English: the Korean one is looked up
        assert "30" in sent[0]["content"]
    stored = await eventually(lambda: interaction_of(kb_app, post["id"]))
    assert stored.question.startswith(title)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("title", "prompt"),
    [
        ("???", "Ask me a question in words"),
        ("!!! ...", "Ask me a question in words"),
        ("안녕하세요", "질문을 글로 적어 주시면"),
    ],
)
async def test_a_post_of_only_an_image_under_a_title_without_words_gets_the_question_prompt(
    kb_app: App, start_bot: StartBot, sim: DiscordSimulator, title: str, prompt: str
):
    # Before: silence (no words, not a DM or a mention), the asker left waiting in the forum.
    await start_bot()
    post = await _post(sim, FORUM, title, image=True)
    [sent] = await eventually(lambda: sim.sent_messages(post["id"]), timeout=20)
    assert prompt in sent["content"]
    await quiet()
    assert len(sim.sent_messages(post["id"])) == 1
    assert interaction_of(kb_app, post["id"]) is None  # nothing retrieved, nothing stored


@pytest.mark.slow
async def test_the_askers_check_mark_in_a_forum_without_a_solved_tag_is_recorded(
    kb_app: App, start_bot: StartBot, sim: DiscordSimulator
):
    await start_bot()
    post = await _post(sim, PLAIN_FORUM, "Reset link", QUESTION)
    [answer] = await eventually(lambda: sim.sent_messages(post["id"]), timeout=20)
    await eventually(lambda: interaction_of(kb_app, post["id"]))
    await sim.dispatch(
        "MESSAGE_REACTION_ADD", sim.reaction_add(post["id"], answer["id"], ALICE, "✅")
    )
    interaction = interaction_of(kb_app, post["id"])
    assert interaction is not None
    await eventually(
        lambda: [s for s in signals_of(kb_app, interaction.id) if s.kind == "resolved"]
    )
    await quiet()
    assert [c for c in sim.calls("PATCH", f"/channels/{post['id']}")] == []
    assert len(sim.sent_messages(post["id"])) == 1  # nothing said in the post


OTHER_GUILD, OTHER_FORUM, OTHER_GENERAL = (
    "3000000000000000200",
    "3000000000000000202",
    "3000000000000000201",
)


@pytest.mark.slow
async def test_buttons_on_an_answer_forwarded_to_another_server_act_on_nothing(
    kb_app: App, start_bot: StartBot, sim: DiscordSimulator
):
    sim.add_guild(
        OTHER_GUILD, "Globex", channels=[(OTHER_GENERAL, "general")], members=[BOB],
        roles=[{"id": "3000000000000000299", "name": "bot", "permissions": str(MANAGE_THREADS)}],
    )  # fmt: skip
    sim.add_member(OTHER_GUILD, sim.bot_id, roles=["3000000000000000299"])
    sim.add_forum(OTHER_GUILD, OTHER_FORUM, "help", tags=SUPPORT_TAGS)
    await start_bot()
    post = await _post(sim, FORUM, "Reset link", QUESTION)
    [answer] = await eventually(lambda: sim.sent_messages(post["id"]), timeout=20)
    interaction = await eventually(lambda: interaction_of(kb_app, post["id"]))

    # Bob forwards the answer into his own post in another server and clicks its buttons.
    bobs_thread, _ = sim.forum_post(OTHER_FORUM, BOB, "My question", "Same here")
    await sim.dispatch("THREAD_CREATE", bobs_thread)
    forward = sim.message_create(bobs_thread["id"], BOB, forward_of=answer["id"])
    await sim.dispatch("MESSAGE_CREATE", forward)
    forward["components"] = answer["components"]  # the buttons came along with the copy
    sim._messages[forward["id"]] = {
        **sim._messages[forward["id"]],
        "components": answer["components"],
    }
    for custom_id in ("supportbot:vote:down", "supportbot:solved"):
        event = sim.component_interaction(forward["id"], custom_id, user=BOB)
        await sim.dispatch("INTERACTION_CREATE", event)
        [reply] = await eventually(partial(sim.interaction_replies, str(event["id"])))
        assert reply.body["data"]["flags"] & 64
        assert "copy" in reply.body["data"]["content"]
    await quiet()
    assert sim.calls("PATCH", f"/channels/{bobs_thread['id']}") == []  # not tagged solved
    assert ratings_of(kb_app, interaction.id) == []
    assert [s for s in signals_of(kb_app, interaction.id) if s.kind == "resolved"] == []
